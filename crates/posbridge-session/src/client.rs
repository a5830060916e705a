//! The client role: the phone, tablet or till.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use posbridge_crypto::{
    ChannelConfig, ClientConfirmed, ClientPairing, InitiatorHandshake, LocalIdentity,
    PairingRecord, PairingSecret,
};
use posbridge_wire::{
    Capabilities, ClientId, ErrorMessage, FrameType, Handshake, HeartbeatAck, Hello, LeaseState,
    Message, OfflineOutcome, Progress, RequestId, TelemetryReport, TerminalState, Timestamp,
};

use crate::core::{Core, Next};
use crate::requests::{
    Pending, RequestError, RequestState, Requests, is_exclusive, is_final, set_request_id, validate,
};
use crate::{CloseReason, SessionConfig, SessionError, SessionStats};

/// How the client proves who it is.
#[derive(Clone, Debug)]
pub enum ClientSecurity {
    /// Already paired: the terminal's channel key from the pairing record.
    Paired {
        /// The terminal's X25519 static key.
        terminal_key: [u8; 32],
    },
    /// Not paired yet: pair with the code on the terminal's screen (or the handover secret),
    /// then connect. The record arrives as [`ClientEvent::Paired`]; store it.
    Pair(PairingSecret),
}

/// What happened, for the app.
// Events are moved out once each; boxing the large ones would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Pairing finished: keep this record (the secure handshake follows at once).
    Paired(PairingRecord),
    /// The secure channel is up and the terminal introduced itself.
    Connected(Capabilities),
    /// Where a request is at the terminal (card read, PIN entry, online, ...).
    Progress {
        /// The request.
        request_id: RequestId,
        /// The terminal's report.
        progress: Progress,
    },
    /// The final answer to a request: a transaction result, a status, a settlement, a receipt,
    /// a configuration, an answer to a cancel.
    Response {
        /// The request.
        request_id: RequestId,
        /// The answer.
        message: Message,
    },
    /// A request ended without an answer.
    RequestFailed {
        /// The request.
        request_id: RequestId,
        /// Why.
        failure: RequestFailure,
    },
    /// A message that answers no pending request: a result that arrived after its deadline (it
    /// is real — record it), or something the terminal sent unasked.
    Message(Message),
    /// The terminal pushed its telemetry because something changed (protocol 1.1): battery low,
    /// power, paper, acquirer link, software, payments stored offline. `changes` says what.
    Telemetry(TelemetryReport),
    /// The terminal learnt the final outcome of a payment it approved offline (protocol 1.1):
    /// confirmed, or declined after the fact. Signed by the terminal: verify it with
    /// `posbridge_crypto::verify_offline_outcome` before acting on it.
    OfflineOutcome(OfflineOutcome),
    /// Where this till stands with the terminal's lease changed (protocol 1.1): a new place in
    /// the queue, granted, or run out.
    Lease(LeaseState),
    /// The terminal answered a heartbeat: its state, and its clock (to detect skew).
    Heartbeat {
        /// What the terminal is doing.
        state: TerminalState,
        /// The terminal's clock, if it reported one.
        terminal_time: Option<Timestamp>,
    },
    /// The session ended.
    Closed(CloseReason),
}

/// Why a request ended without an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestFailure {
    /// The deadline passed. If `sent`, the terminal may have acted on it: the outcome is in
    /// doubt — ask for its status by idempotency key before doing anything else. If not, it was
    /// never sent and nothing happened.
    DeadlineExceeded {
        /// Whether it had been sent.
        sent: bool,
    },
    /// Cancelled while still queued: it was never sent.
    Cancelled,
    /// The terminal refused it.
    Refused(ErrorMessage),
    /// The session ended first. If `sent`, the outcome is in doubt (see `DeadlineExceeded`).
    SessionClosed {
        /// Whether it had been sent.
        sent: bool,
    },
}

impl RequestFailure {
    /// Whether the terminal may have acted on the request: recover its status before retrying.
    pub fn in_doubt(&self) -> bool {
        matches!(
            self,
            Self::DeadlineExceeded { sent: true } | Self::SessionClosed { sent: true }
        )
    }
}

// One state per session, replaced a handful of times: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum State {
    Pairing(ClientPairing),
    Confirming(ClientConfirmed),
    Handshaking(InitiatorHandshake),
    Ready,
    Closed,
}

/// The client's side of a connection, sans-IO.
///
/// A driver calls, in a loop:
///
/// 1. [`handle_input`](Self::handle_input) with every chunk of bytes read from the link;
/// 2. [`poll_transmit`](Self::poll_transmit) until it returns `None`, writing each chunk to the
///    link (each is one whole frame);
/// 3. [`poll_event`](Self::poll_event) until it returns `None`;
/// 4. [`poll_timeout`](Self::poll_timeout), and [`handle_timeout`](Self::handle_timeout) when
///    that instant passes (then back to 2).
///
/// Calls that send ([`send`](Self::send), [`close`](Self::close)) are followed by step 2.
/// Every call takes the current time; nothing reads a clock.
pub struct ClientSession {
    pub(crate) core: Core,
    identity: Arc<LocalIdentity>,
    hello: Hello,
    state: State,
    events: VecDeque<ClientEvent>,
    capabilities: Option<Capabilities>,
    requests: Requests,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("ready", &self.is_ready())
            .field("stats", &self.core.stats())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// Starts connecting at `now`: the first message (pairing, or the secure handshake carrying
    /// `hello`) is queued at once.
    pub fn new(
        config: SessionConfig,
        identity: Arc<LocalIdentity>,
        security: ClientSecurity,
        hello: Hello,
        now: Instant,
    ) -> Self {
        let mut hello = hello;
        // The hello names this device as paired: the terminal refuses one that claims another.
        hello.client_id = ClientId(identity.id().0);
        // Tell the terminal how large a frame this side takes (unless the app said).
        hello
            .max_frame_size
            .get_or_insert(config.frame.max_frame_size() as u32);
        let base = u64::from_be_bytes(hello.client_id.0[..8].try_into().expect("8 bytes"));
        let mut me = Self {
            core: Core::new(config, now),
            identity,
            hello,
            state: State::Closed,
            events: VecDeque::new(),
            capabilities: None,
            requests: Requests::new(base),
        };
        let started = match security {
            ClientSecurity::Paired { terminal_key } => me.start_handshake(&terminal_key, now),
            ClientSecurity::Pair(secret) => ClientPairing::start(&me.identity, &secret)
                .map_err(SessionError::Pairing)
                .and_then(|(state, first)| {
                    me.state = State::Pairing(state);
                    me.core
                        .send(FrameType::Handshake, &Message::Pairing(first), now)
                }),
        };
        if let Err(e) = started {
            me.end(CloseReason::Failed(e), now, false);
        }
        me
    }

    fn start_handshake(
        &mut self,
        terminal_key: &[u8; 32],
        now: Instant,
    ) -> Result<(), SessionError> {
        let hello = Message::Hello(self.hello.clone())
            .to_bytes()
            .map_err(SessionError::Encode)?;
        let (hs, first) = InitiatorHandshake::start(
            self.identity.channel(),
            terminal_key,
            &hello,
            ChannelConfig::default(),
        )
        .map_err(SessionError::Channel)?;
        self.state = State::Handshaking(hs);
        self.core.send(
            FrameType::Handshake,
            &Message::Handshake(Handshake {
                step: 0,
                body: first,
            }),
            now,
        )
    }

    fn end(&mut self, reason: CloseReason, now: Instant, flush: bool) {
        if let Some(reason) = self.core.end(reason, now, flush) {
            self.announce(reason);
        }
    }

    fn announce(&mut self, reason: CloseReason) {
        self.state = State::Closed;
        for p in self.requests.drain() {
            self.events.push_back(ClientEvent::RequestFailed {
                request_id: p.id,
                failure: RequestFailure::SessionClosed {
                    sent: p.state == RequestState::Sent,
                },
            });
        }
        self.events.push_back(ClientEvent::Closed(reason));
    }

    /// Announces a close the core finished by itself (an orderly close drained).
    fn sync_closed(&mut self) {
        if let Some(reason) = self.core.unannounced_close() {
            self.announce(reason);
        }
    }

    /// Whether the secure channel is up and the terminal introduced itself.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.core.is_ended()
    }

    /// The protocol version agreed with the terminal, once connected
    /// (`posbridge_wire::VERSION_1_0` or `VERSION_1_1`).
    pub fn protocol_version(&self) -> Option<u16> {
        self.capabilities.as_ref().map(|c| c.selected_version)
    }

    /// The terminal's capabilities, once connected.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_ref()
    }

    /// Counters for diagnostics.
    pub fn stats(&self) -> SessionStats {
        self.core.stats()
    }

    /// Messages sent and not yet acknowledged, plus those waiting for window space.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    /// Bytes read from the link.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.core.handle_input(bytes, now);
        while let Some(next) = self.core.next(now) {
            if self.core.announced() {
                // Closing after a failure: acks still count, messages no longer do.
                continue;
            }
            match next {
                Next::Message(m) => {
                    if let Err(e) = self.on_message(m.frame_type, m.message, now) {
                        let flush = matches!(e, SessionError::Pairing(_));
                        self.end(CloseReason::Failed(e), now, flush);
                    }
                }
                Next::PeerClosed => self.end(CloseReason::Peer, now, false),
                // A message type this version does not know (a newer terminal): skipped, the
                // session goes on. A malformed message: the terminal is broken; closed.
                Next::Undecodable { unknown_type: true } if self.is_ready() => {}
                Next::Undecodable { .. } => self.end(
                    CloseReason::Failed(SessionError::Protocol("a message that does not decode")),
                    now,
                    false,
                ),
            }
        }
        self.sync_closed();
    }

    fn on_message(
        &mut self,
        frame_type: FrameType,
        message: Message,
        now: Instant,
    ) -> Result<(), SessionError> {
        if let Message::Error(e) = &message
            && !self.is_ready()
        {
            return Err(if e.code == posbridge_wire::ErrorCode::NOT_PAIRED {
                SessionError::NotPaired
            } else if e.code == posbridge_wire::ErrorCode::UNSUPPORTED_VERSION {
                SessionError::UnsupportedVersion {
                    offered: Vec::new(),
                }
            } else {
                SessionError::Refused(e.clone())
            });
        }
        let state = std::mem::replace(&mut self.state, State::Closed);
        match (state, frame_type, message) {
            (State::Pairing(p), FrameType::Handshake, Message::Pairing(m)) => match p.confirm(&m) {
                Ok((confirmed, reply)) => {
                    self.state = State::Confirming(confirmed);
                    self.core
                        .send(FrameType::Handshake, &Message::Pairing(reply), now)
                }
                Err(e) => {
                    if let Some(abort) = e.abort_message() {
                        let _ = self
                            .core
                            .send(FrameType::Handshake, &Message::Pairing(abort), now);
                    }
                    Err(SessionError::Pairing(e))
                }
            },
            (State::Confirming(c), FrameType::Handshake, Message::Pairing(m)) => {
                // The wall-clock time of the record is the driver's to fill in if it wants one;
                // the session has no clock.
                let record = c.finish(&m, Timestamp(0)).map_err(SessionError::Pairing)?;
                let key = record.peer.channel_key;
                self.events.push_back(ClientEvent::Paired(record));
                self.start_handshake(&key, now)
            }
            (State::Handshaking(hs), FrameType::Handshake, Message::Handshake(m))
                if m.step == 1 =>
            {
                let (channel, payload) = hs.finish(&m.body).map_err(SessionError::Channel)?;
                self.core.set_channel(channel);
                let Ok(Message::Capabilities(caps)) = Message::decode(&payload) else {
                    return Err(SessionError::Protocol(
                        "the handshake did not carry capabilities",
                    ));
                };
                if !self
                    .hello
                    .protocol_versions
                    .contains(&caps.selected_version)
                {
                    return Err(SessionError::UnsupportedVersion {
                        offered: caps.protocol_versions.clone(),
                    });
                }
                self.core.limit_to_peer(caps.max_frame_size);
                self.capabilities = Some(caps.clone());
                self.state = State::Ready;
                self.core.last_rx = now;
                self.events.push_back(ClientEvent::Connected(caps));
                Ok(())
            }
            (State::Ready, FrameType::Data, message) => {
                self.state = State::Ready;
                match message {
                    Message::Heartbeat(h) => self.core.send(
                        FrameType::Data,
                        &Message::HeartbeatAck(HeartbeatAck {
                            nonce: h.nonce,
                            state: TerminalState::Idle,
                            time: None,
                        }),
                        now,
                    ),
                    Message::HeartbeatAck(a) => {
                        self.events.push_back(ClientEvent::Heartbeat {
                            state: a.state,
                            terminal_time: a.time,
                        });
                        Ok(())
                    }
                    other => self.on_answer(other, now),
                }
            }
            _ => Err(SessionError::Protocol("a message out of order")),
        }
    }

    /// Correlates an answer with its request.
    fn on_answer(&mut self, message: Message, now: Instant) -> Result<(), SessionError> {
        let message = match message {
            Message::TelemetryReport(report) if report.request_id.is_none() => {
                self.events.push_back(ClientEvent::Telemetry(report));
                return Ok(());
            }
            Message::OfflineOutcome(outcome) if outcome.request_id.is_none() => {
                self.events.push_back(ClientEvent::OfflineOutcome(outcome));
                return Ok(());
            }
            Message::LeaseResponse(lease) if lease.request_id.is_none() => {
                self.events.push_back(ClientEvent::Lease(lease.state));
                return Ok(());
            }
            other => other,
        };
        let Some(id) = message.request_id() else {
            self.events.push_back(ClientEvent::Message(message));
            return Ok(());
        };
        if self.requests.state(id) != Some(RequestState::Sent) {
            self.events.push_back(ClientEvent::Message(message));
            return Ok(());
        }
        if !is_final(&message) {
            if let Message::Progress(progress) = message {
                self.events.push_back(ClientEvent::Progress {
                    request_id: id,
                    progress,
                });
            }
            return Ok(());
        }
        self.requests.remove(id);
        if let (Message::ConfigResponse(c), Some(caps)) = (&message, &mut self.capabilities) {
            // A configuration change shows at once in what requests are checked against.
            apply_config(caps, &c.config);
        }
        self.events.push_back(match message {
            Message::Error(e) => ClientEvent::RequestFailed {
                request_id: id,
                failure: RequestFailure::Refused(e),
            },
            message => ClientEvent::Response {
                request_id: id,
                message,
            },
        });
        self.pump(now)
    }

    /// Sends queued requests while nothing exclusive is running.
    fn pump(&mut self, now: Instant) -> Result<(), SessionError> {
        while let Some(id) = self.requests.next_to_send() {
            self.dispatch(id, now)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, id: RequestId, now: Instant) -> Result<(), SessionError> {
        let Some(p) = self.requests.get_mut(id) else {
            return Ok(());
        };
        p.state = RequestState::Sent;
        let message = p.message.clone();
        self.core.send(FrameType::Data, &message, now)
    }

    /// Asks the terminal something: a money command (`Message::Transaction`), a status query,
    /// a settlement, a receipt, the configuration, ... The session gives it a request id
    /// (returned, and written into the message), checks it against the terminal's capabilities
    /// before anything is sent, and keeps money commands, settlements and configuration changes
    /// to one at a time: a second one queues until the first has its answer. The answer arrives
    /// as [`ClientEvent::Response`] (with [`ClientEvent::Progress`] on the way); without one by
    /// `deadline`, as [`ClientEvent::RequestFailed`].
    pub fn request(
        &mut self,
        mut message: Message,
        deadline: Instant,
        now: Instant,
    ) -> Result<RequestId, RequestError> {
        if !self.is_ready() || self.core.is_closing() {
            return Err(RequestError::NotReady);
        }
        if deadline <= now {
            return Err(RequestError::DeadlineInPast);
        }
        let caps = self.capabilities.as_ref().ok_or(RequestError::NotReady)?;
        if message.since_version() > caps.selected_version {
            return Err(RequestError::NotInVersion {
                agreed: caps.selected_version,
                needs: message.since_version(),
            });
        }
        if let Message::Transaction(t) = &message {
            validate(t, caps)?;
        }
        let id = self.requests.next_id();
        if !set_request_id(&mut message, id) {
            return Err(RequestError::NotARequest);
        }
        match self.core.check_size(&message) {
            Ok(()) => {}
            Err(SessionError::TooLarge { len, max }) => {
                return Err(RequestError::TooLarge { len, max });
            }
            Err(SessionError::Encode(e)) => return Err(RequestError::Unencodable(e)),
            Err(_) => return Err(RequestError::NotReady),
        }
        let exclusive = is_exclusive(&message);
        let send_now = !exclusive || !self.requests.exclusive_running();
        self.requests.add(Pending {
            id,
            message,
            deadline,
            state: RequestState::Queued,
            exclusive,
            cancel_requested: false,
        });
        if send_now && let Err(e) = self.pump_one(id, now) {
            self.end(CloseReason::Failed(e), now, false);
        }
        Ok(id)
    }

    fn pump_one(&mut self, id: RequestId, now: Instant) -> Result<(), SessionError> {
        self.requests.remove_from_queue(id);
        self.dispatch(id, now)
    }

    /// Cancels a request. Still queued: it is dropped, never sent
    /// ([`RequestFailure::Cancelled`]). Already sent: the terminal is asked to abort it; its
    /// answer to the cancel arrives as a [`ClientEvent::Response`] (a `CancelResponse`), and the
    /// request's own result follows — whatever it is: a result that arrives after a cancel
    /// stands and is reported as it is. Returns `false` for a request that is not pending.
    pub fn cancel(&mut self, id: RequestId, now: Instant) -> Result<bool, RequestError> {
        let (state, deadline, already) = match self.requests.get_mut(id) {
            Some(p) => {
                let already = p.cancel_requested;
                p.cancel_requested = true;
                (p.state, p.deadline, already)
            }
            None => return Ok(false),
        };
        match state {
            RequestState::Queued => {
                self.requests.remove(id);
                self.events.push_back(ClientEvent::RequestFailed {
                    request_id: id,
                    failure: RequestFailure::Cancelled,
                });
                Ok(true)
            }
            RequestState::Sent if already => Ok(true),
            RequestState::Sent => {
                let cancel = Message::Cancel(posbridge_wire::Cancel {
                    request_id: RequestId::default(),
                    target: id,
                });
                self.request(
                    cancel,
                    deadline.max(now + std::time::Duration::from_millis(1)),
                    now,
                )?;
                Ok(true)
            }
        }
    }

    /// Where a request stands, while it is pending.
    pub fn request_state(&self, id: RequestId) -> Option<RequestState> {
        self.requests.state(id)
    }

    /// Requests without a final answer yet (queued or sent).
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// Sends a message as it is, outside request bookkeeping: no request id, no queueing, no
    /// deadline (for extensions and tests; use [`request`](Self::request) for requests).
    pub fn send(&mut self, message: &Message, now: Instant) -> Result<(), SessionError> {
        if !self.is_ready() || self.core.is_closing() {
            return Err(SessionError::Closed);
        }
        self.core.send(FrameType::Data, message, now)
    }

    /// Starts an orderly close: what is queued is delivered first.
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
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let core = self.core.poll_timeout(self.is_ready());
        match (core, self.requests.earliest_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs timers: retransmission, heartbeat, dead-peer and handshake deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.requests.expired(now) {
            if let Some(p) = self.requests.remove(id) {
                self.events.push_back(ClientEvent::RequestFailed {
                    request_id: id,
                    failure: RequestFailure::DeadlineExceeded {
                        sent: p.state == RequestState::Sent,
                    },
                });
            }
        }
        if let Some(reason) = self.core.on_timeout(now, self.is_ready()) {
            self.announce(reason);
            return;
        }
        if self.is_ready()
            && let Err(e) = self.pump(now)
        {
            self.end(CloseReason::Failed(e), now, false);
        }
    }
}

fn apply_config(caps: &mut Capabilities, config: &posbridge_wire::TerminalConfig) {
    if let Some(v) = config.kinds {
        caps.kinds = v;
    }
    if let Some(v) = config.methods {
        caps.methods = v;
    }
    if let Some(v) = &config.currencies {
        caps.currencies = v.clone();
    }
    if let Some(v) = &config.limits {
        caps.limits = v.clone();
    }
    if let Some(v) = &config.merchant_name {
        caps.merchant_name = Some(v.clone());
    }
}
