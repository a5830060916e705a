//! The native client under tokio against the simulator behind `driver::serve_terminal`, over
//! in-memory links (clean and faulty), on tokio's paused clock.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use posbridge::{ClientError, ConnectOptions, NativeClient, driver};
use posbridge_crypto::{
    LocalIdentity, PairingConfig, PairingError, PairingRecord, PairingSecret, PairingWindow,
    PeerId, Role, verify_result,
};
use posbridge_link::{Delivery, FaultConfig, FaultInjector, Faults, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientEvent, ClientSecurity, CloseReason, PairingRegistry, RequestFailure, SessionConfig,
    SessionError, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, DeclineReason, IdempotencyKey, Message, Outcome, ProgressStage, RequestId,
    Timestamp, TransactionCommand, TransactionRequest, TransactionStatus,
};

const WALL: Timestamp = Timestamp(1_764_000_000_000);
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

fn paired(registry: &mut PairingRegistry) {
    registry.add(PairingRecord {
        peer: client_identity().public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
}

/// Starts a simulated terminal on one end of a link; returns the other end's options.
fn terminal(
    latency: Latency,
    registry: PairingRegistry,
    faults: Option<Faults>,
) -> (Box<dyn posbridge_link::Link>, TerminalContext) {
    let profile = TerminalProfile {
        latency,
        ..TerminalProfile::default()
    };
    let context = TerminalContext::new(terminal_identity(), registry, profile.capabilities(), 100);
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
    let mut sim = Simulator::new(profile, terminal_identity(), driver::now(), WALL);
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let link: Box<dyn posbridge_link::Link> = match faults {
        Some(f) => Box::new(FaultInjector::new(
            ours,
            FaultConfig {
                seed: std::env::var("POSBRIDGE_FAULT_SEED")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(7),
                send: f.clone(),
                recv: f,
                ..FaultConfig::default()
            },
        )),
        None => Box::new(ours),
    };
    (link, context)
}

fn options(security: ClientSecurity) -> ConnectOptions {
    ConnectOptions {
        session: SessionConfig::default(),
        identity: client_identity(),
        security,
        hello: hello(),
        timeout: Duration::from_secs(30),
    }
}

fn as_paired() -> ClientSecurity {
    ClientSecurity::Paired {
        terminal_key: terminal_identity().channel().public(),
    }
}

/// A sale of `minor` cents under idempotency key `key`, as a request message.
fn sale_message(key: u128, minor: u64) -> Message {
    Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(key),
        TransactionCommand::Sale {
            amount: eur(minor),
            tip: None,
            cashback: None,
        },
    ))
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

#[tokio::test(start_paused = true)]
async fn sales_status_and_signed_results_over_a_clean_link() {
    let mut registry = PairingRegistry::new();
    paired(&mut registry);
    let (link, _) = terminal(Latency::default(), registry, None);
    let client = NativeClient::connect(link, options(as_paired()))
        .await
        .unwrap();
    assert_eq!(
        client.capabilities().terminal_id,
        TerminalProfile::default().terminal_id
    );
    let mut events = client.events();

    let approved = client
        .sale(IdempotencyKey::from_u128(1), eur(1250), CALL)
        .await
        .unwrap();
    assert_eq!(approved.outcome, Outcome::Approved);
    verify_result(&terminal_identity().signing().public_key(), &approved).unwrap();
    let declined = client
        .sale(IdempotencyKey::from_u128(2), eur(1251), CALL)
        .await
        .unwrap();
    assert_eq!(
        declined.outcome,
        Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS)
    );
    // The events show the stages of the first sale.
    let mut stages = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let ClientEvent::Progress { progress, .. } = e {
            stages.push(progress.stage);
        }
    }
    assert!(stages.starts_with(&[
        ProgressStage::WaitingForCard,
        ProgressStage::CardRead,
        ProgressStage::ProcessingOnline
    ]));
    match client
        .status(IdempotencyKey::from_u128(1), CALL)
        .await
        .unwrap()
    {
        TransactionStatus::Done(r) => assert_eq!(r.transaction_id, approved.transaction_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client
            .status(IdempotencyKey::from_u128(3), CALL)
            .await
            .unwrap(),
        TransactionStatus::NotFound
    );
    // The same key again: the same sale, not a second one.
    let again = client
        .sale(IdempotencyKey::from_u128(1), eur(1250), CALL)
        .await
        .unwrap();
    assert_eq!(again.transaction_id, approved.transaction_id);
    assert_eq!(client.close().await, Some(CloseReason::Local));
}

#[tokio::test(start_paused = true)]
async fn pairing_on_connect_and_a_wrong_code() {
    let start = driver::now();
    let mut registry = PairingRegistry::new();
    registry.set_window(
        PairingWindow::open_with(
            PairingConfig::default(),
            start,
            PairingSecret::code("424242").unwrap(),
            PairingSecret::handover([9; 16]),
        )
        .unwrap(),
    );
    let (link, ctx) = terminal(Latency::INSTANT, registry, None);
    let wrong = NativeClient::connect(
        link,
        options(ClientSecurity::Pair(PairingSecret::code("111111").unwrap())),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            wrong,
            ClientError::Connect(SessionError::Pairing(PairingError::WrongCode { .. }))
        ),
        "{wrong}"
    );
    // A new connection to the same terminal, with the right code.
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now());
    let mut sim = Simulator::new(
        TerminalProfile::default(),
        terminal_identity(),
        driver::now(),
        WALL,
    );
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let client = NativeClient::connect(
        ours,
        options(ClientSecurity::Pair(PairingSecret::code("424242").unwrap())),
    )
    .await
    .unwrap();
    let record = client.paired().expect("paired on connect");
    assert_eq!(
        record.peer.channel_key,
        terminal_identity().channel().public()
    );
    assert!(
        record.paired_at.0 > WALL.0 - 86_400_000 * 365,
        "stamped with the time"
    );
    assert!(
        ctx.registry
            .lock()
            .unwrap()
            .is_paired(&client_identity().channel().public())
    );
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn an_unpaired_client_and_a_silent_terminal_fail_with_typed_errors() {
    let (link, _) = terminal(Latency::INSTANT, PairingRegistry::new(), None);
    let err = NativeClient::connect(link, options(as_paired()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Connect(SessionError::NotPaired)),
        "{err}"
    );

    // A link nobody answers on.
    let (ours, _silent) = memory_pair(Delivery::Stream, 4096, 256);
    let started = tokio::time::Instant::now();
    let err = NativeClient::connect(ours, options(as_paired()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::ConnectTimeout | ClientError::Connect(SessionError::Unreachable)
        ),
        "{err}"
    );
    assert!(started.elapsed() <= Duration::from_secs(31));
}

#[tokio::test(start_paused = true)]
async fn sales_succeed_over_a_lossy_link() {
    let mut registry = PairingRegistry::new();
    paired(&mut registry);
    // Per byte of a stream: a dropped byte or a flipped bit damages a whole frame, so a 900-byte
    // result (receipts and EMV data) is damaged about one time in four. At the 0.1 % dropped and
    // 0.05 % flipped this test used before, three in four: a result then failed all its
    // retransmissions for 25 of 40 seeds (8 of 40 before results carried EMV data), and the
    // session gave up, as it should on a link that far gone. With these rates: 0 of 40
    // (`POSBRIDGE_FAULT_SEED=1..40`).
    let faults = Faults {
        drop: 0.0002,
        flip: 0.0001,
        duplicate: 0.05,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        ..Faults::default()
    };
    let (link, _) = terminal(Latency::INSTANT, registry, Some(faults));
    let client = NativeClient::connect(link, options(as_paired()))
        .await
        .unwrap();
    for n in 0..20u64 {
        let r = client
            .sale(
                IdempotencyKey::from_u128(100 + u128::from(n)),
                eur(1000 + n * 100),
                CALL,
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Approved, "sale {n}");
        assert_eq!(r.amount.minor, 1000 + n * 100);
    }
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_cancel_during_card_presentation() {
    let mut registry = PairingRegistry::new();
    paired(&mut registry);
    let (link, _) = terminal(Latency::default(), registry, None);
    let client = NativeClient::connect(link, options(as_paired()))
        .await
        .unwrap();
    let pending = client.send(sale_message(5, 2000), CALL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.cancel(pending.id()).await.unwrap();
    match pending.answer().await.unwrap() {
        Message::TransactionResult(r) => assert_eq!(r.outcome, Outcome::Cancelled),
        other => panic!("{other:?}"),
    }
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_link_lost_mid_sale_leaves_the_sale_in_doubt() {
    let mut registry = PairingRegistry::new();
    paired(&mut registry);
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let profile = TerminalProfile::default();
    let ctx = TerminalContext::new(terminal_identity(), registry, profile.capabilities(), 100);
    let session = TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now());
    let mut sim = Simulator::new(profile, terminal_identity(), driver::now(), WALL);
    let served =
        tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let client = NativeClient::connect(ours, options(as_paired()))
        .await
        .unwrap();
    let pending = client.send(sale_message(9, 3000), CALL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The terminal side goes away (its task and its end of the link are dropped).
    served.abort();
    let err = pending.answer().await.unwrap_err();
    match err {
        ClientError::Failed(f) => {
            assert!(f.in_doubt(), "{f:?}");
            assert!(matches!(f, RequestFailure::SessionClosed { sent: true }));
        }
        other => panic!("{other}"),
    }
    // The terminal's memory knows the key: a later connection recovers it by status query.
    assert!(
        ctx.results
            .lock()
            .unwrap()
            .load(&IdempotencyKey::from_u128(9))
            .is_some()
    );
}

/// Two tills on one terminal at once: one simulator shared by both connections.
#[tokio::test(start_paused = true)]
async fn two_clients_share_one_simulated_terminal() {
    use posbridge_session::SharedApp;
    let mut registry = PairingRegistry::new();
    paired(&mut registry);
    let profile = TerminalProfile::default();
    let ctx = TerminalContext::new(terminal_identity(), registry, profile.capabilities(), 100);
    let sim = SharedApp::new(Simulator::new(
        profile,
        terminal_identity(),
        driver::now(),
        WALL,
    ));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let session = TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now());
        let mut app = sim.clone();
        tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut app).await });
        clients.push(
            NativeClient::connect(ours, options(as_paired()))
                .await
                .unwrap(),
        );
    }
    let (a, b) = tokio::join!(
        clients[0].sale(IdempotencyKey::from_u128(501), eur(1100), CALL),
        clients[1].sale(IdempotencyKey::from_u128(502), eur(2200), CALL),
    );
    assert_eq!(a.unwrap().amount.minor, 1100);
    assert_eq!(b.unwrap().amount.minor, 2200);
    let batch: Vec<u64> = sim.lock().transactions().map(|t| t.amount.minor).collect();
    assert_eq!(batch.len(), 2, "one batch for the terminal: {batch:?}");
    for c in clients {
        c.close().await;
    }
}
