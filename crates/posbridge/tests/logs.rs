//! Observability: spans per connection and per transaction carry the ids that matter; nothing
//! PCI-sensitive or secret (card numbers, PINs, keys) ever reaches the logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Credential, Currency, IdempotencyKey, OperatorAuth, OperatorSecret, Timestamp,
    TransactionCommand, TransactionRequest,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn spans_carry_ids_and_logs_carry_no_card_data_or_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let till = Arc::new(LocalIdentity::generate(PeerId([2; 16]), "till").unwrap());
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let terminal = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim").unwrap());
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: till.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    let ctx = TerminalContext::new(terminal.clone(), registry, profile.capabilities(), 100);
    ctx.operators
        .lock()
        .unwrap()
        .add_pin("manager", "8642")
        .unwrap();
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), ctx, driver::now());
    let mut sim = Simulator::new(
        profile,
        terminal.clone(),
        driver::now(),
        Timestamp(1_764_000_000_000),
    );
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let client = NativeClient::connect(
        ours,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: till,
            security: ClientSecurity::Paired {
                terminal_key: terminal.channel().public(),
            },
            hello: hello(),
            timeout: Duration::from_secs(10),
        },
    )
    .await
    .unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(terminal.signing().public_key())),
        MemoryJournal::new(),
    );
    let sale = payments
        .transaction(
            IdempotencyKey::from_u128(0xABCD),
            TransactionCommand::Sale {
                amount: Amount::new(1250, Currency::EUR),
                tip: None,
                cashback: None,
            },
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let mut refund = TransactionRequest::new(
        Default::default(),
        IdempotencyKey::from_u128(0xABCE),
        TransactionCommand::Refund {
            amount: Amount::new(500, Currency::EUR),
            original: None,
        },
    );
    refund.operator = Some(OperatorAuth {
        operator_id: "manager".into(),
        credential: Credential::Pin(OperatorSecret::new("8642").unwrap()),
    });
    payments.run(refund, Duration::from_secs(30)).await.unwrap();
    let (client, _) = payments.into_parts();
    client.close().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The spans and what they carry.
    assert!(logs.contains("connected"), "{logs}");
    assert!(
        logs.contains("transaction{key=0000000000000000000000000000abcd kind=Sale amount=1250"),
        "{logs}"
    );
    assert!(logs.contains("result recorded"), "{logs}");
    assert!(logs.contains(&sale.transaction_id.to_string()), "{logs}");
    // Nothing sensitive.
    let pan = sale.pan.unwrap().to_string();
    for secret in ["8642", pan.as_str(), "411111", "1111"] {
        assert!(
            !logs.contains(secret),
            "{secret:?} appears in the logs:\n{logs}"
        );
    }
    let key_hex: String = terminal
        .signing()
        .to_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!logs.contains(&key_hex));
}
