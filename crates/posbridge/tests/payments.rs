//! Journaled payments against the simulator: the journal knows every command before it leaves,
//! in-doubt sales are recovered by status query after the link dies or the app restarts, and
//! nothing is charged twice.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal, SqliteJournal};
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, PaymentError, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, CapabilityError, Currency, IdempotencyKey, Outcome, Timestamp, TransactionCommand,
    TransactionRequest,
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
        NativeAdapter::new(client, signing_key()),
        SqliteJournal::open_in_memory().unwrap(),
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
            PaymentError::Invalid(CapabilityError::AmountOutOfRange { .. })
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
    let payments = Payments::new(
        NativeAdapter::new(client, signing_key()),
        MemoryJournal::new(),
    );
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
    let payments = Payments::new(
        NativeAdapter::new(client, signing_key()),
        std::mem::take(&mut journal),
    );
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
async fn an_intent_that_never_left_is_not_taken_by_recovery_but_sent_when_the_app_asks() {
    let ctx = terminal_context();
    // The app wrote two intents and crashed before sending either.
    let mut journal = MemoryJournal::new();
    let terminal = ctx.settings.lock().unwrap().capabilities.terminal_id;
    let (gone, asked) = (IdempotencyKey::from_u128(20), IdempotencyKey::from_u128(21));
    for (key, minor) in [(gone, 1800), (asked, 1900)] {
        journal
            .record_intent(
                terminal,
                &TransactionRequest::new(Default::default(), key, sale(minor)),
                signing_key(),
                Timestamp(5),
            )
            .unwrap();
    }
    let (client, _served) = connect(&ctx, simulator(Latency::INSTANT)).await;
    let payments = Payments::new(NativeAdapter::new(client, signing_key()), journal);
    // The app asks again for one of them: the terminal never saw it, so it is sent now.
    let r = payments.resume(asked, None, CALL).await.unwrap();
    assert_eq!(r.amount.minor, 1900);
    assert_eq!(
        payments.journal().get(&asked).unwrap().unwrap().state,
        EntryState::Done
    );
    // Recovery on its own does not send the other one minutes or days later: not taken.
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.not_taken, vec![gone], "{report:?}");
    let entry = payments.journal().get(&gone).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Rejected);
    assert!(entry.note.unwrap().contains("not taken"));
    let status = payments
        .adapter()
        .client()
        .status(gone, CALL)
        .await
        .unwrap();
    assert_eq!(
        status,
        posbridge_wire::TransactionStatus::NotFound,
        "never charged"
    );
}
