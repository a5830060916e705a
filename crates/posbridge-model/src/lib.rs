//! A model check of posbridge's promise — nothing lost, nothing taken twice — with
//! [stateright], over the real code: every transition runs the real [`Engine`] (its journal
//! writes, its recovery and its one recovery policy, [`decide`](posbridge_api::decide)) on the
//! real [`MemoryJournal`], against a terminal whose key store is the real
//! [`MemoryResultStore`] deciding with the real [`key_decision`], [`ResultStore::claim`] and
//! [`ResultStore::complete`] of the native protocol's sessions. A change to any of them is a
//! change in what is checked.
//!
//! # What is modelled
//!
//! One till (its journal, an engine started afresh for every call, as after a restart) and one
//! terminal that remembers keys (the native protocol). The till's app pays under a few keys,
//! again under a key it paid before (a retry), runs recovery, cancels a payment the terminal
//! runs, and settles (the terminal closes its batch, the engine journals the report). Each call meets a link that
//! may answer, decline, lose the command, lose the answer, never answer (the terminal keeps
//! running the payment), deliver the command twice at once (two sessions: the old connection's
//! and the new one's), hand the call a late answer meant for an earlier command, fail before
//! sending, or crash the till while the command is on its way (before or after it arrived).
//! The terminal finishes payments it runs (approved or declined) whenever it likes, and may
//! crash: the payments it was running die uncharged; its key store and open batch survive or
//! not, as configured ([`Config::durable_store`]).
//!
//! The journal's writes are durable when they return (as `SqliteJournal`'s are); a crash
//! loses what the engine had not written yet. Times do not pass (the default recovery policy
//! does not look at them).
//!
//! # Properties
//!
//! In every reachable state ([`Model::properties`]):
//! * no key is charged twice;
//! * no journal entry says approved for a payment the terminal did not charge;
//! * nothing the journal holds as refused or not taken is ever charged;
//! * recovery resolves everything once the link works: the terminal finishes what it runs, one
//!   recovery over a working link runs, and then no entry is open, every charge is recorded as
//!   approved in the journal of the till that asked, and every settlement report the journal
//!   holds, and the terminal's open batch, reconciles with the journal ([`posbridge::reconcile`],
//!   the SDK's own check).
//!
//! Within the bounds of [`Bounds`]; docs/testing.md gives those CI checks and what they cost.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use posbridge_api::testing::{capabilities, result_of};
use posbridge_api::{
    Adapter, Answer, Call, CallError, DoubtReason, Engine, Exchange, PaymentTerminal, Records,
    Refusal, Resolution,
};
use posbridge_journal::{Entry, EntryState, Journal, MemoryJournal, Query};
use posbridge_session::{
    Claim, Completion, KeyDecision, KeyRecord, MemoryResultStore, ResultStore, key_decision,
    normalise,
};
use posbridge_wire::{
    Amount, Capabilities, Currency, DeclineReason, ErrorCode, IdempotencyKey, OperatorAuth,
    Outcome, Receipt, ReceiptCopy, RequestId, SettlementResult, Timestamp, Totals,
    TransactionCommand, TransactionKind, TransactionRef, TransactionRequest, TransactionResult,
};
pub use stateright::{Checker, Model, Property};

/// The model's clock: time stands still.
const NOW: Timestamp = Timestamp(1_764_000_000_000);

/// How far the checker looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Payments the app makes (distinct keys).
    pub keys: u8,
    /// Calls the app makes in all (payments, retries, recoveries, cancels, settlements).
    pub calls: u8,
    /// Calls that meet a link fault (anything but an answer).
    pub faults: u8,
    /// Terminal crashes.
    pub terminal_crashes: u8,
}

/// What the model checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How far.
    pub bounds: Bounds,
    /// Whether the terminal's key store and open batch survive its crash (a real terminal's
    /// must).
    pub durable_store: bool,
}

impl Config {
    /// The bounds CI checks: three payments, six calls of the app (payments, retries,
    /// recoveries, cancels, settlements), three of them meeting a fault, one terminal crash, a
    /// durable key store and batch.
    pub fn ci() -> Self {
        Self {
            bounds: Bounds {
                keys: 3,
                calls: 6,
                faults: 3,
                terminal_crashes: 1,
            },
            durable_store: true,
        }
    }

    /// [`ci`](Self::ci), or the bounds in `POSBRIDGE_MODEL_BOUNDS` (`keys,calls,faults,crashes`,
    /// e.g. `3,7,4,1`) for a longer run by hand.
    pub fn from_env() -> Result<Self, String> {
        let mut config = Self::ci();
        let Ok(text) = std::env::var("POSBRIDGE_MODEL_BOUNDS") else {
            return Ok(config);
        };
        let n: Vec<u8> = text
            .split(',')
            .map(|n| n.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("POSBRIDGE_MODEL_BOUNDS={text:?}: {e}"))?;
        let [keys, calls, faults, terminal_crashes] = n[..] else {
            return Err(format!(
                "POSBRIDGE_MODEL_BOUNDS={text:?}: four numbers, keys,calls,faults,crashes"
            ));
        };
        if !(1..=8).contains(&keys) {
            return Err(format!("POSBRIDGE_MODEL_BOUNDS={text:?}: 1 to 8 keys"));
        }
        config.bounds = Bounds {
            keys,
            calls,
            faults,
            terminal_crashes,
        };
        Ok(config)
    }
}

/// How a payment ended on the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fin {
    /// Approved (charged).
    Approved,
    /// Declined by the issuer.
    Declined,
    /// Failed (the terminal had no run of it after a restart; nothing charged).
    Failed,
    /// Cancelled at the app's request (nothing charged).
    Cancelled,
}

impl Fin {
    fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Approved | Outcome::PartiallyApproved => Self::Approved,
            Outcome::Declined(_) => Self::Declined,
            Outcome::Cancelled => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Self::Approved => Outcome::Approved,
            Self::Declined => Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
            Self::Failed => Outcome::Failed(ErrorCode::INTERNAL),
            Self::Cancelled => Outcome::Cancelled,
        }
    }
}

/// Where a journal entry stands, as the model keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Journaled {
    /// The intent is written.
    Intent,
    /// Sent.
    Sent,
    /// In doubt.
    InDoubt,
    /// Done, with the outcome, the key its result names and the terminal's batch it fell in.
    Done(Fin, u8, u8),
    /// Refused or not taken: nothing charged.
    Rejected,
}

/// What the link does to one call of the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The terminal answers: the payment ends with this outcome (if it starts or runs).
    Answers(Fin),
    /// The command is lost on the way: the terminal never sees it.
    LosesCommand,
    /// The terminal finishes the payment (approved), the answer is lost (it may still arrive
    /// during a later call).
    LosesAnswer,
    /// The terminal starts it and no answer comes before the deadline.
    NoAnswer,
    /// The command arrives twice at once (the old connection's session and the new one's
    /// both look at its key before either claims it); approved.
    Twice,
    /// A late answer to an earlier command arrives as this call's answer (the command itself
    /// arrives and runs).
    LateAnswer,
    /// The connection is gone before the command leaves.
    NotSent,
    /// The till crashes while the command is on its way, before it arrives.
    CrashBeforeArrival,
    /// The till crashes after the command arrived (it runs on the terminal).
    CrashAfterArrival,
}

impl Link {
    const ALL: [Self; 10] = [
        Self::Answers(Fin::Approved),
        Self::Answers(Fin::Declined),
        Self::LosesCommand,
        Self::LosesAnswer,
        Self::NoAnswer,
        Self::Twice,
        Self::LateAnswer,
        Self::NotSent,
        Self::CrashBeforeArrival,
        Self::CrashAfterArrival,
    ];

    fn is_fault(self) -> bool {
        !matches!(self, Self::Answers(_))
    }
}

/// What happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The app pays under key `key` (again, if it paid under it before), over `link`.
    Pay {
        /// The key (0, 1, ...).
        key: u8,
        /// What the link does.
        link: Link,
    },
    /// The app runs recovery; `link_up` false: the terminal cannot be asked.
    Recover {
        /// Whether the terminal answers.
        link_up: bool,
    },
    /// The terminal finishes a payment it runs (under `key`) with `fin`.
    Finish {
        /// Its key.
        key: u8,
        /// How it ends.
        fin: Fin,
    },
    /// The app cancels the payment the terminal runs under `key` (the terminal ends it
    /// cancelled, nothing charged).
    Cancel {
        /// Its key.
        key: u8,
    },
    /// The app settles: the terminal closes its batch and the engine journals the report;
    /// `link_up` false: the terminal cannot be asked.
    Settle {
        /// Whether the terminal answers.
        link_up: bool,
    },
    /// The terminal crashes and restarts.
    TerminalCrash,
}

/// The whole system's state, in a canonical form (the real objects are rebuilt from it for
/// each transition and read back after it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The till's journal, by key.
    pub journal: BTreeMap<u8, Journaled>,
    /// The terminal's key store: the keys it knows, with their result once there is one.
    pub store: BTreeMap<u8, Option<Fin>>,
    /// The batch each finished key's result fell in (the result's time says it).
    pub completed_in: BTreeMap<u8, u8>,
    /// The terminal's open batch (1, 2, ...).
    pub batch: u8,
    /// What the terminal booked into its open batch (a key per charge).
    pub booked: Vec<u8>,
    /// The settlement reports the journal holds: (batch, count, amount).
    pub settled: Vec<(u8, u32, u64)>,
    /// The payments the terminal runs (one entry per run of a key).
    pub runs: Vec<u8>,
    /// Answers lost on the way that may still arrive (key, outcome).
    pub late: Vec<(u8, Fin)>,
    /// Every charge the terminal made, by key, in order.
    pub charges: Vec<u8>,
    /// Calls made.
    pub calls: u8,
    /// Faults met.
    pub faults: u8,
    /// Terminal crashes.
    pub terminal_crashes: u8,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let journal: Vec<String> = self
            .journal
            .iter()
            .map(|(k, j)| format!("k{k} {j:?}"))
            .collect();
        let store: Vec<String> = self
            .store
            .iter()
            .map(|(k, r)| match r {
                Some(fin) => format!("k{k} {fin:?}"),
                None => format!("k{k} running"),
            })
            .collect();
        write!(
            f,
            "journal [{}], settled {:?}; terminal store [{}], runs {:?}, charged {:?}, batch {} \
             booked {:?}; late answers {:?}",
            journal.join(", "),
            self.settled,
            store.join(", "),
            self.runs,
            self.charges,
            self.batch,
            self.booked,
            self.late
        )
    }
}

/// The key of payment `k`.
fn key(k: u8) -> IdempotencyKey {
    IdempotencyKey::from_u128(0x6d6f_6465_6c00 + u128::from(k))
}

fn key_index(key: &IdempotencyKey) -> Option<u8> {
    (0..=u8::MAX).find(|k| self::key(*k) == *key)
}

/// The command of payment `k`: a sale of k+1 euros.
fn request(k: u8) -> TransactionRequest {
    TransactionRequest::new(
        RequestId::default(),
        key(k),
        TransactionCommand::Sale {
            amount: Amount::new(amount(k), Currency::EUR),
            tip: None,
            cashback: None,
        },
    )
}

/// The terminal's result of payment `k` finished in batch `batch` (the scripted terminal's,
/// unsigned, timed inside the batch).
fn result(k: u8, fin: Fin, batch: u8) -> TransactionResult {
    let mut r = result_of(&request(k), fin.outcome());
    r.time = Timestamp(NOW.0 + (u64::from(batch) - 1) * 1000 + 500);
    r
}

/// The batch a result's time falls in.
fn batch_of(r: &TransactionResult) -> u8 {
    (r.time.0.saturating_sub(NOW.0) / 1000 + 1) as u8
}

/// The amount of payment `k`.
fn amount(k: u8) -> u64 {
    100 * (u64::from(k) + 1)
}

/// The terminal's report of batch `batch`: `count` sales for `amount`, timed from the batch's
/// opening (the first has none) to its close.
fn settlement(batch: u8, count: u32, amount: u64) -> SettlementResult {
    let start = NOW.0 + (u64::from(batch) - 1) * 1000;
    SettlementResult {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(0x5e77_0000 + u128::from(batch)),
        terminal_id: capabilities().terminal_id,
        batch_number: u32::from(batch),
        status: Ok(()),
        opened: (batch > 1).then_some(Timestamp(start)),
        closed: Timestamp(start + 999),
        totals: if count == 0 {
            Vec::new()
        } else {
            vec![Totals {
                kind: TransactionKind::Sale,
                currency: Currency::EUR,
                count,
                amount,
            }]
        },
        receipt: None,
        signature: None,
    }
}

/// The terminal's report of batch `batch`, in which it booked a charge per key of `booked`.
fn batch_report(batch: u8, booked: &[u8]) -> SettlementResult {
    let amount = booked.iter().map(|k| amount(*k)).sum();
    settlement(batch, booked.len() as u32, amount)
}

/// The real journal holding what `state` says.
fn journal_of(state: &State) -> MemoryJournal {
    let mut j = MemoryJournal::new();
    let terminal = capabilities().terminal_id;
    for (&k, &entry) in &state.journal {
        let key = key(k);
        j.record_intent(terminal, &request(k), None, NOW)
            .expect("a fresh journal takes an intent");
        let written = match entry {
            Journaled::Intent => Ok(()),
            Journaled::Sent => j.mark_sent(&key, NOW),
            Journaled::InDoubt => j
                .mark_sent(&key, NOW)
                .and_then(|()| j.mark_in_doubt(&key, "model", NOW)),
            Journaled::Done(fin, named, batch) => {
                let mut r = result(named, fin, batch);
                r.idempotency_key = key;
                j.mark_sent(&key, NOW)
                    .and_then(|()| j.record_result(&r, NOW))
            }
            Journaled::Rejected => j.mark_rejected(&key, "model", NOW),
        };
        written.expect("the journal rebuilds");
    }
    for &(batch, count, amount) in &state.settled {
        j.record_settlement(&settlement(batch, count, amount), None, NOW)
            .expect("the journal rebuilds");
    }
    j
}

/// The settlement reports the real journal holds, in the model's form.
fn settled(j: &MemoryJournal) -> Vec<(u8, u32, u64)> {
    j.settlements(None)
        .expect("the memory journal reads")
        .iter()
        .map(|s| {
            let r = &s.result;
            let (count, amount) = r
                .totals
                .iter()
                .fold((0, 0), |(c, a), t| (c + t.count, a + t.amount));
            (r.batch_number as u8, count, amount)
        })
        .collect()
}

/// What the real journal holds, in the model's form.
fn journaled(j: &MemoryJournal) -> BTreeMap<u8, Journaled> {
    j.query(&Query::default())
        .expect("the memory journal reads")
        .iter()
        .map(|e: &Entry| {
            let k = key_index(&e.key()).expect("the model's keys only");
            let state = match e.state {
                EntryState::Intent => Journaled::Intent,
                EntryState::Sent => Journaled::Sent,
                EntryState::InDoubt => Journaled::InDoubt,
                // The model's terminal approves nothing offline (its link is never down to the
                // acquirer); were it to, a payment declined after the fact charges nothing, and
                // one pending counts as done.
                EntryState::Rejected | EntryState::DeclinedAfter => Journaled::Rejected,
                EntryState::Done | EntryState::OfflinePending => {
                    let r = e.result.as_ref().expect("done has a result");
                    // The key the result's transaction belongs to: a stale result recorded
                    // under another key shows here.
                    let named = key_index(&IdempotencyKey(r.transaction_id.0)).unwrap_or(k);
                    Journaled::Done(Fin::of(&r.outcome), named, batch_of(r))
                }
            };
            (k, state)
        })
        .collect()
}

/// The terminal's side during one transition: the real key store, and what the model keeps.
struct Terminal {
    store: MemoryResultStore,
    keys: u8,
    completed_in: BTreeMap<u8, u8>,
    batch: u8,
    booked: Vec<u8>,
    runs: Vec<u8>,
    late: Vec<(u8, Fin)>,
    charges: Vec<u8>,
}

impl Terminal {
    fn of(state: &State, keys: u8) -> Self {
        let mut store = MemoryResultStore::new(usize::from(keys) + 1);
        for (&k, fin) in &state.store {
            let batch = state.completed_in.get(&k).copied().unwrap_or(state.batch);
            let record = KeyRecord {
                request: normalise(&request(k)),
                result: fin.map(|f| result(k, f, batch)),
            };
            store.save(key(k), record).expect("memory");
        }
        Self {
            store,
            keys,
            completed_in: state.completed_in.clone(),
            batch: state.batch,
            booked: state.booked.clone(),
            runs: state.runs.clone(),
            late: state.late.clone(),
            charges: state.charges.clone(),
        }
    }

    /// `state` with this terminal's side in it.
    fn write_back(self, state: State) -> State {
        let store = self.store();
        let mut runs = self.runs;
        runs.sort_unstable();
        State {
            store,
            completed_in: self.completed_in,
            batch: self.batch,
            booked: self.booked,
            runs,
            late: self.late,
            charges: self.charges,
            ..state
        }
    }

    /// A late answer to `k` (as the terminal recorded it).
    fn late_answer(&self, k: u8, fin: Fin) -> TransactionResult {
        result(
            k,
            fin,
            self.completed_in.get(&k).copied().unwrap_or(self.batch),
        )
    }

    fn store(&self) -> BTreeMap<u8, Option<Fin>> {
        (0..self.keys)
            .filter_map(|k| {
                self.store
                    .load(&key(k))
                    .map(|r| (k, r.result.map(|r| Fin::of(&r.outcome))))
            })
            .collect()
    }

    /// A session looks at the key of `request` (the terminal's one rule).
    fn look(&self, k: u8) -> KeyDecision {
        key_decision(self.store.load(&key(k)).as_ref(), &request(k))
    }

    /// A session that looked and found the key new claims it; what it then does.
    fn claim(&mut self, k: u8) -> KeyDecision {
        match self.store.claim(&request(k)).expect("memory") {
            Claim::Claimed => {
                self.runs.push(k);
                KeyDecision::New
            }
            Claim::Existing(record) => match key_decision(Some(&record), &request(k)) {
                // The mutation that takes a running key for a new one starts it again.
                KeyDecision::New => {
                    self.runs.push(k);
                    KeyDecision::New
                }
                other => other,
            },
        }
    }

    /// A command under `k` arrives at one session: what the terminal answers now, if anything
    /// (`None`: it runs).
    fn arrive(&mut self, k: u8) -> Option<TransactionResult> {
        let decision = match self.look(k) {
            KeyDecision::New => self.claim(k),
            other => other,
        };
        self.settle_decision(k, decision)
    }

    fn settle_decision(&mut self, k: u8, decision: KeyDecision) -> Option<TransactionResult> {
        match decision {
            KeyDecision::New => None,
            KeyDecision::Answer(r) => Some(*r),
            KeyDecision::Running if self.runs.contains(&k) => None,
            // Resumed over a new connection with no run of it here (the terminal restarted):
            // failed as never started, as the simulator does — nothing was charged.
            KeyDecision::Running => Some(self.finish_record(k, Fin::Failed)),
            KeyDecision::Reused => unreachable!("one command per key"),
        }
    }

    /// Records `fin` for `k` in the store (the first result stands); the result that stands.
    fn finish_record(&mut self, k: u8, fin: Fin) -> TransactionResult {
        let r = result(k, fin, self.batch);
        match self.store.complete(&r).expect("memory") {
            Completion::Recorded => {
                self.completed_in.insert(k, self.batch);
                r
            }
            Completion::AlreadyDone(first) => *first,
            Completion::Unknown => unreachable!("a run's key is claimed"),
        }
    }

    /// One run of `k` ends with `fin`: charged if approved (the money moves whatever the store
    /// then says), recorded.
    fn finish(&mut self, k: u8, fin: Fin) -> TransactionResult {
        if let Some(i) = self.runs.iter().position(|r| *r == k) {
            self.runs.remove(i);
        }
        if fin == Fin::Approved {
            self.charges.push(k);
            self.booked.push(k);
        }
        self.finish_record(k, fin)
    }

    /// Closes the open batch: its report.
    fn close_batch(&mut self) -> SettlementResult {
        let report = batch_report(self.batch, &self.booked);
        self.booked.clear();
        self.batch += 1;
        report
    }
}

/// The model's adapter: the link and the terminal as one call meets them.
struct ModelAdapter {
    capabilities: Capabilities,
    terminal: Mutex<Terminal>,
    link: Option<Link>,
    link_up: bool,
    /// The payment a cancel is for (the one this connection runs).
    cancels: Option<u8>,
}

/// Why the model's link failed a call.
#[derive(Debug)]
pub struct LinkDown;

impl fmt::Display for LinkDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the model's link is down")
    }
}

impl std::error::Error for LinkDown {}

impl ModelAdapter {
    fn terminal(&self) -> std::sync::MutexGuard<'_, Terminal> {
        self.terminal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the link and the terminal make of a command; `None`: the till crashes meanwhile.
    fn deliver(
        &self,
        request: &TransactionRequest,
        exchange: &Exchange<'_>,
    ) -> Option<Answer<LinkDown>> {
        let k = key_index(&request.idempotency_key).expect("the model's keys");
        // Recovery joining a running command meets a working link that does not wait for it.
        let link = self.link.unwrap_or(Link::NoAnswer);
        if link == Link::NotSent {
            return Some(Answer::NotSent(LinkDown));
        }
        exchange.sent();
        match link {
            Link::CrashBeforeArrival => return None,
            Link::LosesCommand => return Some(lost(DoubtReason::ConnectionLost)),
            _ => {}
        }
        let mut t = self.terminal();
        let answer = if link == Link::Twice {
            // Both sessions look at the key before either claims it.
            let (a, b) = (t.look(k), t.look(k));
            let a = match a {
                KeyDecision::New => t.claim(k),
                other => other,
            };
            let b = match b {
                KeyDecision::New => t.claim(k),
                other => other,
            };
            let first = t.settle_decision(k, a);
            let second = t.settle_decision(k, b);
            first.or(second)
        } else {
            t.arrive(k)
        };
        let fin = match link {
            Link::CrashAfterArrival => return None,
            Link::NoAnswer => {
                return Some(match answer {
                    Some(r) => Answer::Result(r),
                    None => lost(DoubtReason::NoAnswer),
                });
            }
            // (An earlier exchange of the same call may have taken the late answer: then none
            // comes.)
            Link::LateAnswer if t.late.is_empty() => return Some(lost(DoubtReason::NoAnswer)),
            Link::LateAnswer => {
                let (late, fin) = t.late.remove(0);
                let mut r = t.late_answer(late, fin);
                r.request_id = request.request_id;
                return Some(Answer::Result(r));
            }
            Link::Answers(fin) => fin,
            _ => Fin::Approved,
        };
        let r = match answer {
            Some(r) => r,
            None => {
                // Every run of it ends now (two, if two sessions started it).
                let mut last = None;
                while t.runs.contains(&k) {
                    last = Some(t.finish(k, fin));
                }
                last.expect("a run of it")
            }
        };
        Some(if link == Link::LosesAnswer {
            t.late.push((k, Fin::of(&r.outcome)));
            lost(DoubtReason::ConnectionLost)
        } else {
            Answer::Result(r)
        })
    }
}

fn lost(reason: DoubtReason) -> Answer<LinkDown> {
    Answer::Lost {
        reason,
        source: Some(LinkDown),
    }
}

impl Adapter for ModelAdapter {
    type Error = LinkDown;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn remembers_keys(&self) -> bool {
        true
    }

    async fn send(
        &self,
        request: TransactionRequest,
        exchange: &Exchange<'_>,
        _deadline: Duration,
    ) -> Answer<LinkDown> {
        match self.deliver(&request, exchange) {
            Some(answer) => answer,
            // The till crashes with the command on its way.
            None => std::future::pending().await,
        }
    }

    async fn resolve(
        &self,
        key: IdempotencyKey,
        _entry: Option<&Entry>,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Resolution<LinkDown>, LinkDown> {
        if !self.link_up {
            return Err(LinkDown);
        }
        let k = key_index(&key).expect("the model's keys");
        let t = self.terminal();
        Ok(match t.store.load(&self::key(k)) {
            None => Resolution::NotDone,
            Some(KeyRecord {
                result: Some(r), ..
            }) => Resolution::Done(r),
            Some(_) => Resolution::Running(None),
        })
    }

    async fn cancel(&self) -> Result<(), LinkDown> {
        let mut t = self.terminal();
        if let Some(k) = self.cancels.filter(|k| t.runs.contains(k)) {
            let r = t.finish(k, Fin::Cancelled);
            t.late.push((k, Fin::of(&r.outcome)));
        }
        Ok(())
    }

    async fn last_transaction(
        &self,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Option<TransactionResult>, LinkDown> {
        Err(LinkDown)
    }

    async fn settle(
        &self,
        _key: IdempotencyKey,
        _operator: Option<OperatorAuth>,
        _deadline: Duration,
    ) -> Result<SettlementResult, CallError<LinkDown>> {
        if !self.link_up {
            return Err(CallError::Failed(LinkDown));
        }
        Ok(self.terminal().close_batch())
    }

    async fn receipt(
        &self,
        _target: TransactionRef,
        _copy: ReceiptCopy,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Receipt, CallError<LinkDown>> {
        Err(CallError::Refused(Refusal::new(
            ErrorCode::NOT_FOUND,
            "no receipts in the model".to_string(),
        )))
    }

    async fn close(self) {}
}

/// Runs `future` until it waits: `Some` with its output, or `None` if it waited (the model's
/// futures only wait when the till crashes; dropping it is the crash).
fn run_until_crash<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

fn clock() -> Timestamp {
    NOW
}

/// The model: [`Config`] and the transitions.
#[derive(Clone, Debug)]
pub struct PaymentModel {
    /// What is checked.
    pub config: Config,
}

impl PaymentModel {
    /// A model of `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    fn engine(
        &self,
        state: &State,
        link: Option<Link>,
        link_up: bool,
        cancels: Option<u8>,
    ) -> Engine<ModelAdapter, MemoryJournal> {
        let adapter = ModelAdapter {
            capabilities: capabilities(),
            terminal: Mutex::new(Terminal::of(state, self.config.bounds.keys)),
            link,
            link_up,
            cancels,
        };
        Engine::new(adapter, journal_of(state)).with_clock(clock)
    }

    /// The state after the engine (run or crashed) and its terminal.
    fn read_back(state: &State, engine: Engine<ModelAdapter, MemoryJournal>) -> State {
        let (adapter, journal) = engine.into_parts();
        let t = adapter
            .terminal
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        t.write_back(State {
            journal: journaled(&journal),
            settled: settled(&journal),
            ..state.clone()
        })
    }

    /// What one recovery over a working link leaves, after the terminal finished (approved)
    /// every payment it runs: the state in which "eventually" is judged.
    pub fn recovered(&self, state: &State) -> State {
        self.recover_fully(state).0
    }

    /// [`recovered`](Self::recovered), with the real journal's entries afterwards.
    fn recover_fully(&self, state: &State) -> (State, Vec<Entry>) {
        let keys = self.config.bounds.keys;
        let mut t = Terminal::of(state, keys);
        while let Some(&k) = t.runs.first() {
            t.finish(k, Fin::Approved);
        }
        t.late.clear();
        let finished = t.write_back(state.clone());
        let engine = self.engine(&finished, None, true, None);
        let report = run_until_crash(engine.recover(Duration::from_secs(1)));
        report
            .expect("recovery over a working link does not wait")
            .expect("the memory journal does not fail");
        let entries = engine
            .journal()
            .query(&Query::default())
            .expect("the memory journal reads");
        (Self::read_back(&finished, engine), entries)
    }

    /// Why `state` breaks the promise once recovery ran over a working link, if it does.
    pub fn unresolved(&self, state: &State) -> Option<String> {
        let (after, entries) = self.recover_fully(state);
        if let Some((k, j)) = after
            .journal
            .iter()
            .find(|(_, j)| matches!(j, Journaled::Intent | Journaled::Sent | Journaled::InDoubt))
        {
            return Some(format!("k{k} is still {j:?} after recovery"));
        }
        if let Some(k) = after.charges.iter().find(|k| {
            !matches!(after.journal.get(k), Some(Journaled::Done(Fin::Approved, n, _)) if n == *k)
        }) {
            return Some(format!(
                "k{k} was charged and the journal does not record it as approved"
            ));
        }
        // Every report the journal holds, and the terminal's open batch as it would report it,
        // through the SDK's own reconciliation against the journal.
        let open = batch_report(after.batch, &after.booked);
        let reports = after
            .settled
            .iter()
            .map(|&(b, c, a)| settlement(b, c, a))
            .chain([open]);
        for report in reports {
            let reconciled = posbridge::reconcile(&entries, &report, None);
            if !reconciled.is_clean() {
                return Some(format!(
                    "batch {} does not reconcile with the journal: {:?}",
                    report.batch_number, reconciled.differences
                ));
            }
        }
        None
    }
}

impl State {
    fn initial() -> Self {
        Self {
            journal: BTreeMap::new(),
            store: BTreeMap::new(),
            completed_in: BTreeMap::new(),
            batch: 1,
            booked: Vec::new(),
            settled: Vec::new(),
            runs: Vec::new(),
            late: Vec::new(),
            charges: Vec::new(),
            calls: 0,
            faults: 0,
            terminal_crashes: 0,
        }
    }

    fn charged_twice(&self) -> Option<u8> {
        let mut seen = Vec::new();
        for k in &self.charges {
            if seen.contains(k) {
                return Some(*k);
            }
            seen.push(*k);
        }
        None
    }
}

impl Model for PaymentModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State::initial()]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = self.config.bounds;
        if state.calls < b.calls {
            // A key paid before (a retry), or the next new one.
            let next = state.journal.len() as u8;
            for key in 0..b.keys.min(next + 1) {
                for link in Link::ALL {
                    if link.is_fault() && state.faults >= b.faults {
                        continue;
                    }
                    if link == Link::LateAnswer && state.late.is_empty() {
                        continue;
                    }
                    actions.push(Action::Pay { key, link });
                }
            }
            if !state.journal.is_empty() {
                actions.push(Action::Recover { link_up: true });
                actions.push(Action::Settle { link_up: true });
                if state.faults < b.faults {
                    actions.push(Action::Recover { link_up: false });
                    actions.push(Action::Settle { link_up: false });
                }
            }
            let mut running = state.runs.clone();
            running.dedup();
            for key in running {
                actions.push(Action::Cancel { key });
            }
        }
        let mut running = state.runs.clone();
        running.dedup();
        for key in running {
            actions.push(Action::Finish {
                key,
                fin: Fin::Approved,
            });
            actions.push(Action::Finish {
                key,
                fin: Fin::Declined,
            });
        }
        if state.terminal_crashes < b.terminal_crashes {
            actions.push(Action::TerminalCrash);
        }
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        let keys = self.config.bounds.keys;
        match action {
            Action::Pay { key: k, link } => {
                let engine = self.engine(state, Some(link), true, None);
                // The app's call; a crash drops it midway, as SIGKILL would.
                let _ = run_until_crash(engine.transaction(
                    key(k),
                    request(k).command,
                    Duration::from_secs(1),
                ));
                let mut next = Self::read_back(state, engine);
                next.calls += 1;
                next.faults += u8::from(link.is_fault());
                Some(next)
            }
            Action::Recover { link_up } => {
                let engine = self.engine(state, None, link_up, None);
                let _ = run_until_crash(engine.recover(Duration::from_secs(1)));
                let mut next = Self::read_back(state, engine);
                next.calls += 1;
                next.faults += u8::from(!link_up);
                Some(next)
            }
            Action::Finish { key: k, fin } => {
                let mut t = Terminal::of(state, keys);
                let r = t.finish(k, fin);
                // Its answer went to a call that has ended: it may arrive late.
                t.late.push((k, Fin::of(&r.outcome)));
                Some(t.write_back(state.clone()))
            }
            Action::Cancel { key: k } => {
                let engine = self.engine(state, None, true, Some(k));
                let _ = run_until_crash(PaymentTerminal::cancel(&engine));
                let mut next = Self::read_back(state, engine);
                next.calls += 1;
                Some(next)
            }
            Action::Settle { link_up } => {
                let engine = self.engine(state, None, link_up, None);
                let _ = run_until_crash(PaymentTerminal::settle(
                    &engine,
                    IdempotencyKey::from_u128(0x5e77_0000 + u128::from(state.batch)),
                    Call::within(Duration::from_secs(1)),
                ));
                let mut next = Self::read_back(state, engine);
                next.calls += 1;
                next.faults += u8::from(!link_up);
                Some(next)
            }
            Action::TerminalCrash => {
                let mut next = state.clone();
                next.runs.clear();
                next.late.clear();
                if !self.config.durable_store {
                    // Its key store and its batch are gone with it.
                    next.store.clear();
                    next.completed_in.clear();
                    next.booked.clear();
                }
                next.terminal_crashes += 1;
                Some(next)
            }
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("no key is charged twice", |_, s: &State| {
                s.charged_twice().is_none()
            }),
            Property::always(
                "no approval in the journal without a charge",
                |_, s: &State| {
                    s.journal.iter().all(|(k, j)| {
                        !matches!(j, Journaled::Done(Fin::Approved, ..)) || s.charges.contains(k)
                    })
                },
            ),
            Property::always("nothing refused or not taken is charged", |_, s: &State| {
                s.journal
                    .iter()
                    .all(|(k, j)| *j != Journaled::Rejected || !s.charges.contains(k))
            }),
            Property::always(
                "recovery over a working link resolves everything",
                |m: &Self, s: &State| m.unresolved(s).is_none(),
            ),
        ]
    }
}

/// The shortest counterexample to `property` within `model`'s bounds, if there is one: the
/// checker run to depth 1, 2, ... until it finds one (a breadth-first run over the whole space
/// reports the first it meets, which is seldom the shortest).
pub fn shortest_counterexample(
    model: &PaymentModel,
    property: &'static str,
) -> Option<stateright::Path<State, Action>> {
    for depth in 1.. {
        let checker = model
            .clone()
            .checker()
            .target_max_depth(depth)
            .finish_when(stateright::HasDiscoveries::AnyOf([property].into()))
            .spawn_bfs()
            .join();
        if let Some(path) = checker.discovery(property) {
            return Some(path);
        }
        if checker.max_depth() < depth {
            // The whole space is within this depth.
            return None;
        }
    }
    None
}

/// A counterexample as a person reads it: each state in the model's words and the step that
/// led from it to the next; last, if the promise breaks only once the link works again, what
/// the recovery then leaves.
pub fn trace(model: &PaymentModel, path: &stateright::Path<State, Action>) -> String {
    let mut out = String::new();
    for (i, (state, action)) in path.clone().into_vec().into_iter().enumerate() {
        out.push_str(&format!("       {state}\n"));
        if let Some(action) = action {
            out.push_str(&format!("  {:>2}. {action:?}\n", i + 1));
        }
    }
    if let Some(why) = model.unresolved(path.last_state()) {
        let after = model.recovered(path.last_state());
        out.push_str(&format!(
            "  then the terminal finishes what it runs and recovery runs over a working link:\n       {after}\n  and {why}\n"
        ));
    }
    out
}
