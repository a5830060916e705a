//! The simulated terminal: the payment logic behind a `TerminalSession`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge_crypto::LocalIdentity;
use posbridge_session::{
    OfflineOutcomes, PairingRegistry, SharedOutcomes, SharedTelemetry, SharedUpdates, TerminalApp,
    TerminalContext, TerminalEvent, TerminalSession, UpdateStore,
};
use posbridge_wire::{
    CancelResponse, CancelState, CardholderVerification, CryptogramType, Currency, DeclineReason,
    EmvData, ErrorCode, ErrorMessage, IdempotencyKey, LastTransactionResponse, Message,
    OfflineOutcome, OfflineState, Outcome, PaymentMethod, ProgressStage, ReceiptCopy,
    ReceiptRequest, ReceiptResponse, RequestId, SettlementRequest, SettlementResult, Timestamp,
    Totals, TransactionCommand, TransactionId, TransactionKind, TransactionRef, TransactionRequest,
    TransactionResult, UpdateRefusal, UpdateState, UpdateStatus,
};

use crate::batchlog::{BatchLog, Logged};
use crate::cards::{CardBehaviour, TestCard};
use crate::customer::Customer;
use crate::device::Device;
use crate::faults::{Fault, FaultAction, FaultPoint};
use crate::profile::OFFLINE_COUNT;
use crate::receipt::receipt;
use crate::{Latency, TerminalProfile};

/// Where a simulated payment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the customer's card.
    Card,
    /// Reading it.
    Read,
    /// The customer types the PIN.
    Pin,
    /// Waiting for the issuer; past the point of no return.
    Online,
}

struct Job {
    /// The session whose client waits for it (`None`: that connection is gone; the job goes on
    /// and its result is stored for whoever asks).
    session: Option<u64>,
    request: TransactionRequest,
    step: Step,
    due: Instant,
    card: CardBehaviour,
    method: Option<PaymentMethod>,
    /// Manual cards: waiting for one since then.
    waiting_since: Option<Instant>,
}

/// One transaction of the open batch.
#[derive(Clone, Debug)]
struct Entry {
    result: TransactionResult,
    card: Option<TestCard>,
    trace: u32,
    voided: bool,
    /// Approved offline, then declined by the issuer after the fact: out of the totals, and
    /// nothing to void or refund.
    declined_after: bool,
    /// For a pre-authorisation: the amount reserved now, and whether it was captured or released.
    reserved: u64,
    closed: bool,
}

/// The open batch.
#[derive(Clone, Debug)]
struct Batch {
    number: u32,
    opened: Timestamp,
    entries: Vec<Entry>,
}

/// The simulated terminal. Put it behind a [`TerminalSession`] (the `Pair` harness's
/// `set_app`, or a driver that hands it every event and calls its timer): it runs every money
/// command through card presentation, PIN and the issuer with the profile's pace, decides by
/// test card (docs/simulator.md), signs results, keeps a batch with totals, settles, and answers
/// receipt and last-transaction requests.
pub struct Simulator {
    profile: TerminalProfile,
    identity: Arc<LocalIdentity>,
    clock: (Instant, Timestamp),
    started: Timestamp,
    jobs: Vec<Job>,
    batch: Batch,
    last: Option<TransactionResult>,
    trace: u32,
    next_cards: VecDeque<CardBehaviour>,
    settlements: HashMap<IdempotencyKey, SettlementResult>,
    faults: Vec<Fault>,
    fault_handler: Option<FaultHandler>,
    /// Faults due after the result has gone out: (session, when, what).
    pending_faults: Vec<(u64, Instant, FaultAction)>,
    batch_log: Option<BatchLog>,
    log_errors: u64,
    manual: bool,
    /// Commands a client resumed that had no job here, failed as never started (with the result
    /// they were given). A start of one of them that arrives later — another connection's
    /// session claimed the key and had not yet handed it over — gets that result instead of a
    /// job: the client was told nothing was charged, so nothing is.
    given_up: HashMap<IdempotencyKey, TransactionResult>,
    /// Battery, power, paper and acquirer link, on the board the sessions report from.
    device: Device,
    /// The customer at the screen.
    customer: Customer,
    /// Software updates: the publisher trusted, the image being received.
    updates: SharedUpdates,
    /// Payments approved offline, not forwarded yet.
    stored: Vec<TransactionResult>,
    /// The final outcomes of those forwarded, signed.
    offline: SharedOutcomes,
}

/// The EMV data of a card payment (chip, contactless, wallet) that reached a decision: the card's
/// application, a verification the method implies (chip: online PIN; contactless: none up to
/// 50.00, online PIN above; wallet: on the device), the issuer's response code (or Y1 when
/// approved offline), and a cryptogram derived from `serial` (unique per transaction).
fn emv_data(card: &TestCard, result: &TransactionResult, serial: u64) -> Option<EmvData> {
    let method = result.method?;
    if !matches!(
        method,
        PaymentMethod::Chip | PaymentMethod::Contactless | PaymentMethod::Wallet
    ) {
        return None;
    }
    let (arc, cryptogram_type) = match result.outcome {
        Outcome::Approved | Outcome::PartiallyApproved if result.offline => {
            (Some("Y1".to_string()), CryptogramType::Tc)
        }
        Outcome::Approved | Outcome::PartiallyApproved => (Some("00".into()), CryptogramType::Tc),
        // Declined by the card or the terminal's risk management: the issuer was not asked.
        Outcome::Declined(reason) if reason.0 >= 100 => (Some("Z1".into()), CryptogramType::Aac),
        Outcome::Declined(reason) => (Some(format!("{:02}", reason.0 % 100)), CryptogramType::Aac),
        _ => return None,
    };
    let cvm = match method {
        PaymentMethod::Wallet => CardholderVerification::ConsumerDevice,
        PaymentMethod::Contactless if result.amount.minor <= 5_000 => CardholderVerification::NoCvm,
        _ => CardholderVerification::OnlinePin,
    };
    Some(EmvData {
        aid: card.aid.to_string(),
        label: Some(card.label.to_string()),
        // Online: "transaction exceeds floor limit" sent it to the issuer.
        tvr: if result.offline {
            [0; 5]
        } else {
            [0, 0, 0, 0x80, 0]
        },
        tsi: if method == PaymentMethod::Chip {
            [0xE8, 0x00]
        } else {
            [0x00, 0x00]
        },
        arc,
        cvm,
        cryptogram_type,
        cryptogram: serial.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes(),
    })
}

/// Called with the session and the action for faults the simulator cannot apply itself
/// ([`FaultAction::Silence`], [`FaultAction::Reboot`]).
pub type FaultHandler = Box<dyn FnMut(u64, FaultAction) + Send>;

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("terminal", &self.profile.terminal_id)
            .field("batch", &self.batch.number)
            .field("running", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A simulator for `profile`, signing with `identity`'s key. `now` and `wall` fix its
    /// clock: wall time advances with the `Instant`s it is given.
    pub fn new(
        profile: TerminalProfile,
        identity: Arc<LocalIdentity>,
        now: Instant,
        wall: Timestamp,
    ) -> Self {
        let profile_device = profile.device.clone();
        let customer = Customer::new(profile.customer.clone());
        let updates = UpdateStore::shared();
        if let Some(key) = profile.device.update_key {
            updates.lock().unwrap_or_else(|p| p.into_inner()).trust(key);
        }
        Self {
            profile,
            identity,
            clock: (now, wall),
            started: wall,
            jobs: Vec::new(),
            batch: Batch {
                number: 1,
                opened: wall,
                entries: Vec::new(),
            },
            last: None,
            trace: 0,
            next_cards: VecDeque::new(),
            settlements: HashMap::new(),
            faults: Vec::new(),
            fault_handler: None,
            pending_faults: Vec::new(),
            batch_log: None,
            log_errors: 0,
            manual: false,
            given_up: HashMap::new(),
            device: Device::new(profile_device, env!("CARGO_PKG_VERSION").to_string()),
            customer,
            updates,
            stored: Vec::new(),
            offline: OfflineOutcomes::shared(),
        }
    }

    /// Keeps the batch (every result with its command, and every settlement) in an append-only
    /// file, synced after each entry, and restores it from there: a simulator restarted
    /// mid-batch settles the same totals. A torn last entry is cut off.
    pub fn with_batch_log(mut self, path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let (mut log, entries) = BatchLog::open(path.as_ref())?;
        // When the open batch began: logged for the first batch, the close of the one before
        // for every later one. A log written before the opening was logged has neither for its
        // first batch: its earliest result is the best bound there is.
        let mut opened = None;
        for entry in entries {
            match entry {
                Logged::Result(request, result) => {
                    if opened.is_none() {
                        opened = Some(result.time);
                    }
                    self.restore(&request, result);
                }
                Logged::Settlement(s) => {
                    opened = Some(s.closed);
                    self.batch = Batch {
                        number: s.batch_number + 1,
                        opened: s.closed,
                        entries: Vec::new(),
                    };
                    self.settlements.insert(s.idempotency_key, s);
                }
                Logged::Opened(at) => opened = Some(at),
                Logged::Offline(outcome) => self.offline_outcome(outcome),
            }
        }
        match opened {
            Some(at) => self.batch.opened = at,
            None => log.append_opened(self.batch.opened)?,
        }
        self.batch_log = Some(log);
        Ok(self)
    }

    fn restore(&mut self, request: &TransactionRequest, result: TransactionResult) {
        let trace = result
            .reference
            .as_deref()
            .and_then(|r| r.get(4..))
            .and_then(|t| t.parse().ok())
            .unwrap_or(self.trace + 1);
        self.trace = self.trace.max(trace);
        if let Some(b) = result
            .reference
            .as_deref()
            .and_then(|r| r.get(..4))
            .and_then(|b| b.parse().ok())
        {
            self.batch.number = b;
        }
        self.apply(&request.command, &result);
        let card = result
            .method
            .map(|m| TestCard::for_method(m, result.amount.minor));
        self.batch.entries.push(Entry {
            reserved: if result.kind == TransactionKind::PreAuth {
                result.approved_minor
            } else {
                0
            },
            result: result.clone(),
            card,
            trace,
            voided: false,
            declined_after: false,
            closed: false,
        });
        // Approved offline and not forwarded before the restart: still to forward (an outcome
        // logged later takes it off the list again).
        if result.offline && result.outcome.is_approved() {
            self.stored.push(result.clone());
            self.device.set_stored(self.stored.len());
        }
        self.last = Some(result);
    }

    /// Applies the final outcome of a payment approved offline: off the list to forward, kept
    /// for the sessions to push and answer, and — declined after the fact — out of the open
    /// batch's totals.
    fn offline_outcome(&mut self, outcome: OfflineOutcome) {
        let key = outcome.idempotency_key;
        self.stored.retain(|r| r.idempotency_key != key);
        self.device.set_stored(self.stored.len());
        if matches!(outcome.state, OfflineState::Declined(_))
            && let Some(e) = self
                .batch
                .entries
                .iter_mut()
                .find(|e| e.result.idempotency_key == key)
        {
            e.declined_after = true;
        }
        self.offline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(outcome);
    }

    /// Entries the batch log failed to write (the disk is full or gone); 0 normally.
    pub fn batch_log_errors(&self) -> u64 {
        self.log_errors
    }

    /// Injects `faults` at the named steps of the next payments (see docs/simulator.md).
    pub fn set_faults(&mut self, faults: Vec<Fault>) {
        self.faults = faults;
    }

    /// The faults not yet used up.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Who applies the faults the simulator cannot apply itself: silencing a link, rebooting.
    pub fn set_fault_handler(&mut self, handler: FaultHandler) {
        self.fault_handler = Some(handler);
    }

    /// Cards come from [`present`](Self::present) only (a person at the console): a payment
    /// waits for one until the card timeout instead of taking the card its amount selects.
    pub fn set_manual_cards(&mut self, manual: bool) {
        self.manual = manual;
    }

    /// Whether a payment is waiting for a card to be presented.
    pub fn waiting_for_card(&self) -> bool {
        self.jobs.iter().any(|j| j.step == Step::Card)
    }

    /// Uses up one fault for `point`, if any.
    fn strike(&mut self, point: FaultPoint) -> Option<FaultAction> {
        let f = self
            .faults
            .iter_mut()
            .find(|f| f.at == point && f.times > 0)?;
        f.times -= 1;
        Some(f.action)
    }

    /// Applies `action` to `session` now.
    fn act(&mut self, action: FaultAction, session: &mut TerminalSession, now: Instant) {
        match action {
            FaultAction::Drop => {
                let id = session.id();
                session.link_lost(now);
                self.pending_faults.retain(|f| f.0 != id);
                // The session ends without telling the app: its jobs go on without it.
                for job in &mut self.jobs {
                    if job.session == Some(id) {
                        job.session = None;
                    }
                }
            }
            other => {
                if let Some(handler) = &mut self.fault_handler {
                    handler(session.id(), other);
                }
            }
        }
    }

    /// The profile.
    pub fn profile(&self) -> &TerminalProfile {
        &self.profile
    }

    /// Presents `card` for the next payment instead of the one its amount selects (a scenario
    /// step, or a person at the console).
    pub fn present(&mut self, card: CardBehaviour) {
        self.next_cards.push_back(card);
    }

    /// The telemetry board the simulator reports its battery, power, paper and acquirer link
    /// on: the [`TerminalContext`] its sessions are made with must hold it (as
    /// [`context`](Self::context) makes it) for them to answer queries and push changes.
    pub fn telemetry(&self) -> SharedTelemetry {
        self.device.shared()
    }

    /// The context for this simulator's sessions: its keys and capabilities, `registry`, an
    /// in-memory result store of `capacity` keys, and its telemetry board.
    pub fn context(&self, registry: PairingRegistry, capacity: usize) -> TerminalContext {
        let mut context = TerminalContext::new(
            self.identity.clone(),
            registry,
            self.profile.capabilities(),
            capacity,
        );
        context.telemetry = self.telemetry();
        context.updates = self.updates.clone();
        context.offline = self.offline.clone();
        context
    }

    /// Forwards the payments approved offline to the acquirer: each is confirmed — except one of
    /// x.66, which the issuer declines after the fact — and its signed final outcome recorded
    /// for the sessions to push.
    fn forward(&mut self, now: Instant) {
        if self.stored.is_empty() {
            return;
        }
        let time = self.wall(now);
        for result in self.stored.clone() {
            let state = if result.amount.minor % 100 == 66 {
                OfflineState::Declined(DeclineReason::DO_NOT_HONOUR)
            } else {
                OfflineState::Confirmed
            };
            let mut outcome = OfflineOutcome {
                request_id: None,
                idempotency_key: result.idempotency_key,
                transaction_id: result.transaction_id,
                terminal_id: result.terminal_id,
                state,
                time,
                signature: None,
            };
            self.identity.signing().sign_offline_outcome(&mut outcome);
            if let Some(log) = &mut self.batch_log
                && log.append_offline(&outcome).is_err()
            {
                self.log_errors += 1;
            }
            self.offline_outcome(outcome);
        }
    }

    /// Whether one more payment of `amount` fits the offline limits the terminal announces.
    fn offline_room(&self, amount: u64) -> bool {
        let stored: u64 = self.stored.iter().map(|r| r.approved_minor).sum();
        amount <= self.profile.floor_limit
            && self.stored.len() < OFFLINE_COUNT as usize
            && stored + amount <= self.profile.floor_limit * u64::from(OFFLINE_COUNT)
    }

    /// Tells the update store whether a payment runs (updates wait for none to).
    fn mark_busy(&self) {
        self.updates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_busy(!self.jobs.is_empty());
    }

    /// What the customer display shows (the last cart a client sent).
    pub fn customer_display(&self) -> Option<&posbridge_wire::CustomerDisplay> {
        self.customer.shown()
    }

    /// The operator refilled the printer's paper.
    pub fn refill_paper(&mut self) {
        self.device.refill_paper();
    }

    /// The open batch's number.
    pub fn batch_number(&self) -> u32 {
        self.batch.number
    }

    /// Every transaction of the open batch, in order (what the simulated acquirer was asked
    /// for: a key appearing twice here would be a double charge).
    pub fn transactions(&self) -> impl Iterator<Item = &TransactionResult> {
        self.batch.entries.iter().map(|e| &e.result)
    }

    /// The open batch's totals per kind and currency (approved transactions only; a payment
    /// approved offline counts until the issuer declines it after the fact).
    pub fn totals(&self) -> Vec<Totals> {
        Totals::of(
            self.batch
                .entries
                .iter()
                .filter(|e| !e.declined_after)
                .map(|e| &e.result),
        )
    }

    fn wall(&self, now: Instant) -> Timestamp {
        let (base, wall) = self.clock;
        Timestamp(wall.0 + now.saturating_duration_since(base).as_millis() as u64)
    }

    fn latency(&self) -> Latency {
        self.profile.latency
    }

    fn find(&self, target: &TransactionRef) -> Option<usize> {
        self.batch.entries.iter().position(|e| match target {
            TransactionRef::Id(id) => e.result.transaction_id == *id,
            TransactionRef::Key(k) => e.result.idempotency_key == *k,
            _ => false,
        })
    }

    /// Checks a follow-up command against the batch: `Some(error)` if it cannot run.
    fn check_original(&self, cmd: &TransactionCommand) -> Option<ErrorCode> {
        let original = cmd.original()?;
        let Some(i) = self.find(original) else {
            return match cmd {
                // An unreferenced refund is fine; a referenced one needs its sale.
                TransactionCommand::Refund { .. } => Some(ErrorCode::ORIGINAL_NOT_FOUND),
                _ => Some(ErrorCode::ORIGINAL_NOT_FOUND),
            };
        };
        let e = &self.batch.entries[i];
        let ok = e.result.outcome.is_approved()
            && !e.voided
            && !e.declined_after
            && match cmd {
                TransactionCommand::Void { .. } => {
                    e.result.kind != TransactionKind::Void && !e.closed
                }
                TransactionCommand::Capture { amount, .. } => {
                    e.result.kind == TransactionKind::PreAuth
                        && !e.closed
                        && amount.minor <= e.reserved
                }
                TransactionCommand::IncrementalAuth { .. }
                | TransactionCommand::PreAuthCancel { .. } => {
                    e.result.kind == TransactionKind::PreAuth && !e.closed
                }
                TransactionCommand::Refund { amount, .. } => {
                    e.result.kind == TransactionKind::Sale
                        && amount.currency == e.result.amount.currency
                        && amount.minor <= e.result.approved_minor
                }
                _ => true,
            };
        (!ok).then_some(ErrorCode::ORIGINAL_NOT_ELIGIBLE)
    }

    fn start(&mut self, session: &mut TerminalSession, request: &TransactionRequest, now: Instant) {
        if let Some(result) = self.given_up.get(&request.idempotency_key) {
            let _ = session.complete(result.clone(), now);
            return;
        }
        if let Some(code) = self.check_original(&request.command) {
            self.finish(session, request, None, Outcome::Failed(code), None, now);
            return;
        }
        let amount = request.command.amount().map_or(0, |a| a.minor);
        let presented = self.next_cards.pop_front();
        let waiting = self.manual && presented.is_none();
        let card = presented.unwrap_or_else(|| {
            if waiting {
                CardBehaviour::NoCard
            } else {
                CardBehaviour::for_amount(amount)
            }
        });
        let method = request
            .methods
            .and_then(|m| {
                self.profile
                    .methods
                    .iter()
                    .copied()
                    .find(|p| m.contains(*p))
            })
            .or_else(|| self.profile.methods.first().copied());
        // Follow-ups on an earlier card payment need no card: straight to the host.
        let needs_card = !matches!(
            request.command,
            TransactionCommand::Void { .. }
                | TransactionCommand::Capture { .. }
                | TransactionCommand::IncrementalAuth { .. }
                | TransactionCommand::PreAuthCancel { .. }
        );
        let (step, stage, due) = if needs_card {
            let wait = if waiting {
                // Looks for a presented card every 100 ms until the card timeout.
                Duration::from_millis(100)
            } else if card == CardBehaviour::NoCard {
                self.latency().card_timeout
            } else {
                self.latency().card
            };
            (Step::Card, ProgressStage::WaitingForCard, now + wait)
        } else {
            (
                Step::Online,
                ProgressStage::ProcessingOnline,
                now + self.latency().online,
            )
        };
        let _ = session.progress(stage, None, now);
        self.jobs.push(Job {
            session: Some(session.id()),
            request: request.clone(),
            step,
            due,
            card: if needs_card {
                card
            } else {
                CardBehaviour::Approve
            },
            method: if needs_card { method } else { None },
            waiting_since: (waiting && needs_card).then_some(now),
        });
        if let Some(action) = self.strike(FaultPoint::AfterRequest) {
            self.act(action, session, now);
        }
    }

    /// Moves a job one step on; returns it if it is still running.
    fn advance(
        &mut self,
        session: &mut TerminalSession,
        mut job: Job,
        now: Instant,
    ) -> Option<Job> {
        let l = self.latency();
        match job.step {
            Step::Card => {
                if let Some(since) = job.waiting_since {
                    match self.next_cards.pop_front() {
                        Some(card) => {
                            job.card = card;
                            job.waiting_since = None;
                        }
                        None if now.saturating_duration_since(since) < l.card_timeout => {
                            job.due = now + Duration::from_millis(100);
                            return Some(job);
                        }
                        None => job.waiting_since = None,
                    }
                }
                if let Some(code) =
                    (job.card == CardBehaviour::NoCard).then_some(ErrorCode::TIMEOUT)
                {
                    self.finish(
                        session,
                        &job.request,
                        None,
                        Outcome::Failed(code),
                        None,
                        now,
                    );
                    return None;
                }
                let _ = session.progress(ProgressStage::CardRead, job.method, now);
                job.step = Step::Read;
                job.due = now + l.read;
                if job.session == Some(session.id())
                    && let Some(action) = self.strike(FaultPoint::AfterCardRead)
                {
                    if action == FaultAction::Drop {
                        // The payment goes on without the connection.
                        job.session = None;
                    }
                    self.act(action, session, now);
                }
            }
            Step::Read => {
                if let Some(code) = job.card.failure() {
                    self.finish(
                        session,
                        &job.request,
                        job.method,
                        Outcome::Failed(code),
                        None,
                        now,
                    );
                    return None;
                }
                if job.card.asks_pin() {
                    let _ = session.progress(ProgressStage::PinEntry, job.method, now);
                    job.step = Step::Pin;
                    job.due = now + l.pin;
                } else {
                    let _ = session.progress(ProgressStage::ProcessingOnline, job.method, now);
                    job.step = Step::Online;
                    job.due = now + l.online;
                }
            }
            Step::Pin => {
                if job.card == CardBehaviour::WrongPin {
                    let outcome = Outcome::Declined(DeclineReason::WRONG_PIN);
                    self.finish(session, &job.request, job.method, outcome, None, now);
                    return None;
                }
                let _ = session.progress(ProgressStage::ProcessingOnline, job.method, now);
                job.step = Step::Online;
                job.due = now + l.online;
            }
            Step::Online => {
                let amount = job.request.command.amount().map_or(0, |a| a.minor);
                // With the acquirer gone, every card that would have gone online meets an
                // unreachable issuer: approved offline under the floor limit, declined above.
                let card = match job.card {
                    CardBehaviour::Approve | CardBehaviour::PinRequired
                        if self.device.offline() =>
                    {
                        CardBehaviour::IssuerOffline
                    }
                    card => card,
                };
                let (outcome, approved, offline) = match card {
                    CardBehaviour::Decline(reason) => (Outcome::Declined(reason), None, false),
                    CardBehaviour::Partial { percent }
                        if matches!(
                            job.request.command.kind(),
                            TransactionKind::Sale | TransactionKind::PreAuth
                        ) =>
                    {
                        (
                            Outcome::PartiallyApproved,
                            Some(amount * u64::from(percent.min(99)) / 100),
                            false,
                        )
                    }
                    CardBehaviour::IssuerOffline if self.offline_room(amount) => {
                        (Outcome::Approved, None, true)
                    }
                    CardBehaviour::IssuerOffline => (
                        Outcome::Declined(DeclineReason::ISSUER_UNAVAILABLE),
                        None,
                        false,
                    ),
                    _ => (Outcome::Approved, None, false),
                };
                let request = job.request.clone();
                self.finish_with(
                    session, &request, job.method, outcome, approved, offline, now,
                );
                return None;
            }
        }
        Some(job)
    }

    fn finish(
        &mut self,
        session: &mut TerminalSession,
        request: &TransactionRequest,
        method: Option<PaymentMethod>,
        outcome: Outcome,
        approved: Option<u64>,
        now: Instant,
    ) {
        self.finish_with(session, request, method, outcome, approved, false, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_with(
        &mut self,
        session: &mut TerminalSession,
        request: &TransactionRequest,
        method: Option<PaymentMethod>,
        outcome: Outcome,
        approved: Option<u64>,
        offline: bool,
        now: Instant,
    ) {
        self.trace += 1;
        let trace = self.trace;
        let original = request
            .command
            .original()
            .and_then(|o| self.find(o))
            .map(|i| self.batch.entries[i].clone());
        // Follow-ups name the original's amount when they carry none.
        let amount = request.command.amount().unwrap_or_else(|| {
            original.as_ref().map_or(
                posbridge_wire::Amount::new(
                    0,
                    self.profile
                        .currencies
                        .first()
                        .copied()
                        .unwrap_or(Currency::EUR),
                ),
                |o| {
                    posbridge_wire::Amount::new(
                        o.reserved.max(o.result.approved_minor),
                        o.result.amount.currency,
                    )
                },
            )
        });
        // A referenced refund goes back to the card that paid; others use the card presented.
        let original_card = original.as_ref().and_then(|o| o.card.clone());
        let card = match (&request.command, original_card) {
            (TransactionCommand::Refund { .. }, Some(c)) => Some(c),
            (_, original_card) => method
                .map(|m| TestCard::for_method(m, amount.minor))
                .or(original_card),
        };
        let approved_minor = match outcome {
            Outcome::Approved => amount.minor,
            Outcome::PartiallyApproved => approved.unwrap_or(0),
            _ => 0,
        };
        let (tip, cashback) = match &request.command {
            TransactionCommand::Sale { tip, cashback, .. } if outcome.is_approved() => {
                (*tip, *cashback)
            }
            TransactionCommand::Capture { tip, .. } if outcome.is_approved() => (*tip, None),
            _ => (None, None),
        };
        let mut result = TransactionResult {
            request_id: request.request_id,
            idempotency_key: request.idempotency_key,
            // Unique across restarts as long as the clock moves on: the simulator's start time,
            // the batch, the trace number.
            transaction_id: TransactionId::from_u128(
                u128::from(self.started.0) << 64
                    | u128::from(self.batch.number) << 32
                    | u128::from(trace),
            ),
            terminal_id: self.profile.terminal_id,
            kind: request.command.kind(),
            outcome,
            amount,
            approved_minor,
            tip,
            cashback,
            method: method.or_else(|| original.as_ref().and_then(|o| o.result.method)),
            pan: card.as_ref().map(|c| c.pan),
            card_scheme: card.as_ref().map(|c| c.scheme.to_string()),
            auth_code: outcome
                .is_approved()
                .then(|| format!("{:06}", (u64::from(trace) * 7919 + 104_729) % 1_000_000)),
            reference: Some(format!("{:04}{:08}", self.batch.number, trace)),
            time: self.wall(now),
            offline,
            balance: (request.command.kind() == TransactionKind::BalanceInquiry
                && outcome.is_approved())
            .then_some(123_456),
            receipts: Vec::new(),
            signature: None,
            emv: None,
        };
        result.emv = card.as_ref().and_then(|c| {
            emv_data(
                c,
                &result,
                u64::from(self.batch.number) << 32 | u64::from(trace),
            )
        });
        if self.profile.receipts_in_result {
            result.receipts = [ReceiptCopy::Merchant, ReceiptCopy::Customer]
                .into_iter()
                .map(|copy| receipt(&self.profile, &result, card.as_ref(), trace, copy))
                .collect();
        }
        self.identity.signing().sign_result(&mut result);
        // Whether this payment met the acquirer (counting it may take the acquirer away).
        let reachable = !self.device.offline();
        self.device.command_done(result.outcome.is_approved());
        if result.offline && result.outcome.is_approved() {
            self.stored.push(result.clone());
            self.device.set_stored(self.stored.len());
        } else if reachable || !self.device.offline() {
            // The acquirer was there for this payment, or is back after it: what was stored
            // goes to it now.
            self.forward(now);
        }
        self.apply(&request.command, &result);
        self.batch.entries.push(Entry {
            result: result.clone(),
            card,
            trace,
            voided: false,
            declined_after: false,
            reserved: if result.kind == TransactionKind::PreAuth {
                result.approved_minor
            } else {
                0
            },
            closed: false,
        });
        self.last = Some(result.clone());
        if let Some(log) = &mut self.batch_log
            && log.append_result(request, &result).is_err()
        {
            self.log_errors += 1;
        }
        // Faults strike only the connection whose client waits for this result.
        let owned = session.running_key() == Some(request.idempotency_key);
        let before = owned
            .then(|| self.strike(FaultPoint::BeforeResult))
            .flatten();
        if let Some(action @ (FaultAction::Drop | FaultAction::Silence)) = before {
            self.act(action, session, now);
        }
        // The session stores the result under its key before sending; an error here means the
        // command was not this session's (it is stored all the same) or the link is gone.
        let _ = session.complete(result, now);
        if before == Some(FaultAction::Reboot) {
            self.act(FaultAction::Reboot, session, now);
        } else if owned
            && before.is_none()
            && let Some(action) = self.strike(FaultPoint::AfterResult)
        {
            // After the result has been written to the link.
            self.pending_faults
                .push((session.id(), now + Duration::from_millis(50), action));
        }
    }

    /// What an approved follow-up does to its original.
    fn apply(&mut self, cmd: &TransactionCommand, result: &TransactionResult) {
        if !result.outcome.is_approved() {
            return;
        }
        let Some(i) = cmd.original().and_then(|o| self.find(o)) else {
            return;
        };
        let e = &mut self.batch.entries[i];
        match cmd {
            TransactionCommand::Void { .. } => e.voided = true,
            TransactionCommand::Capture { .. } | TransactionCommand::PreAuthCancel { .. } => {
                e.closed = true
            }
            TransactionCommand::IncrementalAuth { amount, .. } => e.reserved += amount.minor,
            _ => {}
        }
    }

    fn settle(&mut self, s: &SettlementRequest, now: Instant) -> SettlementResult {
        if let Some(done) = self.settlements.get(&s.idempotency_key) {
            let mut again = done.clone();
            again.request_id = s.request_id;
            return again;
        }
        let mut result = SettlementResult {
            request_id: s.request_id,
            idempotency_key: s.idempotency_key,
            terminal_id: self.profile.terminal_id,
            batch_number: self.batch.number,
            status: Ok(()),
            opened: Some(self.batch.opened),
            closed: self.wall(now),
            totals: self.totals(),
            receipt: None,
            signature: None,
        };
        self.identity.signing().sign_settlement(&mut result);
        if let Some(log) = &mut self.batch_log
            && log.append_settlement(&result).is_err()
        {
            self.log_errors += 1;
        }
        self.settlements.insert(s.idempotency_key, result.clone());
        self.batch = Batch {
            number: self.batch.number + 1,
            opened: self.wall(now),
            entries: Vec::new(),
        };
        result
    }

    fn receipt_for(&self, r: &ReceiptRequest) -> Message {
        match self.find(&r.target) {
            Some(i) => {
                let e = &self.batch.entries[i];
                Message::ReceiptResponse(ReceiptResponse {
                    request_id: r.request_id,
                    receipt: receipt(&self.profile, &e.result, e.card.as_ref(), e.trace, r.copy),
                })
            }
            None => Message::Error(ErrorMessage {
                request_id: Some(r.request_id),
                code: ErrorCode::NOT_FOUND,
                detail: Some("no such transaction in the open batch".into()),
                retry_after_ms: None,
            }),
        }
    }

    fn cancel(
        &mut self,
        session: &mut TerminalSession,
        request_id: RequestId,
        target: RequestId,
        now: Instant,
    ) {
        // The session asks only about the command it runs (named by the latest request id).
        let key = session.running_key();
        let idx = self
            .jobs
            .iter()
            .position(|j| Some(j.request.idempotency_key) == key);
        let state = match idx {
            Some(i) if self.jobs[i].step != Step::Online => CancelState::Accepted,
            Some(_) => CancelState::TooLate,
            None => CancelState::NotFound,
        };
        let _ = session.respond(
            &Message::CancelResponse(CancelResponse {
                request_id,
                target,
                state,
            }),
            now,
        );
        if state == CancelState::Accepted
            && let Some(i) = idx
        {
            let job = self.jobs.remove(i);
            self.finish(
                session,
                &job.request,
                job.method,
                Outcome::Cancelled,
                None,
                now,
            );
        }
    }
}

/// Whether `session` moves `job` on: its own jobs, and those whose connection is gone.
fn serves(job: &Job, session: &TerminalSession) -> bool {
    job.session.is_none_or(|id| id == session.id())
}

impl TerminalApp for Simulator {
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        match event {
            TerminalEvent::Transaction {
                request,
                resumed: false,
            } => self.start(session, request, now),
            // Resumed over a new connection: a job still running moves to this session, so its
            // result goes to the client that asks now. No job: the simulator restarted (it never
            // reached the issuer), or the connection that claimed the key has not handed its
            // start over yet. Either way it is failed here, so the client learns nothing was
            // charged, and a start that comes later gets this result, not a job.
            TerminalEvent::Transaction {
                request,
                resumed: true,
            } => {
                let key = request.idempotency_key;
                match self
                    .jobs
                    .iter_mut()
                    .find(|j| j.request.idempotency_key == key)
                {
                    Some(job) => job.session = Some(session.id()),
                    None => {
                        let outcome = Outcome::Failed(ErrorCode::INTERNAL);
                        self.finish(session, request, None, outcome, None, now);
                        if let Some(result) =
                            self.last.as_ref().filter(|r| r.idempotency_key == key)
                        {
                            self.given_up.insert(key, result.clone());
                        }
                    }
                }
            }
            // A connection ended: its jobs go on without it; its questions leave the screen.
            TerminalEvent::Closed(_) => {
                self.customer.closed(session.id());
                self.pending_faults.retain(|f| f.0 != session.id());
                for job in &mut self.jobs {
                    if job.session == Some(session.id()) {
                        job.session = None;
                    }
                }
            }
            TerminalEvent::CancelRequested { request_id, target } => {
                // A question on the screen, or else the running payment.
                let was_a_question = self.customer.cancel(session, *request_id, *target, now);
                if !was_a_question {
                    self.cancel(session, *request_id, *target, now)
                }
            }
            TerminalEvent::Request(Message::CustomerDisplay(d)) => {
                self.customer.display(session, d, now)
            }
            TerminalEvent::Request(Message::CustomerInput(i)) => self.customer.ask(session, i, now),
            // Installed with a restart: the new version is reported, and this connection ends
            // as the terminal reboots (the till connects again).
            TerminalEvent::UpdateReady {
                request_id,
                manifest,
                ..
            } => {
                let state = if self.device.install(&manifest.version) {
                    UpdateState::Installed {
                        version: manifest.version.clone(),
                    }
                } else {
                    UpdateState::Refused(UpdateRefusal::InstallFailed)
                };
                let installed = matches!(state, UpdateState::Installed { .. });
                let _ = session.respond(
                    &Message::UpdateStatus(UpdateStatus {
                        request_id: *request_id,
                        state,
                    }),
                    now,
                );
                if installed {
                    session.close(now);
                }
            }
            TerminalEvent::Request(Message::Settlement(s)) => {
                let result = self.settle(s, now);
                let _ = session.respond(&Message::SettlementResult(result), now);
            }
            TerminalEvent::Request(Message::ReceiptRequest(r)) => {
                let answer = self.receipt_for(r);
                let _ = session.respond(&answer, now);
            }
            TerminalEvent::Request(Message::LastTransaction(q)) => {
                let answer = Message::LastTransactionResponse(LastTransactionResponse {
                    request_id: q.request_id,
                    result: self.last.clone().map(Box::new),
                });
                let _ = session.respond(&answer, now);
            }
            TerminalEvent::Configured(config) => {
                if let Some(clock) = config.clock {
                    self.clock = (now, clock);
                }
            }
            _ => {}
        }
        self.mark_busy();
    }

    fn poll_timeout(&self, session: &TerminalSession) -> Option<Instant> {
        self.jobs
            .iter()
            .filter(|j| serves(j, session))
            .map(|j| j.due)
            .chain(
                self.pending_faults
                    .iter()
                    .filter(|f| f.0 == session.id())
                    .map(|f| f.1),
            )
            .chain(self.customer.poll_timeout(session))
            .min()
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        self.customer.handle_timeout(session, now);
        let id = session.id();
        if let Some(i) = self
            .pending_faults
            .iter()
            .position(|f| f.0 == id && f.1 <= now)
        {
            let (_, _, action) = self.pending_faults.remove(i);
            self.act(action, session, now);
            if session.is_closed() {
                return;
            }
        }
        // Steps with no latency finish in the same call.
        for _ in 0..8 {
            let (due, rest): (Vec<Job>, Vec<Job>) = std::mem::take(&mut self.jobs)
                .into_iter()
                .partition(|j| j.due <= now && serves(j, session));
            self.jobs = rest;
            if due.is_empty() {
                break;
            }
            for job in due {
                if let Some(job) = self.advance(session, job, now) {
                    self.jobs.push(job);
                }
            }
        }
        self.mark_busy();
    }
}
