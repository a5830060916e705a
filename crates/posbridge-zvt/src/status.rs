//! The terminal's answer to a status enquiry (`05 01`): a completion (`06 0F`) that starts
//! with the software version — an LLLVAR without a tag — then the terminal's status byte, then
//! a TLV container with its terminal id (`1F44`), device information (`E4`) and its date and
//! time (`34`: `1F0E` date `YYYYMMDD`, `1F0F` time `hhmmss`, BCD). This is how the
//! specification and real terminals (a Feig cVEND's capture among them) answer; it cannot be
//! read as BMP fields.

use posbridge_wire::Timestamp;

use crate::ZvtError;
use crate::bmp::{self, from_bcd};

/// What a terminal says about itself in answer to a status enquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalStatus {
    /// Its software version.
    pub software_version: String,
    /// Its status byte (`00`: ready).
    pub status: u8,
    /// Its terminal id (`1F44`), if it sent one.
    pub terminal_id: Option<u32>,
    /// Its clock (`34`), as it keeps it: local time without a zone, read as if it were UTC.
    pub local_time: Option<Timestamp>,
    /// The TLV container as it came (device information and whatever else it holds).
    pub tlv: Vec<u8>,
}

/// One TLV field: its tag (one or two bytes) and value.
struct Field<'a> {
    tag: u16,
    value: &'a [u8],
}

/// The fields of a TLV container, in order; `None` at the first that cannot be read.
fn fields(mut data: &[u8]) -> impl Iterator<Item = Field<'_>> {
    std::iter::from_fn(move || {
        let (&first, rest) = data.split_first()?;
        let (tag, rest) = if first & 0x1F == 0x1F {
            let (&second, rest) = rest.split_first()?;
            (u16::from(first) << 8 | u16::from(second), rest)
        } else {
            (u16::from(first), rest)
        };
        let (&l0, rest) = rest.split_first()?;
        let (len, rest) = match l0 {
            0..=0x7F => (usize::from(l0), rest),
            0x81 => (usize::from(*rest.first()?), &rest[1..]),
            0x82 if rest.len() >= 2 => (
                usize::from(u16::from_be_bytes([rest[0], rest[1]])),
                &rest[2..],
            ),
            _ => return None,
        };
        let value = rest.get(..len)?;
        data = &rest[len..];
        Some(Field { tag, value })
    })
}

/// A BER length.
fn ber(len: usize) -> Result<Vec<u8>, ZvtError> {
    Ok(match len {
        0..=0x7F => vec![len as u8],
        0x80..=0xFF => vec![0x81, len as u8],
        0x100..=0xFFFF => vec![0x82, (len >> 8) as u8, len as u8],
        _ => return Err(ZvtError::TooLong { len }),
    })
}

impl TerminalStatus {
    /// Reads a status enquiry's completion data.
    pub fn parse(data: &[u8]) -> Result<Self, ZvtError> {
        let mut digits = 0usize;
        for i in 0..3 {
            let b = *data.get(i).ok_or(ZvtError::Truncated)?;
            if b >> 4 != 0xF || b & 0x0F > 9 {
                return Err(ZvtError::BadLength(b));
            }
            digits = digits * 10 + usize::from(b & 0x0F);
        }
        let version = data.get(3..3 + digits).ok_or(ZvtError::Truncated)?;
        let rest = &data[3 + digits..];
        let status = *rest.first().ok_or(ZvtError::Missing("terminal status"))?;
        let tlv = match bmp::parse(&rest[1..])?.as_slice() {
            [] => Vec::new(),
            [bmp::Bmp::Tlv(t)] => t.clone(),
            _ => {
                return Err(ZvtError::Missing(
                    "a TLV container after the terminal status",
                ));
            }
        };
        let mut terminal_id = None;
        let mut local_time = None;
        for f in fields(&tlv) {
            match f.tag {
                0x1F44 => terminal_id = from_bcd(f.value).ok().map(|t| t as u32),
                0x34 => {
                    let (mut date, mut time) = (None, None);
                    for g in fields(f.value) {
                        match g.tag {
                            0x1F0E => date = from_bcd(g.value).ok(),
                            0x1F0F => time = from_bcd(g.value).ok(),
                            _ => {}
                        }
                    }
                    if let (Some(d), Some(t)) = (date, time) {
                        local_time = crate::codes::timestamp_of(
                            (d / 10_000) as i64,
                            (d / 100 % 100) as u32,
                            (d % 100) as u32,
                            t as u32,
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            software_version: String::from_utf8_lossy(version).into_owned(),
            status,
            terminal_id,
            local_time,
            tlv,
        })
    }

    /// The completion data for this status: the version, the status byte, and a TLV container
    /// with the terminal id and the clock (`tlv` is used as it is when it is not empty).
    pub fn encode(&self) -> Result<Vec<u8>, ZvtError> {
        let version = self.software_version.as_bytes();
        let mut out = bmp::var_prefix(version.len(), 3)?;
        out.extend(version);
        out.push(self.status);
        let mut tlv = self.tlv.clone();
        if tlv.is_empty() {
            if let Some(tid) = self.terminal_id {
                tlv.extend([0x1F, 0x44, 0x04]);
                tlv.extend(bmp::bcd(u64::from(tid), 4)?);
            }
            if let Some(t) = self.local_time {
                let (y, m, d, hms) = crate::codes::civil_of(t);
                let mut inner = vec![0x1F, 0x0E, 0x04];
                inner.extend(bmp::bcd(y as u64 * 10_000 + u64::from(m * 100 + d), 4)?);
                inner.extend([0x1F, 0x0F, 0x03]);
                inner.extend(bmp::bcd(u64::from(hms), 3)?);
                tlv.push(0x34);
                tlv.extend(ber(inner.len())?);
                tlv.extend(inner);
            }
        }
        if !tlv.is_empty() {
            out.push(bmp::TLV);
            out.extend(ber(tlv.len())?);
            out.extend(tlv);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.split_whitespace().collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_feig_terminal_s_status_completion_reads() {
        // Software version first, then the status byte and a TLV with the terminal id.
        let mut data = hex("F0 F4 F0");
        data.extend(b"GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26");
        data.extend(hex("00 06 07 1F44 04 52523535"));
        let s = TerminalStatus::parse(&data).unwrap();
        assert_eq!(
            s.software_version,
            "GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26"
        );
        assert_eq!(
            (s.status, s.terminal_id, s.local_time),
            (0, Some(52_523_535), None)
        );
        // Its capture with device information and the clock (2023-04-05 22:56:55 local).
        let mut data = hex("F0 F4 F0");
        data.extend(b"GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26");
        data.extend(hex("00 06 5B 1F44 04 52523535 E4 43 1F40 0A"));
        data.extend(b"cVEND plug");
        data.extend(hex("1F41 28"));
        data.extend(b"GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26");
        data.extend(hex(
            "1F42 04 17FD1E3C 1F43 01 00 34 0D 1F0E 04 20230405 1F0F 03 225655",
        ));
        let s = TerminalStatus::parse(&data).unwrap();
        assert_eq!(s.terminal_id, Some(52_523_535));
        assert_eq!(s.local_time, Some(Timestamp(1_680_735_415_000)));
        assert_eq!(TerminalStatus::parse(&s.encode().unwrap()).unwrap(), s);
    }

    #[test]
    fn a_status_made_here_reads_back() {
        let s = TerminalStatus {
            software_version: "posbridge-sim".into(),
            status: 0,
            terminal_id: Some(52_500_038),
            local_time: Some(Timestamp(1_764_000_000_000)),
            tlv: Vec::new(),
        };
        let back = TerminalStatus::parse(&s.encode().unwrap()).unwrap();
        assert_eq!(
            (
                back.software_version.as_str(),
                back.terminal_id,
                back.local_time
            ),
            (
                "posbridge-sim",
                Some(52_500_038),
                Some(Timestamp(1_764_000_000_000))
            )
        );
        assert!(TerminalStatus::parse(&[0xF0, 0xF9]).is_err());
        assert!(TerminalStatus::parse(&hex("F0 F0 F2 41")).is_err());
    }
}
