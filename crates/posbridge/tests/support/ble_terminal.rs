//! A simulated terminal on 127.0.0.1 for the BLE sale tests (a NUS peripheral bridges each BLE
//! connection to one TCP connection here), and the till's side: connect over BLE, pair or use
//! the stored key, sell.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use posbridge::ble::{BleCentral, BleConfig};
use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, Payments, driver};
use posbridge_crypto::{
    LocalIdentity, PairingConfig, PairingRecord, PairingSecret, PeerId, verify_result,
};
use posbridge_link::Link;
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome, Timestamp, TransactionCommand};

pub const CALL: Duration = Duration::from_secs(60);

/// Starts the simulator on `address` (`127.0.0.1:0` for any port) with pairing open; returns
/// the pairing code and the port.
pub async fn start_terminal(address: &str) -> (String, u16) {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let keys = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim").unwrap());
    let context = TerminalContext::new(
        keys.clone(),
        PairingRegistry::new(),
        profile.capabilities(),
        1000,
    );
    let code = context
        .registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), driver::now())
        .unwrap()
        .to_string();
    let listener = posbridge::tcp::Listener::bind(address).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = SharedApp::new(Simulator::new(
        profile,
        keys,
        driver::now(),
        Timestamp(1_764_000_000_000),
    ));
    tokio::spawn(async move {
        while let Ok(link) = listener.accept().await {
            let session =
                TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
            let mut app = app.clone();
            tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
        }
    });
    (code, port)
}

pub fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

/// The till.
pub struct Till {
    pub identity: Arc<LocalIdentity>,
    pub record: Option<PairingRecord>,
}

impl Till {
    pub fn new() -> Self {
        Self {
            identity: Arc::new(
                LocalIdentity::generate(PeerId::random().unwrap(), "BLE till").unwrap(),
            ),
            record: None,
        }
    }

    /// Connects to the BLE peripheral at `address`, pairing with `code` the first time and
    /// with the stored key after that; checks the chunk size if given.
    pub async fn connect(
        &mut self,
        central: &BleCentral,
        address: &str,
        code: &str,
        chunk: Option<usize>,
        journal: MemoryJournal,
    ) -> Payments<MemoryJournal> {
        let link = central
            .connect(address, BleConfig::default(), Duration::from_secs(30))
            .await
            .expect("BLE connect");
        if let Some(c) = chunk {
            assert_eq!(link.info().mtu, c, "chunk size");
        }
        let security = match &self.record {
            None => ClientSecurity::Pair(PairingSecret::code(code).unwrap()),
            Some(r) => ClientSecurity::Paired {
                terminal_key: r.peer.channel_key,
            },
        };
        let options = ConnectOptions {
            session: SessionConfig::default(),
            identity: self.identity.clone(),
            security,
            hello: hello(),
            timeout: Duration::from_secs(30),
        };
        let client = NativeClient::connect(link, options)
            .await
            .expect("secure session over BLE");
        if let Some(r) = client.paired() {
            self.record = Some(r.clone());
        }
        let key = self.record.as_ref().expect("paired").peer.signing_key;
        Payments::new(NativeAdapter::new(client, Some(key)), journal)
    }

    /// A sale that must be approved, signed by the paired terminal and journaled as done.
    pub async fn approved_sale(&self, payments: &Payments<MemoryJournal>, key: u128, minor: u64) {
        let key = IdempotencyKey::from_u128(key);
        let result = payments
            .transaction(key, sale(minor), CALL)
            .await
            .expect("sale over BLE");
        assert_eq!(result.outcome, Outcome::Approved);
        assert_eq!(result.approved_minor, minor);
        verify_result(&self.record.as_ref().unwrap().peer.signing_key, &result)
            .expect("signed by the paired terminal");
        assert_eq!(
            payments.journal().get(&key).unwrap().unwrap().state,
            EntryState::Done
        );
    }
}
