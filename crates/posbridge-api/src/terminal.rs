//! One API over every terminal protocol: [`PaymentTerminal`].

use std::future::Future;
use std::time::Duration;

use posbridge_wire::{
    Amount, Capabilities, CartLine, Currency, CustomerQuestion, CustomerReply, IdempotencyKey,
    LeaseState, OperatorAuth, Receipt, ReceiptCopy, SettlementResult, Telemetry,
    TransactionCommand, TransactionRef, TransactionResult, TransactionStatus, UpdateManifest,
    UpdateState,
};

use crate::{PaymentError, ProgressEvents, RecoveryReport, TelemetryEvents};

/// How long a call may take, and who authorises it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The deadline: past it, a money command is in doubt (journaled; recovery resolves it) and
    /// any other call fails.
    pub deadline: Duration,
    /// The operator's credential, for refunds, voids, settlement and configuration. Never
    /// journaled.
    pub operator: Option<OperatorAuth>,
}

impl Call {
    /// A call that may take `deadline`.
    pub fn within(deadline: Duration) -> Self {
        Self {
            deadline,
            operator: None,
        }
    }

    /// The same call, authorised by `operator`.
    #[must_use]
    pub fn operator(mut self, operator: OperatorAuth) -> Self {
        self.operator = Some(operator);
        self
    }
}

/// What the customer display shows: the cart and its total (protocol 1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cart {
    /// The lines, at most 32 (`posbridge_wire::CART_LINES`).
    pub lines: Vec<CartLine>,
    /// The currency of every amount.
    pub currency: Currency,
    /// The total to pay, in minor units.
    pub total: u64,
    /// A line under the total ("Thank you!").
    pub message: Option<String>,
}

/// A question for the customer on the terminal's screen (protocol 1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerPrompt {
    /// The question as shown ("Add a tip?").
    pub prompt: String,
    /// What kind of answer.
    pub question: CustomerQuestion,
    /// How long the customer has (at most 5 minutes).
    pub timeout: Duration,
}

/// What an app does with a payment terminal, whatever protocol it speaks. Every call has a
/// deadline; money commands are journaled before they are sent, and their results verified and
/// recorded. [`Engine`](crate::Engine) implements it over any [`Adapter`](crate::Adapter).
///
/// The money commands are provided on top of [`execute`](Self::execute).
pub trait PaymentTerminal: Send + Sync {
    /// The protocol adapter's error, the typed source inside [`PaymentError`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// What the terminal is and accepts (kinds, methods, currencies, limits).
    fn capabilities(&self) -> &Capabilities;

    /// Progress reports of running money commands.
    fn progress(&self) -> ProgressEvents;

    /// Runs a money command under idempotency key `key` to its final result. A key used before
    /// for the same command gets that command's outcome, never a second payment.
    fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send;

    /// What became of the money command with key `key` (a result found is recorded).
    fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> impl Future<Output = Result<TransactionStatus, PaymentError<Self::Error>>> + Send;

    /// Resolves every command of this terminal the journal holds in doubt, before anything new
    /// is sent: what the terminal says decides (see [`RecoveryPolicy`](crate::RecoveryPolicy)).
    fn recover(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<RecoveryReport, PaymentError<Self::Error>>> + Send;

    /// The terminal's most recent final result, whichever till started it.
    fn last_transaction(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<TransactionResult>, PaymentError<Self::Error>>> + Send;

    /// Asks the terminal to abort the money command this connection is running (possible until
    /// the issuer is asked; the command's own call then returns the cancelled result, or the real
    /// one if it was too late). Nothing running: nothing happens.
    fn cancel(&self) -> impl Future<Output = Result<(), PaymentError<Self::Error>>> + Send;

    /// Closes the batch: the terminal's totals (verify a native terminal's signature with
    /// `posbridge_crypto::verify_settlement`; reconcile them with `posbridge::reconcile`).
    fn settle(
        &self,
        key: IdempotencyKey,
        call: Call,
    ) -> impl Future<Output = Result<SettlementResult, PaymentError<Self::Error>>> + Send;

    /// A receipt of a transaction of the open batch, again.
    fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> impl Future<Output = Result<Receipt, PaymentError<Self::Error>>> + Send;

    /// The terminal's telemetry now: battery and charging, power source, firmware and app
    /// versions, paper, whether it reaches its acquirer, payments it stored offline. `None` when
    /// the terminal or its protocol does not report it (native protocol 1.0, ZVT, nexo).
    fn telemetry(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<Telemetry>, PaymentError<Self::Error>>> + Send;

    /// What the terminal pushes when its telemetry changes (battery low, paper out, gone
    /// offline, …), from now on; a stream that ends at once for terminals that push nothing.
    fn telemetry_events(&self) -> TelemetryEvents;

    /// Takes the terminal for this till's payments (protocol 1.1, a terminal shared by several
    /// tills): `holder` is the name the others see, the lease lasts `duration` after this till's
    /// last request. With `wait`, queues behind the holder and waits up to that long for the
    /// terminal. The answer says where the till stands: granted, queued (with its place and who
    /// holds the terminal) or busy (who holds it). `None` for terminals without leases (native
    /// 1.0, ZVT, nexo): they take commands from whoever sends them.
    fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> impl Future<Output = Result<Option<LeaseState>, PaymentError<Self::Error>>> + Send;

    /// Gives the terminal back (or leaves the queue). Nothing to give back, or no leases: fine.
    fn release(&self) -> impl Future<Output = Result<(), PaymentError<Self::Error>>> + Send;

    /// Installs a software update its publisher signed (`manifest`) on the terminal (protocol
    /// 1.1): offered, sent in chunks from where an earlier, interrupted attempt stopped, checked
    /// by the terminal against the publisher's key and the image's SHA-256, installed with a
    /// restart. `progress` hears the bytes the terminal holds, of the image's size. The answer:
    /// installed (with the version now running) or refused, and why (untrusted, battery low, a
    /// payment running, digest mismatch, install failed). `None` for terminals without updates
    /// over posbridge (native 1.0, ZVT, nexo).
    fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> impl Future<Output = Result<Option<UpdateState>, PaymentError<Self::Error>>> + Send;

    /// Shows `cart` on the customer display, until the next cart or payment. `false` when the
    /// terminal has no customer display it lets a till drive (native 1.0, ZVT, nexo as posbridge
    /// speaks them): nothing was shown.
    fn show_cart(
        &self,
        cart: &Cart,
        deadline: Duration,
    ) -> impl Future<Output = Result<bool, PaymentError<Self::Error>>> + Send;

    /// Asks the customer on the terminal's screen: a tip, yes or no, a number, a signature. The
    /// answer, or `TimedOut` after the prompt's timeout; `None` when the terminal cannot ask
    /// (as for [`show_cart`](Self::show_cart)).
    fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> impl Future<Output = Result<Option<CustomerReply>, PaymentError<Self::Error>>> + Send;

    /// A sale.
    fn sale(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        let command = TransactionCommand::Sale {
            amount,
            tip: None,
            cashback: None,
        };
        self.execute(key, command, call)
    }

    /// A refund, of an earlier sale (`original`) or unreferenced.
    fn refund(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        original: Option<TransactionRef>,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(key, TransactionCommand::Refund { amount, original }, call)
    }

    /// Cancels a transaction of the open batch.
    fn void(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(key, TransactionCommand::Void { original }, call)
    }

    /// Reserves an amount (hotels, car rental, fuel).
    fn preauth(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(key, TransactionCommand::PreAuth { amount }, call)
    }

    /// Adds to a pre-authorisation.
    fn incremental_auth(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(
            key,
            TransactionCommand::IncrementalAuth { original, amount },
            call,
        )
    }

    /// Completes a pre-authorisation with the final amount (and a tip).
    fn capture(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        amount: Amount,
        tip: Option<u64>,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(
            key,
            TransactionCommand::Capture {
                original,
                amount,
                tip,
            },
            call,
        )
    }

    /// Releases a pre-authorisation without taking money.
    fn preauth_cancel(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(key, TransactionCommand::PreAuthCancel { original }, call)
    }

    /// The balance of a prepaid or gift card (moves no money).
    fn balance_inquiry(
        &self,
        key: IdempotencyKey,
        currency: Option<Currency>,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError<Self::Error>>> + Send {
        self.execute(key, TransactionCommand::BalanceInquiry { currency }, call)
    }
}
