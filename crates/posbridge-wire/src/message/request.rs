//! Requests from the client: money commands and the queries and commands around them.

use alloc::string::String;
use alloc::vec::Vec;

use super::common::{AmountLimit, Metadata, OperatorAuth, TransactionRef, currency_of, limits};
use super::session::{currency_list, put_currencies};
use crate::error::{MessageEncodeError, MessageError};
use crate::tlv::{DecResult, EncResult, Field, Reader, Slot, Tlv, Writer, key, push};
use crate::types::{
    Amount, Currency, IdempotencyKey, KindSet, MethodSet, ReceiptCopy, RequestId, Timestamp,
    TransactionKind,
};

/// What a money command asks for, with exactly the fields its kind needs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionCommand {
    /// Take a payment, optionally with a tip and cashback on top of `amount`.
    Sale {
        /// The price of the goods.
        amount: Amount,
        /// Tip, in the same currency.
        tip: Option<u64>,
        /// Cash handed to the customer, in the same currency.
        cashback: Option<u64>,
    },
    /// Pay money back: referenced (to an earlier sale) or unreferenced.
    Refund {
        /// The amount to pay back.
        amount: Amount,
        /// The original sale, if known.
        original: Option<TransactionRef>,
    },
    /// Cancel an earlier transaction of the open batch.
    Void {
        /// The transaction to cancel.
        original: TransactionRef,
    },
    /// Reserve an amount to capture later.
    PreAuth {
        /// The amount to reserve.
        amount: Amount,
    },
    /// Raise the reserved amount of a pre-authorisation by `amount`.
    IncrementalAuth {
        /// The pre-authorisation.
        original: TransactionRef,
        /// The increment.
        amount: Amount,
    },
    /// Complete a pre-authorisation with the final amount.
    Capture {
        /// The pre-authorisation.
        original: TransactionRef,
        /// The final amount.
        amount: Amount,
        /// Tip added at capture (restaurants, hotels).
        tip: Option<u64>,
    },
    /// Release a pre-authorisation.
    PreAuthCancel {
        /// The pre-authorisation.
        original: TransactionRef,
    },
    /// Ask the card's balance.
    BalanceInquiry {
        /// The currency of interest, if the card holds several.
        currency: Option<Currency>,
    },
}

impl TransactionCommand {
    /// The kind of transaction.
    pub const fn kind(&self) -> TransactionKind {
        match self {
            Self::Sale { .. } => TransactionKind::Sale,
            Self::Refund { .. } => TransactionKind::Refund,
            Self::Void { .. } => TransactionKind::Void,
            Self::PreAuth { .. } => TransactionKind::PreAuth,
            Self::IncrementalAuth { .. } => TransactionKind::IncrementalAuth,
            Self::Capture { .. } => TransactionKind::Capture,
            Self::PreAuthCancel { .. } => TransactionKind::PreAuthCancel,
            Self::BalanceInquiry { .. } => TransactionKind::BalanceInquiry,
        }
    }

    /// The amount the command names, if its kind has one.
    pub const fn amount(&self) -> Option<Amount> {
        match self {
            Self::Sale { amount, .. }
            | Self::Refund { amount, .. }
            | Self::PreAuth { amount }
            | Self::IncrementalAuth { amount, .. }
            | Self::Capture { amount, .. } => Some(*amount),
            Self::Void { .. } | Self::PreAuthCancel { .. } | Self::BalanceInquiry { .. } => None,
        }
    }

    /// The earlier transaction the command refers to, if any.
    pub const fn original(&self) -> Option<&TransactionRef> {
        match self {
            Self::Refund { original, .. } => original.as_ref(),
            Self::Void { original }
            | Self::IncrementalAuth { original, .. }
            | Self::Capture { original, .. }
            | Self::PreAuthCancel { original } => Some(original),
            Self::Sale { .. } | Self::PreAuth { .. } | Self::BalanceInquiry { .. } => None,
        }
    }
}

/// A money command: sale, refund, void, pre-authorisation and its follow-ups, balance inquiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRequest {
    /// Correlates progress and result with this request.
    pub request_id: RequestId,
    /// Kept across retries: a repeat returns the original result.
    pub idempotency_key: IdempotencyKey,
    /// What to do.
    pub command: TransactionCommand,
    /// Restricts the payment methods for this transaction (for example QR only).
    pub methods: Option<MethodSet>,
    /// The shop's own order reference.
    pub order_ref: Option<String>,
    /// The shop's own key/value data.
    pub metadata: Metadata,
    /// Operator authorisation, for kinds that need it (refund, void).
    pub operator: Option<OperatorAuth>,
    /// How long the customer has to present a card, in milliseconds.
    pub timeout_ms: Option<u32>,
}

impl TransactionRequest {
    /// A request with no options: no method restriction, order reference, metadata, operator or
    /// timeout.
    pub fn new(
        request_id: RequestId,
        idempotency_key: IdempotencyKey,
        command: TransactionCommand,
    ) -> Self {
        Self {
            request_id,
            idempotency_key,
            command,
            methods: None,
            order_ref: None,
            metadata: Metadata::new(),
            operator: None,
            timeout_ms: None,
        }
    }
}

mod txn {
    use super::key;
    pub(super) const REQUEST_ID: u8 = key(1, true);
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const KIND: u8 = key(3, true);
    pub(super) const AMOUNT: u8 = key(4, true);
    pub(super) const CURRENCY: u8 = key(5, true);
    pub(super) const TIP: u8 = key(6, true);
    pub(super) const CASHBACK: u8 = key(7, true);
    pub(super) const ORIGINAL: u8 = key(8, true);
    pub(super) const METHODS: u8 = key(9, true);
    pub(super) const ORDER_REF: u8 = key(10, false);
    pub(super) const METADATA: u8 = key(11, false);
    pub(super) const OPERATOR: u8 = key(12, true);
    pub(super) const TIMEOUT: u8 = key(13, false);
}

impl Tlv for TransactionRequest {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use TransactionCommand as C;
        use txn::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(KEY, self.idempotency_key.as_bytes());
        w.uint(KIND, self.command.kind().code().into());
        let currency = match &self.command {
            C::BalanceInquiry { currency } => *currency,
            c => c.amount().map(|a| a.currency),
        };
        w.opt_uint(AMOUNT, self.command.amount().map(|a| a.minor));
        w.opt_uint(CURRENCY, currency.map(|c| c.code().into()));
        let (tip, cashback) = match &self.command {
            C::Sale { tip, cashback, .. } => (*tip, *cashback),
            C::Capture { tip, .. } => (*tip, None),
            _ => (None, None),
        };
        w.opt_uint(TIP, tip);
        w.opt_uint(CASHBACK, cashback);
        w.opt_item(ORIGINAL, self.command.original())?;
        w.opt_uint(METHODS, self.methods.map(|m| m.0.into()));
        w.opt_text(ORDER_REF, self.order_ref.as_deref(), limits::ORDER_REF)?;
        self.metadata.encode(w, METADATA)?;
        w.opt_item(OPERATOR, self.operator.as_ref())?;
        w.opt_uint(TIMEOUT, self.timeout_ms.map(u64::from));
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use TransactionCommand as C;
        use txn::*;
        let (mut request_id, mut key_, mut kind) =
            (Slot::default(), Slot::default(), Slot::default());
        let (mut amount, mut currency, mut tip, mut cashback, mut original) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut methods, mut order_ref, mut operator, mut timeout) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let mut metadata = Metadata::new();
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => request_id.set(&f, f.array().map(RequestId))?,
                KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                KIND => kind.set(&f, f.code(TransactionKind::from_code))?,
                AMOUNT => amount.set(&f, f.uint())?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                TIP => tip.set(&f, f.uint())?,
                CASHBACK => cashback.set(&f, f.uint())?,
                ORIGINAL => original.set(&f, f.item::<TransactionRef>())?,
                METHODS => methods.set(&f, f.u32().map(MethodSet))?,
                ORDER_REF => order_ref.set(&f, f.text(limits::ORDER_REF))?,
                METADATA => metadata.decode_entry(&f)?,
                OPERATOR => operator.set(&f, f.item::<OperatorAuth>())?,
                TIMEOUT => timeout.set(&f, f.u32())?,
                _ => f.unknown()?,
            }
        }
        let kind = kind.required(KIND, r)?;
        // Each kind takes exactly its own fields; anything else is refused rather than ignored,
        // because a field the terminal would drop could change what the customer pays.
        let forbid =
            |slot_present: bool, at: MessageError| if slot_present { Err(at) } else { Ok(()) };
        use TransactionKind as K;
        let needs_amount = !matches!(kind, K::Void | K::PreAuthCancel | K::BalanceInquiry);
        if !needs_amount {
            forbid(amount.is_some(), amount.invalid(AMOUNT))?;
            if kind != K::BalanceInquiry {
                forbid(currency.is_some(), currency.invalid(CURRENCY))?;
            }
        }
        if !matches!(kind, K::Sale | K::Capture) {
            forbid(tip.is_some(), tip.invalid(TIP))?;
        }
        if kind != K::Sale {
            forbid(cashback.is_some(), cashback.invalid(CASHBACK))?;
        }
        if matches!(kind, K::Sale | K::PreAuth | K::BalanceInquiry) {
            forbid(original.is_some(), original.invalid(ORIGINAL))?;
        }
        let currency = currency.get();
        let amount = if needs_amount {
            let minor = amount.required(AMOUNT, r)?;
            Some(Amount::new(minor, currency.ok_or(r.missing(CURRENCY))?))
        } else {
            None
        };
        let original = original.get();
        let original_ref = || original.ok_or(r.missing(ORIGINAL));
        let command = match (kind, amount) {
            (K::Sale, Some(amount)) => C::Sale {
                amount,
                tip: tip.get(),
                cashback: cashback.get(),
            },
            (K::Refund, Some(amount)) => C::Refund { amount, original },
            (K::Void, _) => C::Void {
                original: original_ref()?,
            },
            (K::PreAuth, Some(amount)) => C::PreAuth { amount },
            (K::IncrementalAuth, Some(amount)) => C::IncrementalAuth {
                original: original_ref()?,
                amount,
            },
            (K::Capture, Some(amount)) => C::Capture {
                original: original_ref()?,
                amount,
                tip: tip.get(),
            },
            (K::PreAuthCancel, _) => C::PreAuthCancel {
                original: original_ref()?,
            },
            _ => C::BalanceInquiry { currency },
        };
        Ok(Self {
            request_id: request_id.required(REQUEST_ID, r)?,
            idempotency_key: key_.required(KEY, r)?,
            command,
            methods: methods.get(),
            order_ref: order_ref.get(),
            metadata,
            operator: operator.get(),
            timeout_ms: timeout.get(),
        })
    }
}

const REQUEST_ID: u8 = key(1, true);

fn request_id(f: &Field<'_>) -> DecResult<RequestId> {
    f.array().map(RequestId)
}

/// Asks what became of the money command with this idempotency key (after a disconnect, a
/// crash or a timeout): not found, in progress, or done with its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusQuery {
    /// This query's id.
    pub request_id: RequestId,
    /// The command asked about.
    pub idempotency_key: IdempotencyKey,
}

const STATUS_KEY: u8 = key(2, true);

impl Tlv for StatusQuery {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(STATUS_KEY, self.idempotency_key.as_bytes());
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut k) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                STATUS_KEY => k.set(&f, f.array().map(IdempotencyKey))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            idempotency_key: k.required(STATUS_KEY, r)?,
        })
    }
}

/// Messages that carry only a request id.
macro_rules! id_only {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            /// This request's id.
            pub request_id: RequestId,
        }

        impl Tlv for $name {
            fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
                w.id(REQUEST_ID, self.request_id.as_bytes());
                Ok(())
            }

            fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
                let mut id = Slot::default();
                while let Some(f) = r.next_field()? {
                    match f.key {
                        REQUEST_ID => id.set(&f, request_id(&f))?,
                        _ => f.unknown()?,
                    }
                }
                Ok(Self {
                    request_id: id.required(REQUEST_ID, r)?,
                })
            }
        }
    };
}

id_only!(
    /// Asks for the terminal's most recent final result (whatever client started it).
    LastTransactionQuery
);
id_only!(
    /// Asks for the terminal's configuration.
    ConfigRead
);
id_only!(
    /// Asks for the terminal's telemetry (protocol 1.1); answered by a
    /// [`TelemetryReport`](crate::TelemetryReport).
    TelemetryQuery
);
id_only!(
    /// Gives the terminal back, or leaves its queue (protocol 1.1 leases). Answered by a
    /// [`LeaseResponse`](crate::LeaseResponse) saying released.
    LeaseRelease
);

/// Asks the terminal to abort a running request. The answer is a [`CancelResponse`]; if the
/// cancel came too late, the request's real result still arrives and stands.
///
/// [`CancelResponse`]: crate::CancelResponse
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// This request's id.
    pub request_id: RequestId,
    /// The request to abort.
    pub target: RequestId,
}

const TARGET: u8 = key(2, true);

impl Tlv for Cancel {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(TARGET, self.target.as_bytes());
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut target) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                TARGET => target.set(&f, request_id(&f))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            target: target.required(TARGET, r)?,
        })
    }
}

/// Closes the open batch and asks for its totals (end of day).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementRequest {
    /// This request's id.
    pub request_id: RequestId,
    /// Kept across retries, so that a repeated settlement returns the first one's totals.
    pub idempotency_key: IdempotencyKey,
    /// Operator authorisation.
    pub operator: Option<OperatorAuth>,
}

mod settle {
    use super::key;
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const OPERATOR: u8 = key(3, true);
}

impl Tlv for SettlementRequest {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(settle::KEY, self.idempotency_key.as_bytes());
        w.opt_item(settle::OPERATOR, self.operator.as_ref())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut k, mut op) = (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                settle::KEY => k.set(&f, f.array().map(IdempotencyKey))?,
                settle::OPERATOR => op.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            idempotency_key: k.required(settle::KEY, r)?,
            operator: op.get(),
        })
    }
}

/// Asks for a receipt of an earlier transaction (reprint).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiptRequest {
    /// This request's id.
    pub request_id: RequestId,
    /// The transaction.
    pub target: TransactionRef,
    /// Which copy.
    pub copy: ReceiptCopy,
}

mod receipt_req {
    use super::key;
    pub(super) const TARGET: u8 = key(2, true);
    pub(super) const COPY: u8 = key(3, true);
}

impl Tlv for ReceiptRequest {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.item(receipt_req::TARGET, &self.target)?;
        w.uint(receipt_req::COPY, self.copy as u64);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut target, mut copy) = (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                receipt_req::TARGET => target.set(&f, f.item())?,
                receipt_req::COPY => copy.set(&f, f.code(ReceiptCopy::from_code))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            target: target.required(receipt_req::TARGET, r)?,
            copy: copy.required(receipt_req::COPY, r)?,
        })
    }
}

/// A terminal's configuration, or a change to it: in a [`ConfigWrite`] only the fields that are
/// `Some` change; in a [`ConfigResponse`](crate::ConfigResponse) every field the terminal has is
/// `Some`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TerminalConfig {
    /// The merchant's name (printed, announced in capabilities).
    pub merchant_name: Option<String>,
    /// Transaction kinds enabled.
    pub kinds: Option<KindSet>,
    /// Payment methods enabled.
    pub methods: Option<MethodSet>,
    /// Currencies accepted.
    pub currencies: Option<Vec<Currency>>,
    /// Amount limits.
    pub limits: Option<Vec<AmountLimit>>,
    /// Whether the terminal asks for a tip.
    pub tipping: Option<bool>,
    /// Tip suggestions in percent (1–100), at most 8.
    pub tip_percentages: Option<Vec<u8>>,
    /// Lines printed at the top of receipts, at most 8.
    pub receipt_header: Option<Vec<String>>,
    /// The terminal's clock: read it, or set it from the client.
    pub clock: Option<Timestamp>,
}

mod config {
    use super::key;
    pub(super) const MERCHANT: u8 = key(1, false);
    pub(super) const KINDS: u8 = key(2, true);
    pub(super) const METHODS: u8 = key(3, true);
    pub(super) const CURRENCIES: u8 = key(4, true);
    pub(super) const LIMITS: u8 = key(5, true);
    pub(super) const TIPPING: u8 = key(6, false);
    pub(super) const TIPS: u8 = key(7, false);
    pub(super) const HEADER: u8 = key(8, false);
    pub(super) const CLOCK: u8 = key(9, false);
    pub(super) const ENTRY: u8 = key(1, false);
}

const MAX_TIPS: u16 = 8;
const MAX_HEADER_LINES: u16 = 8;

impl Tlv for TerminalConfig {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use config::*;
        w.opt_text(MERCHANT, self.merchant_name.as_deref(), limits::NAME)?;
        w.opt_uint(KINDS, self.kinds.map(|k| k.0.into()));
        w.opt_uint(METHODS, self.methods.map(|m| m.0.into()));
        if let Some(c) = &self.currencies {
            put_currencies(w, CURRENCIES, c)?;
        }
        if let Some(list) = &self.limits {
            w.nested(LIMITS, |w| w.items(ENTRY, list, limits::LIST))?;
        }
        w.opt_uint(TIPPING, self.tipping.map(u64::from));
        if let Some(tips) = &self.tip_percentages {
            crate::tlv::check_count(TIPS, tips.len(), MAX_TIPS)?;
            if tips.iter().any(|p| !(1..=100).contains(p)) {
                return Err(MessageEncodeError::InvalidValue { key: TIPS });
            }
            w.bytes(TIPS, tips, MAX_TIPS)?;
        }
        if let Some(lines) = &self.receipt_header {
            crate::tlv::check_count(HEADER, lines.len(), MAX_HEADER_LINES)?;
            w.nested(HEADER, |w| {
                lines
                    .iter()
                    .try_for_each(|l| w.text(ENTRY, l, limits::NAME))
            })?;
        }
        w.opt_uint(CLOCK, self.clock.map(|t| t.0));
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use config::*;
        let (mut merchant, mut kinds, mut methods, mut currencies, mut limit_list) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut tipping, mut tips, mut header, mut clock) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                MERCHANT => merchant.set(&f, f.text(limits::NAME))?,
                KINDS => kinds.set(&f, f.u32().map(KindSet))?,
                METHODS => methods.set(&f, f.u32().map(MethodSet))?,
                CURRENCIES => currencies.set(&f, currency_list(&f))?,
                LIMITS => limit_list.set(
                    &f,
                    f.nested(|r| {
                        let mut out = Vec::new();
                        while let Some(e) = r.next_field()? {
                            match e.key {
                                ENTRY => push(&mut out, &e, e.item(), limits::LIST)?,
                                _ => e.unknown()?,
                            }
                        }
                        Ok(out)
                    }),
                )?,
                TIPPING => tipping.set(&f, f.bool())?,
                TIPS => tips.set(&f, {
                    f.bytes(MAX_TIPS)
                        .and_then(|t| f.check(t, |t| t.iter().all(|p| (1..=100).contains(p))))
                })?,
                HEADER => header.set(
                    &f,
                    f.nested(|r| {
                        let mut out = Vec::new();
                        while let Some(e) = r.next_field()? {
                            match e.key {
                                ENTRY => {
                                    push(&mut out, &e, e.text(limits::NAME), MAX_HEADER_LINES)?
                                }
                                _ => e.unknown()?,
                            }
                        }
                        Ok(out)
                    }),
                )?,
                CLOCK => clock.set(&f, f.uint().map(Timestamp))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            merchant_name: merchant.get(),
            kinds: kinds.get(),
            methods: methods.get(),
            currencies: currencies.get(),
            limits: limit_list.get(),
            tipping: tipping.get(),
            tip_percentages: tips.get(),
            receipt_header: header.get(),
            clock: clock.get(),
        })
    }
}

/// Changes the terminal's configuration; answered with a [`ConfigResponse`] holding the new
/// configuration.
///
/// [`ConfigResponse`]: crate::ConfigResponse
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWrite {
    /// This request's id.
    pub request_id: RequestId,
    /// The fields to change.
    pub config: TerminalConfig,
    /// Operator authorisation.
    pub operator: Option<OperatorAuth>,
}

mod config_write {
    use super::key;
    pub(super) const CONFIG: u8 = key(2, true);
    pub(super) const OPERATOR: u8 = key(3, true);
}

impl Tlv for ConfigWrite {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.item(config_write::CONFIG, &self.config)?;
        w.opt_item(config_write::OPERATOR, self.operator.as_ref())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut config, mut op) = (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                config_write::CONFIG => config.set(&f, f.item())?,
                config_write::OPERATOR => op.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            config: config.required(config_write::CONFIG, r)?,
            operator: op.get(),
        })
    }
}
