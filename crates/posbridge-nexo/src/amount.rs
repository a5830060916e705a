//! Amounts as nexo writes them: JSON numbers in major units (`10.99` EUR), read exactly from
//! their text — never through a binary float — and checked against the currency's minor unit.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A non-negative decimal number exactly as it stood in the JSON text (`10.99`, `5`, `0.5`).
///
/// Decoding refuses a sign, an exponent, a string and anything that is not a number; the
/// number of decimals is checked against the currency where the amount is used
/// ([`Decimal::to_minor`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

/// Why an amount was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmountError {
    /// Not a plain non-negative decimal number (a sign, an exponent, a string).
    NotDecimal(String),
    /// More decimals than the currency's minor unit has.
    TooPrecise {
        /// The amount's text.
        text: String,
        /// The currency's number of decimals.
        digits: u8,
    },
    /// Beyond 2⁶⁴ − 1 minor units.
    TooLarge(String),
    /// Not an ISO 4217 alphabetic code of a currency with a minor unit.
    UnknownCurrency(String),
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDecimal(t) => write!(
                f,
                "amount {t} is not a plain decimal number (no sign, no exponent, not a string)"
            ),
            Self::TooPrecise { text, digits } => write!(
                f,
                "amount {text} has more decimals than the currency's {digits}"
            ),
            Self::TooLarge(t) => write!(f, "amount {t} is too large"),
            Self::UnknownCurrency(c) => write!(
                f,
                "currency {c:?} is not an ISO 4217 code of a currency with a minor unit"
            ),
        }
    }
}

impl std::error::Error for AmountError {}

fn is_plain(text: &str) -> bool {
    let (units, fraction) = match text.split_once('.') {
        Some((u, f)) => (u, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(units) && fraction.is_none_or(digits)
}

impl Decimal {
    /// Parses `text` as a plain non-negative decimal (`12`, `12.5`, `0.99`).
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if is_plain(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(AmountError::NotDecimal(text.to_owned()))
        }
    }

    /// `minor` units of a currency with `digits` decimals, written with exactly `digits`
    /// decimals (`1099` with 2 → `10.99`; `500` with 0 → `500`).
    pub fn from_minor(minor: u64, digits: u8) -> Self {
        if digits == 0 {
            return Self(minor.to_string());
        }
        let scale = 10u64.pow(u32::from(digits));
        Self(format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = usize::from(digits)
        ))
    }

    /// The amount in minor units of a currency with `digits` decimals. Trailing zeros beyond
    /// them are fine (`5.00` JPY is 5); other digits beyond them are refused.
    pub fn to_minor(&self, digits: u8) -> Result<u64, AmountError> {
        let (units, fraction) = self.0.split_once('.').unwrap_or((&self.0, ""));
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > usize::from(digits) {
            return Err(AmountError::TooPrecise {
                text: self.0.clone(),
                digits,
            });
        }
        let too_large = || AmountError::TooLarge(self.0.clone());
        let units: u64 = units.parse().map_err(|_| too_large())?;
        let fraction: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<u64>().map_err(|_| too_large())?
                * 10u64.pow(u32::from(digits) - fraction.len() as u32)
        };
        units
            .checked_mul(10u64.pow(u32::from(digits)))
            .and_then(|u| u.checked_add(fraction))
            .ok_or_else(too_large)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.clone()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(d)?;
        Self::parse(raw.get().trim()).map_err(D::Error::custom)
    }
}

/// The number of decimals of the currency with ISO 4217 alphabetic code `code`, when it is a
/// currency with a minor unit.
pub fn currency_digits(code: &str) -> Result<u8, AmountError> {
    iso_currency::Currency::from_code(code)
        .and_then(|c| c.exponent())
        .and_then(|e| u8::try_from(e).ok())
        .ok_or_else(|| AmountError::UnknownCurrency(code.to_owned()))
}

/// The ISO 4217 numeric code of alphabetic `code`.
pub fn currency_numeric(code: &str) -> Result<u16, AmountError> {
    currency_digits(code)?;
    iso_currency::Currency::from_code(code)
        .map(|c| c.numeric())
        .ok_or_else(|| AmountError::UnknownCurrency(code.to_owned()))
}

/// The ISO 4217 alphabetic code of numeric `code`.
pub fn currency_alpha(code: u16) -> Option<&'static str> {
    iso_currency::Currency::from_numeric(code).map(|c| c.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_exactly_and_refuse_what_is_not_money() {
        let d: Decimal = serde_json::from_str("10.99").unwrap();
        assert_eq!(d.to_minor(2), Ok(1099));
        // A float would read this as 0.30000000000000004 after arithmetic; the text is exact.
        let d: Decimal = serde_json::from_str("0.3").unwrap();
        assert_eq!(d.to_minor(2), Ok(30));
        let d: Decimal = serde_json::from_str("5.00").unwrap();
        assert_eq!(d.to_minor(0), Ok(5));
        let d: Decimal = serde_json::from_str("18446744073709551.615").unwrap();
        assert_eq!(d.to_minor(3), Ok(u64::MAX));
        let d: Decimal = serde_json::from_str("18446744073709551.616").unwrap();
        assert!(matches!(d.to_minor(3), Err(AmountError::TooLarge(_))));
        let d: Decimal = serde_json::from_str("1.005").unwrap();
        assert!(matches!(d.to_minor(2), Err(AmountError::TooPrecise { .. })));
        for bad in ["-1", "1e3", "\"1.00\"", "null", "1.", ".5", "true"] {
            assert!(serde_json::from_str::<Decimal>(bad).is_err(), "{bad}");
        }
        assert_eq!(Decimal::from_minor(1099, 2).as_str(), "10.99");
        assert_eq!(Decimal::from_minor(5, 2).as_str(), "0.05");
        assert_eq!(Decimal::from_minor(500, 0).as_str(), "500");
        assert_eq!(Decimal::from_minor(1500, 3).as_str(), "1.500");
        assert_eq!(
            serde_json::to_string(&Decimal::from_minor(1000, 2)).unwrap(),
            "10.00"
        );
    }

    #[test]
    fn currencies_by_their_codes() {
        assert_eq!(currency_digits("EUR"), Ok(2));
        assert_eq!(currency_digits("JPY"), Ok(0));
        assert_eq!(currency_digits("KWD"), Ok(3));
        assert!(currency_digits("XAU").is_err());
        assert!(currency_digits("eur").is_err());
        assert_eq!(currency_numeric("EUR"), Ok(978));
        assert_eq!(currency_alpha(978), Some("EUR"));
    }
}
