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
    Capabilities, ErrorCode, ErrorMessage, FrameType, Handshake, HeartbeatAck, Hello, Message,
    TerminalState, Timestamp,
};

use crate::core::{Core, Next};
use crate::{CloseReason, SessionConfig, SessionError, SessionStats};

/// The terminal's pairings and its pairing window, shared by all its sessions (behind a mutex:
/// sessions only hold it for the length of a lookup).
#[derive(Debug, Default)]
pub struct PairingRegistry {
    window: Option<PairingWindow>,
    paired: HashMap<PeerId, PairingRecord>,
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

/// What happened, for the terminal's app.
// Events are moved out once each; boxing the large ones would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminalEvent {
    /// A client paired: the record is in the registry; store it.
    Paired(PairingRecord),
    /// A paired client connected over the secure channel.
    Connected {
        /// Its hello.
        hello: Hello,
        /// Its pairing record.
        client: PairingRecord,
    },
    /// A message from the client.
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

/// The terminal's side of one connection, sans-IO. The driver loop is the same as
/// [`ClientSession`](crate::ClientSession)'s: `handle_input`, then `poll_transmit` until `None`,
/// `poll_event` until `None`, and `handle_timeout` at `poll_timeout`.
pub struct TerminalSession {
    core: Core,
    identity: Arc<LocalIdentity>,
    registry: Arc<Mutex<PairingRegistry>>,
    capabilities: Capabilities,
    state: State,
    events: VecDeque<TerminalEvent>,
    terminal_state: TerminalState,
    clock: Option<Timestamp>,
}

impl std::fmt::Debug for TerminalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalSession")
            .field("ready", &self.is_ready())
            .field("stats", &self.core.stats())
            .finish_non_exhaustive()
    }
}

const SUPPORTED_VERSIONS: &[u16] = &[1];

impl TerminalSession {
    /// A session for a link that just came up at `now`; it waits for the client to pair or to
    /// start the secure handshake. `capabilities` is what the terminal reports (its
    /// `selected_version` is filled in per client).
    pub fn new(
        config: SessionConfig,
        identity: Arc<LocalIdentity>,
        registry: Arc<Mutex<PairingRegistry>>,
        capabilities: Capabilities,
        now: Instant,
    ) -> Self {
        Self {
            core: Core::new(config, now),
            identity,
            registry,
            capabilities,
            state: State::Awaiting,
            events: VecDeque::new(),
            terminal_state: TerminalState::Idle,
            clock: None,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, PairingRegistry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        self.core.handle_input(bytes, now);
        while let Some(next) = self.core.next(now) {
            if self.core.announced() {
                continue;
            }
            match next {
                Next::Message(m) => self.on_message(m.frame_type, m.message, now),
                Next::PeerClosed => self.end(CloseReason::Peer, now, false),
                Next::Undecodable => self.end(
                    CloseReason::Failed(SessionError::Protocol("a message that does not decode")),
                    now,
                    false,
                ),
            }
        }
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
                let accepted = {
                    let mut registry = self.registry();
                    match registry.window.as_mut() {
                        Some(window) => window.accept(&self.identity, &m, now),
                        None => Err(PairingError::WindowClosed),
                    }
                };
                match accepted {
                    Ok((attempt, reply)) => {
                        self.state = State::Pairing(attempt);
                        self.send_pairing(reply, now);
                    }
                    Err(e) => self.pairing_failed(e, now),
                }
            }
            (State::Pairing(attempt), FrameType::Handshake, Message::Pairing(m)) => {
                let finished = {
                    let mut registry = self.registry();
                    let result = match registry.window.as_mut() {
                        Some(window) => {
                            attempt.finish(window, &m, now, self.clock.unwrap_or(Timestamp(0)))
                        }
                        None => Err(PairingError::WindowClosed),
                    };
                    if let Ok((record, _)) = &result {
                        registry.add(record.clone());
                    }
                    result
                };
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
                    other => self.events.push_back(TerminalEvent::Message(other)),
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
        let Some(version) = hello
            .protocol_versions
            .iter()
            .copied()
            .find(|v| SUPPORTED_VERSIONS.contains(v))
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
        let mut caps = self.capabilities.clone();
        caps.protocol_versions = SUPPORTED_VERSIONS.to_vec();
        caps.selected_version = version;
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
                self.core.last_rx = now;
                self.state = State::Ready;
                self.events.push_back(TerminalEvent::Connected {
                    hello,
                    client: record,
                });
            }
            Err(e) => self.end(CloseReason::Failed(e), now, false),
        }
    }

    /// Sends a message to the client over the secure channel.
    pub fn send(&mut self, message: &Message, now: Instant) -> Result<(), SessionError> {
        if !self.is_ready() || self.core.is_closing() {
            return Err(SessionError::Closed);
        }
        self.core.send(FrameType::Data, message, now)
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

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TerminalEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout(self.is_ready())
    }

    /// Runs timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(reason) = self.core.on_timeout(now, self.is_ready()) {
            self.announce(reason);
        }
    }
}
