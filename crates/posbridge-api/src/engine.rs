//! The one journaled engine: every money command of every protocol goes through it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge_journal::{Entry, EntryState, Journal, JournalError, same_command};
use posbridge_wire::{
    Capabilities, CustomerReply, IdempotencyKey, LeaseState, OfflineOutcome, OfflineState,
    OperatorAuth, ProgressStage, Receipt, ReceiptCopy, RequestId, SettlementResult, Telemetry,
    Timestamp, TransactionCommand, TransactionRef, TransactionRequest, TransactionResult,
    TransactionStatus, UpdateManifest, UpdateState,
};
use tokio::sync::broadcast;

use crate::adapter::{Hooks, ReadJournal};
use crate::mutations::{self, Mutation};
use crate::recovery::{Step, decide, reversal_key, reversal_of};
use crate::{
    Adapter, Answer, Call, CallError, Cart, CustomerPrompt, DoubtReason, Exchange, InDoubt,
    PaymentError, PaymentTerminal, ProgressEvent, ProgressEvents, Records, RecoveryPolicy,
    RecoveryReport, Resolution, ReversalPolicy, TelemetryEvents, Unresolved,
};

/// The system's wall clock, in milliseconds since the Unix epoch.
pub fn wall_clock() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// A terminal behind an [`Adapter`], with a journal: what an app takes money with, whatever the
/// protocol. It implements [`PaymentTerminal`] and owns, once for every protocol:
///
/// * the command checked against the terminal's capabilities, then its **intent journaled
///   before the first byte** leaves, and the sent mark when the adapter says it left;
/// * results **verified** where the protocol signs them, then recorded; refusals recorded as
///   refused; lost answers marked **in doubt** — and every journal failure returned as an
///   error, never dropped;
/// * **recovery before anything new**: commands in doubt are resolved by asking the terminal
///   (the adapter's [`resolve`](Adapter::resolve)) and the one [`RecoveryPolicy`] decides;
///   for a protocol that keeps only its last transaction, nothing new is sent while any stays
///   unresolved;
/// * a key used before gets its recorded outcome, never a second payment; a key running in this
///   process is not sent twice;
/// * progress journaled and broadcast ([`progress`](PaymentTerminal::progress)), and a
///   `transaction` tracing span per money command (key, kind, amount, currency — never card
///   numbers or credentials).
pub struct Engine<A, J> {
    adapter: A,
    journal: Mutex<J>,
    progress: broadcast::Sender<ProgressEvent>,
    /// Keys running in this process (their call, or recovery), with their last stage.
    live: Mutex<HashMap<IdempotencyKey, Option<ProgressStage>>>,
    policy: RecoveryPolicy,
    clock: fn() -> Timestamp,
    /// Whether the journal may hold open commands of this terminal that this engine has not
    /// resolved: true at first (a journal from before), set by every command left open, cleared
    /// by a recovery that left nothing open — so that a new command reads the journal's open
    /// entries only when there can be some. (The journal is this engine's: another process
    /// writing the same journal file is not seen until the next recovery.)
    maybe_open: std::sync::atomic::AtomicBool,
}

impl<A, J> fmt::Debug for Engine<A, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// Marks a key as running in this process until dropped. Dropped before it was [settled]
/// (an error, or a call whose future was dropped midway), it tells the engine that the journal
/// may hold the command open.
///
/// [settled]: LiveKey::settle
struct LiveKey<'a> {
    live: &'a Mutex<HashMap<IdempotencyKey, Option<ProgressStage>>>,
    maybe_open: &'a std::sync::atomic::AtomicBool,
    key: IdempotencyKey,
    settled: std::sync::atomic::AtomicBool,
}

impl LiveKey<'_> {
    /// The command ended final in the journal (a result recorded, a refusal recorded).
    fn settle(&self) {
        self.settled
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Settles it if `outcome` leaves the command final.
    fn settle_if_final<T, E>(&self, outcome: &Result<T, PaymentError<E>>) {
        if matches!(
            outcome,
            Ok(_)
                | Err(PaymentError::Refused { .. }
                    | PaymentError::AlreadyRefused { .. }
                    | PaymentError::Invalid(_))
        ) {
            self.settle();
        }
    }
}

impl Drop for LiveKey<'_> {
    fn drop(&mut self) {
        if !self.settled.load(std::sync::atomic::Ordering::SeqCst) {
            self.maybe_open
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        lock(self.live).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine's side of an [`Exchange`]: the journal's sent mark and progress, and the
/// broadcast.
struct ExchangeHooks<'a, J> {
    journal: &'a Mutex<J>,
    progress: &'a broadcast::Sender<ProgressEvent>,
    live: &'a Mutex<HashMap<IdempotencyKey, Option<ProgressStage>>>,
    clock: fn() -> Timestamp,
    failed: Mutex<Option<JournalError>>,
}

impl<J: Journal> Hooks for ExchangeHooks<'_, J> {
    fn sent(&self, key: &IdempotencyKey) {
        if let Err(e) = lock(self.journal).mark_sent(key, (self.clock)()) {
            tracing::warn!(error = %e, "sent mark not journaled");
            lock(&self.failed).get_or_insert(e);
        }
    }

    fn progress(&self, event: ProgressEvent) {
        if let Some(stage) = lock(self.live).get_mut(&event.key) {
            *stage = Some(event.stage);
        }
        if let Err(e) = lock(self.journal).record_progress(&event.key, event.stage, (self.clock)())
        {
            // Where a command is at is for screens and reports; its outcome does not depend on
            // it. The failure is kept and reported if the outcome cannot be journaled either.
            tracing::warn!(error = %e, "progress not journaled");
            lock(&self.failed).get_or_insert(e);
        }
        // Nobody listening is fine.
        let _ = self.progress.send(event);
    }
}

type Outcome<E> = Result<TransactionResult, PaymentError<E>>;

impl<A: Adapter, J: Journal> Engine<A, J> {
    /// Money commands through `adapter`, journaled in `journal`, with the default
    /// [`RecoveryPolicy`].
    pub fn new(adapter: A, journal: J) -> Self {
        let (progress, _) = broadcast::channel(256);
        Self {
            adapter,
            journal: Mutex::new(journal),
            progress,
            live: Mutex::new(HashMap::new()),
            policy: RecoveryPolicy::default(),
            clock: wall_clock,
            maybe_open: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Recovery follows `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: RecoveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Recovery undoes payments that stay unconfirmed past `policy`'s deadline instead of
    /// completing them (see [`ReversalPolicy`]).
    #[must_use]
    pub fn with_reversal_policy(mut self, policy: ReversalPolicy) -> Self {
        self.policy.reversal = Some(policy);
        self
    }

    /// The wall clock the journal's times and the policy's windows are read from (the system's
    /// by default; tests and model checks set their own).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> Timestamp) -> Self {
        self.clock = clock;
        self
    }

    /// The recovery policy.
    pub fn policy(&self) -> &RecoveryPolicy {
        &self.policy
    }

    /// The protocol adapter (the connection).
    pub fn adapter(&self) -> &A {
        &self.adapter
    }

    /// The journal (do not hold the guard across an `.await`).
    pub fn journal(&self) -> MutexGuard<'_, J> {
        lock(&self.journal)
    }

    /// Gives back the adapter and the journal.
    pub fn into_parts(self) -> (A, J) {
        let journal = self
            .journal
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (self.adapter, journal)
    }

    /// Closes the connection and gives back the journal (to connect again with it).
    pub async fn close(self) -> J {
        let (adapter, journal) = self.into_parts();
        adapter.close().await;
        journal
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn records(&self) -> Records<'_> {
        Records::new(&self.journal as &(dyn ReadJournal + Sync))
    }

    /// Claims `key` for a call or a recovery in this process.
    fn live_key(&self, key: IdempotencyKey) -> Option<LiveKey<'_>> {
        let mut live = lock(&self.live);
        if live.contains_key(&key) {
            return None;
        }
        live.insert(key, None);
        Some(LiveKey {
            live: &self.live,
            maybe_open: &self.maybe_open,
            key,
            settled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs `command` under `key` within `deadline` (see [`run`](Self::run)).
    pub async fn transaction(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        deadline: Duration,
    ) -> Outcome<A::Error> {
        self.run(
            TransactionRequest::new(RequestId::default(), key, command),
            deadline,
        )
        .await
    }

    /// Runs a money command: checked against the terminal's capabilities, earlier commands in
    /// doubt resolved, journaled as an intent, sent, and its result verified and recorded. A key
    /// journaled before gets its recorded outcome, or — if its outcome is open — is resolved
    /// first and sent only if the terminal certainly did not take it. The request's operator
    /// credential is used for this call and never journaled.
    pub async fn run(&self, request: TransactionRequest, deadline: Duration) -> Outcome<A::Error> {
        let span = tracing::info_span!(
            "transaction",
            key = %request.idempotency_key,
            kind = ?request.command.kind(),
            amount = request.command.amount().map(|a| a.minor),
            currency = request.command.amount().map(|a| a.currency.code()),
        );
        tracing::Instrument::instrument(self.run_in_span(request, deadline), span).await
    }

    async fn run_in_span(
        &self,
        request: TransactionRequest,
        deadline: Duration,
    ) -> Outcome<A::Error> {
        let key = request.idempotency_key;
        self.adapter
            .capabilities()
            .check(&request)
            .map_err(PaymentError::Invalid)?;
        let live = self.live_key(key).ok_or(PaymentError::KeyInUse(key))?;
        let outcome = self.run_live(request, deadline).await;
        live.settle_if_final(&outcome);
        outcome
    }

    async fn run_live(&self, request: TransactionRequest, deadline: Duration) -> Outcome<A::Error> {
        let key = request.idempotency_key;
        self.journal_pushed_offline(None)?;
        self.recover_before_new(deadline).await?;
        let terminal = self.adapter.capabilities().terminal_id;
        let existing = if mutations::on(Mutation::IntentAfterSend) {
            self.journal().get(&key)?
        } else {
            self.journal().intent_or_entry(
                terminal,
                &request,
                self.adapter.terminal_key(),
                self.now(),
            )?
        };
        match existing {
            None => {
                tracing::debug!("intent journaled");
                self.send_and_record(request, deadline).await
            }
            Some(entry) => {
                if !same_command(&entry.request, &request) {
                    return Err(PaymentError::Journal(JournalError::KeyReused(key)));
                }
                self.finish_journaled(entry, request.operator, deadline)
                    .await
            }
        }
    }

    /// The app asks again for a journaled command (the same key): its recorded outcome if it
    /// has one; otherwise the terminal is asked what became of it and it is sent only if the
    /// terminal certainly did not take it (joined if it runs, on terminals that remember keys).
    async fn finish_journaled(
        &self,
        entry: Entry,
        operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> Outcome<A::Error> {
        let key = entry.key();
        match entry.state {
            // Approved offline and pending counts as its result: the payment was taken.
            EntryState::Done | EntryState::OfflinePending => {
                return entry
                    .result
                    .ok_or(PaymentError::Journal(JournalError::Corrupt {
                        key: Some(key),
                        reason: "done without a result".into(),
                    }));
            }
            EntryState::DeclinedAfter => return Err(declined_after(&entry)),
            EntryState::Rejected => {
                return Err(PaymentError::AlreadyRefused {
                    key,
                    note: entry.note,
                });
            }
            EntryState::Intent | EntryState::Sent | EntryState::InDoubt => {}
        }
        let resolution = match self
            .adapter
            .resolve(key, Some(&entry), &self.records(), deadline)
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.in_doubt(key, DoubtReason::Unasked, Some(e))?),
        };
        let mut request = entry.request;
        request.operator = operator;
        match resolution {
            Resolution::Done(r) => self.accept(key, r),
            Resolution::NotDone => self.send_and_record(request, deadline).await,
            Resolution::Running(_) if self.adapter.remembers_keys() => {
                self.send_and_record(request, deadline).await
            }
            Resolution::Running(_) => Err(self.in_doubt(key, DoubtReason::StillRunning, None)?),
            Resolution::Unknown(e) => {
                Err(self.in_doubt(key, DoubtReason::Unidentified, Some(e))?)
            }
        }
    }

    /// Marks `key` in doubt; the error to return (or the journal's, if that failed too).
    fn in_doubt(
        &self,
        key: IdempotencyKey,
        reason: DoubtReason,
        source: Option<A::Error>,
    ) -> Result<PaymentError<A::Error>, PaymentError<A::Error>> {
        let note = match &source {
            Some(s) => format!("{reason} ({s})"),
            None => reason.to_string(),
        };
        tracing::warn!(key = %key, why = %note, "in doubt");
        self.left_open();
        self.journal().mark_in_doubt(&key, &note, self.now())?;
        Ok(PaymentError::InDoubt(InDoubt {
            key,
            reason,
            source,
        }))
    }

    /// Sends a journaled command through the adapter and journals how it ended.
    async fn send_and_record(
        &self,
        request: TransactionRequest,
        deadline: Duration,
    ) -> Outcome<A::Error> {
        let key = request.idempotency_key;
        let hooks = ExchangeHooks {
            journal: &self.journal,
            progress: &self.progress,
            live: &self.live,
            clock: self.clock,
            failed: Mutex::new(None),
        };
        let exchange = Exchange {
            key,
            records: self.records(),
            hooks: &hooks,
        };
        let late_intent = mutations::on(Mutation::IntentAfterSend).then(|| request.clone());
        let answer = self.adapter.send(request, &exchange, deadline).await;
        if let Some(request) = late_intent
            && self.journal().get(&key)?.is_none()
        {
            let terminal = self.adapter.capabilities().terminal_id;
            let mut journal = self.journal();
            journal.record_intent(terminal, &request, self.adapter.terminal_key(), self.now())?;
            journal.mark_sent(&key, self.now())?;
        }
        let outcome = match answer {
            Answer::Result(r) => self.accept(key, r),
            Answer::Refused(refusal) => {
                let note = format!("refused: {refusal}");
                self.journal().mark_rejected(&key, &note, self.now())?;
                tracing::info!(why = %note, "refused");
                Err(PaymentError::Refused {
                    key: Some(key),
                    refusal,
                })
            }
            Answer::NotSent(e) => {
                self.left_open();
                tracing::info!(error = %e, "not sent");
                Err(PaymentError::NotSent { key, source: e })
            }
            Answer::Lost { reason, source } => Err(self.in_doubt(key, reason, source)?),
        };
        if let Some(e) = lock(&hooks.failed).take() {
            // The outcome was journaled (or its failure is the error returned): an earlier
            // intermediate write that failed changes nothing about it.
            tracing::warn!(error = %e, "an intermediate journal write failed");
        }
        outcome
    }

    /// Verifies and records a final result for `key`.
    fn accept(&self, key: IdempotencyKey, mut result: TransactionResult) -> Outcome<A::Error> {
        if result.idempotency_key != key && mutations::on(Mutation::AcceptStaleResult) {
            result.idempotency_key = key;
        }
        if result.idempotency_key != key {
            tracing::error!(answered = %result.idempotency_key, "a result for another key");
            return Err(self.in_doubt(key, DoubtReason::Unexpected, None)?);
        }
        if let Err(e) = self.adapter.verify(&result) {
            tracing::error!("result signature does not verify");
            return Err(self.in_doubt(key, DoubtReason::Unverified, Some(e))?);
        }
        self.journal().record_result(&result, self.now())?;
        // The outcome and ids only: card data stays out of logs.
        tracing::info!(
            outcome = ?result.outcome,
            approved = result.approved_minor,
            transaction = %result.transaction_id,
            "result recorded"
        );
        Ok(result)
    }

    /// Commands of this terminal the journal holds open, oldest first, but those running in
    /// this process.
    fn open_entries(&self) -> Result<Vec<Entry>, JournalError> {
        let terminal = self.adapter.capabilities().terminal_id;
        let open = self.journal().unresolved()?;
        let live = lock(&self.live);
        Ok(open
            .into_iter()
            .filter(|e| e.terminal == terminal && !live.contains_key(&e.key()))
            .collect())
    }

    /// A command may have been left open (in doubt, not sent, or a journal write that failed).
    fn left_open(&self) {
        self.maybe_open
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Resolves what is open before a new command; on a terminal that keeps only its last
    /// transaction, anything left open stops the new command.
    async fn recover_before_new(&self, deadline: Duration) -> Result<(), PaymentError<A::Error>> {
        if !self.maybe_open.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let open = self.open_entries()?;
        if open.is_empty() {
            self.settled_if_nothing_open()?;
            return Ok(());
        }
        let report = self.recover_entries(open, deadline).await?;
        if !self.adapter.remembers_keys() && !report.is_clean() {
            return Err(PaymentError::StillInDoubt(Box::new(report)));
        }
        Ok(())
    }

    /// Resolves every command of this terminal the journal holds open (see
    /// [`PaymentTerminal::recover`]).
    pub async fn recover(
        &self,
        deadline: Duration,
    ) -> Result<RecoveryReport, PaymentError<A::Error>> {
        self.recover_open(deadline).await
    }

    async fn recover_open(
        &self,
        deadline: Duration,
    ) -> Result<RecoveryReport, PaymentError<A::Error>> {
        let open = self.open_entries()?;
        let span = tracing::info_span!("recovery", in_doubt = open.len());
        let mut report =
            tracing::Instrument::instrument(self.recover_entries(open, deadline), span).await?;
        self.resolve_offline(deadline, &mut report).await?;
        Ok(report)
    }

    /// Journals the final outcomes of offline payments the terminal pushed (each changes the
    /// entry it names, if it is this journal's), noting them in `report` if given.
    fn journal_pushed_offline(
        &self,
        mut report: Option<&mut RecoveryReport>,
    ) -> Result<(), JournalError> {
        for outcome in self.adapter.pushed_offline_outcomes() {
            let changed = self.journal_offline(&outcome)?;
            if let (Some(report), true) = (report.as_deref_mut(), changed) {
                note_offline(report, &outcome);
            }
        }
        Ok(())
    }

    /// Journals one offline outcome (signature checked by the adapter); `Ok(true)` if it
    /// changed an entry. Only the storage failing is an error: an outcome for a key this
    /// journal does not hold (another till's payment) is not this journal's, and one that
    /// contradicts the journal is logged and the journal kept.
    fn journal_offline(&self, outcome: &OfflineOutcome) -> Result<bool, JournalError> {
        let key = outcome.idempotency_key;
        match self.journal().record_offline_outcome(outcome, self.now()) {
            Ok(changed) => {
                if changed {
                    tracing::info!(key = %key, state = ?outcome.state, "offline outcome recorded");
                }
                Ok(changed)
            }
            Err(JournalError::UnknownKey(_)) => Ok(false),
            // A result not recorded yet (its answer was lost: recovery records it, then asks
            // for the outcome again), or one the outcome does not fit.
            Err(e @ JournalError::NotOffline(_)) => {
                tracing::warn!(key = %key, error = %e, "offline outcome not recorded");
                Ok(false)
            }
            // Two different final outcomes for one payment: the terminal is broken or forged.
            Err(e @ JournalError::ConflictingResult(_)) => {
                tracing::error!(key = %key, error = %e, "offline outcome not recorded");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Journals pushed offline outcomes, then asks the terminal about every payment of this
    /// terminal still approved offline and pending.
    async fn resolve_offline(
        &self,
        deadline: Duration,
        report: &mut RecoveryReport,
    ) -> Result<(), PaymentError<A::Error>> {
        self.journal_pushed_offline(Some(report))?;
        let terminal = self.adapter.capabilities().terminal_id;
        let pending: Vec<Entry> = self
            .journal()
            .offline_pending()?
            .into_iter()
            .filter(|e| e.terminal == terminal)
            .collect();
        for entry in pending {
            let key = entry.key();
            match self.adapter.offline_outcome(key, deadline).await {
                Ok(Some(outcome)) if outcome.idempotency_key == key => {
                    if self.journal_offline(&outcome)? {
                        note_offline(report, &outcome);
                    } else {
                        report.pending_offline.push(key);
                    }
                }
                Ok(_) => report.pending_offline.push(key),
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "offline outcome not asked");
                    report.pending_offline.push(key);
                }
            }
        }
        Ok(())
    }

    /// Clears [`maybe_open`](Self::maybe_open) if the journal holds no open command of this
    /// terminal but those running now (which set it again if they end open).
    fn settled_if_nothing_open(&self) -> Result<(), JournalError> {
        // Cleared first: a command that ends open while we look sets it again.
        self.maybe_open
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if !self.open_entries()?.is_empty() {
            self.left_open();
        }
        Ok(())
    }

    async fn recover_entries(
        &self,
        open: Vec<Entry>,
        deadline: Duration,
    ) -> Result<RecoveryReport, PaymentError<A::Error>> {
        let mut report = RecoveryReport::default();
        for entry in open {
            let key = entry.key();
            // Another call of this process took it meanwhile: it is theirs.
            let Some(_live) = self.live_key(key) else {
                continue;
            };
            let unresolved = |reason: String| Unresolved { key, reason };
            let resolution = match self
                .adapter
                .resolve(key, Some(&entry), &self.records(), deadline)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    report
                        .unresolved
                        .push(unresolved(format!("the terminal could not be asked: {e}")));
                    continue;
                }
            };
            let step = decide(
                &entry,
                resolution,
                &self.policy,
                self.adapter.remembers_keys(),
                self.now(),
            );
            tracing::debug!(key = %key, step = ?step, "recovery step");
            match step {
                Step::Record(r) => match self.accept(key, r) {
                    Ok(_) => report.recorded.push(key),
                    Err(PaymentError::Journal(e)) => return Err(PaymentError::Journal(e)),
                    Err(e) => report.unresolved.push(unresolved(e.to_string())),
                },
                Step::Reverse(r) => match self.accept(key, r) {
                    Ok(r) => match self.reverse(&r, deadline).await {
                        Ok(()) => report.reversed.push(key),
                        Err(e) => report
                            .unresolved
                            .push(unresolved(format!("recorded; its reversal failed: {e}"))),
                    },
                    Err(PaymentError::Journal(e)) => return Err(PaymentError::Journal(e)),
                    Err(e) => report.unresolved.push(unresolved(e.to_string())),
                },
                Step::Resend => match self.send_and_record(entry.request.clone(), deadline).await {
                    // A refusal is final too: nothing was charged, and the journal says so.
                    Ok(_) | Err(PaymentError::Refused { .. }) => report.resent.push(key),
                    Err(PaymentError::Journal(e)) => return Err(PaymentError::Journal(e)),
                    Err(e) => report.unresolved.push(unresolved(e.to_string())),
                },
                Step::NotTaken => {
                    self.journal().mark_rejected(
                        &key,
                        "not taken: the terminal did not take it, and recovery does not send it again (the customer it was for may have left) — nothing was charged",
                        self.now(),
                    )?;
                    report.not_taken.push(key);
                }
                Step::Join { reverse } => {
                    match self.send_and_record(entry.request.clone(), deadline).await {
                        Ok(r) if reverse && reversal_of(&r).is_some() => {
                            match self.reverse(&r, deadline).await {
                                Ok(()) => report.reversed.push(key),
                                Err(e) => report.unresolved.push(unresolved(format!(
                                    "recorded; its reversal failed: {e}"
                                ))),
                            }
                        }
                        Ok(_) | Err(PaymentError::Refused { .. }) => report.awaited.push(key),
                        Err(PaymentError::InDoubt(InDoubt {
                            reason: DoubtReason::NoAnswer,
                            ..
                        })) => report.running.push(key),
                        Err(PaymentError::Journal(e)) => return Err(PaymentError::Journal(e)),
                        Err(e) => report.unresolved.push(unresolved(e.to_string())),
                    }
                }
                Step::LeaveRunning => report.running.push(key),
                Step::Undecided(e) => {
                    let reason = format!("{} ({e})", DoubtReason::Unidentified);
                    self.journal().mark_in_doubt(&key, &reason, self.now())?;
                    report.unresolved.push(unresolved(reason));
                }
            }
        }
        tracing::info!(report = %report, "recovery done");
        self.settled_if_nothing_open()?;
        Ok(report)
    }

    /// Reverses an approved result under the key derived from its own, with the policy's
    /// operator. Journaled like any command; recovery is not run again for it.
    async fn reverse(
        &self,
        result: &TransactionResult,
        deadline: Duration,
    ) -> Result<(), PaymentError<A::Error>> {
        let Some(command) = reversal_of(result) else {
            return Ok(());
        };
        let key = reversal_key(result.idempotency_key);
        let mut request = TransactionRequest::new(RequestId::default(), key, command);
        request.operator = self
            .policy
            .reversal
            .as_ref()
            .and_then(|p| p.operator.clone());
        tracing::warn!(key = %result.idempotency_key, "unconfirmed past the deadline: reversing");
        let live = self.live_key(key).ok_or(PaymentError::KeyInUse(key))?;
        let existing = self.journal().get(&key)?;
        let reversed = match existing {
            Some(entry) => {
                self.finish_journaled(entry, request.operator.clone(), deadline)
                    .await?
            }
            None => {
                let terminal = self.adapter.capabilities().terminal_id;
                self.journal().record_intent(
                    terminal,
                    &request,
                    self.adapter.terminal_key(),
                    self.now(),
                )?;
                self.send_and_record(request, deadline).await?
            }
        };
        live.settle();
        if reversed.outcome.is_approved() {
            Ok(())
        } else {
            Err(PaymentError::Refused {
                key: Some(key),
                refusal: crate::Refusal::new(
                    posbridge_wire::ErrorCode::ORIGINAL_NOT_ELIGIBLE,
                    format!("the reversal ended {:?}", reversed.outcome),
                ),
            })
        }
    }

    /// Sends a journaled command that is not final again under its key — the app asking for it
    /// (`operator` again for refunds and voids: credentials are never journaled). The terminal
    /// is asked first: a recorded or found result is returned, a running command is joined
    /// where the protocol allows it, and it is sent only if the terminal certainly did not take
    /// it. A refused entry stays refused.
    pub async fn resume(
        &self,
        key: IdempotencyKey,
        operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> Outcome<A::Error> {
        let live = self.live_key(key).ok_or(PaymentError::KeyInUse(key))?;
        let entry = self
            .journal()
            .get(&key)?
            .ok_or(PaymentError::Journal(JournalError::UnknownKey(key)))?;
        let outcome = self.finish_journaled(entry, operator, deadline).await;
        live.settle_if_final(&outcome);
        outcome
    }
}

/// The error for a payment approved offline and declined after the fact.
fn declined_after<E>(entry: &Entry) -> PaymentError<E> {
    // The journal sets the state with the outcome, so the reason is there; a damaged entry
    // without it still reads as declined.
    let reason = match entry.offline.as_ref().map(|o| o.state) {
        Some(OfflineState::Declined(reason)) => reason,
        _ => posbridge_wire::DeclineReason::DO_NOT_HONOUR,
    };
    PaymentError::DeclinedAfter {
        key: entry.key(),
        reason,
    }
}

/// Notes an offline outcome that changed the journal in `report`.
fn note_offline(report: &mut RecoveryReport, outcome: &OfflineOutcome) {
    let key = outcome.idempotency_key;
    match outcome.state {
        OfflineState::Confirmed => report.confirmed_offline.push(key),
        OfflineState::Declined(_) => report.declined_after.push(key),
        _ => report.pending_offline.push(key),
    }
}

fn call_error<E>(key: Option<IdempotencyKey>, e: CallError<E>) -> PaymentError<E> {
    match e {
        CallError::Refused(refusal) => PaymentError::Refused { key, refusal },
        CallError::Failed(e) => PaymentError::Terminal(e),
    }
}

impl<A: Adapter, J: Journal> PaymentTerminal for Engine<A, J> {
    type Error = A::Error;

    fn capabilities(&self) -> &Capabilities {
        self.adapter.capabilities()
    }

    fn progress(&self) -> ProgressEvents {
        ProgressEvents::new(self.progress.subscribe())
    }

    async fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> Outcome<A::Error> {
        let mut request = TransactionRequest::new(RequestId::default(), key, command);
        request.operator = call.operator;
        self.run(request, call.deadline).await
    }

    async fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> Result<TransactionStatus, PaymentError<A::Error>> {
        if let Some(stage) = lock(&self.live).get(&key) {
            return Ok(TransactionStatus::InProgress { stage: *stage });
        }
        self.journal_pushed_offline(None)?;
        let entry = self.journal().get(&key)?;
        match &entry {
            Some(e) if e.state == EntryState::DeclinedAfter => return Err(declined_after(e)),
            Some(e) if matches!(e.state, EntryState::Done | EntryState::OfflinePending) => {
                if let Some(r) = &e.result {
                    return Ok(TransactionStatus::Done(Box::new(r.clone())));
                }
            }
            Some(e) if e.state == EntryState::Rejected => return Ok(TransactionStatus::NotFound),
            _ => {}
        }
        let resolution = self
            .adapter
            .resolve(key, entry.as_ref(), &self.records(), deadline)
            .await
            .map_err(PaymentError::Terminal)?;
        match resolution {
            // Found: recorded now if it is journaled here (it resolves the entry).
            Resolution::Done(r) if entry.is_some() => {
                let live = self.live_key(key).ok_or(PaymentError::KeyInUse(key))?;
                let recorded = self.accept(key, r)?;
                live.settle();
                Ok(TransactionStatus::Done(Box::new(recorded)))
            }
            Resolution::Done(r) => Ok(TransactionStatus::Done(Box::new(r))),
            Resolution::NotDone => Ok(TransactionStatus::NotFound),
            Resolution::Running(stage) => Ok(TransactionStatus::InProgress { stage }),
            Resolution::Unknown(e) => Err(PaymentError::InDoubt(InDoubt {
                key,
                reason: DoubtReason::Unidentified,
                source: Some(e),
            })),
        }
    }

    async fn recover(&self, deadline: Duration) -> Result<RecoveryReport, PaymentError<A::Error>> {
        self.recover_open(deadline).await
    }

    async fn last_transaction(
        &self,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, PaymentError<A::Error>> {
        self.adapter
            .last_transaction(&self.records(), deadline)
            .await
            .map_err(PaymentError::Terminal)
    }

    async fn cancel(&self) -> Result<(), PaymentError<A::Error>> {
        self.adapter.cancel().await.map_err(PaymentError::Terminal)
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        call: Call,
    ) -> Result<SettlementResult, PaymentError<A::Error>> {
        // Outcomes the terminal learnt before it closes the batch, journaled first, so that
        // reconciling the batch counts them as the terminal does.
        self.journal_pushed_offline(None)?;
        let result = self
            .adapter
            .settle(key, call.operator, call.deadline)
            .await
            .map_err(|e| call_error(Some(key), e))?;
        // Kept with the payments it closes (and queued for a back office). Should this write
        // fail, the batch is closed all the same: settling again under the same key returns the
        // same result, which is then kept.
        self.journal()
            .record_settlement(&result, self.adapter.terminal_key(), self.now())?;
        Ok(result)
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> Result<Receipt, PaymentError<A::Error>> {
        self.adapter
            .receipt(target, copy, &self.records(), deadline)
            .await
            .map_err(|e| call_error(None, e))
    }

    async fn telemetry(
        &self,
        deadline: Duration,
    ) -> Result<Option<Telemetry>, PaymentError<A::Error>> {
        self.adapter
            .telemetry(deadline)
            .await
            .map_err(PaymentError::Terminal)
    }

    fn telemetry_events(&self) -> TelemetryEvents {
        self.adapter.telemetry_events()
    }

    async fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<LeaseState>, PaymentError<A::Error>> {
        self.adapter
            .acquire(holder, duration, wait)
            .await
            .map_err(PaymentError::Terminal)
    }

    async fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> Result<Option<UpdateState>, PaymentError<A::Error>> {
        self.adapter
            .update(manifest, image, progress)
            .await
            .map_err(PaymentError::Terminal)
    }

    async fn release(&self) -> Result<(), PaymentError<A::Error>> {
        self.adapter.release().await.map_err(PaymentError::Terminal)
    }

    async fn show_cart(
        &self,
        cart: &Cart,
        deadline: Duration,
    ) -> Result<bool, PaymentError<A::Error>> {
        self.adapter
            .show_cart(cart, deadline)
            .await
            .map_err(PaymentError::Terminal)
    }

    async fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> Result<Option<CustomerReply>, PaymentError<A::Error>> {
        self.adapter
            .ask_customer(prompt)
            .await
            .map_err(PaymentError::Terminal)
    }
}
