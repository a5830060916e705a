//! What the terminal sends back: progress, results, status, settlement totals, receipts,
//! configuration.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::common::{Receipt, currency_of, limits, pan_of, put_pan};
use super::emv::EmvData;
use super::request::TerminalConfig;
use crate::error::MessageEncodeError;
use crate::tlv::{DecResult, EncResult, Field, Reader, Slot, Tlv, Writer, key, push};
use crate::types::{
    Amount, Currency, DeclineReason, ErrorCode, IdempotencyKey, MaskedPan, Outcome, PaymentMethod,
    ProgressStage, RequestId, TerminalId, Timestamp, TransactionId, TransactionKind,
};

const REQUEST_ID: u8 = key(1, true);

fn request_id(f: &Field<'_>) -> DecResult<RequestId> {
    f.array().map(RequestId)
}

/// Where a running request is (shown to the cashier: "insert card", "enter PIN").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The request.
    pub request_id: RequestId,
    /// The stage reached.
    pub stage: ProgressStage,
    /// The payment method, once the card has been read.
    pub method: Option<PaymentMethod>,
    /// The terminal's prompt text, if any.
    pub message: Option<String>,
}

mod progress {
    use super::key;
    pub(super) const STAGE: u8 = key(2, false);
    pub(super) const METHOD: u8 = key(3, false);
    pub(super) const MESSAGE: u8 = key(4, false);
}

impl Tlv for Progress {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use progress::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.uint(STAGE, self.stage.code().into());
        w.opt_uint(METHOD, self.method.map(|m| m.code().into()));
        w.opt_text(MESSAGE, self.message.as_deref(), limits::TEXT)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use progress::*;
        let (mut id, mut stage, mut method, mut message) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                STAGE => stage.set(&f, f.u8().map(ProgressStage::from_code))?,
                METHOD => method.set(&f, f.code(PaymentMethod::from_code))?,
                MESSAGE => message.set(&f, f.text(limits::TEXT))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            stage: stage.required(STAGE, r)?,
            method: method.get(),
            message: message.get(),
        })
    }
}

/// The final result of a money command, signed by the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionResult {
    /// The request this answers (for a status query or a repeat: the original request).
    pub request_id: RequestId,
    /// The command's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The terminal's id of the transaction.
    pub transaction_id: TransactionId,
    /// The terminal that ran it.
    pub terminal_id: TerminalId,
    /// What kind of transaction.
    pub kind: TransactionKind,
    /// How it came out.
    pub outcome: Outcome,
    /// The amount asked for (for void and pre-auth cancel: the original's amount; for a
    /// balance inquiry: zero).
    pub amount: Amount,
    /// The amount approved: equal to `amount.minor` when approved, less when partially
    /// approved, zero otherwise.
    pub approved_minor: u64,
    /// Tip approved.
    pub tip: Option<u64>,
    /// Cashback given.
    pub cashback: Option<u64>,
    /// How the customer paid.
    pub method: Option<PaymentMethod>,
    /// The masked card number.
    pub pan: Option<MaskedPan>,
    /// The card scheme.
    pub card_scheme: Option<String>,
    /// The issuer's authorisation code.
    pub auth_code: Option<String>,
    /// The retrieval reference number.
    pub reference: Option<String>,
    /// When the terminal completed it.
    pub time: Timestamp,
    /// Approved offline, under the floor limit, to be sent to the host later.
    pub offline: bool,
    /// The card's balance (balance inquiry, prepaid cards).
    pub balance: Option<u64>,
    /// Receipts (merchant and/or customer copy).
    pub receipts: Vec<Receipt>,
    /// The terminal's Ed25519 signature over the result's canonical form.
    pub signature: Option<[u8; 64]>,
    /// The EMV data of a chip or contactless payment (protocol 1.1; covered by the signature, so
    /// never sent in a session that agreed on 1.0).
    pub emv: Option<EmvData>,
}

mod result {
    use super::key;
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const TXN_ID: u8 = key(3, true);
    pub(super) const TERMINAL_ID: u8 = key(4, true);
    pub(super) const KIND: u8 = key(5, true);
    pub(super) const OUTCOME: u8 = key(6, true);
    pub(super) const REASON: u8 = key(7, true);
    pub(super) const AMOUNT: u8 = key(8, true);
    pub(super) const CURRENCY: u8 = key(9, true);
    pub(super) const APPROVED: u8 = key(10, true);
    pub(super) const TIP: u8 = key(11, true);
    pub(super) const CASHBACK: u8 = key(12, true);
    pub(super) const METHOD: u8 = key(13, false);
    pub(super) const PAN: u8 = key(14, false);
    pub(super) const SCHEME: u8 = key(15, false);
    pub(super) const AUTH_CODE: u8 = key(16, false);
    pub(super) const REFERENCE: u8 = key(17, false);
    pub(super) const TIME: u8 = key(18, true);
    pub(super) const OFFLINE: u8 = key(19, true);
    pub(super) const BALANCE: u8 = key(20, false);
    pub(super) const RECEIPT: u8 = key(21, false);
    pub(super) const SIGNATURE: u8 = key(22, false);
    pub(super) const EMV: u8 = key(23, false);
}

/// Receipts per result: a merchant and a customer copy, with room for a duplicate of each.
const MAX_RECEIPTS: u16 = 4;

fn approved_ok(outcome: Outcome, amount: u64, approved: u64) -> bool {
    match outcome {
        Outcome::Approved => approved == amount,
        Outcome::PartiallyApproved => approved > 0 && approved < amount,
        _ => approved == 0,
    }
}

impl Tlv for TransactionResult {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use result::*;
        if !approved_ok(self.outcome, self.amount.minor, self.approved_minor) {
            return Err(MessageEncodeError::InvalidValue { key: APPROVED });
        }
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(KEY, self.idempotency_key.as_bytes());
        w.id(TXN_ID, self.transaction_id.as_bytes());
        w.id(TERMINAL_ID, self.terminal_id.as_bytes());
        w.uint(KIND, self.kind.code().into());
        w.uint(OUTCOME, self.outcome.code().into());
        match self.outcome {
            Outcome::Declined(reason) => w.uint(REASON, reason.0.into()),
            Outcome::Failed(code) => w.uint(REASON, code.0.into()),
            _ => {}
        }
        w.uint(AMOUNT, self.amount.minor);
        w.uint(CURRENCY, self.amount.currency.code().into());
        if self.outcome.is_approved() {
            w.uint(APPROVED, self.approved_minor);
        }
        w.opt_uint(TIP, self.tip);
        w.opt_uint(CASHBACK, self.cashback);
        w.opt_uint(METHOD, self.method.map(|m| m.code().into()));
        put_pan(w, PAN, self.pan.as_ref())?;
        w.opt_text(SCHEME, self.card_scheme.as_deref(), limits::CODE)?;
        w.opt_text(AUTH_CODE, self.auth_code.as_deref(), limits::CODE)?;
        w.opt_text(REFERENCE, self.reference.as_deref(), limits::REFERENCE)?;
        w.uint(TIME, self.time.0);
        w.flag(OFFLINE, self.offline);
        w.opt_uint(BALANCE, self.balance);
        w.items(RECEIPT, &self.receipts, MAX_RECEIPTS)?;
        if let Some(sig) = &self.signature {
            w.bytes(SIGNATURE, sig, 64)?;
        }
        w.opt_item(EMV, self.emv.as_ref())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use result::*;
        let (mut id, mut key_, mut txn_id, mut terminal_id, mut kind, mut outcome, mut reason) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut amount, mut currency, mut approved, mut tip, mut cashback) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut method, mut pan, mut scheme, mut auth, mut reference) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut time, mut offline, mut balance, mut signature) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut receipts, mut emv) = (Vec::new(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                TXN_ID => txn_id.set(&f, f.array().map(TransactionId))?,
                TERMINAL_ID => terminal_id.set(&f, f.array().map(TerminalId))?,
                KIND => kind.set(&f, f.code(TransactionKind::from_code))?,
                OUTCOME => outcome.set(&f, f.code(|c| (1..=5).contains(&c).then_some(c)))?,
                REASON => reason.set(&f, f.u16())?,
                AMOUNT => amount.set(&f, f.uint())?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                APPROVED => approved.set(&f, f.uint())?,
                TIP => tip.set(&f, f.uint())?,
                CASHBACK => cashback.set(&f, f.uint())?,
                METHOD => method.set(&f, f.code(PaymentMethod::from_code))?,
                PAN => pan.set(&f, pan_of(&f))?,
                SCHEME => scheme.set(&f, f.text(limits::CODE))?,
                AUTH_CODE => auth.set(&f, f.text(limits::CODE))?,
                REFERENCE => reference.set(&f, f.text(limits::REFERENCE))?,
                TIME => time.set(&f, f.uint().map(Timestamp))?,
                OFFLINE => offline.set(&f, f.flag())?,
                BALANCE => balance.set(&f, f.uint())?,
                RECEIPT => push(&mut receipts, &f, f.item(), MAX_RECEIPTS)?,
                SIGNATURE => signature.set(&f, f.array::<64>())?,
                EMV => emv.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        let outcome_at = outcome.invalid(OUTCOME);
        let reason_at = reason.invalid(REASON);
        let approved_at = approved.invalid(APPROVED);
        let code = outcome.required(OUTCOME, r)?;
        let has_reason = matches!(code, 3 | 5);
        let outcome = match (code, reason.get()) {
            (1, None) => Outcome::Approved,
            (2, None) => Outcome::PartiallyApproved,
            (3, Some(reason)) => Outcome::Declined(DeclineReason(reason)),
            (4, None) => Outcome::Cancelled,
            (5, Some(code)) => Outcome::Failed(ErrorCode(code)),
            _ if has_reason => return Err(outcome_at),
            _ => return Err(reason_at),
        };
        let amount = Amount::new(amount.required(AMOUNT, r)?, currency.required(CURRENCY, r)?);
        let approved_present = approved.is_some();
        let approved_minor = approved.get().unwrap_or(0);
        if approved_present != outcome.is_approved()
            || !approved_ok(outcome, amount.minor, approved_minor)
        {
            return Err(if approved_present {
                approved_at
            } else {
                outcome_at
            });
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            idempotency_key: key_.required(KEY, r)?,
            transaction_id: txn_id.required(TXN_ID, r)?,
            terminal_id: terminal_id.required(TERMINAL_ID, r)?,
            kind: kind.required(KIND, r)?,
            outcome,
            amount,
            approved_minor,
            tip: tip.get(),
            cashback: cashback.get(),
            method: method.get(),
            pan: pan.get(),
            card_scheme: scheme.get(),
            auth_code: auth.get(),
            reference: reference.get(),
            time: time.required(TIME, r)?,
            offline: offline.get().unwrap_or(false),
            balance: balance.get(),
            receipts,
            signature: signature.get(),
            emv: emv.get(),
        })
    }
}

/// What became of a money command, as a [`StatusResponse`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionStatus {
    /// The terminal never saw the key: it is safe to send the command again with the same key.
    NotFound,
    /// The command is running; wait for it.
    InProgress {
        /// How far it has got, if known.
        stage: Option<ProgressStage>,
    },
    /// The command finished; this is its result.
    Done(Box<TransactionResult>),
}

/// The answer to a [`StatusQuery`](crate::StatusQuery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusResponse {
    /// The query's id.
    pub request_id: RequestId,
    /// The key asked about.
    pub idempotency_key: IdempotencyKey,
    /// What became of it.
    pub status: TransactionStatus,
}

mod status {
    use super::key;
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const STATE: u8 = key(3, true);
    pub(super) const STAGE: u8 = key(4, false);
    pub(super) const RESULT: u8 = key(5, true);
}

impl Tlv for StatusResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use status::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(KEY, self.idempotency_key.as_bytes());
        match &self.status {
            TransactionStatus::NotFound => w.uint(STATE, 1),
            TransactionStatus::InProgress { stage } => {
                w.uint(STATE, 2);
                w.opt_uint(STAGE, stage.map(|s| s.code().into()));
            }
            TransactionStatus::Done(result) => {
                w.uint(STATE, 3);
                w.item(RESULT, result.as_ref())?;
            }
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use status::*;
        let (mut id, mut key_, mut state, mut stage, mut result) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::<TransactionResult>::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                STATE => state.set(&f, f.code(|c| (1..=3).contains(&c).then_some(c)))?,
                STAGE => stage.set(&f, f.u8().map(ProgressStage::from_code))?,
                RESULT => result.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        let stage_at = stage.invalid(STAGE);
        let result_at = result.invalid(RESULT);
        let state = state.required(STATE, r)?;
        if state != 2 && stage.is_some() {
            return Err(stage_at);
        }
        if state != 3 && result.is_some() {
            return Err(result_at);
        }
        let status = match state {
            1 => TransactionStatus::NotFound,
            2 => TransactionStatus::InProgress { stage: stage.get() },
            _ => TransactionStatus::Done(Box::new(result.required(RESULT, r)?)),
        };
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            idempotency_key: key_.required(KEY, r)?,
            status,
        })
    }
}

/// What the terminal did with a [`Cancel`](crate::Cancel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelState {
    /// The request is being aborted; its result (normally cancelled) follows.
    Accepted = 1,
    /// Too late: the request had passed the point of no return; its real result stands.
    TooLate = 2,
    /// No such request is running.
    NotFound = 3,
}

impl CancelState {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Accepted),
            2 => Some(Self::TooLate),
            3 => Some(Self::NotFound),
            _ => None,
        }
    }
}

/// The answer to a [`Cancel`](crate::Cancel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelResponse {
    /// The cancel request's id.
    pub request_id: RequestId,
    /// The request it tried to abort.
    pub target: RequestId,
    /// What happened.
    pub state: CancelState,
}

impl Tlv for CancelResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(key(2, true), self.target.as_bytes());
        w.uint(key(3, true), self.state as u64);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        const TARGET: u8 = key(2, true);
        const STATE: u8 = key(3, true);
        let (mut id, mut target, mut state) = (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                TARGET => target.set(&f, request_id(&f))?,
                STATE => state.set(&f, f.code(CancelState::from_code))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            target: target.required(TARGET, r)?,
            state: state.required(STATE, r)?,
        })
    }
}

/// Totals of one transaction kind in one currency within a batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Totals {
    /// The kind.
    pub kind: TransactionKind,
    /// The currency.
    pub currency: Currency,
    /// How many transactions.
    pub count: u32,
    /// Their sum, in minor units.
    pub amount: u64,
}

impl Totals {
    /// The totals of `results` per kind and currency, the way a settlement counts them: over
    /// approved results (in full or in part) only, each adding its approved amount plus tip and
    /// cashback. An app reconciles its own record against a settlement with this.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a TransactionResult>) -> Vec<Self> {
        let mut totals: Vec<Self> = Vec::new();
        for r in results.into_iter().filter(|r| r.outcome.is_approved()) {
            let value = r.approved_minor + r.tip.unwrap_or(0) + r.cashback.unwrap_or(0);
            match totals
                .iter_mut()
                .find(|t| t.kind == r.kind && t.currency == r.amount.currency)
            {
                Some(t) => {
                    t.count += 1;
                    t.amount += value;
                }
                None => totals.push(Self {
                    kind: r.kind,
                    currency: r.amount.currency,
                    count: 1,
                    amount: value,
                }),
            }
        }
        totals
    }
}

mod totals {
    use super::key;
    pub(super) const KIND: u8 = key(1, true);
    pub(super) const CURRENCY: u8 = key(2, true);
    pub(super) const COUNT: u8 = key(3, true);
    pub(super) const AMOUNT: u8 = key(4, true);
}

impl Tlv for Totals {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use totals::*;
        w.uint(KIND, self.kind.code().into());
        w.uint(CURRENCY, self.currency.code().into());
        w.uint(COUNT, self.count.into());
        w.uint(AMOUNT, self.amount);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use totals::*;
        let (mut kind, mut currency, mut count, mut amount) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                KIND => kind.set(&f, f.code(TransactionKind::from_code))?,
                CURRENCY => currency.set(&f, currency_of(&f))?,
                COUNT => count.set(&f, f.u32())?,
                AMOUNT => amount.set(&f, f.uint())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            kind: kind.required(KIND, r)?,
            currency: currency.required(CURRENCY, r)?,
            count: count.required(COUNT, r)?,
            amount: amount.required(AMOUNT, r)?,
        })
    }
}

/// The result of a settlement: the closed batch and its totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementResult {
    /// The request's id.
    pub request_id: RequestId,
    /// The request's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The terminal.
    pub terminal_id: TerminalId,
    /// The batch's number.
    pub batch_number: u32,
    /// `Ok` when the batch was closed and accepted by the host, else why not.
    pub status: Result<(), ErrorCode>,
    /// When the batch was opened.
    pub opened: Option<Timestamp>,
    /// When it was closed.
    pub closed: Timestamp,
    /// Totals per kind and currency, in the terminal's order.
    pub totals: Vec<Totals>,
    /// The settlement report.
    pub receipt: Option<Receipt>,
    /// The terminal's Ed25519 signature over the settlement's canonical form.
    pub signature: Option<[u8; 64]>,
}

mod settlement {
    use super::key;
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const TERMINAL_ID: u8 = key(3, true);
    pub(super) const BATCH: u8 = key(4, true);
    pub(super) const ERROR: u8 = key(5, true);
    pub(super) const OPENED: u8 = key(6, false);
    pub(super) const CLOSED: u8 = key(7, true);
    pub(super) const TOTALS: u8 = key(8, true);
    pub(super) const RECEIPT: u8 = key(9, false);
    pub(super) const SIGNATURE: u8 = key(10, false);
}

/// Totals entries per settlement: every kind in a handful of currencies.
const MAX_TOTALS: u16 = 128;

impl Tlv for SettlementResult {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use settlement::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.id(KEY, self.idempotency_key.as_bytes());
        w.id(TERMINAL_ID, self.terminal_id.as_bytes());
        w.uint(BATCH, self.batch_number.into());
        if let Err(code) = self.status {
            w.uint(ERROR, code.0.into());
        }
        w.opt_uint(OPENED, self.opened.map(|t| t.0));
        w.uint(CLOSED, self.closed.0);
        w.items(TOTALS, &self.totals, MAX_TOTALS)?;
        w.opt_item(RECEIPT, self.receipt.as_ref())?;
        if let Some(sig) = &self.signature {
            w.bytes(SIGNATURE, sig, 64)?;
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use settlement::*;
        let (mut id, mut key_, mut terminal_id, mut batch, mut error) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut opened, mut closed, mut receipt, mut signature) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let mut totals_list = Vec::new();
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                TERMINAL_ID => terminal_id.set(&f, f.array().map(TerminalId))?,
                BATCH => batch.set(&f, f.u32())?,
                ERROR => error.set(&f, f.u16().map(ErrorCode))?,
                OPENED => opened.set(&f, f.uint().map(Timestamp))?,
                CLOSED => closed.set(&f, f.uint().map(Timestamp))?,
                TOTALS => push(&mut totals_list, &f, f.item(), MAX_TOTALS)?,
                RECEIPT => receipt.set(&f, f.item())?,
                SIGNATURE => signature.set(&f, f.array::<64>())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            idempotency_key: key_.required(KEY, r)?,
            terminal_id: terminal_id.required(TERMINAL_ID, r)?,
            batch_number: batch.required(BATCH, r)?,
            status: error.get().map_or(Ok(()), Err),
            opened: opened.get(),
            closed: closed.required(CLOSED, r)?,
            totals: totals_list,
            receipt: receipt.get(),
            signature: signature.get(),
        })
    }
}

/// The answer to a [`ReceiptRequest`](crate::ReceiptRequest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptResponse {
    /// The request's id.
    pub request_id: RequestId,
    /// The receipt.
    pub receipt: Receipt,
}

const RECEIPT: u8 = key(2, true);

impl Tlv for ReceiptResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.item(RECEIPT, &self.receipt)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut receipt) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                RECEIPT => receipt.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            receipt: receipt.required(RECEIPT, r)?,
        })
    }
}

/// The terminal's configuration, answering a [`ConfigRead`](crate::ConfigRead) or
/// [`ConfigWrite`](crate::ConfigWrite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigResponse {
    /// The request's id.
    pub request_id: RequestId,
    /// The configuration now in force.
    pub config: TerminalConfig,
}

const CONFIG: u8 = key(2, true);

impl Tlv for ConfigResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.item(CONFIG, &self.config)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut config) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                CONFIG => config.set(&f, f.item())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            config: config.required(CONFIG, r)?,
        })
    }
}

/// The answer to a [`LastTransactionQuery`](crate::LastTransactionQuery): the most recent final
/// result, or none if the terminal has not completed a transaction yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastTransactionResponse {
    /// The request's id.
    pub request_id: RequestId,
    /// The most recent result.
    pub result: Option<Box<TransactionResult>>,
}

const LAST_RESULT: u8 = key(2, true);

impl Tlv for LastTransactionResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.opt_item(LAST_RESULT, self.result.as_deref())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut result) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, request_id(&f))?,
                LAST_RESULT => result.set(&f, f.item().map(Box::new))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            result: result.get(),
        })
    }
}
