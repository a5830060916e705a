//! The sessions of posbridge's native protocol, for both roles, sans-IO.
//!
//! [`ClientSession`] (the phone or till) and [`TerminalSession`] (the terminal) sit between the
//! link and the app: bytes from the link and the current time go in, bytes for the link, timer
//! deadlines and events come out. They do no IO, read no clock and spawn nothing, so the same
//! code runs under tokio, in a mobile app that feeds bytes from its own Bluetooth stack, in a
//! fuzzer, and in the [`harness`] that steps both roles over simulated, faulty links.
//!
//! What a session does:
//!
//! * **Reliable delivery** of data and handshake frames over links that lose, damage, duplicate
//!   or reorder them: sequence numbers, cumulative acks, naks on gaps, retransmission with an
//!   adaptive timeout and exponential back-off, duplicate suppression; the window is
//!   configurable (1 is stop-and-wait, for slow serial links).
//! * **Pairing** (SPAKE2 with the terminal's code, from `posbridge-crypto`) when the client is
//!   not paired yet, then the **secure handshake** (Noise IK) whose first messages carry the
//!   client's `Hello` and the terminal's `Capabilities`: one round trip from link-up to ready.
//!   Every data frame after that is sealed with its header as associated data; so is the close.
//! * A **heartbeat** (default every 5 s of silence) that declares a peer dead after 3 silent
//!   intervals, and an **orderly close** that delivers what is queued first.
//!
//! * **Requests** on the client ([`ClientSession::request`]): request ids and correlation,
//!   progress, one money command at a time with the rest queued, a deadline on each (an expired
//!   request that was sent is reported *in doubt*), cancel before and during card presentation,
//!   and a check against the terminal's capabilities before anything is sent.
//! * **The terminal's guarantees** ([`TerminalSession`], [`TerminalApp`]): every idempotency key
//!   is remembered with its signed result ([`ResultStore`]) so a repeat gets the original answer
//!   and never a second payment; status queries; commands resumed across reconnects; operator
//!   authorisation (PIN or RFC 6238 code, with lockout) for refunds, voids, settlements and
//!   configuration writes; configuration writes reflected in the capabilities it reports.
//!
//! The byte-level rules are in `docs/protocol.md` §7.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use posbridge_session::harness::{Pair, capabilities, hello};
//! use posbridge_session::*;
//! use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId};
//!
//! let start = Instant::now();
//! let terminal_id = Arc::new(LocalIdentity::generate(PeerId([1; 16]), "Till 2")?);
//! let context = TerminalContext::new(terminal_id, PairingRegistry::new(), capabilities(), 10_000);
//! // The terminal enters pairing mode and shows a code; the person types it on the phone.
//! let code = context.registry.lock().unwrap().open_window(PairingConfig::default(), start)?.to_string();
//!
//! let phone = Arc::new(LocalIdentity::generate(PeerId([2; 16]), "phone")?);
//! let security = ClientSecurity::Pair(PairingSecret::code(&code)?);
//! let client = ClientSession::new(SessionConfig::default(), phone, security, hello(), start);
//! let terminal = TerminalSession::new(SessionConfig::default(), context, start);
//!
//! let mut pair = Pair::new(client, terminal, start, 1);
//! pair.drive();
//! assert!(pair.client_events().iter().any(|e| matches!(e, ClientEvent::Paired(_))));
//! assert!(pair.client.is_ready() && pair.terminal.is_ready());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod core;
#[cfg(all(fuzzing, feature = "harness"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
mod lease;
#[cfg(feature = "mutations")]
pub mod mutations;
#[cfg(not(feature = "mutations"))]
mod mutations;
mod offline;
mod operators;
mod reliable;
mod requests;
mod results;
mod telemetry;
mod terminal;
mod update;

use std::fmt;

use posbridge_crypto::{ChannelError, PairingError};
use posbridge_wire::{ErrorMessage, MessageEncodeError};

pub use client::{ClientEvent, ClientSecurity, ClientSession, RequestFailure};
pub use core::{SessionConfig, SessionStats};
pub use lease::{LeaseBoard, SharedLeases};
pub use offline::{OfflineOutcomes, SharedOutcomes};
pub use operators::{AuthError, InvalidOperatorSecret, OperatorPolicy, Operators, totp};
pub use reliable::{ReliabilityConfig, ReliabilityStats};
pub use requests::{RequestError, RequestState, validate as validate_transaction};
pub use results::{
    Claim, Completion, KeyDecision, KeyRecord, MemoryResultStore, ResultStore, SharedResults,
    key_decision, normalise,
};
pub use telemetry::{SharedTelemetry, TelemetryBoard};
pub use terminal::{
    PairingRegistry, SharedApp, TerminalApp, TerminalContext, TerminalEvent, TerminalSession,
    TerminalSettings,
};
pub use update::{SharedUpdates, UpdateStore};

/// Why a session failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// Pairing failed (a wrong code, a lockout, an expired window, ...).
    Pairing(PairingError),
    /// The secure handshake failed or a frame could not be sealed.
    Channel(ChannelError),
    /// The terminal does not know this client (never paired, or revoked): pair again.
    NotPaired,
    /// The peer refused the connection with an error.
    Refused(ErrorMessage),
    /// No protocol version in common.
    UnsupportedVersion {
        /// What the peer offered.
        offered: Vec<u16>,
    },
    /// A frame went unacknowledged through every retransmission: the link is down.
    Unreachable,
    /// Nothing was heard from the peer for 3 heartbeat intervals.
    PeerDead,
    /// The link itself reported that it is gone (a cable pulled, a socket reset, BLE lost).
    LinkClosed,
    /// Pairing and the handshake did not finish in time.
    HandshakeTimeout,
    /// The peer broke the protocol (an undecodable or unexpected message).
    Protocol(&'static str),
    /// A message does not fit in a frame.
    TooLarge {
        /// Its size, sealed.
        len: usize,
        /// The largest payload a frame carries.
        max: usize,
    },
    /// A message could not be encoded.
    Encode(MessageEncodeError),
    /// The session is closed (or closing) and sends nothing more.
    Closed,
    /// No money command is running (or the result is for another idempotency key).
    NothingRunning,
    /// The terminal's result store failed: the result could not be recorded.
    Storage(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pairing(e) => write!(f, "pairing failed: {e}"),
            Self::Channel(e) => write!(f, "{e}"),
            Self::NotPaired => f.write_str(
                "the terminal does not know this device (never paired, or the pairing was removed): pair again",
            ),
            Self::Refused(e) => write!(
                f,
                "the terminal refused: {}{}",
                e.code.description().unwrap_or("error"),
                e.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            Self::UnsupportedVersion { offered } => write!(
                f,
                "no protocol version in common (the peer offered {offered:?}, this side speaks 1): update the app or the terminal"
            ),
            Self::Unreachable => f.write_str(
                "the link stopped delivering (no acknowledgement after every retransmission): check the cable, Bluetooth range or network",
            ),
            Self::PeerDead => f.write_str(
                "the peer went silent for three heartbeat intervals: it may be off, asleep or out of range",
            ),
            Self::LinkClosed => f.write_str(
                "the link closed (cable unplugged, connection reset or Bluetooth lost): reconnect",
            ),
            Self::HandshakeTimeout => f.write_str(
                "connecting took too long (pairing or the secure handshake did not finish)",
            ),
            Self::Protocol(what) => write!(f, "the peer broke the protocol: {what}"),
            Self::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes does not fit in a frame (at most {max}): raise the frame size on both sides"
            ),
            Self::Encode(e) => write!(f, "a message could not be encoded: {e}"),
            Self::Closed => f.write_str("the session is closed"),
            Self::Storage(e) => write!(f, "the terminal's result store failed: {e}"),
            Self::NothingRunning => {
                f.write_str("no money command with that idempotency key is running")
            }
        }
    }
}

impl std::error::Error for SessionError {}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it.
    Local,
    /// The peer closed it.
    Peer,
    /// It failed.
    Failed(SessionError),
}
