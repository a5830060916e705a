//! The terminal's telemetry, shared by its sessions: each session of protocol 1.1 answers
//! queries from it and pushes its changes to its client.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use posbridge_wire::{Telemetry, TelemetryChangeSet};

/// How many changes a board remembers for sessions that have not pushed them yet. A session
/// further behind (it cannot be, as sessions look every second) pushes the union of what is
/// remembered, with the telemetry as it is now — nothing it reports is stale.
const HISTORY: usize = 64;

/// A terminal's telemetry and the changes made to it, numbered so that every session pushes
/// each change once. The terminal's app [`set`](Self::set)s it (battery read, paper sensor,
/// acquirer link); sessions do the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryBoard {
    current: Telemetry,
    generation: u64,
    history: VecDeque<(u64, TelemetryChangeSet)>,
}

/// A board shared by a terminal's sessions.
pub type SharedTelemetry = Arc<Mutex<TelemetryBoard>>;

impl TelemetryBoard {
    /// A board reporting `initial`.
    pub fn new(initial: Telemetry) -> Self {
        Self {
            current: initial,
            generation: 0,
            history: VecDeque::new(),
        }
    }

    /// A board behind a mutex, for a [`TerminalContext`](crate::TerminalContext).
    pub fn shared(initial: Telemetry) -> SharedTelemetry {
        Arc::new(Mutex::new(Self::new(initial)))
    }

    /// The telemetry now.
    pub fn current(&self) -> &Telemetry {
        &self.current
    }

    /// How many changes worth a push were made so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reports `telemetry`; returns what changed ([`Telemetry::changes_from`]). Changes are
    /// pushed to every session of protocol 1.1 within a second; a battery level that moved
    /// without crossing the low threshold is only read on demand.
    pub fn set(&mut self, telemetry: Telemetry) -> TelemetryChangeSet {
        let changes = telemetry.changes_from(&self.current);
        self.current = telemetry;
        if changes != TelemetryChangeSet::EMPTY {
            self.generation += 1;
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back((self.generation, changes));
        }
        changes
    }

    /// Changes the telemetry in place; returns what changed.
    pub fn update(&mut self, change: impl FnOnce(&mut Telemetry)) -> TelemetryChangeSet {
        let mut next = self.current.clone();
        change(&mut next);
        self.set(next)
    }

    /// What changed after generation `seen`, if anything: the union of the changes, and the
    /// generation reached.
    pub fn changes_since(&self, seen: u64) -> Option<(TelemetryChangeSet, u64)> {
        if seen >= self.generation {
            return None;
        }
        let union = self
            .history
            .iter()
            .filter(|(g, _)| *g > seen)
            .fold(0, |bits, (_, c)| bits | c.0);
        Some((TelemetryChangeSet(union), self.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_wire::{AcquirerLink, PaperState, TelemetryChange};

    #[test]
    fn changes_are_numbered_and_unioned_per_reader() {
        let mut board = TelemetryBoard::new(Telemetry {
            battery_percent: Some(80),
            paper: Some(PaperState::Ok),
            ..Telemetry::default()
        });
        // A level that does not cross the threshold is no change.
        assert_eq!(
            board.update(|t| t.battery_percent = Some(50)),
            TelemetryChangeSet::EMPTY
        );
        assert_eq!(board.changes_since(0), None);
        let low = board.update(|t| t.battery_percent = Some(Telemetry::BATTERY_LOW_PERCENT));
        assert_eq!(
            low,
            TelemetryChangeSet::EMPTY.with(TelemetryChange::BatteryLow)
        );
        // Staying low is not a second change.
        assert_eq!(
            board.update(|t| t.battery_percent = Some(3)),
            TelemetryChangeSet::EMPTY
        );
        board.update(|t| t.acquirer = AcquirerLink::Offline);
        let (union, generation) = board.changes_since(0).unwrap();
        assert_eq!(generation, 2);
        assert!(union.contains(TelemetryChange::BatteryLow));
        assert!(union.contains(TelemetryChange::Offline));
        let (only_last, _) = board.changes_since(1).unwrap();
        assert_eq!(
            only_last,
            TelemetryChangeSet::EMPTY.with(TelemetryChange::Offline)
        );
        assert_eq!(board.changes_since(2), None);
    }

    #[test]
    fn a_reader_far_behind_gets_the_remembered_union() {
        let mut board = TelemetryBoard::new(Telemetry::default());
        for i in 0..(HISTORY as u32 + 10) {
            board.update(|t| t.stored_offline = i + 1);
        }
        let (union, generation) = board.changes_since(0).unwrap();
        assert_eq!(generation, HISTORY as u64 + 10);
        assert_eq!(
            union,
            TelemetryChangeSet::EMPTY.with(TelemetryChange::StoredOffline)
        );
        assert_eq!(board.current().stored_offline, HISTORY as u32 + 10);
    }
}
