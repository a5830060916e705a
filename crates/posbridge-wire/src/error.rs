//! The errors of this layer. Decode errors are small, `Copy`, and say what was wrong and where.

use core::fmt;

/// A frame the decoder rejected. The decoder has already skipped past the bad frame's sync
/// marker when it returns this, so calling it again resynchronises on the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// What was wrong.
    pub kind: FrameErrorKind,
    /// Where the rejected frame started, counted in bytes from the start of the stream this
    /// decoder has seen.
    pub offset: u64,
}

/// What was wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The header's CRC-16 did not match: line noise, a lost byte, or a sync marker that was
    /// really part of a payload.
    HeaderChecksum {
        /// The checksum carried in the header.
        carried: u16,
        /// The checksum computed over the header.
        computed: u16,
    },
    /// The frame trailer's CRC-32C did not match: the payload was damaged in transit.
    PayloadChecksum {
        /// The checksum carried in the trailer.
        carried: u32,
        /// The checksum computed over header and payload.
        computed: u32,
    },
    /// A frame format version this decoder does not speak.
    UnsupportedVersion(u8),
    /// A frame type this decoder does not know.
    UnknownFrameType(u8),
    /// Flag bits that are reserved in this version were set.
    ReservedFlags(u8),
    /// The frame is longer than the configured maximum frame size.
    TooLarge {
        /// The frame's total encoded size.
        size: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The stream ended in the middle of a frame.
    Truncated,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame at stream offset {} rejected: ", self.offset)?;
        match self.kind {
            FrameErrorKind::HeaderChecksum { carried, computed } => write!(
                f,
                "header checksum mismatch (carried {carried:#06x}, computed {computed:#06x}); \
                 the link is corrupting or dropping bytes: check the cable, the baud rate and \
                 interference"
            ),
            FrameErrorKind::PayloadChecksum { carried, computed } => write!(
                f,
                "payload checksum mismatch (carried {carried:#010x}, computed {computed:#010x}); \
                 the link is corrupting data: check the cable, the baud rate and interference"
            ),
            FrameErrorKind::UnsupportedVersion(v) => write!(
                f,
                "frame format version {v} is not supported; update the SDK or the terminal"
            ),
            FrameErrorKind::UnknownFrameType(t) => write!(
                f,
                "unknown frame type {t:#04x}; the peer may be a newer version or not a posbridge terminal"
            ),
            FrameErrorKind::ReservedFlags(bits) => write!(
                f,
                "reserved flags {bits:#04x} set; the peer may be a newer version"
            ),
            FrameErrorKind::TooLarge { size, max } => write!(
                f,
                "{size} bytes exceed the maximum frame size of {max}; set the same \
                 max_frame_size on both sides"
            ),
            FrameErrorKind::Truncated => {
                f.write_str("the stream ended inside the frame (link closed mid-transfer)")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// A frame could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameEncodeError {
    /// The payload does not fit in one frame of the configured maximum size.
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The largest payload the configuration allows.
        max: usize,
    },
}

impl fmt::Display for FrameEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PayloadTooLarge { len, max } => write!(
                f,
                "payload of {len} bytes does not fit in a frame (at most {max}); raise max_frame_size or send less"
            ),
        }
    }
}

impl core::error::Error for FrameEncodeError {}

/// A frame configuration value was out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The maximum frame size must lie in
    /// [`MIN_FRAME_SIZE`](crate::MIN_FRAME_SIZE)..=[`HARD_MAX_FRAME_SIZE`](crate::HARD_MAX_FRAME_SIZE).
    MaxFrameSize(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxFrameSize(n) => write!(
                f,
                "maximum frame size {n} is outside {}..={}",
                crate::MIN_FRAME_SIZE,
                crate::HARD_MAX_FRAME_SIZE
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// A message payload the decoder rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageError {
    /// What was wrong.
    pub kind: MessageErrorKind,
    /// The byte offset, from the start of the message, of the field (or byte) at fault. For a
    /// missing field it is the end of the structure that lacks it.
    pub offset: usize,
}

/// What was wrong with a message. `key` is the field key byte (field number × 2, plus 1 when the
/// field is critical), as in docs/protocol.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageErrorKind {
    /// The payload is empty: there is no message type byte.
    Empty,
    /// A message type this version does not know.
    UnknownMessageType(u8),
    /// A field header or value runs past the end of its enclosing structure.
    Truncated,
    /// A length is not in its shortest form.
    NonMinimalLength,
    /// Key 0 and 1 are reserved.
    ReservedKey,
    /// Fields must come in ascending key order.
    OutOfOrder {
        /// The key that came too late.
        key: u8,
    },
    /// A field that may appear once appeared again.
    Duplicate {
        /// The repeated key.
        key: u8,
    },
    /// A critical field this version does not understand: the sender relies on it, so the
    /// message cannot be processed.
    UnknownCritical {
        /// The unknown key.
        key: u8,
    },
    /// A required field is absent.
    Missing {
        /// The absent key.
        key: u8,
    },
    /// A fixed-size field has the wrong length.
    InvalidLength {
        /// The field's key.
        key: u8,
    },
    /// The value is not one this field allows (out of range, unknown code, inconsistent with
    /// other fields).
    InvalidValue {
        /// The field's key.
        key: u8,
    },
    /// An integer is not in canonical form (leading zero bytes, or a flag with a value).
    NonCanonical {
        /// The field's key.
        key: u8,
    },
    /// A text field is not valid UTF-8.
    InvalidUtf8 {
        /// The field's key.
        key: u8,
    },
    /// A field is longer than its limit.
    TooLong {
        /// The field's key.
        key: u8,
        /// The limit in bytes.
        max: u16,
    },
    /// A repeated field or list has more entries than its limit.
    TooMany {
        /// The field's key.
        key: u8,
        /// The limit.
        max: u16,
    },
    /// A card number that is not masked, or malformed.
    UnmaskedPan {
        /// The field's key.
        key: u8,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MessageErrorKind as K;
        match self.kind {
            K::Empty => f.write_str("empty message"),
            K::UnknownMessageType(t) => write!(f, "unknown message type {t:#04x}"),
            K::Truncated => f.write_str("field runs past the end of the message"),
            K::NonMinimalLength => f.write_str("field length not in shortest form"),
            K::ReservedKey => f.write_str("reserved field key"),
            K::OutOfOrder { key } => write!(f, "field {key:#04x} out of order"),
            K::Duplicate { key } => write!(f, "field {key:#04x} repeated"),
            K::UnknownCritical { key } => write!(
                f,
                "critical field {key:#04x} not understood; the peer needs a newer SDK version"
            ),
            K::Missing { key } => write!(f, "required field {key:#04x} missing"),
            K::InvalidLength { key } => write!(f, "field {key:#04x} has the wrong length"),
            K::InvalidValue { key } => write!(f, "field {key:#04x} has an invalid value"),
            K::NonCanonical { key } => write!(f, "field {key:#04x} not in canonical form"),
            K::InvalidUtf8 { key } => write!(f, "field {key:#04x} is not valid UTF-8"),
            K::TooLong { key, max } => write!(f, "field {key:#04x} longer than {max} bytes"),
            K::TooMany { key, max } => write!(f, "field {key:#04x} has more than {max} entries"),
            K::UnmaskedPan { key } => write!(
                f,
                "field {key:#04x} is not a masked card number (first 6 and last 4 digits only)"
            ),
        }?;
        write!(f, " at message offset {}", self.offset)
    }
}

impl core::error::Error for MessageError {}

/// A message could not be encoded because a value breaks a limit the decoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageEncodeError {
    /// A text or byte field is longer than its limit.
    TooLong {
        /// The field's key.
        key: u8,
        /// Its length.
        len: usize,
        /// The limit.
        max: u16,
    },
    /// A list has more entries than its limit.
    TooMany {
        /// The field's key.
        key: u8,
        /// Its length.
        len: usize,
        /// The limit.
        max: u16,
    },
    /// A value is inconsistent (for example a partial approval that approves the full amount).
    InvalidValue {
        /// The field's key.
        key: u8,
    },
}

impl fmt::Display for MessageEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooLong { key, len, max } => {
                write!(
                    f,
                    "field {key:#04x} is {len} bytes long; the limit is {max}"
                )
            }
            Self::TooMany { key, len, max } => {
                write!(f, "field {key:#04x} has {len} entries; the limit is {max}")
            }
            Self::InvalidValue { key } => write!(f, "field {key:#04x} has an inconsistent value"),
        }
    }
}

impl core::error::Error for MessageEncodeError {}
