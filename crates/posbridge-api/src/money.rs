//! Money as people read and type it, by ISO 4217: every amount in posbridge is an integer of the
//! currency's minor unit (cents for EUR, yen for JPY, fils for KWD), and the number of decimal
//! digits between the two comes from the ISO 4217 table (the `iso_currency` crate), never from a
//! hand list and never a fixed 100.
//!
//! ```
//! use posbridge_api::money::{Money, parse_amount, parse_currency};
//! use posbridge_wire::Currency;
//!
//! let jpy = parse_currency("jpy").unwrap();
//! assert_eq!(parse_amount("500", jpy).unwrap(), 500);
//! let kwd = parse_currency("KWD").unwrap();
//! assert_eq!(parse_amount("1.5", kwd).unwrap(), 1500);
//! assert_eq!(Money::new(1250, Currency::EUR).to_string(), "12.50 EUR");
//! assert!(parse_amount("12.505", Currency::EUR).is_err());
//! ```

use std::fmt;

use posbridge_wire::Currency;

fn iso(currency: Currency) -> Option<iso_currency::Currency> {
    iso_currency::Currency::from_numeric(currency.code())
}

/// The number of decimal digits of `currency`'s minor unit (2 for EUR, 0 for JPY, 3 for KWD), or
/// `None` when the code is not an ISO 4217 currency with a minor unit (an unassigned code, gold,
/// special drawing rights): posbridge takes no payment in those.
pub fn minor_digits(currency: Currency) -> Option<u8> {
    iso(currency)
        .and_then(|c| c.exponent())
        .and_then(|e| u8::try_from(e).ok())
}

/// The alphabetic code (`EUR`), when the numeric code is an ISO 4217 currency.
pub fn alpha_code(currency: Currency) -> Option<&'static str> {
    iso(currency).map(|c| c.code())
}

/// Why a currency or an amount was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MoneyError {
    /// Neither an ISO 4217 alphabetic code nor a numeric one.
    UnknownCurrency(String),
    /// An ISO 4217 code without a minor unit (gold, SDR, a fund): not money a terminal takes.
    NoMinorUnit(Currency),
    /// Not a number as an amount is written; `hint` says what is accepted.
    NotAnAmount {
        /// What was given.
        text: String,
        /// What was wrong with it, and the accepted form.
        hint: &'static str,
    },
    /// More decimal digits than the currency has.
    TooPrecise {
        /// What was given.
        text: String,
        /// The currency.
        currency: Currency,
        /// Its number of decimal digits.
        digits: u8,
    },
    /// Larger than posbridge can carry (2⁶⁴ − 1 minor units).
    TooLarge(String),
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCurrency(text) => write!(
                f,
                "unknown currency {text:?}: give an ISO 4217 code such as EUR, USD, JPY or 978"
            ),
            Self::NoMinorUnit(c) => write!(
                f,
                "{} has no minor unit in ISO 4217 and is not taken in payments",
                Money::code(*c)
            ),
            Self::NotAnAmount { text, hint } => write!(f, "{text:?} is not an amount: {hint}"),
            Self::TooPrecise {
                text,
                currency,
                digits: 0,
            } => write!(
                f,
                "{text:?} is too precise: {} has no decimals (write {})",
                Money::code(*currency),
                text.split('.').next().unwrap_or_default()
            ),
            Self::TooPrecise {
                text,
                currency,
                digits,
            } => write!(
                f,
                "{text:?} is too precise: {} has {digits} decimal{} (like {})",
                Money::code(*currency),
                if *digits == 1 { "" } else { "s" },
                Money::new(1250 * 10u64.pow(u32::from(*digits)) / 100, *currency).number()
            ),
            Self::TooLarge(text) => write!(f, "{text:?} is too large an amount"),
        }
    }
}

impl std::error::Error for MoneyError {}

/// Reads a currency as people give it: an ISO 4217 alphabetic code in any case (`eur`, `JPY`) or
/// a numeric one (`978`). Codes without a minor unit are refused.
pub fn parse_currency(text: &str) -> Result<Currency, MoneyError> {
    let text = text.trim();
    let found = if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        text.parse::<u16>()
            .ok()
            .and_then(iso_currency::Currency::from_numeric)
    } else {
        iso_currency::Currency::from_code(&text.to_ascii_uppercase())
    };
    let iso = found.ok_or_else(|| MoneyError::UnknownCurrency(text.into()))?;
    let currency =
        Currency::new(iso.numeric()).map_err(|_| MoneyError::UnknownCurrency(text.into()))?;
    if iso.exponent().is_none() {
        return Err(MoneyError::NoMinorUnit(currency));
    }
    Ok(currency)
}

/// Reads an amount of `currency` as people type it — `5`, `5.0`, `5.00`, `1.5`, `0.99`, `.5` —
/// into minor units. Refused, with the accepted form in the error: a decimal comma or a
/// thousands separator (`12,50` and `1,250.00` are ambiguous), a sign, more decimals than the
/// currency has (`12.505` EUR, `5.5` JPY; trailing zeros are fine: `5.00` JPY is 5), anything
/// that is not a number, and amounts beyond 2⁶⁴ − 1 minor units.
pub fn parse_amount(text: &str, currency: Currency) -> Result<u64, MoneyError> {
    let digits = minor_digits(currency).ok_or(MoneyError::NoMinorUnit(currency))?;
    let trimmed = text.trim();
    let not = |hint| MoneyError::NotAnAmount {
        text: text.into(),
        hint,
    };
    if trimmed.is_empty() {
        return Err(not("give a number like 12.50"));
    }
    if trimmed.contains(',') {
        return Err(not(
            "write the decimals after a point and no thousands separators, like 1250.50",
        ));
    }
    if trimmed.starts_with(['+', '-']) {
        return Err(not(
            "an amount has no sign (a refund is its own command), like 12.50",
        ));
    }
    let (units, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !is_digits(units) || !is_digits(fraction) || (units.is_empty() && fraction.is_empty()) {
        return Err(not("digits with at most one decimal point, like 12.50"));
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(digits) {
        return Err(MoneyError::TooPrecise {
            text: text.into(),
            currency,
            digits,
        });
    }
    let too_large = || MoneyError::TooLarge(text.into());
    let scale = 10u64.pow(u32::from(digits));
    let units: u64 = if units.is_empty() {
        0
    } else {
        units.parse().map_err(|_| too_large())?
    };
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u64>().map_err(|_| too_large())?
            * 10u64.pow(u32::from(digits) - fraction.len() as u32)
    };
    units
        .checked_mul(scale)
        .and_then(|u| u.checked_add(fraction))
        .ok_or_else(too_large)
}

/// An amount in a currency, displayed as people read it: `12.50 EUR`, `500 JPY`, `1.250 KWD`. A
/// currency without a minor unit in ISO 4217 shows its minor units: `1250 (minor units) 001`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    /// Minor units.
    pub minor: u64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub const fn new(minor: u64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// The amount alone, as a decimal number in major units (`12.50`), or the minor units of a
    /// currency not in ISO 4217.
    pub fn number(&self) -> String {
        match minor_digits(self.currency) {
            Some(0) => self.minor.to_string(),
            Some(d) => {
                let scale = 10u64.pow(u32::from(d));
                format!(
                    "{}.{:0width$}",
                    self.minor / scale,
                    self.minor % scale,
                    width = usize::from(d)
                )
            }
            None => format!("{} (minor units)", self.minor),
        }
    }

    /// The currency's alphabetic code, or its number when it is not in ISO 4217.
    pub fn code(currency: Currency) -> String {
        alpha_code(currency).map_or_else(|| format!("{:03}", currency.code()), str::to_string)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number(), Self::code(self.currency))
    }
}

/// A receipt as plain lines — its header, which copy, kind and amount, card, trace, its own
/// lines, result and footer — for protocols that carry receipts as printed text (ZVT, nexo).
pub fn plain_receipt(r: &posbridge_wire::Receipt) -> String {
    let mut out = String::new();
    for h in &r.header {
        out.push_str(h);
        out.push('\n');
    }
    out.push_str(match r.copy {
        posbridge_wire::ReceiptCopy::Merchant => "MERCHANT COPY\n",
        _ => "CUSTOMER COPY\n",
    });
    out.push_str(&format!(
        "{:?} {}\n",
        r.kind,
        Money::new(r.amount, r.currency)
    ));
    if let Some(p) = &r.pan {
        out.push_str(&format!("Card {p}\n"));
    }
    if let Some(t) = r.trace {
        out.push_str(&format!("Trace {t}\n"));
    }
    for line in &r.lines {
        out.push_str(&format!("{} {}\n", line.label, line.value));
    }
    if let Some(t) = &r.result_text {
        out.push_str(t);
        out.push('\n');
    }
    for f in &r.footer {
        out.push_str(f);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        parse_currency(code).unwrap()
    }

    #[test]
    fn exponents_come_from_iso_4217() {
        assert_eq!(minor_digits(Currency::EUR), Some(2));
        assert_eq!(minor_digits(Currency::JPY), Some(0));
        assert_eq!(minor_digits(c("KWD")), Some(3));
        assert_eq!(minor_digits(c("BHD")), Some(3));
        assert_eq!(minor_digits(Currency::new(959).unwrap()), None); // gold
        assert_eq!(minor_digits(Currency::new(1).unwrap()), None); // unassigned
        assert_eq!(c("jpy"), Currency::JPY);
        assert_eq!(c("978"), Currency::EUR);
        assert_eq!(
            parse_currency("XYZ"),
            Err(MoneyError::UnknownCurrency("XYZ".into()))
        );
        assert!(matches!(
            parse_currency("XAU"),
            Err(MoneyError::NoMinorUnit(_))
        ));
        assert!(parse_currency("").is_err());
        assert!(parse_currency("0").is_err());
        assert!(parse_currency("1000").is_err());
    }

    #[test]
    fn what_people_type_is_read_by_the_currency_s_digits() {
        let eur = Currency::EUR;
        for (text, minor) in [
            ("5", 500),
            ("5.0", 500),
            ("5.00", 500),
            ("1.5", 150),
            ("0.99", 99),
            (".5", 50),
            ("5.", 500),
            (" 12.50 ", 1250),
            ("5.000", 500),
        ] {
            assert_eq!(parse_amount(text, eur), Ok(minor), "{text}");
        }
        assert_eq!(parse_amount("500", Currency::JPY), Ok(500));
        assert_eq!(parse_amount("500.00", Currency::JPY), Ok(500));
        assert_eq!(parse_amount("1.5", c("KWD")), Ok(1500));
        assert_eq!(parse_amount("1.250", c("KWD")), Ok(1250));
        assert_eq!(parse_amount("0.001", c("BHD")), Ok(1));
        assert_eq!(parse_amount("184467440737095516.15", eur), Ok(u64::MAX));
    }

    #[test]
    fn what_is_ambiguous_or_too_precise_is_refused_with_the_accepted_form() {
        let eur = Currency::EUR;
        for text in [
            "12,50", "1,250.00", "+5", "-5", "abc", "", ".", "1.2.3", "1e3", "5 EUR",
        ] {
            let e = parse_amount(text, eur).unwrap_err();
            assert!(matches!(e, MoneyError::NotAnAmount { .. }), "{text}: {e:?}");
            assert!(
                e.to_string().contains("like") || e.to_string().contains("number"),
                "{e}"
            );
        }
        let e = parse_amount("12.505", eur).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"12.505\" is too precise: EUR has 2 decimals (like 12.50)"
        );
        let e = parse_amount("5.5", Currency::JPY).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"5.5\" is too precise: JPY has no decimals (write 5)"
        );
        assert_eq!(
            parse_amount("1.2345", c("KWD")).unwrap_err().to_string(),
            "\"1.2345\" is too precise: KWD has 3 decimals (like 12.500)"
        );
        assert!(matches!(
            parse_amount("184467440737095516.16", eur),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            parse_amount("99999999999999999999999", Currency::JPY),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn amounts_display_with_the_currency_s_digits() {
        assert_eq!(Money::new(1250, Currency::EUR).to_string(), "12.50 EUR");
        assert_eq!(Money::new(5, Currency::EUR).to_string(), "0.05 EUR");
        assert_eq!(Money::new(500, Currency::JPY).to_string(), "500 JPY");
        assert_eq!(Money::new(1250, c("KWD")).to_string(), "1.250 KWD");
        assert_eq!(
            Money::new(1250, Currency::new(1).unwrap()).to_string(),
            "1250 (minor units) 001"
        );
        // Every ISO 4217 currency with a minor unit reads back what it displays.
        for code in 1..=999u16 {
            let currency = Currency::new(code).unwrap();
            if minor_digits(currency).is_some() {
                let m = Money::new(123_456, currency);
                assert_eq!(parse_amount(&m.number(), currency), Ok(123_456), "{m}");
            }
        }
    }
}
