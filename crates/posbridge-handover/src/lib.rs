//! NFC and QR handover: how a phone learns, from one tap on the terminal's NFC tag or one scan of
//! the QR code on its screen, which terminal it is, how to reach it (TCP host and port, BLE
//! address or name, USB ids, TLS certificate pin) and — for pairing without typing a code — a
//! 128-bit pairing secret.
//!
//! The same [`Handover`] travels two ways:
//!
//! * as an **NFC Forum NDEF message** ([`Handover::to_ndef`], [`Handover::from_ndef`]): one record,
//!   MIME type `application/vnd.posbridge.handover` or external type `posbridge.dev:handover`,
//!   with a compact binary payload; short and long records are read, chunked records are refused;
//! * as a **`posbridge://pair?...` URI** for a QR code ([`Handover::to_uri`],
//!   [`Handover::from_uri`]).
//!
//! Formats byte by byte: docs/transports.md, "NFC and QR handover". Sits beside the links: it
//! only describes how to reach a terminal; opening the link is the transport crates' job.
//!
//! ```
//! use posbridge_handover::{Handover, NdefRecordKind, PairingSecret, TcpEndpoint};
//!
//! let mut h = Handover::new([0x42; 16]);
//! h.name = Some("Counter 2".into());
//! h.tcp.push(TcpEndpoint { host: "192.168.1.20".into(), port: 20007 });
//! h.pairing_secret = Some(PairingSecret::from_bytes([7; 16]));
//!
//! let tag = h.to_ndef(NdefRecordKind::Mime)?;
//! assert_eq!(Handover::from_ndef(&tag)?, h);
//! let qr = h.to_uri();
//! assert!(qr.starts_with("posbridge://pair?v=1&t=42424242"));
//! assert_eq!(Handover::from_uri(&qr)?, h);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ndef;
mod uri;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

use std::fmt;

pub use ndef::{
    NdefError, NdefRecord, NdefRecordKind, Tnf, encode_ndef_message, parse_ndef_message,
};
pub use uri::UriError;

/// The MIME type of a handover record.
pub const MIME_TYPE: &str = "application/vnd.posbridge.handover";
/// The NFC Forum external type of a handover record.
pub const EXTERNAL_TYPE: &str = "posbridge.dev:handover";
/// The payload format version this crate writes and reads.
pub const VERSION: u8 = 1;

/// A TCP address of the terminal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpEndpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// A USB identity of the terminal (for a cable connection).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsbTarget {
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
    /// Serial number, when it tells terminals of the same model apart.
    pub serial_number: Option<String>,
}

/// A 128-bit secret for pairing without typing a code. Never shown by `Debug`; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingSecret([u8; 16]);

impl PairingSecret {
    /// Wraps 16 secret bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
}

impl Drop for PairingSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for PairingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingSecret(<redacted>)")
    }
}

/// Everything a phone needs to reach and pair one terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    /// The terminal's identity (its `TerminalId` in the native protocol).
    pub terminal_id: [u8; 16],
    /// Its display name.
    pub name: Option<String>,
    /// TCP addresses, most preferred first.
    pub tcp: Vec<TcpEndpoint>,
    /// SHA-256 fingerprint of its TLS certificate, to pin.
    pub tls_pin: Option<[u8; 32]>,
    /// Bluetooth LE address (most significant byte first, as printed `AA:BB:...`).
    pub ble_address: Option<[u8; 6]>,
    /// Bluetooth LE advertised name.
    pub ble_name: Option<String>,
    /// USB identities.
    pub usb: Vec<UsbTarget>,
    /// The pairing secret (present only on a tag or screen shown for pairing).
    pub pairing_secret: Option<PairingSecret>,
}

impl Handover {
    /// A handover with only the terminal id.
    pub fn new(terminal_id: [u8; 16]) -> Self {
        Self {
            terminal_id,
            name: None,
            tcp: Vec::new(),
            tls_pin: None,
            ble_address: None,
            ble_name: None,
            usb: Vec::new(),
            pairing_secret: None,
        }
    }
}

/// Limits both encodings enforce.
pub(crate) const MAX_TEXT: usize = 64;
pub(crate) const MAX_LIST: usize = 8;

/// What is wrong with a handover's content (either encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentError {
    /// A payload version this crate does not read.
    UnsupportedVersion(u8),
    /// The terminal id is missing.
    MissingTerminalId,
    /// A field has the wrong length or form.
    InvalidField(&'static str),
    /// A text is longer than 64 bytes, or a list longer than 8 entries.
    TooLong(&'static str),
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion(v) => {
                write!(f, "handover version {v} is not supported; update the app")
            }
            Self::MissingTerminalId => f.write_str("the handover does not name the terminal"),
            Self::InvalidField(name) => write!(f, "invalid {name} in the handover"),
            Self::TooLong(name) => write!(f, "{name} too long in the handover"),
        }
    }
}

impl std::error::Error for ContentError {}

pub(crate) fn check_limits(h: &Handover) -> Result<(), ContentError> {
    let text = |t: &Option<String>, name| match t {
        Some(s) if s.len() > MAX_TEXT => Err(ContentError::TooLong(name)),
        _ => Ok(()),
    };
    text(&h.name, "name")?;
    text(&h.ble_name, "BLE name")?;
    if h.tcp.len() > MAX_LIST || h.usb.len() > MAX_LIST {
        return Err(ContentError::TooLong("address list"));
    }
    for t in &h.tcp {
        if t.host.is_empty() || t.host.len() > MAX_TEXT {
            return Err(ContentError::InvalidField("TCP host"));
        }
    }
    for u in &h.usb {
        text(&u.serial_number, "USB serial number")?;
    }
    Ok(())
}
