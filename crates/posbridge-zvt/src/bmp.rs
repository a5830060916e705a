//! BMP fields: the tagged values inside command APDUs — BCD amounts, currency codes, trace
//! numbers, dates and times, and variable-length fields with `Fx` length nibbles.

use crate::ZvtError;

/// BMP 04: the amount, 6 bytes BCD, in cents.
pub const AMOUNT: u8 = 0x04;
/// BMP 0B: the trace number, 3 bytes BCD.
pub const TRACE: u8 = 0x0B;
/// BMP 0C: the time, 3 bytes BCD (hhmmss).
pub const TIME: u8 = 0x0C;
/// BMP 0D: the date, 2 bytes BCD (MMDD).
pub const DATE: u8 = 0x0D;
/// BMP 22: the card number, LLVAR of BCD digits (`E` nibbles mark masked digits).
pub const PAN: u8 = 0x22;
/// BMP 27: the result code, 1 byte.
pub const RESULT: u8 = 0x27;
/// BMP 49: the currency, 2 bytes BCD (ISO 4217 number).
pub const CURRENCY: u8 = 0x49;
/// BMP 87: the receipt number, 2 bytes BCD.
pub const RECEIPT: u8 = 0x87;
/// BMP 8A: the card type (ZVT card id), 1 byte.
pub const CARD_TYPE: u8 = 0x8A;
/// BMP 06: a TLV container (length in BER form).
pub const TLV: u8 = 0x06;
/// BMP 8B: the card's name, LLVAR.
pub const CARD_NAME: u8 = 0x8B;

/// Packs `value` as `digits` BCD digits (big-endian, two per byte).
pub fn bcd(value: u64, bytes: usize) -> Result<Vec<u8>, ZvtError> {
    let mut out = vec![0u8; bytes];
    let mut v = value;
    for b in out.iter_mut().rev() {
        *b = ((v / 10 % 10) as u8) << 4 | (v % 10) as u8;
        v /= 100;
    }
    if v != 0 {
        return Err(ZvtError::ValueTooLarge { value, bytes });
    }
    Ok(out)
}

/// Reads BCD digits as a number.
pub fn from_bcd(bytes: &[u8]) -> Result<u64, ZvtError> {
    let mut v: u64 = 0;
    for &b in bytes {
        let (hi, lo) = (b >> 4, b & 0x0F);
        if hi > 9 || lo > 9 {
            return Err(ZvtError::BadBcd(b));
        }
        v = v
            .checked_mul(100)
            .and_then(|v| v.checked_add(u64::from(hi) * 10 + u64::from(lo)))
            .ok_or(ZvtError::BadBcd(b))?;
    }
    Ok(v)
}

/// A BMP field with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bmp {
    /// Amount in cents.
    Amount(u64),
    /// ISO 4217 currency number.
    Currency(u16),
    /// Trace number.
    Trace(u32),
    /// Time, `hhmmss`.
    Time(u32),
    /// Date, `MMDD`.
    Date(u16),
    /// The card number as printed: digits with `*` for masked ones. Never a number.
    Pan(String),
    /// Result code (`00` success).
    Result(u8),
    /// Receipt number.
    Receipt(u16),
    /// ZVT card type.
    CardType(u8),
    /// The TLV container, undecoded.
    Tlv(Vec<u8>),
    /// The card's name (BMP 8B, e.g. `MasterCard`), as the terminal sent it.
    CardName(String),
    /// A tag this codec knows the length of but does not interpret (for a variable-length tag:
    /// the value without its length prefix), or a known tag whose value is not what the
    /// specification says (a receipt number `FFFF`): kept as it came, never dropped.
    Other(u8, Vec<u8>),
    /// The rest of the fields, from a tag whose length this codec does not know (or a field that
    /// cannot be read) on, as it came: what follows cannot be split without that length. Only
    /// [`parse_lenient`] makes it; a reader must treat whatever it might hold as unknown.
    Unparsed(Vec<u8>),
}

/// Fixed lengths of the fixed-length BMPs this codec knows (ZVT revision 13); variable ones
/// (PAN, TLV) are read separately, anything else is [`ZvtError::UnknownBmp`].
fn fixed_len(tag: u8) -> Option<usize> {
    Some(match tag {
        // Timeout, max. status infos, service byte, pump number, payment type, result code,
        // card type, card type id, result code of the host (AS), algorithm key, direct debit,
        // number of key resets, display duration, beeps, status, OK key, yes/no key.
        // Minimum and maximum input length, echo of the input (display commands).
        0x01 | 0x02 | 0x03 | 0x05 | 0x19 | 0x27 | 0x8A | 0x8C | 0xA0 | 0xD0 | 0xD2 | 0xD3
        | 0xE0 | 0xE9 | 0xEA | 0xF0 | 0xF9 | 0xFA | 0xFB | 0xFC => 1,
        // Date (MMDD), expiry date (YYMM), card sequence number, CVV/CVC, currency, receipt
        // number.
        0x0D | 0x0E | 0x17 | 0x3A | 0x49 | 0x87 => 2,
        // Trace number, time (hhmmss), original trace number, password, turnover record
        // number, date (YYMMDD).
        0x0B | 0x0C | 0x37 | 0x3D | 0x88 | 0xAA => 3,
        // Terminal id (BCD).
        0x29 => 4,
        // AID parameter.
        0xBA => 5,
        // Amount (BCD cents).
        0x04 => 6,
        // AID.
        0x3B => 8,
        // VU number (ASCII).
        0x2A => 15,
        _ => return None,
    })
}

/// Length digits of the variable-length BMPs this codec knows: 2 (LLVAR) or 3 (LLLVAR).
fn var_digits(tag: u8) -> Option<usize> {
    Some(match tag {
        // Card number, track 2, track 1, card name, chip data, key offset, text lines 1-8 (two
        // sets: display texts E1-E8 and F1-F8).
        0x22 | 0x23 | 0x2D | 0x8B | 0xA7 | 0xD1 | 0xE1..=0xE8 | 0xF1..=0xF8 => 2,
        // Track 3, sync chip data, additional text, individual totals, ec-cash additional
        // data, GeldKarte payments, EF_ID.
        0x24 | 0x2E | 0x3C | 0x60 | 0x92 | 0x9A | 0xAF => 3,
        _ => return None,
    })
}

/// Reads an `Fx Fy` (LLVAR) or `Fx Fy Fz` (LLLVAR) length.
fn var_len(data: &[u8], digits: usize) -> Result<usize, ZvtError> {
    let mut n = 0usize;
    for i in 0..digits {
        let b = *data.get(i).ok_or(ZvtError::Truncated)?;
        if b >> 4 != 0xF || b & 0x0F > 9 {
            return Err(ZvtError::BadLength(b));
        }
        n = n * 10 + usize::from(b & 0x0F);
    }
    Ok(n)
}

/// The length prefix for a variable field of `len` bytes with `digits` length digits.
pub fn var_prefix(len: usize, digits: usize) -> Result<Vec<u8>, ZvtError> {
    let max = 10usize.pow(digits as u32) - 1;
    if len > max {
        return Err(ZvtError::TooLong { len });
    }
    let mut out = vec![0xF0; digits];
    let mut v = len;
    for b in out.iter_mut().rev() {
        *b = 0xF0 | (v % 10) as u8;
        v /= 10;
    }
    Ok(out)
}

/// Decodes the masked PAN digits of BMP 22: BCD with `E` for masked nibbles and `F` padding.
fn pan(bytes: &[u8]) -> Result<String, ZvtError> {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0F] {
            match nibble {
                0..=9 => s.push(char::from(b'0' + nibble)),
                0x0E => s.push('*'),
                0x0F => {}
                _ => return Err(ZvtError::BadBcd(b)),
            }
        }
    }
    Ok(s)
}

/// BER length of a TLV container.
fn ber_len(data: &[u8]) -> Result<(usize, usize), ZvtError> {
    let first = *data.first().ok_or(ZvtError::Truncated)?;
    match first {
        0..=0x7F => Ok((usize::from(first), 1)),
        0x81 => Ok((usize::from(*data.get(1).ok_or(ZvtError::Truncated)?), 2)),
        0x82 => {
            let hi = *data.get(1).ok_or(ZvtError::Truncated)?;
            let lo = *data.get(2).ok_or(ZvtError::Truncated)?;
            Ok((usize::from(u16::from_be_bytes([hi, lo])), 3))
        }
        other => Err(ZvtError::BadLength(other)),
    }
}

/// Reads the BMP fields of an APDU's data, in order.
pub fn parse(mut data: &[u8]) -> Result<Vec<Bmp>, ZvtError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (value, used) = parse_one(data)?;
        out.push(value);
        data = &data[used..];
    }
    Ok(out)
}

/// The first field of `data` and the bytes it took.
fn parse_one(data: &[u8]) -> Result<(Bmp, usize), ZvtError> {
    let (&tag, rest) = data.split_first().ok_or(ZvtError::Truncated)?;
    let (value, used) = match tag {
        PAN => {
            let n = var_len(rest, 2)?;
            let v = rest.get(2..2 + n).ok_or(ZvtError::Truncated)?;
            (Bmp::Pan(pan(v)?), 2 + n)
        }
        TLV => {
            let (n, l) = ber_len(rest)?;
            let v = rest.get(l..l + n).ok_or(ZvtError::Truncated)?;
            (Bmp::Tlv(v.to_vec()), l + n)
        }
        _ if var_digits(tag).is_some() => {
            let digits = var_digits(tag).unwrap_or(2);
            let n = var_len(rest, digits)?;
            let v = rest.get(digits..digits + n).ok_or(ZvtError::Truncated)?;
            let bmp = match (tag, std::str::from_utf8(v)) {
                (CARD_NAME, Ok(name)) => Bmp::CardName(name.to_string()),
                _ => Bmp::Other(tag, v.to_vec()),
            };
            (bmp, digits + n)
        }
        _ => {
            let n = fixed_len(tag).ok_or(ZvtError::UnknownBmp(tag))?;
            let v = rest.get(..n).ok_or(ZvtError::Truncated)?;
            let bmp = match tag {
                AMOUNT => Bmp::Amount(from_bcd(v)?),
                CURRENCY => Bmp::Currency(from_bcd(v)? as u16),
                TRACE => Bmp::Trace(from_bcd(v)? as u32),
                TIME => Bmp::Time(from_bcd(v)? as u32),
                DATE => Bmp::Date(from_bcd(v)? as u16),
                // Terminals send `FFFF` for "no receipt number": kept as it came.
                RECEIPT => match from_bcd(v) {
                    Ok(n) => Bmp::Receipt(n as u16),
                    Err(_) => Bmp::Other(tag, v.to_vec()),
                },
                RESULT => Bmp::Result(v[0]),
                CARD_TYPE => Bmp::CardType(v[0]),
                _ => Bmp::Other(tag, v.to_vec()),
            };
            (bmp, n)
        }
    };
    Ok((value, 1 + used))
}

/// Reads the BMP fields of an APDU's data, in order, never failing: from the first tag whose
/// length this codec does not know, or the first field that cannot be read, the rest is kept as
/// [`Bmp::Unparsed`]. For what a terminal reports (status information, completions), where the
/// fields before an unknown one are still worth reading — and the result code among them
/// decides, or, when it is not among them, the outcome is not known.
pub fn parse_lenient(data: &[u8]) -> Vec<Bmp> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        match parse_one(rest) {
            Ok((bmp, used)) => {
                out.push(bmp);
                rest = &rest[used..];
            }
            Err(_) => {
                out.push(Bmp::Unparsed(rest.to_vec()));
                break;
            }
        }
    }
    out
}

/// Encodes BMP fields (the inverse of [`parse`] for the fields this codec writes).
pub fn encode(fields: &[Bmp]) -> Result<Vec<u8>, ZvtError> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Bmp::Amount(v) => {
                out.push(AMOUNT);
                out.extend(bcd(*v, 6)?);
            }
            Bmp::Currency(c) => {
                out.push(CURRENCY);
                out.extend(bcd(u64::from(*c), 2)?);
            }
            Bmp::Trace(t) => {
                out.push(TRACE);
                out.extend(bcd(u64::from(*t), 3)?);
            }
            Bmp::Time(t) => {
                out.push(TIME);
                out.extend(bcd(u64::from(*t), 3)?);
            }
            Bmp::Date(d) => {
                out.push(DATE);
                out.extend(bcd(u64::from(*d), 2)?);
            }
            Bmp::Result(r) => out.extend([RESULT, *r]),
            Bmp::Receipt(r) => {
                out.push(RECEIPT);
                out.extend(bcd(u64::from(*r), 2)?);
            }
            Bmp::CardType(c) => out.extend([CARD_TYPE, *c]),
            Bmp::Pan(p) => {
                let mut nibbles: Vec<u8> = p
                    .chars()
                    .map(|c| match c {
                        '0'..='9' => Ok(c as u8 - b'0'),
                        '*' => Ok(0x0E),
                        _ => Err(ZvtError::BadPan),
                    })
                    .collect::<Result<_, _>>()?;
                if nibbles.len() % 2 == 1 {
                    nibbles.push(0x0F);
                }
                let bytes: Vec<u8> = nibbles.chunks(2).map(|c| c[0] << 4 | c[1]).collect();
                out.push(PAN);
                out.extend(var_prefix(bytes.len(), 2)?);
                out.extend(bytes);
            }
            Bmp::Tlv(v) => {
                out.push(TLV);
                match v.len() {
                    0..=0x7F => out.push(v.len() as u8),
                    0x80..=0xFF => out.extend([0x81, v.len() as u8]),
                    n if n <= 0xFFFF => {
                        out.push(0x82);
                        out.extend((n as u16).to_be_bytes());
                    }
                    n => return Err(ZvtError::TooLong { len: n }),
                }
                out.extend(v);
            }
            Bmp::CardName(name) => {
                out.push(CARD_NAME);
                out.extend(var_prefix(name.len(), 2)?);
                out.extend(name.as_bytes());
            }
            Bmp::Unparsed(raw) => out.extend(raw),
            Bmp::Other(tag, v) => {
                if let Some(digits) = var_digits(*tag) {
                    out.push(*tag);
                    out.extend(var_prefix(v.len(), digits)?);
                } else if fixed_len(*tag) == Some(v.len()) {
                    out.push(*tag);
                } else {
                    return Err(ZvtError::UnknownBmp(*tag));
                }
                out.extend(v);
            }
        }
    }
    Ok(out)
}
