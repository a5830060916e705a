//! A nexo till (`NexoTerminal`: the engine over `NexoClient`) against a nexo terminal
//! (`NexoServer` over a scripted backend that counts its charges), through a loopback
//! transport, with and without encryption: every money command, declines, a lost answer
//! recovered through `TransactionStatus` exactly once, wrong keys.

use std::sync::Arc;
use std::time::Duration;

use posbridge_api::testing::{Script, ScriptedTerminal};
use posbridge_api::{Call, Engine, PaymentError, PaymentTerminal};
use posbridge_journal::{EntryState, Journal, MemoryJournal};
use posbridge_nexo::security::SecurityKey;
use posbridge_nexo::{Loopback, NexoClient, NexoConfig, NexoServer, NexoTerminal, ServerConfig};
use posbridge_wire::{
    Amount, Currency, DeclineReason, IdempotencyKey, Outcome, TransactionKind, TransactionRef,
};

type Backend = Engine<ScriptedTerminal, MemoryJournal>;
type Server = NexoServer<Backend>;
type Till = NexoTerminal<Loopback<Server>, MemoryJournal>;

fn key() -> SecurityKey {
    SecurityKey::derive("posbridge-test", 1, b"a shared passphrase")
}

fn world(till_key: Option<SecurityKey>, terminal_key: Option<SecurityKey>) -> (Arc<Server>, Till) {
    let backend = Arc::new(Engine::new(
        ScriptedTerminal::approving(),
        MemoryJournal::new(),
    ));
    let server = Arc::new(NexoServer::new(
        backend,
        ServerConfig::new("V400m-346403161", terminal_key),
    ));
    let client = NexoClient::new(
        Loopback::new(server.clone()),
        NexoConfig::new("till-1", "V400m-346403161", till_key),
    );
    (server, Engine::new(client, MemoryJournal::new()))
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn call() -> Call {
    Call::within(Duration::from_secs(10))
}

fn charges(server: &Server) -> Vec<IdempotencyKey> {
    server.backend().adapter().charges()
}

#[tokio::test]
async fn sale_refund_void_and_referenced_refund_run_end_to_end_encrypted() {
    let (server, till) = world(Some(key()), Some(key()));
    let sale = IdempotencyKey::from_u128(1);
    let r = till.sale(sale, eur(1099), call()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!((r.amount, r.approved_minor), (eur(1099), 1099));
    assert!(
        r.reference.is_some(),
        "the POI transaction id is kept for reversals"
    );

    let refund = IdempotencyKey::from_u128(2);
    let r = till.refund(refund, eur(500), None, call()).await.unwrap();
    assert_eq!(
        (r.kind, r.outcome),
        (TransactionKind::Refund, Outcome::Approved)
    );

    let partial = IdempotencyKey::from_u128(3);
    let r = till
        .refund(partial, eur(99), Some(TransactionRef::Key(sale)), call())
        .await
        .unwrap();
    assert_eq!((r.kind, r.approved_minor), (TransactionKind::Refund, 99));

    let void = IdempotencyKey::from_u128(4);
    let r = till
        .void(void, TransactionRef::Key(sale), call())
        .await
        .unwrap();
    assert_eq!(
        (r.kind, r.outcome, r.amount),
        (TransactionKind::Void, Outcome::Approved, eur(1099))
    );

    // A sale with tip and cashback: the terminal authorises the whole, the result splits it.
    let tipped = IdempotencyKey::from_u128(5);
    let r = till
        .execute(
            tipped,
            posbridge_wire::TransactionCommand::Sale {
                amount: eur(2000),
                tip: Some(300),
                cashback: Some(1000),
            },
            call(),
        )
        .await
        .unwrap();
    assert_eq!(r.approved_minor, 2000);
    // The terminal was asked for the goods, the tip and the cashback apart (RequestedAmount
    // 33.00 with TipAmount 3.00 and CashBackAmount 10.00).
    let asked = server
        .backend()
        .journal()
        .query(&posbridge_journal::Query::default())
        .unwrap()
        .into_iter()
        .map(|e| e.request.command)
        .find(|c| {
            matches!(
                c,
                posbridge_wire::TransactionCommand::Sale { tip: Some(_), .. }
            )
        });
    assert_eq!(
        asked,
        Some(posbridge_wire::TransactionCommand::Sale {
            amount: eur(2000),
            tip: Some(300),
            cashback: Some(1000),
        })
    );

    // Each command charged once, and the same key again is the same result, not a charge.
    assert_eq!(charges(&server).len(), 5);
    let again = till.sale(sale, eur(1099), call()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Approved);
    assert_eq!(charges(&server).len(), 5);
    for k in [sale, refund, partial, void, tipped] {
        assert_eq!(
            till.journal().get(&k).unwrap().unwrap().state,
            EntryState::Done
        );
    }
}

#[tokio::test]
async fn a_decline_is_booked_declined_with_its_reason() {
    let (server, till) = world(Some(key()), Some(key()));
    server.backend().adapter().script([Script::Decline]);
    let k = IdempotencyKey::from_u128(7);
    let r = till.sale(k, eur(4200), call()).await.unwrap();
    assert!(matches!(r.outcome, Outcome::Declined(_)), "{:?}", r.outcome);
    assert_ne!(r.outcome, Outcome::Declined(DeclineReason(0)));
    assert_eq!(r.approved_minor, 0);
    assert_eq!(
        till.journal().get(&k).unwrap().unwrap().state,
        EntryState::Done
    );
}

#[tokio::test]
async fn a_lost_answer_is_recovered_through_transaction_status_exactly_once() {
    let (server, till) = world(Some(key()), Some(key()));
    server.drop_next_answers(1);
    let k = IdempotencyKey::from_u128(9);
    let lost = till.sale(k, eur(1250), call()).await;
    assert!(matches!(lost, Err(PaymentError::InDoubt(_))), "{lost:?}");
    assert_eq!(
        till.journal().get(&k).unwrap().unwrap().state,
        EntryState::InDoubt
    );
    assert_eq!(charges(&server).len(), 1, "the terminal took it");

    // Recovery asks TransactionStatus about the dialogue and books the original answer.
    let report = till.recover(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.recorded, vec![k], "{report:?}");
    assert!(report.unresolved.is_empty());
    let entry = till.journal().get(&k).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(entry.result.unwrap().outcome, Outcome::Approved);

    // The till retrying the same key gets the booked result; nothing is charged again.
    let r = till.sale(k, eur(1250), call()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(charges(&server).len(), 1);

    // A command that never reached the terminal is found not done, and may be sent again.
    let status = till
        .status(IdempotencyKey::from_u128(10), Duration::from_secs(5))
        .await;
    assert!(status.is_ok(), "{status:?}");
}

#[tokio::test]
async fn a_wrong_passphrase_or_a_clear_message_sends_nothing_and_says_why() {
    let other = SecurityKey::derive("posbridge-test", 1, b"another passphrase");
    let (server, till) = world(Some(other), Some(key()));
    let k = IdempotencyKey::from_u128(11);
    let e = till.sale(k, eur(100), call()).await.unwrap_err();
    assert!(e.to_string().contains("HMAC"), "{e}");
    assert!(charges(&server).is_empty());

    let (server, till) = world(None, Some(key()));
    let e = till.sale(k, eur(100), call()).await.unwrap_err();
    assert!(e.to_string().contains("encrypted"), "{e}");
    assert!(charges(&server).is_empty());
}

#[tokio::test]
async fn settlement_reports_the_terminal_totals() {
    let (_server, till) = world(None, None);
    till.sale(IdempotencyKey::from_u128(20), eur(1000), call())
        .await
        .unwrap();
    till.sale(IdempotencyKey::from_u128(21), eur(250), call())
        .await
        .unwrap();
    let s = till
        .settle(IdempotencyKey::from_u128(22), call())
        .await
        .unwrap();
    assert!(s.status.is_ok());
    // The terminal's totals, through nexo's TransactionTotals (Debit) back to posbridge's.
    assert_eq!(
        s.totals,
        vec![posbridge_wire::Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            count: 2,
            amount: 1250,
        }]
    );
    assert_eq!(s.batch_number, 1);
}

/// What nexo maps of the neutral protocol-1.1 calls: the cart on the customer display and a
/// yes/no question; what it cannot (the telemetry, a tip question) answers `None`; the
/// terminal's own diagnosis (printer, acquirers) stays the nexo client's.
#[tokio::test]
async fn diagnosis_display_and_confirmation_serve_the_neutral_calls() {
    use posbridge_api::{Cart, CustomerPrompt};
    use posbridge_wire::{CartLine, CustomerQuestion, CustomerReply};
    let (_server, till) = world(Some(key()), Some(key()));
    assert_eq!(till.telemetry(Duration::from_secs(10)).await.unwrap(), None);
    let diagnosis = till
        .adapter()
        .diagnose_hosts(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        diagnosis.poi_status.unwrap().printer_status.as_deref(),
        Some("OK")
    );

    let cart = Cart {
        lines: vec![CartLine {
            text: "Cappuccino".into(),
            quantity: Some(2),
            amount: 760,
        }],
        currency: Currency::EUR,
        total: 760,
        message: Some("Thank you!".into()),
    };
    assert!(
        till.show_cart(&cart, Duration::from_secs(10))
            .await
            .unwrap()
    );
    let ask = |question| CustomerPrompt {
        prompt: "Is the amount right?".into(),
        question,
        timeout: Duration::from_secs(5),
    };
    assert!(matches!(
        till.ask_customer(&ask(CustomerQuestion::YesNo))
            .await
            .unwrap(),
        Some(CustomerReply::Confirmed(_))
    ));
    let tip = CustomerQuestion::Tip {
        base: 760,
        currency: Currency::EUR,
        presets: vec![10],
        custom: false,
    };
    assert_eq!(till.ask_customer(&ask(tip)).await.unwrap(), None);
}
