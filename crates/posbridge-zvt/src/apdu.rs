//! APDUs: class, instruction, length, data. A length byte of `FF` is followed by the length in
//! two bytes, little-endian (for data of 255 bytes or more).

use bytes::{Buf, BytesMut};

use crate::ZvtError;

/// The largest APDU data length the extended form can express.
pub const MAX_DATA: usize = 0xFFFF;

/// One ZVT APDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Apdu {
    /// The class byte (`06` commands, `04` status, `80`/`84` acknowledgements, ...).
    pub class: u8,
    /// The instruction byte.
    pub instr: u8,
    /// The data (BMP fields, a TLV container, ...).
    pub data: Vec<u8>,
}

impl Apdu {
    /// An APDU with `data`.
    pub fn new(class: u8, instr: u8, data: impl Into<Vec<u8>>) -> Self {
        Self {
            class,
            instr,
            data: data.into(),
        }
    }

    /// The positive acknowledgement `80 00 00`.
    pub fn ack() -> Self {
        Self::new(0x80, 0x00, Vec::new())
    }

    /// A negative acknowledgement `84 xx 00` with error code `code`.
    pub fn nak(code: u8) -> Self {
        Self::new(0x84, code, Vec::new())
    }

    /// The command's two-byte code (`[class, instr]`).
    pub fn code(&self) -> [u8; 2] {
        [self.class, self.instr]
    }

    /// The encoded length of this APDU.
    pub fn encoded_len(&self) -> usize {
        2 + if self.data.len() < 0xFF { 1 } else { 3 } + self.data.len()
    }

    /// Appends the encoding to `out`. Data longer than [`MAX_DATA`] is an error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ZvtError> {
        if self.data.len() > MAX_DATA {
            return Err(ZvtError::TooLong {
                len: self.data.len(),
            });
        }
        out.reserve(self.encoded_len());
        out.push(self.class);
        out.push(self.instr);
        if self.data.len() < 0xFF {
            out.push(self.data.len() as u8);
        } else {
            out.push(0xFF);
            out.extend_from_slice(&(self.data.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(&self.data);
        Ok(())
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ZvtError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes one APDU from the front of `src`: `Ok(None)` if more bytes are needed,
    /// otherwise the APDU and how many bytes it took.
    pub fn parse(src: &[u8]) -> Result<Option<(Self, usize)>, ZvtError> {
        if src.len() < 3 {
            return Ok(None);
        }
        let (len, header) = if src[2] == 0xFF {
            if src.len() < 5 {
                return Ok(None);
            }
            (usize::from(u16::from_le_bytes([src[3], src[4]])), 5)
        } else {
            (usize::from(src[2]), 3)
        };
        let total = header + len;
        if src.len() < total {
            return Ok(None);
        }
        Ok(Some((
            Self::new(src[0], src[1], &src[header..total]),
            total,
        )))
    }

    /// Decodes exactly one APDU from `bytes` (no more, no less).
    pub fn decode(bytes: &[u8]) -> Result<Self, ZvtError> {
        match Self::parse(bytes)? {
            Some((apdu, n)) if n == bytes.len() => Ok(apdu),
            Some((_, n)) => Err(ZvtError::TrailingBytes {
                extra: bytes.len() - n,
            }),
            None => Err(ZvtError::Truncated),
        }
    }
}

/// Reassembles APDUs from a byte stream (TCP): by their length, never by read boundaries.
#[derive(Debug, Default)]
pub struct ApduStream {
    _private: (),
}

impl ApduStream {
    /// A decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next whole APDU from the front of `buf` (its bytes removed), or `None` until more
    /// arrive.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Apdu>, ZvtError> {
        match Apdu::parse(buf)? {
            Some((apdu, n)) => {
                buf.advance(n);
                Ok(Some(apdu))
            }
            None => Ok(None),
        }
    }
}
