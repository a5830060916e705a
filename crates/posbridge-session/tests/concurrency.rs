//! Many sessions of one terminal receiving the same idempotency key at the same moment — a till
//! that reconnects while its old session is still alive, two tills sharing a terminal: exactly
//! one of them starts the command, and every one of them gets the same single result.
//!
//! Each session runs on its own thread with its own simulated link; they share the terminal's
//! context (and so its result store), and are released together by a barrier. The store's reads
//! take a millisecond, as a terminal's transaction log may, which is what made a load followed by
//! a save in another lock scope start the command more than once.

mod common;
use common::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use posbridge_session::harness::Pair;
use posbridge_session::{
    ClientEvent, KeyRecord, MemoryResultStore, ResultStore, SessionConfig, TerminalApp,
    TerminalContext, TerminalEvent, TerminalSession,
};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Message, Outcome, RequestId, TransactionCommand,
    TransactionId, TransactionRequest, TransactionResult, samples,
};

/// A result store whose reads are slow.
struct SlowStore(MemoryResultStore);

impl ResultStore for SlowStore {
    fn load(&self, key: &IdempotencyKey) -> Option<KeyRecord> {
        std::thread::sleep(Duration::from_millis(1));
        self.0.load(key)
    }

    fn save(&mut self, key: IdempotencyKey, record: KeyRecord) -> std::io::Result<()> {
        self.0.save(key, record)
    }
}

/// What the terminal's apps did, across all sessions.
#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    joined: AtomicUsize,
}

/// A payment app that approves after a second, with an authorisation code of its own session
/// (so two different results would be told apart).
struct App {
    session: usize,
    counts: Arc<Counts>,
    running: Option<(TransactionRequest, Instant)>,
}

impl TerminalApp for App {
    fn on_event(&mut self, _: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        if let TerminalEvent::Transaction { request, resumed } = event {
            let counter = if *resumed {
                &self.counts.joined
            } else {
                &self.counts.started
            };
            counter.fetch_add(1, Ordering::SeqCst);
            self.running = Some((request.clone(), now + Duration::from_secs(1)));
        }
    }

    fn poll_timeout(&self, _: &TerminalSession) -> Option<Instant> {
        self.running.as_ref().map(|r| r.1)
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        if let Some((request, _)) = self.running.take() {
            let mut r: TransactionResult = samples::approved_result();
            r.idempotency_key = request.idempotency_key;
            r.transaction_id = TransactionId(request.idempotency_key.0);
            r.amount = request.command.amount().expect("a sale");
            r.approved_minor = r.amount.minor;
            r.tip = None;
            r.outcome = Outcome::Approved;
            r.auth_code = Some(format!("S{:05}", self.session));
            ids().terminal.signing().sign_result(&mut r);
            session.complete(r, now).expect("completes");
        }
    }
}

fn sale(key: IdempotencyKey) -> Message {
    Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        key,
        TransactionCommand::Sale {
            amount: Amount::new(4200, Currency::EUR),
            tip: None,
            cashback: None,
        },
    ))
}

/// One round: `sessions` sessions of one terminal get `key` at once. Returns how many started
/// it and the results their clients received.
fn round(sessions: usize, key: IdempotencyKey) -> (usize, Vec<TransactionResult>) {
    let mut ctx: TerminalContext = context();
    ctx.results = Arc::new(Mutex::new(SlowStore(MemoryResultStore::new(100))));
    let counts = Arc::new(Counts::default());
    let barrier = Arc::new(Barrier::new(sessions));
    let threads: Vec<_> = (0..sessions)
        .map(|i| {
            let ctx = ctx.clone();
            let counts = counts.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let config = SessionConfig::default();
                let client = paired_client(config, start);
                let terminal = TerminalSession::new(config, ctx, start);
                let mut pair = Pair::new(client, terminal, start, i as u64);
                pair.set_app(App {
                    session: i,
                    counts,
                    running: None,
                });
                pair.drive();
                assert!(pair.client.is_ready(), "session {i} connected");
                barrier.wait();
                let now = pair.now;
                let id = pair
                    .client
                    .request(sale(key), now + Duration::from_secs(60), now)
                    .expect("sent");
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
                    .unwrap_or_else(|| {
                        panic!("session {i} got no result: {:?}", pair.client_events())
                    })
            })
        })
        .collect();
    let results = threads
        .into_iter()
        .map(|t| t.join().expect("session thread"))
        .collect();
    (counts.started.load(Ordering::SeqCst), results)
}

#[test]
fn one_key_sent_to_many_sessions_at_once_starts_once_with_one_result() {
    for r in 0..12u128 {
        let key = IdempotencyKey::from_u128(0xC0C0_0000 + r);
        let (started, results) = round(8, key);
        assert_eq!(started, 1, "round {r}: the key was started {started} times");
        let first = &results[0];
        for (i, other) in results.iter().enumerate() {
            let mut other = other.clone();
            other.request_id = first.request_id;
            assert_eq!(
                &other, first,
                "round {r}: session {i} got another result than session 0"
            );
        }
    }
}
