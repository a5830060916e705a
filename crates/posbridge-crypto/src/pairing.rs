//! Pairing: SPAKE2 with a 6-digit code or a 128-bit handover secret, key confirmation, and the
//! exchange of long-term public keys under the PAKE key.
//!
//! The exchange (docs/security.md, "Pairing") is four messages carried in
//! [`posbridge_wire::Pairing`]:
//!
//! | step | from | body |
//! |---|---|---|
//! | 1 | client | version (1), secret kind (1 code, 2 handover), SPAKE2 message A (33) |
//! | 2 | terminal | SPAKE2 message B (33), terminal confirmation (32), terminal keys sealed |
//! | 3 | client | client confirmation (32), client keys sealed |
//! | 4 | terminal | completion tag (32) |
//! | 255 | either | abort: reason (1), detail (4, big-endian) |
//!
//! Sans-IO: messages and the current time in, messages and records out.

use std::fmt;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use posbridge_wire::{Pairing, TerminalId, Timestamp};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use crate::{CryptoError, PublicKey, SigningIdentity, StaticKeypair, Verifier};

/// The pairing protocol version this crate speaks.
pub const PAIRING_VERSION: u8 = 1;
/// Step number of an abort message.
pub const ABORT_STEP: u8 = 255;

const ID_CLIENT: &[u8] = b"posbridge/pairing/client";
const ID_TERMINAL: &[u8] = b"posbridge/pairing/terminal";
const TRANSCRIPT_DOMAIN: &[u8] = b"posbridge/pairing/v1\0";
const SPAKE_LEN: usize = 33;
const MAC_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// The longest display name a side may send.
pub const MAX_NAME: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// A 16-byte identifier of a paired party: the terminal's [`TerminalId`] or a client's random id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 16]);

impl PeerId {
    /// A random id.
    pub fn random() -> Result<Self, CryptoError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(CryptoError::Random)?;
        Ok(Self(id))
    }
}

impl From<TerminalId> for PeerId {
    fn from(id: TerminalId) -> Self {
        Self(id.0)
    }
}

impl From<PeerId> for TerminalId {
    fn from(id: PeerId) -> Self {
        Self(id.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// Which side of a pairing a party is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The phone, tablet or cash register.
    Client,
    /// The payment terminal.
    Terminal,
}

/// The public half of a party: what pairing hands to the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerKeys {
    /// The party's id.
    pub id: PeerId,
    /// A display name ("Till 2", "Anna's phone"), at most [`MAX_NAME`] bytes, no control characters.
    pub name: String,
    /// The X25519 static key for the secure channel.
    pub channel_key: [u8; 32],
    /// The Ed25519 key that signs results (a client's is kept for future use).
    pub signing_key: PublicKey,
}

impl PeerKeys {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.channel_key);
        out.extend_from_slice(&self.signing_key.0);
        // `check_name` bounds the name to MAX_NAME bytes.
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
    }

    pub(crate) fn decode(r: &mut ByteReader<'_>) -> Result<Self, &'static str> {
        let id = PeerId(r.array()?);
        let channel_key: [u8; 32] = r.array()?;
        let signing_key = PublicKey(r.array()?);
        let len = r.u8()? as usize;
        let name = std::str::from_utf8(r.take(len)?)
            .map_err(|_| "name is not UTF-8")?
            .to_string();
        check_name(&name).map_err(|_| "invalid name")?;
        if channel_key == [0; 32] {
            return Err("all-zero channel key");
        }
        Verifier::new(&signing_key).map_err(|_| "invalid signing key")?;
        Ok(Self {
            id,
            name,
            channel_key,
            signing_key,
        })
    }
}

fn check_name(name: &str) -> Result<(), PairingError> {
    if name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(PairingError::InvalidName);
    }
    Ok(())
}

/// Reads fixed-layout records; every read is bounds-checked.
pub(crate) struct ByteReader<'a>(pub(crate) &'a [u8]);

impl<'a> ByteReader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn end(&self) -> Result<(), &'static str> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes")
        }
    }
}

/// This side's long-term identity: its id and name, the X25519 static key of the channel and the
/// Ed25519 key that signs results. Secrets are wiped on drop and never printed.
#[derive(Debug)]
pub struct LocalIdentity {
    id: PeerId,
    name: String,
    channel: StaticKeypair,
    signing: SigningIdentity,
}

impl LocalIdentity {
    /// A new identity with fresh keys. A terminal passes its [`TerminalId`] as `id`; a client
    /// passes [`PeerId::random`].
    pub fn generate(id: PeerId, name: &str) -> Result<Self, PairingError> {
        check_name(name)?;
        let channel = StaticKeypair::generate().map_err(|_| PairingError::Random)?;
        let signing = SigningIdentity::generate().map_err(|_| PairingError::Random)?;
        Ok(Self::from_parts(id, name, channel, signing))
    }

    /// An identity from existing keys (`name` is cut to [`MAX_NAME`] bytes and stripped of
    /// control characters).
    pub fn from_parts(
        id: PeerId,
        name: &str,
        channel: StaticKeypair,
        signing: SigningIdentity,
    ) -> Self {
        let mut clean = String::new();
        for c in name.chars().filter(|c| !c.is_control()) {
            if clean.len() + c.len_utf8() > MAX_NAME {
                break;
            }
            clean.push(c);
        }
        Self {
            id,
            name: clean,
            channel,
            signing,
        }
    }

    /// The id.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel key pair.
    pub fn channel(&self) -> &StaticKeypair {
        &self.channel
    }

    /// The signing key.
    pub fn signing(&self) -> &SigningIdentity {
        &self.signing
    }

    /// What pairing hands to the peer.
    pub fn public_keys(&self) -> PeerKeys {
        PeerKeys {
            id: self.id,
            name: self.name.clone(),
            channel_key: self.channel.public(),
            signing_key: self.signing.public_key(),
        }
    }
}

/// The secret both sides know: the 6-digit code from the terminal's screen, or the 128-bit
/// secret handed over by NFC or QR code. Never printed; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub enum PairingSecret {
    /// Six ASCII digits.
    Code(Zeroizing<[u8; 6]>),
    /// 16 random bytes.
    Handover(Zeroizing<[u8; 16]>),
}

impl fmt::Debug for PairingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Code(_) => "PairingSecret::Code(<redacted>)",
            Self::Handover(_) => "PairingSecret::Handover(<redacted>)",
        })
    }
}

impl PairingSecret {
    /// A code as typed by a person: six digits; spaces and dashes between them are ignored
    /// ("123 456", "123-456").
    pub fn code(typed: &str) -> Result<Self, PairingError> {
        let mut digits = Zeroizing::new([0u8; 6]);
        let mut n = 0;
        for b in typed.trim().bytes() {
            match b {
                b'0'..=b'9' if n < 6 => {
                    digits[n] = b;
                    n += 1;
                }
                b' ' | b'-' => {}
                _ => return Err(PairingError::InvalidCode),
            }
        }
        if n != 6 {
            return Err(PairingError::InvalidCode);
        }
        Ok(Self::Code(digits))
    }

    /// A handover secret (from `posbridge_handover::PairingSecret::expose`).
    pub fn handover(secret: [u8; 16]) -> Self {
        Self::Handover(Zeroizing::new(secret))
    }

    /// A new random 6-digit code, uniform over 000000..=999999.
    pub fn random_code() -> Result<Self, PairingError> {
        // Rejection sampling: 4_294_000_000 is the largest multiple of 10^6 below 2^32.
        loop {
            let mut b = [0u8; 4];
            getrandom::fill(&mut b).map_err(|_| PairingError::Random)?;
            let v = u32::from_be_bytes(b);
            if v < 4_294_000_000 {
                let mut digits = Zeroizing::new([0u8; 6]);
                let mut rest = v % 1_000_000;
                for d in digits.iter_mut().rev() {
                    *d = b'0' + (rest % 10) as u8;
                    rest /= 10;
                }
                return Ok(Self::Code(digits));
            }
        }
    }

    /// A new random handover secret.
    pub fn random_handover() -> Result<Self, PairingError> {
        let mut s = Zeroizing::new([0u8; 16]);
        getrandom::fill(s.as_mut()).map_err(|_| PairingError::Random)?;
        Ok(Self::Handover(s))
    }

    /// The code's digits, to show on the terminal's screen (`None` for a handover secret).
    pub fn digits(&self) -> Option<&str> {
        match self {
            Self::Code(d) => std::str::from_utf8(d.as_ref()).ok(),
            Self::Handover(_) => None,
        }
    }

    /// The handover secret's bytes, to put on the NFC tag or QR code (`None` for a code).
    pub fn handover_bytes(&self) -> Option<&[u8; 16]> {
        match self {
            Self::Handover(s) => Some(s),
            Self::Code(_) => None,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Self::Code(_) => 1,
            Self::Handover(_) => 2,
        }
    }

    fn password(&self) -> Password {
        let mut p = Vec::with_capacity(24);
        match self {
            Self::Code(d) => {
                p.extend_from_slice(b"code:");
                p.extend_from_slice(d.as_ref());
            }
            Self::Handover(s) => {
                p.extend_from_slice(b"handover:");
                p.extend_from_slice(s.as_ref());
            }
        }
        // spake2's Password keeps its own copy; ours is wiped here.
        let password = Password::new(&p);
        zeroize::Zeroize::zeroize(&mut p);
        password
    }
}

/// Why the peer (or this side) ended a pairing, as carried in an abort message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// Key confirmation failed: the two sides used different codes.
    WrongCode,
    /// Too many wrong codes: wait before the next attempt.
    LockedOut,
    /// The terminal is not in pairing mode (the window expired, was closed, or pairing is done).
    WindowClosed,
    /// A message was malformed or out of order.
    Protocol,
    /// The pairing protocol version is not supported.
    UnsupportedVersion,
    /// A person cancelled.
    Cancelled,
    /// The device's id is already paired with the terminal under other keys; the terminal's
    /// operator must revoke or explicitly replace that pairing first.
    AlreadyPaired,
    /// A reason this version does not know.
    Other(u8),
}

impl AbortReason {
    fn code(self) -> u8 {
        match self {
            Self::WrongCode => 1,
            Self::LockedOut => 2,
            Self::WindowClosed => 3,
            Self::Protocol => 4,
            Self::UnsupportedVersion => 5,
            Self::Cancelled => 6,
            Self::AlreadyPaired => 7,
            Self::Other(c) => c,
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            1 => Self::WrongCode,
            2 => Self::LockedOut,
            3 => Self::WindowClosed,
            4 => Self::Protocol,
            5 => Self::UnsupportedVersion,
            6 => Self::Cancelled,
            7 => Self::AlreadyPaired,
            c => Self::Other(c),
        }
    }
}

/// Why pairing failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairingError {
    /// A typed code is not six digits.
    InvalidCode,
    /// A display name is longer than [`MAX_NAME`] bytes or has control characters.
    InvalidName,
    /// The codes differ (a typo, or someone without the code in the middle). `attempts_left` is
    /// how many attempts the current code still allows (as the terminal counts them; `None` where
    /// this side does not know); `Some(0)` means the terminal has made a new code.
    WrongCode {
        /// Attempts the current code still allows.
        attempts_left: Option<u8>,
    },
    /// Too many wrong codes: the terminal accepts the next attempt after `retry_after`.
    LockedOut {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The terminal is not in pairing mode: its pairing window expired, was closed, or a device
    /// already paired in it. Open pairing on the terminal again.
    WindowClosed,
    /// A message was malformed.
    Malformed {
        /// The step it claimed to be.
        step: u8,
        /// What was wrong.
        reason: &'static str,
    },
    /// A message arrived out of order.
    UnexpectedStep {
        /// The step expected.
        expected: u8,
        /// The step received.
        got: u8,
    },
    /// The peer speaks another pairing version.
    UnsupportedVersion(u8),
    /// The terminal already has a pairing for this device's id under other keys, and refuses to
    /// overwrite it: another device claiming a paired till's id would otherwise lock the real
    /// till out. The terminal's operator revokes or explicitly replaces the old pairing first.
    AlreadyPaired,
    /// The peer ended the pairing for another reason.
    Aborted(AbortReason),
    /// The system random source failed.
    Random,
}

impl fmt::Display for PairingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidCode => f.write_str("a pairing code is six digits"),
            Self::InvalidName => write!(
                f,
                "a display name is at most {MAX_NAME} bytes without control characters"
            ),
            Self::WrongCode {
                attempts_left: Some(0),
            } => f.write_str(
                "wrong pairing code; the terminal has made a new code: enter the one now on its screen",
            ),
            Self::WrongCode {
                attempts_left: Some(n),
            } => write!(
                f,
                "wrong pairing code; {n} attempt(s) left with this code: check the code on the terminal's screen"
            ),
            Self::WrongCode {
                attempts_left: None,
            } => f.write_str(
                "wrong pairing code (or someone is intercepting the connection): check the code on the terminal's screen",
            ),
            Self::LockedOut { retry_after } => write!(
                f,
                "too many wrong pairing codes; try again in {} s",
                retry_after.as_secs().max(1)
            ),
            Self::WindowClosed => f.write_str(
                "the terminal is not in pairing mode (its pairing window expired or was closed): open pairing on the terminal again",
            ),
            Self::Malformed { step, reason } => {
                write!(f, "malformed pairing message (step {step}): {reason}")
            }
            Self::UnexpectedStep { expected, got } => {
                write!(f, "pairing message step {got} where step {expected} was expected")
            }
            Self::UnsupportedVersion(v) => write!(
                f,
                "the peer speaks pairing version {v}; this side speaks {PAIRING_VERSION}: update the app or the terminal"
            ),
            Self::AlreadyPaired => f.write_str(
                "the terminal already has a pairing for this device's id under other keys and does not overwrite it: on the terminal, revoke that pairing or allow replacing it, then pair again",
            ),
            Self::Aborted(r) => write!(f, "the peer ended pairing: {r:?}"),
            Self::Random => f.write_str("the system random source failed"),
        }
    }
}

impl std::error::Error for PairingError {}

impl PairingError {
    /// The abort message to send the peer for an error found on this side, or `None` when the
    /// peer already knows (it sent the abort) or nothing should be sent.
    pub fn abort_message(&self) -> Option<Pairing> {
        let (reason, detail) = match self {
            Self::WrongCode { attempts_left } => (
                AbortReason::WrongCode,
                attempts_left.map_or(u32::MAX, u32::from),
            ),
            Self::LockedOut { retry_after } => (
                AbortReason::LockedOut,
                u32::try_from(retry_after.as_millis()).unwrap_or(u32::MAX),
            ),
            Self::WindowClosed => (AbortReason::WindowClosed, 0),
            Self::AlreadyPaired => (AbortReason::AlreadyPaired, 0),
            Self::Malformed { .. } | Self::UnexpectedStep { .. } => (AbortReason::Protocol, 0),
            Self::UnsupportedVersion(_) => {
                (AbortReason::UnsupportedVersion, PAIRING_VERSION.into())
            }
            Self::Aborted(_) | Self::InvalidCode | Self::InvalidName | Self::Random => return None,
        };
        Some(abort(reason, detail))
    }
}

/// An abort message.
pub fn abort(reason: AbortReason, detail: u32) -> Pairing {
    let mut body = vec![reason.code()];
    body.extend_from_slice(&detail.to_be_bytes());
    Pairing {
        step: ABORT_STEP,
        body,
    }
}

/// The error an abort message from the peer means.
fn peer_abort(body: &[u8]) -> PairingError {
    let mut r = ByteReader(body);
    let Ok(reason) = r.u8() else {
        return PairingError::Malformed {
            step: ABORT_STEP,
            reason: "empty abort",
        };
    };
    let detail = r.array::<4>().map(u32::from_be_bytes).ok();
    match AbortReason::from_code(reason) {
        AbortReason::WrongCode => PairingError::WrongCode {
            attempts_left: detail.and_then(|d| u8::try_from(d).ok()),
        },
        AbortReason::LockedOut => PairingError::LockedOut {
            retry_after: Duration::from_millis(detail.unwrap_or(0).into()),
        },
        AbortReason::WindowClosed => PairingError::WindowClosed,
        AbortReason::AlreadyPaired => PairingError::AlreadyPaired,
        AbortReason::UnsupportedVersion => {
            PairingError::UnsupportedVersion(detail.map_or(0, |d| d.min(255) as u8))
        }
        other => PairingError::Aborted(other),
    }
}

fn expect_step(msg: &Pairing, expected: u8) -> Result<(), PairingError> {
    if msg.step == ABORT_STEP {
        return Err(peer_abort(&msg.body));
    }
    if msg.step != expected {
        return Err(PairingError::UnexpectedStep {
            expected,
            got: msg.step,
        });
    }
    Ok(())
}

fn malformed(step: u8) -> impl Fn(&'static str) -> PairingError {
    move |reason| PairingError::Malformed { step, reason }
}

/// The keys both sides derive from the SPAKE2 result and the transcript.
struct Schedule {
    transcript: [u8; 32],
    confirm_terminal: Zeroizing<[u8; 32]>,
    confirm_client: Zeroizing<[u8; 32]>,
    seal_terminal: Zeroizing<[u8; 32]>,
    seal_client: Zeroizing<[u8; 32]>,
}

impl Schedule {
    fn derive(shared: &[u8], kind: u8, msg_a: &[u8], msg_b: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(TRANSCRIPT_DOMAIN);
        h.update([PAIRING_VERSION, kind]);
        h.update(msg_a);
        h.update(msg_b);
        let transcript: [u8; 32] = h.finalize().into();
        let hk = Hkdf::<Sha256>::new(Some(&transcript), shared);
        let expand = |label: &[u8]| {
            let mut k = Zeroizing::new([0u8; 32]);
            hk.expand(label, k.as_mut())
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            k
        };
        Self {
            transcript,
            confirm_terminal: expand(b"confirm terminal"),
            confirm_client: expand(b"confirm client"),
            seal_terminal: expand(b"keys terminal"),
            seal_client: expand(b"keys client"),
        }
    }

    fn mac(&self, key: &[u8; 32], label: &[u8]) -> [u8; 32] {
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(label);
        m.update(&self.transcript);
        m.finalize().into_bytes().into()
    }

    fn check(&self, key: &[u8; 32], label: &[u8], tag: &[u8]) -> bool {
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(label);
        m.update(&self.transcript);
        m.verify_slice(tag).is_ok()
    }

    fn seal(&self, key: &[u8; 32], keys: &PeerKeys) -> Vec<u8> {
        let mut plain = Zeroizing::new(Vec::with_capacity(81 + keys.name.len()));
        keys.encode(&mut plain);
        // Each key seals exactly one message, so a fixed nonce is safe.
        Aes256Gcm::new(key.into())
            .encrypt(
                Nonce::from_slice(&[0; 12]),
                Payload {
                    msg: &plain,
                    aad: &self.transcript,
                },
            )
            .expect("AES-GCM encrypts messages this small")
    }

    fn open(&self, key: &[u8; 32], sealed: &[u8], step: u8) -> Result<PeerKeys, PairingError> {
        let plain = Zeroizing::new(
            Aes256Gcm::new(key.into())
                .decrypt(
                    Nonce::from_slice(&[0; 12]),
                    Payload {
                        msg: sealed,
                        aad: &self.transcript,
                    },
                )
                .map_err(|_| PairingError::Malformed {
                    step,
                    reason: "sealed keys fail authentication",
                })?,
        );
        let mut r = ByteReader(&plain);
        let keys = PeerKeys::decode(&mut r).map_err(malformed(step))?;
        r.end().map_err(malformed(step))?;
        Ok(keys)
    }
}

/// A finished pairing, as kept by each side: who the peer is, its keys, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingRecord {
    /// The peer's id, name and public keys.
    pub peer: PeerKeys,
    /// What the peer is.
    pub peer_role: Role,
    /// When the pairing completed (wall-clock time, from the caller).
    pub paired_at: Timestamp,
}

// ---------------------------------------------------------------------------------------------
// Client side

/// The client's side of pairing, waiting for the terminal's answer (step 2).
///
/// ```
/// use posbridge_crypto::{ClientPairing, LocalIdentity, PairingConfig, PairingSecret, PairingWindow, PeerId};
/// use posbridge_wire::Timestamp;
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let terminal = LocalIdentity::generate(PeerId([1; 16]), "Till 2")?;
/// let mut window = PairingWindow::open(PairingConfig::default(), now)?;
/// let shown = window.code().unwrap().to_string(); // on the terminal's screen
///
/// let phone = LocalIdentity::generate(PeerId::random()?, "Anna's phone")?;
/// let (client, step1) = ClientPairing::start(&phone, &PairingSecret::code(&shown)?)?;
/// let (attempt, step2) = window.accept(&terminal, &step1, now)?;
/// let (client, step3) = client.confirm(&step2)?;
/// let (on_terminal, step4) = attempt.finish(&mut window, &step3, now, Timestamp(1_764_000_000_000))?;
/// let on_phone = client.finish(&step4, Timestamp(1_764_000_000_000))?;
/// assert_eq!(on_phone.peer, terminal.public_keys());
/// assert_eq!(on_terminal.peer, phone.public_keys());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClientPairing {
    spake: Spake2<Ed25519Group>,
    kind: u8,
    msg_a: Vec<u8>,
    keys: PeerKeys,
}

impl fmt::Debug for ClientPairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPairing").finish_non_exhaustive()
    }
}

impl ClientPairing {
    /// Starts pairing with the code typed by the person (or the handover secret); returns the
    /// state and the first message to send.
    pub fn start(
        identity: &LocalIdentity,
        secret: &PairingSecret,
    ) -> Result<(Self, Pairing), PairingError> {
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a(
            &secret.password(),
            &Identity::new(ID_CLIENT),
            &Identity::new(ID_TERMINAL),
        );
        Ok(Self::started(identity, secret, spake, msg_a))
    }

    #[cfg(test)]
    pub(crate) fn start_with_rng(
        identity: &LocalIdentity,
        secret: &PairingSecret,
        rng: impl rand_core::CryptoRng + rand_core::RngCore,
    ) -> (Self, Pairing) {
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a_with_rng(
            &secret.password(),
            &Identity::new(ID_CLIENT),
            &Identity::new(ID_TERMINAL),
            rng,
        );
        Self::started(identity, secret, spake, msg_a)
    }

    fn started(
        identity: &LocalIdentity,
        secret: &PairingSecret,
        spake: Spake2<Ed25519Group>,
        msg_a: Vec<u8>,
    ) -> (Self, Pairing) {
        let mut body = vec![PAIRING_VERSION, secret.kind()];
        body.extend_from_slice(&msg_a);
        let me = Self {
            spake,
            kind: secret.kind(),
            msg_a,
            keys: identity.public_keys(),
        };
        (me, Pairing { step: 1, body })
    }

    /// Handles the terminal's answer: checks its key confirmation (a wrong code fails here, with
    /// [`PairingError::WrongCode`]; send the error's [`abort_message`](PairingError::abort_message)
    /// so the terminal learns at once) and returns the message that confirms ours and carries our
    /// keys.
    pub fn confirm(self, msg: &Pairing) -> Result<(ClientConfirmed, Pairing), PairingError> {
        expect_step(msg, 2)?;
        let bad = malformed(2);
        let mut r = ByteReader(&msg.body);
        let msg_b = r.take(SPAKE_LEN).map_err(&bad)?;
        let confirm = r.take(MAC_LEN).map_err(&bad)?;
        let sealed = r.0;
        if sealed.len() < TAG_LEN {
            return Err(bad("sealed keys truncated"));
        }
        let shared = Zeroizing::new(self.spake.finish(msg_b).map_err(|e| bad(spake_reason(e)))?);
        let schedule = Schedule::derive(&shared, self.kind, &self.msg_a, msg_b);
        if !schedule.check(&schedule.confirm_terminal, b"confirm", confirm) {
            return Err(PairingError::WrongCode {
                attempts_left: None,
            });
        }
        let terminal = schedule.open(&schedule.seal_terminal, sealed, 2)?;
        let mut body = schedule.mac(&schedule.confirm_client, b"confirm").to_vec();
        body.extend(schedule.seal(&schedule.seal_client, &self.keys));
        Ok((
            ClientConfirmed { schedule, terminal },
            Pairing { step: 3, body },
        ))
    }
}

fn spake_reason(e: spake2::Error) -> &'static str {
    match e {
        spake2::Error::BadSide => "SPAKE2 message from the wrong side",
        spake2::Error::CorruptMessage => "SPAKE2 message is not a curve point",
        spake2::Error::WrongLength => "SPAKE2 message has the wrong length",
    }
}

/// The client's side after key confirmation, waiting for the terminal's completion (step 4).
pub struct ClientConfirmed {
    schedule: Schedule,
    terminal: PeerKeys,
}

impl fmt::Debug for ClientConfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfirmed")
            .field("terminal", &self.terminal.id)
            .finish_non_exhaustive()
    }
}

impl ClientConfirmed {
    /// The terminal's keys (authenticated by the code, not yet acknowledged by the terminal).
    pub fn terminal(&self) -> &PeerKeys {
        &self.terminal
    }

    /// Handles the terminal's completion and returns the record to keep.
    pub fn finish(
        self,
        msg: &Pairing,
        paired_at: Timestamp,
    ) -> Result<PairingRecord, PairingError> {
        expect_step(msg, 4)?;
        if !self
            .schedule
            .check(&self.schedule.confirm_terminal, b"done", &msg.body)
        {
            return Err(PairingError::Malformed {
                step: 4,
                reason: "completion tag does not verify",
            });
        }
        Ok(PairingRecord {
            peer: self.terminal,
            peer_role: Role::Terminal,
            paired_at,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Terminal side

/// The longest pairing window or back-off a [`PairingConfig`] takes (one week).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// The terminal's pairing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingConfig {
    window: Duration,
    attempts_per_code: u8,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Default for PairingConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(180),
            attempts_per_code: 3,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
        }
    }
}

impl PairingConfig {
    /// How long pairing stays open after [`PairingWindow::open`] (default 180 s, at most
    /// [`MAX_WINDOW`]). Lockouts and new codes do not extend it.
    pub fn set_window(&mut self, window: Duration) -> &mut Self {
        self.window = window.min(MAX_WINDOW);
        self
    }

    /// Attempts per code before a new code is made (default 3, at least 1). Every attempt counts
    /// from its first message, so an attacker gains nothing by breaking off.
    pub fn set_attempts_per_code(&mut self, attempts: u8) -> &mut Self {
        self.attempts_per_code = attempts.max(1);
        self
    }

    /// The wait after the first used-up code (default 10 s); it doubles with every further used-up
    /// code in the same window, up to `max` (default 600 s).
    pub fn set_backoff(&mut self, base: Duration, max: Duration) -> &mut Self {
        self.backoff_base = base.min(MAX_WINDOW);
        self.backoff_max = max.min(MAX_WINDOW).max(self.backoff_base);
        self
    }
}

/// Where a [`PairingWindow`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Accepting attempts.
    Open,
    /// Too many wrong codes: a new code is made; attempts are refused until `until`.
    LockedOut {
        /// When attempts are accepted again.
        until: Instant,
    },
    /// The window's time ran out.
    Expired,
    /// A device paired; the window is closed.
    Paired,
    /// Closed by the operator.
    Closed,
}

/// The terminal's pairing mode: the code on its screen (and the handover secret for its NFC tag
/// or QR code), the attempts left with them, the back-off after used-up codes, and the window's
/// expiry. Time is passed in; nothing here reads a clock.
pub struct PairingWindow {
    config: PairingConfig,
    code: PairingSecret,
    handover: PairingSecret,
    expires_at: Instant,
    started_with_code: u8,
    failed_with_code: u8,
    used_up_codes: u32,
    locked_until: Option<Instant>,
    done: Option<WindowState>,
    generation: u64,
}

impl fmt::Debug for PairingWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingWindow")
            .field("expires_at", &self.expires_at)
            .field("started_with_code", &self.started_with_code)
            .field("failed_with_code", &self.failed_with_code)
            .field("used_up_codes", &self.used_up_codes)
            .field("locked_until", &self.locked_until)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl PairingWindow {
    /// Opens pairing at `now` with a fresh random code and handover secret.
    pub fn open(config: PairingConfig, now: Instant) -> Result<Self, PairingError> {
        Ok(Self {
            config,
            code: PairingSecret::random_code()?,
            handover: PairingSecret::random_handover()?,
            expires_at: now + config.window,
            started_with_code: 0,
            failed_with_code: 0,
            used_up_codes: 0,
            locked_until: None,
            done: None,
            generation: 0,
        })
    }

    /// Opens pairing with a given code (a terminal whose screen cannot show a fresh code each
    /// time, or a test). A new code made after used-up attempts is random.
    pub fn open_with(
        config: PairingConfig,
        now: Instant,
        code: PairingSecret,
        handover: PairingSecret,
    ) -> Result<Self, PairingError> {
        if code.digits().is_none() || handover.handover_bytes().is_none() {
            return Err(PairingError::InvalidCode);
        }
        let mut w = Self::open(config, now)?;
        w.code = code;
        w.handover = handover;
        Ok(w)
    }

    /// Where the window stands at `now`.
    pub fn state(&self, now: Instant) -> WindowState {
        if let Some(done) = self.done {
            return done;
        }
        if now >= self.expires_at {
            return WindowState::Expired;
        }
        match self.locked_until {
            Some(until) if now < until => WindowState::LockedOut { until },
            _ => WindowState::Open,
        }
    }

    /// The code to show, while the window is open or locked out (a new code is shown during the
    /// lockout so the person can type it once it ends).
    pub fn code(&self) -> Option<&str> {
        if self.done.is_some() {
            return None;
        }
        self.code.digits()
    }

    /// The handover secret to put on the NFC tag or QR code, while the window is open.
    pub fn handover_secret(&self) -> Option<&[u8; 16]> {
        if self.done.is_some() {
            return None;
        }
        self.handover.handover_bytes()
    }

    /// Changes whenever a new code is made, so a display knows to redraw.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the window expires.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// The next time after `now` at which the window's state changes by itself (a lockout ends
    /// or the window expires), for the driver's timer; `None` once nothing more will happen.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.done.is_some() || now >= self.expires_at {
            return None;
        }
        Some(match self.locked_until {
            Some(until) if until > now && until < self.expires_at => until,
            _ => self.expires_at,
        })
    }

    /// Closes the window (the operator left pairing mode).
    pub fn close(&mut self) {
        self.done.get_or_insert(WindowState::Closed);
    }

    /// Attempts the current code still allows.
    pub fn attempts_left(&self) -> u8 {
        self.config
            .attempts_per_code
            .saturating_sub(self.started_with_code)
    }

    /// A new code after the current one's attempts are used up, and the back-off. The handover
    /// secret stays: at 128 bits it needs no attempt budget, so failed code attempts — anyone's —
    /// never make the tag or QR code the terminal shows useless.
    fn new_code(&mut self, now: Instant) -> Result<(), PairingError> {
        self.code = PairingSecret::random_code()?;
        self.generation += 1;
        self.started_with_code = 0;
        self.failed_with_code = 0;
        self.used_up_codes += 1;
        let factor = 1u32
            .checked_shl(self.used_up_codes.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let wait = self
            .config
            .backoff_base
            .saturating_mul(factor)
            .min(self.config.backoff_max);
        self.locked_until = Some(now + wait);
        Ok(())
    }

    fn refuse_unless_open(&mut self, now: Instant) -> Result<(), PairingError> {
        match self.state(now) {
            WindowState::Open => {}
            WindowState::LockedOut { until } => {
                return Err(PairingError::LockedOut {
                    retry_after: until - now,
                });
            }
            WindowState::Expired | WindowState::Paired | WindowState::Closed => {
                return Err(PairingError::WindowClosed);
            }
        }
        if self.started_with_code >= self.config.attempts_per_code {
            // Attempts that were started and never finished count as failed.
            self.new_code(now)?;
            return self.refuse_unless_open(now);
        }
        Ok(())
    }

    /// Handles a client's first message at `now`: counts the attempt against the current code and
    /// answers with the terminal's half of SPAKE2, its key confirmation and its keys sealed under
    /// the PAKE key. On error, send the error's
    /// [`abort_message`](PairingError::abort_message).
    pub fn accept(
        &mut self,
        identity: &LocalIdentity,
        msg: &Pairing,
        now: Instant,
    ) -> Result<(TerminalPairing, Pairing), PairingError> {
        self.accept_inner(identity, msg, now, |pw, a, b| {
            Spake2::<Ed25519Group>::start_b(pw, a, b)
        })
    }

    #[cfg(test)]
    pub(crate) fn accept_with_rng(
        &mut self,
        identity: &LocalIdentity,
        msg: &Pairing,
        now: Instant,
        rng: impl rand_core::CryptoRng + rand_core::RngCore,
    ) -> Result<(TerminalPairing, Pairing), PairingError> {
        self.accept_inner(identity, msg, now, |pw, a, b| {
            Spake2::<Ed25519Group>::start_b_with_rng(pw, a, b, rng)
        })
    }

    fn accept_inner(
        &mut self,
        identity: &LocalIdentity,
        msg: &Pairing,
        now: Instant,
        start_b: impl FnOnce(&Password, &Identity, &Identity) -> (Spake2<Ed25519Group>, Vec<u8>),
    ) -> Result<(TerminalPairing, Pairing), PairingError> {
        let (kind, msg_a) = parse_first(msg)?;
        // Only the six-digit code has an attempt budget (and its lockout); an attempt with the
        // 128-bit handover secret cannot be guessed, so it neither counts nor waits.
        let counted = kind == self.code.kind();
        if counted {
            self.refuse_unless_open(now)?;
        } else if matches!(
            self.state(now),
            WindowState::Expired | WindowState::Paired | WindowState::Closed
        ) {
            return Err(PairingError::WindowClosed);
        }
        let secret = if counted { &self.code } else { &self.handover };
        let (spake, msg_b) = start_b(
            &secret.password(),
            &Identity::new(ID_CLIENT),
            &Identity::new(ID_TERMINAL),
        );
        if counted {
            self.started_with_code += 1;
        }
        let (mut attempt, reply) =
            respond_first(identity, spake, kind, msg_a, msg_b, self.generation)?;
        attempt.counted = counted;
        Ok((attempt, reply))
    }

    /// Records a failed attempt; returns the attempts left with the current code (0 when a new
    /// code was made).
    fn fail(&mut self, generation: u64, now: Instant) -> Result<u8, PairingError> {
        if generation != self.generation || self.done.is_some() {
            // The code changed (or the window closed) meanwhile; the attempt is already counted.
            return Ok(self.attempts_left());
        }
        self.failed_with_code += 1;
        if self.failed_with_code >= self.config.attempts_per_code {
            self.new_code(now)?;
            return Ok(0);
        }
        Ok(self.attempts_left())
    }
}

fn parse_first(msg: &Pairing) -> Result<(u8, &[u8]), PairingError> {
    expect_step(msg, 1)?;
    let bad = malformed(1);
    let mut r = ByteReader(&msg.body);
    let version = r.u8().map_err(&bad)?;
    if version != PAIRING_VERSION {
        return Err(PairingError::UnsupportedVersion(version));
    }
    let kind = r.u8().map_err(&bad)?;
    if !matches!(kind, 1 | 2) {
        return Err(bad("unknown secret kind"));
    }
    let msg_a = r.take(SPAKE_LEN).map_err(&bad)?;
    r.end().map_err(&bad)?;
    Ok((kind, msg_a))
}

fn respond_first(
    identity: &LocalIdentity,
    spake: Spake2<Ed25519Group>,
    kind: u8,
    msg_a: &[u8],
    msg_b: Vec<u8>,
    generation: u64,
) -> Result<(TerminalPairing, Pairing), PairingError> {
    let shared = Zeroizing::new(spake.finish(msg_a).map_err(|e| PairingError::Malformed {
        step: 1,
        reason: spake_reason(e),
    })?);
    let schedule = Schedule::derive(&shared, kind, msg_a, &msg_b);
    let mut body = msg_b;
    body.extend_from_slice(&schedule.mac(&schedule.confirm_terminal, b"confirm"));
    body.extend(schedule.seal(&schedule.seal_terminal, &identity.public_keys()));
    Ok((
        TerminalPairing {
            schedule,
            generation,
            counted: true,
        },
        Pairing { step: 2, body },
    ))
}

/// One pairing attempt on the terminal, waiting for the client's confirmation (step 3).
pub struct TerminalPairing {
    schedule: Schedule,
    generation: u64,
    /// Whether it counts against the code's attempt budget (a code attempt, not a handover).
    counted: bool,
}

impl fmt::Debug for TerminalPairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalPairing").finish_non_exhaustive()
    }
}

impl TerminalPairing {
    /// Handles the client's confirmation at `now`. On success the window closes (one device per
    /// window) and this returns the record to keep and the completion message to send. A wrong
    /// code (or the client's abort saying so) counts as a failed attempt: after the last one the
    /// window makes a new code and locks out for the back-off.
    pub fn finish(
        self,
        window: &mut PairingWindow,
        msg: &Pairing,
        now: Instant,
        paired_at: Timestamp,
    ) -> Result<(PairingRecord, Pairing), PairingError> {
        let bad = malformed(3);
        let outcome = (|| {
            if msg.step == ABORT_STEP {
                return Err(match peer_abort(&msg.body) {
                    PairingError::WrongCode { .. } => PairingError::WrongCode {
                        attempts_left: None,
                    },
                    other => other,
                });
            }
            expect_step(msg, 3)?;
            let mut r = ByteReader(&msg.body);
            let confirm = r.take(MAC_LEN).map_err(&bad)?;
            if !self
                .schedule
                .check(&self.schedule.confirm_client, b"confirm", confirm)
            {
                return Err(PairingError::WrongCode {
                    attempts_left: None,
                });
            }
            self.schedule.open(&self.schedule.seal_client, r.0, 3)
        })();
        match outcome {
            Ok(client) => {
                // An attempt started within the code's budget may complete during a lockout
                // caused by others; not after the window ended.
                if matches!(
                    window.state(now),
                    WindowState::Expired | WindowState::Closed | WindowState::Paired
                ) {
                    return Err(PairingError::WindowClosed);
                }
                window.done = Some(WindowState::Paired);
                window.used_up_codes = 0;
                window.locked_until = None;
                let done = self.schedule.mac(&self.schedule.confirm_terminal, b"done");
                Ok((
                    PairingRecord {
                        peer: client,
                        peer_role: Role::Client,
                        paired_at,
                    },
                    Pairing {
                        step: 4,
                        body: done.to_vec(),
                    },
                ))
            }
            Err(PairingError::WrongCode { .. }) if !self.counted => Err(PairingError::WrongCode {
                attempts_left: None,
            }),
            Err(PairingError::WrongCode { .. }) => {
                let left = window.fail(self.generation, now)?;
                Err(PairingError::WrongCode {
                    attempts_left: Some(left),
                })
            }
            Err(e) => {
                // Anything else also ends the attempt; a code attempt stays counted.
                if self.counted {
                    window.fail(self.generation, now)?;
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator for known-answer tests: SHA-256 of a seed and a counter.
    struct TestRng {
        seed: u8,
        counter: u64,
    }

    impl rand_core::RngCore for TestRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for chunk in dest.chunks_mut(32) {
                let mut h = Sha256::new();
                h.update([self.seed]);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                let block: [u8; 32] = h.finalize().into();
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for TestRng {}

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn identity(seed: u8, name: &str) -> LocalIdentity {
        let secret = [seed; 32];
        let public = x25519_public(&secret);
        LocalIdentity::from_parts(
            PeerId([seed; 16]),
            name,
            StaticKeypair::from_parts(secret, public),
            SigningIdentity::from_secret(&[seed ^ 0xff; 32]),
        )
    }

    fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
        // Any 32 bytes serve as a channel key in these tests; what matters is that they are fixed.
        let mut h = Sha256::new();
        h.update(secret);
        h.finalize().into()
    }

    #[test]
    fn key_schedule_known_answer() {
        let s = Schedule::derive(&[1; 32], 1, &[2; 33], &[3; 33]);
        assert_eq!(
            hex(&s.transcript),
            "cf280e70e15bab4b6b39d8da944e969c2f2ada31f68c06c598f496145181157f"
        );
        // Expected values computed independently (Python hashlib/hmac and `cryptography`'s
        // AESGCM) from the construction in docs/security.md.
        assert_eq!(
            hex(&s.mac(&s.confirm_terminal, b"confirm")),
            "76ed8bc2d416ed44f0349ae4dfc5ef713b59e075df5c280a4a1c4d99976dbda1"
        );
        assert_eq!(
            hex(&s.mac(&s.confirm_client, b"confirm")),
            "5abf9e3ee7f590125e2596570d86957668991b13ca2894567e5493cd720e0891"
        );
        assert_eq!(
            hex(&s.mac(&s.confirm_terminal, b"done")),
            "30d1037096e7aab5a40af6ed0614cd234d4d00863cdd0d4f0c4fada37fe737f3"
        );
        let keys = PeerKeys {
            id: PeerId([0x11; 16]),
            name: "Till 2".into(),
            channel_key: [0x22; 32],
            signing_key: PublicKey([0x33; 32]),
        };
        assert_eq!(
            hex(&s.seal(&s.seal_terminal, &keys)),
            "d686cb9e0be09c3bd9113a214dd9d368774a5aacb5066aa9027e8cbbdd353eaa82b51684ea67da97\
             17881caeb07a5a365fabf67878181cdb1dec1bf5464ae3e2cbf340d0d204add6def042b9f5417fb1\
             0b447b570aafa21e49450de8b2ce502e814f2b4560279f"
        );
    }

    #[test]
    fn whole_exchange_known_answer() {
        let now = Instant::now();
        let terminal = identity(0x11, "Till 2");
        let phone = identity(0x22, "Anna's phone");
        let code = PairingSecret::code("123456").unwrap();
        let mut window = PairingWindow::open_with(
            PairingConfig::default(),
            now,
            code.clone(),
            PairingSecret::handover([5; 16]),
        )
        .unwrap();
        let (client, m1) = ClientPairing::start_with_rng(
            &phone,
            &code,
            TestRng {
                seed: 1,
                counter: 0,
            },
        );
        let (attempt, m2) = window
            .accept_with_rng(
                &terminal,
                &m1,
                now,
                TestRng {
                    seed: 2,
                    counter: 0,
                },
            )
            .unwrap();
        let (client, m3) = client.confirm(&m2).unwrap();
        let (record_t, m4) = attempt.finish(&mut window, &m3, now, Timestamp(7)).unwrap();
        let record_c = client.finish(&m4, Timestamp(8)).unwrap();
        assert_eq!(record_t.peer, phone.public_keys());
        assert_eq!(record_c.peer, terminal.public_keys());
        // Recomputed independently (SPAKE2 and the key schedule of docs/security.md in Python)
        // by scripts/check_vectors.py: message 1 whole, message 2's SPAKE2 message and confirm_T.
        assert_eq!(
            hex(&m1.body),
            "0101412d0616639bc902b99ae60b4c4260243278f7d768db495930fadf694c6c2f3330"
        );
        assert_eq!(
            hex(&m2.body[..65]),
            "42c3af788c1b23f17fccb2d1260984a2388268bef950eb913399e47433839631\
             b4bcb743095c282b69ec75fb66ea84b85f34a24bb0b8db880735c734fbd8412876"
        );
        // Pinned: any change to the messages' layout or derivation shows here.
        for (m, want) in [
            (
                &m1,
                "8666c85b154d4155105f6b2815312e4e44ef17346c1320cca76494ee6ce84b91",
            ),
            (
                &m2,
                "122255b1a43a8daac6e0f476586520bc41e31be00a74e2dd8531f88b74e8bc66",
            ),
            (
                &m3,
                "d3abcfb24a3f6d58debd03fae136a7c300e222c6104260c3f5d37c0a068e013a",
            ),
            (
                &m4,
                "3f3181c7ca165f504420ec7189a514a5ea69d7e4ed16c9518e46824a039985ec",
            ),
        ] {
            assert_eq!(hex(&Sha256::digest(&m.body)), want, "step {}", m.step);
        }
    }
}
