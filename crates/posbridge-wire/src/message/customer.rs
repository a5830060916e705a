//! Protocol 1.1: the customer's side of the terminal — the cart on its display, and questions the
//! customer answers on it (a tip, a confirmation, a number, a signature).

use alloc::string::String;
use alloc::vec::Vec;

use super::common::{currency_of, limits};
use crate::error::MessageEncodeError;
use crate::tlv::{DecResult, EncResult, Reader, Slot, Tlv, Writer, key, push};
use crate::types::{Currency, RequestId};

/// Lines a cart shows at most.
pub const CART_LINES: u16 = 32;
/// Tip choices offered at most.
pub const TIP_PRESETS: u16 = 6;
/// Largest signature image, in bytes (a small PNG; it travels in one frame).
pub const SIGNATURE_IMAGE: u16 = 2048;
/// Longest a question may wait for the customer, in milliseconds (5 minutes).
pub const MAX_INPUT_TIMEOUT_MS: u32 = 300_000;

const REQUEST_ID: u8 = key(1, true);

/// One line of the cart on the customer display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartLine {
    /// What it is ("Cappuccino").
    pub text: String,
    /// How many, when more than one is worth saying.
    pub quantity: Option<u32>,
    /// The line's amount, in the cart's currency's minor unit.
    pub amount: u64,
}

mod line {
    use super::key;
    pub(super) const TEXT: u8 = key(1, false);
    pub(super) const QUANTITY: u8 = key(2, false);
    pub(super) const AMOUNT: u8 = key(3, false);
}

impl Tlv for CartLine {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.text(line::TEXT, &self.text, limits::NAME)?;
        w.opt_uint(line::QUANTITY, self.quantity.map(u64::from));
        w.uint(line::AMOUNT, self.amount);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut text, mut quantity, mut amount) =
            (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                line::TEXT => text.set(&f, f.text(limits::NAME))?,
                line::QUANTITY => quantity.set(&f, f.u32())?,
                line::AMOUNT => amount.set(&f, f.uint())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            text: text.required(line::TEXT, r)?,
            quantity: quantity.get(),
            amount: amount.required(line::AMOUNT, r)?,
        })
    }
}

/// Client → terminal (1.1): show the cart on the customer display, until the next display or
/// payment. Answered by a [`CustomerResponse`] with [`CustomerReply::Shown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerDisplay {
    /// This request's id.
    pub request_id: RequestId,
    /// The cart's lines (at most [`CART_LINES`]).
    pub lines: Vec<CartLine>,
    /// The cart's currency.
    pub currency: Currency,
    /// The total to pay, in minor units.
    pub total: u64,
    /// A line under the total ("Thank you!").
    pub message: Option<String>,
}

mod display {
    use super::key;
    pub(super) const LINE: u8 = key(2, false);
    pub(super) const CURRENCY: u8 = key(3, true);
    pub(super) const TOTAL: u8 = key(4, true);
    pub(super) const MESSAGE: u8 = key(5, false);
}

impl Tlv for CustomerDisplay {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.items(display::LINE, &self.lines, CART_LINES)?;
        w.uint(display::CURRENCY, self.currency.code().into());
        w.uint(display::TOTAL, self.total);
        w.opt_text(display::MESSAGE, self.message.as_deref(), limits::NAME)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut lines, mut currency, mut total, mut message) = (
            Slot::default(),
            Vec::new(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                display::LINE => push(&mut lines, &f, f.item(), CART_LINES)?,
                display::CURRENCY => currency.set(&f, currency_of(&f))?,
                display::TOTAL => total.set(&f, f.uint())?,
                display::MESSAGE => message.set(&f, f.text(limits::NAME))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            lines,
            currency: currency.required(display::CURRENCY, r)?,
            total: total.required(display::TOTAL, r)?,
            message: message.get(),
        })
    }
}

/// What the customer is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomerQuestion {
    /// A tip on `base`: one of the `presets` (percentages, at most [`TIP_PRESETS`]), no tip, or
    /// — when `custom` — an amount the customer types.
    Tip {
        /// The amount the tip is on, in minor units of `currency`.
        base: u64,
        /// Its currency.
        currency: Currency,
        /// The percentages offered (1–100 each).
        presets: Vec<u16>,
        /// Whether the customer may type an amount.
        custom: bool,
    },
    /// Yes or no ("Is the amount right?").
    YesNo,
    /// A whole number between `min` and `max` (a room number, a loyalty card's last digits).
    Number {
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A signature drawn on the screen.
    Signature,
}

/// Client → terminal (1.1): ask the customer something on the terminal's screen. Answered by a
/// [`CustomerResponse`] when the customer answers, when `timeout_ms` passes
/// ([`CustomerReply::TimedOut`]), or when the client cancels it with a
/// [`Cancel`](crate::Cancel) naming this request ([`CustomerReply::Cancelled`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerInput {
    /// This request's id.
    pub request_id: RequestId,
    /// The question as shown ("Add a tip?").
    pub prompt: String,
    /// What kind of answer.
    pub question: CustomerQuestion,
    /// How long the customer has, in milliseconds (1 to [`MAX_INPUT_TIMEOUT_MS`]).
    pub timeout_ms: u32,
}

mod input {
    use super::key;
    pub(super) const PROMPT: u8 = key(2, false);
    pub(super) const KIND: u8 = key(3, true);
    pub(super) const BASE: u8 = key(4, true);
    pub(super) const CURRENCY: u8 = key(5, true);
    pub(super) const PRESETS: u8 = key(6, false);
    pub(super) const CUSTOM: u8 = key(7, false);
    pub(super) const MIN: u8 = key(8, true);
    pub(super) const MAX: u8 = key(9, true);
    pub(super) const TIMEOUT: u8 = key(10, true);
}

fn presets_ok(p: &[u16]) -> bool {
    p.len() <= usize::from(TIP_PRESETS) && p.iter().all(|v| (1..=100).contains(v))
}

impl Tlv for CustomerInput {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use input::*;
        if !(1..=MAX_INPUT_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(MessageEncodeError::InvalidValue { key: TIMEOUT });
        }
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.text(PROMPT, &self.prompt, limits::NAME)?;
        match &self.question {
            CustomerQuestion::Tip {
                base,
                currency,
                presets,
                custom,
            } => {
                if !presets_ok(presets) {
                    return Err(MessageEncodeError::InvalidValue { key: PRESETS });
                }
                w.uint(KIND, 1);
                w.uint(BASE, *base);
                w.uint(CURRENCY, currency.code().into());
                if !presets.is_empty() {
                    w.u16_list(PRESETS, presets, TIP_PRESETS)?;
                }
                w.flag(CUSTOM, *custom);
            }
            CustomerQuestion::YesNo => w.uint(KIND, 2),
            CustomerQuestion::Number { min, max } => {
                if min > max {
                    return Err(MessageEncodeError::InvalidValue { key: MAX });
                }
                w.uint(KIND, 3);
                w.uint(MIN, *min);
                w.uint(MAX, *max);
            }
            CustomerQuestion::Signature => w.uint(KIND, 4),
        }
        w.uint(TIMEOUT, self.timeout_ms.into());
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use input::*;
        let (mut id, mut prompt, mut kind, mut base, mut currency) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut presets, mut custom, mut min, mut max, mut timeout) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                PROMPT => prompt.set(&f, f.text(limits::NAME))?,
                KIND => kind.set(&f, f.code(|c| (1..=4).contains(&c).then_some(c)))?,
                BASE => base.set(&f, f.uint())?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                PRESETS => presets.set(&f, {
                    let v = f.u16_list(TIP_PRESETS)?;
                    f.check(v, |v| !v.is_empty() && presets_ok(v))
                })?,
                CUSTOM => custom.set(&f, f.flag())?,
                MIN => min.set(&f, f.uint())?,
                MAX => max.set(&f, f.uint())?,
                TIMEOUT => timeout.set(&f, {
                    let v = f.u32()?;
                    f.check(v, |v| (1..=MAX_INPUT_TIMEOUT_MS).contains(v))
                })?,
                _ => f.unknown()?,
            }
        }
        // Fields of another kind of question are refused, not ignored.
        let stray_tip = [
            (base.is_some(), base.invalid(BASE)),
            (currency.is_some(), currency.invalid(CURRENCY)),
            (presets.is_some(), presets.invalid(PRESETS)),
            (custom.is_some(), custom.invalid(CUSTOM)),
        ]
        .into_iter()
        .find_map(|(present, e)| present.then_some(e));
        let stray_number = [
            (min.is_some(), min.invalid(MIN)),
            (max.is_some(), max.invalid(MAX)),
        ]
        .into_iter()
        .find_map(|(present, e)| present.then_some(e));
        let refuse = |stray: Option<crate::MessageError>| stray.map_or(Ok(()), Err);
        let question = match kind.required(KIND, r)? {
            1 => {
                refuse(stray_number)?;
                CustomerQuestion::Tip {
                    base: base.required(BASE, r)?,
                    currency: currency.required(CURRENCY, r)?,
                    presets: presets.get().unwrap_or_default(),
                    custom: custom.get().unwrap_or(false),
                }
            }
            3 => {
                refuse(stray_tip)?;
                let max_at = max.invalid(MAX);
                let (min, max) = (min.required(MIN, r)?, max.required(MAX, r)?);
                if min > max {
                    return Err(max_at);
                }
                CustomerQuestion::Number { min, max }
            }
            k => {
                refuse(stray_tip)?;
                refuse(stray_number)?;
                if k == 2 {
                    CustomerQuestion::YesNo
                } else {
                    CustomerQuestion::Signature
                }
            }
        };
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            prompt: prompt.required(PROMPT, r)?,
            question,
            timeout_ms: timeout.required(TIMEOUT, r)?,
        })
    }
}

/// What came of a customer display or question.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CustomerReply {
    /// The cart is shown.
    Shown,
    /// The tip chosen, in minor units (0: no tip).
    Tip(u64),
    /// Yes (`true`) or no.
    Confirmed(bool),
    /// The number typed.
    Number(u64),
    /// The signature, as an image (PNG, at most [`SIGNATURE_IMAGE`] bytes).
    Signature(Vec<u8>),
    /// The customer did not answer in time.
    TimedOut,
    /// The client cancelled the question.
    Cancelled,
}

/// Terminal → client (1.1): the answer to a [`CustomerDisplay`] or a [`CustomerInput`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerResponse {
    /// The request answered.
    pub request_id: RequestId,
    /// What came of it.
    pub reply: CustomerReply,
}

mod response {
    use super::key;
    pub(super) const KIND: u8 = key(2, true);
    pub(super) const VALUE: u8 = key(3, true);
    pub(super) const IMAGE: u8 = key(4, true);
}

impl Tlv for CustomerResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use response::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        match &self.reply {
            CustomerReply::Shown => w.uint(KIND, 1),
            CustomerReply::Tip(v) => {
                w.uint(KIND, 2);
                w.uint(VALUE, *v);
            }
            CustomerReply::Confirmed(yes) => {
                w.uint(KIND, 3);
                w.uint(VALUE, u64::from(*yes));
            }
            CustomerReply::Number(v) => {
                w.uint(KIND, 4);
                w.uint(VALUE, *v);
            }
            CustomerReply::Signature(image) => {
                if image.is_empty() {
                    return Err(MessageEncodeError::InvalidValue { key: IMAGE });
                }
                w.uint(KIND, 5);
                w.bytes(IMAGE, image, SIGNATURE_IMAGE)?;
            }
            CustomerReply::TimedOut => w.uint(KIND, 6),
            CustomerReply::Cancelled => w.uint(KIND, 7),
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use response::*;
        let (mut id, mut kind, mut value, mut image) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                KIND => kind.set(&f, f.code(|c| (1..=7).contains(&c).then_some(c)))?,
                VALUE => value.set(&f, f.uint())?,
                IMAGE => image.set(&f, {
                    let v = f.bytes(SIGNATURE_IMAGE)?;
                    f.check(v, |v| !v.is_empty())
                })?,
                _ => f.unknown()?,
            }
        }
        let kind_at = kind.invalid(KIND);
        let value_at = value.invalid(VALUE);
        let code = kind.required(KIND, r)?;
        let takes_value = matches!(code, 2..=4);
        if value.is_some() != takes_value || (code != 5 && image.is_some()) {
            return Err(if value.is_some() && !takes_value {
                value_at
            } else {
                kind_at
            });
        }
        let reply = match code {
            1 => CustomerReply::Shown,
            2 => CustomerReply::Tip(value.required(VALUE, r)?),
            3 => match value.required(VALUE, r)? {
                0 => CustomerReply::Confirmed(false),
                1 => CustomerReply::Confirmed(true),
                _ => return Err(value_at),
            },
            4 => CustomerReply::Number(value.required(VALUE, r)?),
            5 => CustomerReply::Signature(image.required(IMAGE, r)?),
            6 => CustomerReply::TimedOut,
            _ => CustomerReply::Cancelled,
        };
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, MessageErrorKind};

    fn input(question: CustomerQuestion) -> Message {
        Message::CustomerInput(CustomerInput {
            request_id: RequestId([7; 16]),
            prompt: "Room?".into(),
            question,
            timeout_ms: 30_000,
        })
    }

    #[test]
    fn fields_of_another_kind_of_question_are_refused() {
        // A number question carrying a tip's currency: spliced in before the timeout.
        let mut bytes = input(CustomerQuestion::Number { min: 1, max: 999 })
            .to_bytes()
            .unwrap()
            .to_vec();
        let at = bytes.iter().rposition(|&b| b == input::TIMEOUT).unwrap();
        let currency = [input::CURRENCY, 2, 0x03, 0xD2];
        // Keys must ascend: the currency (field 5) goes before min (field 8).
        let min_at = bytes.iter().position(|&b| b == input::MIN).unwrap();
        assert!(min_at < at);
        bytes.splice(min_at..min_at, currency);
        let e = Message::decode(&bytes).unwrap_err();
        assert_eq!(
            e.kind,
            MessageErrorKind::InvalidValue {
                key: input::CURRENCY
            }
        );
    }

    #[test]
    fn an_answer_out_of_range_is_refused_and_bad_questions_are_not_sent() {
        let yes = Message::CustomerResponse(CustomerResponse {
            request_id: RequestId([7; 16]),
            reply: CustomerReply::Confirmed(true),
        });
        let mut bytes = yes.to_bytes().unwrap().to_vec();
        *bytes.last_mut().unwrap() = 2;
        assert_eq!(
            Message::decode(&bytes).unwrap_err().kind,
            MessageErrorKind::InvalidValue {
                key: response::VALUE
            }
        );
        let upside_down = input(CustomerQuestion::Number { min: 9, max: 1 });
        assert!(upside_down.to_bytes().is_err());
        let too_many = input(CustomerQuestion::Tip {
            base: 1000,
            currency: Currency::EUR,
            presets: alloc::vec![5, 10, 15, 20, 25, 30, 35],
            custom: false,
        });
        assert!(too_many.to_bytes().is_err());
        let no_time = Message::CustomerInput(CustomerInput {
            timeout_ms: 0,
            ..match input(CustomerQuestion::YesNo) {
                Message::CustomerInput(i) => i,
                _ => unreachable!(),
            }
        });
        assert!(no_time.to_bytes().is_err());
    }
}
