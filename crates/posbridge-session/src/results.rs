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

/// Where the terminal keeps idempotency keys and their results. Implementations persist every
/// `save` before returning (the simulator keeps them in a file; a real terminal in its
/// transaction log), and may forget the oldest keys beyond a bound — never a key whose command
/// is still running.
pub trait ResultStore: Send {
    /// The record of `key`, if known.
    fn load(&self, key: &IdempotencyKey) -> Option<KeyRecord>;
    /// Stores the record of `key`, replacing what was there; durable when it returns `Ok`.
    fn save(&mut self, key: IdempotencyKey, record: KeyRecord) -> std::io::Result<()>;
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
