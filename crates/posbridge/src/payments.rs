//! Journaled payments: every money command written as an intent before it is sent, its signed
//! result verified and recorded, and recovery of whatever is in doubt.

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge_crypto::{PublicKey, SignatureError, verify_result};
use posbridge_journal::{Entry, EntryState, Journal, JournalError};
use posbridge_session::{ClientEvent, RequestError, RequestFailure, validate_transaction};
use posbridge_wire::{
    ErrorMessage, IdempotencyKey, Message, RequestId, Timestamp, TransactionCommand,
    TransactionRequest, TransactionResult, TransactionStatus,
};

use crate::{ClientError, NativeClient};

/// Why a journaled payment did not end with a verified result.
#[derive(Debug)]
#[non_exhaustive]
pub enum PaymentError {
    /// Refused before anything was sent (journaled as rejected: nothing happened).
    Request(RequestError),
    /// The terminal refused it before starting (authorisation, a reused key, limits): nothing
    /// was charged.
    Refused(ErrorMessage),
    /// The answer did not come: the journal marks it in doubt and [`Payments::recover`]
    /// resolves it. Do not retry with a new key.
    InDoubt(String),
    /// The result's signature does not verify against the paired terminal's key: it is kept in
    /// doubt and not recorded.
    BadSignature(SignatureError),
    /// The journal failed; the command was not sent if this happened before sending.
    Journal(JournalError),
    /// The connection is gone.
    Client(ClientError),
    /// [`Payments::resume`] was asked about a command that was refused and is final (nothing was
    /// charged), with the refusal noted in the journal.
    AlreadyRefused(String),
    /// A protocol adapter (ZVT) could not complete the exchange: the link failed, the terminal
    /// did not answer in time, or it answered something the protocol does not allow.
    Protocol(String),
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(e) => write!(f, "{e}"),
            Self::Refused(e) => write!(
                f,
                "the terminal refused: {}{}",
                e.code.description().unwrap_or("error"),
                e.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Self::InDoubt(why) => write!(
                f,
                "the outcome is in doubt ({why}); it is journaled and will be resolved by recovery — do not charge again"
            ),
            Self::AlreadyRefused(why) => write!(
                f,
                "that payment was refused and is final, nothing was charged ({why})"
            ),
            Self::BadSignature(e) => write!(f, "the result is not trustworthy: {e}"),
            Self::Protocol(e) => write!(f, "{e}"),
            Self::Journal(e) => write!(f, "{e}"),
            Self::Client(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PaymentError {}

impl From<JournalError> for PaymentError {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}

/// What [`Payments::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// In-doubt commands whose result the terminal had: now recorded.
    pub recorded: Vec<IdempotencyKey>,
    /// Commands the terminal never saw: sent again with the same key, and their result recorded.
    pub resent: Vec<IdempotencyKey>,
    /// Commands still running on the terminal: recovery asked again with the same key (which
    /// attaches to the running command, never starts another) and recorded the result.
    pub awaited: Vec<IdempotencyKey>,
    /// Commands still running when the wait ended: still in doubt; recover again later.
    pub running: Vec<IdempotencyKey>,
    /// Commands that could not be resolved now (the connection failed, the answer did not
    /// verify): still in doubt.
    pub unresolved: Vec<IdempotencyKey>,
    /// With a [`ReversalPolicy`]: approved commands that stayed unconfirmed past its deadline,
    /// reversed (voided, or a pre-authorisation released) — the originals' keys.
    pub reversed: Vec<IdempotencyKey>,
    /// With a [`ReversalPolicy`]: commands the terminal never saw that stayed unconfirmed past
    /// its deadline, not sent any more (journaled as refused: nothing was charged).
    pub abandoned: Vec<IdempotencyKey>,
}

/// What to do with payments whose outcome the app did not learn in time — the customer has
/// left, or paid another way. Without a policy, recovery completes every in-doubt command
/// (records it, or sends it again). With one, a command still unconfirmed `after` its intent
/// was written is undone instead: approved, it is reversed (a sale, refund, capture or
/// increment voided, a pre-authorisation released) under a key derived from its own, so the
/// reversal itself is idempotent and journaled; never seen by the terminal, it is not sent.
#[derive(Clone, Debug)]
pub struct ReversalPolicy {
    /// How long a payment may stay unconfirmed.
    pub after: Duration,
    /// The operator credential reversals run under (terminals require one for voids).
    pub operator: Option<posbridge_wire::OperatorAuth>,
}

/// The key a reversal of `key` runs under: derived, so that repeating the reversal never
/// reverses twice.
pub fn reversal_key(key: IdempotencyKey) -> IdempotencyKey {
    let mut k = key.0;
    for (i, b) in k.iter_mut().enumerate() {
        *b ^= 0xA5 ^ (i as u8).wrapping_mul(0x3B);
    }
    IdempotencyKey(k)
}

fn wall() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// A [`NativeClient`] with a journal: what an app uses to take money.
pub struct Payments<J: Journal> {
    client: NativeClient,
    journal: Mutex<J>,
    terminal_key: Option<PublicKey>,
    /// The request id of the money command on its way, for cancelling it.
    running: Mutex<Option<RequestId>>,
    reversal: Option<ReversalPolicy>,
}

impl<J: Journal> fmt::Debug for Payments<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payments")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<J: Journal> Payments<J> {
    /// Payments through `client`, journaled in `journal`. `terminal_key` is the terminal's
    /// signing key from the pairing record: every result must verify against it.
    pub fn new(client: NativeClient, journal: J, terminal_key: Option<PublicKey>) -> Self {
        Self {
            client,
            journal: Mutex::new(journal),
            terminal_key,
            running: Mutex::new(None),
            reversal: None,
        }
    }

    /// The paired terminal's signing key results are checked against.
    pub fn terminal_key(&self) -> Option<&PublicKey> {
        self.terminal_key.as_ref()
    }

    /// The connection.
    pub fn client(&self) -> &NativeClient {
        &self.client
    }

    /// The journal (do not hold the guard across an `.await`).
    pub fn journal(&self) -> MutexGuard<'_, J> {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Gives back the connection and the journal.
    pub fn into_parts(self) -> (NativeClient, J) {
        let journal = self
            .journal
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (self.client, journal)
    }

    /// Runs a money command: checked against the terminal's capabilities, journaled as an
    /// intent, sent, and its result verified and recorded.
    pub async fn transaction(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        timeout: Duration,
    ) -> Result<TransactionResult, PaymentError> {
        let request = TransactionRequest::new(Default::default(), key, command);
        self.run(request, timeout).await
    }

    /// Runs a prepared request (order reference, metadata, operator credential — the credential
    /// is never journaled).
    pub async fn run(
        &self,
        request: TransactionRequest,
        timeout: Duration,
    ) -> Result<TransactionResult, PaymentError> {
        let span = tracing::info_span!(
            "transaction",
            key = %request.idempotency_key,
            kind = ?request.command.kind(),
            amount = request.command.amount().map(|a| a.minor),
            currency = request.command.amount().map(|a| a.currency.code()),
        );
        tracing::Instrument::instrument(self.run_in_span(request, timeout), span).await
    }

    async fn run_in_span(
        &self,
        request: TransactionRequest,
        timeout: Duration,
    ) -> Result<TransactionResult, PaymentError> {
        validate_transaction(&request, self.client.capabilities())
            .map_err(PaymentError::Request)?;
        let terminal = self.client.capabilities().terminal_id;
        self.journal()
            .record_intent(terminal, &request, self.terminal_key, wall())?;
        tracing::debug!("intent journaled");
        self.send_and_record(request, timeout).await
    }

    async fn send_and_record(
        &self,
        request: TransactionRequest,
        timeout: Duration,
    ) -> Result<TransactionResult, PaymentError> {
        let key = request.idempotency_key;
        // Subscribed before sending, so no progress report is missed.
        let mut events = self.client.events();
        let pending = match self
            .client
            .send(Message::Transaction(request), timeout)
            .await
        {
            Ok(p) => p,
            Err(ClientError::Request(e)) => {
                self.journal().mark_rejected(&key, &e.to_string(), wall())?;
                return Err(PaymentError::Request(e));
            }
            Err(e) => {
                // Whether it left is unknown to us only if the driver died mid-send; the journal
                // keeps the intent, which recovery resolves.
                return Err(PaymentError::Client(e));
            }
        };
        self.journal().mark_sent(&key, wall())?;
        tracing::debug!("sent");
        let id = pending.id();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        let answer = pending.answer();
        tokio::pin!(answer);
        // Where the command is at goes into the journal as it happens (for the app's screens and
        // for recovery's report); a lost report is not an error.
        let answer = loop {
            tokio::select! {
                a = &mut answer => break a,
                event = events.recv() => match event {
                    Ok(ClientEvent::Progress { request_id, progress }) if request_id == id => {
                        if let Err(e) = self.journal().record_progress(&key, progress.stage, wall()) {
                            tracing::warn!(error = %e, "progress not journaled");
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break (&mut answer).await,
                },
            }
        };
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match answer {
            Ok(Message::TransactionResult(result)) => self.accept(result),
            Ok(other) => {
                let why = format!("unexpected answer {other:?}");
                self.journal().mark_in_doubt(&key, &why, wall())?;
                Err(PaymentError::InDoubt(why))
            }
            Err(ClientError::Failed(RequestFailure::Refused(e))) => {
                self.journal()
                    .mark_rejected(&key, &format!("refused: {:?}", e.code), wall())?;
                Err(PaymentError::Refused(e))
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(why = %why, "in doubt");
                self.journal().mark_in_doubt(&key, &why, wall())?;
                Err(PaymentError::InDoubt(why))
            }
        }
    }

    /// Sends a journaled command that is not final again, with its key: it joins the command if
    /// the terminal is still running it, returns its result if it finished, and starts it if the
    /// terminal never saw it — never a second charge. `operator` is needed again for refunds and
    /// voids (credentials are never journaled). A final entry returns its recorded result.
    pub async fn resume(
        &self,
        key: IdempotencyKey,
        operator: Option<posbridge_wire::OperatorAuth>,
        timeout: Duration,
    ) -> Result<TransactionResult, PaymentError> {
        let entry = self
            .journal()
            .get(&key)?
            .ok_or_else(|| PaymentError::Journal(JournalError::UnknownKey(key)))?;
        match (entry.state, entry.result) {
            (EntryState::Done, Some(result)) => return Ok(result),
            (EntryState::Rejected, _) => {
                return Err(PaymentError::AlreadyRefused(entry.note.unwrap_or_default()));
            }
            _ => {}
        }
        let mut request = entry.request;
        request.operator = operator;
        self.send_and_record(request, timeout).await
    }

    /// Recovery undoes payments that stay unconfirmed past `policy`'s deadline instead of
    /// completing them (see [`ReversalPolicy`]).
    #[must_use]
    pub fn with_reversal_policy(mut self, policy: ReversalPolicy) -> Self {
        self.reversal = Some(policy);
        self
    }

    /// Whether `entry` stayed unconfirmed past the reversal deadline.
    fn stale(&self, entry: &Entry) -> bool {
        self.reversal
            .as_ref()
            .is_some_and(|p| wall().0.saturating_sub(entry.created.0) >= p.after.as_millis() as u64)
    }

    /// Reverses an approved result (with the policy's operator); `Ok(false)` when there is
    /// nothing to reverse.
    async fn reverse(
        &self,
        result: &TransactionResult,
        timeout: Duration,
    ) -> Result<bool, PaymentError> {
        use posbridge_wire::{TransactionKind as K, TransactionRef};
        if !result.outcome.is_approved() {
            return Ok(false);
        }
        let original = TransactionRef::Id(result.transaction_id);
        let command = match result.kind {
            K::Sale | K::Refund | K::Capture | K::IncrementalAuth => {
                TransactionCommand::Void { original }
            }
            K::PreAuth => TransactionCommand::PreAuthCancel { original },
            _ => return Ok(false),
        };
        let mut request = TransactionRequest::new(
            RequestId::default(),
            reversal_key(result.idempotency_key),
            command,
        );
        request.operator = self.reversal.as_ref().and_then(|p| p.operator.clone());
        tracing::warn!(key = %result.idempotency_key, "unconfirmed past the deadline: reversing");
        let r = self.run(request, timeout).await?;
        Ok(r.outcome.is_approved())
    }

    /// The request id of the money command this connection is running, if any.
    pub fn running_request(&self) -> Option<RequestId> {
        *self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies and records a final result.
    fn accept(&self, result: TransactionResult) -> Result<TransactionResult, PaymentError> {
        if let Some(key) = &self.terminal_key
            && let Err(e) = verify_result(key, &result)
        {
            self.journal().mark_in_doubt(
                &result.idempotency_key,
                "the result's signature does not verify",
                wall(),
            )?;
            tracing::error!("result signature does not verify");
            return Err(PaymentError::BadSignature(e));
        }
        self.journal().record_result(&result, wall())?;
        // The outcome and ids only: card data stays out of logs.
        tracing::info!(
            outcome = ?result.outcome,
            approved = result.approved_minor,
            transaction = %result.transaction_id,
            "result recorded"
        );
        Ok(result)
    }

    /// Resolves every in-doubt command for this terminal, oldest first, before anything new is
    /// sent: the terminal's status decides — done: record it; never seen: send it again with
    /// the same key; still running: ask again with the same key, which waits for the running
    /// command's result (up to `timeout`) without starting another.
    pub async fn recover(&self, timeout: Duration) -> Result<RecoveryReport, PaymentError> {
        let terminal = self.client.capabilities().terminal_id;
        let pending: Vec<Entry> = self
            .journal()
            .unresolved()?
            .into_iter()
            .filter(|e| e.terminal == terminal)
            .collect();
        let span = tracing::info_span!("recovery", in_doubt = pending.len());
        tracing::Instrument::instrument(self.recover_entries(pending, timeout), span).await
    }

    async fn recover_entries(
        &self,
        pending: Vec<Entry>,
        timeout: Duration,
    ) -> Result<RecoveryReport, PaymentError> {
        let mut report = RecoveryReport::default();
        for entry in pending {
            let key = entry.key();
            let stale = self.stale(&entry);
            match self.client.status(key, timeout).await {
                Ok(TransactionStatus::Done(result)) => match self.accept(*result) {
                    Ok(r) if stale => match self.reverse(&r, timeout).await {
                        Ok(true) => report.reversed.push(key),
                        Ok(false) => report.recorded.push(key),
                        Err(_) => report.unresolved.push(key),
                    },
                    Ok(_) => report.recorded.push(key),
                    Err(_) => report.unresolved.push(key),
                },
                Ok(TransactionStatus::NotFound) if stale => {
                    // Never reached the terminal, and too late to take it now.
                    self.journal().mark_rejected(
                        &key,
                        "never reached the terminal; abandoned past the reversal deadline",
                        wall(),
                    )?;
                    report.abandoned.push(key);
                }
                Ok(TransactionStatus::NotFound) => {
                    // Never reached the terminal: safe to send again, with the same key.
                    match self.send_and_record(entry.request.clone(), timeout).await {
                        Ok(_) => report.resent.push(key),
                        Err(PaymentError::Refused(_)) | Err(PaymentError::Request(_)) => {
                            report.resent.push(key)
                        }
                        Err(_) => report.unresolved.push(key),
                    }
                }
                Ok(_) => {
                    // Still running: asking again with the same key attaches to it (the terminal
                    // never starts a key twice) and brings its result here when it is ready.
                    match self.send_and_record(entry.request.clone(), timeout).await {
                        Ok(r) if stale => match self.reverse(&r, timeout).await {
                            Ok(true) => report.reversed.push(key),
                            Ok(false) => report.awaited.push(key),
                            Err(_) => report.unresolved.push(key),
                        },
                        Ok(_) | Err(PaymentError::Refused(_)) => report.awaited.push(key),
                        Err(PaymentError::InDoubt(_)) => report.running.push(key),
                        Err(_) => report.unresolved.push(key),
                    }
                }
                Err(_) => report.unresolved.push(key),
            }
        }
        tracing::info!(report = ?report, "recovery done");
        Ok(report)
    }
}
