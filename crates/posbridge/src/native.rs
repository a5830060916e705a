//! The native protocol as an [`Adapter`] of the engine: [`NativeAdapter`], and [`Payments`], the
//! journaled terminal apps take money with.

use std::sync::Mutex;
use std::time::Duration;

use posbridge_api::{
    Adapter, Answer, CallError, Cart, CustomerPrompt, DoubtReason, Engine, Exchange, Records,
    Refusal, Resolution, TelemetryEvents, forward_while,
};
use posbridge_crypto::{PublicKey, verify_result};
use posbridge_journal::Entry;
use posbridge_session::{ClientEvent, RequestFailure};
use posbridge_wire::{
    Capabilities, CustomerReply, ErrorCode, ErrorMessage, IdempotencyKey, LastTransactionQuery,
    LeaseState, Message, OfflineOutcome, OperatorAuth, Receipt, ReceiptCopy, ReceiptRequest,
    RequestId, SettlementRequest, SettlementResult, Telemetry, TransactionRef, TransactionRequest,
    TransactionResult, TransactionStatus, UpdateManifest, UpdateState,
};

use crate::{ClientError, NativeClient};

/// A terminal of the native protocol, journaled: what an app takes money with over any link.
/// `Payments::new(NativeAdapter::new(client, terminal_key), journal)`.
pub type Payments<J> = Engine<NativeAdapter, J>;

/// The native protocol's client as an [`Adapter`]: commands go out as `Transaction` requests
/// under their idempotency key (the terminal remembers keys, so a repeat joins or answers, never
/// charges twice), progress comes from the terminal's `Progress` messages, results are checked
/// against the paired terminal's signing key, and a lost answer is resolved by a `StatusQuery`.
#[derive(Debug)]
pub struct NativeAdapter {
    client: NativeClient,
    terminal_key: Option<PublicKey>,
    /// The request id of the money command on its way, for cancelling it.
    running: Mutex<Option<RequestId>>,
}

impl NativeAdapter {
    /// The adapter over `client`; every result must verify against `terminal_key` (the
    /// terminal's signing key from the pairing record; `None` accepts unsigned results — for
    /// tests only).
    pub fn new(client: NativeClient, terminal_key: Option<PublicKey>) -> Self {
        Self {
            client,
            terminal_key,
            running: Mutex::new(None),
        }
    }

    /// The connection.
    pub fn client(&self) -> &NativeClient {
        &self.client
    }

    /// Closes the connection in order; how it ended.
    pub async fn close(self) -> Option<posbridge_session::CloseReason> {
        self.client.close().await
    }

    /// Gives back the connection.
    pub fn into_client(self) -> NativeClient {
        self.client
    }

    /// The request id of the money command this connection is running, if any.
    pub fn running_request(&self) -> Option<RequestId> {
        *self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_running(&self, id: Option<RequestId>) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }

    /// Asks `message` and waits for its answer, terminal refusals kept apart.
    async fn ask(
        &self,
        message: Message,
        deadline: Duration,
    ) -> Result<Message, CallError<ClientError>> {
        self.client
            .request(message, deadline)
            .await
            .map_err(|e| match e {
                ClientError::Failed(RequestFailure::Refused(m)) => CallError::Refused(refusal(m)),
                other => CallError::Failed(other),
            })
    }
}

fn refusal(m: ErrorMessage) -> Refusal<ClientError> {
    Refusal {
        code: m.code,
        detail: m.detail,
        source: None,
    }
}

fn unexpected(m: Message) -> ClientError {
    ClientError::UnexpectedAnswer(Box::new(m))
}

impl Adapter for NativeAdapter {
    type Error = ClientError;

    fn capabilities(&self) -> &Capabilities {
        self.client.capabilities()
    }

    fn remembers_keys(&self) -> bool {
        true
    }

    fn terminal_key(&self) -> Option<PublicKey> {
        self.terminal_key
    }

    async fn send(
        &self,
        request: TransactionRequest,
        exchange: &Exchange<'_>,
        deadline: Duration,
    ) -> Answer<ClientError> {
        // Subscribed before sending, so no progress report is missed.
        let mut events = self.client.events();
        let pending = match self
            .client
            .send(Message::Transaction(request), deadline)
            .await
        {
            Ok(p) => p,
            // Refused by the session before anything left (size, capabilities, deadline).
            Err(ClientError::Request(e)) => {
                return Answer::Refused(Refusal {
                    code: ErrorCode::INVALID_REQUEST,
                    detail: Some(e.to_string()),
                    source: Some(ClientError::Request(e)),
                });
            }
            // The connection's task is gone: it never reached the session.
            Err(e) => return Answer::NotSent(e),
        };
        // Handed to the session: it leaves now, or when the command before it ends.
        exchange.sent();
        let id = pending.id();
        self.set_running(Some(id));
        let answer = forward_while(pending.answer(), &mut events, |event| {
            if let ClientEvent::Progress {
                request_id,
                progress,
            } = event
                && request_id == id
            {
                exchange.progress(progress.stage, progress.method, progress.message);
            }
        })
        .await;
        self.set_running(None);
        match answer {
            Ok(Message::TransactionResult(result)) => Answer::Result(result),
            Ok(other) => Answer::Lost {
                reason: DoubtReason::Unexpected,
                source: Some(unexpected(other)),
            },
            Err(ClientError::Failed(RequestFailure::Refused(e))) => Answer::Refused(refusal(e)),
            // Never sent: still queued behind another command, or cancelled there.
            Err(ClientError::Failed(
                f @ (RequestFailure::Cancelled
                | RequestFailure::DeadlineExceeded { sent: false }
                | RequestFailure::SessionClosed { sent: false }),
            )) => Answer::NotSent(ClientError::Failed(f)),
            Err(ClientError::Failed(f @ RequestFailure::DeadlineExceeded { .. })) => Answer::Lost {
                reason: DoubtReason::NoAnswer,
                source: Some(ClientError::Failed(f)),
            },
            Err(e) => Answer::Lost {
                reason: DoubtReason::ConnectionLost,
                source: Some(e),
            },
        }
    }

    async fn resolve(
        &self,
        key: IdempotencyKey,
        _entry: Option<&Entry>,
        _records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Resolution<ClientError>, ClientError> {
        Ok(match self.client.status(key, deadline).await? {
            TransactionStatus::Done(result) => Resolution::Done(*result),
            TransactionStatus::NotFound => Resolution::NotDone,
            TransactionStatus::InProgress { stage } => Resolution::Running(stage),
            other => Resolution::Unknown(ClientError::UnexpectedAnswer(Box::new(
                Message::StatusResponse(posbridge_wire::StatusResponse {
                    request_id: RequestId::default(),
                    idempotency_key: key,
                    status: other,
                }),
            ))),
        })
    }

    fn verify(&self, result: &TransactionResult) -> Result<(), ClientError> {
        match &self.terminal_key {
            Some(key) => verify_result(key, result).map_err(ClientError::BadSignature),
            None => Ok(()),
        }
    }

    async fn cancel(&self) -> Result<(), ClientError> {
        match self.running_request() {
            Some(id) => self.client.cancel(id).await,
            None => Ok(()),
        }
    }

    async fn last_transaction(
        &self,
        _records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, ClientError> {
        let q = Message::LastTransaction(LastTransactionQuery {
            request_id: RequestId::default(),
        });
        match self.client.request(q, deadline).await? {
            Message::LastTransactionResponse(r) => Ok(r.result.map(|b| *b)),
            other => Err(unexpected(other)),
        }
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> Result<SettlementResult, CallError<ClientError>> {
        let s = Message::Settlement(SettlementRequest {
            request_id: RequestId::default(),
            idempotency_key: key,
            operator,
        });
        match self.ask(s, deadline).await? {
            Message::SettlementResult(r) => Ok(r),
            other => Err(CallError::Failed(unexpected(other))),
        }
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        _records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Receipt, CallError<ClientError>> {
        let q = Message::ReceiptRequest(ReceiptRequest {
            request_id: RequestId::default(),
            target,
            copy,
        });
        match self.ask(q, deadline).await? {
            Message::ReceiptResponse(r) => Ok(r.receipt),
            other => Err(CallError::Failed(unexpected(other))),
        }
    }

    async fn telemetry(&self, deadline: Duration) -> Result<Option<Telemetry>, ClientError> {
        self.client.telemetry(deadline).await
    }

    fn telemetry_events(&self) -> TelemetryEvents {
        TelemetryEvents::new(self.client.telemetry_events())
    }

    async fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<LeaseState>, ClientError> {
        self.client.acquire(holder, duration, wait).await
    }

    async fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> Result<Option<UpdateState>, ClientError> {
        self.client.update(manifest, image, progress).await
    }

    async fn release(&self) -> Result<(), ClientError> {
        self.client.release().await
    }

    async fn offline_outcome(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> Result<Option<OfflineOutcome>, ClientError> {
        match self
            .client
            .offline_outcome(key, self.terminal_key.as_ref(), deadline)
            .await
        {
            // Approved nothing offline under this key (a 1.0 terminal never says so).
            Err(ClientError::Failed(RequestFailure::Refused(e)))
                if e.code == ErrorCode::NOT_FOUND =>
            {
                Ok(None)
            }
            other => other,
        }
    }

    fn pushed_offline_outcomes(&self) -> Vec<OfflineOutcome> {
        let mut pushed = self.client.take_pushed_offline_outcomes();
        if let Some(key) = &self.terminal_key {
            pushed.retain(|o| {
                let valid = posbridge_crypto::verify_offline_outcome(key, o).is_ok();
                if !valid {
                    tracing::error!(key = %o.idempotency_key, "a pushed offline outcome's signature does not verify: dropped");
                }
                valid
            });
        }
        pushed
    }

    async fn show_cart(&self, cart: &Cart, deadline: Duration) -> Result<bool, ClientError> {
        self.client.show_cart(cart, deadline).await
    }

    async fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> Result<Option<CustomerReply>, ClientError> {
        self.client.ask_customer(prompt).await
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn close(self) {
        Self::close(self).await;
    }
}
