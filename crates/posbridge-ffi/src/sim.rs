//! The embedded simulator (feature `sim`): posbridge's simulated terminal served on 127.0.0.1
//! inside the app's process, with pairing open and an operator `manager` (PIN 2468).

use std::sync::Arc;
use std::time::Duration;

use posbridge_api::FaultPoint;
use posbridge_sim::embedded::EmbeddedTerminal;
use posbridge_sim::{Fault, FaultAction, Latency, TerminalProfile};

use crate::{PosError, failed, on_runtime};

/// A simulated terminal in this process.
#[derive(uniffi::Object)]
pub struct Simulator {
    terminal: EmbeddedTerminal,
    address: String,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("address", &self.address)
            .finish()
    }
}

/// Starts a simulated terminal; `card_delay_ms` is how long the simulated customer takes to
/// present a card (0: at once).
#[uniffi::export]
pub async fn start_simulator(card_delay_ms: u64) -> Result<Arc<Simulator>, PosError> {
    on_runtime(async move {
        let profile = TerminalProfile {
            latency: Latency {
                card: Duration::from_millis(card_delay_ms),
                ..Latency::INSTANT
            },
            ..TerminalProfile::default()
        };
        let terminal = EmbeddedTerminal::new(profile, &[("manager", "2468")]).map_err(failed)?;
        let address = terminal.listen().await.map_err(failed)?;
        Ok(Arc::new(Simulator { terminal, address }))
    })
    .await
}

#[uniffi::export]
impl Simulator {
    /// Where it listens (`127.0.0.1:PORT`).
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The pairing code its "screen" shows.
    pub fn pairing_code(&self) -> String {
        self.terminal.code.clone()
    }

    /// The next `times` payments are taken and their answers lost: the connection drops once
    /// the outcome is decided (the case recovery exists for).
    pub fn drop_answers(&self, times: u32) {
        self.terminal.set_faults(vec![Fault {
            at: FaultPoint::BeforeResult,
            action: FaultAction::Drop,
            times,
        }]);
    }

    /// How many transactions its open batch holds (each charge once).
    pub fn transactions(&self) -> u64 {
        self.terminal.simulator().lock().transactions().count() as u64
    }
}
