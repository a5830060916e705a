//! One API over every terminal protocol: [`PaymentTerminal`].

use std::future::Future;
use std::time::Duration;

use posbridge_wire::{
    Amount, Capabilities, Currency, IdempotencyKey, OperatorAuth, Receipt, ReceiptCopy,
    SettlementResult, Telemetry, TransactionCommand, TransactionRef, TransactionResult,
    TransactionStatus,
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
