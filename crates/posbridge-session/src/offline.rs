//! Payments approved offline (protocol 1.1): the final outcomes a terminal learns when it
//! forwards them, shared by its sessions — pushed to every 1.1 client, and answered on demand.

use std::sync::{Arc, Mutex};

use posbridge_wire::{IdempotencyKey, OfflineOutcome};

/// The final outcomes of a terminal's offline payments, in the order it learnt them. The
/// terminal's app records each once, signed; sessions push those recorded after they connected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineOutcomes {
    outcomes: Vec<OfflineOutcome>,
}

/// Outcomes shared by a terminal's sessions.
pub type SharedOutcomes = Arc<Mutex<OfflineOutcomes>>;

impl OfflineOutcomes {
    /// None yet, shared.
    pub fn shared() -> SharedOutcomes {
        Arc::new(Mutex::new(Self::default()))
    }

    /// Records the final outcome of an offline payment (signed by the terminal, without a
    /// request id). A key's first final outcome stands: `false` if it had one.
    pub fn record(&mut self, mut outcome: OfflineOutcome) -> bool {
        if self.get(&outcome.idempotency_key).is_some() {
            return false;
        }
        outcome.request_id = None;
        self.outcomes.push(outcome);
        true
    }

    /// The final outcome under `key`, if the terminal has learnt it.
    pub fn get(&self, key: &IdempotencyKey) -> Option<&OfflineOutcome> {
        self.outcomes.iter().find(|o| o.idempotency_key == *key)
    }

    /// How many were recorded.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Those recorded after the first `seen`.
    pub(crate) fn since(&self, seen: usize) -> &[OfflineOutcome] {
        self.outcomes.get(seen..).unwrap_or(&[])
    }
}
