//! The native protocol's client under tokio: a background task runs the `ClientSession` over a
//! link; calls send requests to it and wait for their answers.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use posbridge_api::{Cart, CustomerPrompt, TelemetryChanged};
use posbridge_crypto::{LocalIdentity, PairingRecord};
use posbridge_link::{Link, LinkExt};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, CloseReason, RequestError, RequestFailure,
    SessionConfig, SessionError,
};
use posbridge_wire::{
    Amount, Capabilities, CustomerDisplay, CustomerInput, CustomerReply, Hello, IdempotencyKey,
    LeaseRelease, LeaseRequest, LeaseState, MAX_INPUT_TIMEOUT_MS, MAX_LEASE_MS, MIN_LEASE_MS,
    Message, OfflineOutcome, OfflineOutcomeQuery, RequestId, StatusQuery, Telemetry,
    TelemetryQuery, TransactionCommand, TransactionRequest, TransactionResult, TransactionStatus,
    UPDATE_CHUNK, UpdateChunk, UpdateManifest, UpdateOffer, UpdateState, UpdateStatus, VERSION_1_1,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::driver::{Session, flush, now};

/// Why a call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting failed: pairing, the handshake, or the link.
    Connect(SessionError),
    /// Connecting took longer than allowed.
    ConnectTimeout,
    /// The request was refused before it was sent (capabilities, size, deadline).
    Request(RequestError),
    /// The request ended without an answer; see [`RequestFailure::in_doubt`] before retrying.
    Failed(RequestFailure),
    /// The terminal answered with something other than what the call expects.
    UnexpectedAnswer(Box<Message>),
    /// The connection is closed.
    Closed(Option<CloseReason>),
    /// A result's signature does not verify against the paired terminal's key.
    BadSignature(posbridge_crypto::SignatureError),
    /// A software update's image does not match its manifest (size or SHA-256): nothing was
    /// sent.
    UpdateMismatch,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::ConnectTimeout => {
                f.write_str("connecting timed out: is the terminal on, in range and listening?")
            }
            Self::Request(e) => write!(f, "{e}"),
            Self::Failed(RequestFailure::Refused(e)) => write!(
                f,
                "the terminal refused: {}{}",
                e.code.description().unwrap_or("error"),
                e.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Self::Failed(RequestFailure::DeadlineExceeded { sent: true }) => f.write_str(
                "no answer before the deadline; the terminal may have acted on it: check its status before trying again",
            ),
            Self::Failed(RequestFailure::SessionClosed { sent: true }) => f.write_str(
                "the connection ended before the answer came; the terminal may have acted on it: check its status before trying again",
            ),
            Self::Failed(RequestFailure::DeadlineExceeded { sent: false }) => {
                f.write_str("the deadline passed before the request could be sent; nothing was sent")
            }
            Self::Failed(RequestFailure::SessionClosed { sent: false }) => {
                f.write_str("the connection ended before the request was sent; nothing was sent")
            }
            Self::Failed(RequestFailure::Cancelled) => {
                f.write_str("cancelled before it was sent; nothing was sent")
            }
            Self::Failed(f2) => write!(f, "the request ended without an answer: {f2:?}"),
            Self::UnexpectedAnswer(m) => write!(f, "unexpected answer from the terminal: {m:?}"),
            Self::Closed(Some(r)) => write!(f, "the connection is closed: {r:?}"),
            Self::Closed(None) => f.write_str("the connection is closed"),
            Self::BadSignature(e) => write!(f, "the result is not trustworthy: {e}"),
            Self::UpdateMismatch => f.write_str(
                "the update image does not match its manifest (size or SHA-256); nothing was sent",
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Session settings (heartbeat, retransmission, frame size).
    pub session: SessionConfig,
    /// This side's identity.
    pub identity: Arc<LocalIdentity>,
    /// Paired already (the terminal's key), or pair now (the code).
    pub security: ClientSecurity,
    /// Who this client is.
    pub hello: Hello,
    /// How long pairing and the handshake may take.
    pub timeout: Duration,
}

type Answer = Result<Message, RequestFailure>;

enum Command {
    Request {
        message: Box<Message>,
        timeout: Duration,
        reply: oneshot::Sender<Result<(RequestId, oneshot::Receiver<Answer>), RequestError>>,
    },
    Cancel {
        id: RequestId,
    },
    Close,
}

/// A connection to a terminal speaking the native protocol.
///
/// ```no_run
/// # async fn demo(link: posbridge_link::MemoryLink, options: posbridge::ConnectOptions) -> Result<(), posbridge::ClientError> {
/// use posbridge_wire::{Amount, Currency, IdempotencyKey};
/// use std::time::Duration;
///
/// let terminal = posbridge::NativeClient::connect(link, options).await?;
/// let result = terminal
///     .sale(IdempotencyKey::from_u128(1), Amount::new(1250, Currency::EUR), Duration::from_secs(90))
///     .await?;
/// println!("{:?}", result.outcome);
/// terminal.close().await;
/// # Ok(()) }
/// ```
pub struct NativeClient {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<ClientEvent>,
    telemetry: broadcast::Sender<TelemetryChanged>,
    /// Offline outcomes the terminal pushed, not yet taken (see
    /// [`take_pushed_offline_outcomes`](Self::take_pushed_offline_outcomes)).
    pushed: Pushed,
    capabilities: Capabilities,
    paired: Option<PairingRecord>,
    task: tokio::task::JoinHandle<Option<CloseReason>>,
}

impl fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeClient")
            .field("terminal", &self.capabilities.terminal_id)
            .finish_non_exhaustive()
    }
}

/// A request sent and waiting for its answer.
#[derive(Debug)]
pub struct PendingRequest {
    id: RequestId,
    answer: oneshot::Receiver<Answer>,
}

impl PendingRequest {
    /// The request's id (for [`NativeClient::cancel`]).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Waits for the answer.
    pub async fn answer(self) -> Result<Message, ClientError> {
        match self.answer.await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(f)) => Err(ClientError::Failed(f)),
            Err(_) => Err(ClientError::Closed(None)),
        }
    }
}

fn wall_now() -> posbridge_wire::Timestamp {
    posbridge_wire::Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

impl NativeClient {
    /// Connects over `link` (already open: a TCP stream, a serial port, a BLE link wrapped in
    /// `Segmented`): pairs if asked to, runs the secure handshake, and returns once the
    /// terminal introduced itself.
    pub async fn connect<L: Link + 'static>(
        link: L,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let mut config = options.session;
        config.set_handshake_timeout(options.timeout);
        let session = ClientSession::new(
            config,
            options.identity,
            options.security,
            options.hello,
            now(),
        );
        let (commands, rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(1024);
        let (telemetry, _) = broadcast::channel(64);
        let pushed = Pushed::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let span = tracing::info_span!("connection", peer = %link.info().address.as_deref().unwrap_or("-"));
        let task = tokio::spawn(tracing::Instrument::instrument(
            run(
                session,
                link,
                rx,
                events.clone(),
                telemetry.clone(),
                pushed.clone(),
                ready_tx,
            ),
            span,
        ));
        match ready_rx.await {
            Ok(Ok((capabilities, paired))) => Ok(Self {
                commands,
                events,
                telemetry,
                pushed,
                capabilities,
                paired,
                task,
            }),
            Ok(Err(CloseReason::Failed(SessionError::HandshakeTimeout))) => {
                Err(ClientError::ConnectTimeout)
            }
            Ok(Err(CloseReason::Failed(e))) => Err(ClientError::Connect(e)),
            Ok(Err(other)) => Err(ClientError::Closed(Some(other))),
            Err(_) => Err(ClientError::Closed(None)),
        }
    }

    /// Whether the connection has ended (its task is gone).
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// What the terminal said it can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The protocol version agreed with the terminal (`posbridge_wire::VERSION_1_0` or
    /// `VERSION_1_1`).
    pub fn protocol_version(&self) -> u16 {
        self.capabilities.selected_version
    }

    /// The terminal's telemetry now: `None` from a terminal of protocol 1.0, which has none
    /// (nothing is sent to it).
    pub async fn telemetry(&self, timeout: Duration) -> Result<Option<Telemetry>, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(None);
        }
        let q = Message::TelemetryQuery(TelemetryQuery {
            request_id: RequestId::default(),
        });
        match self.request(q, timeout).await? {
            Message::TelemetryReport(r) => Ok(Some(r.telemetry)),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Takes the terminal for this till's payments (see `PaymentTerminal::acquire`): `None`
    /// from a terminal of protocol 1.0. With `wait`, a till queued behind another waits up to
    /// that long for the terminal to be handed over, and answers where it stands then (still
    /// queued if the time ran out: it stays in the queue until it [`release`](Self::release)s).
    pub async fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> Result<Option<LeaseState>, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(None);
        }
        let duration_ms = u32::try_from(duration.as_millis())
            .unwrap_or(u32::MAX)
            .clamp(MIN_LEASE_MS, MAX_LEASE_MS);
        // Listening before asking: a hand-over right after the answer is not missed.
        let mut events = self.events();
        let q = Message::LeaseRequest(LeaseRequest {
            request_id: RequestId::default(),
            holder: holder.to_string(),
            duration_ms,
            wait: wait.is_some(),
        });
        let state = match self.request(q, Duration::from_secs(20)).await? {
            Message::LeaseResponse(r) => r.state,
            other => return Err(ClientError::UnexpectedAnswer(Box::new(other))),
        };
        let (LeaseState::Queued { .. }, Some(wait)) = (&state, wait) else {
            return Ok(Some(state));
        };
        let mut last = state;
        // Out of time: still queued, as `last` says.
        let _ = tokio::time::timeout(wait, async {
            loop {
                match events.recv().await {
                    Ok(ClientEvent::Lease(s)) => {
                        let done = !matches!(s, LeaseState::Queued { .. });
                        last = s;
                        if done {
                            return;
                        }
                    }
                    Ok(ClientEvent::Closed(_)) | Err(broadcast::error::RecvError::Closed) => {
                        return;
                    }
                    _ => {}
                }
            }
        })
        .await;
        Ok(Some(last))
    }

    /// Installs a signed software update (see `PaymentTerminal::update`): `None` from a terminal
    /// of protocol 1.0. Safe to call again after a disconnect: the transfer resumes where the
    /// terminal's bytes end.
    pub async fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> Result<Option<UpdateState>, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(None);
        }
        use sha2::Digest as _;
        if image.len() != manifest.size as usize
            || sha2::Sha256::digest(image).as_slice() != manifest.digest
        {
            return Err(ClientError::UpdateMismatch);
        }
        let ask = |m: Message| async move {
            match self.request(m, Duration::from_secs(30)).await? {
                Message::UpdateStatus(s) => Ok(s.state),
                other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
            }
        };
        let mut state = ask(Message::UpdateOffer(UpdateOffer {
            request_id: RequestId::default(),
            manifest: manifest.clone(),
        }))
        .await?;
        loop {
            let UpdateState::Ready { offset } = state else {
                return Ok(Some(state));
            };
            progress(offset, manifest.size);
            let from = (offset as usize).min(image.len());
            let to = (from + usize::from(UPDATE_CHUNK)).min(image.len());
            if from == to {
                // The terminal holds it all and still asks: offer it again to install.
                return Err(ClientError::UnexpectedAnswer(Box::new(
                    Message::UpdateStatus(UpdateStatus {
                        request_id: RequestId::default(),
                        state,
                    }),
                )));
            }
            state = ask(Message::UpdateChunk(UpdateChunk {
                request_id: RequestId::default(),
                digest: manifest.digest,
                offset,
                data: image[from..to].to_vec(),
            }))
            .await?;
        }
    }

    /// What became of the payment the terminal approved offline under `key` (protocol 1.1):
    /// pending, confirmed, or declined after the fact — signed by the terminal, the signature
    /// checked here against `terminal_key` (the paired terminal's signing key; `None` accepts
    /// an unsigned outcome — for tests only). `None` from a terminal of protocol 1.0. The
    /// terminal also pushes each final outcome when it learns it
    /// ([`ClientEvent::OfflineOutcome`], and
    /// [`take_pushed_offline_outcomes`](Self::take_pushed_offline_outcomes)).
    pub async fn offline_outcome(
        &self,
        key: IdempotencyKey,
        terminal_key: Option<&posbridge_crypto::PublicKey>,
        timeout: Duration,
    ) -> Result<Option<OfflineOutcome>, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(None);
        }
        let q = Message::OfflineOutcomeQuery(OfflineOutcomeQuery {
            request_id: RequestId::default(),
            idempotency_key: key,
        });
        match self.request(q, timeout).await? {
            Message::OfflineOutcome(o) if o.idempotency_key == key => {
                if let Some(terminal_key) = terminal_key {
                    posbridge_crypto::verify_offline_outcome(terminal_key, &o)
                        .map_err(ClientError::BadSignature)?;
                }
                Ok(Some(o))
            }
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Gives the terminal back, or leaves its queue (nothing to do on protocol 1.0).
    pub async fn release(&self) -> Result<(), ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(());
        }
        let q = Message::LeaseRelease(LeaseRelease {
            request_id: RequestId::default(),
        });
        match self.request(q, Duration::from_secs(20)).await? {
            Message::LeaseResponse(_) => Ok(()),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Shows `cart` on the customer display: `false` from a terminal of protocol 1.0 (nothing
    /// is sent to it).
    pub async fn show_cart(&self, cart: &Cart, timeout: Duration) -> Result<bool, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(false);
        }
        let d = Message::CustomerDisplay(CustomerDisplay {
            request_id: RequestId::default(),
            lines: cart.lines.clone(),
            currency: cart.currency,
            total: cart.total,
            message: cart.message.clone(),
        });
        match self.request(d, timeout).await? {
            Message::CustomerResponse(r) if r.reply == CustomerReply::Shown => Ok(true),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Asks the customer on the terminal's screen and waits for the answer (or `TimedOut` once
    /// the prompt's timeout passes; the call itself allows 10 s more). `None` from a terminal of
    /// protocol 1.0. To withdraw the question sooner, [`send`](Self::send) a `CustomerInput`
    /// and [`cancel`](Self::cancel) it: the answer is then `Cancelled`.
    pub async fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> Result<Option<CustomerReply>, ClientError> {
        if self.protocol_version() < VERSION_1_1 {
            return Ok(None);
        }
        let timeout_ms = u32::try_from(prompt.timeout.as_millis())
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_INPUT_TIMEOUT_MS);
        let q = Message::CustomerInput(CustomerInput {
            request_id: RequestId::default(),
            prompt: prompt.prompt.clone(),
            question: prompt.question.clone(),
            timeout_ms,
        });
        let deadline = Duration::from_millis(timeout_ms.into()) + Duration::from_secs(10);
        match self.request(q, deadline).await? {
            Message::CustomerResponse(r) => Ok(Some(r.reply)),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Telemetry changes the terminal pushes from now on (protocol 1.1: battery low, power,
    /// paper, acquirer link, software, payments stored offline). A receiver more than 64
    /// changes behind loses the oldest.
    pub fn telemetry_events(&self) -> broadcast::Receiver<TelemetryChanged> {
        self.telemetry.subscribe()
    }

    /// The pairing made while connecting, if the client paired: store it.
    pub fn paired(&self) -> Option<&PairingRecord> {
        self.paired.as_ref()
    }

    /// Every event of the session as it happens (progress, answers, heartbeats, the close), for
    /// displays and logs. Best effort: a receiver that falls more than 1024 events behind loses
    /// the oldest; answers to calls never depend on it.
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.events.subscribe()
    }

    /// The final outcomes of payments approved offline that the terminal pushed since the last
    /// call, oldest first, **signatures not checked** (the journaled engine checks them). Up to
    /// the last 1,024 are kept; older ones are dropped with a warning — the outcome can always be
    /// asked for again ([`offline_outcome`](Self::offline_outcome)).
    pub fn take_pushed_offline_outcomes(&self) -> Vec<OfflineOutcome> {
        self.pushed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    /// Sends a request (any client message: see `ClientSession::request`) with `timeout` as
    /// its deadline, and returns at once with a handle to wait on.
    pub async fn send(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<PendingRequest, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request {
                message: Box::new(message),
                timeout,
                reply,
            })
            .await
            .map_err(|_| ClientError::Closed(None))?;
        match rx.await {
            Ok(Ok((id, answer))) => Ok(PendingRequest { id, answer }),
            Ok(Err(e)) => Err(ClientError::Request(e)),
            Err(_) => Err(ClientError::Closed(None)),
        }
    }

    /// Sends a request and waits for its answer.
    pub async fn request(
        &self,
        message: Message,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        self.send(message, timeout).await?.answer().await
    }

    /// Asks the terminal to abort a request (its result still arrives and stands).
    pub async fn cancel(&self, id: RequestId) -> Result<(), ClientError> {
        self.commands
            .send(Command::Cancel { id })
            .await
            .map_err(|_| ClientError::Closed(None))
    }

    /// Runs a money command to its final result.
    pub async fn transaction(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        timeout: Duration,
    ) -> Result<TransactionResult, ClientError> {
        let request = TransactionRequest::new(RequestId::default(), key, command);
        match self.request(Message::Transaction(request), timeout).await? {
            Message::TransactionResult(r) => Ok(r),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// A sale of `amount` under idempotency key `key`.
    pub async fn sale(
        &self,
        key: IdempotencyKey,
        amount: Amount,
        timeout: Duration,
    ) -> Result<TransactionResult, ClientError> {
        self.transaction(
            key,
            TransactionCommand::Sale {
                amount,
                tip: None,
                cashback: None,
            },
            timeout,
        )
        .await
    }

    /// What became of the money command with idempotency key `key`.
    pub async fn status(
        &self,
        key: IdempotencyKey,
        timeout: Duration,
    ) -> Result<TransactionStatus, ClientError> {
        let q = Message::StatusQuery(StatusQuery {
            request_id: RequestId::default(),
            idempotency_key: key,
        });
        match self.request(q, timeout).await? {
            Message::StatusResponse(s) => Ok(s.status),
            other => Err(ClientError::UnexpectedAnswer(Box::new(other))),
        }
    }

    /// Closes the connection in order (what is queued is delivered first) and waits until it is
    /// closed; returns how it ended.
    pub async fn close(self) -> Option<CloseReason> {
        let _ = self.commands.send(Command::Close).await;
        self.task.await.ok().flatten()
    }
}

/// Offline outcomes pushed and not yet taken.
type Pushed = Arc<Mutex<VecDeque<OfflineOutcome>>>;

/// How many pushed offline outcomes are kept until taken.
const PUSHED_KEPT: usize = 1024;

type Ready = oneshot::Sender<Result<(Capabilities, Option<PairingRecord>), CloseReason>>;

async fn run<L: Link>(
    mut session: ClientSession,
    mut link: L,
    mut commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<ClientEvent>,
    telemetry: broadcast::Sender<TelemetryChanged>,
    pushed: Pushed,
    ready: Ready,
) -> Option<CloseReason> {
    let mut ready = Some(ready);
    let mut paired = None;
    let mut waiting: HashMap<RequestId, oneshot::Sender<Answer>> = HashMap::new();
    let mut buf = BytesMut::with_capacity(4096);
    let mut commands_open = true;
    let mut closed = None;
    loop {
        flush(&mut session, &mut link).await;
        while let Some(event) = Session::poll_event(&mut session) {
            match &event {
                ClientEvent::Paired(record) => {
                    tracing::info!(terminal = %record.peer.id, "paired");
                    let mut record = record.clone();
                    record.paired_at = wall_now();
                    paired = Some(record);
                }
                ClientEvent::Connected(caps) => {
                    tracing::info!(terminal = %caps.terminal_id, version = caps.selected_version, "connected");
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok((caps.clone(), paired.clone())));
                    }
                }
                ClientEvent::Response {
                    request_id,
                    message,
                } => {
                    if let Some(w) = waiting.remove(request_id) {
                        let _ = w.send(Ok(message.clone()));
                    }
                }
                ClientEvent::RequestFailed {
                    request_id,
                    failure,
                } => {
                    if let Some(w) = waiting.remove(request_id) {
                        let _ = w.send(Err(failure.clone()));
                    }
                }
                ClientEvent::Telemetry(report) => {
                    tracing::info!(changes = ?report.changes, "terminal telemetry changed");
                    let _ = telemetry.send(TelemetryChanged {
                        changes: report.changes,
                        telemetry: report.telemetry.clone(),
                    });
                }
                ClientEvent::OfflineOutcome(outcome) => {
                    tracing::info!(key = %outcome.idempotency_key, state = ?outcome.state, "offline outcome pushed");
                    let mut kept = pushed.lock().unwrap_or_else(|p| p.into_inner());
                    if kept.len() >= PUSHED_KEPT {
                        tracing::warn!("too many offline outcomes not taken: the oldest dropped");
                        kept.pop_front();
                    }
                    kept.push_back(outcome.clone());
                }
                ClientEvent::Closed(reason) => {
                    tracing::info!(reason = ?reason, "connection closed");
                    closed = Some(reason.clone());
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(reason.clone()));
                    }
                }
                _ => {}
            }
            // Nobody listening is fine: answers go through `waiting`.
            let _ = events.send(event);
        }
        if Session::is_closed(&session) {
            break;
        }
        let timer = Session::poll_timeout(&session);
        let sleep = async {
            match timer {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let command = async {
            if commands_open {
                commands.recv().await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            received = link.recv(&mut buf) => match received {
                Ok(_) => {
                    session.handle_input(&buf, now());
                    buf.clear();
                }
                Err(_) => session.link_lost(now()),
            },
            () = sleep => session.handle_timeout(now()),
            command = command => match command {
                Some(Command::Request { message, timeout, reply }) => {
                    let t = now();
                    match session.request(*message, t + timeout, t) {
                        Ok(id) => {
                            let (tx, rx) = oneshot::channel();
                            waiting.insert(id, tx);
                            let _ = reply.send(Ok((id, rx)));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(Command::Cancel { id }) => {
                    let _ = session.cancel(id, now());
                }
                Some(Command::Close) => session.close(now()),
                None => {
                    // The client was dropped: close in order.
                    commands_open = false;
                    session.close(now());
                }
            },
        }
    }
    flush(&mut session, &mut link).await;
    let _ = link.close().await;
    closed
}
