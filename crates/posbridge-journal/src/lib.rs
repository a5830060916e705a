//! posbridge's journal: the app's own record of every money command, written **before** the
//! command is sent, then updated with its progress and its final signed result. Nothing is ever
//! deleted; card numbers only appear masked (posbridge never holds more); operator credentials
//! are never stored.
//!
//! The journal is what recovery works from: after a crash, a disconnect or a timeout, every
//! entry without its outcome ([`EntryState::needs_recovery`]: intent, sent, in doubt) is *in
//! doubt* and must be resolved by a status query before anything new is sent (`posbridge`'s
//! recovery does that). A payment the terminal approved offline (protocol 1.1) is not in doubt:
//! its signed result is recorded as [`EntryState::OfflinePending`] until the terminal's signed
//! final outcome makes it done or [`EntryState::DeclinedAfter`]. Because the intent is durable
//! before the first byte leaves, a payment can never happen without the journal knowing its
//! idempotency key.
//!
//! Two implementations: [`MemoryJournal`] (tests, apps that keep their own books) and
//! `SqliteJournal` (feature `sqlite`, on by default: SQLite bundled, WAL, `synchronous=FULL`, a
//! versioned schema with migrations). Export with [`export_csv`] and [`export_jsonl`].
//!
//! ```
//! use posbridge_journal::{EntryState, Journal, MemoryJournal};
//! use posbridge_wire::{samples, TerminalId, Timestamp};
//!
//! let mut journal = MemoryJournal::new();
//! let request = samples::sale_request();
//! journal.record_intent(TerminalId::from_u128(4), &request, None, Timestamp(1))?;
//! journal.mark_sent(&request.idempotency_key, Timestamp(2))?;
//! assert_eq!(journal.unresolved()?.len(), 1, "in doubt until its result is recorded");
//! journal.record_result(&samples::approved_result(), Timestamp(3))?;
//! assert_eq!(journal.get(&request.idempotency_key)?.unwrap().state, EntryState::Done);
//! assert!(journal.unresolved()?.is_empty());
//! # Ok::<(), posbridge_journal::JournalError>(())
//! ```

#[cfg(feature = "export")]
mod export;
mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;

use posbridge_wire::{
    Amount, IdempotencyKey, Message, OfflineOutcome, OfflineState, ProgressStage, PublicKey,
    SettlementResult, TerminalId, Timestamp, TransactionKind, TransactionRequest,
    TransactionResult,
};

#[cfg(feature = "export")]
pub use export::{export_csv, export_jsonl};
pub use memory::MemoryJournal;
#[cfg(feature = "sqlite")]
pub use sqlite::{Scan, SqliteJournal};

/// Where a journalled command stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryState {
    /// Written, not yet handed to the terminal (a crash here: it may or may not have gone out;
    /// recovery asks).
    Intent,
    /// Sent; no final result yet.
    Sent,
    /// Sent, and the answer did not come (deadline, disconnect, crash): resolve by status query.
    InDoubt,
    /// The final, signed result is recorded.
    Done,
    /// Refused — by this side before it was sent (amount, currency, method) or by the terminal
    /// before it started (authorisation, a reused key): final, nothing happened.
    Rejected,
    /// Approved by the terminal **offline** (store-and-forward, protocol 1.1: its signed result
    /// says so and is recorded), not yet confirmed by the acquirer. Counted as approved; never
    /// sent again — recovery leaves it alone — while the terminal's final outcome is awaited
    /// (pushed, or asked for): then [`Done`](Self::Done) or [`DeclinedAfter`](Self::DeclinedAfter).
    OfflinePending,
    /// Approved offline, then **declined by the issuer after the fact** (the terminal's signed
    /// outcome is recorded in [`Entry::offline`]): final, the customer's card is not charged
    /// although the goods are out.
    DeclinedAfter,
}

impl EntryState {
    /// The name stored and exported.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Sent => "sent",
            Self::InDoubt => "in_doubt",
            Self::Done => "done",
            Self::Rejected => "rejected",
            Self::OfflinePending => "offline_pending",
            Self::DeclinedAfter => "declined_after",
        }
    }

    /// Whether nothing more happens to the entry (done, refused, or declined after an offline
    /// approval).
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Rejected | Self::DeclinedAfter)
    }

    /// Whether recovery must resolve it by asking the terminal (intent, sent, in doubt): its
    /// outcome is not known. An entry approved offline is not: its result is recorded.
    pub const fn needs_recovery(self) -> bool {
        matches!(self, Self::Intent | Self::Sent | Self::InDoubt)
    }

    /// Whether a final result is recorded (done, or approved offline — pending or declined
    /// after the fact).
    pub const fn has_result(self) -> bool {
        matches!(
            self,
            Self::Done | Self::OfflinePending | Self::DeclinedAfter
        )
    }

    /// The state for a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intent" => Self::Intent,
            "sent" => Self::Sent,
            "in_doubt" => Self::InDoubt,
            "done" => Self::Done,
            "rejected" => Self::Rejected,
            "offline_pending" => Self::OfflinePending,
            "declined_after" => Self::DeclinedAfter,
            _ => return None,
        })
    }
}

/// A closed batch as the terminal reported it: its totals, signed by the terminal. Kept so that
/// reconciliation (here and in a back office) compares the journal with what the terminal
/// itself counted, and never deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementRecord {
    /// The terminal's result, as received.
    pub result: SettlementResult,
    /// The terminal's signing key at the time (to verify the result offline).
    pub terminal_key: Option<PublicKey>,
    /// When it was journaled.
    pub recorded: Timestamp,
}

/// One journalled money command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The terminal it was sent to.
    pub terminal: TerminalId,
    /// The command as sent, without its operator credential.
    pub request: TransactionRequest,
    /// Where it stands.
    pub state: EntryState,
    /// The last stage the terminal reported.
    pub stage: Option<ProgressStage>,
    /// The final result, once recorded.
    pub result: Option<TransactionResult>,
    /// The terminal's signing key at the time (to verify the result offline).
    pub terminal_key: Option<PublicKey>,
    /// Why it is in doubt or was refused, if it is; for a payment declined after the fact, the
    /// reason.
    pub note: Option<String>,
    /// For a payment approved offline: the terminal's signed final outcome (confirmed, or
    /// declined after the fact), once learnt.
    pub offline: Option<OfflineOutcome>,
    /// When the intent was written.
    pub created: Timestamp,
    /// When the entry last changed.
    pub updated: Timestamp,
}

impl Entry {
    /// The idempotency key.
    pub fn key(&self) -> IdempotencyKey {
        self.request.idempotency_key
    }

    /// The kind of command.
    pub fn kind(&self) -> TransactionKind {
        self.request.command.kind()
    }

    /// The amount asked for, if the kind has one.
    pub fn amount(&self) -> Option<Amount> {
        self.request.command.amount()
    }
}

/// Which entries a query returns (all conditions must hold; `None` means any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Created at or after.
    pub from: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// In one of these states.
    pub states: Option<Vec<EntryState>>,
    /// Sent to this terminal.
    pub terminal: Option<TerminalId>,
    /// Of this kind.
    pub kind: Option<TransactionKind>,
}

impl Query {
    /// Whether `e` matches.
    pub fn matches(&self, e: &Entry) -> bool {
        self.from.is_none_or(|t| e.created.0 >= t.0)
            && self.until.is_none_or(|t| e.created.0 < t.0)
            && self.states.as_ref().is_none_or(|s| s.contains(&e.state))
            && self.terminal.is_none_or(|t| e.terminal == t)
            && self.kind.is_none_or(|k| e.kind() == k)
    }
}

/// Why a journal operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum JournalError {
    /// The key is journalled already with a different command: a new command needs a new key.
    KeyReused(IdempotencyKey),
    /// No entry has this key.
    UnknownKey(IdempotencyKey),
    /// A different final result is already recorded for this key; the journal keeps the first
    /// and reports the conflict (a terminal that answers one key twice differently is broken or
    /// forged).
    ConflictingResult(IdempotencyKey),
    /// An offline outcome for a key whose recorded result is not a payment approved offline, or
    /// names another transaction or terminal: not recorded.
    NotOffline(IdempotencyKey),
    /// A stored entry could not be read back.
    Corrupt {
        /// The entry's key, if readable.
        key: Option<IdempotencyKey>,
        /// What is wrong.
        reason: String,
    },
    /// The database was written by a newer posbridge.
    SchemaTooNew {
        /// Its schema version.
        found: i64,
        /// The newest this version reads.
        supported: i64,
    },
    /// The storage failed.
    Storage(String),
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyReused(k) => write!(
                f,
                "idempotency key {k} is already journalled for a different command: use a new key"
            ),
            Self::UnknownKey(k) => write!(f, "no journal entry for idempotency key {k}"),
            Self::ConflictingResult(k) => write!(
                f,
                "a different final result is already recorded for {k}; the first one is kept — check the terminal"
            ),
            Self::NotOffline(k) => write!(
                f,
                "an offline outcome for {k}, whose recorded result is not that payment approved offline: not recorded"
            ),
            Self::Corrupt { key, reason } => match key {
                Some(k) => write!(f, "journal entry {k} is damaged: {reason}"),
                None => write!(f, "a journal entry is damaged: {reason}"),
            },
            Self::SchemaTooNew { found, supported } => write!(
                f,
                "the journal's schema version {found} is newer than this posbridge reads ({supported}): update posbridge"
            ),
            Self::Storage(e) => write!(f, "journal storage failed: {e}"),
        }
    }
}

impl std::error::Error for JournalError {}

/// The journal. Every method that changes an entry is durable when it returns, except
/// [`mark_sent`](Self::mark_sent) and [`record_progress`](Self::record_progress), which an
/// implementation may write lazily (the SQLite journal does: they survive a crash of the app,
/// not necessarily one of the machine). Losing them is safe: an entry left at `Intent` or at an
/// earlier stage is resolved by recovery exactly as a sent one — by asking the terminal.
pub trait Journal: Send {
    /// Writes the intent of `request` to `terminal`, before it is sent. Its operator credential
    /// is not stored. Writing the same command again under its key changes nothing (a retry);
    /// another command under a used key is [`JournalError::KeyReused`].
    fn record_intent(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError>;

    /// The entry already journaled under `request`'s key, as it is; or, if there is none, the
    /// intent of `request` written (durably, as [`record_intent`](Self::record_intent) writes
    /// it) and `None`. One look-up for what a new command needs: whether its key was used.
    fn intent_or_entry(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<Option<Entry>, JournalError> {
        if let Some(existing) = self.get(&request.idempotency_key)? {
            return Ok(Some(existing));
        }
        self.record_intent(terminal, request, terminal_key, now)?;
        Ok(None)
    }

    /// Changes the entry for `key` with `change`, durably, all or nothing (the building block
    /// of the methods below; implementations provide it).
    fn update(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError>;

    /// [`update`](Self::update) for changes that need not be durable at once (the sent mark and
    /// progress): an implementation may write them without waiting for its storage. Durable, like
    /// `update`, unless overridden.
    fn update_lazily(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.update(key, change)
    }

    /// The command was handed to the terminal.
    fn mark_sent(&mut self, key: &IdempotencyKey, now: Timestamp) -> Result<(), JournalError> {
        self.update_lazily(key, &mut |e| {
            e.sent(now);
            Ok(())
        })
    }

    /// The terminal reported a stage.
    fn record_progress(
        &mut self,
        key: &IdempotencyKey,
        stage: ProgressStage,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        self.update_lazily(key, &mut |e| {
            e.progress(stage, now);
            Ok(())
        })
    }

    /// The command was refused — before it was sent, or by the terminal before it started:
    /// final, nothing happened. A command with a recorded result is left as it is.
    fn mark_rejected(
        &mut self,
        key: &IdempotencyKey,
        why: &str,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        self.update(key, &mut |e| {
            e.rejected(why, now);
            Ok(())
        })
    }

    /// The answer did not come: the outcome is in doubt until resolved.
    fn mark_in_doubt(
        &mut self,
        key: &IdempotencyKey,
        why: &str,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        self.update(key, &mut |e| {
            e.in_doubt(why, now);
            Ok(())
        })
    }

    /// Records the final result (from the answer or from a status query). Recording the same
    /// result again changes nothing; a different one is [`JournalError::ConflictingResult`].
    fn record_result(
        &mut self,
        result: &TransactionResult,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        self.update(&result.idempotency_key, &mut |e| {
            e.done(result, now).map(drop)
        })
    }

    /// Records the terminal's final outcome of a payment it approved offline (its signature
    /// checked by the caller): *confirmed* makes the entry [`Done`](EntryState::Done), *declined
    /// after the fact* makes it [`DeclinedAfter`](EntryState::DeclinedAfter); *pending* changes
    /// nothing. The same outcome again changes nothing; the other final outcome is
    /// [`JournalError::ConflictingResult`] (the first is kept); an outcome for a result that was
    /// not approved offline is [`JournalError::NotOffline`]. `Ok(true)` if the entry changed.
    fn record_offline_outcome(
        &mut self,
        outcome: &OfflineOutcome,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        let mut changed = false;
        self.update(&outcome.idempotency_key, &mut |e| {
            changed = e.offline_outcome(outcome, now)?;
            Ok(())
        })?;
        Ok(changed)
    }

    /// The entry for `key`.
    fn get(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError>;

    /// Keeps a settlement's result (a closed batch and its signed totals), durably. The same
    /// result again under its key changes nothing (a retried settlement); a different one is
    /// [`JournalError::ConflictingResult`] and the first is kept.
    fn record_settlement(
        &mut self,
        result: &SettlementResult,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError>;

    /// The settlements kept, oldest first; of one terminal when `terminal` is given.
    fn settlements(
        &self,
        terminal: Option<TerminalId>,
    ) -> Result<Vec<SettlementRecord>, JournalError>;

    /// The entries matching `query`, oldest first.
    fn query(&self, query: &Query) -> Result<Vec<Entry>, JournalError>;

    /// Every entry not final: what recovery must resolve, oldest first. The engine reads it
    /// before every money command, so implementations answer it from an index, not a scan.
    fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        self.query(&Query {
            states: Some(vec![
                EntryState::Intent,
                EntryState::Sent,
                EntryState::InDoubt,
            ]),
            ..Query::default()
        })
    }

    /// Every payment approved offline whose final outcome is not known yet, oldest first: what
    /// the engine asks the terminal about.
    fn offline_pending(&self) -> Result<Vec<Entry>, JournalError> {
        self.query(&Query {
            states: Some(vec![EntryState::OfflinePending]),
            ..Query::default()
        })
    }
}

/// The request as journalled: without the operator credential.
pub(crate) fn stored_request(request: &TransactionRequest) -> TransactionRequest {
    let mut r = request.clone();
    r.operator = None;
    r
}

/// Whether two requests ask for the same thing (request id, credential and timeout aside): a
/// retry under the same key must.
pub fn same_command(a: &TransactionRequest, b: &TransactionRequest) -> bool {
    let norm = |r: &TransactionRequest| {
        let mut r = r.clone();
        r.request_id = Default::default();
        r.operator = None;
        r.timeout_ms = None;
        r
    };
    norm(a) == norm(b)
}

/// Whether two results are the same final answer (the request id may differ: a repeat).
pub(crate) fn same_result(a: &TransactionResult, b: &TransactionResult) -> bool {
    let mut b = b.clone();
    b.request_id = a.request_id;
    *a == b
}

/// Whether two settlement results are the same one (a retried settlement has another request
/// id).
pub(crate) fn same_settlement(a: &SettlementResult, b: &SettlementResult) -> bool {
    let mut b = b.clone();
    b.request_id = a.request_id;
    *a == b
}

/// The changes every journal applies the same way.
impl Entry {
    pub(crate) fn new(
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Self {
        Self {
            terminal,
            request: stored_request(request),
            state: EntryState::Intent,
            stage: None,
            result: None,
            terminal_key,
            note: None,
            offline: None,
            created: now,
            updated: now,
        }
    }

    /// A retry of the intent: fine if it asks for the same thing.
    pub(crate) fn check_intent(&self, request: &TransactionRequest) -> Result<(), JournalError> {
        if same_command(&self.request, request) {
            Ok(())
        } else {
            Err(JournalError::KeyReused(request.idempotency_key))
        }
    }

    pub(crate) fn sent(&mut self, now: Timestamp) {
        if self.state.needs_recovery() {
            self.state = EntryState::Sent;
            self.note = None;
            self.updated = now;
        }
    }

    pub(crate) fn progress(&mut self, stage: ProgressStage, now: Timestamp) {
        if self.state.needs_recovery() {
            self.stage = Some(stage);
            self.updated = now;
        }
    }

    pub(crate) fn rejected(&mut self, why: &str, now: Timestamp) {
        if !self.state.has_result() {
            self.state = EntryState::Rejected;
            self.note = Some(why.to_string());
            self.updated = now;
        }
    }

    pub(crate) fn in_doubt(&mut self, why: &str, now: Timestamp) {
        if self.state.needs_recovery() {
            self.state = EntryState::InDoubt;
            self.note = Some(why.to_string());
            self.updated = now;
        }
    }

    /// Records the result; `Ok(false)` if the same one was there already.
    pub(crate) fn done(
        &mut self,
        result: &TransactionResult,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        match &self.result {
            Some(first) if same_result(first, result) => Ok(false),
            Some(_) => Err(JournalError::ConflictingResult(result.idempotency_key)),
            None => {
                self.result = Some(result.clone());
                // Approved offline: counted, but the acquirer has the last word.
                self.state = if result.offline && result.outcome.is_approved() {
                    EntryState::OfflinePending
                } else {
                    EntryState::Done
                };
                self.note = None;
                self.updated = now;
                Ok(true)
            }
        }
    }

    /// Records an offline payment's final outcome; `Ok(false)` if nothing changed.
    pub(crate) fn offline_outcome(
        &mut self,
        outcome: &OfflineOutcome,
        now: Timestamp,
    ) -> Result<bool, JournalError> {
        let key = outcome.idempotency_key;
        let ours = self.result.as_ref().is_some_and(|r| {
            r.offline
                && r.outcome.is_approved()
                && r.transaction_id == outcome.transaction_id
                && r.terminal_id == outcome.terminal_id
        });
        if !ours {
            return Err(JournalError::NotOffline(key));
        }
        match (&self.offline, outcome.state) {
            (_, OfflineState::Pending) => Ok(false),
            (Some(first), state) if first.state == state => Ok(false),
            (Some(_), _) => Err(JournalError::ConflictingResult(key)),
            (None, OfflineState::Confirmed) => {
                self.state = EntryState::Done;
                self.offline = Some(outcome.clone());
                self.updated = now;
                Ok(true)
            }
            (None, OfflineState::Declined(reason)) => {
                self.state = EntryState::DeclinedAfter;
                self.offline = Some(outcome.clone());
                self.note = Some(format!(
                    "approved offline, then declined by the issuer after the fact (reason {}): not charged",
                    reason.0
                ));
                self.updated = now;
                Ok(true)
            }
            // A state of a later protocol: not understood, so nothing changes.
            (None, _) => Ok(false),
        }
    }
}

/// The stored bytes of `message`, which belongs to the entry (or settlement) `key`; `what` names
/// it in the error.
fn encode(message: Message, key: IdempotencyKey, what: &str) -> Result<Vec<u8>, JournalError> {
    message
        .to_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| JournalError::Corrupt {
            key: Some(key),
            reason: format!("{what} cannot be encoded: {e}"),
        })
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn encode_request(r: &TransactionRequest) -> Result<Vec<u8>, JournalError> {
    encode(
        Message::Transaction(r.clone()),
        r.idempotency_key,
        "request",
    )
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn encode_settlement(r: &SettlementResult) -> Result<Vec<u8>, JournalError> {
    encode(
        Message::SettlementResult(r.clone()),
        r.idempotency_key,
        "settlement",
    )
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn encode_offline(o: &OfflineOutcome) -> Result<Vec<u8>, JournalError> {
    encode(
        Message::OfflineOutcome(o.clone()),
        o.idempotency_key,
        "offline outcome",
    )
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn encode_result(r: &TransactionResult) -> Result<Vec<u8>, JournalError> {
    encode(
        Message::TransactionResult(r.clone()),
        r.idempotency_key,
        "result",
    )
}

/// One change waiting in the outbox, with its sequence number (per journal, increasing, never
/// reused). The fields are the journal's bytes as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Its sequence number.
    pub seq: u64,
    /// What changed.
    pub item: OutboxItem,
}

/// What an outbox record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxItem {
    /// An entry as it was after the change.
    Entry {
        /// The idempotency key (16 bytes).
        key: Vec<u8>,
        /// The terminal's id (16 bytes).
        terminal: Vec<u8>,
        /// The state's name ([`EntryState::as_str`]).
        state: String,
        /// The request, an encoded native-protocol message.
        request: Vec<u8>,
        /// The result, an encoded native-protocol message, once there is one.
        result: Option<Vec<u8>>,
        /// The terminal's signing key (32 bytes).
        terminal_key: Option<Vec<u8>>,
        /// Why it is in doubt or was refused.
        note: Option<String>,
        /// When the intent was written (ms since 1970).
        created: u64,
        /// When it changed (ms since 1970).
        updated: u64,
    },
    /// A settlement kept.
    Settlement {
        /// Its idempotency key (16 bytes).
        key: Vec<u8>,
        /// The terminal's id (16 bytes).
        terminal: Vec<u8>,
        /// The settlement's result, an encoded native-protocol message.
        result: Vec<u8>,
        /// The terminal's signing key (32 bytes).
        terminal_key: Option<Vec<u8>>,
        /// When it was journaled (ms since 1970).
        recorded: u64,
    },
}

/// What waits to be shipped (`SqliteJournal::outbox_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxStatus {
    /// The highest sequence number the receiver committed.
    pub shipped: u64,
    /// The latest sequence number made.
    pub last: u64,
    /// How many changes wait.
    pub unshipped: u64,
    /// When the oldest waiting change was made.
    pub oldest_unshipped: Option<Timestamp>,
    /// When the oldest waiting approved payment was recorded: the figure to warn on, since
    /// an approved payment the back office has not seen is money it cannot account for.
    pub oldest_unshipped_approved: Option<Timestamp>,
}
