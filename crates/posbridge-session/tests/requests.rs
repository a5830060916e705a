//! Requests through both roles: correlation and progress, one money command at a time with the
//! rest queued, validation against capabilities, idempotency (repeats get the original result,
//! a reused key with another command is refused), status queries, deadlines, cancel, and a
//! connection lost mid-payment.

mod common;
use common::*;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge_crypto::verify_result;
use posbridge_session::harness::{Pair, capabilities};
use posbridge_session::{
    ClientEvent, RequestError, RequestFailure, RequestState, SessionConfig, TerminalApp,
    TerminalContext, TerminalEvent, TerminalSession,
};
use posbridge_wire::{
    Amount, AmountLimit, CancelResponse, CancelState, CapabilityError, Currency, IdempotencyKey,
    Message, MethodSet, Outcome, PaymentMethod, ProgressStage, RequestId, Timestamp,
    TransactionCommand, TransactionId, TransactionKind, TransactionRequest, TransactionResult,
    TransactionStatus, samples,
};

/// What the app did, shared with the test.
#[derive(Default)]
struct Log {
    started: Vec<IdempotencyKey>,
    resumed: Vec<IdempotencyKey>,
    cancels: Vec<RequestId>,
}

/// A payment app: each command waits `latency` (the card), reports progress, then approves
/// (or reports cancelled if a cancel arrived in time). It never answers commands whose amount
/// is 666 (a terminal that hangs).
struct App {
    latency: Duration,
    cancel_answer: CancelState,
    running: Option<(TransactionRequest, Instant, bool)>,
    log: Rc<RefCell<Log>>,
}

impl App {
    fn new(latency: Duration, log: Rc<RefCell<Log>>) -> Self {
        Self {
            latency,
            cancel_answer: CancelState::Accepted,
            running: None,
            log,
        }
    }
}

fn result_for(request: &TransactionRequest, outcome: Outcome) -> TransactionResult {
    let mut r = samples::approved_result();
    r.idempotency_key = request.idempotency_key;
    r.transaction_id = TransactionId(request.idempotency_key.0);
    r.kind = request.command.kind();
    let amount = request.command.amount().unwrap_or(r.amount);
    r.amount = amount;
    r.approved_minor = if outcome == Outcome::Approved {
        amount.minor
    } else {
        0
    };
    r.tip = None;
    r.outcome = outcome;
    ids().terminal.signing().sign_result(&mut r);
    r
}

impl TerminalApp for App {
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        match event {
            TerminalEvent::Transaction { request, resumed } => {
                let mut log = self.log.borrow_mut();
                if *resumed {
                    log.resumed.push(request.idempotency_key);
                } else {
                    log.started.push(request.idempotency_key);
                }
                session
                    .progress(ProgressStage::WaitingForCard, None, now)
                    .unwrap();
                self.running = Some((request.clone(), now + self.latency, false));
            }
            TerminalEvent::CancelRequested { request_id, target } => {
                self.log.borrow_mut().cancels.push(*target);
                session
                    .respond(
                        &Message::CancelResponse(CancelResponse {
                            request_id: *request_id,
                            target: *target,
                            state: self.cancel_answer,
                        }),
                        now,
                    )
                    .unwrap();
                if self.cancel_answer == CancelState::Accepted
                    && let Some(r) = &mut self.running
                {
                    r.2 = true;
                    r.1 = now;
                }
            }
            _ => {}
        }
    }

    fn poll_timeout(&self, _: &TerminalSession) -> Option<Instant> {
        self.running
            .as_ref()
            .filter(|r| r.0.command.amount().map(|a| a.minor) != Some(666))
            .map(|r| r.1)
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        if let Some((request, _, cancelled)) = self.running.take() {
            let outcome = if cancelled {
                Outcome::Cancelled
            } else {
                Outcome::Approved
            };
            session
                .complete(result_for(&request, outcome), now)
                .unwrap();
        }
    }
}

fn connected(latency: Duration, ctx: TerminalContext, seed: u64) -> (Pair, Rc<RefCell<Log>>) {
    let start = Instant::now();
    let config = SessionConfig::default();
    let client = paired_client(config, start);
    let terminal = TerminalSession::new(config, ctx, start);
    let mut pair = Pair::new(client, terminal, start, seed);
    let log = Rc::new(RefCell::new(Log::default()));
    pair.set_app(App::new(latency, log.clone()));
    pair.drive();
    assert!(pair.client.is_ready());
    (pair, log)
}

fn sale(key: u128, minor: u64) -> Message {
    Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(key),
        TransactionCommand::Sale {
            amount: Amount::new(minor, Currency::EUR),
            tip: None,
            cashback: None,
        },
    ))
}

fn responses(pair: &Pair, id: RequestId) -> Vec<Message> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Response {
                request_id,
                message,
            } if *request_id == id => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn failure(pair: &Pair, id: RequestId) -> Option<RequestFailure> {
    pair.client_events().iter().find_map(|e| match e {
        ClientEvent::RequestFailed {
            request_id,
            failure,
        } if *request_id == id => Some(failure.clone()),
        _ => None,
    })
}

fn result_of(pair: &Pair, id: RequestId) -> TransactionResult {
    match responses(pair, id).as_slice() {
        [Message::TransactionResult(r)] => r.clone(),
        other => panic!("{other:?} / {:?}", pair.client_events()),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// Session settings with frames of at most `max` bytes.
fn frames_of(max: usize) -> SessionConfig {
    let mut config = SessionConfig::default();
    let mut frame = posbridge_wire::FrameConfig::new();
    frame.set_max_frame_size(max).unwrap();
    config.set_frame(frame);
    config
}

/// Asks `m` with a deadline a minute from now (the session's clock), without driving.
fn send_request(pair: &mut Pair, m: Message) -> RequestId {
    let now = pair.now;
    pair.client.request(m, now + MINUTE, now).unwrap()
}

/// A status query for sale `key`.
fn status_of(key: u128) -> Message {
    Message::StatusQuery(posbridge_wire::StatusQuery {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(key),
    })
}

#[test]
fn a_sale_reports_progress_and_a_signed_result() {
    let (mut pair, log) = connected(Duration::from_secs(2), context(), 1);
    let id = send_request(&mut pair, sale(1, 1250));
    assert_eq!(pair.client.request_state(id), Some(RequestState::Sent));
    pair.drive();
    assert!(pair.client_events().iter().any(|e| matches!(
        e,
        ClientEvent::Progress { request_id, progress } if *request_id == id && progress.stage == ProgressStage::WaitingForCard
    )));
    let r = result_of(&pair, id);
    assert_eq!(r.request_id, id);
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(r.approved_minor, 1250);
    verify_result(&ids().terminal.signing().public_key(), &r).unwrap();
    assert_eq!(log.borrow().started.len(), 1);
    assert_eq!(pair.client.pending_requests(), 0);
}

#[test]
fn a_second_money_command_queues_instead_of_failing_busy() {
    let (mut pair, log) = connected(Duration::from_secs(3), context(), 2);
    let now = pair.now;
    let first = send_request(&mut pair, sale(1, 100));
    let second = send_request(&mut pair, sale(2, 200));
    assert_eq!(
        pair.client.request_state(second),
        Some(RequestState::Queued)
    );
    // A status query is not a money command: it does not wait.
    let status = pair
        .client
        .request(status_of(1), now + MINUTE, now)
        .unwrap();
    assert_eq!(pair.client.request_state(status), Some(RequestState::Sent));
    pair.drive();
    assert_eq!(result_of(&pair, first).amount.minor, 100);
    assert_eq!(result_of(&pair, second).amount.minor, 200);
    assert_eq!(
        log.borrow().started,
        vec![IdempotencyKey::from_u128(1), IdempotencyKey::from_u128(2)]
    );
    // The status query was answered while the first sale ran (it arrived with the sale, before
    // the app reported a stage).
    match responses(&pair, status).as_slice() {
        [Message::StatusResponse(s)] => assert!(
            matches!(s.status, TransactionStatus::InProgress { .. }),
            "{s:?}"
        ),
        other => panic!("{other:?}"),
    }
    // The first answer came before the second was even sent.
    let order: Vec<RequestId> = pair
        .client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Response {
                request_id,
                message: Message::TransactionResult(_),
            } => Some(*request_id),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![first, second]);
}

#[test]
fn requests_are_checked_against_the_capabilities_before_anything_is_sent() {
    let mut caps = capabilities();
    caps.limits = vec![AmountLimit {
        kind: TransactionKind::Sale,
        currency: Currency::EUR,
        min: 100,
        max: 50_000,
    }];
    caps.methods = MethodSet::EMPTY.with(PaymentMethod::Contactless);
    caps.kinds.remove(TransactionKind::Refund);
    let start = Instant::now();
    let client = paired_client(SessionConfig::default(), start);
    let terminal = TerminalSession::new(
        SessionConfig::default(),
        context_with(Arc::new(std::sync::Mutex::new(paired_registry())), caps),
        start,
    );
    let mut pair = Pair::new(client, terminal, start, 3);
    pair.drive();
    let now = pair.now;
    let sent = pair.client.stats().reliability.sent;

    assert_eq!(
        pair.client.request(sale(1, 60_000), now + MINUTE, now),
        Err(RequestError::Capability(
            CapabilityError::AmountOutOfRange {
                kind: TransactionKind::Sale,
                amount: Amount::new(60_000, Currency::EUR),
                min: 100,
                max: 50_000
            }
        ))
    );
    let usd = Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(2),
        TransactionCommand::Sale {
            amount: Amount::new(500, Currency::USD),
            tip: None,
            cashback: None,
        },
    ));
    assert!(matches!(
        pair.client.request(usd, now + MINUTE, now),
        Err(RequestError::Capability(
            CapabilityError::CurrencyNotSupported {
                currency: Currency::USD,
                ..
            }
        ))
    ));
    let refund = Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(3),
        TransactionCommand::Refund {
            amount: Amount::new(500, Currency::EUR),
            original: None,
        },
    ));
    assert_eq!(
        pair.client.request(refund, now + MINUTE, now),
        Err(RequestError::Capability(CapabilityError::KindNotSupported(
            TransactionKind::Refund
        )))
    );
    let Message::Transaction(mut chip) = sale(4, 500) else {
        unreachable!()
    };
    chip.methods = Some(MethodSet::EMPTY.with(PaymentMethod::Chip));
    assert_eq!(
        pair.client
            .request(Message::Transaction(chip), now + MINUTE, now),
        Err(RequestError::Capability(
            CapabilityError::MethodNotSupported {
                methods: vec![PaymentMethod::Chip]
            }
        ))
    );
    assert_eq!(
        pair.client.request(sale(5, 500), now, now),
        Err(RequestError::DeadlineInPast)
    );
    assert_eq!(
        pair.client
            .request(Message::Heartbeat(samples::heartbeat()), now + MINUTE, now),
        Err(RequestError::NotARequest)
    );
    assert_eq!(
        pair.client.stats().reliability.sent,
        sent,
        "nothing went out"
    );
    assert_eq!(pair.client.pending_requests(), 0);
    let err = RequestError::Capability(CapabilityError::AmountOutOfRange {
        kind: TransactionKind::Sale,
        amount: Amount::new(60_000, Currency::EUR),
        min: 100,
        max: 50_000,
    });
    assert!(err.to_string().contains("100..=50000"), "{err}");
}

#[test]
fn a_repeated_key_gets_the_original_result_and_a_reused_key_is_refused() {
    let (mut pair, log) = connected(Duration::from_secs(1), context(), 4);
    let first = send_request(&mut pair, sale(7, 999));
    pair.drive();
    let original = result_of(&pair, first);

    let again = send_request(&mut pair, sale(7, 999));
    pair.drive();
    let repeat = result_of(&pair, again);
    assert_eq!(repeat.request_id, again);
    assert_eq!(repeat.transaction_id, original.transaction_id);
    assert_eq!(repeat.signature, original.signature);
    verify_result(&ids().terminal.signing().public_key(), &repeat).unwrap();
    assert_eq!(log.borrow().started.len(), 1, "charged once");

    let other = send_request(&mut pair, sale(7, 1));
    pair.drive();
    match failure(&pair, other) {
        Some(RequestFailure::Refused(e)) => {
            assert_eq!(e.code, posbridge_wire::ErrorCode::KEY_REUSED)
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(log.borrow().started.len(), 1);
}

#[test]
fn status_queries_answer_not_found_in_progress_and_done() {
    let (mut pair, _) = connected(Duration::from_secs(5), context(), 5);
    let status = |pair: &mut Pair, key: u128| {
        let now = pair.now;
        pair.client
            .request(status_of(key), now + MINUTE, now)
            .unwrap()
    };
    let unknown = status(&mut pair, 42);
    pair.drive();
    match responses(&pair, unknown).as_slice() {
        [Message::StatusResponse(s)] => assert_eq!(s.status, TransactionStatus::NotFound),
        other => panic!("{other:?}"),
    }
    let id = send_request(&mut pair, sale(9, 300));
    pair.drive();
    let done = status(&mut pair, 9);
    pair.drive();
    match responses(&pair, done).as_slice() {
        [Message::StatusResponse(s)] => match &s.status {
            TransactionStatus::Done(r) => {
                assert_eq!(r.transaction_id, result_of(&pair, id).transaction_id)
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_deadline_without_an_answer_leaves_the_outcome_in_doubt() {
    let (mut pair, _) = connected(Duration::from_secs(1), context(), 6);
    let now = pair.now;
    // The app never answers 666; the queued sale behind it never gets sent.
    let hung = pair
        .client
        .request(sale(1, 666), now + Duration::from_secs(30), now)
        .unwrap();
    let behind = pair
        .client
        .request(sale(2, 100), now + Duration::from_secs(20), now)
        .unwrap();
    pair.drive();
    let f = failure(&pair, hung).unwrap();
    assert_eq!(f, RequestFailure::DeadlineExceeded { sent: true });
    assert!(f.in_doubt());
    let f = failure(&pair, behind).unwrap();
    assert_eq!(f, RequestFailure::DeadlineExceeded { sent: false });
    assert!(!f.in_doubt());
    assert_eq!(pair.client.pending_requests(), 0);
}

#[test]
fn cancel_before_sending_and_during_card_presentation() {
    let (mut pair, log) = connected(Duration::from_secs(10), context(), 7);
    let now = pair.now;
    let running = send_request(&mut pair, sale(1, 100));
    let queued = send_request(&mut pair, sale(2, 200));
    assert!(pair.client.cancel(queued, now).unwrap());
    assert_eq!(failure(&pair, queued), None, "reported through the events");
    pair.run_until(now + Duration::from_secs(2));
    assert_eq!(failure(&pair, queued), Some(RequestFailure::Cancelled));
    // The card is being waited for: cancel.
    let now = pair.now;
    assert!(pair.client.cancel(running, now).unwrap());
    pair.drive();
    assert_eq!(log.borrow().cancels, vec![running]);
    assert_eq!(result_of(&pair, running).outcome, Outcome::Cancelled);
    assert!(pair.client_events().iter().any(|e| matches!(
        e,
        ClientEvent::Response { message: Message::CancelResponse(c), .. } if c.state == CancelState::Accepted && c.target == running
    )));
    assert_eq!(
        log.borrow().started,
        vec![IdempotencyKey::from_u128(1)],
        "the queued sale never ran"
    );
    assert!(
        !pair.client.cancel(running, pair.now).unwrap(),
        "nothing left to cancel"
    );
}

#[test]
fn a_result_after_a_cancel_wins_and_is_reported_as_it_is() {
    let (mut pair, _) = connected(Duration::from_secs(10), context(), 8);
    let log = Rc::new(RefCell::new(Log::default()));
    let mut app = App::new(Duration::from_secs(10), log);
    app.cancel_answer = CancelState::TooLate;
    pair.set_app(app);
    let now = pair.now;
    let id = send_request(&mut pair, sale(1, 100));
    pair.run_until(now + Duration::from_secs(1));
    pair.client.cancel(id, pair.now).unwrap();
    pair.drive();
    assert_eq!(result_of(&pair, id).outcome, Outcome::Approved);
}

/// The link drops while the card is being read. A new connection asks the status (in
/// progress), sends the command again with the same key, and gets the one result: the app ran
/// the payment once.
#[test]
fn a_connection_lost_mid_payment_recovers_without_a_second_charge() {
    let ctx = context();
    let (mut pair, log) = connected(Duration::from_secs(5), ctx.clone(), 9);
    let now = pair.now;
    let first = send_request(&mut pair, sale(77, 4200));
    pair.run_until(now + Duration::from_secs(1));
    assert_eq!(log.borrow().started.len(), 1);

    // The phone's app restarts; the terminal's session for the old link is gone too, but the
    // terminal (its context, its app) keeps running.
    let start = pair.now;
    pair.replace_client(paired_client(SessionConfig::default(), start));
    pair.replace_terminal(TerminalSession::new(
        SessionConfig::default(),
        ctx.clone(),
        start,
    ));
    // The app lost its session with the link; a real terminal re-attaches the running payment
    // when the client asks again, which is what the session's `resumed` event is for.
    let app_log = Rc::new(RefCell::new(Log::default()));
    pair.set_app(App::new(Duration::from_secs(5), app_log.clone()));
    pair.drive();
    assert!(pair.client.is_ready());
    let now = pair.now;
    let status = pair
        .client
        .request(status_of(77), now + MINUTE, now)
        .unwrap();
    pair.drive();
    match responses(&pair, status).as_slice() {
        [Message::StatusResponse(s)] => {
            assert!(
                matches!(s.status, TransactionStatus::InProgress { .. }),
                "{s:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let again = send_request(&mut pair, sale(77, 4200));
    pair.drive();
    let r = result_of(&pair, again);
    assert_eq!(r.amount.minor, 4200);
    assert!(app_log.borrow().started.is_empty(), "not started again");
    assert_eq!(
        app_log.borrow().resumed,
        vec![IdempotencyKey::from_u128(77)]
    );
    let _ = first;
}

#[test]
fn pending_requests_fail_when_the_session_ends() {
    let (mut pair, _) = connected(Duration::from_secs(30), context(), 10);
    let now = pair.now;
    let sent = send_request(&mut pair, sale(1, 100));
    let queued = send_request(&mut pair, sale(2, 100));
    pair.run_until(now + Duration::from_secs(1));
    pair.terminal.close(pair.now);
    pair.drive();
    assert_eq!(
        failure(&pair, sent),
        Some(RequestFailure::SessionClosed { sent: true })
    );
    assert_eq!(
        failure(&pair, queued),
        Some(RequestFailure::SessionClosed { sent: false })
    );
}

mod operators {
    use super::*;
    use posbridge_session::{AuthError, OperatorPolicy, Operators, totp};
    use posbridge_wire::{
        ConfigWrite, Credential, ErrorCode, OperatorAuth, OperatorSecret, SettlementRequest,
        TerminalConfig,
    };

    fn pin(operator: &str, digits: &str) -> Option<OperatorAuth> {
        Some(OperatorAuth {
            operator_id: operator.into(),
            credential: Credential::Pin(OperatorSecret::new(digits).unwrap()),
        })
    }

    fn refund(key: u128, operator: Option<OperatorAuth>) -> Message {
        let mut r = TransactionRequest::new(
            RequestId::default(),
            IdempotencyKey::from_u128(key),
            TransactionCommand::Refund {
                amount: Amount::new(500, Currency::EUR),
                original: None,
            },
        );
        r.operator = operator;
        Message::Transaction(r)
    }

    fn refused_code(pair: &Pair, id: RequestId) -> (ErrorCode, Option<u32>) {
        match failure(pair, id) {
            Some(RequestFailure::Refused(e)) => (e.code, e.retry_after_ms),
            other => panic!("{other:?}"),
        }
    }

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn totp_matches_rfc_6238() {
        // RFC 6238 appendix B, SHA-1 (the last 6 of the 8 digits given there).
        assert_eq!(totp(SECRET, 59), "287082");
        assert_eq!(totp(SECRET, 1_111_111_109), "081804");
        assert_eq!(totp(SECRET, 1_234_567_890), "005924");
        assert_eq!(totp(SECRET, 2_000_000_000), "279037");
    }

    #[test]
    fn refunds_need_an_operator_and_wrong_pins_lock_out() {
        let ctx = context();
        ctx.operators
            .lock()
            .unwrap()
            .add_pin("anna", "4711")
            .unwrap();
        let (mut pair, log) = connected(Duration::from_secs(1), ctx, 20);
        let ask = |pair: &mut Pair, m: Message| {
            let now = pair.now;
            let id = pair.client.request(m, now + MINUTE, now).unwrap();
            pair.drive();
            id
        };
        let id = ask(&mut pair, refund(1, None));
        assert_eq!(
            refused_code(&pair, id),
            (ErrorCode::AUTHORIZATION_REQUIRED, None)
        );
        let id = ask(&mut pair, refund(2, pin("anna", "0000")));
        assert_eq!(refused_code(&pair, id).0, ErrorCode::AUTHORIZATION_FAILED);
        let id = ask(&mut pair, refund(3, pin("nobody", "4711")));
        assert_eq!(refused_code(&pair, id).0, ErrorCode::AUTHORIZATION_FAILED);
        let id = ask(&mut pair, refund(4, pin("anna", "1234")));
        assert_eq!(refused_code(&pair, id).0, ErrorCode::AUTHORIZATION_FAILED);
        let id = ask(&mut pair, refund(5, pin("anna", "9999")));
        assert_eq!(
            refused_code(&pair, id),
            (ErrorCode::LOCKED_OUT, Some(60_000))
        );
        // Locked out: even the right PIN waits.
        let id = ask(&mut pair, refund(6, pin("anna", "4711")));
        assert_eq!(refused_code(&pair, id).0, ErrorCode::LOCKED_OUT);
        assert!(log.borrow().started.is_empty(), "no refund ran");
        // A sale needs no operator meanwhile.
        let id = ask(&mut pair, sale(7, 100));
        assert_eq!(result_of(&pair, id).outcome, Outcome::Approved);

        let later = pair.now + Duration::from_secs(61);
        pair.run_until(later);
        let id = ask(&mut pair, refund(8, pin("anna", "4711")));
        assert_eq!(result_of(&pair, id).kind, TransactionKind::Refund);
        assert_eq!(
            log.borrow().started,
            vec![IdempotencyKey::from_u128(7), IdempotencyKey::from_u128(8)]
        );
    }

    #[test]
    fn one_time_codes_need_the_terminal_clock() {
        let mut ops = Operators::new(OperatorPolicy::default());
        ops.add_totp("ben", SECRET).unwrap();
        let now = Instant::now();
        let code = |t: u64| {
            Some(OperatorAuth {
                operator_id: "ben".into(),
                credential: Credential::Totp(OperatorSecret::new(totp(SECRET, t)).unwrap()),
            })
        };
        let wall = Timestamp(1_764_000_000_000);
        let secs = wall.0 / 1000;
        assert_eq!(ops.check(code(secs).as_ref(), now, Some(wall)), Ok(()));
        // One step of skew either way is accepted; two are not.
        assert_eq!(ops.check(code(secs - 30).as_ref(), now, Some(wall)), Ok(()));
        assert!(matches!(
            ops.check(code(secs + 60).as_ref(), now, Some(wall)),
            Err(AuthError::Failed { .. })
        ));
        assert_eq!(
            ops.check(code(secs).as_ref(), now, None),
            Err(AuthError::ClockNotSet)
        );
        assert!(ops.add_totp("short", b"too short").is_err());
        assert!(ops.add_pin("x", "12").is_err());
        assert!(format!("{ops:?}").contains("ben"));
    }

    #[test]
    fn settlement_and_configuration_changes_are_authorised_and_applied() {
        let ctx = context();
        ctx.operators
            .lock()
            .unwrap()
            .add_pin("anna", "4711")
            .unwrap();
        let (mut pair, _) = connected(Duration::from_secs(1), ctx.clone(), 21);
        let now = pair.now;
        let settle = |op| {
            Message::Settlement(SettlementRequest {
                request_id: RequestId::default(),
                idempotency_key: IdempotencyKey::from_u128(99),
                operator: op,
            })
        };
        let refused = send_request(&mut pair, settle(None));
        let ok = send_request(&mut pair, settle(pin("anna", "4711")));
        pair.run_until(now + Duration::from_secs(1));
        assert_eq!(
            refused_code(&pair, refused).0,
            ErrorCode::AUTHORIZATION_REQUIRED
        );
        assert!(
            pair.terminal_events()
                .iter()
                .any(|e| matches!(e, TerminalEvent::Request(Message::Settlement(s)) if s.request_id == ok)),
            "the authorised settlement reached the app"
        );

        // Lower the sale limit to 10.00 EUR and set the clock.
        let limits = vec![AmountLimit {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            min: 1,
            max: 1000,
        }];
        let write = |op| {
            Message::ConfigWrite(ConfigWrite {
                request_id: RequestId::default(),
                config: TerminalConfig {
                    limits: Some(limits.clone()),
                    clock: Some(Timestamp(1_764_000_000_000)),
                    ..TerminalConfig::default()
                },
                operator: op,
            })
        };
        let denied = send_request(&mut pair, write(pin("anna", "1111")));
        pair.drive();
        assert_eq!(
            refused_code(&pair, denied).0,
            ErrorCode::AUTHORIZATION_FAILED
        );
        assert!(ctx.settings.lock().unwrap().capabilities.limits.is_empty());
        let id = send_request(&mut pair, write(pin("anna", "4711")));
        pair.drive();
        match responses(&pair, id).as_slice() {
            [Message::ConfigResponse(c)] => {
                assert_eq!(c.config.limits.as_ref(), Some(&limits));
                assert_eq!(c.config.clock, Some(Timestamp(1_764_000_000_000)));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            pair.terminal_events()
                .iter()
                .any(|e| matches!(e, TerminalEvent::Configured(_)))
        );
        // The client checks against the new limit at once.
        let now = pair.now;
        assert!(matches!(
            pair.client.request(sale(50, 5000), now + MINUTE, now),
            Err(RequestError::Capability(
                CapabilityError::AmountOutOfRange { max: 1000, .. }
            ))
        ));
        // And the terminal enforces it for a client that did not check.
        pair.client
            .send(&sale_with_id(51, 5000, 0x51), pair.now)
            .unwrap();
        pair.drive();
        assert!(pair.client_events().iter().any(|e| matches!(
            e,
            ClientEvent::Message(Message::Error(err)) if err.code == ErrorCode::AMOUNT_OUT_OF_RANGE
        )));
        // New sessions report the new limits.
        assert_eq!(ctx.settings.lock().unwrap().capabilities.limits, limits);
    }

    fn sale_with_id(key: u128, minor: u64, id: u128) -> Message {
        let Message::Transaction(mut t) = sale(key, minor) else {
            unreachable!()
        };
        t.request_id = RequestId::from_u128(id);
        Message::Transaction(t)
    }
}

#[test]
fn a_request_too_large_for_a_frame_is_refused_before_sending() {
    let start = Instant::now();
    let client = paired_client(frames_of(256), start);
    let terminal = TerminalSession::new(SessionConfig::default(), context(), start);
    let mut pair = Pair::new(client, terminal, start, 30);
    pair.drive();
    assert!(pair.client.is_ready());
    let Message::Transaction(mut t) = sale(1, 100) else {
        unreachable!()
    };
    for i in 0..8 {
        t.metadata
            .insert(format!("key{i}"), "v".repeat(24))
            .unwrap();
    }
    let now = pair.now;
    let err = pair
        .client
        .request(Message::Transaction(t), now + MINUTE, now)
        .unwrap_err();
    assert!(
        matches!(err, RequestError::TooLarge { max: 239, .. }),
        "{err:?}"
    );
    assert!(pair.client.is_ready(), "the session stays up");
    assert_eq!(pair.client.pending_requests(), 0);
    // A normal sale still goes through.
    let id = send_request(&mut pair, sale(2, 100));
    pair.set_app(App::new(
        Duration::from_secs(1),
        Rc::new(RefCell::new(Log::default())),
    ));
    pair.drive();
    assert_eq!(result_of(&pair, id).amount.minor, 100);
}

#[test]
fn each_side_keeps_to_the_frame_size_the_other_announced() {
    let start = Instant::now();
    let client = paired_client(frames_of(200), start);
    let terminal = TerminalSession::new(SessionConfig::default(), context(), start);
    let mut pair = Pair::new(client, terminal, start, 31);
    pair.drive();
    assert!(pair.client.is_ready());
    assert_eq!(
        pair.client.capabilities().unwrap().max_frame_size,
        Some(4096)
    );
    // A signed result (about 260 bytes sealed) no longer fits the client's 200-byte frames:
    // the terminal refuses to send it rather than sending what the client would drop.
    let mut r = samples::approved_result();
    ids().terminal.signing().sign_result(&mut r);
    let err = pair
        .terminal
        .send(&Message::TransactionResult(r), pair.now)
        .unwrap_err();
    assert!(
        matches!(
            err,
            posbridge_session::SessionError::TooLarge { max: 183, .. }
        ),
        "{err:?}"
    );
    assert!(pair.terminal.is_ready());
}

/// Sends sale `key` without the client's queueing (a client that pipelines, as the protocol
/// allows): the terminal queues it behind the command it runs.
fn pipeline(pair: &mut Pair, key: u128, minor: u64) -> RequestId {
    let Message::Transaction(mut t) = sale(key, minor) else {
        unreachable!("a sale")
    };
    t.request_id = RequestId::from_u128(0x9000 + key);
    let now = pair.now;
    pair.client
        .send(&Message::Transaction(t.clone()), now)
        .unwrap();
    t.request_id
}

#[test]
fn a_command_queued_behind_another_is_claimed_at_once_and_started_in_turn() {
    let ctx = context();
    let (mut pair, log) = connected(Duration::from_secs(3), ctx.clone(), 31);
    let now = pair.now;
    let first = send_request(&mut pair, sale(1, 100));
    pipeline(&mut pair, 2, 200);
    pair.run_until(now + Duration::from_secs(1));
    assert_eq!(log.borrow().started, vec![IdempotencyKey::from_u128(1)]);
    // Queued, and already known to the key store every session shares: a status query over
    // another connection finds it in progress, not unknown (unknown would let the client record
    // it as not taken while it is still to start here).
    let record = ctx
        .results
        .lock()
        .unwrap()
        .load(&IdempotencyKey::from_u128(2));
    assert!(matches!(record, Some(r) if r.result.is_none()));
    let now = pair.now;
    let status = pair
        .client
        .request(status_of(2), now + MINUTE, now)
        .unwrap();
    pair.drive();
    match responses(&pair, status).as_slice() {
        [Message::StatusResponse(s)] => assert!(
            matches!(s.status, TransactionStatus::InProgress { .. }),
            "{s:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(result_of(&pair, first).amount.minor, 100);
    // Then it started in its turn — started, not resumed — and finished.
    assert_eq!(
        log.borrow().started,
        vec![IdempotencyKey::from_u128(1), IdempotencyKey::from_u128(2)]
    );
    assert!(log.borrow().resumed.is_empty());
    let until = pair.now + Duration::from_secs(5);
    pair.run_until(until);
    let done = ctx
        .results
        .lock()
        .unwrap()
        .load(&IdempotencyKey::from_u128(2))
        .and_then(|r| r.result);
    assert_eq!(done.map(|r| r.outcome), Some(Outcome::Approved));
}

#[test]
fn a_queued_command_another_session_ended_is_answered_not_started() {
    let ctx = context();
    let (mut pair, log) = connected(Duration::from_secs(3), ctx.clone(), 32);
    let now = pair.now;
    send_request(&mut pair, sale(1, 100));
    let second = pipeline(&mut pair, 2, 200);
    pair.run_until(now + Duration::from_secs(1));
    // Meanwhile the client, reconnected elsewhere, asked for it again and the terminal's app
    // ended it as never started (what the simulator does with a resumed command it has no run
    // of): its result is in the store before this session's turn comes.
    let Message::Transaction(t) = sale(2, 200) else {
        unreachable!("a sale")
    };
    let failed = result_for(&t, Outcome::Failed(posbridge_wire::ErrorCode::INTERNAL));
    ctx.results.lock().unwrap().complete(&failed).unwrap();
    pair.drive();
    assert_eq!(log.borrow().started, vec![IdempotencyKey::from_u128(1)]);
    // This session answers the queued command with that result instead of starting it.
    let answered = pair.client_events().iter().any(|e| {
        matches!(e, ClientEvent::Message(Message::TransactionResult(r)) | ClientEvent::Response { message: Message::TransactionResult(r), .. }
            if r.idempotency_key == IdempotencyKey::from_u128(2) && r.request_id == second)
    });
    assert!(answered, "{:?}", pair.client_events());
}
