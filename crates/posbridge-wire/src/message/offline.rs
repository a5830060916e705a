//! Protocol 1.1: payments approved offline (store and forward) — the limits a terminal announces,
//! and the final outcome it learns from its acquirer later and signs.

use crate::tlv::{DecResult, EncResult, Reader, Slot, Tlv, Writer, key};
use crate::types::{
    Currency, DeclineReason, IdempotencyKey, MethodSet, RequestId, TerminalId, Timestamp,
    TransactionId,
};

use super::common::currency_of;

/// How far a terminal approves offline in one currency, while its acquirer cannot be reached
/// (announced in the capabilities, protocol 1.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OfflineLimit {
    /// The currency.
    pub currency: Currency,
    /// The largest payment approved offline, minor units.
    pub per_payment: u64,
    /// The most approved offline and not yet forwarded, in total, minor units.
    pub total: u64,
    /// The most payments approved offline and not yet forwarded.
    pub count: u32,
    /// The payment methods it approves offline (chip, say, but not a swiped stripe).
    pub methods: MethodSet,
}

mod limit {
    use super::key;
    pub(super) const CURRENCY: u8 = key(1, true);
    pub(super) const PER_PAYMENT: u8 = key(2, true);
    pub(super) const TOTAL: u8 = key(3, true);
    pub(super) const COUNT: u8 = key(4, true);
    pub(super) const METHODS: u8 = key(5, true);
}

impl Tlv for OfflineLimit {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use limit::*;
        w.uint(CURRENCY, self.currency.code().into());
        w.uint(PER_PAYMENT, self.per_payment);
        w.uint(TOTAL, self.total);
        w.uint(COUNT, self.count.into());
        w.uint(METHODS, self.methods.0.into());
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use limit::*;
        let (mut currency, mut per_payment, mut total, mut count, mut methods) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                CURRENCY => currency.set(&f, currency_of(&f))?,
                PER_PAYMENT => per_payment.set(&f, f.uint())?,
                TOTAL => total.set(&f, f.uint())?,
                COUNT => count.set(&f, f.u32())?,
                METHODS => methods.set(&f, f.u32().map(MethodSet))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            currency: currency.required(CURRENCY, r)?,
            per_payment: per_payment.required(PER_PAYMENT, r)?,
            total: total.required(TOTAL, r)?,
            count: count.required(COUNT, r)?,
            methods: methods.required(METHODS, r)?,
        })
    }
}

/// What became of a payment approved offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfflineState {
    /// Not forwarded to the acquirer yet: approved offline, pending.
    Pending,
    /// Forwarded and accepted: the money is the merchant's.
    Confirmed,
    /// Forwarded and declined after the fact: no money moved after all (the merchant has the
    /// goods out and the customer's card is not charged).
    Declined(DeclineReason),
}

/// Terminal → client (1.1): the signed final outcome of a payment approved offline — pushed to
/// every 1.1 session when the terminal learns it (no request id), or answering an
/// [`OfflineOutcomeQuery`] (then possibly still pending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineOutcome {
    /// The query answered; `None` for a push.
    pub request_id: Option<RequestId>,
    /// The payment's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The payment's transaction id (as in its result).
    pub transaction_id: TransactionId,
    /// The terminal.
    pub terminal_id: TerminalId,
    /// What became of it.
    pub state: OfflineState,
    /// When the terminal learnt it (for a pending one: when it answered).
    pub time: Timestamp,
    /// The terminal's Ed25519 signature (docs/security.md): the journal changes a payment's
    /// state on it.
    pub signature: Option<[u8; 64]>,
}

mod outcome {
    use super::key;
    pub(super) const REQUEST_ID: u8 = key(1, true);
    pub(super) const KEY: u8 = key(2, true);
    pub(super) const TXN: u8 = key(3, true);
    pub(super) const TERMINAL: u8 = key(4, true);
    pub(super) const STATE: u8 = key(5, true);
    pub(super) const REASON: u8 = key(6, true);
    pub(super) const TIME: u8 = key(7, false);
    pub(super) const SIGNATURE: u8 = key(8, false);
}

impl Tlv for OfflineOutcome {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use outcome::*;
        if let Some(id) = &self.request_id {
            w.id(REQUEST_ID, id.as_bytes());
        }
        w.id(KEY, self.idempotency_key.as_bytes());
        w.id(TXN, self.transaction_id.as_bytes());
        w.id(TERMINAL, self.terminal_id.as_bytes());
        match self.state {
            OfflineState::Pending => w.uint(STATE, 1),
            OfflineState::Confirmed => w.uint(STATE, 2),
            OfflineState::Declined(reason) => {
                w.uint(STATE, 3);
                w.uint(REASON, reason.0.into());
            }
        }
        w.uint(TIME, self.time.0);
        if let Some(sig) = &self.signature {
            w.bytes(SIGNATURE, sig, 64)?;
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use outcome::*;
        let (mut id, mut key_, mut txn, mut terminal, mut state) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut reason, mut time, mut signature) =
            (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                TXN => txn.set(&f, f.array().map(TransactionId))?,
                TERMINAL => terminal.set(&f, f.array().map(TerminalId))?,
                STATE => state.set(&f, f.code(|c| (1..=3).contains(&c).then_some(c)))?,
                REASON => reason.set(&f, f.u16().map(DeclineReason))?,
                TIME => time.set(&f, f.uint().map(Timestamp))?,
                SIGNATURE => signature.set(&f, f.array::<64>())?,
                _ => f.unknown()?,
            }
        }
        let reason_at = reason.invalid(REASON);
        let state = match (state.required(STATE, r)?, reason.get()) {
            (1, None) => OfflineState::Pending,
            (2, None) => OfflineState::Confirmed,
            (3, Some(reason)) => OfflineState::Declined(reason),
            (3, None) => return Err(r.missing(REASON)),
            _ => return Err(reason_at),
        };
        Ok(Self {
            request_id: id.get(),
            idempotency_key: key_.required(KEY, r)?,
            transaction_id: txn.required(TXN, r)?,
            terminal_id: terminal.required(TERMINAL, r)?,
            state,
            time: time.required(TIME, r)?,
            signature: signature.get(),
        })
    }
}

/// Client → terminal (1.1): what became of the payment approved offline under this key.
/// Answered by an [`OfflineOutcome`] (pending, confirmed or declined), or `Error NOT_FOUND` when
/// the terminal approved nothing offline under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineOutcomeQuery {
    /// This request's id.
    pub request_id: RequestId,
    /// The payment's idempotency key.
    pub idempotency_key: IdempotencyKey,
}

impl Tlv for OfflineOutcomeQuery {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.id(outcome::REQUEST_ID, self.request_id.as_bytes());
        w.id(outcome::KEY, self.idempotency_key.as_bytes());
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut id, mut key_) = (Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                outcome::REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                outcome::KEY => key_.set(&f, f.array().map(IdempotencyKey))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(outcome::REQUEST_ID, r)?,
            idempotency_key: key_.required(outcome::KEY, r)?,
        })
    }
}
