//! The wire format of posbridge's native protocol: frames and typed messages.
//!
//! This is the bottom layer of posbridge. It does no IO, reads no clock and spawns nothing;
//! it is `#![no_std]` with `alloc` (the default `std` feature only turns on runtime CPU
//! detection for the CRC-32C kernel), so the same code runs in an app, a terminal's firmware and
//! a fuzzer. `posbridge-crypto` encrypts message payloads, `posbridge-session` drives the
//! exchange, and the transports carry the bytes.
//!
//! * [`FrameCodec`] turns bytes from any link — split anywhere, damaged or not — into
//!   checksummed [`Frame`]s and back, resynchronising after damage.
//! * [`Message`] is every message of the protocol, with a strict, deterministic and
//!   forward-compatible field encoding.
//!
//! The byte-level specification, with test vectors, is `docs/protocol.md`.
//!
//! ```
//! use bytes::BytesMut;
//! use posbridge_wire::*;
//!
//! let sale = TransactionRequest::new(
//!     RequestId::from_u128(1),
//!     IdempotencyKey::from_u128(2),
//!     TransactionCommand::Sale {
//!         amount: Amount::new(1250, Currency::EUR),
//!         tip: None,
//!         cashback: None,
//!     },
//! );
//! let codec = FrameCodec::new();
//! let mut wire = BytesMut::new();
//! let payload = Message::from(sale.clone()).to_bytes()?;
//! codec.encode(&Frame::data(0, payload.freeze()), &mut wire)?;
//!
//! let frame = FrameCodec::new().decode(&mut wire)?.expect("a whole frame");
//! assert_eq!(Message::decode(&frame.payload)?, Message::Transaction(sale));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `std` (default), and `tokio-codec` for `tokio_util::codec::{Decoder, Encoder}` on
//! [`FrameCodec`].

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod crc;
mod error;
mod frame;
mod message;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
mod tlv;
mod types;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub use error::{
    ConfigError, FrameEncodeError, FrameError, FrameErrorKind, MessageEncodeError, MessageError,
    MessageErrorKind,
};
#[cfg(feature = "tokio-codec")]
pub use frame::CodecError;
pub use frame::{
    DEFAULT_MAX_FRAME_SIZE, DecoderStats, FRAME_OVERHEAD, Frame, FrameCodec, FrameConfig,
    FrameFlags, FrameType, HARD_MAX_FRAME_SIZE, HEADER_LEN, MIN_FRAME_SIZE, SYNC, TRAILER_LEN,
    VERSION, header_bytes,
};
pub use message::*;
pub use types::civil;
pub use types::{
    Amount, ClientId, Currency, DeclineReason, ErrorCode, Feature, FeatureSet, IdempotencyKey,
    InvalidCurrency, KindSet, MaskedPan, MaskedPanError, MethodSet, Outcome, ParseIdError,
    ParseKeyError, PaymentMethod, ProgressStage, PublicKey, ReceiptCopy, RequestId,
    TelemetryChange, TelemetryChangeSet, TerminalId, Timestamp, TransactionId, TransactionKind,
    snake_name,
};

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The native protocol versions this crate speaks, most preferred first: 2 is protocol 1.1
/// (telemetry and its pushed changes), 1 is protocol 1.0. See docs/protocol.md §3.1.
pub const PROTOCOL_VERSIONS: &[u16] = &[VERSION_1_1, VERSION_1_0];

/// Protocol 1.0 on the wire (its version number is 1).
pub const VERSION_1_0: u16 = 1;

/// The name of a protocol version number (`"1.0"` for 1, `"1.1"` for 2); `None` for numbers this
/// crate does not know.
pub const fn version_name(version: u16) -> Option<&'static str> {
    match version {
        VERSION_1_0 => Some("1.0"),
        VERSION_1_1 => Some("1.1"),
        _ => None,
    }
}

/// Protocol 1.1 on the wire (its version number is 2): everything of 1.0, plus the messages and
/// fields marked 1.1 in docs/protocol.md. Never sent to a session that agreed on 1.0.
pub const VERSION_1_1: u16 = 2;
