//! ZVT — the protocol between cash registers and card terminals of the German market and much of
//! the EU (ZVT association, revision 13.x) — for posbridge. This crate is the codec, sans-IO:
//!
//! * [`Apdu`]: class, instruction, length (one byte, or `FF` and two bytes little-endian) and
//!   data; [`ApduStream`] reassembles APDUs from TCP by their length, never by read boundaries.
//! * [`serial`]: `DLE STX` … `DLE ETX` framing with `DLE` doubling and the CRC-16 (reflected
//!   0x8408, initial 0) over the APDU and `ETX`, low byte first; `ACK`/`NAK`.
//! * [`bmp`]: the BMP fields — BCD amounts in cents, currency, trace, date and time, the masked
//!   PAN (as a string with `*`, never a number), the TLV container.
//! * [`Command`]: the typed commands of both directions.
//!
//! ```
//! use posbridge_zvt::{Command, serial};
//!
//! // The specification's serial Authorization of EUR 110.00.
//! let apdu = Command::Authorization { amount: 11_000, currency: Some(978), extra: vec![] }.to_apdu()?;
//! let frame = serial::encode_frame(&apdu)?;
//! assert_eq!(
//!     frame,
//!     [0x10, 0x02, 0x06, 0x01, 0x0A, 0x04, 0x00, 0x00, 0x00, 0x01, 0x10, 0x10, 0x00, 0x49,
//!      0x09, 0x78, 0x10, 0x03, 0xF2, 0xFF]
//! );
//! # Ok::<(), posbridge_zvt::ZvtError>(())
//! ```
//!
//! With feature `io` (default), over posbridge links under tokio:
//!
//! * [`client::ZvtTerminal`]: the cash register's side, a `posbridge::PaymentTerminal` with a
//!   journal — sale, refund, reversal, pre-authorisation, book total, pre-auth reversal,
//!   end-of-day, abort, status, repeat receipt; intermediate states as progress; receipts
//!   from print lines and text blocks; recovery of a lost result from the terminal's last
//!   transaction.
//! * [`server::ZvtServer`]: the terminal's side in front of any `PaymentTerminal` (the
//!   simulator's ZVT mode; a gateway from ZVT registers to native terminals).
//! * [`transport::ZvtLink`]: APDUs on TCP, `DLE STX` frames with `ACK`/`NAK` on serial lines.

mod apdu;
pub mod bmp;
#[cfg(feature = "io")]
pub mod client;
#[cfg(feature = "io")]
pub mod codes;
mod command;
pub mod exchange;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod line;
pub mod serial;
#[cfg(feature = "io")]
pub mod server;
#[cfg(feature = "io")]
mod status;
#[cfg(feature = "io")]
pub mod transport;

use std::fmt;

pub use apdu::{Apdu, ApduStream, MAX_DATA};
pub use command::{Command, amount_of, receipt_of};
#[cfg(feature = "io")]
pub use status::TerminalStatus;

/// Why bytes are not valid ZVT.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZvtError {
    /// The bytes end before the APDU or field does.
    Truncated,
    /// Bytes follow the APDU.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Longer than the format allows.
    TooLong {
        /// The length.
        len: usize,
    },
    /// A serial frame's checksum does not match (answer NAK).
    Checksum {
        /// The checksum the frame carries.
        carried: u16,
        /// The checksum of its bytes.
        computed: u16,
    },
    /// A `DLE` inside a serial frame followed by something other than `DLE` or `ETX`.
    BadEscape,
    /// A byte that is not two BCD digits.
    BadBcd(u8),
    /// A length byte that is not an `Fx` nibble (LLVAR) or a BER length (TLV).
    BadLength(u8),
    /// A BMP tag this codec does not know the length of.
    UnknownBmp(u8),
    /// A number does not fit its BCD field.
    ValueTooLarge {
        /// The value.
        value: u64,
        /// The field's bytes.
        bytes: usize,
    },
    /// A card number with characters other than digits and `*`.
    BadPan,
    /// A required field is missing from a command.
    Missing(&'static str),
    /// The APDU is not a command this codec knows.
    UnknownCommand([u8; 2]),
    /// The command's fields would be read back as something else (a registration whose
    /// service byte would be taken for a currency): refused rather than sent.
    Ambiguous,
}

impl fmt::Display for ZvtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("ZVT data cut short"),
            Self::TrailingBytes { extra } => write!(f, "{extra} bytes after the ZVT APDU"),
            Self::TooLong { len } => write!(f, "ZVT field of {len} bytes is too long"),
            Self::Checksum { carried, computed } => write!(
                f,
                "ZVT frame checksum {carried:04x} does not match its bytes ({computed:04x})"
            ),
            Self::BadEscape => f.write_str("a DLE inside a ZVT frame not followed by DLE or ETX"),
            Self::BadBcd(b) => write!(f, "byte {b:02x} is not BCD"),
            Self::BadLength(b) => write!(f, "byte {b:02x} is not a ZVT length"),
            Self::UnknownBmp(t) => write!(f, "unknown ZVT BMP {t:02x}"),
            Self::ValueTooLarge { value, bytes } => {
                write!(f, "{value} does not fit in {bytes} BCD bytes")
            }
            Self::BadPan => f.write_str("a card number may hold digits and '*' only"),
            Self::Missing(what) => write!(f, "the ZVT command lacks its {what}"),
            Self::UnknownCommand([c, i]) => write!(f, "unknown ZVT command {c:02x} {i:02x}"),
            Self::Ambiguous => {
                f.write_str("the ZVT command's fields would be read back as something else")
            }
        }
    }
}

impl std::error::Error for ZvtError {}
