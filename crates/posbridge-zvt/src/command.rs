//! Typed ZVT commands: what the cash register sends, and what the terminal answers.

use crate::bmp::{self, Bmp};
use crate::{Apdu, ZvtError};

/// A ZVT command or answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `06 00` Registration: the register's password, configuration byte and currency.
    Registration {
        /// The password (6 digits).
        password: u32,
        /// The configuration byte (which messages the register wants, who prints).
        config: u8,
        /// The currency (ISO 4217 number).
        currency: Option<u16>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 01` Authorization (a sale) of `amount` cents.
    Authorization {
        /// Cents.
        amount: u64,
        /// ISO 4217 number.
        currency: Option<u16>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 22` Pre-authorisation (reservation).
    PreAuthorisation {
        /// Cents.
        amount: u64,
        /// ISO 4217 number.
        currency: Option<u16>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 23` Partial reversal of a pre-authorisation: releases `04` (amount) of the
    /// reservation with receipt number `87`, booking the rest.
    PartialReversal(Vec<Bmp>),
    /// `06 24` Book total: books the final amount (`04`) of the pre-authorisation with receipt
    /// number `87` (a capture).
    BookTotal(Vec<Bmp>),
    /// `06 25` Pre-authorisation reversal: releases the whole reservation with receipt number
    /// `87`.
    PreAuthReversal(Vec<Bmp>),
    /// `06 30` Reversal of the transaction with receipt number `receipt` (the last one when
    /// absent).
    Reversal {
        /// The password.
        password: u32,
        /// Its receipt number.
        receipt: Option<u16>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 31` Refund of `amount` cents.
    Refund {
        /// The password.
        password: u32,
        /// Cents.
        amount: u64,
        /// ISO 4217 number.
        currency: Option<u16>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 50` End-of-day.
    EndOfDay {
        /// The password.
        password: u32,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 B0` Abort (from the register).
    Abort,
    /// `05 01` Status enquiry.
    StatusEnquiry {
        /// The password.
        password: u32,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 02` Log-off.
    LogOff,
    /// `06 20` Repeat receipt.
    RepeatReceipt {
        /// The password.
        password: u32,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 C0` Read card: the terminal waits up to `timeout` seconds for a card and reports its
    /// data (card type, masked number, expiry) in a status information, without a payment.
    ReadCard {
        /// Seconds to wait for a card (binary; 0: the terminal's default).
        timeout: u8,
        /// Fields this type does not model (payment type `19`, TLV `06`), kept as they came.
        extra: Vec<Bmp>,
    },
    /// `06 70` Diagnosis: the terminal checks its connection to the host.
    Diagnosis(Vec<Bmp>),
    /// `06 93` Initialisation: the terminal loads its parameters from the host.
    Initialisation {
        /// The password.
        password: u32,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 1A` Print system configuration.
    PrintSystemConfiguration {
        /// The password.
        password: u32,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 1B` Set terminal ID: the new id travels as BMP `29` among `extra`.
    SetTerminalId {
        /// The password.
        password: u32,
        /// Fields (the terminal id `29`), in the order they came.
        extra: Vec<Bmp>,
    },
    /// `04 FF` Intermediate status (what the terminal shows: insert card, enter PIN, ...).
    IntermediateStatus {
        /// The status code.
        status: u8,
        /// How long the terminal shows it (seconds), when it says.
        timeout: Option<u8>,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `04 0F` Status information: the result's fields.
    StatusInformation(Vec<Bmp>),
    /// `06 0F` Completion.
    Completion(Vec<Bmp>),
    /// `06 1E` Abort from the terminal, with its result code.
    AbortFromTerminal {
        /// The result code.
        result: u8,
        /// Fields this type does not model, in the order they came (kept, never dropped).
        extra: Vec<Bmp>,
    },
    /// `06 D1` Print line.
    PrintLine {
        /// Attributes (last line, bold, ...).
        attribute: u8,
        /// The text (code page 437).
        text: Vec<u8>,
    },
    /// `06 D3` Print text block (a TLV container).
    PrintTextBlock(Vec<u8>),
    /// `80 00` Positive acknowledgement.
    Ack,
    /// `84 xx` Negative acknowledgement.
    Nak(u8),
}

/// What may follow a registration's configuration byte, as the specification lists it: the
/// currency (two bytes BCD, untagged), then the service byte (BMP `03`), then the TLV container
/// (BMP `06`), each optional, each at most once, in that order. The currency is read as one
/// when the two bytes are BCD and what follows them is such a tail; otherwise the bytes must be
/// such a tail themselves (so that a service byte `03` is not taken for currency 3xx, nor
/// currency 604, `06 04`, for a TLV container).
fn registration_tail(rest: &[u8]) -> Result<(Option<u16>, Vec<Bmp>), ZvtError> {
    fn fields(data: &[u8]) -> Result<Vec<Bmp>, ZvtError> {
        let fields = bmp::parse(data)?;
        let tags: Vec<u8> = fields
            .iter()
            .map(|f| match f {
                Bmp::Other(t, _) => *t,
                Bmp::Tlv(_) => bmp::TLV,
                _ => 0,
            })
            .collect();
        match tags.as_slice() {
            [] | [0x03] | [bmp::TLV] | [0x03, bmp::TLV] => Ok(fields),
            _ => Err(ZvtError::Missing(
                "a registration's service byte (03) and TLV container (06), each once, in order",
            )),
        }
    }
    let as_currency = rest.get(..2).and_then(|cc| {
        let c = bmp::from_bcd(cc).ok()?;
        Some((Some(c as u16), fields(&rest[2..]).ok()?))
    });
    match as_currency {
        Some(found) => Ok(found),
        None => Ok((None, fields(rest)?)),
    }
}

fn password(data: &[u8]) -> Result<(u32, &[u8]), ZvtError> {
    let pw = data.get(..3).ok_or(ZvtError::Missing("password"))?;
    Ok((bmp::from_bcd(pw)? as u32, &data[3..]))
}

/// Removes the first field `pick` accepts and returns its value.
fn take<T>(fields: &mut Vec<Bmp>, pick: impl Fn(&Bmp) -> Option<T>) -> Option<T> {
    let i = fields.iter().position(|f| pick(f).is_some())?;
    pick(&fields.remove(i))
}

/// The amount (required) and currency out of `fields`; the rest, in order.
fn amount_currency(mut fields: Vec<Bmp>) -> Result<(u64, Option<u16>, Vec<Bmp>), ZvtError> {
    let amount = take(&mut fields, |f| match f {
        Bmp::Amount(a) => Some(*a),
        _ => None,
    })
    .ok_or(ZvtError::Missing("amount"))?;
    let currency = take(&mut fields, |f| match f {
        Bmp::Currency(c) => Some(*c),
        _ => None,
    });
    Ok((amount, currency, fields))
}

fn with_currency(amount: u64, currency: Option<u16>, extra: &[Bmp]) -> Vec<Bmp> {
    let mut f = vec![Bmp::Amount(amount)];
    f.extend(currency.map(Bmp::Currency));
    f.extend(extra.iter().cloned());
    f
}

fn with_password(mut password: Vec<u8>, extra: &[Bmp]) -> Result<Vec<u8>, ZvtError> {
    password.extend(bmp::encode(extra)?);
    Ok(password)
}

impl Command {
    /// The APDU for this command.
    pub fn to_apdu(&self) -> Result<Apdu, ZvtError> {
        let pw = |p: u32| bmp::bcd(u64::from(p), 3);
        Ok(match self {
            Self::Registration {
                password,
                config,
                currency,
                extra,
            } => {
                let mut d = pw(*password)?;
                d.push(*config);
                if let Some(c) = currency {
                    d.extend(bmp::bcd(u64::from(*c), 2)?);
                }
                d.extend(bmp::encode(extra)?);
                // What is sent must read back as what was meant: the currency is untagged, so
                // fields that would be taken for one (or one taken for fields) are refused.
                if registration_tail(&d[4..]).ok() != Some((*currency, extra.clone())) {
                    return Err(ZvtError::Ambiguous);
                }
                Apdu::new(0x06, 0x00, d)
            }
            Self::Authorization {
                amount,
                currency,
                extra,
            } => Apdu::new(
                0x06,
                0x01,
                bmp::encode(&with_currency(*amount, *currency, extra))?,
            ),
            Self::PreAuthorisation {
                amount,
                currency,
                extra,
            } => Apdu::new(
                0x06,
                0x22,
                bmp::encode(&with_currency(*amount, *currency, extra))?,
            ),
            Self::PartialReversal(f) => Apdu::new(0x06, 0x23, bmp::encode(f)?),
            Self::BookTotal(f) => Apdu::new(0x06, 0x24, bmp::encode(f)?),
            Self::PreAuthReversal(f) => Apdu::new(0x06, 0x25, bmp::encode(f)?),
            Self::Reversal {
                password,
                receipt,
                extra,
            } => {
                let mut d = pw(*password)?;
                let mut f: Vec<Bmp> = receipt.map(Bmp::Receipt).into_iter().collect();
                f.extend(extra.iter().cloned());
                d.extend(bmp::encode(&f)?);
                Apdu::new(0x06, 0x30, d)
            }
            Self::Refund {
                password,
                amount,
                currency,
                extra,
            } => {
                let mut d = pw(*password)?;
                d.extend(bmp::encode(&with_currency(*amount, *currency, extra))?);
                Apdu::new(0x06, 0x31, d)
            }
            Self::EndOfDay { password, extra } => {
                Apdu::new(0x06, 0x50, with_password(pw(*password)?, extra)?)
            }
            Self::Abort => Apdu::new(0x06, 0xB0, Vec::new()),
            Self::ReadCard { timeout, extra } => {
                let mut d = vec![*timeout];
                d.extend(bmp::encode(extra)?);
                Apdu::new(0x06, 0xC0, d)
            }
            Self::Diagnosis(f) => Apdu::new(0x06, 0x70, bmp::encode(f)?),
            Self::Initialisation { password, extra } => {
                Apdu::new(0x06, 0x93, with_password(pw(*password)?, extra)?)
            }
            Self::PrintSystemConfiguration { password, extra } => {
                Apdu::new(0x06, 0x1A, with_password(pw(*password)?, extra)?)
            }
            Self::SetTerminalId { password, extra } => {
                Apdu::new(0x06, 0x1B, with_password(pw(*password)?, extra)?)
            }
            Self::StatusEnquiry { password, extra } => {
                Apdu::new(0x05, 0x01, with_password(pw(*password)?, extra)?)
            }
            Self::LogOff => Apdu::new(0x06, 0x02, Vec::new()),
            Self::RepeatReceipt { password, extra } => {
                Apdu::new(0x06, 0x20, with_password(pw(*password)?, extra)?)
            }
            Self::IntermediateStatus {
                status,
                timeout,
                extra,
            } => {
                let mut d = vec![*status];
                d.extend(timeout);
                d.extend(bmp::encode(extra)?);
                Apdu::new(0x04, 0xFF, d)
            }
            Self::StatusInformation(f) => Apdu::new(0x04, 0x0F, bmp::encode(f)?),
            Self::Completion(f) => Apdu::new(0x06, 0x0F, bmp::encode(f)?),
            Self::AbortFromTerminal { result, extra } => {
                let mut d = vec![*result];
                d.extend(bmp::encode(extra)?);
                Apdu::new(0x06, 0x1E, d)
            }
            Self::PrintLine { attribute, text } => {
                let mut d = vec![*attribute];
                d.extend(text);
                Apdu::new(0x06, 0xD1, d)
            }
            Self::PrintTextBlock(tlv) => {
                Apdu::new(0x06, 0xD3, bmp::encode(&[Bmp::Tlv(tlv.clone())])?)
            }
            Self::Ack => Apdu::ack(),
            Self::Nak(code) => Apdu::nak(*code),
        })
    }

    /// The command an APDU carries.
    pub fn from_apdu(apdu: &Apdu) -> Result<Self, ZvtError> {
        let d = apdu.data.as_slice();
        Ok(match apdu.code() {
            [0x06, 0x00] => {
                let (password, rest) = password(d)?;
                let config = *rest.first().ok_or(ZvtError::Missing("config byte"))?;
                let (currency, extra) = registration_tail(&rest[1..])?;
                Self::Registration {
                    password,
                    config,
                    currency,
                    extra,
                }
            }
            [0x06, 0x01] => {
                let (amount, currency, extra) = amount_currency(bmp::parse(d)?)?;
                Self::Authorization {
                    amount,
                    currency,
                    extra,
                }
            }
            [0x06, 0x22] => {
                let (amount, currency, extra) = amount_currency(bmp::parse(d)?)?;
                Self::PreAuthorisation {
                    amount,
                    currency,
                    extra,
                }
            }
            [0x06, 0x23] => Self::PartialReversal(bmp::parse(d)?),
            [0x06, 0x24] => Self::BookTotal(bmp::parse(d)?),
            [0x06, 0x25] => Self::PreAuthReversal(bmp::parse(d)?),
            [0x06, 0x30] => {
                let (password, rest) = password(d)?;
                let mut fields = bmp::parse(rest)?;
                let receipt = take(&mut fields, |f| match f {
                    Bmp::Receipt(r) => Some(*r),
                    _ => None,
                });
                Self::Reversal {
                    password,
                    receipt,
                    extra: fields,
                }
            }
            [0x06, 0x31] => {
                let (password, rest) = password(d)?;
                let (amount, currency, extra) = amount_currency(bmp::parse(rest)?)?;
                Self::Refund {
                    password,
                    amount,
                    currency,
                    extra,
                }
            }
            [0x06, 0x50] => {
                let (password, rest) = password(d)?;
                Self::EndOfDay {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x06, 0xB0] if d.is_empty() => Self::Abort,
            [0x06, 0xC0] => Self::ReadCard {
                timeout: *d.first().ok_or(ZvtError::Missing("timeout"))?,
                extra: bmp::parse(&d[1..])?,
            },
            [0x06, 0x70] => Self::Diagnosis(bmp::parse(d)?),
            [0x06, 0x93] => {
                let (password, rest) = password(d)?;
                Self::Initialisation {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x06, 0x1A] => {
                let (password, rest) = password(d)?;
                Self::PrintSystemConfiguration {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x06, 0x1B] => {
                let (password, rest) = password(d)?;
                Self::SetTerminalId {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x05, 0x01] => {
                let (password, rest) = password(d)?;
                Self::StatusEnquiry {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x06, 0x02] if d.is_empty() => Self::LogOff,
            [0x06, 0x20] => {
                let (password, rest) = password(d)?;
                Self::RepeatReceipt {
                    password,
                    extra: bmp::parse(rest)?,
                }
            }
            [0x04, 0xFF] => {
                let status = *d.first().ok_or(ZvtError::Missing("status"))?;
                // The display time, when present, is a bare byte before any BMP: taken as one
                // when what follows it is whole BMPs.
                let with_timeout = d
                    .get(1)
                    .and_then(|&t| Some((Some(t), bmp::parse(&d[2..]).ok()?)));
                let (timeout, extra) = match with_timeout {
                    Some(found) => found,
                    None => (None, bmp::parse(&d[1..])?),
                };
                Self::IntermediateStatus {
                    status,
                    timeout,
                    extra,
                }
            }
            // What the terminal reports is read as far as it can be: an unknown field keeps the
            // rest as it came, and the reader decides what it can still tell.
            [0x04, 0x0F] => Self::StatusInformation(bmp::parse_lenient(d)),
            [0x06, 0x0F] => Self::Completion(bmp::parse_lenient(d)),
            [0x06, 0x1E] => Self::AbortFromTerminal {
                result: *d.first().ok_or(ZvtError::Missing("result code"))?,
                extra: bmp::parse(&d[1..])?,
            },
            [0x06, 0xD1] => Self::PrintLine {
                attribute: *d.first().ok_or(ZvtError::Missing("attribute"))?,
                text: d[1..].to_vec(),
            },
            [0x06, 0xD3] => match bmp::parse(d)?.as_slice() {
                [Bmp::Tlv(t)] => Self::PrintTextBlock(t.clone()),
                _ => return Err(ZvtError::Missing("text block")),
            },
            // An acknowledgement with data (terminals answer some commands with `80 00 xx …`)
            // is not a bare Ack: left to the caller as an APDU, nothing dropped.
            [0x80, 0x00] if d.is_empty() => Self::Ack,
            [0x84, code] if d.is_empty() => Self::Nak(code),
            other => return Err(ZvtError::UnknownCommand(other)),
        })
    }
}

/// The first receipt number (`87`) among `fields`.
pub fn receipt_of(fields: &[Bmp]) -> Option<u16> {
    fields.iter().find_map(|f| match f {
        Bmp::Receipt(r) => Some(*r),
        _ => None,
    })
}

/// The first amount (`04`) among `fields`.
pub fn amount_of(fields: &[Bmp]) -> Option<u64> {
    fields.iter().find_map(|f| match f {
        Bmp::Amount(a) => Some(*a),
        _ => None,
    })
}
