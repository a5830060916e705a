//! Journaled payments against the simulator: the journal knows every command before it leaves,
//! in-doubt sales are recovered by status query after the link dies or the app restarts, and
//! nothing is charged twice.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal, SqliteJournal};
use posbridge::{ConnectOptions, NativeClient, PaymentError, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, RequestError, SessionConfig, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Outcome, Timestamp, TransactionCommand, TransactionRequest,
};

const CALL: Duration = Duration::from_secs(90);

fn client_identity() -> Arc<LocalIdentity> {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(LocalIdentity::generate(PeerId([2; 16]), "Till 1").unwrap()))
        .clone()
}

fn terminal_identity() -> Arc<LocalIdentity> {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| {
        Arc::new(
            LocalIdentity::generate(TerminalProfile::default().terminal_id.into(), "sim").unwrap(),
        )
    })
    .clone()
}

/// The terminal: its context survives connections (as a real terminal's memory does).
fn terminal_context() -> TerminalContext {
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: client_identity().public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    TerminalContext::new(
        terminal_identity(),
        registry,
        TerminalProfile::default().capabilities(),
        100,
    )
}

/// Connects a new client to the terminal through a new link, with a simulator behind it.
async fn connect(
    ctx: &TerminalContext,
    sim: Simulator,
) -> (NativeClient, tokio::task::JoinHandle<()>) {
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now());
    let served = tokio::spawn(async move {
        let mut sim = sim;
        driver::serve_terminal(session, theirs, &mut sim).await;
    });
    let client = NativeClient::connect(
        ours,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: client_identity(),
            security: ClientSecurity::Paired {
                terminal_key: terminal_identity().channel().public(),
            },
            hello: hello(),
            timeout: Duration::from_secs(30),
        },
    )
    .await
    .unwrap();
    (client, served)
}

fn simulator(latency: Latency) -> Simulator {
    Simulator::new(
        TerminalProfile {
            latency,
            ..TerminalProfile::default()
        },
        terminal_identity(),
        driver::now(),
        Timestamp(1_764_000_000_000),
    )
}

fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

fn signing_key() -> Option<posbridge_crypto::PublicKey> {
    Some(terminal_identity().signing().public_key())
}

#[tokio::test(start_paused = true)]
async fn a_sale_is_journaled_before_it_is_sent_and_recorded_verified() {
    let ctx = terminal_context();
    let (client, _served) = connect(&ctx, simulator(Latency::INSTANT)).await;
    let payments = Payments::new(
        client,
        SqliteJournal::open_in_memory().unwrap(),
        signing_key(),
    );
    let r = payments
        .transaction(IdempotencyKey::from_u128(1), sale(1250), CALL)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    let entry = payments
        .journal()
        .get(&IdempotencyKey::from_u128(1))
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(entry.result.unwrap().transaction_id, r.transaction_id);
    // A declined card is a final result too.
    let d = payments
        .transaction(IdempotencyKey::from_u128(2), sale(1251), CALL)
        .await
        .unwrap();
    assert!(matches!(d.outcome, Outcome::Declined(_)));
    // Refused before sending: journaled as nothing at all.
    let err = payments
        .transaction(IdempotencyKey::from_u128(3), sale(999_999_999), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PaymentError::Request(RequestError::AmountOutOfRange { .. })
        ),
        "{err}"
    );
    assert!(
        payments
            .journal()
            .get(&IdempotencyKey::from_u128(3))
            .unwrap()
            .is_none()
    );
    assert!(payments.journal().unresolved().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_sale_lost_with_the_link_is_recovered_without_a_second_charge() {
    let ctx = terminal_context();
    let (client, served) = connect(&ctx, simulator(Latency::default())).await;
    let payments = Payments::new(client, MemoryJournal::new(), signing_key());
    let key = IdempotencyKey::from_u128(10);
    let sale_task = async { payments.transaction(key, sale(4200), CALL).await };
    let kill = async {
        // The card is being read when the link dies.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        served.abort();
    };
    let (result, ()) = tokio::join!(sale_task, kill);
    assert!(
        matches!(result, Err(PaymentError::InDoubt(_))),
        "{result:?}"
    );
    let (_, mut journal) = payments.into_parts();
    assert_eq!(
        journal.get(&key).unwrap().unwrap().state,
        EntryState::InDoubt
    );

    // The terminal's session and simulator went with the link, so the command stays "running"
    // in the terminal's memory. Recovery asks again with the same key: the new simulator, not
    // knowing the command, fails it — nothing was charged, and the journal records that.
    let (client, _served) = connect(&ctx, simulator(Latency::INSTANT)).await;
    let payments = Payments::new(client, std::mem::take(&mut journal), signing_key());
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.awaited, vec![key], "{report:?}");
    let entry = payments.journal().get(&key).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(
        entry.result.unwrap().outcome,
        Outcome::Failed(posbridge_wire::ErrorCode::INTERNAL)
    );
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report, posbridge::RecoveryReport::default(), "nothing left");
}

#[tokio::test(start_paused = true)]
async fn an_intent_that_never_left_is_sent_again_by_recovery() {
    let ctx = terminal_context();
    // The app wrote the intent and crashed before sending.
    let mut journal = MemoryJournal::new();
    let key = IdempotencyKey::from_u128(20);
    journal
        .record_intent(
            ctx.settings.lock().unwrap().capabilities.terminal_id,
            &TransactionRequest::new(Default::default(), key, sale(1800)),
            signing_key(),
            Timestamp(5),
        )
        .unwrap();
    let (client, _served) = connect(&ctx, simulator(Latency::INSTANT)).await;
    let payments = Payments::new(client, journal, signing_key());
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.resent, vec![key], "{report:?}");
    let entry = payments.journal().get(&key).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(entry.result.unwrap().amount.minor, 1800);
}
