//! One terminal, several tills (protocol 1.1 leases) through both roles: two tills on one
//! terminal context — busy and queued answers with the holder's name, new money commands of the
//! others refused while one holds it (but what they started before answered as always), the
//! queue moving on release, expiry and a closed connection, each pushed to the till concerned.

mod common;
use common::*;

use std::time::{Duration, Instant};

use posbridge_session::harness::Pair;
use posbridge_session::{
    ClientEvent, SessionConfig, TerminalApp, TerminalContext, TerminalEvent, TerminalSession,
};
use posbridge_wire::{
    ErrorCode, IdempotencyKey, LeaseRelease, LeaseRequest, LeaseResponse, LeaseState, Message,
    RequestId, TransactionCommand, TransactionId, TransactionRequest, samples,
};

/// Approves every new command at once.
struct Approve;

impl TerminalApp for Approve {
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        if let TerminalEvent::Transaction {
            request,
            resumed: false,
        } = event
        {
            let mut r = samples::approved_result();
            r.idempotency_key = request.idempotency_key;
            r.transaction_id = TransactionId(request.idempotency_key.0);
            session.complete(r, now).unwrap();
        }
    }
}

fn till(ctx: &TerminalContext, start: Instant, seed: u64) -> Pair {
    let mut pair = Pair::new(
        paired_client(SessionConfig::default(), start),
        TerminalSession::new(SessionConfig::default(), ctx.clone(), start),
        start,
        seed,
    );
    pair.set_app(Approve);
    pair.drive();
    assert!(pair.client.is_ready());
    pair
}

fn ask(pair: &mut Pair, message: Message) -> RequestId {
    let now = pair.now;
    let id = pair
        .client
        .request(message, now + Duration::from_secs(30), now)
        .unwrap();
    pair.drive();
    id
}

fn answer(pair: &Pair, id: RequestId) -> Option<Message> {
    pair.client_events().iter().find_map(|e| match e {
        ClientEvent::Response {
            request_id,
            message,
        } if *request_id == id => Some(message.clone()),
        ClientEvent::RequestFailed {
            request_id,
            failure: posbridge_session::RequestFailure::Refused(e),
        } if *request_id == id => Some(Message::Error(e.clone())),
        _ => None,
    })
}

fn lease(pair: &mut Pair, holder: &str, wait: bool) -> LeaseState {
    let id = ask(
        pair,
        Message::LeaseRequest(LeaseRequest {
            request_id: RequestId::default(),
            holder: holder.into(),
            duration_ms: 60_000,
            wait,
        }),
    );
    match answer(pair, id) {
        Some(Message::LeaseResponse(LeaseResponse { state, .. })) => state,
        other => panic!("{other:?}"),
    }
}

fn sale(pair: &mut Pair, key: u128) -> Option<Message> {
    let mut request = samples::sale_request();
    request.idempotency_key = IdempotencyKey::from_u128(key);
    request.command = TransactionCommand::Sale {
        amount: samples::sale_request().command.amount().unwrap(),
        tip: None,
        cashback: None,
    };
    let id = ask(
        pair,
        Message::Transaction(TransactionRequest {
            request_id: RequestId::default(),
            ..request
        }),
    );
    answer(pair, id)
}

fn busy_with(m: Option<Message>, holder: &str) {
    match m {
        Some(Message::Error(e)) => {
            assert_eq!(e.code, ErrorCode::BUSY);
            assert!(e.detail.unwrap().contains(holder));
            assert!(e.retry_after_ms.is_some());
        }
        other => panic!("expected BUSY from {holder}: {other:?}"),
    }
}

fn pushed(pair: &Pair) -> Vec<LeaseState> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Lease(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn two_tills_share_one_terminal_by_lease() {
    let start = Instant::now();
    let ctx = context();
    let mut a = till(&ctx, start, 1);
    let mut b = till(&ctx, start, 2);

    // Nobody holds it: A's payment runs.
    assert!(matches!(
        sale(&mut a, 1),
        Some(Message::TransactionResult(_))
    ));
    assert!(matches!(
        lease(&mut b, "Till B", false),
        LeaseState::Granted { .. }
    ));
    assert_eq!(ctx.leases.lock().unwrap().holder(), Some("Till B"));
    // A's payment from before is still A's to ask about: its result, not BUSY.
    assert!(
        matches!(sale(&mut a, 1), Some(Message::TransactionResult(_))),
        "a repeat of a started command is never BUSY"
    );
    // A new one is refused with the holder's name; so is A's lease without waiting.
    busy_with(sale(&mut a, 2), "Till B");
    assert_eq!(
        lease(&mut a, "Till A", false),
        LeaseState::Busy {
            holder: "Till B".into()
        }
    );
    assert_eq!(
        lease(&mut a, "Till A", true),
        LeaseState::Queued {
            position: 1,
            holder: "Till B".into()
        }
    );

    // B gives it back: A is told within a second that it holds it now.
    let id = ask(
        &mut b,
        Message::LeaseRelease(LeaseRelease {
            request_id: RequestId::default(),
        }),
    );
    assert!(matches!(
        answer(&b, id),
        Some(Message::LeaseResponse(LeaseResponse {
            state: LeaseState::Released,
            ..
        }))
    ));
    let until = a.now + Duration::from_millis(1100);
    a.run_until(until);
    assert!(
        matches!(pushed(&a).as_slice(), [LeaseState::Granted { .. }]),
        "{:?}",
        pushed(&a)
    );
    busy_with(sale(&mut b, 3), "Till A");

    // A goes quiet for the lease's minute: it runs out, A is told, B may pay.
    let until = a.now + Duration::from_secs(61);
    a.run_until(until);
    assert_eq!(pushed(&a).last(), Some(&LeaseState::Expired));
    b.run_until(until);
    assert!(matches!(
        sale(&mut b, 4),
        Some(Message::TransactionResult(_))
    ));

    // A holder whose connection ends holds nothing: the waiting till gets it at once.
    assert!(matches!(
        lease(&mut b, "Till B", false),
        LeaseState::Granted { .. }
    ));
    assert!(matches!(
        lease(&mut a, "Till A", true),
        LeaseState::Queued { position: 1, .. }
    ));
    let now = b.now;
    b.client.close(now);
    b.drive();
    assert!(b.terminal.is_closed());
    let until = a.now.max(b.now) + Duration::from_millis(1100);
    a.run_until(until);
    assert!(
        matches!(pushed(&a).last(), Some(LeaseState::Granted { .. })),
        "{:?}",
        pushed(&a)
    );
    assert_eq!(ctx.leases.lock().unwrap().holder(), Some("Till A"));
}

/// Approves every new command after ten seconds.
struct Slow(Vec<(TransactionRequest, Instant)>);

impl TerminalApp for Slow {
    fn on_event(&mut self, _: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        if let TerminalEvent::Transaction {
            request,
            resumed: false,
        } = event
        {
            self.0
                .push((request.clone(), now + Duration::from_secs(10)));
        }
    }

    fn poll_timeout(&self, _: &TerminalSession) -> Option<Instant> {
        self.0.iter().map(|r| r.1).min()
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        let (done, rest) = self.0.drain(..).partition(|r| r.1 <= now);
        self.0 = rest;
        for (request, _) in done {
            let mut r = samples::approved_result();
            r.idempotency_key = request.idempotency_key;
            r.transaction_id = TransactionId(request.idempotency_key.0);
            session.complete(r, now).unwrap();
        }
    }
}

/// A lease shorter than the holder's payment does not run out while the payment runs: the
/// other till stays refused until the payment is over and the holder has gone quiet for the
/// lease's duration.
#[test]
fn a_lease_lasts_while_its_holders_payment_runs() {
    let start = Instant::now();
    let ctx = context();
    let mut a = till(&ctx, start, 1);
    a.set_app(Slow(Vec::new()));
    let mut b = till(&ctx, start, 2);
    let id = ask(
        &mut a,
        Message::LeaseRequest(LeaseRequest {
            request_id: RequestId::default(),
            holder: "Till A".into(),
            duration_ms: 2_000,
            wait: false,
        }),
    );
    assert!(matches!(
        answer(&a, id),
        Some(Message::LeaseResponse(LeaseResponse {
            state: LeaseState::Granted { .. },
            ..
        }))
    ));
    // A's payment takes ten seconds; five into it, the two-second lease still holds.
    let mut request = samples::sale_request();
    request.idempotency_key = IdempotencyKey::from_u128(1);
    // Sent without driving the pair to its answer: time passes by the clock below.
    let now = a.now;
    let paying = a
        .client
        .request(
            Message::Transaction(request),
            now + Duration::from_secs(30),
            now,
        )
        .unwrap();
    let until = a.now + Duration::from_secs(5);
    a.run_until(until);
    assert!(
        answer(&a, paying).is_none(),
        "still running: {:?}",
        answer(&a, paying)
    );
    b.run_until(until);
    busy_with(sale(&mut b, 2), "Till A");
    assert_eq!(ctx.leases.lock().unwrap().holder(), Some("Till A"));
    // The payment ends; A goes quiet past the lease's two seconds: it runs out, B may pay.
    let until = a.now + Duration::from_secs(9);
    a.run_until(until);
    assert!(matches!(
        answer(&a, paying),
        Some(Message::TransactionResult(_))
    ));
    assert_eq!(pushed(&a).last(), Some(&LeaseState::Expired));
    b.run_until(until);
    assert!(matches!(
        sale(&mut b, 3),
        Some(Message::TransactionResult(_))
    ));
}
