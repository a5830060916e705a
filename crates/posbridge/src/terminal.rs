//! One API over every terminal protocol: [`PaymentTerminal`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use posbridge_journal::Journal;
use posbridge_session::{ClientEvent, RequestFailure};
use posbridge_wire::{
    Amount, Capabilities, Currency, IdempotencyKey, LastTransactionQuery, Message, OperatorAuth,
    Progress, Receipt, ReceiptCopy, ReceiptRequest, RequestId, SettlementRequest, SettlementResult,
    StatusQuery, TransactionCommand, TransactionRef, TransactionRequest, TransactionResult,
    TransactionStatus,
};
use tokio_stream::wrappers::BroadcastStream;

use crate::{ClientError, PaymentError, Payments};

/// How long a call may take, and who authorises it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The deadline: past it, a money command is in doubt (journaled; recovery resolves it) and
    /// any other call fails.
    pub deadline: Duration,
    /// The operator's credential, for refunds, voids, settlement and configuration.
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

/// Progress reports of the requests running on a terminal (card presented, PIN entry, online
/// …), as a [`Stream`]. Reports that came faster than they were read are skipped, never queued
/// without bound.
pub struct ProgressEvents {
    inner: BroadcastStream<ClientEvent>,
}

impl ProgressEvents {
    /// The progress reports among `events` (a protocol adapter's own event channel; a native
    /// connection's is `NativeClient::events`).
    pub fn new(events: tokio::sync::broadcast::Receiver<ClientEvent>) -> Self {
        Self {
            inner: BroadcastStream::new(events),
        }
    }

    /// The next report; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Progress> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ProgressEvents {
    type Item = Progress;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Progress>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(ClientEvent::Progress { progress, .. }))) => {
                    return Poll::Ready(Some(progress));
                }
                // Other events, and reports skipped because the reader fell behind.
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for ProgressEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressEvents")
    }
}

/// What an app does with a payment terminal, whatever protocol it speaks: the native protocol
/// ([`Payments`], over any link) or an adapter for another protocol (ZVT). Every call has a
/// deadline; money commands are journaled before they are sent, and their results verified and
/// recorded, by the implementation.
///
/// The money commands are provided on top of [`execute`](Self::execute); an implementation
/// supplies the primitives.
pub trait PaymentTerminal: Send + Sync {
    /// What the terminal is and accepts (kinds, methods, currencies, limits).
    fn capabilities(&self) -> &Capabilities;

    /// Progress reports of running requests.
    fn progress(&self) -> ProgressEvents;

    /// Runs a money command under idempotency key `key` to its final result.
    fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send;

    /// What became of the money command with key `key` (resolves a lost answer).
    fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> impl Future<Output = Result<TransactionStatus, PaymentError>> + Send;

    /// The terminal's most recent final result, whichever till started it.
    fn last_transaction(
        &self,
        deadline: Duration,
    ) -> impl Future<Output = Result<Option<TransactionResult>, PaymentError>> + Send;

    /// Asks the terminal to abort the money command this connection is running (possible until
    /// the issuer is asked; the command's own call then returns the cancelled result, or the real
    /// one if it was too late). Nothing running: nothing happens.
    fn cancel(&self) -> impl Future<Output = Result<(), PaymentError>> + Send;

    /// Closes the batch: the terminal's signed totals (verify them with
    /// `posbridge_crypto::verify_settlement`; reconcile them with [`crate::reconcile`]).
    fn settle(
        &self,
        key: IdempotencyKey,
        call: Call,
    ) -> impl Future<Output = Result<SettlementResult, PaymentError>> + Send;

    /// A receipt of a transaction of the open batch, again.
    fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> impl Future<Output = Result<Receipt, PaymentError>> + Send;

    /// A sale.
    fn sale(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
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
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
        self.execute(key, TransactionCommand::Refund { amount, original }, call)
    }

    /// Cancels a transaction of the open batch.
    fn void(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
        self.execute(key, TransactionCommand::Void { original }, call)
    }

    /// Reserves an amount (hotels, car rental, fuel).
    fn preauth(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
        self.execute(key, TransactionCommand::PreAuth { amount }, call)
    }

    /// Adds to a pre-authorisation.
    fn incremental_auth(
        &self,
        key: IdempotencyKey,
        original: TransactionRef,
        amount: Amount,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
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
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
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
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
        self.execute(key, TransactionCommand::PreAuthCancel { original }, call)
    }

    /// The balance of a prepaid or gift card (moves no money).
    fn balance_inquiry(
        &self,
        key: IdempotencyKey,
        currency: Option<Currency>,
        call: Call,
    ) -> impl Future<Output = Result<TransactionResult, PaymentError>> + Send {
        self.execute(key, TransactionCommand::BalanceInquiry { currency }, call)
    }
}

fn answer_error(e: ClientError) -> PaymentError {
    match e {
        ClientError::Failed(RequestFailure::Refused(m)) => PaymentError::Refused(m),
        other => PaymentError::Client(other),
    }
}

fn unexpected(m: Message) -> PaymentError {
    PaymentError::Client(ClientError::UnexpectedAnswer(Box::new(m)))
}

impl<J: Journal + Send> PaymentTerminal for Payments<J> {
    fn capabilities(&self) -> &Capabilities {
        self.client().capabilities()
    }

    fn progress(&self) -> ProgressEvents {
        ProgressEvents {
            inner: BroadcastStream::new(self.client().events()),
        }
    }

    async fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> Result<TransactionResult, PaymentError> {
        let mut request = TransactionRequest::new(RequestId::default(), key, command);
        request.operator = call.operator;
        self.run(request, call.deadline).await
    }

    async fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> Result<TransactionStatus, PaymentError> {
        let q = Message::StatusQuery(StatusQuery {
            request_id: RequestId::default(),
            idempotency_key: key,
        });
        match self
            .client()
            .request(q, deadline)
            .await
            .map_err(answer_error)?
        {
            Message::StatusResponse(s) => Ok(s.status),
            other => Err(unexpected(other)),
        }
    }

    async fn last_transaction(
        &self,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, PaymentError> {
        let q = Message::LastTransaction(LastTransactionQuery {
            request_id: RequestId::default(),
        });
        match self
            .client()
            .request(q, deadline)
            .await
            .map_err(answer_error)?
        {
            Message::LastTransactionResponse(r) => Ok(r.result.map(|b| *b)),
            other => Err(unexpected(other)),
        }
    }

    async fn cancel(&self) -> Result<(), PaymentError> {
        match self.running_request() {
            Some(id) => self.client().cancel(id).await.map_err(PaymentError::Client),
            None => Ok(()),
        }
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        call: Call,
    ) -> Result<SettlementResult, PaymentError> {
        let s = Message::Settlement(SettlementRequest {
            request_id: RequestId::default(),
            idempotency_key: key,
            operator: call.operator,
        });
        match self
            .client()
            .request(s, call.deadline)
            .await
            .map_err(answer_error)?
        {
            Message::SettlementResult(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> Result<Receipt, PaymentError> {
        let q = Message::ReceiptRequest(ReceiptRequest {
            request_id: RequestId::default(),
            target,
            copy,
        });
        match self
            .client()
            .request(q, deadline)
            .await
            .map_err(answer_error)?
        {
            Message::ReceiptResponse(r) => Ok(r.receipt),
            other => Err(unexpected(other)),
        }
    }
}
