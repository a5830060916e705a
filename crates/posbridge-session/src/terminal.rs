//! The terminal role.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use posbridge_crypto::{
    ChannelConfig, ChannelError, LocalIdentity, PairingConfig, PairingError, PairingRecord,
    PairingWindow, PeerId, Responder, TerminalPairing,
};
use posbridge_wire::{
    CancelResponse, CancelState, Capabilities, ConfigResponse, ErrorCode, ErrorMessage, FrameType,
    Handshake, HeartbeatAck, Hello, IdempotencyKey, LeaseResponse, LeaseState, Message,
    OfflineOutcome, OfflineOutcomeQuery, OfflineState, OperatorAuth, PROTOCOL_VERSIONS,
    PaymentMethod, Progress, ProgressStage, RequestId, StatusResponse, Telemetry,
    TelemetryChangeSet, TelemetryReport, TerminalConfig, TerminalState, Timestamp, TransactionKind,
    TransactionRequest, TransactionResult, TransactionStatus, UpdateManifest, UpdateRefusal,
    UpdateState, UpdateStatus, VERSION_1_1,
};

use crate::lease::{LeaseBoard, SharedLeases};
use crate::offline::{OfflineOutcomes, SharedOutcomes};
use crate::operators::{AuthError, OperatorPolicy, Operators};
use crate::requests::{RequestError, validate};
use crate::results::{
    Claim, Completion, KeyDecision, KeyRecord, MemoryResultStore, ResultStore, SharedResults,
    key_decision,
};
use crate::telemetry::{SharedTelemetry, TelemetryBoard};
use crate::update::{Received, SharedUpdates, UpdateStore};

use crate::core::{Core, Next};
use crate::{CloseReason, SessionConfig, SessionError, SessionStats};

/// The terminal's pairings and its pairing window, shared by all its sessions (behind a mutex:
/// sessions only hold it for the length of a lookup).
#[derive(Debug, Default)]
pub struct PairingRegistry {
    window: Option<PairingWindow>,
    paired: HashMap<PeerId, PairingRecord>,
    /// A pairing the operator allowed the next pairing to replace.
    replacing: Option<PeerId>,
}

impl PairingRegistry {
    /// No pairings, pairing mode off.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pairings loaded from storage (`posbridge_crypto::PairingStore::records`).
    pub fn with_records(records: impl IntoIterator<Item = PairingRecord>) -> Self {
        Self {
            window: None,
            replacing: None,
            paired: records.into_iter().map(|r| (r.peer.id, r)).collect(),
        }
    }

    /// Enters pairing mode at `now`; returns the code to show.
    pub fn open_window(
        &mut self,
        config: PairingConfig,
        now: Instant,
    ) -> Result<&str, PairingError> {
        let window = self.window.insert(PairingWindow::open(config, now)?);
        Ok(window.code().expect("a fresh window shows a code"))
    }

    /// Enters pairing mode with a window made elsewhere.
    pub fn set_window(&mut self, window: PairingWindow) {
        self.window = Some(window);
    }

    /// The pairing window, if pairing mode is on.
    pub fn window(&self) -> Option<&PairingWindow> {
        self.window.as_ref()
    }

    /// Leaves pairing mode.
    pub fn close_window(&mut self) {
        if let Some(w) = &mut self.window {
            w.close();
        }
    }

    /// Whether a client holding this channel key is paired.
    pub fn is_paired(&self, channel_key: &[u8; 32]) -> bool {
        self.paired
            .values()
            .any(|r| &r.peer.channel_key == channel_key)
    }

    /// The record of the client holding this channel key.
    pub fn find(&self, channel_key: &[u8; 32]) -> Option<&PairingRecord> {
        self.paired
            .values()
            .find(|r| &r.peer.channel_key == channel_key)
    }

    /// Adds (or replaces) a pairing.
    pub fn add(&mut self, record: PairingRecord) {
        self.paired.insert(record.peer.id, record);
    }

    /// Lets the next pairing replace the pairing of `peer` (a till whose keys were lost or
    /// reset pairs again under its old id). Without it, a pairing that claims the id of a paired
    /// device under other keys is refused ([`PairingError::AlreadyPaired`]): whoever learnt a
    /// pairing code could otherwise overwrite a paired till's record and lock it out.
    pub fn allow_replacing(&mut self, peer: PeerId) {
        self.replacing = Some(peer);
    }

    /// Records a pairing that just completed, unless it would overwrite another device's keys
    /// under the same id without the operator's leave. The same device pairing again (the same
    /// keys) is fine.
    fn admit(&mut self, record: &PairingRecord) -> Result<(), PairingError> {
        let id = record.peer.id;
        match self.paired.get(&id) {
            Some(old)
                if (old.peer.channel_key, old.peer.signing_key)
                    != (record.peer.channel_key, record.peer.signing_key)
                    && self.replacing != Some(id) =>
            {
                Err(PairingError::AlreadyPaired)
            }
            _ => {
                if self.replacing == Some(id) {
                    self.replacing = None;
                }
                self.add(record.clone());
                Ok(())
            }
        }
    }

    /// Revokes a pairing: the client's next handshake is refused. Sessions already running are
    /// the driver's to close.
    pub fn revoke(&mut self, peer: &PeerId) -> bool {
        self.paired.remove(peer).is_some()
    }

    /// Every pairing.
    pub fn records(&self) -> impl Iterator<Item = &PairingRecord> {
        self.paired.values()
    }
}

/// The terminal's settings: what it reports in its capabilities, plus the configuration that
/// is not part of them (tipping, receipt header). Configuration writes change them for every
/// session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalSettings {
    /// What the terminal reports (its `selected_version` is filled in per client).
    pub capabilities: Capabilities,
    /// Tipping, tip percentages and receipt header (the other fields are unused here).
    pub extra: TerminalConfig,
}

impl TerminalSettings {
    /// The configuration as a `ConfigResponse` reports it.
    pub fn config(&self, clock: Option<Timestamp>) -> TerminalConfig {
        let c = &self.capabilities;
        TerminalConfig {
            merchant_name: c.merchant_name.clone(),
            kinds: Some(c.kinds),
            methods: Some(c.methods),
            currencies: Some(c.currencies.clone()),
            limits: Some(c.limits.clone()),
            tipping: self.extra.tipping,
            tip_percentages: self.extra.tip_percentages.clone(),
            receipt_header: self.extra.receipt_header.clone(),
            clock,
        }
    }

    /// Applies the fields a configuration write sets.
    pub fn apply(&mut self, write: &TerminalConfig) {
        let c = &mut self.capabilities;
        if let Some(v) = &write.merchant_name {
            c.merchant_name = Some(v.clone());
        }
        if let Some(v) = write.kinds {
            c.kinds = v;
        }
        if let Some(v) = write.methods {
            c.methods = v;
        }
        if let Some(v) = &write.currencies {
            c.currencies = v.clone();
        }
        if let Some(v) = &write.limits {
            c.limits = v.clone();
        }
        if let Some(v) = write.tipping {
            self.extra.tipping = Some(v);
        }
        if let Some(v) = &write.tip_percentages {
            self.extra.tip_percentages = Some(v.clone());
        }
        if let Some(v) = &write.receipt_header {
            self.extra.receipt_header = Some(v.clone());
        }
    }
}

/// What a terminal's sessions share: its identity, pairings, settings, operators and memory of
/// idempotency keys. Cheap to clone (reference-counted).
#[derive(Clone)]
pub struct TerminalContext {
    /// The terminal's long-term keys.
    pub identity: Arc<LocalIdentity>,
    /// Its pairings and pairing window.
    pub registry: Arc<Mutex<PairingRegistry>>,
    /// Its idempotency keys and their results.
    pub results: SharedResults,
    /// What it reports and how it is configured.
    pub settings: Arc<Mutex<TerminalSettings>>,
    /// Who may authorise refunds, voids, settlements and configuration changes.
    pub operators: Arc<Mutex<Operators>>,
    /// Its telemetry (protocol 1.1): set it when the battery, power, paper or acquirer link
    /// change; sessions answer queries and push changes.
    pub telemetry: SharedTelemetry,
    /// Which till holds it and which wait (protocol 1.1 leases), kept by the sessions.
    pub leases: SharedLeases,
    /// Its software updates: the publisher it trusts, its rules, the image being received.
    pub updates: SharedUpdates,
    /// The final outcomes of its offline payments, as it learns them (protocol 1.1).
    pub offline: SharedOutcomes,
}

impl std::fmt::Debug for TerminalContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalContext")
            .field("identity", &self.identity.id())
            .finish_non_exhaustive()
    }
}

impl TerminalContext {
    /// A context reporting `capabilities`, with an in-memory result store of `capacity` keys
    /// and no operators (add them through [`operators`](Self::operators)).
    pub fn new(
        identity: Arc<LocalIdentity>,
        registry: PairingRegistry,
        capabilities: Capabilities,
        capacity: usize,
    ) -> Self {
        let telemetry = TelemetryBoard::shared(Telemetry {
            firmware: capabilities.firmware.clone(),
            ..Telemetry::default()
        });
        Self {
            identity,
            registry: Arc::new(Mutex::new(registry)),
            results: MemoryResultStore::shared(capacity),
            settings: Arc::new(Mutex::new(TerminalSettings {
                capabilities,
                extra: TerminalConfig::default(),
            })),
            operators: Arc::new(Mutex::new(Operators::new(OperatorPolicy::default()))),
            telemetry,
            leases: LeaseBoard::shared(),
            updates: UpdateStore::shared(),
            offline: OfflineOutcomes::shared(),
        }
    }
}

/// What happened, for the terminal's app.
// Events are moved out once each; boxing the large ones would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminalEvent {
    /// A client paired: the record is in the registry; store it.
    Paired(PairingRecord),
    /// The pairing window made a new code after the last one's attempts were used up (by anyone
    /// on the link): show this one instead, at once — the old one no longer pairs. The handover
    /// secret (tag, QR code) does not change.
    PairingCode(String),
    /// A paired client connected over the secure channel.
    Connected {
        /// Its hello.
        hello: Hello,
        /// Its pairing record.
        client: PairingRecord,
    },
    /// A money command to run. Report its progress with
    /// [`TerminalSession::progress`] and its signed result with [`TerminalSession::complete`].
    /// `resumed` means it was started before, over an earlier connection, and is still running:
    /// do not start it again, only deliver its result here.
    Transaction {
        /// The command.
        request: TransactionRequest,
        /// Whether it was already running.
        resumed: bool,
    },
    /// The client asks to abort the running command `target`; answer with
    /// [`TerminalSession::respond`] (a `CancelResponse`), then complete the command with its
    /// real result (cancelled, or — past the point of no return — what it became). Or `target`
    /// is a customer question still open (protocol 1.1): answer the cancel, take the question
    /// off the screen and answer it with `CustomerReply::Cancelled`.
    CancelRequested {
        /// The cancel request's id.
        request_id: RequestId,
        /// The command to abort.
        target: RequestId,
    },
    /// Another request (settlement, receipt, last transaction; in protocol 1.1 a customer
    /// display or question, answered with a `CustomerResponse`); answer with
    /// [`TerminalSession::respond`]. A settlement arrives here only after its operator
    /// authorisation was checked.
    Request(Message),
    /// A software update arrived whole, its publisher's signature and its digest checked
    /// (protocol 1.1): install it, then answer `request_id` with an `UpdateStatus` — installed
    /// with the version now running, or refused with `InstallFailed` (the old version stays).
    UpdateReady {
        /// The request to answer.
        request_id: RequestId,
        /// What the publisher signed.
        manifest: UpdateManifest,
        /// The image.
        image: Vec<u8>,
    },
    /// An authorised configuration write was applied (to every session's capabilities): persist
    /// it, and set the terminal's clock if it carries one.
    Configured(TerminalConfig),
    /// A message that is not a request.
    Message(Message),
    /// The session ended.
    Closed(CloseReason),
}

enum State {
    Awaiting,
    Pairing(TerminalPairing),
    Ready,
    Closed,
}

/// The payment logic behind a terminal (the simulator implements it; so does a real terminal's
/// firmware). A driver hands it every event of a [`TerminalSession`] and calls its timer; it
/// answers through the session: [`TerminalSession::progress`] and
/// [`TerminalSession::complete`] for money commands, [`TerminalSession::respond`] for the rest.
/// Idempotency, status queries and queueing are the session's: the app sees each command once.
pub trait TerminalApp {
    /// Handles one event of `session`.
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant);

    /// When the app next needs [`handle_timeout`](Self::handle_timeout) for `session`'s work
    /// (a card presented after a delay, an online authorisation answering). An app serving
    /// several sessions answers per session, so that a driver only wakes for its own.
    fn poll_timeout(&self, session: &TerminalSession) -> Option<Instant> {
        let _ = session;
        None
    }

    /// Time-driven work.
    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        let _ = (session, now);
    }
}

/// Money commands that give money back need an operator: refunds, voids, and the release of a
/// pre-authorisation (the deposit a hotel or a car rental holds goes back to the customer: undone,
/// it cannot be taken again). Settlements and configuration writes always do. Captures and
/// incremental authorisations take money as the customer agreed, like a sale: no operator.
fn needs_operator(kind: TransactionKind) -> bool {
    matches!(
        kind,
        TransactionKind::Refund | TransactionKind::Void | TransactionKind::PreAuthCancel
    )
}

/// One app shared by several sessions (one per connection, each in its own task): a
/// reference-counted handle that locks the app for the length of each call.
pub struct SharedApp<A>(Arc<Mutex<A>>);

impl<A> Clone for SharedApp<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<A> std::fmt::Debug for SharedApp<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedApp")
    }
}

impl<A> SharedApp<A> {
    /// Shares `app`.
    pub fn new(app: A) -> Self {
        Self(Arc::new(Mutex::new(app)))
    }

    /// The app, locked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, A> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<A: TerminalApp> TerminalApp for SharedApp<A> {
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        self.lock().on_event(session, event, now);
    }

    fn poll_timeout(&self, session: &TerminalSession) -> Option<Instant> {
        self.lock().poll_timeout(session)
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        self.lock().handle_timeout(session, now);
    }
}

/// The money command a session is running.
struct Running {
    key: IdempotencyKey,
    request_id: RequestId,
    stage: Option<ProgressStage>,
}

/// The terminal's side of one connection, sans-IO. The driver loop is the same as
/// [`ClientSession`](crate::ClientSession)'s: `handle_input`, then `poll_transmit` until `None`,
/// `poll_event` until `None`, and `handle_timeout` at `poll_timeout`.
pub struct TerminalSession {
    id: u64,
    core: Core,
    identity: Arc<LocalIdentity>,
    registry: Arc<Mutex<PairingRegistry>>,
    results: SharedResults,
    settings: Arc<Mutex<TerminalSettings>>,
    operators: Arc<Mutex<Operators>>,
    telemetry: SharedTelemetry,
    /// The protocol version agreed with the client (0 until the handshake is answered).
    version: u16,
    /// The telemetry board's generation this session last reported to its client.
    telemetry_seen: u64,
    leases: SharedLeases,
    updates: SharedUpdates,
    offline: SharedOutcomes,
    /// How many offline outcomes this session's client has been told of (or were there before
    /// it connected).
    offline_seen: usize,
    /// Where the client was last told it stands with the lease.
    lease_told: LeaseState,
    running: Option<Running>,
    queued: VecDeque<TransactionRequest>,
    /// Keys of queued commands this session claimed when it queued them.
    claimed_queued: std::collections::HashSet<IdempotencyKey>,
    /// Customer questions handed to the app and not answered yet (a cancel names one).
    customer_inputs: std::collections::HashSet<RequestId>,
    state: State,
    events: VecDeque<TerminalEvent>,
    terminal_state: TerminalState,
    clock: Option<Timestamp>,
    /// Between the answer to a handshake and the client's first sealed frame: when the answer
    /// went out, and the `Connected` event to announce once the client proves it holds the keys
    /// (a replayed first handshake message is answered too, but its sender cannot seal a frame).
    unauthenticated: Option<(Instant, TerminalEvent)>,
    /// The paired client's channel key once its handshake was answered, and when its pairing was
    /// last seen to be still there (a revocation closes the session within a second).
    client: Option<([u8; 32], Instant)>,
}

/// How often an open session looks whether its client's pairing was revoked meanwhile.
const PAIRING_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for TerminalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalSession")
            .field("ready", &self.is_ready())
            .field("stats", &self.core.stats())
            .finish_non_exhaustive()
    }
}

impl TerminalSession {
    /// A session for a link that just came up at `now`; it waits for the client to pair or to
    /// start the secure handshake. It reports the context's capabilities (with the protocol
    /// version chosen for this client).
    pub fn new(config: SessionConfig, context: TerminalContext, now: Instant) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            core: Core::new(config, now),
            identity: context.identity,
            registry: context.registry,
            results: context.results,
            settings: context.settings,
            operators: context.operators,
            telemetry: context.telemetry,
            version: 0,
            telemetry_seen: 0,
            leases: context.leases,
            updates: context.updates,
            offline: context.offline,
            offline_seen: 0,
            lease_told: LeaseState::Released,
            running: None,
            queued: VecDeque::new(),
            claimed_queued: std::collections::HashSet::new(),
            customer_inputs: std::collections::HashSet::new(),
            state: State::Awaiting,
            events: VecDeque::new(),
            terminal_state: TerminalState::Idle,
            clock: None,
            unauthenticated: None,
            client: None,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, PairingRegistry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The protocol version agreed with the client, once the handshake was answered
    /// (`posbridge_wire::VERSION_1_0` or `VERSION_1_1`).
    pub fn protocol_version(&self) -> Option<u16> {
        (self.version != 0).then_some(self.version)
    }

    fn telemetry(&self) -> std::sync::MutexGuard<'_, TelemetryBoard> {
        self.telemetry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, LeaseBoard> {
        self.leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells a queued or holding client when where it stands changed: a new place in the queue,
    /// the lease granted, or run out.
    fn push_lease(&mut self, now: Instant) {
        if !self.may_push() {
            return;
        }
        if !matches!(
            self.lease_told,
            LeaseState::Granted { .. } | LeaseState::Queued { .. }
        ) {
            return;
        }
        let standing = {
            let mut board = self.leases();
            board.expire(now);
            board.standing(self.id, now)
        };
        let push = match (&self.lease_told, &standing) {
            (LeaseState::Granted { .. }, LeaseState::Granted { .. }) => None,
            (LeaseState::Granted { .. }, LeaseState::Released) => Some(LeaseState::Expired),
            (told, now_) if told == now_ => None,
            (_, now_) => Some(now_.clone()),
        };
        let Some(state) = push else { return };
        self.lease_told = standing;
        let message = Message::LeaseResponse(LeaseResponse {
            request_id: None,
            state,
        });
        self.push(&message, now);
    }

    /// Whether the session may push to its client now: ready, protocol 1.1 (every push is a
    /// 1.1 message), not closing.
    fn may_push(&self) -> bool {
        self.is_ready() && self.version >= VERSION_1_1 && !self.core.is_closing()
    }

    /// Sends a message nobody asked for; a failure ends the session. `false` if it did.
    fn push(&mut self, message: &Message, now: Instant) -> bool {
        match self.core.send(FrameType::Data, message, now) {
            Ok(()) => true,
            Err(e) => {
                self.end(CloseReason::Failed(e), now, false);
                false
            }
        }
    }

    fn updates(&self) -> std::sync::MutexGuard<'_, UpdateStore> {
        self.updates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update_status(&mut self, request_id: RequestId, state: UpdateState, now: Instant) {
        self.reply(
            Message::UpdateStatus(UpdateStatus { request_id, state }),
            now,
        );
    }

    /// Whether a payment runs: on this session, or anywhere as the app says.
    fn payment_running(&self) -> bool {
        self.running.is_some() || !self.queued.is_empty() || self.updates().busy()
    }

    /// A whole, checked image: to the app to install, unless a payment runs (then it is kept
    /// for the next offer).
    fn install(
        &mut self,
        request_id: RequestId,
        manifest: UpdateManifest,
        image: Vec<u8>,
        now: Instant,
    ) {
        if self.payment_running() {
            self.updates().keep(manifest, image);
            return self.update_status(
                request_id,
                UpdateState::Refused(UpdateRefusal::PaymentRunning),
                now,
            );
        }
        self.events.push_back(TerminalEvent::UpdateReady {
            request_id,
            manifest,
            image,
        });
    }

    fn on_update(&mut self, message: Message, now: Instant) {
        match message {
            Message::UpdateOffer(o) => {
                let (battery, charging, installed) = {
                    let board = self.telemetry();
                    let t = board.current();
                    (t.battery_percent, t.charging, t.firmware.clone())
                };
                let m = o.manifest;
                let offered = if self.payment_running() {
                    Err(UpdateRefusal::PaymentRunning)
                } else {
                    self.updates()
                        .offer(&m, installed.as_deref(), battery, charging)
                };
                match offered {
                    Err(r) => self.update_status(o.request_id, UpdateState::Refused(r), now),
                    // All of it is here already (it waited for a payment to end).
                    Ok(offset) if offset == m.size => {
                        let whole = self.updates().complete();
                        self.on_received(o.request_id, whole, now);
                    }
                    Ok(offset) => {
                        self.update_status(o.request_id, UpdateState::Ready { offset }, now)
                    }
                }
            }
            Message::UpdateChunk(c) => {
                let received = self.updates().chunk(&c.digest, c.offset, &c.data);
                self.on_received(c.request_id, received, now);
            }
            _ => {}
        }
    }

    fn on_received(&mut self, request_id: RequestId, received: Received, now: Instant) {
        match received {
            Received::Next(offset) => {
                self.update_status(request_id, UpdateState::Ready { offset }, now)
            }
            Received::Refused(r) => self.update_status(request_id, UpdateState::Refused(r), now),
            Received::Complete(manifest, image) => self.install(request_id, manifest, image, now),
        }
    }

    /// Refuses a new money command while another till holds the terminal; `true` if refused.
    fn held_by_another(&mut self, request_id: RequestId, now: Instant) -> bool {
        let Err((holder, left)) = self.leases().allows(self.id, now) else {
            return false;
        };
        self.refuse_request(
            request_id,
            ErrorCode::BUSY,
            &format!("the terminal is held by {holder}"),
            Some(left),
            now,
        );
        true
    }

    fn offline(&self) -> std::sync::MutexGuard<'_, OfflineOutcomes> {
        self.offline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pushes the offline outcomes recorded since the last push to a client of protocol 1.1.
    fn push_offline(&mut self, now: Instant) {
        if !self.may_push() {
            return;
        }
        let new: Vec<OfflineOutcome> = self.offline().since(self.offline_seen).to_vec();
        for outcome in new {
            self.offline_seen += 1;
            if !self.push(&Message::OfflineOutcome(outcome), now) {
                return;
            }
        }
    }

    /// What became of the offline payment under a key: its final outcome once learnt, pending
    /// while its signed result says approved offline, or not found.
    fn on_offline_query(&mut self, q: OfflineOutcomeQuery, now: Instant) {
        let known = self.offline().get(&q.idempotency_key).cloned();
        let answer = known.or_else(|| {
            let result = self.results().load(&q.idempotency_key)?.result?;
            (result.offline && result.outcome.is_approved()).then(|| {
                let mut pending = OfflineOutcome {
                    request_id: None,
                    idempotency_key: result.idempotency_key,
                    transaction_id: result.transaction_id,
                    terminal_id: result.terminal_id,
                    state: OfflineState::Pending,
                    time: self.clock.unwrap_or(result.time),
                    signature: None,
                };
                self.identity.signing().sign_offline_outcome(&mut pending);
                pending
            })
        });
        match answer {
            Some(mut outcome) => {
                outcome.request_id = Some(q.request_id);
                self.reply(Message::OfflineOutcome(outcome), now);
            }
            None => self.refuse_request(
                q.request_id,
                ErrorCode::NOT_FOUND,
                "nothing was approved offline under this key",
                None,
                now,
            ),
        }
    }

    /// Pushes telemetry changes made since the last push to a client of protocol 1.1.
    fn push_telemetry(&mut self, now: Instant) {
        if !self.may_push() {
            return;
        }
        let report = {
            let board = self.telemetry();
            board
                .changes_since(self.telemetry_seen)
                .map(|(changes, generation)| {
                    (
                        generation,
                        TelemetryReport {
                            request_id: None,
                            changes,
                            telemetry: board.current().clone(),
                        },
                    )
                })
        };
        if let Some((generation, report)) = report {
            self.telemetry_seen = generation;
            self.push(&Message::TelemetryReport(report), now);
        }
    }

    /// What the terminal is doing, reported in heartbeat answers.
    pub fn set_terminal_state(&mut self, state: TerminalState) {
        self.terminal_state = state;
    }

    /// The terminal's wall clock, reported in heartbeat answers so clients can detect skew.
    pub fn set_clock(&mut self, now: Timestamp) {
        self.clock = Some(now);
    }

    /// Whether a paired client is connected over the secure channel.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.core.is_ended()
    }

    /// Counters for diagnostics.
    pub fn stats(&self) -> SessionStats {
        self.core.stats()
    }

    /// Messages sent and not yet acknowledged, plus those waiting for window space.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    fn end(&mut self, reason: CloseReason, now: Instant, flush: bool) {
        if let Some(reason) = self.core.end(reason, now, flush) {
            self.announce(reason);
        }
    }

    fn announce(&mut self, reason: CloseReason) {
        // A till that is gone holds nothing and waits for nothing.
        self.leases().release(self.id, None);
        self.state = State::Closed;
        self.events.push_back(TerminalEvent::Closed(reason));
    }

    /// Announces a close the core finished by itself (an orderly close drained).
    fn sync_closed(&mut self) {
        if let Some(reason) = self.core.unannounced_close() {
            self.announce(reason);
        }
    }

    /// Refuses the client with a plaintext error (before the channel) and closes.
    /// Whether the client's pairing is still there; when it was revoked, tells the client and
    /// closes the session (`SessionError::NotPaired`).
    fn still_paired(&mut self, now: Instant) -> bool {
        let Some((key, _)) = self.client else {
            return true;
        };
        if self.is_closed() || self.registry().is_paired(&key) {
            self.client = Some((key, now));
            return true;
        }
        self.client = None;
        self.unauthenticated = None;
        self.refuse(
            ErrorCode::NOT_PAIRED,
            "the pairing of this device was revoked on the terminal",
            SessionError::NotPaired,
            now,
        );
        false
    }

    fn refuse(&mut self, code: ErrorCode, detail: &str, error: SessionError, now: Instant) {
        let _ = self.core.send(
            FrameType::Data,
            &Message::Error(ErrorMessage {
                request_id: None,
                code,
                detail: Some(detail.to_string()),
                retry_after_ms: None,
            }),
            now,
        );
        self.end(CloseReason::Failed(error), now, true);
    }

    /// Bytes read from the link.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        // Nothing from a client whose pairing was revoked is acted on any more.
        if !self.still_paired(now) {
            return;
        }
        self.core.handle_input(bytes, now);
        while let Some(next) = self.core.next(now) {
            if self.core.announced() {
                continue;
            }
            match next {
                Next::Message(m) => self.on_message(m.frame_type, m.message, now),
                Next::PeerClosed => self.end(CloseReason::Peer, now, false),
                // A message type this version does not know (a newer client): said so, and the
                // session goes on. A malformed message: said so, then closed.
                Next::Undecodable { unknown_type: true } if self.is_ready() => {
                    let _ = self.core.send(
                        FrameType::Data,
                        &Message::Error(ErrorMessage {
                            request_id: None,
                            code: ErrorCode::UNSUPPORTED_MESSAGE,
                            detail: Some("a message type this terminal does not know".into()),
                            retry_after_ms: None,
                        }),
                        now,
                    );
                }
                Next::Undecodable { .. } => self.refuse(
                    ErrorCode::INVALID_REQUEST,
                    "a message that does not decode",
                    SessionError::Protocol("a message that does not decode"),
                    now,
                ),
            }
        }
        self.push_telemetry(now);
        self.push_lease(now);
        self.push_offline(now);
        self.sync_closed();
    }

    fn send_pairing(&mut self, msg: posbridge_wire::Pairing, now: Instant) {
        if let Err(e) = self
            .core
            .send(FrameType::Handshake, &Message::Pairing(msg), now)
        {
            self.end(CloseReason::Failed(e), now, false);
        }
    }

    fn on_message(&mut self, frame_type: FrameType, message: Message, now: Instant) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match (state, frame_type, message) {
            (State::Awaiting, FrameType::Handshake, Message::Pairing(m)) => {
                let (accepted, fresh) = {
                    let mut registry = self.registry();
                    match registry.window.as_mut() {
                        Some(window) => {
                            let generation = window.generation();
                            let accepted = window.accept(&self.identity, &m, now);
                            (accepted, new_code(window, generation))
                        }
                        None => (Err(PairingError::WindowClosed), None),
                    }
                };
                if let Some(code) = fresh {
                    self.events.push_back(TerminalEvent::PairingCode(code));
                }
                match accepted {
                    Ok((attempt, reply)) => {
                        self.state = State::Pairing(attempt);
                        self.send_pairing(reply, now);
                    }
                    Err(e) => self.pairing_failed(e, now),
                }
            }
            (State::Pairing(attempt), FrameType::Handshake, Message::Pairing(m)) => {
                let (finished, fresh) = {
                    let mut registry = self.registry();
                    let (result, fresh) = match registry.window.as_mut() {
                        Some(window) => {
                            let generation = window.generation();
                            let finished =
                                attempt.finish(window, &m, now, self.clock.unwrap_or(Timestamp(0)));
                            (finished, new_code(window, generation))
                        }
                        None => (Err(PairingError::WindowClosed), None),
                    };
                    let finished = match result {
                        Ok((record, done)) => registry.admit(&record).map(|()| (record, done)),
                        Err(e) => Err(e),
                    };
                    (finished, fresh)
                };
                if let Some(code) = fresh {
                    self.events.push_back(TerminalEvent::PairingCode(code));
                }
                match finished {
                    Ok((record, done)) => {
                        self.state = State::Awaiting;
                        self.events.push_back(TerminalEvent::Paired(record));
                        self.send_pairing(done, now);
                    }
                    Err(e) => self.pairing_failed(e, now),
                }
            }
            (State::Awaiting, FrameType::Handshake, Message::Handshake(m)) if m.step == 0 => {
                self.on_handshake(&m, now)
            }
            (State::Ready, FrameType::Data, message) => {
                self.state = State::Ready;
                // A sealed frame: the client holds the channel's keys.
                if let Some((_, connected)) = self.unauthenticated.take() {
                    self.events.push_back(connected);
                }
                match message {
                    Message::Heartbeat(h) => {
                        let ack = Message::HeartbeatAck(HeartbeatAck {
                            nonce: h.nonce,
                            state: self.terminal_state,
                            time: self.clock,
                        });
                        if let Err(e) = self.core.send(FrameType::Data, &ack, now) {
                            self.end(CloseReason::Failed(e), now, false);
                        }
                    }
                    Message::HeartbeatAck(_) => {}
                    // A message of a later version than agreed: what a terminal of this version
                    // does with a type it does not know (docs/protocol.md §7.2).
                    other if other.since_version() > self.version => {
                        let error = Message::Error(ErrorMessage {
                            request_id: other.request_id(),
                            code: ErrorCode::UNSUPPORTED_MESSAGE,
                            detail: Some(format!(
                                "not a message of the protocol version agreed ({})",
                                self.version
                            )),
                            retry_after_ms: None,
                        });
                        if let Err(e) = self.core.send(FrameType::Data, &error, now) {
                            self.end(CloseReason::Failed(e), now, false);
                        }
                    }
                    other => self.on_request(other, now),
                }
            }
            _ => self.end(
                CloseReason::Failed(SessionError::Protocol("a message out of order")),
                now,
                false,
            ),
        }
    }

    fn pairing_failed(&mut self, e: PairingError, now: Instant) {
        if let Some(abort) = e.abort_message() {
            let _ = self
                .core
                .send(FrameType::Handshake, &Message::Pairing(abort), now);
        }
        self.end(CloseReason::Failed(SessionError::Pairing(e)), now, true);
    }

    fn on_handshake(&mut self, m: &Handshake, now: Instant) {
        let read = {
            let registry = self.registry();
            Responder::read(
                self.identity.channel(),
                &m.body,
                |k| registry.is_paired(k),
                ChannelConfig::default(),
            )
            .map(|(responder, payload)| {
                let record = registry.find(&responder.peer_static()).cloned();
                (responder, payload, record)
            })
        };
        let (responder, payload, record) = match read {
            Ok((r, p, Some(record))) => (r, p, record),
            Ok((_, _, None)) | Err(ChannelError::NotPaired { .. }) => {
                return self.refuse(
                    ErrorCode::NOT_PAIRED,
                    "this device is not paired with the terminal",
                    SessionError::NotPaired,
                    now,
                );
            }
            Err(e) => {
                return self.refuse(
                    ErrorCode::NOT_PAIRED,
                    "secure handshake failed",
                    SessionError::Channel(e),
                    now,
                );
            }
        };
        let Ok(Message::Hello(hello)) = Message::decode(&payload) else {
            return self.refuse(
                ErrorCode::INVALID_REQUEST,
                "the handshake did not carry a hello",
                SessionError::Protocol("the handshake did not carry a hello"),
                now,
            );
        };
        // The keys say which paired device this is; its hello may not claim another one (the
        // terminal's log and the app would believe it).
        if hello.client_id.0 != record.peer.id.0 {
            return self.refuse(
                ErrorCode::INVALID_REQUEST,
                "the hello names another device than the one paired with these keys",
                SessionError::Protocol("the hello names another device than its keys"),
                now,
            );
        }
        // The terminal speaks the versions its capabilities list that this crate knows (a
        // terminal can be held to 1.0 by listing only 1); the first of the client's list it
        // speaks is the one (docs/protocol.md §3.1).
        let supported: Vec<u16> = self
            .settings()
            .capabilities
            .protocol_versions
            .iter()
            .copied()
            .filter(|v| PROTOCOL_VERSIONS.contains(v))
            .collect();
        let Some(version) = hello
            .protocol_versions
            .iter()
            .copied()
            .find(|v| supported.contains(v))
        else {
            return self.refuse(
                ErrorCode::UNSUPPORTED_VERSION,
                "no common protocol version",
                SessionError::UnsupportedVersion {
                    offered: hello.protocol_versions.clone(),
                },
                now,
            );
        };
        let mut caps = self.settings().capabilities.clone();
        caps.protocol_versions = supported;
        if version < VERSION_1_1 {
            // 1.1 fields stay off a 1.0 session.
            caps.offline_limits.clear();
        }
        caps.selected_version = version;
        caps.max_frame_size = Some(self.core.config.frame.max_frame_size() as u32);
        let written = Message::Capabilities(caps)
            .to_bytes()
            .map_err(SessionError::Encode)
            .and_then(|payload| responder.write(&payload).map_err(SessionError::Channel));
        match written {
            Ok((channel, response)) => {
                let sent = self.core.send(
                    FrameType::Handshake,
                    &Message::Handshake(Handshake {
                        step: 1,
                        body: response,
                    }),
                    now,
                );
                if let Err(e) = sent {
                    return self.end(CloseReason::Failed(e), now, false);
                }
                self.core.set_channel(channel);
                self.core.limit_to_peer(hello.max_frame_size);
                self.core.last_rx = now;
                self.state = State::Ready;
                self.version = version;
                let seen = self.telemetry().generation();
                self.telemetry_seen = seen;
                let seen = self.offline().len();
                self.offline_seen = seen;
                self.client = Some((record.peer.channel_key, now));
                self.unauthenticated = Some((
                    now,
                    TerminalEvent::Connected {
                        hello,
                        client: record,
                    },
                ));
            }
            Err(e) => self.end(CloseReason::Failed(e), now, false),
        }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, TerminalSettings> {
        self.settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks an operator credential; on failure answers the request with the error.
    fn authorised(
        &mut self,
        request_id: RequestId,
        auth: Option<&OperatorAuth>,
        now: Instant,
    ) -> bool {
        let checked = self
            .operators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check(auth, now, self.clock);
        let Err(e) = checked else {
            return true;
        };
        let (code, retry) = match e {
            AuthError::Required => (ErrorCode::AUTHORIZATION_REQUIRED, None),
            AuthError::LockedOut { retry_after } => (
                ErrorCode::LOCKED_OUT,
                Some(u32::try_from(retry_after.as_millis()).unwrap_or(u32::MAX)),
            ),
            _ => (ErrorCode::AUTHORIZATION_FAILED, None),
        };
        self.reply(
            Message::Error(ErrorMessage {
                request_id: Some(request_id),
                code,
                detail: Some(e.to_string()),
                retry_after_ms: retry,
            }),
            now,
        );
        false
    }

    fn results(&self) -> std::sync::MutexGuard<'_, dyn ResultStore + 'static> {
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `message` as a client of the agreed version may receive it: a 1.0 client gets results
    /// without their EMV data (protocol 1.1), signed again without it — it would drop a field it
    /// does not know, and the signature covering it would no longer verify.
    fn for_version<'a>(&self, message: &'a Message) -> std::borrow::Cow<'a, Message> {
        let has_emv = |r: &TransactionResult| r.emv.is_some();
        let carries = match message {
            Message::TransactionResult(r) => has_emv(r),
            Message::StatusResponse(s) => {
                matches!(&s.status, TransactionStatus::Done(r) if has_emv(r))
            }
            Message::LastTransactionResponse(l) => l.result.as_deref().is_some_and(has_emv),
            _ => false,
        };
        if self.version >= VERSION_1_1 || !carries {
            return std::borrow::Cow::Borrowed(message);
        }
        let signer = self.identity.signing();
        let strip = |r: &mut TransactionResult| {
            r.emv = None;
            if r.signature.is_some() {
                signer.sign_result(r);
            }
        };
        let mut m = message.clone();
        match &mut m {
            Message::TransactionResult(r) => strip(r),
            Message::StatusResponse(s) => {
                if let TransactionStatus::Done(r) = &mut s.status {
                    strip(r);
                }
            }
            Message::LastTransactionResponse(l) => {
                if let Some(r) = &mut l.result {
                    strip(r);
                }
            }
            _ => {}
        }
        std::borrow::Cow::Owned(m)
    }

    fn reply(&mut self, message: Message, now: Instant) {
        let message = self.for_version(&message);
        if let Err(e) = self.core.send(FrameType::Data, &message, now) {
            self.end(CloseReason::Failed(e), now, false);
        }
    }

    /// Answers `request_id` with an `Error` of `code`, and — for a refusal that passes (`BUSY`)
    /// — when to try again.
    fn refuse_request(
        &mut self,
        request_id: RequestId,
        code: ErrorCode,
        detail: &str,
        retry_after: Option<std::time::Duration>,
        now: Instant,
    ) {
        self.reply(
            Message::Error(ErrorMessage {
                request_id: Some(request_id),
                code,
                detail: Some(detail.to_string()),
                retry_after_ms: retry_after.map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32),
            }),
            now,
        );
    }

    fn on_request(&mut self, message: Message, now: Instant) {
        // Every request of the holder renews its lease.
        self.leases().renew(self.id, now);
        match message {
            Message::LeaseRequest(l) => {
                let state = self.leases().request(
                    self.id,
                    &l.holder,
                    std::time::Duration::from_millis(l.duration_ms.into()),
                    l.wait,
                    now,
                );
                self.lease_told = state.clone();
                self.reply(
                    Message::LeaseResponse(LeaseResponse {
                        request_id: Some(l.request_id),
                        state,
                    }),
                    now,
                );
            }
            m @ (Message::UpdateOffer(_) | Message::UpdateChunk(_)) => self.on_update(m, now),
            Message::OfflineOutcomeQuery(q) => self.on_offline_query(q, now),
            Message::LeaseRelease(l) => {
                self.leases().release(self.id, Some(now));
                self.lease_told = LeaseState::Released;
                self.reply(
                    Message::LeaseResponse(LeaseResponse {
                        request_id: Some(l.request_id),
                        state: LeaseState::Released,
                    }),
                    now,
                );
            }
            Message::Transaction(t) => self.on_transaction(t, now),
            Message::StatusQuery(q) => {
                let record = self.results().load(&q.idempotency_key);
                let status = match record {
                    None => TransactionStatus::NotFound,
                    Some(KeyRecord {
                        result: Some(result),
                        ..
                    }) => TransactionStatus::Done(Box::new(result)),
                    Some(_) => TransactionStatus::InProgress {
                        stage: self
                            .running
                            .as_ref()
                            .filter(|r| r.key == q.idempotency_key)
                            .and_then(|r| r.stage),
                    },
                };
                self.reply(
                    Message::StatusResponse(StatusResponse {
                        request_id: q.request_id,
                        idempotency_key: q.idempotency_key,
                        status,
                    }),
                    now,
                );
            }
            Message::Cancel(c) => {
                let customer = self.customer_inputs.contains(&c.target);
                if customer
                    || self
                        .running
                        .as_ref()
                        .is_some_and(|r| r.request_id == c.target)
                {
                    self.events.push_back(TerminalEvent::CancelRequested {
                        request_id: c.request_id,
                        target: c.target,
                    });
                    return;
                }
                let queued = self.queued.iter().position(|t| t.request_id == c.target);
                let state = if let Some(i) = queued {
                    // A key claimed for it stays claimed without a result: asked again under
                    // it, the command is resumed with no run here, which the app ends as never
                    // started — nothing is charged either way.
                    if let Some(t) = self.queued.remove(i) {
                        self.claimed_queued.remove(&t.idempotency_key);
                    }
                    CancelState::Accepted
                } else {
                    CancelState::NotFound
                };
                self.reply(
                    Message::CancelResponse(CancelResponse {
                        request_id: c.request_id,
                        target: c.target,
                        state,
                    }),
                    now,
                );
                if queued.is_some() {
                    self.refuse_request(
                        c.target,
                        ErrorCode::NOT_FOUND,
                        "cancelled before it started; nothing was charged",
                        None,
                        now,
                    );
                }
            }
            Message::Settlement(s) => {
                if !self.held_by_another(s.request_id, now)
                    && self.authorised(s.request_id, s.operator.as_ref(), now)
                {
                    self.events
                        .push_back(TerminalEvent::Request(Message::Settlement(s)));
                }
            }
            Message::ConfigWrite(w) => {
                if self.held_by_another(w.request_id, now)
                    || !self.authorised(w.request_id, w.operator.as_ref(), now)
                {
                    return;
                }
                if let Some(clock) = w.config.clock {
                    self.clock = Some(clock);
                }
                let config = {
                    let mut settings = self.settings();
                    settings.apply(&w.config);
                    settings.config(self.clock)
                };
                self.events.push_back(TerminalEvent::Configured(w.config));
                self.reply(
                    Message::ConfigResponse(ConfigResponse {
                        request_id: w.request_id,
                        config,
                    }),
                    now,
                );
            }
            Message::ConfigRead(r) => {
                let config = self.settings().config(self.clock);
                self.reply(
                    Message::ConfigResponse(ConfigResponse {
                        request_id: r.request_id,
                        config,
                    }),
                    now,
                );
            }
            Message::TelemetryQuery(q) => {
                let telemetry = self.telemetry().current().clone();
                self.reply(
                    Message::TelemetryReport(TelemetryReport {
                        request_id: Some(q.request_id),
                        changes: TelemetryChangeSet::EMPTY,
                        telemetry,
                    }),
                    now,
                );
            }
            Message::CustomerInput(i) => {
                self.customer_inputs.insert(i.request_id);
                self.events
                    .push_back(TerminalEvent::Request(Message::CustomerInput(i)));
            }
            m @ (Message::ReceiptRequest(_)
            | Message::LastTransaction(_)
            | Message::CustomerDisplay(_)) => self.events.push_back(TerminalEvent::Request(m)),
            other => self.events.push_back(TerminalEvent::Message(other)),
        }
    }

    /// A money command whose key the store knows: refused if it asks for something else,
    /// answered with the recorded result, or joined while it runs — never started again
    /// ([`key_decision`]).
    fn on_known_key(&mut self, t: TransactionRequest, record: KeyRecord, now: Instant) {
        match key_decision(Some(&record), &t) {
            KeyDecision::Reused => self.refuse_request(
                t.request_id,
                ErrorCode::KEY_REUSED,
                "this idempotency key was used for a different command",
                None,
                now,
            ),
            KeyDecision::Answer(mut result) => {
                // The original answer, to the new request id (not covered by the signature).
                result.request_id = t.request_id;
                self.reply(Message::TransactionResult(*result), now);
            }
            // Only under the model checker's mutation that takes a running key for a new one.
            KeyDecision::New => self.run(t, false),
            KeyDecision::Running => {
                // Running: the latest request gets the answer.
                if let Some(r) = self.running.as_mut().filter(|r| r.key == t.idempotency_key) {
                    r.request_id = t.request_id;
                } else if self.running.is_none() {
                    self.run(t, true);
                } else {
                    self.queued.push_back(t);
                }
            }
        }
    }

    fn on_transaction(&mut self, t: TransactionRequest, now: Instant) {
        let record = self.results().load(&t.idempotency_key);
        match record {
            Some(record) => self.on_known_key(t, record, now),
            None => {
                let checked = validate(&t, &self.settings().capabilities);
                if let Err(e) = checked {
                    let code = match &e {
                        RequestError::Capability(c) => c.error_code(),
                        _ => ErrorCode::INVALID_REQUEST,
                    };
                    return self.refuse_request(t.request_id, code, &e.to_string(), None, now);
                }
                // A new command while another till holds the terminal waits for its lease; what
                // was started before (a known key) is answered above as always.
                if self.held_by_another(t.request_id, now) {
                    return;
                }
                if needs_operator(t.command.kind())
                    && !self.authorised(t.request_id, t.operator.as_ref(), now)
                {
                    return;
                }
                if self.running.is_some() {
                    self.queue(t, now);
                } else {
                    self.start(t, now);
                }
            }
        }
    }

    /// Queues a new command behind the one this session runs, its key claimed first: a status
    /// query over another connection (the client's, after it reconnected) must find it in
    /// progress, not unknown — "unknown" lets the client record it as not taken, and it would
    /// start here later all the same.
    fn queue(&mut self, t: TransactionRequest, now: Instant) {
        if let Some(t) = self.claim(t, now) {
            self.claimed_queued.insert(t.idempotency_key);
            self.queued.push_back(t);
        }
    }

    /// Claims `t`'s key: `Some(t)` if it is now this session's. The claim is one step on the
    /// store all sessions share: of two sessions that got the same key at once, one gets it and
    /// the other finds it claimed (and answers or joins as [`key_decision`] says). Nothing
    /// starts that the terminal could forget: a command it cannot record is refused.
    fn claim(&mut self, t: TransactionRequest, now: Instant) -> Option<TransactionRequest> {
        let claimed = self.results().claim(&t);
        match claimed {
            Ok(Claim::Claimed) => Some(t),
            Ok(Claim::Existing(record)) => {
                self.on_known_key(t, *record, now);
                None
            }
            Err(e) => {
                self.refuse_request(
                    t.request_id,
                    ErrorCode::INTERNAL,
                    &format!("the terminal cannot record the command: {e}"),
                    None,
                    now,
                );
                None
            }
        }
    }

    /// Starts the next queued command, if any: one this session claimed when it queued it runs
    /// now (unless another session ended it meanwhile: then its result is the answer).
    fn next_queued(&mut self, now: Instant) {
        let Some(next) = self.queued.pop_front() else {
            return;
        };
        if !self.claimed_queued.remove(&next.idempotency_key) {
            return self.on_transaction(next, now);
        }
        let record = self.results().load(&next.idempotency_key);
        match record {
            Some(KeyRecord {
                result: Some(mut result),
                ..
            }) => {
                result.request_id = next.request_id;
                self.reply(Message::TransactionResult(result), now);
                self.next_queued(now);
            }
            _ => self.run(next, false),
        }
    }

    fn start(&mut self, t: TransactionRequest, now: Instant) {
        if let Some(t) = self.claim(t, now) {
            self.run(t, false);
        }
    }

    /// Makes `t` this session's running command and hands it to the app.
    fn run(&mut self, t: TransactionRequest, resumed: bool) {
        self.running = Some(Running {
            key: t.idempotency_key,
            request_id: t.request_id,
            stage: None,
        });
        self.events.push_back(TerminalEvent::Transaction {
            request: t,
            resumed,
        });
    }

    /// A number unique to this session within the process (for apps that serve several).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The idempotency key of the money command this session runs, if any.
    pub fn running_key(&self) -> Option<IdempotencyKey> {
        self.running.as_ref().map(|r| r.key)
    }

    /// Reports the running command's progress to the client.
    pub fn progress(
        &mut self,
        stage: ProgressStage,
        method: Option<PaymentMethod>,
        now: Instant,
    ) -> Result<(), SessionError> {
        let running = self.running.as_mut().ok_or(SessionError::NothingRunning)?;
        running.stage = Some(stage);
        let progress = Progress {
            request_id: running.request_id,
            stage,
            method,
            message: None,
        };
        if !self.is_ready() {
            return Ok(());
        }
        self.core
            .send(FrameType::Data, &Message::Progress(progress), now)
    }

    /// Completes a command with its final (signed) result. The result is stored under its
    /// idempotency key first, so a repeat or a status query gets it even if the connection that
    /// asked is gone; then, if this session runs the command, it is sent and the next queued
    /// command starts. (A command started over an earlier connection may be completed through
    /// any later session of the same terminal.) Completing a key twice keeps the first result.
    pub fn complete(
        &mut self,
        mut result: TransactionResult,
        now: Instant,
    ) -> Result<(), SessionError> {
        let key = result.idempotency_key;
        // One step on the shared store: of two completions of one key, the first stands.
        let completion = self
            .results()
            .complete(&result)
            .map_err(|e| SessionError::Storage(e.to_string()))?;
        match completion {
            Completion::Recorded => {}
            Completion::AlreadyDone(first) => result = *first,
            Completion::Unknown => return Err(SessionError::NothingRunning),
        }
        let Some(running) = self.running.take_if(|r| r.key == key) else {
            return Ok(());
        };
        result.request_id = running.request_id;
        let sent = if self.is_ready() {
            let message = Message::TransactionResult(result);
            let message = self.for_version(&message);
            self.core.send(FrameType::Data, &message, now)
        } else {
            Ok(())
        };
        self.next_queued(now);
        sent
    }

    /// Answers a request other than a money command (a settlement result, a receipt, a
    /// configuration, a cancel response, an error), or sends any other message.
    pub fn respond(&mut self, message: &Message, now: Instant) -> Result<(), SessionError> {
        self.send(message, now)
    }

    /// Sends a message to the client over the secure channel.
    pub fn send(&mut self, message: &Message, now: Instant) -> Result<(), SessionError> {
        if !self.is_ready() || self.core.is_closing() {
            return Err(SessionError::Closed);
        }
        if let Message::CustomerResponse(r) = message {
            self.customer_inputs.remove(&r.request_id);
        }
        let message = self.for_version(message);
        self.core.send(FrameType::Data, &message, now)
    }

    /// Starts an orderly close.
    pub fn close(&mut self, now: Instant) {
        self.core.close(now);
    }

    /// The next chunk of bytes to write to the link.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let out = self.core.poll_transmit(now);
        self.sync_closed();
        out
    }

    /// The link reported that it is gone: the session ends at once (a driver calls this when
    /// the link's receive or send fails for good).
    pub fn link_lost(&mut self, now: Instant) {
        self.end(CloseReason::Failed(SessionError::LinkClosed), now, false);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TerminalEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ready = self.is_ready();
        // The pairing look and the authentication deadline run only on a secure session.
        let pairing_check = self
            .client
            .filter(|_| ready)
            .map(|(_, checked)| checked + PAIRING_CHECK);
        let authentication = self
            .unauthenticated
            .as_ref()
            .filter(|_| ready)
            .map(|(since, _)| self.core.authentication_deadline(*since));
        [self.core.poll_timeout(ready), pairing_check, authentication]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs timers. A client whose handshake was answered but that sent no sealed frame in
    /// time (a heartbeat interval after the answer, and the handshake timeout after the link
    /// came up) is cut off: a replayed first handshake message gets this far, and nothing
    /// further.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.still_paired(now) {
            return;
        }
        if let Some((since, _)) = &self.unauthenticated
            && self.is_ready()
            && now >= self.core.authentication_deadline(*since)
        {
            self.unauthenticated = None;
            return self.end(
                CloseReason::Failed(SessionError::HandshakeTimeout),
                now,
                false,
            );
        }
        // While this till's payment runs, its lease does not run out under it (renewed every
        // tick, as a request of the holder renews it).
        if self.running.is_some() {
            self.leases().renew(self.id, now);
        }
        self.push_telemetry(now);
        self.push_lease(now);
        self.push_offline(now);
        if let Some(reason) = self.core.on_timeout(now, self.is_ready()) {
            self.announce(reason);
        }
    }
}

/// The code to show when `window` made a new one since `generation`.
fn new_code(window: &PairingWindow, generation: u64) -> Option<String> {
    (window.generation() != generation)
        .then(|| window.code().map(str::to_string))
        .flatten()
}
