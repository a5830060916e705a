//! A terminal that restarts keeps its idempotency keys: a repeated key gets the original result
//! and is not charged again; a torn last write is dropped, damage is reported.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_session::harness::{Pair, hello};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, PairingRegistry, ResultStore, SessionConfig,
    TerminalContext, TerminalSession,
};
use posbridge_sim::{FileResultStore, Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Message, RequestId, Timestamp, TransactionCommand,
    TransactionRequest, TransactionResult,
};

fn ids() -> &'static (Arc<LocalIdentity>, Arc<LocalIdentity>) {
    static IDS: OnceLock<(Arc<LocalIdentity>, Arc<LocalIdentity>)> = OnceLock::new();
    IDS.get_or_init(|| {
        (
            Arc::new(LocalIdentity::generate(PeerId([2; 16]), "till").unwrap()),
            Arc::new(
                LocalIdentity::generate(TerminalProfile::default().terminal_id.into(), "sim")
                    .unwrap(),
            ),
        )
    })
}

/// A terminal (fresh simulator, the result store at `path`) and a connected till.
fn terminal_with_store(
    path: &std::path::Path,
    wall: Timestamp,
) -> (Pair, Arc<Mutex<FileResultStore>>) {
    let (till, terminal) = ids();
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: till.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    let mut ctx = TerminalContext::new(terminal.clone(), registry, profile.capabilities(), 100);
    let store = Arc::new(Mutex::new(FileResultStore::open(path, 100).unwrap()));
    ctx.results = store.clone();
    let start = Instant::now();
    let client = ClientSession::new(
        SessionConfig::default(),
        till.clone(),
        ClientSecurity::Paired {
            terminal_key: terminal.channel().public(),
        },
        hello(),
        start,
    );
    let session = TerminalSession::new(SessionConfig::default(), ctx, start);
    let mut pair = Pair::new(client, session, start, 1);
    pair.set_app(Simulator::new(profile, terminal.clone(), start, wall));
    pair.drive();
    assert!(pair.client.is_ready());
    (pair, store)
}

fn sell(pair: &mut Pair, key: u128) -> TransactionResult {
    let now = pair.now;
    let id = pair
        .client
        .request(
            Message::Transaction(TransactionRequest::new(
                RequestId::default(),
                IdempotencyKey::from_u128(key),
                TransactionCommand::Sale {
                    amount: Amount::new(4200, Currency::EUR),
                    tip: None,
                    cashback: None,
                },
            )),
            now + Duration::from_secs(60),
            now,
        )
        .unwrap();
    pair.drive();
    pair.client_events()
        .iter()
        .find_map(|e| match e {
            ClientEvent::Response {
                request_id,
                message: Message::TransactionResult(r),
            } if *request_id == id => Some(r.clone()),
            _ => None,
        })
        .expect("a result")
}

#[test]
fn a_restarted_terminal_answers_a_repeated_key_with_the_original_result() {
    let path = std::env::temp_dir().join(format!("posbridge-results-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (mut pair, _) = terminal_with_store(&path, Timestamp(1_764_000_000_000));
    let first = sell(&mut pair, 7);
    drop(pair);

    // The terminal restarts: a new simulator (a new batch), the store reopened from its file.
    let (mut pair, store) = terminal_with_store(&path, Timestamp(1_764_000_060_000));
    assert!(
        store
            .lock()
            .unwrap()
            .load(&IdempotencyKey::from_u128(7))
            .is_some()
    );
    let again = sell(&mut pair, 7);
    assert_eq!(again.transaction_id, first.transaction_id);
    assert_eq!(again.signature, first.signature);
    // A new key is a new sale.
    let other = sell(&mut pair, 8);
    assert_ne!(other.transaction_id, first.transaction_id);
    drop(pair);

    // A torn last write (a crash mid-append) is dropped on open; the whole entries survive.
    let whole = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0, 0, 1, 0, 0xAA])
        .unwrap();
    let store = FileResultStore::open(&path, 100).unwrap();
    assert!(store.load(&IdempotencyKey::from_u128(8)).is_some());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "cut back");
    drop(store);

    // Damage inside a whole entry is an error, not silently forgotten keys.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();
    let err = FileResultStore::open(&path, 100).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    std::fs::remove_file(&path).unwrap();
}
