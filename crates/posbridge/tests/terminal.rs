//! The protocol-independent API: an app written against `PaymentTerminal` runs every call of
//! it on the native protocol's implementation (`Payments`) against the simulator — progress as
//! a stream, cancel, deadlines, operators, settlement, receipts.

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{
    Adapter, Call, ConnectOptions, NativeAdapter, NativeClient, PaymentError, PaymentTerminal,
    Payments, driver,
};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role, verify_settlement};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Credential, Currency, ErrorCode, IdempotencyKey, OperatorAuth, OperatorSecret, Outcome,
    ProgressStage, ReceiptCopy, Timestamp, TransactionKind, TransactionRef, TransactionStatus,
};

const T: Duration = Duration::from_secs(120);

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey::from_u128(0x7E57_0000 + n)
}

fn manager(pin: &str) -> OperatorAuth {
    OperatorAuth {
        operator_id: "manager".into(),
        credential: Credential::Pin(OperatorSecret::new(pin).unwrap()),
    }
}

async fn terminal(manual_cards: bool) -> Payments<MemoryJournal> {
    let profile = TerminalProfile {
        latency: Latency {
            card: Duration::from_millis(500),
            read: Duration::from_millis(200),
            pin: Duration::from_millis(800),
            online: Duration::from_millis(600),
            card_timeout: Duration::from_secs(30),
        },
        ..TerminalProfile::default()
    };
    let terminal_keys =
        Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim").unwrap());
    let till = Arc::new(LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap());
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: till.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    let context =
        TerminalContext::new(terminal_keys.clone(), registry, profile.capabilities(), 100);
    context
        .operators
        .lock()
        .unwrap()
        .add_pin("manager", "2468")
        .unwrap();
    let mut sim = Simulator::new(
        profile,
        terminal_keys.clone(),
        driver::now(),
        Timestamp(1_764_000_000_000),
    );
    sim.set_manual_cards(manual_cards);
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), context, driver::now());
    let mut app = SharedApp::new(sim);
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut app).await });
    let client = NativeClient::connect(
        ours,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: till,
            security: ClientSecurity::Paired {
                terminal_key: terminal_keys.channel().public(),
            },
            hello: hello(),
            timeout: Duration::from_secs(30),
        },
    )
    .await
    .unwrap();
    Payments::new(
        NativeAdapter::new(client, Some(terminal_keys.signing().public_key())),
        MemoryJournal::new(),
    )
}

/// A day at a hotel front desk, written against the trait only.
async fn front_desk(t: &impl PaymentTerminal) -> Vec<ProgressStage> {
    assert!(t.capabilities().currencies.contains(&Currency::EUR));
    let mut progress = t.progress();
    let stay = t
        .preauth(key(1), eur(30_000), Call::within(T))
        .await
        .unwrap();
    assert_eq!(stay.outcome, Outcome::Approved);
    let mut stages = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(10), progress.next()).await {
        stages.push(p.stage);
    }
    let by_id = TransactionRef::Id(stay.transaction_id);
    let more = t
        .incremental_auth(key(2), by_id, eur(5_000), Call::within(T))
        .await
        .unwrap();
    assert_eq!(more.outcome, Outcome::Approved);
    let bill = t
        .capture(key(3), by_id, eur(32_000), Some(1_000), Call::within(T))
        .await
        .unwrap();
    assert_eq!(bill.outcome, Outcome::Approved);
    assert_eq!(bill.tip, Some(1_000));

    let minibar = t.sale(key(4), eur(1_250), Call::within(T)).await.unwrap();
    let back = t
        .refund(
            key(5),
            eur(250),
            Some(TransactionRef::Id(minibar.transaction_id)),
            Call::within(T).operator(manager("2468")),
        )
        .await
        .unwrap();
    assert_eq!(back.outcome, Outcome::Approved);
    // A refund without the operator is refused before anything is charged.
    let refused = t.refund(key(6), eur(100), None, Call::within(T)).await;
    assert!(
        matches!(&refused, Err(PaymentError::Refused { refusal: e, .. }) if e.code == ErrorCode::AUTHORIZATION_REQUIRED),
        "{refused:?}"
    );
    let spare = t
        .preauth(key(7), eur(10_000), Call::within(T))
        .await
        .unwrap();
    // Releasing a deposit gives money back to the customer: an operator authorises it.
    let unauthorised = t
        .preauth_cancel(
            key(8),
            TransactionRef::Id(spare.transaction_id),
            Call::within(T),
        )
        .await;
    assert!(
        matches!(&unauthorised, Err(PaymentError::Refused { refusal: e, .. }) if e.code == ErrorCode::AUTHORIZATION_REQUIRED),
        "{unauthorised:?}"
    );
    let released = t
        .preauth_cancel(
            key(20),
            TransactionRef::Id(spare.transaction_id),
            Call::within(T).operator(manager("2468")),
        )
        .await
        .unwrap();
    assert_eq!(released.kind, TransactionKind::PreAuthCancel);
    let voided = t
        .void(
            key(9),
            TransactionRef::Id(minibar.transaction_id),
            Call::within(T).operator(manager("2468")),
        )
        .await
        .unwrap();
    assert_eq!(voided.outcome, Outcome::Approved);
    let balance = t
        .balance_inquiry(key(10), Some(Currency::EUR), Call::within(T))
        .await
        .unwrap();
    assert!(balance.balance.is_some());

    match t.status(key(4), T).await.unwrap() {
        TransactionStatus::Done(r) => assert_eq!(r.transaction_id, minibar.transaction_id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.status(key(99), T).await.unwrap(),
        TransactionStatus::NotFound
    ));
    assert_eq!(
        t.last_transaction(T)
            .await
            .unwrap()
            .map(|r| r.idempotency_key),
        Some(key(10))
    );
    let receipt = t
        .receipt(
            TransactionRef::Id(bill.transaction_id),
            ReceiptCopy::Customer,
            T,
        )
        .await
        .unwrap();
    assert_eq!(receipt.copy, ReceiptCopy::Customer);
    let report = t
        .settle(key(11), Call::within(T).operator(manager("2468")))
        .await
        .unwrap();
    assert!(!report.totals.is_empty());
    stages
}

#[tokio::test(start_paused = true)]
async fn every_call_of_the_api_on_the_native_protocol() {
    let payments = terminal(false).await;
    let stages = front_desk(&payments).await;
    assert_eq!(
        stages,
        vec![
            ProgressStage::WaitingForCard,
            ProgressStage::CardRead,
            ProgressStage::ProcessingOnline
        ]
    );
    let key = payments.adapter().terminal_key().unwrap();
    let report = payments
        .settle(
            IdempotencyKey::from_u128(0x7E57_0000 + 11),
            Call::within(T).operator(manager("2468")),
        )
        .await
        .unwrap();
    verify_settlement(&key, &report).expect("a repeated settlement key returns the signed report");
    // Every money command is in the journal, final, with the last step it reached.
    let journal = payments.journal();
    assert!(journal.unresolved().unwrap().is_empty());
    assert_eq!(
        journal
            .get(&IdempotencyKey::from_u128(0x7E57_0001))
            .unwrap()
            .unwrap()
            .stage,
        Some(ProgressStage::ProcessingOnline)
    );
    assert_eq!(
        journal
            .get(&IdempotencyKey::from_u128(0x7E57_0000 + 6))
            .unwrap()
            .unwrap()
            .state,
        EntryState::Rejected
    );
}

#[tokio::test(start_paused = true)]
async fn cancel_while_the_customer_is_asked_for_the_card() {
    let payments = Arc::new(terminal(true).await);
    let mut progress = payments.progress();
    let running = {
        let p = payments.clone();
        tokio::spawn(async move { p.sale(key(20), eur(4_200), Call::within(T)).await })
    };
    let first = progress.next().await.unwrap();
    assert_eq!(first.stage, ProgressStage::WaitingForCard);
    payments.cancel().await.unwrap();
    let r = running.await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Cancelled);
    assert_eq!(
        payments.journal().get(&key(20)).unwrap().unwrap().state,
        EntryState::Done
    );
    // Nothing running: cancel is a no-op.
    payments.cancel().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_missed_deadline_leaves_the_payment_in_doubt_for_recovery() {
    let payments = terminal(true).await;
    let r = payments
        .sale(key(30), eur(1_000), Call::within(Duration::from_secs(2)))
        .await;
    assert!(matches!(r, Err(PaymentError::InDoubt(_))), "{r:?}");
    assert_eq!(
        payments.journal().get(&key(30)).unwrap().unwrap().state,
        EntryState::InDoubt
    );
}
