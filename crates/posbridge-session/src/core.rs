//! What both roles share: frames in and out, reliable delivery, the secure channel, heartbeat
//! timing and the orderly close.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use posbridge_crypto::{SEAL_OVERHEAD, SecureChannel};
use posbridge_wire::{
    Frame, FrameCodec, FrameConfig, FrameFlags, FrameType, Heartbeat, Message, header_bytes,
};

use crate::reliable::{Offer, ReliabilityConfig, ReliabilityStats, Reliable};
use crate::{CloseReason, SessionError};

/// Settings shared by both roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub(crate) reliability: ReliabilityConfig,
    pub(crate) frame: FrameConfig,
    pub(crate) heartbeat: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) close_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            reliability: ReliabilityConfig::default(),
            frame: FrameConfig::default(),
            heartbeat: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(15),
            close_timeout: Duration::from_secs(3),
        }
    }
}

impl SessionConfig {
    /// Reliable delivery: window, retransmission timeouts, retransmissions before giving up.
    pub fn reliability_mut(&mut self) -> &mut ReliabilityConfig {
        &mut self.reliability
    }

    /// Frame size limits (default 4096 bytes per frame).
    pub fn set_frame(&mut self, frame: FrameConfig) -> &mut Self {
        self.frame = frame;
        self
    }

    /// The heartbeat interval (default 5 s, at least 10 ms). A side that has sent nothing for an
    /// interval sends a heartbeat; a peer heard nothing from for 3 intervals is declared dead.
    pub fn set_heartbeat(&mut self, interval: Duration) -> &mut Self {
        self.heartbeat = interval.max(Duration::from_millis(10));
        self
    }

    /// How long pairing plus the secure handshake may take before the session gives up
    /// (default 15 s; pairing waits for a person to type a code, so a client that pairs should
    /// allow a minute or more).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How long an orderly close waits for outstanding frames to be acknowledged (default 3 s).
    pub fn set_close_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.close_timeout = timeout;
        self
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }
}

/// Counters of one session, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Reliable delivery.
    pub reliability: ReliabilityStats,
    /// Frames that failed their checksums (the decoder resynchronised after each).
    pub damaged_frames: u64,
    /// In-order frames refused: failed authentication, or plaintext where the channel requires
    /// encryption (and the reverse).
    pub rejected_frames: u64,
    /// Bytes handed to the link.
    pub bytes_sent: u64,
    /// Bytes received from the link.
    pub bytes_received: u64,
}

/// One message that arrived in order.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) frame_type: FrameType,
    pub(crate) message: Message,
}

/// What `next` yields.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next {
    Message(Inbound),
    /// The peer closed (an authenticated close once the channel is up).
    PeerClosed,
    /// An authentic, in-order frame did not decode as a message. `unknown_type`: it is a message
    /// type this version does not know (a newer peer), otherwise it is malformed.
    Undecodable {
        /// A message type this version does not know.
        unknown_type: bool,
    },
}

enum Closing {
    Open,
    Draining { deadline: Instant },
    Done,
}

/// Opens a sealed frame payload with its header as associated data; `None` if it is not
/// authentic (or replayed).
fn open_sealed(channel: &mut SecureChannel, frame: &Frame) -> Option<Vec<u8>> {
    let aad = header_bytes(
        frame.frame_type,
        frame.flags,
        frame.seq,
        frame.payload.len() as u16,
    );
    let mut buf = frame.payload.to_vec();
    let len = channel.open(&aad, &mut buf).ok()?.len();
    buf.copy_within(8..8 + len, 0);
    buf.truncate(len);
    Some(buf)
}

pub(crate) struct Core {
    pub(crate) config: SessionConfig,
    rx: BytesMut,
    codec: FrameCodec,
    rel: Reliable,
    channel: Option<SecureChannel>,
    urgent: VecDeque<Bytes>,
    pub(crate) last_rx: Instant,
    last_tx: Instant,
    started: Instant,
    closing: Closing,
    pub(crate) closed: Option<CloseReason>,
    /// The largest payload this side sends: its own frame limit, lowered to the peer's.
    send_max_payload: usize,
    /// Whether the role has told its app the session ended (exactly once).
    announced: bool,
    heartbeat_nonce: u64,
    stats: SessionStats,
}

impl Core {
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        let codec = FrameCodec::with_config(config.frame);
        Self {
            config,
            rx: BytesMut::new(),
            rel: Reliable::new(config.reliability, codec.clone()),
            codec,
            channel: None,
            urgent: VecDeque::new(),
            last_rx: now,
            last_tx: now,
            started: now,
            closing: Closing::Open,
            closed: None,
            send_max_payload: config.frame.max_payload(),
            announced: false,
            heartbeat_nonce: 0,
            stats: SessionStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> SessionStats {
        SessionStats {
            reliability: self.rel.stats,
            ..self.stats
        }
    }

    pub(crate) fn set_channel(&mut self, channel: SecureChannel) {
        self.channel = Some(channel);
    }

    pub(crate) fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.closed.is_some() {
            return;
        }
        self.stats.bytes_received += bytes.len() as u64;
        // Bound what an unread peer can make us hold: the decoder keeps at most one frame.
        self.rx.extend_from_slice(bytes);
        let _ = now;
    }

    /// The next message in order, handling control frames on the way.
    pub(crate) fn next(&mut self, now: Instant) -> Option<Next> {
        if self.closed.is_some() {
            return None;
        }
        loop {
            let frame = match self.rel.next_buffered() {
                Some(f) => f,
                None => match self.codec.decode(&mut self.rx) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return None,
                    Err(_) => {
                        self.stats.damaged_frames += 1;
                        continue;
                    }
                },
            };
            // Any frame shows the peer is alive once the session is up (a retransmitted frame
            // the receiver already has cannot be opened again, yet it is the peer's); before a
            // client has sealed a frame, the terminal's authentication deadline cuts a session
            // off whatever plain frames keep coming (a replayed handshake's sender can send
            // those, nothing sealed).
            self.last_rx = now;
            match frame.frame_type {
                FrameType::Ack => self.rel.on_ack(frame.seq, now),
                FrameType::Nak => self.rel.on_nak(frame.seq, now),
                FrameType::Ping => {
                    let mut out = BytesMut::new();
                    if self
                        .codec
                        .encode_parts(
                            FrameType::Pong,
                            FrameFlags::NONE,
                            frame.seq,
                            &frame.payload,
                            &mut out,
                        )
                        .is_ok()
                    {
                        self.urgent.push_back(out.freeze());
                    }
                }
                FrameType::Pong => {}
                FrameType::Close => {
                    if self.authentic_close(&frame) {
                        return Some(Next::PeerClosed);
                    }
                    self.stats.rejected_frames += 1;
                }
                FrameType::Data | FrameType::Handshake => match self.rel.offer(frame) {
                    Offer::InOrder(frame) => match self.open(&frame) {
                        Ok(message) => {
                            self.rel.delivered();
                            return Some(Next::Message(Inbound {
                                frame_type: frame.frame_type,
                                message,
                            }));
                        }
                        Err(Some(unknown_type)) => {
                            self.rel.delivered();
                            return Some(Next::Undecodable { unknown_type });
                        }
                        Err(None) => {
                            self.stats.rejected_frames += 1;
                            self.rel.rejected();
                        }
                    },
                    Offer::Duplicate | Offer::Ahead => {}
                },
                _ => self.stats.rejected_frames += 1,
            }
        }
    }

    /// Decrypts (where the channel requires it) and decodes an in-order frame. `Err(None)` for a
    /// frame that is not authentic (not acknowledged, so the genuine one is retransmitted);
    /// `Err(Some(unknown_type))` for an authentic frame that does not decode.
    fn open(&mut self, frame: &Frame) -> Result<Message, Option<bool>> {
        let decoded = |bytes: &[u8]| {
            Message::decode(bytes).map_err(|e| {
                Some(matches!(
                    e.kind,
                    posbridge_wire::MessageErrorKind::UnknownMessageType(_)
                ))
            })
        };
        match (
            &mut self.channel,
            frame.frame_type,
            frame.flags.is_encrypted(),
        ) {
            (Some(channel), FrameType::Data, true) => {
                let plain = open_sealed(channel, frame).ok_or(None)?;
                decoded(&plain)
            }
            // Before the channel: handshake frames, and plaintext data frames carrying an error
            // (a refusal) only.
            (None, FrameType::Handshake, false) => decoded(&frame.payload),
            (None, FrameType::Data, false) => match Message::decode(&frame.payload) {
                Ok(m @ Message::Error(_)) => Ok(m),
                _ => Err(None),
            },
            _ => Err(None),
        }
    }

    fn authentic_close(&mut self, frame: &Frame) -> bool {
        match (&mut self.channel, frame.flags.is_encrypted()) {
            (Some(channel), true) => open_sealed(channel, frame).is_some(),
            (None, false) => true,
            _ => false,
        }
    }

    /// Lowers the frames this side sends to the peer's limit (from its hello or capabilities).
    pub(crate) fn limit_to_peer(&mut self, peer_max_frame: Option<u32>) {
        if let Some(max) = peer_max_frame {
            let peer = (max as usize).saturating_sub(posbridge_wire::FRAME_OVERHEAD);
            self.send_max_payload = self.send_max_payload.min(peer);
        }
    }

    /// Whether `message` fits in one frame once sealed.
    pub(crate) fn check_size(&self, message: &Message) -> Result<(), SessionError> {
        let plain = message.to_bytes().map_err(SessionError::Encode)?;
        let len = plain.len() + SEAL_OVERHEAD;
        let max = self.send_max_payload;
        if len > max {
            return Err(SessionError::TooLarge { len, max });
        }
        Ok(())
    }

    /// Queues `message` for reliable delivery: sealed in a data frame once the channel is up,
    /// in a plaintext handshake frame before.
    pub(crate) fn send(
        &mut self,
        frame_type: FrameType,
        message: &Message,
        now: Instant,
    ) -> Result<(), SessionError> {
        let plain = message.to_bytes().map_err(SessionError::Encode)?;
        self.send_bytes(frame_type, &plain, now)
    }

    /// Sends `plain` as a frame's message bytes (sealed once the channel is up).
    pub(crate) fn send_bytes(
        &mut self,
        frame_type: FrameType,
        plain: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let seq = self.rel.next_seq();
        let mut out = BytesMut::new();
        let encrypt = frame_type == FrameType::Data && self.channel.is_some();
        let max = self.send_max_payload;
        if encrypt {
            let len = plain.len() + SEAL_OVERHEAD;
            if len > max {
                return Err(SessionError::TooLarge { len, max });
            }
            let aad = header_bytes(frame_type, FrameFlags::ENCRYPTED, seq, len as u16);
            let mut sealed = Vec::with_capacity(len);
            self.channel
                .as_mut()
                .expect("checked above")
                .seal(&aad, plain, &mut sealed)
                .map_err(SessionError::Channel)?;
            self.codec
                .encode_parts(frame_type, FrameFlags::ENCRYPTED, seq, &sealed, &mut out)
                .map_err(|_| SessionError::TooLarge { len, max })?;
        } else {
            self.codec
                .encode_parts(frame_type, FrameFlags::NONE, seq, plain, &mut out)
                .map_err(|_| SessionError::TooLarge {
                    len: plain.len(),
                    max,
                })?;
        }
        self.rel.push(out.freeze());
        self.last_tx = now;
        Ok(())
    }

    fn pop_urgent(&mut self) -> Option<Bytes> {
        let out = self.urgent.pop_front();
        if let Some(b) = &out {
            self.stats.bytes_sent += b.len() as u64;
        }
        out
    }

    /// The next bytes for the link. After the session closed, only its final close frame.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if let Some(b) = self.pop_urgent() {
            return Some(b);
        }
        if self.closed.is_some() {
            return None;
        }
        if let Some(b) = self.rel.poll_transmit(now) {
            self.stats.bytes_sent += b.len() as u64;
            return Some(b);
        }
        if let Closing::Draining { .. } = self.closing
            && self.rel.is_idle()
        {
            self.finish_close(CloseReason::Local);
            return self.pop_urgent();
        }
        None
    }

    fn close_frame(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        let seq = self.rel.next_seq();
        match &mut self.channel {
            Some(channel) => {
                let aad = header_bytes(
                    FrameType::Close,
                    FrameFlags::ENCRYPTED,
                    seq,
                    SEAL_OVERHEAD as u16,
                );
                let mut sealed = Vec::with_capacity(SEAL_OVERHEAD);
                if channel.seal(&aad, &[], &mut sealed).is_ok() {
                    let _ = self.codec.encode_parts(
                        FrameType::Close,
                        FrameFlags::ENCRYPTED,
                        seq,
                        &sealed,
                        &mut out,
                    );
                }
            }
            None => {
                let _ =
                    self.codec
                        .encode_parts(FrameType::Close, FrameFlags::NONE, seq, &[], &mut out);
            }
        }
        out.freeze()
    }

    /// Ends the session, queueing a close frame (sealed once the channel is up).
    pub(crate) fn finish_close(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            let frame = self.close_frame();
            self.urgent.push_back(frame);
            self.closing = Closing::Done;
            self.closed = Some(reason);
        }
    }

    /// Starts an orderly close: frames already queued are delivered first (up to the close
    /// timeout), then a close frame goes out.
    pub(crate) fn close(&mut self, now: Instant) {
        if matches!(self.closing, Closing::Open) && self.closed.is_none() {
            self.closing = Closing::Draining {
                deadline: now + self.config.close_timeout,
            };
        }
    }

    /// Whether an orderly close has started.
    pub(crate) fn is_closing(&self) -> bool {
        !matches!(self.closing, Closing::Open)
    }

    /// Ends the session, once: with `flush`, what is queued (a refusal, a pairing abort) goes
    /// out before the close frame. Returns the reason for the role to announce, or `None` if the
    /// end was announced already.
    pub(crate) fn end(
        &mut self,
        reason: CloseReason,
        now: Instant,
        flush: bool,
    ) -> Option<CloseReason> {
        if self.announced {
            return None;
        }
        self.announced = true;
        if flush {
            self.close(now);
        } else {
            self.finish_close(reason.clone());
        }
        Some(reason)
    }

    /// A close the core finished by itself (an orderly close drained) and nobody announced yet.
    pub(crate) fn unannounced_close(&mut self) -> Option<CloseReason> {
        if self.announced {
            return None;
        }
        let reason = self.closed.clone()?;
        self.announced = true;
        Some(reason)
    }

    /// Whether the end was announced (messages arriving afterwards are ignored).
    pub(crate) fn announced(&self) -> bool {
        self.announced
    }

    /// Whether the session has ended (or is ending after a failure).
    pub(crate) fn is_ended(&self) -> bool {
        self.announced || self.closed.is_some()
    }

    /// Runs timers — retransmission, close drain, dead peer or handshake deadline — and sends a
    /// heartbeat when one is due. Returns an end for the role to announce.
    pub(crate) fn on_timeout(&mut self, now: Instant, ready: bool) -> Option<CloseReason> {
        if let Some(reason) = self.handle_timeout(now, ready) {
            if self.announced {
                self.finish_close(reason);
                return None;
            }
            return self.end(reason, now, false);
        }
        if let Some(reason) = self.unannounced_close() {
            return Some(reason);
        }
        if ready
            && !self.is_closing()
            && now >= self.last_tx + self.config.heartbeat
            && let Err(e) = self.send_heartbeat(now)
        {
            return self.end(CloseReason::Failed(e), now, false);
        }
        None
    }

    /// Sends a heartbeat (sealed: it proves the sender holds the channel's keys).
    pub(crate) fn send_heartbeat(&mut self, now: Instant) -> Result<(), SessionError> {
        self.heartbeat_nonce += 1;
        let heartbeat = Message::Heartbeat(Heartbeat {
            nonce: self.heartbeat_nonce,
        });
        self.send(FrameType::Data, &heartbeat, now)
    }

    /// When a secure session that answered the client's handshake at `answered` must have had
    /// the client's first sealed frame: a heartbeat interval after the answer, and not before
    /// the handshake timeout (counted from the link's start) has passed.
    pub(crate) fn authentication_deadline(&self, answered: Instant) -> Instant {
        (answered + self.config.heartbeat).max(self.started + self.config.handshake_timeout)
    }

    pub(crate) fn poll_timeout(&self, ready: bool) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let mut t = self.rel.poll_timeout();
        let mut take = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        if ready {
            take(self.last_tx + self.config.heartbeat);
            take(self.last_rx + self.config.heartbeat * 3);
        } else {
            take(self.started + self.config.handshake_timeout);
        }
        if let Closing::Draining { deadline } = self.closing {
            take(deadline);
        }
        t
    }

    /// Runs timers; returns why the session ended, if it did.
    fn handle_timeout(&mut self, now: Instant, ready: bool) -> Option<CloseReason> {
        if self.closed.is_some() {
            return None;
        }
        if self.rel.handle_timeout(now).is_err() {
            return Some(CloseReason::Failed(SessionError::Unreachable));
        }
        if let Closing::Draining { deadline } = self.closing
            && now >= deadline
        {
            self.finish_close(CloseReason::Local);
            return None;
        }
        if ready {
            if now >= self.last_rx + self.config.heartbeat * 3 {
                return Some(CloseReason::Failed(SessionError::PeerDead));
            }
        } else if now >= self.started + self.config.handshake_timeout {
            return Some(CloseReason::Failed(SessionError::HandshakeTimeout));
        }
        None
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.rel.in_flight()
    }
}
