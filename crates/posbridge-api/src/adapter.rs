//! What a protocol supplies to the engine: the [`Adapter`] trait, and what the engine hands it
//! while a command runs ([`Exchange`]) or is being resolved ([`Records`]).

use std::error::Error;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use posbridge_journal::{Entry, Journal, JournalError, Query};
use posbridge_wire::{
    Capabilities, CustomerReply, IdempotencyKey, LeaseState, OfflineOutcome, OperatorAuth,
    PaymentMethod, ProgressStage, PublicKey, Receipt, ReceiptCopy, SettlementResult, Telemetry,
    TransactionId, TransactionRef, TransactionRequest, TransactionResult, UpdateManifest,
    UpdateState,
};

use crate::{Cart, CustomerPrompt, DoubtReason, ProgressEvent, Refusal, TelemetryEvents};

/// How a money command ended, as the adapter saw it. The engine journals each case.
// Moved once per command; boxing the result would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Answer<E> {
    /// The terminal's final result — approved, declined, cancelled or failed. The result code
    /// the terminal sent decides which; an adapter that cannot read it answers
    /// [`Lost`](Self::Lost) with [`DoubtReason::Unreadable`], never a made-up approval.
    Result(TransactionResult),
    /// Refused before anything was charged (by the terminal before it started, or by the
    /// adapter before sending): final.
    Refused(Refusal<E>),
    /// It never left for the terminal (the connection was gone first, or it was still queued
    /// when the deadline passed): nothing happened, the journal keeps the command open for
    /// recovery or a retry under the same key. Only for certain: when in doubt, answer
    /// [`Lost`](Self::Lost).
    NotSent(E),
    /// It left, and its outcome is not known: in doubt until recovery resolves it.
    Lost {
        /// Why.
        reason: DoubtReason,
        /// The adapter's error behind it, if any.
        source: Option<E>,
    },
}

/// What became of a journaled command whose answer was lost, as the terminal tells it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Resolution<E> {
    /// It finished: its result.
    Done(TransactionResult),
    /// It certainly did not happen: the terminal never saw it, or its record rules it out
    /// (another transaction, a different amount, an earlier time). A finding, never a guess.
    NotDone,
    /// It is still running on the terminal.
    Running(Option<ProgressStage>),
    /// The terminal's record does not tell (it cannot be matched to the command, or it cannot
    /// be read): it stays in doubt for a person, and `E` says why.
    Unknown(E),
}

/// How a call that is not a money command failed.
#[derive(Debug)]
pub enum CallError<E> {
    /// The terminal refused it (authorisation, nothing to settle, no such receipt).
    Refused(Refusal<E>),
    /// The connection or the terminal failed.
    Failed(E),
}

impl<E> From<E> for CallError<E> {
    fn from(e: E) -> Self {
        Self::Failed(e)
    }
}

/// What one terminal protocol supplies: sending a command and reporting its progress and
/// outcome, resolving a journaled command whose answer was lost, cancelling, the calls that move
/// no money, and the facts about the protocol the engine's policy depends on. Everything that
/// keeps money safe — the intent journaled before the first byte, the sent mark, verified
/// results recorded, refusals recorded, lost answers marked in doubt, recovery before anything
/// new, reversals, tracing — is the [`Engine`](crate::Engine)'s, once, for every protocol.
///
/// Adapters: `posbridge::NativeAdapter` (the native protocol), `posbridge_zvt::ZvtClient` (ZVT).
pub trait Adapter: Send + Sync {
    /// The adapter's own error, kept as the typed source of the engine's errors.
    type Error: Error + Send + Sync + 'static;

    /// What the terminal is and accepts. Commands are checked against it before anything is
    /// journaled.
    fn capabilities(&self) -> &Capabilities;

    /// Whether the terminal remembers commands by idempotency key, so that sending a command
    /// again under its key joins it while it runs or returns its result once done, never
    /// starting it twice (the native protocol: yes). Without that (ZVT knows only its last
    /// transaction), a command still running cannot be joined, and every command in doubt must
    /// be resolved before anything new is sent — a new transaction would replace the evidence.
    fn remembers_keys(&self) -> bool;

    /// The key the terminal signs results with, journaled with each command (for offline
    /// audits); `None` for protocols without signed results.
    fn terminal_key(&self) -> Option<PublicKey> {
        None
    }

    /// Sends `request` and runs it to its end, within `deadline`. Calls [`Exchange::sent`] once
    /// the command has left (a terminal may act on it from then on) and
    /// [`Exchange::progress`] for each report.
    fn send(
        &self,
        request: TransactionRequest,
        exchange: &Exchange<'_>,
        deadline: Duration,
    ) -> impl Future<Output = Answer<Self::Error>> + Send;

    /// What became of the command under `key` — journaled as `entry`, or unknown to this
    /// journal (`None`: a key another till used, or a status query by hand).
    fn resolve(
        &self,
        key: IdempotencyKey,
        entry: Option<&Entry>,
        records: &Records<'_>,
        deadline: Duration,
    ) -> impl Future<Output = Result<Resolution<Self::Error>, Self::Error>> + Send;

    /// Checks a result's signature where the protocol signs them (the native protocol does,
    /// against the paired terminal's key). A result that fails is not recorded.
    fn verify(&self, result: &TransactionResult) -> Result<(), Self::Error> {
        let _ = result;
        Ok(())
    }

    /// Asks the terminal to abort the money command this connection runs (possible until the
    /// issuer is asked; the command then ends with the cancelled result, or the real one if it
    /// was too late). Nothing running: nothing happens.
    fn cancel(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The terminal's most recent final result, whichever till started it.
    fn last_transaction(
        &self,
        records: &Records<'_>,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<TransactionResult>, Self::Error>> + Send;

    /// Closes the batch (end of day) under `key`.
    fn settle(
        &self,
        key: IdempotencyKey,
        operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> impl Future<Output = Result<SettlementResult, CallError<Self::Error>>> + Send;

    /// A receipt of a transaction of the open batch, again.
    fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        records: &Records<'_>,
        deadline: Duration,
    ) -> impl Future<Output = Result<Receipt, CallError<Self::Error>>> + Send;

    /// The terminal's telemetry (battery, power, software, paper, acquirer link, payments stored
    /// offline), for protocols that report it; `None` for those that do not (the default) and
    /// for a terminal that does not (a native terminal of protocol 1.0).
    fn telemetry(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<Telemetry>, Self::Error>> + Send {
        let _ = deadline;
        async { Ok(None) }
    }

    /// Telemetry changes the terminal pushes from now on (see [`telemetry`](Self::telemetry));
    /// an ended stream for protocols without.
    fn telemetry_events(&self) -> TelemetryEvents {
        TelemetryEvents::ended()
    }

    /// Takes the terminal's lease ([`PaymentTerminal::acquire`](crate::PaymentTerminal::acquire));
    /// `None` (the default) for protocols without leases.
    fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> impl Future<Output = Result<Option<LeaseState>, Self::Error>> + Send {
        let _ = (holder, duration, wait);
        async { Ok(None) }
    }

    /// Installs a signed software update ([`PaymentTerminal::update`](crate::PaymentTerminal::update));
    /// `None` (the default) for protocols without.
    fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> impl Future<Output = Result<Option<UpdateState>, Self::Error>> + Send {
        let _ = (manifest, image, progress);
        async { Ok(None) }
    }

    /// What became of the payment the terminal approved offline under `key` (protocol 1.1):
    /// its outcome, **signed by the terminal and the signature checked** (pending, confirmed, or
    /// declined after the fact); `None` (the default) for protocols without offline outcomes.
    fn offline_outcome(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<OfflineOutcome>, Self::Error>> + Send {
        let _ = (key, deadline);
        async { Ok(None) }
    }

    /// The final outcomes of payments approved offline that the terminal pushed since the last
    /// call, their signatures checked (one that fails is dropped: the engine asks for it again
    /// by [`offline_outcome`](Self::offline_outcome)). Empty (the default) for protocols
    /// without. The engine journals them at its next call.
    fn pushed_offline_outcomes(&self) -> Vec<OfflineOutcome> {
        Vec::new()
    }

    /// Gives the terminal's lease back; nothing to do (the default) without leases.
    fn release(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// Shows `cart` on the customer display; `false` (the default) for protocols and terminals
    /// without one a till drives.
    fn show_cart(
        &self,
        cart: &Cart,
        deadline: Duration,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        let _ = (cart, deadline);
        async { Ok(false) }
    }

    /// Asks the customer on the terminal's screen; `None` (the default) for protocols and
    /// terminals that cannot.
    fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> impl Future<Output = Result<Option<CustomerReply>, Self::Error>> + Send {
        let _ = prompt;
        async { Ok(None) }
    }

    /// Whether the connection has ended (a managed terminal then connects again).
    fn is_closed(&self) -> bool {
        false
    }

    /// Ends the connection in order.
    fn close(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized;
}

/// The journal as an adapter may read it: a command's entry, or the entry whose result has a
/// given transaction id (what a void or a capture refers to, and what a protocol that numbers
/// its own transactions needs to tell its last one from an earlier one).
#[derive(Clone, Copy)]
pub struct Records<'a> {
    journal: &'a (dyn ReadJournal + Sync),
}

impl std::fmt::Debug for Records<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Records")
    }
}

/// Reading a journal behind the engine's lock (the guard is never held across an `.await`).
pub(crate) trait ReadJournal {
    fn entry(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError>;
    fn find(&self, pick: &mut dyn FnMut(&Entry) -> bool) -> Result<Option<Entry>, JournalError>;
}

impl<J: Journal> ReadJournal for Mutex<J> {
    fn entry(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        self.lock().unwrap_or_else(|p| p.into_inner()).get(key)
    }

    fn find(&self, pick: &mut dyn FnMut(&Entry) -> bool) -> Result<Option<Entry>, JournalError> {
        let all = self
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .query(&Query::default())?;
        Ok(all.into_iter().rev().find(|e| pick(e)))
    }
}

impl<'a> Records<'a> {
    pub(crate) fn new(journal: &'a (dyn ReadJournal + Sync)) -> Self {
        Self { journal }
    }

    /// The entry of `key`.
    pub fn entry(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        self.journal.entry(key)
    }

    /// The recorded result of `key`.
    pub fn result(&self, key: &IdempotencyKey) -> Result<Option<TransactionResult>, JournalError> {
        Ok(self.entry(key)?.and_then(|e| e.result))
    }

    /// The newest entry whose recorded result has transaction id `id`.
    pub fn by_transaction(&self, id: &TransactionId) -> Result<Option<Entry>, JournalError> {
        self.journal
            .find(&mut |e| e.result.as_ref().is_some_and(|r| r.transaction_id == *id))
    }

    /// The newest entry `pick` chooses.
    pub fn newest(
        &self,
        mut pick: impl FnMut(&Entry) -> bool,
    ) -> Result<Option<Entry>, JournalError> {
        self.journal.find(&mut pick)
    }

    /// The result a reference points at: by key or by transaction id.
    pub fn referenced(
        &self,
        target: &TransactionRef,
    ) -> Result<Option<TransactionResult>, JournalError> {
        Ok(match target {
            TransactionRef::Key(k) => self.result(k)?,
            TransactionRef::Id(id) => self.by_transaction(id)?.and_then(|e| e.result),
            _ => None,
        })
    }
}

/// What the engine gives an adapter while one money command runs: where to say it left, where
/// to report progress (journaled and broadcast to the app), and the journal to read.
pub struct Exchange<'a> {
    pub(crate) key: IdempotencyKey,
    pub(crate) records: Records<'a>,
    pub(crate) hooks: &'a (dyn Hooks + Sync),
}

impl std::fmt::Debug for Exchange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("key", &self.key).finish()
    }
}

pub(crate) trait Hooks {
    fn sent(&self, key: &IdempotencyKey);
    fn progress(&self, event: ProgressEvent);
}

impl Exchange<'_> {
    /// The command's idempotency key.
    pub fn key(&self) -> IdempotencyKey {
        self.key
    }

    /// The command has left for the terminal: from now on the terminal may act on it. The
    /// journal marks it sent.
    pub fn sent(&self) {
        self.hooks.sent(&self.key);
    }

    /// The terminal reported `stage` (with the method, once known, and its own text).
    pub fn progress(
        &self,
        stage: ProgressStage,
        method: Option<PaymentMethod>,
        message: Option<String>,
    ) {
        self.hooks.progress(ProgressEvent {
            key: self.key,
            stage,
            method,
            message,
        });
    }

    /// The journal.
    pub fn records(&self) -> &Records<'_> {
        &self.records
    }
}
