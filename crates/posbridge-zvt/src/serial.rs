//! The serial framing: `DLE STX`, the APDU with every `DLE` doubled, `DLE ETX`, and a
//! CRC-16/CCITT (reflected polynomial 0x8408, initial value 0: CRC-16/KERMIT) over the unstuffed
//! APDU and the `ETX`, low byte first. The receiver answers `ACK` (06) or `NAK` (15); the sender
//! retransmits after a NAK.

use bytes::{Buf, BytesMut};

use crate::{Apdu, ZvtError};

/// Data link escape.
pub const DLE: u8 = 0x10;
/// Start of text.
pub const STX: u8 = 0x02;
/// End of text.
pub const ETX: u8 = 0x03;
/// Positive acknowledgement of a frame.
pub const ACK: u8 = 0x06;
/// Negative acknowledgement: send the frame again.
pub const NAK: u8 = 0x15;

/// The longest a frame can be: every byte of the largest APDU escaped, plus framing.
const MAX_FRAME: usize = 2 * (crate::apdu::MAX_DATA + 5) + 6;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_KERMIT);

/// The frame's checksum over the unstuffed APDU bytes and the ETX.
pub fn checksum(apdu: &[u8]) -> u16 {
    let mut d = CRC.digest();
    d.update(apdu);
    d.update(&[ETX]);
    d.finalize()
}

/// Frames `apdu` for a serial line.
pub fn encode_frame(apdu: &Apdu) -> Result<Vec<u8>, ZvtError> {
    let raw = apdu.to_bytes()?;
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8 + 6);
    out.extend_from_slice(&[DLE, STX]);
    for &b in &raw {
        out.push(b);
        if b == DLE {
            out.push(DLE);
        }
    }
    out.extend_from_slice(&[DLE, ETX]);
    out.extend_from_slice(&checksum(&raw).to_le_bytes());
    Ok(out)
}

/// What the serial decoder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialEvent {
    /// A frame with a good checksum: answer [`ACK`].
    Frame(Apdu),
    /// The peer acknowledged our frame.
    Ack,
    /// The peer wants our frame again.
    Nak,
    /// A frame whose checksum (or APDU) is wrong: answer [`NAK`] so the peer sends it again.
    Damaged(ZvtError),
}

/// Turns bytes from a serial line into frames and acknowledgements, whatever the read sizes.
/// Bytes outside a frame other than ACK and NAK are noise and skipped.
#[derive(Debug, Default)]
pub struct SerialDecoder {
    /// Bytes skipped as noise.
    pub skipped: u64,
    /// Inside a damaged frame: its remaining bytes are skipped up to its end (`DLE ETX` and the
    /// checksum) or the next `DLE STX`, never read as `ACK`/`NAK`.
    resync: bool,
}

impl SerialDecoder {
    /// A decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event from the front of `buf` (its bytes removed), or `None` until more arrive.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<SerialEvent> {
        while self.resync {
            match (*buf.first()?, *buf.get(1)?) {
                (DLE, ETX) => {
                    if buf.len() < 4 {
                        return None;
                    }
                    buf.advance(4);
                    self.skipped += 4;
                    self.resync = false;
                }
                (DLE, STX) => self.resync = false,
                (DLE, DLE) => {
                    buf.advance(2);
                    self.skipped += 2;
                }
                _ => {
                    buf.advance(1);
                    self.skipped += 1;
                }
            }
        }
        loop {
            match *buf.first()? {
                ACK => {
                    buf.advance(1);
                    return Some(SerialEvent::Ack);
                }
                NAK => {
                    buf.advance(1);
                    return Some(SerialEvent::Nak);
                }
                DLE => {
                    if buf.len() < 2 {
                        return None;
                    }
                    if buf[1] != STX {
                        buf.advance(1);
                        self.skipped += 1;
                        continue;
                    }
                    return self.frame(buf);
                }
                _ => {
                    buf.advance(1);
                    self.skipped += 1;
                }
            }
        }
    }

    /// A frame starting at `DLE STX`.
    fn frame(&mut self, buf: &mut BytesMut) -> Option<SerialEvent> {
        let mut raw = Vec::new();
        let mut i = 2;
        loop {
            if i > MAX_FRAME {
                // No end in sight: not a frame. Drop its start and look again.
                buf.advance(2);
                self.resync = true;
                return Some(SerialEvent::Damaged(ZvtError::TooLong { len: i }));
            }
            let b = *buf.get(i)?;
            if b != DLE {
                raw.push(b);
                i += 1;
                continue;
            }
            match *buf.get(i + 1)? {
                DLE => {
                    raw.push(DLE);
                    i += 2;
                }
                ETX => {
                    let crc = u16::from_le_bytes([*buf.get(i + 2)?, *buf.get(i + 3)?]);
                    buf.advance(i + 4);
                    if crc != checksum(&raw) {
                        return Some(SerialEvent::Damaged(ZvtError::Checksum {
                            carried: crc,
                            computed: checksum(&raw),
                        }));
                    }
                    return Some(match Apdu::decode(&raw) {
                        Ok(apdu) => SerialEvent::Frame(apdu),
                        Err(e) => SerialEvent::Damaged(e),
                    });
                }
                STX => {
                    // A new frame starts inside this one: this one is cut short.
                    buf.advance(i);
                    return Some(SerialEvent::Damaged(ZvtError::Truncated));
                }
                _ => {
                    // A lone DLE is not allowed inside a frame: the rest of it is skipped.
                    buf.advance(i + 1);
                    self.resync = true;
                    return Some(SerialEvent::Damaged(ZvtError::BadEscape));
                }
            }
        }
    }
}
