//! The simulator through both sessions: every test card gives its documented outcome, steps take
//! the profile's time, cancels, the batch, settlement, follow-ups, receipts.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use posbridge_crypto::{
    LocalIdentity, PairingRecord, PeerId, Role, verify_result, verify_settlement,
};
use posbridge_session::harness::{Pair, hello};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, PairingRegistry, RequestError, RequestFailure,
    SessionConfig, TerminalContext, TerminalSession,
};
use posbridge_sim::{CardBehaviour, Latency, Simulator, TerminalProfile, render};
use posbridge_wire::{
    Amount, CancelState, CapabilityError, Credential, Currency, DeclineReason, ErrorCode,
    IdempotencyKey, LastTransactionQuery, Message, OperatorAuth, OperatorSecret, Outcome,
    ProgressStage, ReceiptCopy, ReceiptRequest, RequestId, SettlementRequest, Timestamp,
    TransactionCommand, TransactionKind, TransactionRef, TransactionRequest, TransactionResult,
};

const WALL: Timestamp = Timestamp(1_764_000_000_000);
const MINUTE: Duration = Duration::from_secs(60);

fn client_identity() -> Arc<LocalIdentity> {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(LocalIdentity::generate(PeerId([2; 16]), "till").unwrap()))
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

struct Rig {
    pair: Pair,
    next_key: u128,
}

impl Rig {
    fn new(latency: Latency) -> Self {
        let profile = TerminalProfile {
            latency,
            ..TerminalProfile::default()
        };
        let terminal = terminal_identity();
        let context = TerminalContext::new(
            terminal.clone(),
            PairingRegistry::with_records([PairingRecord {
                peer: client_identity().public_keys(),
                peer_role: Role::Client,
                paired_at: Timestamp(0),
            }]),
            profile.capabilities(),
            1000,
        );
        context
            .operators
            .lock()
            .unwrap()
            .add_pin("manager", "2468")
            .unwrap();
        let start = Instant::now();
        let client = ClientSession::new(
            SessionConfig::default(),
            client_identity(),
            ClientSecurity::Paired {
                terminal_key: terminal.channel().public(),
            },
            hello(),
            start,
        );
        let session = TerminalSession::new(SessionConfig::default(), context, start);
        let mut pair = Pair::new(client, session, start, 7);
        pair.set_app(Simulator::new(profile, terminal, start, WALL));
        pair.drive();
        assert!(pair.client.is_ready());
        Self { pair, next_key: 0 }
    }

    fn ask(&mut self, m: Message) -> RequestId {
        let now = self.pair.now;
        self.pair.client.request(m, now + MINUTE, now).unwrap()
    }

    fn command(&mut self, command: TransactionCommand, operator: bool) -> RequestId {
        self.next_key += 1;
        let mut t = TransactionRequest::new(
            RequestId::default(),
            IdempotencyKey::from_u128(self.next_key),
            command,
        );
        if operator {
            t.operator = Some(manager());
        }
        self.ask(Message::Transaction(t))
    }

    fn sale(&mut self, minor: u64) -> RequestId {
        self.command(
            TransactionCommand::Sale {
                amount: Amount::new(minor, Currency::EUR),
                tip: None,
                cashback: None,
            },
            false,
        )
    }

    /// Runs a command to its result.
    fn run(&mut self, id: RequestId) -> TransactionResult {
        self.pair.drive();
        self.result(id)
    }

    fn result(&self, id: RequestId) -> TransactionResult {
        self.pair
            .client_events()
            .iter()
            .find_map(|e| match e {
                ClientEvent::Response {
                    request_id,
                    message: Message::TransactionResult(r),
                } if *request_id == id => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no result for {id:?}: {:?}", self.pair.client_events()))
    }

    fn answer(&self, id: RequestId) -> Message {
        self.pair
            .client_events()
            .iter()
            .find_map(|e| match e {
                ClientEvent::Response {
                    request_id,
                    message,
                } if *request_id == id => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no answer for {id:?}"))
    }

    fn stages(&self, id: RequestId) -> Vec<ProgressStage> {
        self.pair
            .client_events()
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Progress {
                    request_id,
                    progress,
                } if *request_id == id => Some(progress.stage),
                _ => None,
            })
            .collect()
    }
}

fn manager() -> OperatorAuth {
    OperatorAuth {
        operator_id: "manager".into(),
        credential: Credential::Pin(OperatorSecret::new("2468").unwrap()),
    }
}

fn by_id(r: &TransactionResult) -> TransactionRef {
    TransactionRef::Id(r.transaction_id)
}

#[test]
fn every_test_card_gives_its_documented_outcome() {
    use Outcome::*;
    let declined = |r| Declined(r);
    let table: &[(u64, Outcome, u64, bool)] = &[
        // (amount, outcome, approved amount, offline)
        (1250, Approved, 1250, false),
        (1205, declined(DeclineReason::DO_NOT_HONOUR), 0, false),
        (1214, declined(DeclineReason::INVALID_CARD), 0, false),
        (1251, declined(DeclineReason::INSUFFICIENT_FUNDS), 0, false),
        (1254, declined(DeclineReason::EXPIRED_CARD), 0, false),
        (1255, declined(DeclineReason::WRONG_PIN), 0, false),
        (1257, declined(DeclineReason::NOT_PERMITTED), 0, false),
        (1259, declined(DeclineReason::SUSPECTED_FRAUD), 0, false),
        (1261, declined(DeclineReason::LIMIT_EXCEEDED), 0, false),
        (1220, Approved, 1220, false),
        (1213, Failed(ErrorCode::CARD_REMOVED), 0, false),
        (1218, Failed(ErrorCode::TIMEOUT), 0, false),
        (1210, PartiallyApproved, 605, false),
        (1291, Approved, 1291, true),
        (9991, declined(DeclineReason::ISSUER_UNAVAILABLE), 0, false),
    ];
    let mut rig = Rig::new(Latency::INSTANT);
    let key = terminal_identity().signing().public_key();
    for &(amount, outcome, approved, offline) in table {
        let id = rig.sale(amount);
        let r = rig.run(id);
        assert_eq!(
            (r.outcome, r.approved_minor, r.offline),
            (outcome, approved, offline),
            "amount {amount}"
        );
        verify_result(&key, &r).unwrap_or_else(|e| panic!("amount {amount}: {e}"));
        assert_eq!(r.receipts.len(), 2, "amount {amount}: both copies");
        let pin = rig.stages(id).contains(&ProgressStage::PinEntry);
        assert_eq!(
            pin,
            matches!(amount % 100, 20 | 55),
            "amount {amount}: PIN asked"
        );
        assert_eq!(
            CardBehaviour::for_amount(amount).asks_pin(),
            pin,
            "amount {amount}"
        );
    }
}

#[test]
fn each_step_takes_the_profile_s_time() {
    let latency = Latency::default();
    let mut rig = Rig::new(latency);
    let start = rig.pair.now;
    let id = rig.sale(1250);
    rig.run(id);
    let took = rig.pair.now - start;
    let expected = latency.card + latency.read + latency.online;
    assert!(
        took >= expected && took < expected + Duration::from_millis(50),
        "{took:?}"
    );
    assert_eq!(
        rig.stages(id),
        vec![
            ProgressStage::WaitingForCard,
            ProgressStage::CardRead,
            ProgressStage::ProcessingOnline
        ]
    );
    // A PIN card adds the PIN entry; no card at all waits for the card timeout.
    let start = rig.pair.now;
    let id = rig.sale(1220);
    rig.run(id);
    let took = rig.pair.now - start;
    assert!(took >= expected + latency.pin, "{took:?}");
    let start = rig.pair.now;
    let id = rig.sale(1218);
    let r = rig.run(id);
    assert_eq!(r.outcome, Outcome::Failed(ErrorCode::TIMEOUT));
    assert!(rig.pair.now - start >= latency.card_timeout);
}

#[test]
fn a_cancel_works_until_the_issuer_is_asked() {
    let latency = Latency::default();
    let mut rig = Rig::new(latency);
    // While waiting for the card.
    let id = rig.sale(1250);
    rig.pair
        .run_until(rig.pair.now + Duration::from_millis(500));
    rig.pair.client.cancel(id, rig.pair.now).unwrap();
    assert_eq!(rig.run(id).outcome, Outcome::Cancelled);
    // Once online it is too late: the payment stands.
    let id = rig.sale(1250);
    let online_at = rig.pair.now + latency.card + latency.read + Duration::from_millis(100);
    rig.pair.run_until(online_at);
    rig.pair.client.cancel(id, rig.pair.now).unwrap();
    rig.pair.drive();
    assert_eq!(rig.result(id).outcome, Outcome::Approved);
    assert!(rig.pair.client_events().iter().any(|e| matches!(
        e,
        ClientEvent::Response { message: Message::CancelResponse(c), .. } if c.target == id && c.state == CancelState::TooLate
    )));
}

#[test]
fn the_batch_settles_with_totals_and_a_signed_report() {
    let mut rig = Rig::new(Latency::INSTANT);
    let s1 = rig.sale(1000);
    let s1 = rig.run(s1);
    let s2 = rig.sale(2500);
    let s2 = rig.run(s2);
    let declined = rig.sale(1251);
    rig.run(declined);
    let tip = rig.command(
        TransactionCommand::Sale {
            amount: Amount::new(4000, Currency::EUR),
            tip: Some(500),
            cashback: None,
        },
        false,
    );
    assert_eq!(rig.run(tip).tip, Some(500));
    // A refund and a void need the manager.
    let refund = rig.command(
        TransactionCommand::Refund {
            amount: Amount::new(300, Currency::EUR),
            original: Some(by_id(&s1)),
        },
        false,
    );
    rig.pair.drive();
    assert!(rig.pair.client_events().iter().any(|e| matches!(
        e,
        ClientEvent::RequestFailed { request_id, failure: RequestFailure::Refused(err) }
            if *request_id == refund && err.code == ErrorCode::AUTHORIZATION_REQUIRED
    )));
    let refund = rig.command(
        TransactionCommand::Refund {
            amount: Amount::new(300, Currency::EUR),
            original: Some(by_id(&s1)),
        },
        true,
    );
    assert_eq!(rig.run(refund).outcome, Outcome::Approved);
    let void = rig.command(
        TransactionCommand::Void {
            original: by_id(&s2),
        },
        true,
    );
    let v = rig.run(void);
    assert_eq!((v.outcome, v.amount.minor), (Outcome::Approved, 2500));
    // Voiding it again is refused.
    let again = rig.command(
        TransactionCommand::Void {
            original: by_id(&s2),
        },
        true,
    );
    assert_eq!(
        rig.run(again).outcome,
        Outcome::Failed(ErrorCode::ORIGINAL_NOT_ELIGIBLE)
    );

    let settle = |rig: &mut Rig, key| {
        let id = rig.ask(Message::Settlement(SettlementRequest {
            request_id: RequestId::default(),
            idempotency_key: IdempotencyKey::from_u128(key),
            operator: Some(manager()),
        }));
        rig.pair.drive();
        match rig.answer(id) {
            Message::SettlementResult(s) => s,
            other => panic!("{other:?}"),
        }
    };
    let report = settle(&mut rig, 900);
    verify_settlement(&terminal_identity().signing().public_key(), &report).unwrap();
    assert_eq!(report.batch_number, 1);
    let total = |kind| {
        report
            .totals
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| (t.count, t.amount))
    };
    assert_eq!(total(TransactionKind::Sale), Some((3, 1000 + 2500 + 4500)));
    assert_eq!(total(TransactionKind::Refund), Some((1, 300)));
    assert_eq!(total(TransactionKind::Void), Some((1, 2500)));
    // The same settlement key again: the same report, not a second close.
    let repeat = settle(&mut rig, 900);
    assert_eq!(repeat.totals, report.totals);
    assert_eq!(repeat.batch_number, 1);
    // A new settlement closes the (empty) second batch.
    let next = settle(&mut rig, 901);
    assert_eq!((next.batch_number, next.totals.len()), (2, 0));
}

#[test]
fn pre_authorisation_increment_capture_and_release() {
    let mut rig = Rig::new(Latency::INSTANT);
    let eur = |m| Amount::new(m, Currency::EUR);
    let pre = rig.command(
        TransactionCommand::PreAuth {
            amount: eur(10_000),
        },
        false,
    );
    let pre = rig.run(pre);
    assert_eq!(pre.approved_minor, 10_000);
    let inc = rig.command(
        TransactionCommand::IncrementalAuth {
            original: by_id(&pre),
            amount: eur(2_000),
        },
        false,
    );
    assert_eq!(rig.run(inc).outcome, Outcome::Approved);
    // Up to the reserved 120.00 may be captured.
    let cap = rig.command(
        TransactionCommand::Capture {
            original: by_id(&pre),
            amount: eur(11_000),
            tip: Some(1_000),
        },
        false,
    );
    let c = rig.run(cap);
    assert_eq!(
        (c.outcome, c.approved_minor, c.tip),
        (Outcome::Approved, 11_000, Some(1_000))
    );
    assert_eq!(c.pan, pre.pan, "the same card");
    let twice = rig.command(
        TransactionCommand::Capture {
            original: by_id(&pre),
            amount: eur(100),
            tip: None,
        },
        false,
    );
    assert_eq!(
        rig.run(twice).outcome,
        Outcome::Failed(ErrorCode::ORIGINAL_NOT_ELIGIBLE)
    );
    // Another pre-authorisation, released.
    let other = rig.command(TransactionCommand::PreAuth { amount: eur(5_000) }, false);
    let other = rig.run(other);
    let release = rig.command(
        TransactionCommand::PreAuthCancel {
            original: by_id(&other),
        },
        true,
    );
    assert_eq!(rig.run(release).outcome, Outcome::Approved);
    let unknown = rig.command(
        TransactionCommand::Capture {
            original: TransactionRef::Key(IdempotencyKey::from_u128(999)),
            amount: eur(100),
            tip: None,
        },
        false,
    );
    assert_eq!(
        rig.run(unknown).outcome,
        Outcome::Failed(ErrorCode::ORIGINAL_NOT_FOUND)
    );
}

#[test]
fn receipts_print_and_can_be_fetched_again() {
    let mut rig = Rig::new(Latency::INSTANT);
    let id = rig.sale(1250);
    let r = rig.run(id);
    let customer = r
        .receipts
        .iter()
        .find(|x| x.copy == ReceiptCopy::Customer)
        .unwrap();
    let text = render(customer);
    for needle in [
        "posbridge demo shop",
        "SALE",
        "12.50 EUR",
        r.pan.unwrap().to_string().as_str(),
        "APPROVED",
        "2025-11-24 16:00:00 UTC",
        "Please keep this receipt",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 32), "{text}");

    let again = rig.ask(Message::ReceiptRequest(ReceiptRequest {
        request_id: RequestId::default(),
        target: TransactionRef::Key(r.idempotency_key),
        copy: ReceiptCopy::Merchant,
    }));
    rig.pair.drive();
    match rig.answer(again) {
        Message::ReceiptResponse(x) => {
            assert_eq!(x.receipt.copy, ReceiptCopy::Merchant);
            assert_eq!(x.receipt.amount, 1250);
        }
        other => panic!("{other:?}"),
    }
    let last = rig.ask(Message::LastTransaction(LastTransactionQuery {
        request_id: RequestId::default(),
    }));
    rig.pair.drive();
    match rig.answer(last) {
        Message::LastTransactionResponse(x) => {
            assert_eq!(x.result.unwrap().transaction_id, r.transaction_id)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_profile_s_limits_are_what_clients_check_against() {
    let mut rig = Rig::new(Latency::INSTANT);
    let now = rig.pair.now;
    let too_much = Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(77),
        TransactionCommand::Sale {
            amount: Amount::new(500_001, Currency::EUR),
            tip: None,
            cashback: None,
        },
    ));
    assert!(matches!(
        rig.pair.client.request(too_much, now + MINUTE, now),
        Err(RequestError::Capability(
            CapabilityError::AmountOutOfRange { max: 500_000, .. }
        ))
    ));
}

/// Two connections carry one key at once (a till that reconnected and asked again while the
/// first connection's session had claimed the key but not yet handed its start to the
/// simulator): the resume, handled first, finds no job and fails the command so its client
/// learns nothing was charged — and the start that follows must then not charge it.
#[test]
fn a_start_after_its_resume_was_given_up_is_not_charged() {
    use posbridge_session::{TerminalApp, TerminalEvent};
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let context = TerminalContext::new(
        terminal_identity(),
        PairingRegistry::new(),
        profile.capabilities(),
        1000,
    );
    let start = Instant::now();
    let mut sim = Simulator::new(profile, terminal_identity(), start, WALL);
    let mut first = TerminalSession::new(SessionConfig::default(), context.clone(), start);
    let mut second = TerminalSession::new(SessionConfig::default(), context.clone(), start);
    let request = TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(77),
        TransactionCommand::Sale {
            amount: Amount::new(1000, Currency::EUR),
            tip: None,
            cashback: None,
        },
    );
    // The first connection's session claimed the key in the store all sessions share.
    context.results.lock().unwrap().claim(&request).unwrap();
    let resumed = TerminalEvent::Transaction {
        request: request.clone(),
        resumed: true,
    };
    sim.on_event(&mut second, &resumed, start);
    let started = TerminalEvent::Transaction {
        request: request.clone(),
        resumed: false,
    };
    sim.on_event(&mut first, &started, start);
    // However long the first connection's session goes on, nothing is charged.
    for s in 1..=30 {
        let now = start + Duration::from_secs(s);
        sim.handle_timeout(&mut first, now);
        sim.handle_timeout(&mut second, now);
    }
    let results: Vec<_> = sim
        .transactions()
        .filter(|r| r.idempotency_key == request.idempotency_key)
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0].outcome, Outcome::Failed(ErrorCode::INTERNAL));
    let stored = context
        .results
        .lock()
        .unwrap()
        .load(&request.idempotency_key)
        .and_then(|r| r.result)
        .unwrap();
    assert_eq!(stored.outcome, Outcome::Failed(ErrorCode::INTERNAL));
}
