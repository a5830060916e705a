//! Value types shared by many messages: identifiers, money, cards and the enumerations of the
//! protocol.

use alloc::string::String;
use core::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Sixteen opaque bytes; shown as 32 lowercase hex digits.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// Wraps sixteen bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The sixteen bytes.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// Builds an identifier from a 128-bit number (big-endian bytes), handy in tests.
            pub const fn from_u128(value: u128) -> Self {
                Self(value.to_be_bytes())
            }

            /// Parses 32 hex digits (either case).
            pub fn parse_hex(text: &str) -> Result<Self, ParseIdError> {
                parse_hex16(text).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl core::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_hex(s)
            }
        }
    };
}

id_type!(
    /// Correlates a response, progress event or cancel with the request it answers; chosen by
    /// the client, unique per connection.
    RequestId
);
id_type!(
    /// Chosen by the app for every money command and kept across retries: the terminal answers
    /// a repeated key with the original result instead of taking the payment twice.
    IdempotencyKey
);
id_type!(
    /// A terminal's permanent identity.
    TerminalId
);
id_type!(
    /// A client's (phone, tablet, cash register) permanent identity.
    ClientId
);
id_type!(
    /// The terminal's identifier of one transaction, used to refer back to it (void, refund,
    /// capture, receipt reprint).
    TransactionId
);

/// A string that is not 32 hex digits was given where an identifier was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseIdError;

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an identifier is exactly 32 hex digits")
    }
}

impl core::error::Error for ParseIdError {}

fn parse_hex16(text: &str) -> Result<[u8; 16], ParseIdError> {
    parse_hex_array(text).ok_or(ParseIdError)
}

/// `N` bytes from exactly `2 * N` hex digits (either case).
fn parse_hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A terminal's Ed25519 public key (32 bytes), as exchanged at pairing, kept in the journal with
/// every result it signed, and checked by `posbridge_crypto::verify_result`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A string that is not 64 hex digits was given where a public key was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseKeyError;

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an Ed25519 public key is exactly 64 hex digits")
    }
}

impl core::error::Error for ParseKeyError {}

/// The key from 64 hex digits (either case; surrounding white space ignored) — the form
/// [`Display`](fmt::Display) writes.
impl core::str::FromStr for PublicKey {
    type Err = ParseKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_array(s.trim()).map(Self).ok_or(ParseKeyError)
    }
}

/// An ISO 4217 numeric currency code (1–999), e.g. 978 for EUR.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(u16);

impl Currency {
    /// Euro.
    pub const EUR: Self = Self(978);
    /// US dollar.
    pub const USD: Self = Self(840);
    /// Pound sterling.
    pub const GBP: Self = Self(826);
    /// Swiss franc.
    pub const CHF: Self = Self(756);
    /// Chinese yuan renminbi.
    pub const CNY: Self = Self(156);
    /// Japanese yen.
    pub const JPY: Self = Self(392);

    /// Accepts an ISO 4217 numeric code in 1–999.
    pub const fn new(code: u16) -> Result<Self, InvalidCurrency> {
        if code >= 1 && code <= 999 {
            Ok(Self(code))
        } else {
            Err(InvalidCurrency(code))
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({:03})", self.0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// A number outside 1–999 was given as an ISO 4217 numeric currency code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidCurrency(pub u16);

impl fmt::Display for InvalidCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not an ISO 4217 numeric currency code (1-999; EUR is 978)",
            self.0
        )
    }
}

impl core::error::Error for InvalidCurrency {}

/// An amount of money: integer minor units (cents for EUR, yen for JPY) in a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Amount {
    /// Minor units; never fractional, never negative.
    pub minor: u64,
    /// The currency.
    pub currency: Currency,
}

impl Amount {
    /// `minor` units of `currency`.
    pub const fn new(minor: u64, currency: Currency) -> Self {
        Self { minor, currency }
    }
}

/// A card number as it may exist outside the terminal: the first six and last four digits only.
///
/// There is no way to build one that holds more digits: [`MaskedPan::mask`] drops the middle of a
/// full card number at once, and the wire form (`411111******1111`) is checked to contain
/// asterisks in every middle position.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskedPan {
    first6: [u8; 6],
    last4: [u8; 4],
    len: u8,
}

/// Why a card number could not be turned into a [`MaskedPan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaskedPanError {
    /// Card numbers have 13 to 19 digits.
    Length(usize),
    /// A character other than a digit (or, in the middle of a masked number, `*`).
    Character(usize),
    /// A digit where the masked form must have `*`: the text was not masked.
    NotMasked(usize),
}

impl fmt::Display for MaskedPanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(n) => write!(f, "a card number has 13 to 19 digits, not {n}"),
            Self::Character(i) => {
                write!(f, "unexpected character at position {i} of a card number")
            }
            Self::NotMasked(i) => write!(
                f,
                "card number is not masked at position {i}: only the first 6 and last 4 digits may be shown"
            ),
        }
    }
}

impl core::error::Error for MaskedPanError {}

impl MaskedPan {
    /// Keeps the first six and last four digits of a full card number and forgets the rest.
    /// Spaces are ignored. Use this on the terminal side, where the full number is read.
    pub fn mask(pan: &str) -> Result<Self, MaskedPanError> {
        let mut digits = [0u8; 19];
        let mut n = 0usize;
        for (i, c) in pan.bytes().enumerate() {
            match c {
                b' ' => continue,
                b'0'..=b'9' if n < 19 => {
                    digits[n] = c;
                    n += 1;
                }
                b'0'..=b'9' => return Err(MaskedPanError::Length(n + 1)),
                _ => return Err(MaskedPanError::Character(i)),
            }
        }
        let out = Self::from_parts(&digits[..n], n);
        digits.iter_mut().for_each(|d| *d = 0);
        out
    }

    fn from_parts(digits: &[u8], len: usize) -> Result<Self, MaskedPanError> {
        if !(13..=19).contains(&len) {
            return Err(MaskedPanError::Length(len));
        }
        let mut first6 = [0u8; 6];
        let mut last4 = [0u8; 4];
        first6.copy_from_slice(&digits[..6]);
        last4.copy_from_slice(&digits[len - 4..len]);
        Ok(Self {
            first6,
            last4,
            len: len as u8,
        })
    }

    /// Parses the masked form: 13–19 characters, six digits, asterisks, four digits.
    pub fn parse(masked: &str) -> Result<Self, MaskedPanError> {
        let b = masked.as_bytes();
        let len = b.len();
        if !(13..=19).contains(&len) {
            return Err(MaskedPanError::Length(len));
        }
        for (i, &c) in b.iter().enumerate() {
            let edge = i < 6 || i >= len - 4;
            match (edge, c) {
                (true, b'0'..=b'9') | (false, b'*') => {}
                (false, b'0'..=b'9') => return Err(MaskedPanError::NotMasked(i)),
                _ => return Err(MaskedPanError::Character(i)),
            }
        }
        let mut digits = [0u8; 19];
        digits[..len].copy_from_slice(b);
        Self::from_parts(&digits[..len], len)
    }

    /// The first six digits (the issuer identification number), as ASCII.
    pub fn first6(&self) -> &str {
        core::str::from_utf8(&self.first6).unwrap_or("")
    }

    /// The last four digits, as ASCII.
    pub fn last4(&self) -> &str {
        core::str::from_utf8(&self.last4).unwrap_or("")
    }

    /// How many digits the full card number has.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a masked card number has at least 13 positions.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The masked form, e.g. `411111******1111`.
    pub fn to_masked_string(&self) -> String {
        let mut s = String::with_capacity(self.len());
        s.push_str(self.first6());
        for _ in 0..self.len() - 10 {
            s.push('*');
        }
        s.push_str(self.last4());
        s
    }
}

impl fmt::Display for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.first6())?;
        for _ in 0..self.len() - 10 {
            f.write_str("*")?;
        }
        f.write_str(self.last4())
    }
}

impl fmt::Debug for MaskedPan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskedPan({self})")
    }
}

/// A point in time: milliseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

/// The name of a value of this crate's enums as exported and stored: its variant in snake case
/// (`PreAuthCancel` → `pre_auth_cancel`, `Declined(..)` → `declined`).
pub fn snake_name(value: &dyn fmt::Debug) -> String {
    let debug = alloc::format!("{value:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            break;
        }
    }
    out
}

/// Civil dates of the proleptic Gregorian calendar as day numbers since 1970-01-01, for
/// protocols that carry dates as text or digits (ZVT's `MMDD`, nexo's ISO 8601).
pub mod civil {
    /// Days since 1970-01-01 of the date `y`-`m`-`d` (month 1–12, day 1–31; not checked).
    pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date (year, month 1–12, day 1–31) of day `z` since 1970-01-01.
    pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    /// The number of days of month `m` (1–12) of year `y`.
    pub fn days_in_month(y: i64, m: u32) -> u32 {
        match m {
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn days_round_trip_over_four_centuries() {
            for z in -200_000..200_000 {
                let (y, m, d) = civil_from_days(z);
                assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
                assert_eq!(days_from_civil(y, m, d), z);
            }
            assert_eq!(days_from_civil(1970, 1, 1), 0);
            assert_eq!(civil_from_days(20_426), (2025, 12, 4));
        }
    }
}

macro_rules! code_enum {
    (
        $(#[$doc:meta])*
        $name:ident, $set:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $code:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The one-byte code on the wire.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The value for a wire code, if it is one this version knows.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        /// A set of
        #[doc = concat!("[`", stringify!($name), "`]")]
        /// values, as a bit mask (bit *n* for code *n*). Bits this version does not know are kept,
        /// so that a set from a newer peer survives a round trip.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $set(pub u32);

        impl $set {
            /// No values.
            pub const EMPTY: Self = Self(0);

            /// Every value this version knows.
            pub const fn all() -> Self {
                let mut bits = 0u32;
                let mut i = 0;
                while i < $name::ALL.len() {
                    bits |= 1 << ($name::ALL[i] as u8);
                    i += 1;
                }
                Self(bits)
            }

            /// Whether `value` is in the set.
            pub const fn contains(self, value: $name) -> bool {
                self.0 & (1 << (value as u8)) != 0
            }

            /// Adds `value`.
            pub fn insert(&mut self, value: $name) {
                self.0 |= 1 << (value as u8);
            }

            /// Removes `value`.
            pub fn remove(&mut self, value: $name) {
                self.0 &= !(1 << (value as u8));
            }

            /// The set with `value` added.
            #[must_use]
            pub const fn with(self, value: $name) -> Self {
                Self(self.0 | 1 << (value as u8))
            }

            /// The known values in the set, in code order.
            pub fn iter(self) -> impl Iterator<Item = $name> {
                $name::ALL.iter().copied().filter(move |v| self.contains(*v))
            }
        }

        impl fmt::Debug for $set {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_set();
                list.entries(self.iter());
                let unknown = self.0 & !Self::all().0;
                if unknown != 0 {
                    list.entry(&format_args!("unknown bits {unknown:#x}"));
                }
                list.finish()
            }
        }

        impl FromIterator<$name> for $set {
            fn from_iter<I: IntoIterator<Item = $name>>(iter: I) -> Self {
                let mut set = Self::EMPTY;
                for v in iter {
                    set.insert(v);
                }
                set
            }
        }
    };
}

code_enum! {
    /// What a money command does.
    TransactionKind, KindSet {
        /// Take a payment.
        Sale = 1,
        /// Pay money back to a card, referring to an earlier sale or not.
        Refund = 2,
        /// Cancel an earlier transaction of the open batch before settlement.
        Void = 3,
        /// Reserve an amount (hotels, car rental, fuel) to capture later.
        PreAuth = 4,
        /// Raise the reserved amount of an open pre-authorisation.
        IncrementalAuth = 5,
        /// Complete a pre-authorisation with the final amount.
        Capture = 6,
        /// Release a pre-authorisation without taking money.
        PreAuthCancel = 7,
        /// Ask the card's balance (prepaid and gift cards); moves no money.
        BalanceInquiry = 8,
    }
}

code_enum! {
    /// How the customer pays.
    PaymentMethod, MethodSet {
        /// EMV chip, card inserted.
        Chip = 1,
        /// Contactless card or device (NFC).
        Contactless = 2,
        /// Magnetic stripe.
        Swipe = 3,
        /// A QR code shown by the customer's app and scanned by the terminal.
        CustomerQr = 4,
        /// A QR code shown by the terminal and scanned by the customer's app.
        MerchantQr = 5,
        /// A mobile wallet (tokenised card in a phone or watch).
        Wallet = 6,
    }
}

code_enum! {
    /// Optional abilities a terminal announces.
    Feature, FeatureSet {
        /// Tips can be entered or added.
        Tipping = 1,
        /// Cashback on a sale.
        Cashback = 2,
        /// The terminal may approve less than was asked (prepaid cards).
        PartialApproval = 3,
        /// Offline approval under a floor limit.
        OfflineApproval = 4,
        /// A signature can be captured on screen.
        SignatureCapture = 5,
        /// The terminal has its own printer.
        Printer = 6,
        /// Operator authorisation by TOTP (besides PIN).
        OperatorTotp = 7,
    }
}

code_enum! {
    /// Why a terminal pushed its telemetry (protocol 1.1): what changed since it last reported.
    /// Derived by [`Telemetry::changes_from`](crate::Telemetry::changes_from), so every terminal
    /// reports the same changes the same way.
    TelemetryChange, TelemetryChangeSet {
        /// The battery fell to or below the low threshold
        /// ([`BATTERY_LOW_PERCENT`](crate::Telemetry::BATTERY_LOW_PERCENT)).
        BatteryLow = 1,
        /// The power source or the charging state changed.
        Power = 2,
        /// The paper runs low.
        PaperLow = 3,
        /// The paper ran out: receipts cannot be printed.
        PaperOut = 4,
        /// Paper was refilled.
        PaperRefilled = 5,
        /// The terminal lost its acquirer: payments are declined or taken offline.
        Offline = 6,
        /// The acquirer is reachable again.
        Online = 7,
        /// The firmware or payment app version changed (an update was applied).
        Software = 8,
        /// The count of payments stored offline and not yet forwarded changed.
        StoredOffline = 9,
    }
}

/// How a final result came out. The detail (decline reason, error) travels in the same message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Approved in full.
    Approved,
    /// Approved for less than was asked; the approved amount is in the result.
    PartiallyApproved,
    /// Refused by the card, the issuer or the terminal's rules.
    Declined(DeclineReason),
    /// Cancelled by the client, the customer or the operator before it completed.
    Cancelled,
    /// Did not complete because of an error; no money moved.
    Failed(ErrorCode),
}

impl Outcome {
    pub(crate) const fn code(self) -> u8 {
        match self {
            Self::Approved => 1,
            Self::PartiallyApproved => 2,
            Self::Declined(_) => 3,
            Self::Cancelled => 4,
            Self::Failed(_) => 5,
        }
    }

    /// Whether money moved (approved in full or in part).
    pub const fn is_approved(self) -> bool {
        matches!(self, Self::Approved | Self::PartiallyApproved)
    }
}

macro_rules! code_newtype {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $konst:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u16);

        impl $name {
            $( $(#[$vdoc])* pub const $konst: Self = Self($code); )+

            /// A short English description, or `None` for a code this version does not know.
            pub const fn description(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some($text), )+
                    _ => None,
                }
            }

            /// The name of the constant, or `None` for a code this version does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some(stringify!($konst)), )+
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => write!(f, concat!(stringify!($name), "::{}"), name),
                    None => write!(f, concat!(stringify!($name), "({})"), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.description() {
                    Some(text) => f.write_str(text),
                    None => self.unlisted(f),
                }
            }
        }
    };
}

code_newtype! {
    /// Why a transaction was declined. The numbers follow the ISO 8583 response codes that
    /// acquirers use, so a terminal can pass its host's code through; codes this version does not
    /// name are kept as they are.
    DeclineReason {
        /// Do not honour (generic refusal by the issuer).
        DO_NOT_HONOUR = 5 => "do not honour",
        /// Refer to card issuer.
        REFER_TO_ISSUER = 1 => "refer to card issuer",
        /// The card is not valid.
        INVALID_CARD = 14 => "invalid card",
        /// Insufficient funds.
        INSUFFICIENT_FUNDS = 51 => "insufficient funds",
        /// The card has expired.
        EXPIRED_CARD = 54 => "expired card",
        /// The PIN was wrong.
        WRONG_PIN = 55 => "incorrect PIN",
        /// The card may not be used for this kind of transaction.
        NOT_PERMITTED = 57 => "transaction not permitted to card",
        /// Suspected fraud.
        SUSPECTED_FRAUD = 59 => "suspected fraud",
        /// Exceeds the card's amount limit.
        LIMIT_EXCEEDED = 61 => "exceeds withdrawal amount limit",
        /// Restricted card.
        RESTRICTED_CARD = 62 => "restricted card",
        /// Too many wrong PIN entries.
        PIN_TRIES_EXCEEDED = 75 => "allowable PIN tries exceeded",
        /// The issuer could not be reached and the terminal may not approve offline.
        ISSUER_UNAVAILABLE = 91 => "issuer or switch inoperative",
        /// Declined by the card itself (EMV offline decline).
        CARD_DECLINED = 200 => "declined by card",
        /// Declined by the terminal's own rules (risk management, floor limit).
        TERMINAL_DECLINED = 201 => "declined by terminal",
    }
}

impl DeclineReason {
    /// Where the codes that carry a payment host's own answer, kept raw, begin.
    const HOST: u16 = 0x0100;

    /// A payment host's own decline code, kept as it came (ZVT's result codes `01`–`63`): its
    /// meaning depends on the network operator or acquirer, so no reason is read into it unless a
    /// table chosen for that acquirer says so. Shown as "declined by the payment host, code 0x33".
    pub const fn host(code: u8) -> Self {
        Self(Self::HOST + code as u16)
    }

    /// The host's raw code, for a reason made by [`host`](Self::host).
    pub const fn host_code(self) -> Option<u8> {
        if self.0 >= Self::HOST && self.0 <= Self::HOST + 0xFF {
            Some((self.0 - Self::HOST) as u8)
        } else {
            None
        }
    }

    fn unlisted(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_code() {
            Some(code) => write!(f, "declined by the payment host, code 0x{code:02X}"),
            None => write!(f, "code {}", self.0),
        }
    }
}

impl ErrorCode {
    fn unlisted(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}", self.0)
    }
}

code_newtype! {
    /// What went wrong, in an error message or a failed result.
    ErrorCode {
        /// An error the sender could not classify.
        INTERNAL = 1 => "internal error in the terminal",
        /// The message type is not supported by the receiver.
        UNSUPPORTED_MESSAGE = 2 => "message not supported",
        /// No protocol version in common.
        UNSUPPORTED_VERSION = 3 => "no common protocol version",
        /// The request was malformed or inconsistent.
        INVALID_REQUEST = 4 => "invalid request",
        /// The amount is outside the terminal's limits for that transaction kind.
        AMOUNT_OUT_OF_RANGE = 5 => "amount outside the terminal's limits",
        /// The transaction kind is not enabled on the terminal.
        KIND_NOT_SUPPORTED = 6 => "transaction type not enabled",
        /// The payment method is not enabled on the terminal.
        METHOD_NOT_SUPPORTED = 7 => "payment method not enabled",
        /// The currency is not accepted by the terminal.
        CURRENCY_NOT_SUPPORTED = 8 => "currency not accepted",
        /// Operator authorisation is required and was not given.
        AUTHORIZATION_REQUIRED = 9 => "operator authorisation required",
        /// The operator PIN or TOTP code was wrong.
        AUTHORIZATION_FAILED = 10 => "operator authorisation failed",
        /// Too many wrong operator credentials; try again later.
        LOCKED_OUT = 11 => "operator locked out",
        /// The client is not paired with this terminal.
        NOT_PAIRED = 12 => "not paired",
        /// The referenced original transaction does not exist (or is in another batch).
        ORIGINAL_NOT_FOUND = 13 => "original transaction not found",
        /// The referenced transaction can no longer be changed (already voided, captured, settled).
        ORIGINAL_NOT_ELIGIBLE = 14 => "original transaction not eligible",
        /// The idempotency key was used before for a different request.
        KEY_REUSED = 15 => "idempotency key reused with different parameters",
        /// The card was removed before the transaction completed.
        CARD_REMOVED = 16 => "card removed too early",
        /// The card could not be read.
        CARD_READ_ERROR = 17 => "card could not be read",
        /// The customer did not present a card or enter a PIN in time.
        TIMEOUT = 18 => "customer did not respond in time",
        /// The terminal could not reach its payment host.
        HOST_UNREACHABLE = 19 => "payment host unreachable",
        /// The terminal is busy with another client and cannot queue the request.
        BUSY = 20 => "terminal busy",
        /// Nothing matched the query.
        NOT_FOUND = 21 => "not found",
        /// The request's deadline passed before it could be processed.
        DEADLINE_EXCEEDED = 22 => "deadline exceeded",
        /// The terminal is out of paper or its printer failed.
        PRINTER_ERROR = 23 => "printer error",
        /// The batch must be settled before more transactions are accepted.
        BATCH_FULL = 24 => "batch full; settle first",
    }
}

/// Which copy of a receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptCopy {
    /// The merchant's copy (kept by the shop, may carry the signature line).
    Merchant = 1,
    /// The customer's copy.
    Customer = 2,
}

impl ReceiptCopy {
    pub(crate) const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Merchant),
            2 => Some(Self::Customer),
            _ => None,
        }
    }
}

/// A step the customer or the terminal is at while a request runs. Codes this version does not
/// know arrive as [`ProgressStage::Other`] so that a newer terminal does not break an older app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgressStage {
    /// Waiting for the customer to insert, tap or swipe a card (or show a code).
    WaitingForCard,
    /// The card has been read.
    CardRead,
    /// The customer is entering the PIN.
    PinEntry,
    /// The terminal is asking the payment host.
    ProcessingOnline,
    /// The customer must sign (on screen or on the merchant receipt).
    SignatureRequired,
    /// The customer should remove the card.
    RemoveCard,
    /// A stage this version does not know; carries the wire code (never 1–6).
    Other(u8),
}

impl ProgressStage {
    /// The one-byte code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            Self::WaitingForCard => 1,
            Self::CardRead => 2,
            Self::PinEntry => 3,
            Self::ProcessingOnline => 4,
            Self::SignatureRequired => 5,
            Self::RemoveCard => 6,
            Self::Other(code) => code,
        }
    }

    /// The stage for a wire code.
    pub const fn from_code(code: u8) -> Self {
        match code {
            1 => Self::WaitingForCard,
            2 => Self::CardRead,
            3 => Self::PinEntry,
            4 => Self::ProcessingOnline,
            5 => Self::SignatureRequired,
            6 => Self::RemoveCard,
            other => Self::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn a_public_key_reads_back_what_it_writes() {
        let key = PublicKey(core::array::from_fn(|i| (i * 37) as u8));
        let text = key.to_string();
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!(text.to_uppercase().parse::<PublicKey>(), Ok(key));
        assert_eq!(format!(" {text}\n").parse::<PublicKey>(), Ok(key));
        for bad in [
            "",
            "abc",
            &text[1..],
            &format!("{text}00"),
            &text.replace('0', "g"),
        ] {
            assert_eq!(bad.parse::<PublicKey>(), Err(ParseKeyError), "{bad:?}");
        }
        assert!(ParseKeyError.to_string().contains("64 hex digits"));
    }

    #[test]
    fn masked_pan_from_full_number_keeps_only_ten_digits() {
        let pan = MaskedPan::mask("4111 1111 1111 1111").unwrap();
        assert_eq!(pan.to_masked_string(), "411111******1111");
        assert_eq!(format!("{pan:?}"), "MaskedPan(411111******1111)");
        assert_eq!(pan.len(), 16);
        let pan = MaskedPan::mask("5413330089099130123").unwrap();
        assert_eq!(pan.to_string(), "541333*********0123");
    }

    #[test]
    fn masked_pan_rejects_unmasked_and_malformed_text() {
        assert_eq!(
            MaskedPan::parse("4111111111111111"),
            Err(MaskedPanError::NotMasked(6))
        );
        assert_eq!(
            MaskedPan::parse("411111****1111"),
            Ok(MaskedPan::mask("41111122221111").unwrap())
        );
        assert_eq!(
            MaskedPan::parse("41111*******1111"),
            Err(MaskedPanError::Character(5))
        );
        assert_eq!(
            MaskedPan::parse("411111**1111"),
            Err(MaskedPanError::Length(12))
        );
        assert_eq!(
            MaskedPan::mask("4111-1111"),
            Err(MaskedPanError::Character(4))
        );
        assert_eq!(
            MaskedPan::mask("41111111111111111111"),
            Err(MaskedPanError::Length(20))
        );
    }

    #[test]
    fn currency_range() {
        assert_eq!(Currency::new(978), Ok(Currency::EUR));
        assert_eq!(Currency::new(0), Err(InvalidCurrency(0)));
        assert_eq!(Currency::new(1000), Err(InvalidCurrency(1000)));
    }

    #[test]
    fn ids_print_and_parse_as_hex() {
        let id = RequestId::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(id.to_string(), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(
            "0102030405060708090A0B0C0D0E0F10".parse::<RequestId>(),
            Ok(id)
        );
        assert_eq!(RequestId::parse_hex("0102"), Err(ParseIdError));
        assert_eq!(RequestId::parse_hex(&"zz".repeat(16)), Err(ParseIdError));
    }

    #[test]
    fn sets_keep_unknown_bits() {
        let set = MethodSet(MethodSet::all().0 | 1 << 30);
        assert!(set.contains(PaymentMethod::Wallet));
        assert_eq!(set.iter().count(), PaymentMethod::ALL.len());
        assert!(format!("{set:?}").contains("unknown bits 0x40000000"));
        let kinds: KindSet = [TransactionKind::Sale, TransactionKind::Refund]
            .into_iter()
            .collect();
        assert_eq!(kinds.0, 0b110);
    }

    #[test]
    fn codes_name_themselves() {
        assert_eq!(
            format!("{:?}", DeclineReason::INSUFFICIENT_FUNDS),
            "DeclineReason::INSUFFICIENT_FUNDS"
        );
        assert_eq!(format!("{}", DeclineReason(999)), "code 999");
        assert_eq!(
            ErrorCode::KEY_REUSED.description(),
            Some("idempotency key reused with different parameters")
        );
    }
}
