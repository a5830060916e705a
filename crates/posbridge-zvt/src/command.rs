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
    },
    /// `06 01` Authorization (a sale) of `amount` cents.
    Authorization {
        /// Cents.
        amount: u64,
        /// ISO 4217 number.
        currency: Option<u16>,
    },
    /// `06 22` Pre-authorisation (reservation).
    PreAuthorisation {
        /// Cents.
        amount: u64,
        /// ISO 4217 number.
        currency: Option<u16>,
    },
    /// `06 30` Reversal of the transaction with receipt number `receipt`.
    Reversal {
        /// The password.
        password: u32,
        /// Its receipt number.
        receipt: u16,
    },
    /// `06 31` Refund of `amount` cents.
    Refund {
        /// The password.
        password: u32,
        /// Cents.
        amount: u64,
    },
    /// `06 50` End-of-day.
    EndOfDay {
        /// The password.
        password: u32,
    },
    /// `06 B0` Abort (from the register).
    Abort,
    /// `05 01` Status enquiry.
    StatusEnquiry {
        /// The password.
        password: u32,
    },
    /// `06 02` Log-off.
    LogOff,
    /// `06 20` Repeat receipt.
    RepeatReceipt {
        /// The password.
        password: u32,
    },
    /// `04 FF` Intermediate status (what the terminal shows: insert card, enter PIN, ...).
    IntermediateStatus {
        /// The status code.
        status: u8,
    },
    /// `04 0F` Status information: the result's fields.
    StatusInformation(Vec<Bmp>),
    /// `06 0F` Completion.
    Completion(Vec<Bmp>),
    /// `06 1E` Abort from the terminal, with its result code.
    AbortFromTerminal {
        /// The result code.
        result: u8,
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

fn password(data: &[u8]) -> Result<(u32, &[u8]), ZvtError> {
    let pw = data.get(..3).ok_or(ZvtError::Missing("password"))?;
    Ok((bmp::from_bcd(pw)? as u32, &data[3..]))
}

fn amount_currency(fields: &[Bmp]) -> Result<(u64, Option<u16>), ZvtError> {
    let amount = fields
        .iter()
        .find_map(|f| match f {
            Bmp::Amount(a) => Some(*a),
            _ => None,
        })
        .ok_or(ZvtError::Missing("amount"))?;
    let currency = fields.iter().find_map(|f| match f {
        Bmp::Currency(c) => Some(*c),
        _ => None,
    });
    Ok((amount, currency))
}

fn with_currency(amount: u64, currency: Option<u16>) -> Vec<Bmp> {
    let mut f = vec![Bmp::Amount(amount)];
    f.extend(currency.map(Bmp::Currency));
    f
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
            } => {
                let mut d = pw(*password)?;
                d.push(*config);
                if let Some(c) = currency {
                    d.extend(bmp::bcd(u64::from(*c), 2)?);
                }
                Apdu::new(0x06, 0x00, d)
            }
            Self::Authorization { amount, currency } => {
                Apdu::new(0x06, 0x01, bmp::encode(&with_currency(*amount, *currency))?)
            }
            Self::PreAuthorisation { amount, currency } => {
                Apdu::new(0x06, 0x22, bmp::encode(&with_currency(*amount, *currency))?)
            }
            Self::Reversal { password, receipt } => {
                let mut d = pw(*password)?;
                d.extend(bmp::encode(&[Bmp::Receipt(*receipt)])?);
                Apdu::new(0x06, 0x30, d)
            }
            Self::Refund { password, amount } => {
                let mut d = pw(*password)?;
                d.extend(bmp::encode(&[Bmp::Amount(*amount)])?);
                Apdu::new(0x06, 0x31, d)
            }
            Self::EndOfDay { password } => Apdu::new(0x06, 0x50, pw(*password)?),
            Self::Abort => Apdu::new(0x06, 0xB0, Vec::new()),
            Self::StatusEnquiry { password } => Apdu::new(0x05, 0x01, pw(*password)?),
            Self::LogOff => Apdu::new(0x06, 0x02, Vec::new()),
            Self::RepeatReceipt { password } => Apdu::new(0x06, 0x20, pw(*password)?),
            Self::IntermediateStatus { status } => Apdu::new(0x04, 0xFF, vec![*status]),
            Self::StatusInformation(f) => Apdu::new(0x04, 0x0F, bmp::encode(f)?),
            Self::Completion(f) => Apdu::new(0x06, 0x0F, bmp::encode(f)?),
            Self::AbortFromTerminal { result } => Apdu::new(0x06, 0x1E, vec![*result]),
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
                // The currency follows the config byte, unless a BMP (service byte 03) does.
                let currency = match rest.get(1..3) {
                    Some(cc) if rest[1] != 0x03 => Some(bmp::from_bcd(cc)? as u16),
                    _ => None,
                };
                Self::Registration {
                    password,
                    config,
                    currency,
                }
            }
            [0x06, 0x01] => {
                let (amount, currency) = amount_currency(&bmp::parse(d)?)?;
                Self::Authorization { amount, currency }
            }
            [0x06, 0x22] => {
                let (amount, currency) = amount_currency(&bmp::parse(d)?)?;
                Self::PreAuthorisation { amount, currency }
            }
            [0x06, 0x30] => {
                let (password, rest) = password(d)?;
                let receipt = bmp::parse(rest)?
                    .into_iter()
                    .find_map(|f| match f {
                        Bmp::Receipt(r) => Some(r),
                        _ => None,
                    })
                    .ok_or(ZvtError::Missing("receipt number"))?;
                Self::Reversal { password, receipt }
            }
            [0x06, 0x31] => {
                let (password, rest) = password(d)?;
                let (amount, _) = amount_currency(&bmp::parse(rest)?)?;
                Self::Refund { password, amount }
            }
            [0x06, 0x50] => Self::EndOfDay {
                password: password(d)?.0,
            },
            [0x06, 0xB0] => Self::Abort,
            [0x05, 0x01] => Self::StatusEnquiry {
                password: password(d)?.0,
            },
            [0x06, 0x02] => Self::LogOff,
            [0x06, 0x20] => Self::RepeatReceipt {
                password: password(d)?.0,
            },
            [0x04, 0xFF] => Self::IntermediateStatus {
                status: *d.first().ok_or(ZvtError::Missing("status"))?,
            },
            [0x04, 0x0F] => Self::StatusInformation(bmp::parse(d)?),
            [0x06, 0x0F] => Self::Completion(bmp::parse(d)?),
            [0x06, 0x1E] => Self::AbortFromTerminal {
                result: *d.first().ok_or(ZvtError::Missing("result code"))?,
            },
            [0x06, 0xD1] => Self::PrintLine {
                attribute: *d.first().ok_or(ZvtError::Missing("attribute"))?,
                text: d[1..].to_vec(),
            },
            [0x06, 0xD3] => match bmp::parse(d)?.as_slice() {
                [Bmp::Tlv(t)] => Self::PrintTextBlock(t.clone()),
                _ => return Err(ZvtError::Missing("text block")),
            },
            [0x80, 0x00] => Self::Ack,
            [0x84, code] => Self::Nak(code),
            other => return Err(ZvtError::UnknownCommand(other)),
        })
    }
}
