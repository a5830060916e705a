//! Frames: the unit the link carries. See docs/protocol.md, "Frames".
//!
//! ```text
//! offset  size  field
//!      0     2  sync marker A5 C3
//!      2     1  version (1)
//!      3     1  frame type
//!      4     1  flags
//!      5     4  sequence number (big-endian)
//!      9     2  payload length (big-endian)
//!     11     2  header checksum: CRC-16/IBM-3740 over bytes 0..11 (big-endian)
//!     13     n  payload
//!   13+n     4  trailer: CRC-32C over bytes 0..13+n (big-endian)
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::crc::{crc16, crc32c};
use crate::error::{ConfigError, FrameEncodeError, FrameError, FrameErrorKind};

/// The two bytes every frame starts with; the decoder searches for them to resynchronise.
pub const SYNC: [u8; 2] = [0xA5, 0xC3];
/// The frame format version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 13;
/// Bytes after the payload.
pub const TRAILER_LEN: usize = 4;
/// Header plus trailer: what a frame adds to its payload.
pub const FRAME_OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;
/// The default maximum encoded frame size (header, payload and trailer).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4096;
/// The largest maximum frame size that may be configured.
pub const HARD_MAX_FRAME_SIZE: usize = 65536;
/// The smallest maximum frame size that may be configured.
pub const MIN_FRAME_SIZE: usize = 64;

/// What a frame is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameType {
    /// Carries one message (see [`Message`](crate::Message)).
    Data = 0x01,
    /// Acknowledges data frames up to and including the sequence number.
    Ack = 0x02,
    /// Asks for retransmission from the sequence number on.
    Nak = 0x03,
    /// Link liveness probe; the payload is echoed in the pong.
    Ping = 0x04,
    /// Answer to a ping, with the ping's payload.
    Pong = 0x05,
    /// Pairing or secure-channel handshake message.
    Handshake = 0x06,
    /// Orderly close; the payload may carry a reason.
    Close = 0x07,
}

impl FrameType {
    /// Every frame type, in code order.
    pub const ALL: &'static [Self] = &[
        Self::Data,
        Self::Ack,
        Self::Nak,
        Self::Ping,
        Self::Pong,
        Self::Handshake,
        Self::Close,
    ];

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The frame type for a wire code.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => Self::Data,
            0x02 => Self::Ack,
            0x03 => Self::Nak,
            0x04 => Self::Ping,
            0x05 => Self::Pong,
            0x06 => Self::Handshake,
            0x07 => Self::Close,
            _ => return None,
        })
    }
}

/// Frame flag bits. Only [`FrameFlags::ENCRYPTED`] is defined; the other bits are reserved and
/// a frame that sets them is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The payload is ciphertext of the secure channel (the header is its associated data).
    pub const ENCRYPTED: Self = Self(0x01);
    const DEFINED: u8 = 0x01;

    /// The flags for a wire byte, or the reserved bits that are set.
    pub const fn from_bits(bits: u8) -> Result<Self, u8> {
        if bits & !Self::DEFINED != 0 {
            Err(bits & !Self::DEFINED)
        } else {
            Ok(Self(bits))
        }
    }

    /// The wire byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the payload is encrypted.
    pub const fn is_encrypted(self) -> bool {
        self.0 & Self::ENCRYPTED.0 != 0
    }
}

/// One decoded (or to be encoded) frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame type.
    pub frame_type: FrameType,
    /// The flags.
    pub flags: FrameFlags,
    /// The sequence number (for acks and naks: the sequence number acknowledged or asked for).
    pub seq: u32,
    /// The payload: a zero-copy slice of the decoder's buffer.
    pub payload: Bytes,
}

impl Frame {
    /// A data frame.
    pub fn data(seq: u32, payload: impl Into<Bytes>) -> Self {
        Self::new(FrameType::Data, seq, payload)
    }

    /// A frame of any type without flags.
    pub fn new(frame_type: FrameType, seq: u32, payload: impl Into<Bytes>) -> Self {
        Self {
            frame_type,
            flags: FrameFlags::NONE,
            seq,
            payload: payload.into(),
        }
    }

    /// The size of this frame once encoded.
    pub fn encoded_len(&self) -> usize {
        FRAME_OVERHEAD + self.payload.len()
    }
}

/// Frame limits, shared by encoder and decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    max_frame_size: usize,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameConfig {
    /// The defaults: a maximum frame size of [`DEFAULT_MAX_FRAME_SIZE`] (4 KiB).
    pub const fn new() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// Sets the maximum encoded frame size, header and trailer included:
    /// [`MIN_FRAME_SIZE`]..=[`HARD_MAX_FRAME_SIZE`]; default [`DEFAULT_MAX_FRAME_SIZE`].
    /// Both peers should use the same value (the hello exchange announces it).
    pub fn set_max_frame_size(&mut self, size: usize) -> Result<&mut Self, ConfigError> {
        if !(MIN_FRAME_SIZE..=HARD_MAX_FRAME_SIZE).contains(&size) {
            return Err(ConfigError::MaxFrameSize(size));
        }
        self.max_frame_size = size;
        Ok(self)
    }

    /// The maximum encoded frame size.
    pub const fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The largest payload one frame can carry.
    pub const fn max_payload(&self) -> usize {
        self.max_frame_size - FRAME_OVERHEAD
    }
}

/// What the decoder has seen, for diagnostics ("data that does not match").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames decoded intact.
    pub frames: u64,
    /// Frames rejected (each one also returned as a [`FrameError`]).
    pub errors: u64,
    /// Bytes skipped while searching for a sync marker (line noise, or the rest of rejected
    /// frames).
    pub skipped_bytes: u64,
}

/// The sans-IO frame codec: [`decode`](Self::decode) frames out of a buffer the caller fills from
/// its link, [`encode`](Self::encode) frames into a buffer the caller sends.
///
/// The decoder never panics and never needs more than one maximum-size frame buffered: it drops
/// bytes that cannot start a frame as soon as it sees them. After a bad frame it returns a
/// [`FrameError`], drops the bad frame's sync marker, and on the next call resynchronises on the
/// next sync marker; every frame it returns has passed both checksums.
///
/// ```
/// use bytes::BytesMut;
/// use posbridge_wire::{Frame, FrameCodec};
///
/// let mut codec = FrameCodec::new();
/// let mut wire = BytesMut::new();
/// codec.encode(&Frame::data(7, &b"hello"[..]), &mut wire)?;
///
/// // The link may deliver the bytes in any pieces.
/// let mut rx = BytesMut::new();
/// rx.extend_from_slice(&wire[..5]);
/// assert_eq!(codec.decode(&mut rx)?, None);
/// rx.extend_from_slice(&wire[5..]);
/// let frame = codec.decode(&mut rx)?.expect("a whole frame");
/// assert_eq!((frame.seq, &frame.payload[..]), (7, &b"hello"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameCodec {
    config: FrameConfig,
    /// Stream offset of `src[0]` at the start of the current `decode` call.
    consumed: u64,
    stats: DecoderStats,
}

/// Where the sync marker starts in `buf`, or where a partial marker at the very end starts.
fn find_sync(buf: &[u8]) -> Result<usize, usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == SYNC[0]) {
        let at = from + i;
        match buf.get(at + 1) {
            Some(&b) if b == SYNC[1] => return Ok(at),
            Some(_) => from = at + 1,
            None => return Err(at),
        }
    }
    Err(buf.len())
}

impl FrameCodec {
    /// A codec with the default [`FrameConfig`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec with the given limits.
    pub fn with_config(config: FrameConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &FrameConfig {
        &self.config
    }

    /// Changes the limits (for example after the hello exchange agreed a frame size).
    pub fn set_config(&mut self, config: FrameConfig) {
        self.config = config;
    }

    /// Counters of what the decoder has seen.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// How many stream bytes the decoder has consumed (decoded or skipped).
    pub fn stream_offset(&self) -> u64 {
        self.consumed
    }

    fn skip(&mut self, src: &mut BytesMut, n: usize) {
        src.advance(n);
        self.consumed += n as u64;
        self.stats.skipped_bytes += n as u64;
    }

    fn reject(&mut self, src: &mut BytesMut, kind: FrameErrorKind) -> FrameError {
        let offset = self.consumed;
        self.stats.errors += 1;
        // Drop the sync marker only: the bytes after it may hold the next intact frame (a
        // corrupted length must not swallow it).
        self.skip(src, SYNC.len());
        FrameError { kind, offset }
    }

    /// Decodes the next frame from the front of `src`.
    ///
    /// * `Ok(Some(frame))`: a frame that passed both checksums; its bytes are removed from `src`
    ///   and its payload is a zero-copy slice of them.
    /// * `Ok(None)`: more bytes are needed. Bytes that cannot start a frame have been removed.
    /// * `Err(e)`: a bad frame starts at `e.offset`. Its sync marker has been removed; call
    ///   again to continue with the next frame.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match find_sync(src) {
            Ok(0) => {}
            Ok(at) => self.skip(src, at),
            Err(partial) => {
                self.skip(src, partial);
                return Ok(None);
            }
        }
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let h = &src[..HEADER_LEN];
        let carried = u16::from_be_bytes([h[11], h[12]]);
        let computed = crc16(&h[..11]);
        if carried != computed {
            return Err(self.reject(src, FrameErrorKind::HeaderChecksum { carried, computed }));
        }
        if h[2] != VERSION {
            let v = h[2];
            return Err(self.reject(src, FrameErrorKind::UnsupportedVersion(v)));
        }
        let Some(frame_type) = FrameType::from_code(h[3]) else {
            let t = h[3];
            return Err(self.reject(src, FrameErrorKind::UnknownFrameType(t)));
        };
        let flags = match FrameFlags::from_bits(h[4]) {
            Ok(flags) => flags,
            Err(bits) => return Err(self.reject(src, FrameErrorKind::ReservedFlags(bits))),
        };
        let seq = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
        let len = usize::from(u16::from_be_bytes([h[9], h[10]]));
        let total = FRAME_OVERHEAD + len;
        if total > self.config.max_frame_size {
            let kind = FrameErrorKind::TooLarge {
                size: total as u32,
                max: self.config.max_frame_size as u32,
            };
            return Err(self.reject(src, kind));
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let body = HEADER_LEN + len;
        let t = &src[body..total];
        let carried = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        let computed = crc32c(&src[..body]);
        if carried != computed {
            return Err(self.reject(src, FrameErrorKind::PayloadChecksum { carried, computed }));
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(len).freeze();
        src.advance(TRAILER_LEN);
        self.consumed += total as u64;
        self.stats.frames += 1;
        Ok(Some(Frame {
            frame_type,
            flags,
            seq,
            payload,
        }))
    }

    /// Called when the stream has ended: decodes what is left. A frame cut short is reported as
    /// [`FrameErrorKind::Truncated`]; like any bad frame, only its sync marker is dropped, so a
    /// later call still finds intact frames in the rest of the buffer (a false header whose
    /// length ran past the end must not take them with it). Returns `Ok(None)` once the buffer
    /// is empty.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.len() < SYNC.len() => {
                // At most a lone first byte of a sync marker: noise.
                let n = src.len();
                self.skip(src, n);
                Ok(None)
            }
            None => Err(self.reject(src, FrameErrorKind::Truncated)),
        }
    }

    /// Appends `frame`, encoded, to `dst`.
    pub fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameEncodeError> {
        self.encode_parts(
            frame.frame_type,
            frame.flags,
            frame.seq,
            &frame.payload,
            dst,
        )
        .map(drop)
    }

    /// Appends a frame with the given header fields and payload to `dst`, without building a
    /// [`Frame`] first. Returns the encoded length.
    pub fn encode_parts(
        &self,
        frame_type: FrameType,
        flags: FrameFlags,
        seq: u32,
        payload: &[u8],
        dst: &mut BytesMut,
    ) -> Result<usize, FrameEncodeError> {
        let max = self.config.max_payload();
        if payload.len() > max {
            return Err(FrameEncodeError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        let header = header_bytes(frame_type, flags, seq, payload.len() as u16);
        let total = FRAME_OVERHEAD + payload.len();
        dst.reserve(total);
        let start = dst.len();
        dst.extend_from_slice(&header);
        dst.extend_from_slice(payload);
        let crc = crc32c(&dst[start..]);
        dst.put_u32(crc);
        Ok(total)
    }
}

/// The 13 header bytes of a frame, checksum included. The secure channel uses them as the
/// associated data of the payload's encryption.
pub fn header_bytes(
    frame_type: FrameType,
    flags: FrameFlags,
    seq: u32,
    len: u16,
) -> [u8; HEADER_LEN] {
    let s = seq.to_be_bytes();
    let l = len.to_be_bytes();
    let mut h = [
        SYNC[0],
        SYNC[1],
        VERSION,
        frame_type.code(),
        flags.bits(),
        s[0],
        s[1],
        s[2],
        s[3],
        l[0],
        l[1],
        0,
        0,
    ];
    let c = crc16(&h[..11]).to_be_bytes();
    h[11] = c[0];
    h[12] = c[1];
    h
}

#[cfg(feature = "tokio-codec")]
mod tokio_impl {
    use super::*;
    use tokio_util::codec::{Decoder, Encoder};

    /// Errors of the `tokio_util` codec: only IO errors and encoding errors end a stream; damaged
    /// frames are yielded as items so that the stream keeps going after them.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum CodecError {
        /// Reading from or writing to the transport failed.
        Io(std::io::Error),
        /// A frame could not be encoded.
        Encode(FrameEncodeError),
    }

    impl core::fmt::Display for CodecError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Self::Io(e) => write!(f, "transport error: {e}"),
                Self::Encode(e) => e.fmt(f),
            }
        }
    }

    impl std::error::Error for CodecError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                Self::Io(e) => Some(e),
                Self::Encode(e) => Some(e),
            }
        }
    }

    impl From<std::io::Error> for CodecError {
        fn from(e: std::io::Error) -> Self {
            Self::Io(e)
        }
    }

    /// Yields `Ok(frame)` for intact frames and `Err(frame_error)` for damaged ones; the stream
    /// only ends on IO errors or end of stream. (`tokio_util`'s `FramedRead` stops after the
    /// first `Err` a decoder returns, which would turn one flipped bit into a dead connection.)
    impl Decoder for FrameCodec {
        type Item = Result<Frame, FrameError>;
        type Error = CodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
            Ok(Self::decode(self, src).transpose())
        }

        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
            Ok(Self::decode_eof(self, src).transpose())
        }
    }

    impl Encoder<&Frame> for FrameCodec {
        type Error = CodecError;

        fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
            Self::encode(self, frame, dst).map_err(CodecError::Encode)
        }
    }

    impl Encoder<Frame> for FrameCodec {
        type Error = CodecError;

        fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
            Self::encode(self, &frame, dst).map_err(CodecError::Encode)
        }
    }
}

#[cfg(feature = "tokio-codec")]
pub use tokio_impl::CodecError;

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn encode(frame: &Frame) -> BytesMut {
        let mut out = BytesMut::new();
        FrameCodec::new().encode(frame, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_every_type() {
        let mut codec = FrameCodec::new();
        for (i, &t) in FrameType::ALL.iter().enumerate() {
            let mut f = Frame::new(
                t,
                i as u32 * 1000,
                Bytes::from(alloc::vec![i as u8; i * 10]),
            );
            if i % 2 == 0 {
                f.flags = FrameFlags::ENCRYPTED;
            }
            let mut buf = encode(&f);
            assert_eq!(buf.len(), f.encoded_len());
            assert_eq!(codec.decode(&mut buf).unwrap(), Some(f));
            assert!(buf.is_empty());
        }
        assert_eq!(codec.stats().frames, 7);
    }

    #[test]
    fn every_split_point_decodes_the_same() {
        let frames: Vec<Frame> = (0..3)
            .map(|i| Frame::data(i, Bytes::from(alloc::vec![0xA5; 40 + i as usize])))
            .collect();
        let mut wire = BytesMut::new();
        for f in &frames {
            wire.extend_from_slice(&encode(f));
        }
        for split in 0..=wire.len() {
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(piece);
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    out.push(f);
                }
            }
            assert_eq!(out, frames, "split at {split}");
        }
    }

    #[test]
    fn corrupted_length_is_caught_by_the_header_checksum() {
        let mut wire = encode(&Frame::data(1, &b"abc"[..]));
        let good = encode(&Frame::data(2, &b"def"[..]));
        wire[10] ^= 0x80; // payload length 3 -> 131
        wire.extend_from_slice(&good);
        let mut codec = FrameCodec::new();
        let err = codec.decode(&mut wire).unwrap_err();
        assert!(matches!(err.kind, FrameErrorKind::HeaderChecksum { .. }));
        assert_eq!(err.offset, 0);
        let f = codec.decode(&mut wire).unwrap().unwrap();
        assert_eq!(f.seq, 2);
        assert_eq!(codec.stats().skipped_bytes, 20);
    }

    #[test]
    fn payload_damage_is_caught_and_the_next_frame_survives() {
        let mut wire = encode(&Frame::data(1, &b"abcdef"[..]));
        wire[15] ^= 0x01;
        wire.extend_from_slice(&encode(&Frame::data(2, &b"x"[..])));
        let mut codec = FrameCodec::new();
        assert!(matches!(
            codec.decode(&mut wire).unwrap_err().kind,
            FrameErrorKind::PayloadChecksum { .. }
        ));
        assert_eq!(codec.decode(&mut wire).unwrap().unwrap().seq, 2);
    }

    #[test]
    fn oversized_frames_are_rejected_before_buffering() {
        let mut big = FrameConfig::new();
        big.set_max_frame_size(HARD_MAX_FRAME_SIZE).unwrap();
        let sender = FrameCodec::with_config(big);
        let mut wire = BytesMut::new();
        sender
            .encode(
                &Frame::data(1, Bytes::from(alloc::vec![0u8; 5000])),
                &mut wire,
            )
            .unwrap();
        let mut header_only = BytesMut::from(&wire[..HEADER_LEN]);
        let mut codec = FrameCodec::new();
        let err = codec.decode(&mut header_only).unwrap_err();
        assert_eq!(
            err.kind,
            FrameErrorKind::TooLarge {
                size: 5017,
                max: 4096
            }
        );
    }

    #[test]
    fn encoder_refuses_payloads_over_the_limit() {
        let codec = FrameCodec::new();
        let mut out = BytesMut::new();
        let err = codec
            .encode(
                &Frame::data(0, Bytes::from(alloc::vec![0u8; 4080])),
                &mut out,
            )
            .unwrap_err();
        assert_eq!(
            err,
            FrameEncodeError::PayloadTooLarge {
                len: 4080,
                max: 4079
            }
        );
        assert!(out.is_empty());
        codec
            .encode(
                &Frame::data(0, Bytes::from(alloc::vec![0u8; 4079])),
                &mut out,
            )
            .unwrap();
        assert_eq!(out.len(), 4096);
    }

    #[test]
    fn config_bounds() {
        let mut c = FrameConfig::new();
        assert_eq!(
            c.set_max_frame_size(63).unwrap_err(),
            ConfigError::MaxFrameSize(63)
        );
        assert_eq!(
            c.set_max_frame_size(65537).unwrap_err(),
            ConfigError::MaxFrameSize(65537)
        );
        assert_eq!(c.set_max_frame_size(64).unwrap().max_payload(), 47);
        assert_eq!(c.set_max_frame_size(65536).unwrap().max_payload(), 65519);
    }

    #[test]
    fn garbage_is_dropped_as_it_arrives() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&[0u8, 1, 2, 0xA5, 0x00, 0xA5][..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        // Only the trailing 0xA5, which may begin a sync marker, is kept.
        assert_eq!(&buf[..], &[0xA5]);
        assert_eq!(codec.stats().skipped_bytes, 5);
        buf.extend_from_slice(&encode(&Frame::data(9, &b"z"[..]))[1..]);
        // The kept A5 plus the frame minus its first byte: a whole frame again.
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().seq, 9);
    }

    #[test]
    fn unknown_version_type_and_flags_are_rejected() {
        for (at, value, expect) in [
            (2usize, 2u8, FrameErrorKind::UnsupportedVersion(2)),
            (3, 0x7F, FrameErrorKind::UnknownFrameType(0x7F)),
            (4, 0x82, FrameErrorKind::ReservedFlags(0x82)),
        ] {
            let mut wire = encode(&Frame::data(1, &b"q"[..]));
            wire[at] = value;
            let c = crc16(&wire[..11]).to_be_bytes();
            wire[11] = c[0];
            wire[12] = c[1];
            assert_eq!(
                FrameCodec::new().decode(&mut wire).unwrap_err().kind,
                expect
            );
        }
    }

    #[test]
    fn eof_inside_a_frame_is_reported_once() {
        let wire = encode(&Frame::data(1, &b"abcdef"[..]));
        let mut buf = BytesMut::from(&wire[..10]);
        let mut codec = FrameCodec::new();
        assert_eq!(
            codec.decode_eof(&mut buf).unwrap_err().kind,
            FrameErrorKind::Truncated
        );
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));
        assert!(buf.is_empty());
        // A cut-off frame followed by a whole one: the whole one survives the end of stream.
        let mut buf = BytesMut::from(&wire[..wire.len() - 1]);
        buf[9..11].copy_from_slice(&[0, 200]);
        let c = crc16(&buf[..11]).to_be_bytes();
        buf[11..13].copy_from_slice(&c);
        buf.extend_from_slice(&wire);
        let mut codec = FrameCodec::new();
        assert_eq!(
            codec.decode_eof(&mut buf).unwrap_err().kind,
            FrameErrorKind::Truncated
        );
        assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap().seq, 1);
        assert_eq!(codec.decode_eof(&mut buf), Ok(None));
    }
}
