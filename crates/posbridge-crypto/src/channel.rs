//! The secure channel: a Noise IK handshake (X25519, AES-256-GCM, SHA-256) between paired static
//! keys, then AEAD-sealed frame payloads with the frame header as associated data, explicit
//! strictly increasing counters, and rekeying.
//!
//! Sans-IO: handshake messages and sealed payloads are byte strings in and out; the caller (the
//! session) carries them in frames.

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

/// The Noise protocol name.
pub const NOISE_PATTERN: &str = "Noise_IK_25519_AESGCM_SHA256";
const PROLOGUE: &[u8] = b"posbridge/channel/v1";
/// Bytes a sealed payload adds: an 8-byte counter and a 16-byte tag.
pub const SEAL_OVERHEAD: usize = 8 + 16;
/// The largest handshake message this side accepts.
const MAX_HANDSHAKE: usize = 2048;

/// Why the handshake or a sealed payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The handshake failed: a message was malformed, altered, or made with keys other than the
    /// paired ones (a man in the middle, or a terminal that was re-keyed).
    Handshake,
    /// The peer's static key is not paired with us (or was revoked). Pair first.
    NotPaired {
        /// The key it presented.
        peer_static: [u8; 32],
    },
    /// A sealed payload failed authentication: altered, truncated, or not from the peer.
    Decrypt,
    /// A counter not above the last accepted one: a replayed or reordered frame.
    Replay {
        /// The counter received.
        counter: u64,
    },
    /// A counter beyond the next key epoch: refused without trying keys far ahead.
    TooFarAhead {
        /// The counter received.
        counter: u64,
    },
    /// The send counter is exhausted; make a new channel (never happens in practice).
    Exhausted,
    /// The random source failed while making keys.
    Random,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake => f.write_str(
                "secure handshake failed: the peer does not hold the paired key (re-pair if the terminal was replaced; otherwise the connection may be intercepted)",
            ),
            Self::NotPaired { .. } => f.write_str("the peer is not paired with this device; pair first"),
            Self::Decrypt => f.write_str("a frame failed authentication and was dropped"),
            Self::Replay { counter } => write!(f, "frame counter {counter} replayed or out of order; dropped"),
            Self::TooFarAhead { counter } => write!(f, "frame counter {counter} too far ahead; dropped"),
            Self::Exhausted => f.write_str("channel counter exhausted; reconnect"),
            Self::Random => f.write_str("the system random source failed"),
        }
    }
}

impl std::error::Error for ChannelError {}

/// A static X25519 key pair for the channel (exchanged at pairing). The secret is wiped on drop
/// and never printed.
#[derive(Clone)]
pub struct StaticKeypair {
    public: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn builder() -> snow::Builder<'static> {
    snow::Builder::new(NOISE_PATTERN.parse().expect("a valid Noise pattern"))
}

impl StaticKeypair {
    /// A new key pair from the system random source.
    pub fn generate() -> Result<Self, ChannelError> {
        let kp = builder()
            .generate_keypair()
            .map_err(|_| ChannelError::Random)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&kp.private);
        let mut public = [0u8; 32];
        public.copy_from_slice(&kp.public);
        Ok(Self { public, secret })
    }

    /// A key pair from stored halves.
    pub fn from_parts(secret: [u8; 32], public: [u8; 32]) -> Self {
        Self {
            public,
            secret: Zeroizing::new(secret),
        }
    }

    /// The public half.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The secret half, for storing.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

/// Settings of a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    rekey_after: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            rekey_after: 1 << 20,
        }
    }
}

impl ChannelConfig {
    /// Derive a fresh key (Noise `REKEY`) after this many messages in a direction (at least 1;
    /// default 2²⁰). Both sides must agree; the session announces it.
    pub fn set_rekey_after(&mut self, messages: u64) -> &mut Self {
        self.rekey_after = messages.max(1);
        self
    }
}

/// The initiator (the phone or till) between sending its handshake message and reading the
/// answer.
pub struct InitiatorHandshake {
    hs: snow::HandshakeState,
    config: ChannelConfig,
}

impl fmt::Debug for InitiatorHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorHandshake").finish_non_exhaustive()
    }
}

impl InitiatorHandshake {
    /// Starts the handshake towards a terminal whose static key was learned at pairing; returns
    /// the first handshake message (carrying `payload`, encrypted).
    pub fn start(
        local: &StaticKeypair,
        terminal_static: &[u8; 32],
        payload: &[u8],
        config: ChannelConfig,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        Self::start_with(local, terminal_static, payload, config, None)
    }

    /// [`start`](Self::start), with the ephemeral key given (the known-answer test's).
    fn start_with(
        local: &StaticKeypair,
        terminal_static: &[u8; 32],
        payload: &[u8],
        config: ChannelConfig,
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        let mut b = builder();
        if let Some(e) = ephemeral {
            b = b.fixed_ephemeral_key_for_testing_only(e);
        }
        let mut hs = b
            .local_private_key(local.secret.as_slice())
            .and_then(|b| b.remote_public_key(terminal_static))
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(|b| b.build_initiator())
            .map_err(|_| ChannelError::Handshake)?;
        let mut out = vec![0u8; MAX_HANDSHAKE];
        let n = hs
            .write_message(payload, &mut out)
            .map_err(|_| ChannelError::Handshake)?;
        out.truncate(n);
        Ok((Self { hs, config }, out))
    }

    /// Reads the terminal's answer: returns the channel and the answer's payload.
    pub fn finish(mut self, response: &[u8]) -> Result<(SecureChannel, Vec<u8>), ChannelError> {
        let mut payload = vec![0u8; MAX_HANDSHAKE];
        let n = self
            .hs
            .read_message(response, &mut payload)
            .map_err(|_| ChannelError::Handshake)?;
        payload.truncate(n);
        let channel = SecureChannel::from_handshake(&mut self.hs, true, self.config)?;
        Ok((channel, payload))
    }
}

/// What the responder (the terminal) gets from a successful handshake.
#[derive(Debug)]
pub struct Accepted {
    /// The channel.
    pub channel: SecureChannel,
    /// The handshake message to send back.
    pub response: Vec<u8>,
    /// The initiator's static key (who it is).
    pub peer_static: [u8; 32],
    /// The initiator's payload.
    pub payload: Vec<u8>,
}

/// Answers an initiator's first handshake message (the terminal's side). `is_paired` decides
/// whether the initiator's static key belongs to a paired, unrevoked client. A terminal whose
/// answer depends on the initiator's payload uses [`Responder`] instead.
pub fn respond(
    local: &StaticKeypair,
    request: &[u8],
    is_paired: impl FnOnce(&[u8; 32]) -> bool,
    payload: &[u8],
    config: ChannelConfig,
) -> Result<Accepted, ChannelError> {
    let (responder, their_payload) = Responder::read(local, request, is_paired, config)?;
    let peer_static = responder.peer_static();
    let (channel, response) = responder.write(payload)?;
    Ok(Accepted {
        channel,
        response,
        peer_static,
        payload: their_payload,
    })
}

/// The terminal's side of the handshake in two steps: read the initiator's message (and its
/// payload, e.g. the client's hello), then write the answer (with a payload chosen after reading,
/// e.g. capabilities with the negotiated version).
pub struct Responder {
    hs: snow::HandshakeState,
    peer_static: [u8; 32],
    config: ChannelConfig,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("peer_static", &self.peer_static)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Reads the initiator's first message; returns the responder and the initiator's payload.
    /// Refuses an initiator whose static key `is_paired` does not accept.
    pub fn read(
        local: &StaticKeypair,
        request: &[u8],
        is_paired: impl FnOnce(&[u8; 32]) -> bool,
        config: ChannelConfig,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        Self::read_with(local, request, is_paired, config, None)
    }

    /// [`read`](Self::read), with the ephemeral key given (the known-answer test's).
    fn read_with(
        local: &StaticKeypair,
        request: &[u8],
        is_paired: impl FnOnce(&[u8; 32]) -> bool,
        config: ChannelConfig,
        ephemeral: Option<&[u8; 32]>,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        if request.len() > MAX_HANDSHAKE {
            return Err(ChannelError::Handshake);
        }
        let mut b = builder();
        if let Some(e) = ephemeral {
            b = b.fixed_ephemeral_key_for_testing_only(e);
        }
        let mut hs = b
            .local_private_key(local.secret.as_slice())
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(|b| b.build_responder())
            .map_err(|_| ChannelError::Handshake)?;
        let mut their_payload = vec![0u8; MAX_HANDSHAKE];
        let n = hs
            .read_message(request, &mut their_payload)
            .map_err(|_| ChannelError::Handshake)?;
        their_payload.truncate(n);
        let peer_static: [u8; 32] = hs
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or(ChannelError::Handshake)?;
        if !is_paired(&peer_static) {
            return Err(ChannelError::NotPaired { peer_static });
        }
        Ok((
            Self {
                hs,
                peer_static,
                config,
            },
            their_payload,
        ))
    }

    /// The initiator's static key.
    pub fn peer_static(&self) -> [u8; 32] {
        self.peer_static
    }

    /// Writes the answer carrying `payload`; returns the channel and the message to send.
    pub fn write(mut self, payload: &[u8]) -> Result<(SecureChannel, Vec<u8>), ChannelError> {
        let mut response = vec![0u8; MAX_HANDSHAKE];
        let m = self
            .hs
            .write_message(payload, &mut response)
            .map_err(|_| ChannelError::Handshake)?;
        response.truncate(m);
        let channel = SecureChannel::from_handshake(&mut self.hs, false, self.config)?;
        Ok((channel, response))
    }
}

/// One direction's key, epoch by epoch. (The cipher holds the only copy of the key and wipes
/// it on drop.)
struct Direction {
    cipher: Aes256Gcm,
    epoch: u64,
}

impl Direction {
    fn new(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        Self {
            cipher: Aes256Gcm::new_from_slice(key.as_slice()).expect("32-byte key"),
            epoch: 0,
        }
    }

    /// Noise `REKEY`: the first 32 bytes of encrypting 32 zero bytes under nonce 2⁶⁴−1.
    fn rekeyed(&self) -> Self {
        let mut block = Zeroizing::new([0u8; 48]);
        let nonce = nonce(u64::MAX);
        // The tag is not needed: REKEY keeps only the ciphertext.
        let _tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, &[], &mut block[..32])
            .expect("32 bytes always encrypt");
        let mut next = [0u8; 32];
        next.copy_from_slice(&block[..32]);
        let mut d = Self::new(next);
        d.epoch = self.epoch + 1;
        d
    }
}

fn nonce(counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::from(n)
}

/// An established channel: seals outgoing frame payloads and opens incoming ones.
pub struct SecureChannel {
    send: Direction,
    recv: Direction,
    next_send: u64,
    last_recv: Option<u64>,
    rekey_after: u64,
    handshake_hash: [u8; 32],
}

impl fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureChannel")
            .field("next_send", &self.next_send)
            .field("last_recv", &self.last_recv)
            .finish_non_exhaustive()
    }
}

impl SecureChannel {
    fn from_handshake(
        hs: &mut snow::HandshakeState,
        initiator: bool,
        config: ChannelConfig,
    ) -> Result<Self, ChannelError> {
        if !hs.is_handshake_finished() {
            return Err(ChannelError::Handshake);
        }
        let mut handshake_hash = [0u8; 32];
        handshake_hash.copy_from_slice(hs.get_handshake_hash());
        let (k1, k2) = hs.dangerously_get_raw_split();
        let (send, recv) = if initiator { (k1, k2) } else { (k2, k1) };
        Ok(Self {
            send: Direction::new(send),
            recv: Direction::new(recv),
            next_send: 0,
            last_recv: None,
            rekey_after: config.rekey_after,
            handshake_hash,
        })
    }

    /// The Noise handshake hash: the same on both sides, unique to this session (for channel
    /// binding, e.g. showing a short confirmation code).
    pub fn handshake_hash(&self) -> &[u8; 32] {
        &self.handshake_hash
    }

    /// Seals `plaintext` with `aad` (the frame header) as associated data, appending
    /// `counter (8) | ciphertext | tag (16)` to `out`.
    pub fn seal(
        &mut self,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ChannelError> {
        let counter = self.next_send;
        if counter == u64::MAX {
            return Err(ChannelError::Exhausted);
        }
        while counter / self.rekey_after > self.send.epoch {
            self.send = self.send.rekeyed();
        }
        let start = out.len();
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = self
            .send
            .cipher
            .encrypt_in_place_detached(&nonce(counter), aad, &mut out[start + 8..])
            .map_err(|_| ChannelError::Exhausted)?;
        out.extend_from_slice(&tag);
        self.next_send += 1;
        Ok(())
    }

    /// Opens a sealed payload in place: checks the counter is above every one accepted before,
    /// authenticates `counter | ciphertext | tag` with `aad`, and returns the plaintext (a slice
    /// of `sealed`). Nothing changes unless it authenticates.
    pub fn open<'a>(&mut self, aad: &[u8], sealed: &'a mut [u8]) -> Result<&'a [u8], ChannelError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(ChannelError::Decrypt);
        }
        let counter = u64::from_be_bytes(sealed[..8].try_into().expect("8 bytes"));
        if self.last_recv.is_some_and(|last| counter <= last) || counter == u64::MAX {
            return Err(ChannelError::Replay { counter });
        }
        let epoch = counter / self.rekey_after;
        let rekeyed;
        let direction = if epoch == self.recv.epoch {
            &self.recv
        } else if epoch == self.recv.epoch + 1 {
            rekeyed = self.recv.rekeyed();
            &rekeyed
        } else if epoch < self.recv.epoch {
            return Err(ChannelError::Replay { counter });
        } else {
            return Err(ChannelError::TooFarAhead { counter });
        };
        let body_len = sealed.len() - SEAL_OVERHEAD;
        let (body, tag) = sealed[8..].split_at_mut(body_len);
        direction
            .cipher
            .decrypt_in_place_detached(&nonce(counter), aad, body, Tag::from_slice(tag))
            .map_err(|_| ChannelError::Decrypt)?;
        if epoch != self.recv.epoch {
            self.recv = self.recv.rekeyed();
        }
        self.last_recv = Some(counter);
        Ok(&sealed[8..sealed.len() - 16])
    }
}

#[cfg(test)]
mod known_answer {
    //! The `[channel]` vector of docs/test-vectors.txt: a handshake with fixed static and
    //! ephemeral keys, and a sealed data frame each way (scripts/check_vectors.py checks the
    //! same vector from docs/security.md alone).

    use super::*;
    use bytes::BytesMut;
    use posbridge_wire::{
        Capabilities, FeatureSet, FrameCodec, FrameFlags, FrameType, Heartbeat, KindSet, Message,
        MethodSet, TerminalId, header_bytes,
    };
    use snow::params::DHChoice;
    use snow::resolvers::{CryptoResolver, DefaultResolver};

    const FILE: &str = include_str!("../../../docs/test-vectors.txt");

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `[channel]` vector's fields, continuation lines joined.
    fn vector() -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut inside = false;
        for line in FILE.lines() {
            if line.starts_with('[') {
                inside = line.trim_end() == "[channel]";
                continue;
            }
            if !inside || line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("    ") {
                let last = out.last_mut().expect("a key first");
                last.1.push(' ');
                last.1.push_str(rest.trim());
            } else if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        out
    }

    fn keypair(secret: [u8; 32]) -> StaticKeypair {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("X25519");
        dh.set(&secret);
        let public: [u8; 32] = dh.pubkey().try_into().expect("32 bytes");
        StaticKeypair::from_parts(secret, public)
    }

    fn sealed_frame(channel: &mut SecureChannel, seq: u32, message: &[u8]) -> Vec<u8> {
        let len = (message.len() + SEAL_OVERHEAD) as u16;
        let aad = header_bytes(FrameType::Data, FrameFlags::ENCRYPTED, seq, len);
        let mut payload = Vec::new();
        channel.seal(&aad, message, &mut payload).unwrap();
        let mut out = BytesMut::new();
        FrameCodec::new()
            .encode_parts(
                FrameType::Data,
                FrameFlags::ENCRYPTED,
                seq,
                &payload,
                &mut out,
            )
            .unwrap();
        out.to_vec()
    }

    /// What the vector holds, computed: fixed keys, the sample hello as the client's payload,
    /// a terminal's capabilities as the answer's, then a heartbeat sealed each way.
    fn computed() -> Vec<(&'static str, Vec<u8>)> {
        let client = keypair([0x11; 32]);
        let terminal = keypair([0x22; 32]);
        let (client_e, terminal_e) = ([0x33; 32], [0x44; 32]);
        let hello = Message::Hello(posbridge_wire::samples::hello())
            .to_bytes()
            .unwrap()
            .to_vec();
        let capabilities = Message::Capabilities(Capabilities {
            terminal_id: TerminalId([0x5c; 16]),
            model: Some("vector terminal".into()),
            firmware: None,
            serial_number: None,
            merchant_name: None,
            protocol_versions: vec![1],
            selected_version: 1,
            kinds: KindSet::all(),
            methods: MethodSet::all(),
            currencies: vec![posbridge_wire::Currency::EUR],
            limits: Vec::new(),
            max_frame_size: Some(4096),
            features: FeatureSet::default(),
            offline_limits: Vec::new(),
        })
        .to_bytes()
        .unwrap()
        .to_vec();
        let config = ChannelConfig::default();
        let (initiator, m1) = InitiatorHandshake::start_with(
            &client,
            &terminal.public(),
            &hello,
            config,
            Some(&client_e),
        )
        .unwrap();
        let (responder, got_hello) =
            Responder::read_with(&terminal, &m1, |_| true, config, Some(&terminal_e)).unwrap();
        assert_eq!(got_hello, hello);
        let (mut at_terminal, m2) = responder.write(&capabilities).unwrap();
        let (mut at_client, got_caps) = initiator.finish(&m2).unwrap();
        assert_eq!(got_caps, capabilities);
        assert_eq!(at_client.handshake_hash(), at_terminal.handshake_hash());
        let heartbeat = Message::Heartbeat(Heartbeat { nonce: 42 })
            .to_bytes()
            .unwrap()
            .to_vec();
        let to_terminal = sealed_frame(&mut at_client, 1, &heartbeat);
        let to_client = sealed_frame(&mut at_terminal, 1, &heartbeat);
        // Each side opens what the other sealed.
        for (frame, reader) in [
            (&to_terminal, &mut at_terminal),
            (&to_client, &mut at_client),
        ] {
            let mut payload = frame[13..frame.len() - 4].to_vec();
            let opened = reader.open(&frame[..13], &mut payload).unwrap().to_vec();
            assert_eq!(opened, heartbeat);
        }
        vec![
            ("client-static-secret", client.secret().to_vec()),
            ("client-static-public", client.public().to_vec()),
            ("terminal-static-secret", terminal.secret().to_vec()),
            ("terminal-static-public", terminal.public().to_vec()),
            ("client-ephemeral-secret", client_e.to_vec()),
            ("terminal-ephemeral-secret", terminal_e.to_vec()),
            ("client-payload", hello),
            ("terminal-payload", capabilities),
            ("handshake-1", m1),
            ("handshake-2", m2),
            ("handshake-hash", at_client.handshake_hash().to_vec()),
            ("plaintext", heartbeat),
            ("client-frame", to_terminal),
            ("terminal-frame", to_client),
        ]
    }

    #[test]
    fn channel_vector_matches_the_file() {
        let file = vector();
        let mut printed = String::from("[channel]\n");
        for (key, bytes) in computed() {
            let wrapped = bytes.chunks(16).map(hex).collect::<Vec<_>>().join("\n    ");
            printed.push_str(&format!("{key} = {wrapped}\n"));
        }
        for (key, bytes) in computed() {
            let Some((_, want)) = file.iter().find(|(k, _)| k == key) else {
                panic!("[channel] has no {key}; the vector as computed:\n{printed}");
            };
            assert_eq!(&hex(&bytes), want, "[channel] {key}\n{printed}");
        }
    }
}
