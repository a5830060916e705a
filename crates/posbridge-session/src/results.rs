//! The terminal's memory of idempotency keys: which money commands it has seen, with their final
//! signed results, so that a repeated key gets the original answer instead of a second payment.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use posbridge_wire::{IdempotencyKey, RequestId, TransactionRequest, TransactionResult};

/// What the terminal remembers about one idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The command as first received, normalised (request id, operator credential and timeout
    /// cleared): a repeat must ask for exactly the same thing.
    pub request: TransactionRequest,
    /// The final result, once there is one; `None` while the command runs.
    pub result: Option<TransactionResult>,
}

impl KeyRecord {
    /// The record of a command that has just started.
    pub fn started(request: &TransactionRequest) -> Self {
        Self {
            request: normalise(request),
            result: None,
        }
    }

    /// Whether `request` asks for the same thing as the recorded one.
    pub fn same_command(&self, request: &TransactionRequest) -> bool {
        self.request == normalise(request)
    }
}

/// The request with what may differ between an original and its retry cleared.
pub fn normalise(request: &TransactionRequest) -> TransactionRequest {
    let mut r = request.clone();
    r.request_id = RequestId::default();
    r.operator = None;
    r.timeout_ms = None;
    r
}

/// What a terminal does with a money command, from what its store holds of the command's key:
/// the one rule every session of the native protocol applies ([`key_decision`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyDecision {
    /// The key is not known: check the command, then claim the key ([`ResultStore::claim`])
    /// and start it.
    New,
    /// The key was used for a different command: refused (`KEY_REUSED`), nothing started.
    Reused,
    /// The command finished: its recorded result is the answer, nothing starts again.
    Answer(Box<TransactionResult>),
    /// The command runs (claimed, no result yet): joined — its result goes to whoever asks
    /// now — never started a second time.
    Running,
}

/// What a terminal does with `request`, whose key its store holds as `record` (or not at all).
/// Pure, so that the model checker (`posbridge-model`) runs the same rule as the sessions.
pub fn key_decision(record: Option<&KeyRecord>, request: &TransactionRequest) -> KeyDecision {
    let Some(record) = record else {
        return KeyDecision::New;
    };
    if !record.same_command(request) {
        return KeyDecision::Reused;
    }
    match &record.result {
        Some(result) => KeyDecision::Answer(Box::new(result.clone())),
        None if crate::mutations::on(crate::mutations::Mutation::RunningKeyAsNew) => {
            KeyDecision::New
        }
        None => KeyDecision::Running,
    }
}

/// What [`ResultStore::claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now this command's: start it.
    Claimed,
    /// The key was known already (another session claimed it first, or it finished): its
    /// record, unchanged.
    Existing(Box<KeyRecord>),
}

/// What [`ResultStore::complete`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The result was recorded: it is the key's final result.
    Recorded,
    /// A result was recorded before: that one stands (returned), the new one is dropped.
    AlreadyDone(Box<TransactionResult>),
    /// No command was ever claimed under the key.
    Unknown,
}

/// Where the terminal keeps idempotency keys and their results. Implementations persist every
/// `save` before returning (the simulator keeps them in a file; a real terminal in its
/// transaction log), and may forget the oldest keys beyond a bound — never a key whose command
/// is still running.
///
/// Sessions decide with [`claim`](Self::claim) and [`complete`](Self::complete), never with a
/// `load` followed by a `save`: each is one call on the store, made under the one lock every
/// session of the terminal shares ([`SharedResults`]), so two sessions receiving the same key at
/// the same moment cannot both start it, and a key cannot end with two different results. An
/// implementation backed by a database may override both with its own atomic operations
/// (an insert that fails on a present key; an update conditional on no result).
pub trait ResultStore: Send {
    /// The record of `key`, if known.
    fn load(&self, key: &IdempotencyKey) -> Option<KeyRecord>;
    /// Stores the record of `key`, replacing what was there; durable when it returns `Ok`.
    fn save(&mut self, key: IdempotencyKey, record: KeyRecord) -> std::io::Result<()>;

    /// Claims `request`'s key if no record has it, as one step: [`Claim::Claimed`] (the started
    /// record is durable) or the record that was there.
    fn claim(&mut self, request: &TransactionRequest) -> std::io::Result<Claim> {
        if crate::mutations::on(crate::mutations::Mutation::ClaimNotAtomic) {
            // The mutation: the caller's earlier look at the key is trusted, the claim does not
            // look again.
            self.save(request.idempotency_key, KeyRecord::started(request))?;
            return Ok(Claim::Claimed);
        }
        if let Some(existing) = self.load(&request.idempotency_key) {
            return Ok(Claim::Existing(Box::new(existing)));
        }
        self.save(request.idempotency_key, KeyRecord::started(request))?;
        Ok(Claim::Claimed)
    }

    /// Records `result` as its key's final result unless one is recorded already, as one step.
    fn complete(&mut self, result: &TransactionResult) -> std::io::Result<Completion> {
        let key = result.idempotency_key;
        let Some(mut record) = self.load(&key) else {
            return Ok(Completion::Unknown);
        };
        if let Some(first) = record.result {
            return Ok(Completion::AlreadyDone(Box::new(first)));
        }
        record.result = Some(result.clone());
        self.save(key, record)?;
        Ok(Completion::Recorded)
    }
}

/// A store shared by all sessions of one terminal.
pub type SharedResults = Arc<Mutex<dyn ResultStore>>;

/// A bounded in-memory store: it forgets the oldest finished keys beyond its capacity.
#[derive(Debug)]
pub struct MemoryResultStore {
    capacity: usize,
    records: HashMap<IdempotencyKey, KeyRecord>,
    order: VecDeque<IdempotencyKey>,
}

impl MemoryResultStore {
    /// A store remembering up to `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            records: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// A store ready to share between sessions.
    pub fn shared(capacity: usize) -> SharedResults {
        Arc::new(Mutex::new(Self::new(capacity)))
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl ResultStore for MemoryResultStore {
    fn load(&self, key: &IdempotencyKey) -> Option<KeyRecord> {
        self.records.get(key).cloned()
    }

    fn save(&mut self, key: IdempotencyKey, record: KeyRecord) -> std::io::Result<()> {
        if self.records.insert(key, record).is_none() {
            self.order.push_back(key);
        }
        // Forget the oldest finished keys; a running one is kept however old.
        let mut scanned = 0;
        while self.records.len() > self.capacity && scanned < self.order.len() {
            let oldest = self.order.pop_front().expect("order tracks records");
            if self
                .records
                .get(&oldest)
                .is_some_and(|r| r.result.is_none())
            {
                self.order.push_back(oldest);
                scanned += 1;
            } else {
                self.records.remove(&oldest);
            }
        }
        Ok(())
    }
}
