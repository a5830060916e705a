//! Structures that several messages embed.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::error::MessageErrorKind;
use crate::tlv::{DecResult, EncResult, Reader, Slot, Tlv, Writer, key, push};
use crate::types::{
    Currency, IdempotencyKey, MaskedPan, PaymentMethod, ReceiptCopy, Timestamp, TransactionId,
    TransactionKind,
};

/// Field limits the decoder enforces (and the encoder checks), in bytes or entries.
pub mod limits {
    /// Names: model, firmware, merchant, client, operator.
    pub const NAME: u16 = 64;
    /// A merchant order reference.
    pub const ORDER_REF: u16 = 64;
    /// Metadata entries per command.
    pub const METADATA_ENTRIES: u16 = 16;
    /// A metadata key.
    pub const METADATA_KEY: u16 = 32;
    /// A metadata value.
    pub const METADATA_VALUE: u16 = 256;
    /// Free text: error details, prompts, receipt line values.
    pub const TEXT: u16 = 256;
    /// Short codes: authorisation code, AID, application label, card scheme, merchant id.
    pub const CODE: u16 = 32;
    /// A result's or receipt's reference: the terminal's own transaction reference (nexo
    /// terminals give ids of up to about 40 characters). Decoders accept 64 bytes; a native
    /// terminal sends at most 32, which decoders of the first version required.
    pub const REFERENCE: u16 = 64;
    /// Lines in a receipt section, or header lines in the configuration.
    pub const LINES: u16 = 32;
    /// Entries in a list (currencies, versions, amount limits, totals).
    pub const LIST: u16 = 64;
    /// A pairing or handshake body.
    pub const HANDSHAKE_BODY: u16 = 2048;
}

/// The smallest and largest amount a terminal accepts for one kind of transaction in one
/// currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AmountLimit {
    /// The transaction kind the limit applies to.
    pub kind: TransactionKind,
    /// The currency.
    pub currency: Currency,
    /// The smallest amount, in minor units.
    pub min: u64,
    /// The largest amount, in minor units (at least `min`).
    pub max: u64,
}

mod amount_limit {
    use super::key;
    pub(super) const KIND: u8 = key(1, true);
    pub(super) const CURRENCY: u8 = key(2, true);
    pub(super) const MIN: u8 = key(3, true);
    pub(super) const MAX: u8 = key(4, true);
}

impl Tlv for AmountLimit {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use amount_limit::*;
        if self.max < self.min {
            return Err(crate::MessageEncodeError::InvalidValue { key: MAX });
        }
        w.uint(KIND, self.kind.code().into());
        w.uint(CURRENCY, self.currency.code().into());
        w.uint(MIN, self.min);
        w.uint(MAX, self.max);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use amount_limit::*;
        let (mut kind, mut currency, mut min, mut max) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                KIND => kind.set(&f, f.code(TransactionKind::from_code))?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                MIN => min.set(&f, f.uint())?,
                MAX => max.set(&f, f.uint())?,
                _ => f.unknown()?,
            }
        }
        let min_v = min.required(MIN, r)?;
        let max_at = max.invalid(MAX);
        let max_v = max.required(MAX, r)?;
        if max_v < min_v {
            return Err(max_at);
        }
        Ok(Self {
            kind: kind.required(KIND, r)?,
            currency: currency.required(CURRENCY, r)?,
            min: min_v,
            max: max_v,
        })
    }
}

pub(crate) fn currency_of(f: &crate::tlv::Field<'_>) -> DecResult<Currency> {
    let code = f.u16()?;
    Currency::new(code).map_err(|_| f.fail(MessageErrorKind::InvalidValue { key: f.key }))
}

pub(crate) fn pan_of(f: &crate::tlv::Field<'_>) -> DecResult<MaskedPan> {
    let text = core::str::from_utf8(f.value)
        .map_err(|_| f.fail(MessageErrorKind::UnmaskedPan { key: f.key }))?;
    MaskedPan::parse(text).map_err(|_| f.fail(MessageErrorKind::UnmaskedPan { key: f.key }))
}

pub(crate) fn put_pan(w: &mut Writer<'_>, k: u8, pan: Option<&MaskedPan>) -> EncResult {
    match pan {
        Some(p) => w.text(k, &p.to_masked_string(), 19),
        None => Ok(()),
    }
}

/// Small key/value data of the shop's own (table number, cashier, loyalty id), kept with a money
/// command. Keys are unique and kept in sorted order, which makes the encoding deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// No entries.
    pub const fn new() -> Self {
        Self(BTreeMap::new())
    }

    /// Adds or replaces an entry, checking the limits: at most
    /// [`METADATA_ENTRIES`](limits::METADATA_ENTRIES) entries, keys of 1 to
    /// [`METADATA_KEY`](limits::METADATA_KEY) bytes, values of at most
    /// [`METADATA_VALUE`](limits::METADATA_VALUE) bytes.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Option<String>, MetadataError> {
        let (key, value) = (key.into(), value.into());
        if key.is_empty() || key.len() > usize::from(limits::METADATA_KEY) {
            return Err(MetadataError::Key);
        }
        if value.len() > usize::from(limits::METADATA_VALUE) {
            return Err(MetadataError::Value);
        }
        if !self.0.contains_key(&key) && self.0.len() >= usize::from(limits::METADATA_ENTRIES) {
            return Err(MetadataError::Full);
        }
        Ok(self.0.insert(key, value))
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>, k: u8) -> EncResult {
        crate::tlv::check_count(k, self.0.len(), limits::METADATA_ENTRIES)?;
        for (mk, mv) in &self.0 {
            w.nested(k, |w| {
                w.text(META_KEY, mk, limits::METADATA_KEY)?;
                w.text(META_VALUE, mv, limits::METADATA_VALUE)
            })?;
        }
        Ok(())
    }

    /// Decodes one entry and adds it; entries must come in ascending key order.
    pub(crate) fn decode_entry(&mut self, f: &crate::tlv::Field<'_>) -> DecResult<()> {
        let invalid = || f.fail(MessageErrorKind::InvalidValue { key: f.key });
        if self.0.len() >= usize::from(limits::METADATA_ENTRIES) {
            return Err(f.fail(MessageErrorKind::TooMany {
                key: f.key,
                max: limits::METADATA_ENTRIES,
            }));
        }
        let (mk, mv) = f.nested(decode_meta_entry)?;
        if mk.is_empty() {
            return Err(invalid());
        }
        if let Some((last, _)) = self.0.last_key_value()
            && *last >= mk
        {
            return Err(invalid());
        }
        self.0.insert(mk, mv);
        Ok(())
    }
}

const META_KEY: u8 = key(1, false);
const META_VALUE: u8 = key(2, false);

fn decode_meta_entry(r: &mut Reader<'_>) -> DecResult<(String, String)> {
    let (mut k, mut v) = (Slot::default(), Slot::default());
    while let Some(f) = r.next_field()? {
        match f.key {
            META_KEY => k.set(&f, f.text(limits::METADATA_KEY))?,
            META_VALUE => v.set(&f, f.text(limits::METADATA_VALUE))?,
            _ => f.unknown()?,
        }
    }
    Ok((k.required(META_KEY, r)?, v.required(META_VALUE, r)?))
}

/// Why a metadata entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// Keys are 1 to 32 bytes.
    Key,
    /// Values are at most 256 bytes.
    Value,
    /// At most 16 entries.
    Full,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "metadata keys are 1 to 32 bytes",
            Self::Value => "metadata values are at most 256 bytes",
            Self::Full => "at most 16 metadata entries per command",
        })
    }
}

impl core::error::Error for MetadataError {}

/// A secret an operator types: a PIN (4–12 digits) or a TOTP code (6–8 digits). It never
/// appears in `Debug` output and its memory is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorSecret(String);

impl OperatorSecret {
    /// Accepts 4 to 12 ASCII digits.
    pub fn new(digits: impl Into<String>) -> Result<Self, InvalidSecret> {
        let s = digits.into();
        if (4..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s))
        } else {
            let mut s = s;
            zeroize::Zeroize::zeroize(&mut s);
            Err(InvalidSecret)
        }
    }

    /// The digits. Compare them in constant time.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for OperatorSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorSecret(<redacted>)")
    }
}

/// An operator secret must be 4 to 12 digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidSecret;

impl fmt::Display for InvalidSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an operator PIN or TOTP code is 4 to 12 digits")
    }
}

impl core::error::Error for InvalidSecret {}

/// Proof that an operator allows a refund, void, settlement or configuration change. It only
/// ever travels inside the secure channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAuth {
    /// Who the operator is (as configured on the terminal).
    pub operator_id: String,
    /// What the operator typed.
    pub credential: Credential,
}

/// The kind of operator secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A PIN (4–12 digits).
    Pin(OperatorSecret),
    /// A time-based one-time password (RFC 6238, 6–8 digits).
    Totp(OperatorSecret),
}

mod operator {
    use super::key;
    pub(super) const ID: u8 = key(1, false);
    pub(super) const PIN: u8 = key(2, true);
    pub(super) const TOTP: u8 = key(3, true);
}

impl Tlv for OperatorAuth {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use operator::*;
        w.text(ID, &self.operator_id, limits::NAME)?;
        match &self.credential {
            Credential::Pin(s) => w.text(PIN, s.expose(), 12),
            Credential::Totp(s) => {
                if !(6..=8).contains(&s.expose().len()) {
                    return Err(crate::MessageEncodeError::InvalidValue { key: TOTP });
                }
                w.text(TOTP, s.expose(), 8)
            }
        }
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use operator::*;
        let (mut id, mut cred) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            let secret = |min: usize, max: usize| {
                let invalid = f.fail(MessageErrorKind::InvalidValue { key: f.key });
                if !(min..=max).contains(&f.value.len()) {
                    return Err(invalid);
                }
                let text = f.text(max as u16)?;
                OperatorSecret::new(text).map_err(|_| invalid)
            };
            match f.key {
                ID => id.set(&f, f.text(limits::NAME))?,
                PIN => cred.set(&f, secret(4, 12).map(Credential::Pin))?,
                TOTP => cred.set(&f, secret(6, 8).map(Credential::Totp))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            operator_id: id.required(ID, r)?,
            credential: cred.required(PIN, r)?,
        })
    }
}

/// Which earlier transaction a command refers to: by the terminal's transaction id, or by the
/// idempotency key the client gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionRef {
    /// The terminal's id of the transaction.
    Id(TransactionId),
    /// The idempotency key of the command that made it.
    Key(IdempotencyKey),
}

mod txn_ref {
    use super::key;
    pub(super) const ID: u8 = key(1, true);
    pub(super) const KEY: u8 = key(2, true);
}

impl Tlv for TransactionRef {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        match self {
            Self::Id(id) => w.id(txn_ref::ID, id.as_bytes()),
            Self::Key(k) => w.id(txn_ref::KEY, k.as_bytes()),
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let mut out = Slot::default();
        while let Some(f) = r.next_field()? {
            match f.key {
                txn_ref::ID => out.set(&f, f.array().map(|b| Self::Id(TransactionId(b))))?,
                txn_ref::KEY => out.set(&f, f.array().map(|b| Self::Key(IdempotencyKey(b))))?,
                _ => f.unknown()?,
            }
        }
        out.required(txn_ref::ID, r)
    }
}

/// One labelled line of a receipt (`"Table" : "12"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptLine {
    /// The label.
    pub label: String,
    /// The value.
    pub value: String,
}

const LINE_LABEL: u8 = key(1, false);
const LINE_VALUE: u8 = key(2, false);

impl Tlv for ReceiptLine {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.text(LINE_LABEL, &self.label, limits::NAME)?;
        w.text(LINE_VALUE, &self.value, limits::TEXT)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut label, mut value) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                LINE_LABEL => label.set(&f, f.text(limits::NAME))?,
                LINE_VALUE => value.set(&f, f.text(limits::TEXT))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            label: label.required(LINE_LABEL, r)?,
            value: value.required(LINE_VALUE, r)?,
        })
    }
}

/// A receipt as data: the fields a printer or a screen lays out, not only printable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Merchant or customer copy.
    pub copy: ReceiptCopy,
    /// Lines printed first (shop name and address as configured).
    pub header: Vec<String>,
    /// The merchant's name.
    pub merchant_name: Option<String>,
    /// The merchant's acquirer id.
    pub merchant_id: Option<String>,
    /// The terminal's id as printed.
    pub terminal_label: Option<String>,
    /// What kind of transaction.
    pub kind: TransactionKind,
    /// The amount, without tip and cashback.
    pub amount: u64,
    /// The currency.
    pub currency: Currency,
    /// Tip, if any.
    pub tip: Option<u64>,
    /// Cashback, if any.
    pub cashback: Option<u64>,
    /// When the transaction happened.
    pub time: Timestamp,
    /// How the customer paid.
    pub method: Option<PaymentMethod>,
    /// The card scheme (`VISA`, `MASTERCARD`, `GIROCARD`, ...).
    pub card_scheme: Option<String>,
    /// The masked card number.
    pub pan: Option<MaskedPan>,
    /// The EMV application identifier, as hex.
    pub aid: Option<String>,
    /// The EMV application label.
    pub application_label: Option<String>,
    /// The issuer's authorisation code.
    pub auth_code: Option<String>,
    /// The retrieval reference number.
    pub reference: Option<String>,
    /// The terminal's trace (STAN) number.
    pub trace: Option<u32>,
    /// The result as printed (`APPROVED`, `DECLINED 51`).
    pub result_text: Option<String>,
    /// Whether a signature line is printed.
    pub signature_line: bool,
    /// Further labelled lines.
    pub lines: Vec<ReceiptLine>,
    /// Lines printed last.
    pub footer: Vec<String>,
}

/// How many printed lines a receipt's header (and again its footer) holds when a protocol
/// gives only printed text ([`Receipt::fit_printed`]).
pub const RECEIPT_LINES: usize = 32;

impl Receipt {
    /// A terminal's printed lines as a receipt holds them: up to [`RECEIPT_LINES`] lines of up
    /// to 64 characters in the header, the rest in the footer (a terminal's receipt is 20 to 40
    /// lines of at most 40 characters; longer ones are cut, and say so in their last line).
    pub fn fit_printed(lines: &[String]) -> (Vec<String>, Vec<String>) {
        let cut = |l: &String| l.chars().take(64).collect::<String>();
        let mut all: Vec<String> = lines.iter().map(cut).collect();
        if all.len() > 2 * RECEIPT_LINES {
            all.truncate(2 * RECEIPT_LINES - 1);
            all.push(alloc::format!("[{} more lines]", lines.len() - all.len()));
        }
        let footer = all.split_off(all.len().min(RECEIPT_LINES));
        (all, footer)
    }
}

mod receipt {
    use super::key;
    pub(super) const COPY: u8 = key(1, true);
    pub(super) const HEADER: u8 = key(2, false);
    pub(super) const MERCHANT_NAME: u8 = key(3, false);
    pub(super) const MERCHANT_ID: u8 = key(4, false);
    pub(super) const TERMINAL: u8 = key(5, false);
    pub(super) const KIND: u8 = key(6, true);
    pub(super) const AMOUNT: u8 = key(7, true);
    pub(super) const CURRENCY: u8 = key(8, true);
    pub(super) const TIP: u8 = key(9, true);
    pub(super) const CASHBACK: u8 = key(10, true);
    pub(super) const TIME: u8 = key(11, false);
    pub(super) const METHOD: u8 = key(12, false);
    pub(super) const SCHEME: u8 = key(13, false);
    pub(super) const PAN: u8 = key(14, false);
    pub(super) const AID: u8 = key(15, false);
    pub(super) const APP_LABEL: u8 = key(16, false);
    pub(super) const AUTH_CODE: u8 = key(17, false);
    pub(super) const REFERENCE: u8 = key(18, false);
    pub(super) const TRACE: u8 = key(19, false);
    pub(super) const RESULT_TEXT: u8 = key(20, false);
    pub(super) const SIGNATURE_LINE: u8 = key(21, false);
    pub(super) const LINES: u8 = key(22, false);
    pub(super) const FOOTER: u8 = key(23, false);
}

impl Tlv for Receipt {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use receipt::*;
        w.uint(COPY, self.copy as u64);
        crate::tlv::check_count(HEADER, self.header.len(), limits::LINES)?;
        for line in &self.header {
            w.text(HEADER, line, limits::NAME)?;
        }
        w.opt_text(MERCHANT_NAME, self.merchant_name.as_deref(), limits::NAME)?;
        w.opt_text(MERCHANT_ID, self.merchant_id.as_deref(), limits::CODE)?;
        w.opt_text(TERMINAL, self.terminal_label.as_deref(), limits::CODE)?;
        w.uint(KIND, self.kind.code().into());
        w.uint(AMOUNT, self.amount);
        w.uint(CURRENCY, self.currency.code().into());
        w.opt_uint(TIP, self.tip);
        w.opt_uint(CASHBACK, self.cashback);
        w.uint(TIME, self.time.0);
        w.opt_uint(METHOD, self.method.map(|m| m.code().into()));
        w.opt_text(SCHEME, self.card_scheme.as_deref(), limits::CODE)?;
        put_pan(w, PAN, self.pan.as_ref())?;
        w.opt_text(AID, self.aid.as_deref(), limits::CODE)?;
        w.opt_text(APP_LABEL, self.application_label.as_deref(), limits::CODE)?;
        w.opt_text(AUTH_CODE, self.auth_code.as_deref(), limits::CODE)?;
        w.opt_text(REFERENCE, self.reference.as_deref(), limits::REFERENCE)?;
        w.opt_uint(TRACE, self.trace.map(u64::from));
        w.opt_text(RESULT_TEXT, self.result_text.as_deref(), limits::NAME)?;
        w.flag(SIGNATURE_LINE, self.signature_line);
        w.items(LINES, &self.lines, limits::LINES)?;
        crate::tlv::check_count(FOOTER, self.footer.len(), limits::LINES)?;
        for line in &self.footer {
            w.text(FOOTER, line, limits::TEXT)?;
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use receipt::*;
        let mut copy = Slot::default();
        let mut header = Vec::new();
        let (mut merchant_name, mut merchant_id, mut terminal) =
            (Slot::default(), Slot::default(), Slot::default());
        let (mut kind, mut amount, mut currency, mut tip, mut cashback, mut time) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut method, mut scheme, mut pan, mut aid, mut app_label) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut auth, mut reference, mut trace, mut result_text, mut signature_line) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut lines, mut footer) = (Vec::new(), Vec::new());
        while let Some(f) = r.next_field()? {
            match f.key {
                COPY => copy.set(&f, f.code(ReceiptCopy::from_code))?,
                HEADER => push(&mut header, &f, f.text(limits::NAME), limits::LINES)?,
                MERCHANT_NAME => merchant_name.set(&f, f.text(limits::NAME))?,
                MERCHANT_ID => merchant_id.set(&f, f.text(limits::CODE))?,
                TERMINAL => terminal.set(&f, f.text(limits::CODE))?,
                KIND => kind.set(&f, f.code(TransactionKind::from_code))?,
                AMOUNT => amount.set(&f, f.uint())?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                TIP => tip.set(&f, f.uint())?,
                CASHBACK => cashback.set(&f, f.uint())?,
                TIME => time.set(&f, f.uint().map(Timestamp))?,
                METHOD => method.set(&f, f.code(PaymentMethod::from_code))?,
                SCHEME => scheme.set(&f, f.text(limits::CODE))?,
                PAN => pan.set(&f, pan_of(&f))?,
                AID => aid.set(&f, f.text(limits::CODE))?,
                APP_LABEL => app_label.set(&f, f.text(limits::CODE))?,
                AUTH_CODE => auth.set(&f, f.text(limits::CODE))?,
                REFERENCE => reference.set(&f, f.text(limits::REFERENCE))?,
                TRACE => trace.set(&f, f.u32())?,
                RESULT_TEXT => result_text.set(&f, f.text(limits::NAME))?,
                SIGNATURE_LINE => signature_line.set(&f, f.flag())?,
                LINES => push(&mut lines, &f, f.item(), limits::LINES)?,
                FOOTER => push(&mut footer, &f, f.text(limits::TEXT), limits::LINES)?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            copy: copy.required(COPY, r)?,
            header,
            merchant_name: merchant_name.get(),
            merchant_id: merchant_id.get(),
            terminal_label: terminal.get(),
            kind: kind.required(KIND, r)?,
            amount: amount.required(AMOUNT, r)?,
            currency: currency.required(CURRENCY, r)?,
            tip: tip.get(),
            cashback: cashback.get(),
            time: time.required(TIME, r)?,
            method: method.get(),
            card_scheme: scheme.get(),
            pan: pan.get(),
            aid: aid.get(),
            application_label: app_label.get(),
            auth_code: auth.get(),
            reference: reference.get(),
            trace: trace.get(),
            result_text: result_text.get(),
            signature_line: signature_line.get().unwrap_or(false),
            lines,
            footer,
        })
    }
}
