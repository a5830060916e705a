//! The journal in memory.

use std::collections::{BTreeSet, HashMap};

use posbridge_wire::{
    IdempotencyKey, PublicKey, SettlementResult, TerminalId, Timestamp, TransactionRequest,
};

use crate::{Entry, Journal, JournalError, Query, SettlementRecord};

/// A journal in memory: for tests, and for apps that keep their own books and only need the
/// recovery logic.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    entries: Vec<Entry>,
    index: HashMap<IdempotencyKey, usize>,
    /// The entries not final yet (what recovery reads before every command), by position.
    open: BTreeSet<usize>,
    settlements: Vec<SettlementRecord>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Journal for MemoryJournal {
    fn record_intent(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        if let Some(&i) = self.index.get(&request.idempotency_key) {
            return self.entries[i].check_intent(request);
        }
        self.index
            .insert(request.idempotency_key, self.entries.len());
        self.open.insert(self.entries.len());
        self.entries
            .push(Entry::new(terminal, request, terminal_key, now));
        Ok(())
    }

    fn update(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        // Changed on a copy, so a failed change leaves the entry as it was.
        let i = *self.index.get(key).ok_or(JournalError::UnknownKey(*key))?;
        let mut changed = self.entries[i].clone();
        change(&mut changed)?;
        if !changed.state.needs_recovery() {
            self.open.remove(&i);
        } else {
            self.open.insert(i);
        }
        self.entries[i] = changed;
        Ok(())
    }

    fn get(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        Ok(self.index.get(key).map(|&i| self.entries[i].clone()))
    }

    fn record_settlement(
        &mut self,
        result: &SettlementResult,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        let key = result.idempotency_key;
        if let Some(kept) = self
            .settlements
            .iter()
            .find(|s| s.result.idempotency_key == key)
        {
            return if crate::same_settlement(&kept.result, result) {
                Ok(())
            } else {
                Err(JournalError::ConflictingResult(key))
            };
        }
        self.settlements.push(SettlementRecord {
            result: result.clone(),
            terminal_key,
            recorded: now,
        });
        Ok(())
    }

    fn settlements(
        &self,
        terminal: Option<TerminalId>,
    ) -> Result<Vec<SettlementRecord>, JournalError> {
        Ok(self
            .settlements
            .iter()
            .filter(|s| terminal.is_none_or(|t| s.result.terminal_id == t))
            .cloned()
            .collect())
    }

    fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        Ok(self.open.iter().map(|&i| self.entries[i].clone()).collect())
    }

    fn query(&self, query: &Query) -> Result<Vec<Entry>, JournalError> {
        Ok(self
            .entries
            .iter()
            .filter(|e| query.matches(e))
            .cloned()
            .collect())
    }
}
