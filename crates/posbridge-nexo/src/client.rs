//! The client: [`NexoClient`], an [`Adapter`] of posbridge's engine, so that
//! [`NexoTerminal`] (the engine over it) journals, recovers and reverses nexo payments exactly
//! as it does native and ZVT ones.
//!
//! What the adapter adds is nexo's own: requests built from posbridge's commands (sale with tip
//! and cashback, refund, void and referenced refund as reversals, pre-authorisation and its
//! update, completion and release where the dialect has them), each money command under a
//! `ServiceID` derived from its idempotency key — so that recovery, after a restart too, asks
//! `TransactionStatus` about exactly that dialogue and reads its original answer from the
//! `RepeatedMessageResponse`; `Busy` waited out and sent again under the same `ServiceID`
//! (never a second payment); answers checked against the request (category, `ServiceID`,
//! `SaleID`, `POIID`) and opened with the shared key when encryption is configured (then
//! messages in the clear are refused).

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use posbridge_api::{
    Adapter, Answer, CallError, Cart, CustomerPrompt, DoubtReason, Engine, Records, Refusal,
    Resolution,
};
use posbridge_journal::Entry;
use posbridge_wire::{
    Amount, Capabilities, Currency, DeclineReason, ErrorCode, FeatureSet, IdempotencyKey, KindSet,
    MaskedPan, MethodSet, OperatorAuth, Outcome, PaymentMethod, Receipt, ReceiptCopy, RequestId,
    SettlementResult, TerminalId, Timestamp, Totals, TransactionCommand, TransactionId,
    TransactionKind, TransactionRef, TransactionRequest, TransactionResult,
};
use sha2::{Digest, Sha256};

use crate::amount::{AmountError, Decimal, currency_alpha, currency_digits, currency_numeric};
use crate::codec::{self, DecodeError, Direction, Envelope, Message};
use crate::message::*;
use crate::security::{SecurityError, SecurityKey};
use crate::time;
use crate::transport::{Transport, TransportError};

/// Which vendor's reading of nexo the terminal follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// Adyen's Terminal API: a pre-authorisation is a normal payment with
    /// `authorisationType=PreAuth` in `SaleToAcquirerData`; its adjustment and capture run
    /// through Adyen's back office, not the terminal, so those kinds are not offered.
    #[default]
    Adyen,
    /// nexo as the standard writes it: reservations (`FirstReservation`, `UpdateReservation`)
    /// and their `Completion` through the terminal.
    Standard,
}

/// How the client talks to one terminal.
#[derive(Clone)]
pub struct NexoConfig {
    /// `SaleID`: this till, unique among the tills of the terminal.
    pub sale_id: String,
    /// `POIID`: the terminal (Adyen: `<model>-<serial>`, such as `V400m-346403161`).
    pub poi_id: String,
    /// The shared key; `None` sends and accepts messages in the clear (test terminals only).
    pub key: Option<SecurityKey>,
    /// The currencies the terminal takes.
    pub currencies: Vec<Currency>,
    /// The dialect.
    pub dialect: Dialect,
    /// How long to wait before sending again after `Busy` (another dialogue runs).
    pub busy_pause: Duration,
    /// How long the terminal remembers its dialogues for `TransactionStatus`: a `NotFound` about
    /// a command journaled longer ago than this does not prove it never ran, and leaves it for
    /// a person (Adyen keeps the recent ones).
    pub status_memory: Duration,
    /// The wall clock (replaceable in tests).
    pub clock: fn() -> Timestamp,
}

impl fmt::Debug for NexoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexoConfig")
            .field("sale_id", &self.sale_id)
            .field("poi_id", &self.poi_id)
            .field("key", &self.key)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl NexoConfig {
    /// Till `sale_id` to terminal `poi_id`, with the shared key `key`, in euros, Adyen's dialect.
    pub fn new(
        sale_id: impl Into<String>,
        poi_id: impl Into<String>,
        key: Option<SecurityKey>,
    ) -> Self {
        Self {
            sale_id: sale_id.into(),
            poi_id: poi_id.into(),
            key,
            currencies: vec![Currency::EUR],
            dialect: Dialect::Adyen,
            busy_pause: Duration::from_millis(500),
            status_memory: Duration::from_secs(24 * 3600),
            clock: posbridge_api::wall_clock,
        }
    }
}

/// What went wrong talking nexo.
#[derive(Debug)]
#[non_exhaustive]
pub enum NexoError {
    /// The exchange failed.
    Transport(TransportError),
    /// The answer is not a valid message.
    Decode(DecodeError),
    /// The answer could not be opened (or was in the clear where encryption is configured).
    Security(SecurityError),
    /// The answer is not to this request: `what` differs.
    Unpaired(&'static str),
    /// The terminal answered `Failure`.
    Failure {
        /// Its `ErrorCondition`.
        condition: Option<ErrorCondition>,
        /// Its text (`AdditionalResponse` `message` or `refusalReason`).
        text: Option<String>,
    },
    /// An amount could not be written or read.
    Amount(AmountError),
    /// The command cannot be expressed in nexo (or this dialect).
    Unsupported(String),
    /// The answer lacks what the result needs.
    Incomplete(&'static str),
}

impl fmt::Display for NexoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => e.fmt(f),
            Self::Decode(e) => write!(f, "the terminal's answer is not valid nexo: {e}"),
            Self::Security(e) => e.fmt(f),
            Self::Unpaired(what) => {
                write!(f, "the answer is not to this request: its {what} differs")
            }
            Self::Failure { condition, text } => {
                write!(f, "the terminal answered Failure")?;
                if let Some(c) = condition {
                    write!(f, " ({c:?})")?;
                }
                if let Some(t) = text {
                    write!(f, ": {t}")?;
                }
                Ok(())
            }
            Self::Amount(e) => e.fmt(f),
            Self::Unsupported(t) => write!(f, "not possible in nexo: {t}"),
            Self::Incomplete(what) => write!(f, "the terminal's answer lacks {what}"),
        }
    }
}

impl std::error::Error for NexoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Decode(e) => Some(e),
            Self::Security(e) => Some(e),
            Self::Amount(e) => Some(e),
            _ => None,
        }
    }
}

/// The `ServiceID` of the money command under `key`: ten characters of base 36 from a hash of
/// the key (51 bits), the same in every process, so that recovery after a restart asks about
/// the dialogue the command ran in.
pub fn service_id(key: &IdempotencyKey) -> String {
    let digest = Sha256::new()
        .chain_update(b"posbridge nexo service id")
        .chain_update(key.as_bytes())
        .finalize();
    let mut n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let mut out = [b'0'; 10];
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// posbridge's 16-byte transaction id for a terminal's `POITransactionID`: its 32 hex digits
/// when it is one (posbridge's own terminals), else the first 16 bytes of its SHA-256.
pub fn transaction_id(poi_transaction_id: &str) -> TransactionId {
    TransactionId::parse_hex(poi_transaction_id).unwrap_or_else(|_| {
        let d = Sha256::digest(poi_transaction_id.as_bytes());
        TransactionId(d[..16].try_into().expect("16 bytes"))
    })
}

/// The engine over a nexo terminal: what an app takes payments with.
pub type NexoTerminal<T, J> = Engine<NexoClient<T>, J>;

/// The nexo adapter (see the module).
pub struct NexoClient<T> {
    transport: T,
    config: NexoConfig,
    capabilities: Capabilities,
    /// The `ServiceID` and category of the money command running now.
    running: Mutex<Option<(String, MessageCategory)>>,
    counter: AtomicU64,
    closed: AtomicBool,
}

impl<T> fmt::Debug for NexoClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexoClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Clears the running mark when dropped.
struct Running<'a>(&'a Mutex<Option<(String, MessageCategory)>>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *lock(self.0) = None;
    }
}

/// What a money command becomes in nexo.
struct Plan {
    category: MessageCategory,
    body: Body,
}

impl<T: Transport> NexoClient<T> {
    /// A client over `transport` (no exchange yet: [`diagnose`](Self::diagnose) checks the
    /// terminal, the key and the clocks).
    pub fn new(transport: T, config: NexoConfig) -> Self {
        let digest = Sha256::new()
            .chain_update(b"posbridge nexo terminal id")
            .chain_update(config.poi_id.as_bytes())
            .finalize();
        let (model, serial) = match config.poi_id.split_once('-') {
            Some((m, s)) => (Some(m.to_owned()), Some(s.to_owned())),
            None => (None, Some(config.poi_id.clone())),
        };
        let mut kinds = KindSet::EMPTY;
        for k in [
            TransactionKind::Sale,
            TransactionKind::Refund,
            TransactionKind::Void,
            TransactionKind::PreAuth,
            TransactionKind::PreAuthCancel,
        ] {
            kinds.insert(k);
        }
        if config.dialect == Dialect::Standard {
            kinds.insert(TransactionKind::IncrementalAuth);
            kinds.insert(TransactionKind::Capture);
        }
        let capabilities = Capabilities {
            terminal_id: TerminalId(digest[..16].try_into().expect("16 bytes")),
            model,
            firmware: None,
            serial_number: serial,
            merchant_name: None,
            protocol_versions: vec![1],
            selected_version: 1,
            kinds,
            methods: MethodSet::all(),
            currencies: config.currencies.clone(),
            limits: Vec::new(),
            max_frame_size: None,
            features: FeatureSet::default(),
            offline_limits: Vec::new(),
        };
        Self {
            transport,
            config,
            capabilities,
            running: Mutex::new(None),
            counter: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NexoConfig {
        &self.config
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// A fresh `ServiceID` for a dialogue that moves no money (status, abort, reconciliation …).
    fn fresh_service_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let digest = Sha256::new()
            .chain_update(seed)
            .chain_update(n.to_be_bytes())
            .finalize();
        service_id(&IdempotencyKey(digest[..16].try_into().expect("16 bytes")))
    }

    fn header(&self, category: MessageCategory, service_id: String) -> MessageHeader {
        MessageHeader {
            protocol_version: Some("3.0".into()),
            class: category.class(),
            category,
            kind: MessageType::Request,
            service_id: Some(service_id),
            device_id: None,
            sale_id: self.config.sale_id.clone(),
            poi_id: self.config.poi_id.clone(),
        }
    }

    fn encode(&self, message: &Message) -> Result<Vec<u8>, NexoError> {
        Ok(match &self.config.key {
            Some(key) => codec::encode(&Envelope::Sealed(
                key.seal(message).map_err(NexoError::Security)?,
            )),
            None => codec::encode(&Envelope::Clear(message.clone())),
        })
    }

    /// Reads an answer: decoded, opened, and checked to answer `request`.
    fn read(&self, request: &MessageHeader, bytes: &[u8]) -> Result<Message, NexoError> {
        let message = match (
            codec::decode(bytes).map_err(NexoError::Decode)?,
            &self.config.key,
        ) {
            (Envelope::Sealed(s), Some(key)) => key.open(&s).map_err(NexoError::Security)?,
            (Envelope::Clear(_), Some(_)) => {
                return Err(NexoError::Security(SecurityError::NotSealed));
            }
            (Envelope::Sealed(s), None) => {
                return Err(NexoError::Security(SecurityError::UnknownKey {
                    identifier: s.trailer.key_identifier.clone(),
                    version: s.trailer.key_version,
                }));
            }
            (Envelope::Clear(m), None) => m,
        };
        if message.direction != Direction::Response {
            return Err(NexoError::Unpaired("direction"));
        }
        let h = &message.header;
        if h.category != request.category {
            return Err(NexoError::Unpaired("MessageCategory"));
        }
        if h.service_id != request.service_id {
            return Err(NexoError::Unpaired("ServiceID"));
        }
        if h.sale_id != request.sale_id {
            return Err(NexoError::Unpaired("SaleID"));
        }
        if h.poi_id != request.poi_id {
            return Err(NexoError::Unpaired("POIID"));
        }
        Ok(message)
    }

    /// One request and its answer (`None`: the terminal answered with an empty body, as it does
    /// to an abort).
    async fn call(
        &self,
        header: MessageHeader,
        body: Body,
        deadline: Duration,
    ) -> Result<Option<Message>, NexoError> {
        let message = Message {
            direction: Direction::Request,
            header: header.clone(),
            body,
        };
        let bytes = self.encode(&message)?;
        let answer = self
            .transport
            .exchange(bytes, deadline)
            .await
            .map_err(NexoError::Transport)?;
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        self.read(&header, &answer).map(Some)
    }

    /// A dialogue that moves no money: its answer's body, or the terminal's `Failure`.
    async fn service(
        &self,
        category: MessageCategory,
        body: Body,
        deadline: Duration,
    ) -> Result<Body, NexoError> {
        let header = self.header(category, self.fresh_service_id());
        let answer = self
            .call(header, body, deadline)
            .await?
            .ok_or(NexoError::Incomplete("an answer"))?;
        if let Some(r) = answer.body.response()
            && r.result == ResultCode::Failure
        {
            return Err(failure(r));
        }
        Ok(answer.body)
    }

    fn now(&self) -> Timestamp {
        (self.config.clock)()
    }

    fn digits(&self, currency: Currency) -> Result<(&'static str, u8), NexoError> {
        let alpha = currency_alpha(currency.code()).ok_or(NexoError::Amount(
            AmountError::UnknownCurrency(currency.code().to_string()),
        ))?;
        Ok((alpha, currency_digits(alpha).map_err(NexoError::Amount)?))
    }

    fn original(
        &self,
        target: &TransactionRef,
        records: &Records<'_>,
    ) -> Result<(OriginalPoiTransaction, TransactionResult), Refusal<NexoError>> {
        let found = records.referenced(target).ok().flatten();
        let Some(result) = found else {
            return Err(Refusal::new(
                ErrorCode::ORIGINAL_NOT_FOUND,
                Some("the original transaction is not in this till's journal".to_owned()),
            ));
        };
        let id = result
            .reference
            .clone()
            .unwrap_or_else(|| result.transaction_id.to_string());
        Ok((
            OriginalPoiTransaction {
                sale_id: None,
                poi_id: Some(self.config.poi_id.clone()),
                poi_transaction_id: TransactionIdentification {
                    transaction_id: id,
                    time_stamp: time::format(result.time),
                },
            },
            result,
        ))
    }

    fn plan(
        &self,
        request: &TransactionRequest,
        records: &Records<'_>,
    ) -> Result<Plan, Refusal<NexoError>> {
        let invalid = |e: NexoError| Refusal {
            code: ErrorCode::INVALID_REQUEST,
            detail: Some(e.to_string()),
            source: Some(e),
        };
        let key = request.idempotency_key;
        let sale_data = SaleData {
            sale_transaction_id: TransactionIdentification {
                transaction_id: key.to_string(),
                time_stamp: time::format(self.now()),
            },
            sale_reference_id: request.order_ref.clone(),
            operator_id: None,
            sale_to_acquirer_data: None,
        };
        let payment = |amount: Amount,
                       tip: Option<u64>,
                       cashback: Option<u64>,
                       payment_type: PaymentType,
                       original: Option<OriginalPoiTransaction>,
                       acquirer: Option<String>|
         -> Result<Plan, Refusal<NexoError>> {
            let (alpha, digits) = self.digits(amount.currency).map_err(invalid)?;
            let total = amount
                .minor
                .checked_add(tip.unwrap_or(0))
                .and_then(|t| t.checked_add(cashback.unwrap_or(0)))
                .ok_or_else(|| {
                    invalid(NexoError::Amount(AmountError::TooLarge(
                        amount.minor.to_string(),
                    )))
                })?;
            let mut sale_data = sale_data.clone();
            sale_data.sale_to_acquirer_data = acquirer;
            Ok(Plan {
                category: MessageCategory::Payment,
                body: Body::PaymentRequest(PaymentRequest {
                    sale_data,
                    payment_transaction: PaymentTransaction {
                        amounts_req: AmountsReq {
                            currency: alpha.to_owned(),
                            requested_amount: Decimal::from_minor(total, digits),
                            cash_back_amount: cashback.map(|c| Decimal::from_minor(c, digits)),
                            tip_amount: tip.map(|t| Decimal::from_minor(t, digits)),
                        },
                        original_poi_transaction: original,
                    },
                    payment_data: Some(PaymentData {
                        payment_type: Some(payment_type),
                    }),
                }),
            })
        };
        let reversal = |original: OriginalPoiTransaction, amount: Option<Decimal>| Plan {
            category: MessageCategory::Reversal,
            body: Body::ReversalRequest(ReversalRequest {
                original_poi_transaction: original,
                reversal_reason: "MerchantCancel".into(),
                reversed_amount: amount,
                sale_data: Some(sale_data.clone()),
            }),
        };
        let standard = self.config.dialect == Dialect::Standard;
        match &request.command {
            TransactionCommand::Sale {
                amount,
                tip,
                cashback,
            } => payment(*amount, *tip, *cashback, PaymentType::Normal, None, None),
            TransactionCommand::Refund {
                amount,
                original: None,
            } => payment(*amount, None, None, PaymentType::Refund, None, None),
            TransactionCommand::Refund {
                amount,
                original: Some(target),
            } => {
                let (original, _) = self.original(target, records)?;
                let (_, digits) = self.digits(amount.currency).map_err(invalid)?;
                Ok(reversal(
                    original,
                    Some(Decimal::from_minor(amount.minor, digits)),
                ))
            }
            TransactionCommand::Void { original }
            | TransactionCommand::PreAuthCancel { original } => {
                let (original, _) = self.original(original, records)?;
                Ok(reversal(original, None))
            }
            TransactionCommand::PreAuth { amount } if standard => payment(
                *amount,
                None,
                None,
                PaymentType::FirstReservation,
                None,
                None,
            ),
            TransactionCommand::PreAuth { amount } => payment(
                *amount,
                None,
                None,
                PaymentType::Normal,
                None,
                Some("authorisationType=PreAuth".into()),
            ),
            TransactionCommand::IncrementalAuth { original, amount } if standard => {
                let (original, _) = self.original(original, records)?;
                payment(
                    *amount,
                    None,
                    None,
                    PaymentType::UpdateReservation,
                    Some(original),
                    None,
                )
            }
            TransactionCommand::Capture {
                original,
                amount,
                tip,
            } if standard => {
                let (original, _) = self.original(original, records)?;
                payment(
                    *amount,
                    *tip,
                    None,
                    PaymentType::Completion,
                    Some(original),
                    None,
                )
            }
            other => Err(Refusal::new(
                ErrorCode::KIND_NOT_SUPPORTED,
                Some(format!(
                    "{:?} is not offered by a nexo terminal in the {:?} dialect",
                    other.kind(),
                    self.config.dialect
                )),
            )),
        }
    }

    /// The result a payment or reversal answer gives `request`, or why it is not one.
    fn outcome_of(
        &self,
        request: &TransactionRequest,
        records: &Records<'_>,
        body: &Body,
    ) -> Result<Answer<NexoError>, NexoError> {
        let (response, poi, payment_result, receipts, reversed) = match body {
            Body::PaymentResponse(p) => (
                &p.response,
                p.poi_data.as_ref(),
                p.payment_result.as_ref(),
                p.payment_receipt.as_deref(),
                None,
            ),
            Body::ReversalResponse(r) => (
                &r.response,
                r.poi_data.as_ref(),
                None,
                r.payment_receipt.as_deref(),
                r.reversed_amount.as_ref(),
            ),
            _ => return Err(NexoError::Incomplete("a payment or reversal response")),
        };
        let command = &request.command;
        // The amount asked for: for a void or a release, the original's.
        let asked = match command.amount() {
            Some(a) => a,
            None => match command {
                TransactionCommand::Void { original }
                | TransactionCommand::PreAuthCancel { original } => records
                    .referenced(original)
                    .ok()
                    .flatten()
                    .map(|r| r.amount)
                    .ok_or(NexoError::Incomplete("the original's amount"))?,
                _ => return Err(NexoError::Incomplete("an amount")),
            },
        };
        let (tip_asked, cashback_asked) = match command {
            TransactionCommand::Sale { tip, cashback, .. } => (*tip, *cashback),
            TransactionCommand::Capture { tip, .. } => (*tip, None),
            _ => (None, None),
        };
        let outcome = match (response.result, &response.error_condition) {
            (ResultCode::Success, _) => Outcome::Approved,
            (ResultCode::Partial, _) => Outcome::PartiallyApproved,
            (ResultCode::Failure, condition) => {
                let condition = condition.clone();
                match condition {
                    Some(ErrorCondition::Busy) => {
                        return Ok(Answer::NotSent(failure(response)));
                    }
                    // Nothing was started: a refusal (unless the terminal names a transaction).
                    Some(
                        ErrorCondition::MessageFormat
                        | ErrorCondition::NotAllowed
                        | ErrorCondition::LoggedOut
                        | ErrorCondition::NotFound
                        | ErrorCondition::DeviceOut
                        | ErrorCondition::UnavailableDevice
                        | ErrorCondition::UnavailableService,
                    ) if poi.is_none() => {
                        let code = match condition {
                            Some(ErrorCondition::NotFound) => ErrorCode::ORIGINAL_NOT_FOUND,
                            Some(ErrorCondition::NotAllowed) => ErrorCode::ORIGINAL_NOT_ELIGIBLE,
                            Some(ErrorCondition::MessageFormat) => ErrorCode::INVALID_REQUEST,
                            _ => ErrorCode::INTERNAL,
                        };
                        let code = response
                            .additional("errorCode")
                            .and_then(|c| c.parse::<u16>().ok())
                            .map(ErrorCode)
                            .unwrap_or(code);
                        let e = failure(response);
                        return Ok(Answer::Refused(Refusal {
                            code,
                            detail: Some(e.to_string()),
                            source: Some(e),
                        }));
                    }
                    Some(ErrorCondition::Cancel | ErrorCondition::Aborted) => Outcome::Cancelled,
                    Some(ErrorCondition::WrongPin) => Outcome::Declined(DeclineReason::WRONG_PIN),
                    Some(ErrorCondition::InvalidCard) => {
                        Outcome::Declined(DeclineReason::INVALID_CARD)
                    }
                    Some(ErrorCondition::PaymentRestriction) => {
                        Outcome::Declined(DeclineReason::NOT_PERMITTED)
                    }
                    Some(ErrorCondition::Refusal) => Outcome::Declined(
                        response
                            .additional("declineCode")
                            .and_then(|c| c.parse::<u16>().ok())
                            .map(DeclineReason)
                            .unwrap_or(DeclineReason::DO_NOT_HONOUR),
                    ),
                    Some(ErrorCondition::UnreachableHost) => {
                        Outcome::Failed(ErrorCode::HOST_UNREACHABLE)
                    }
                    _ => Outcome::Failed(
                        response
                            .additional("errorCode")
                            .and_then(|c| c.parse::<u16>().ok())
                            .map(ErrorCode)
                            .unwrap_or(ErrorCode::INTERNAL),
                    ),
                }
            }
        };
        let (alpha, digits) = self.digits(asked.currency)?;
        // What was approved, tip and cashback apart.
        let (approved, tip, cashback) = if outcome.is_approved() {
            match (
                payment_result.and_then(|r| r.amounts_resp.as_ref()),
                reversed,
            ) {
                (Some(a), _) => {
                    if a.currency != alpha {
                        return Err(NexoError::Unpaired("currency"));
                    }
                    let read = |d: &Decimal| d.to_minor(digits).map_err(NexoError::Amount);
                    let whole = read(&a.authorized_amount)?;
                    let tip = a.tip_amount.as_ref().map(read).transpose()?;
                    let cashback = a.cash_back_amount.as_ref().map(read).transpose()?;
                    let goods = whole
                        .checked_sub(tip.unwrap_or(0))
                        .and_then(|g| g.checked_sub(cashback.unwrap_or(0)))
                        .ok_or(NexoError::Incomplete(
                            "an authorised amount that covers tip and cashback",
                        ))?;
                    (goods, tip, cashback)
                }
                // A void or a release reverses the whole original.
                (None, _)
                    if matches!(
                        command,
                        TransactionCommand::Void { .. } | TransactionCommand::PreAuthCancel { .. }
                    ) =>
                {
                    (asked.minor, None, None)
                }
                (None, Some(r)) => (r.to_minor(digits).map_err(NexoError::Amount)?, None, None),
                // A full approval without amounts approved what was asked.
                (None, None) if outcome == Outcome::Approved => {
                    (asked.minor, tip_asked, cashback_asked)
                }
                (None, None) => return Err(NexoError::Incomplete("the partially approved amount")),
            }
        } else {
            (0, None, None)
        };
        if outcome == Outcome::Approved && approved != asked.minor {
            // "Success" for another amount than asked is not a full approval of this command.
            return Err(NexoError::Unpaired("approved amount"));
        }
        let poi_id = poi.map(|p| p.poi_transaction_id.clone());
        let time = poi_id
            .as_ref()
            .and_then(|p| time::parse(&p.time_stamp))
            .unwrap_or_else(|| self.now());
        let transaction = poi_id
            .as_ref()
            .map(|p| transaction_id(&p.transaction_id))
            .unwrap_or_else(|| transaction_id(&service_id(&request.idempotency_key)));
        let card = payment_result
            .and_then(|r| r.payment_instrument_data.as_ref())
            .and_then(|d| d.card_data.as_ref());
        let pan = card
            .and_then(|c| c.masked_pan.as_deref())
            .and_then(|p| MaskedPan::parse(&p.replace(' ', "")).ok());
        let method = card
            .and_then(|c| c.entry_mode.as_deref())
            .and_then(|m| m.first())
            .and_then(|m| match m.as_str() {
                "Contactless" => Some(PaymentMethod::Contactless),
                "MagStripe" => Some(PaymentMethod::Swipe),
                "Mobile" => Some(PaymentMethod::Wallet),
                "ICC" | "Chip" => Some(PaymentMethod::Chip),
                _ => None,
            });
        let scheme = card
            .and_then(|c| c.payment_brand.clone())
            .map(|s| s.chars().take(32).collect());
        let auth_code = payment_result
            .and_then(|r| r.payment_acquirer_data.as_ref())
            .and_then(|a| a.approval_code.clone())
            .map(|s| s.chars().take(32).collect());
        let offline = payment_result.and_then(|r| r.online_flag) == Some(false);
        let mut result = TransactionResult {
            request_id: RequestId::default(),
            idempotency_key: request.idempotency_key,
            transaction_id: transaction,
            terminal_id: self.capabilities.terminal_id,
            kind: command.kind(),
            outcome,
            amount: asked,
            approved_minor: approved,
            tip,
            cashback,
            method: if outcome.is_approved() { method } else { None },
            pan,
            card_scheme: scheme,
            auth_code,
            reference: poi_id
                .map(|p| p.transaction_id)
                .filter(|r| r.len() <= usize::from(posbridge_wire::limits::REFERENCE)),
            time,
            offline,
            balance: None,
            receipts: Vec::new(),
            signature: None,
            emv: None,
        };
        result.receipts = receipts
            .unwrap_or_default()
            .iter()
            .take(4)
            .map(|r| receipt_of(r, &result))
            .collect();
        Ok(Answer::Result(result))
    }

    /// Sends a money command's request under its `ServiceID`, sending again after `Busy` until
    /// `deadline`.
    async fn run(
        &self,
        request: &TransactionRequest,
        plan: Plan,
        records: &Records<'_>,
        deadline: Duration,
        sent: &(dyn Fn() + Sync),
    ) -> Answer<NexoError> {
        let start = tokio::time::Instant::now();
        let left = || deadline.saturating_sub(start.elapsed());
        if let Err(e) = self.transport.ready(left()).await {
            return Answer::NotSent(NexoError::Transport(e));
        }
        let sid = service_id(&request.idempotency_key);
        *lock(&self.running) = Some((sid.clone(), plan.category));
        // Cleared however this ends, a dropped call too: a stale mark would make recovery wait
        // for a dialogue that no longer runs here.
        let _running = Running(&self.running);
        sent();
        loop {
            let header = self.header(plan.category, sid.clone());
            let outcome = self.call(header, plan.body.clone(), left()).await;
            let answer = match outcome {
                Ok(Some(message)) => self
                    .outcome_of(request, records, &message.body)
                    .unwrap_or_else(|e| Answer::Lost {
                        reason: DoubtReason::Unreadable,
                        source: Some(e),
                    }),
                Ok(None) => Answer::Lost {
                    reason: DoubtReason::Unexpected,
                    source: Some(NexoError::Incomplete("an answer")),
                },
                Err(NexoError::Transport(e)) if e.sent_nothing() => {
                    Answer::NotSent(NexoError::Transport(e))
                }
                Err(NexoError::Transport(TransportError::Timeout)) => Answer::Lost {
                    reason: DoubtReason::NoAnswer,
                    source: Some(NexoError::Transport(TransportError::Timeout)),
                },
                Err(e @ NexoError::Transport(_)) => Answer::Lost {
                    reason: DoubtReason::ConnectionLost,
                    source: Some(e),
                },
                Err(e) => Answer::Lost {
                    reason: DoubtReason::Unreadable,
                    source: Some(e),
                },
            };
            match answer {
                // Another dialogue runs: nothing was started; the same request again later.
                Answer::NotSent(NexoError::Failure {
                    condition: Some(ErrorCondition::Busy),
                    ..
                }) if left() > self.config.busy_pause => {
                    tokio::time::sleep(self.config.busy_pause).await;
                }
                other => break other,
            }
        }
    }

    /// Asks the terminal about the dialogue `service_id` of `category`.
    async fn status(
        &self,
        service_id: &str,
        category: MessageCategory,
        deadline: Duration,
    ) -> Result<TransactionStatusResponse, NexoError> {
        let header = self.header(MessageCategory::TransactionStatus, self.fresh_service_id());
        let body = Body::TransactionStatusRequest(TransactionStatusRequest {
            message_reference: Some(MessageReference {
                category: Some(category),
                service_id: Some(service_id.to_owned()),
                device_id: None,
                sale_id: Some(self.config.sale_id.clone()),
                poi_id: Some(self.config.poi_id.clone()),
            }),
            receipt_reprint_flag: Some(true),
            document_qualifier: Some(vec!["CashierReceipt".into(), "CustomerReceipt".into()]),
        });
        match self.call(header, body, deadline).await? {
            Some(Message {
                body: Body::TransactionStatusResponse(t),
                ..
            }) => Ok(t),
            _ => Err(NexoError::Incomplete("a transaction status response")),
        }
    }

    /// Checks the terminal: reachable, the key right, the answer well formed (a
    /// `DiagnosisRequest`). Returns the terminal's status.
    pub async fn diagnose(&self, deadline: Duration) -> Result<DiagnosisResponse, NexoError> {
        self.diagnosis(false, deadline).await
    }

    /// A diagnosis that checks the acquirers too (`HostDiagnosisFlag`): the terminal's status
    /// and each acquirer's reachability.
    pub async fn diagnose_hosts(&self, deadline: Duration) -> Result<DiagnosisResponse, NexoError> {
        self.diagnosis(true, deadline).await
    }

    async fn diagnosis(
        &self,
        hosts: bool,
        deadline: Duration,
    ) -> Result<DiagnosisResponse, NexoError> {
        match self
            .service(
                MessageCategory::Diagnosis,
                Body::DiagnosisRequest(DiagnosisRequest {
                    host_diagnosis_flag: Some(hosts),
                }),
                deadline,
            )
            .await?
        {
            Body::DiagnosisResponse(d) => Ok(d),
            _ => Err(NexoError::Incomplete("a diagnosis response")),
        }
    }

    /// Shows `lines` on the customer display.
    pub async fn display(&self, lines: Vec<String>, deadline: Duration) -> Result<(), NexoError> {
        let body = Body::DisplayRequest(DisplayRequest {
            display_output: vec![DisplayOutput {
                response_required_flag: Some(true),
                minimum_display_time: None,
                device: "CustomerDisplay".into(),
                info_qualify: "Display".into(),
                output_content: OutputContent::text(lines),
            }],
        });
        match self
            .service(MessageCategory::Display, body, deadline)
            .await?
        {
            Body::DisplayResponse(d) => match d.output_result.first() {
                Some(r) if r.response.result == ResultCode::Failure => Err(failure(&r.response)),
                _ => Ok(()),
            },
            _ => Err(NexoError::Incomplete("a display response")),
        }
    }

    /// Asks the customer to confirm `question` (yes or no), within `wait` on the terminal.
    pub async fn confirm(
        &self,
        question: Vec<String>,
        wait: Duration,
        deadline: Duration,
    ) -> Result<bool, NexoError> {
        let body = Body::InputRequest(InputRequest {
            display_output: Some(DisplayOutput {
                response_required_flag: None,
                minimum_display_time: None,
                device: "CustomerDisplay".into(),
                info_qualify: "Display".into(),
                output_content: OutputContent::text(question),
            }),
            input_data: InputData {
                device: "CustomerInput".into(),
                info_qualify: "Input".into(),
                input_command: "GetConfirmation".into(),
                max_input_time: Some(wait.as_secs().clamp(1, u64::from(u32::MAX)) as u32),
                default_input_string: None,
            },
        });
        match self.service(MessageCategory::Input, body, deadline).await? {
            Body::InputResponse(r) => r
                .input_result
                .input
                .and_then(|i| i.confirmed_flag)
                .ok_or(NexoError::Incomplete("ConfirmedFlag")),
            _ => Err(NexoError::Incomplete("an input response")),
        }
    }

    /// The totals of the open batch, without closing it (`GetTotals`).
    pub async fn totals(&self, deadline: Duration) -> Result<Vec<Totals>, NexoError> {
        match self
            .service(
                MessageCategory::GetTotals,
                Body::GetTotalsRequest(GetTotalsRequest::default()),
                deadline,
            )
            .await?
        {
            Body::GetTotalsResponse(r) => totals_of(r.transaction_totals.as_deref().unwrap_or(&[])),
            _ => Err(NexoError::Incomplete("a totals response")),
        }
    }
}

/// The cart as display lines: `2 x Cappuccino 7.60`, …, `Total 10.00 EUR`, the message.
fn cart_lines(cart: &Cart) -> Vec<String> {
    use posbridge_api::money::Money;
    let mut lines: Vec<String> = cart
        .lines
        .iter()
        .map(|l| {
            let amount = Money::new(l.amount, cart.currency).number();
            match l.quantity {
                Some(q) => format!("{q} x {} {amount}", l.text),
                None => format!("{} {amount}", l.text),
            }
        })
        .collect();
    lines.push(format!("Total {}", Money::new(cart.total, cart.currency)));
    lines.extend(cart.message.clone());
    lines
}

/// The error of a `Failure` response.
fn failure(r: &Response) -> NexoError {
    NexoError::Failure {
        condition: r.error_condition.clone(),
        text: r
            .additional("message")
            .or_else(|| r.additional("refusalReason"))
            .or_else(|| r.additional_response.clone()),
    }
}

/// The category a command's dialogue has.
fn category_of(command: &TransactionCommand) -> MessageCategory {
    match command {
        TransactionCommand::Void { .. }
        | TransactionCommand::PreAuthCancel { .. }
        | TransactionCommand::Refund {
            original: Some(_), ..
        } => MessageCategory::Reversal,
        _ => MessageCategory::Payment,
    }
}

fn receipt_of(r: &PaymentReceipt, result: &TransactionResult) -> Receipt {
    // Adyen writes each line as `key=…&name=…&value=…`; other terminals as plain text.
    let lines: Vec<String> = r
        .output_content
        .output_text
        .iter()
        .map(|t| {
            if t.text.contains("name=") || t.text.contains("value=") {
                let pairs: Vec<(String, String)> = t
                    .text
                    .split('&')
                    .filter_map(|p| {
                        p.split_once('=')
                            .map(|(k, v)| (k.to_owned(), form_unescape(v)))
                    })
                    .collect();
                let get = |k: &str| {
                    pairs
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                };
                match (get("name"), get("value")) {
                    (Some(n), Some(v)) if !v.is_empty() => format!("{n}: {v}"),
                    (Some(n), _) => n,
                    (None, Some(v)) => v,
                    (None, None) => String::new(),
                }
            } else {
                t.text.clone()
            }
        })
        .collect();
    let (header, footer) = Receipt::fit_printed(&lines);
    Receipt {
        copy: if r.document_qualifier == "CustomerReceipt" {
            ReceiptCopy::Customer
        } else {
            ReceiptCopy::Merchant
        },
        header,
        merchant_name: None,
        merchant_id: None,
        terminal_label: None,
        kind: result.kind,
        amount: result.approved_minor,
        currency: result.amount.currency,
        tip: result.tip,
        cashback: result.cashback,
        time: result.time,
        method: result.method,
        card_scheme: result.card_scheme.clone(),
        pan: result.pan,
        aid: None,
        application_label: None,
        auth_code: result.auth_code.clone(),
        reference: result.reference.clone(),
        trace: None,
        result_text: None,
        signature_line: r.required_signature_flag == Some(true),
        lines: Vec::new(),
        footer,
    }
}

/// posbridge's totals of nexo's: per kind and currency (`Debit` sales, `Credit` refunds,
/// `ReverseDebit` and `ReverseCredit` voids, reservations and completions as their kinds).
pub fn totals_of(totals: &[TransactionTotals]) -> Result<Vec<Totals>, NexoError> {
    let mut out: Vec<Totals> = Vec::new();
    for t in totals {
        let Some(alpha) = t.payment_currency.as_deref() else {
            continue;
        };
        let digits = currency_digits(alpha).map_err(NexoError::Amount)?;
        let currency = Currency::new(currency_numeric(alpha).map_err(NexoError::Amount)?)
            .map_err(|_| NexoError::Amount(AmountError::UnknownCurrency(alpha.to_owned())))?;
        for p in t.payment_totals.iter().flatten() {
            let kind = match p.transaction_type.as_str() {
                "Debit" => TransactionKind::Sale,
                "Credit" => TransactionKind::Refund,
                "ReverseDebit" | "ReverseCredit" => TransactionKind::Void,
                "FirstReservation" | "OneTimeReservation" => TransactionKind::PreAuth,
                "UpdateReservation" => TransactionKind::IncrementalAuth,
                "CompletedReservation" | "CompletedDeffered" => TransactionKind::Capture,
                _ => continue,
            };
            let amount = p
                .transaction_amount
                .to_minor(digits)
                .map_err(NexoError::Amount)?;
            let count = u32::try_from(p.transaction_count).unwrap_or(u32::MAX);
            match out
                .iter_mut()
                .find(|o| o.kind == kind && o.currency == currency)
            {
                Some(o) => {
                    o.count = o.count.saturating_add(count);
                    o.amount = o.amount.saturating_add(amount);
                }
                None => out.push(Totals {
                    kind,
                    currency,
                    count,
                    amount,
                }),
            }
        }
    }
    Ok(out)
}

impl<T: Transport> Adapter for NexoClient<T> {
    type Error = NexoError;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// nexo terminals answer `TransactionStatus` about any recent dialogue by its `ServiceID`,
    /// which posbridge derives from the key; but sending a request again under its `ServiceID`
    /// is not joining it (a terminal may run it twice), so commands in doubt are resolved
    /// before anything new, as for ZVT.
    fn remembers_keys(&self) -> bool {
        false
    }

    async fn send(
        &self,
        request: TransactionRequest,
        exchange: &posbridge_api::Exchange<'_>,
        deadline: Duration,
    ) -> Answer<NexoError> {
        let plan = match self.plan(&request, exchange.records()) {
            Ok(p) => p,
            Err(refusal) => return Answer::Refused(refusal),
        };
        let answer = self
            .run(&request, plan, exchange.records(), deadline, &|| {
                exchange.sent()
            })
            .await;
        if let Answer::NotSent(NexoError::Transport(TransportError::Connect(_))) = &answer {
            self.closed.store(true, Ordering::Relaxed);
        }
        answer
    }

    async fn resolve(
        &self,
        key: IdempotencyKey,
        entry: Option<&Entry>,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Resolution<NexoError>, NexoError> {
        let sid = service_id(&key);
        if lock(&self.running).as_ref().is_some_and(|(s, _)| *s == sid) {
            return Ok(Resolution::Running(None));
        }
        let Some(entry) = entry else {
            // Not this journal's: what the terminal says about the dialogue, as a payment.
            let status = self
                .status(&sid, MessageCategory::Payment, deadline)
                .await?;
            return Ok(match status.response.error_condition {
                Some(ErrorCondition::InProgress) => Resolution::Running(None),
                Some(ErrorCondition::NotFound) => Resolution::NotDone,
                _ => Resolution::Unknown(failure(&status.response)),
            });
        };
        let category = category_of(&entry.request.command);
        let status = self.status(&sid, category, deadline).await?;
        let r = &status.response;
        match (
            r.result,
            &r.error_condition,
            &status.repeated_message_response,
        ) {
            (ResultCode::Success, _, Some(repeated)) => {
                if repeated.message_header.service_id.as_deref() != Some(sid.as_str())
                    || repeated.message_header.sale_id != self.config.sale_id
                {
                    return Ok(Resolution::Unknown(NexoError::Unpaired(
                        "repeated message's ServiceID",
                    )));
                }
                let body = &repeated.repeated_response_message_body;
                let body = match (&body.payment_response, &body.reversal_response) {
                    (Some(p), None) => Body::PaymentResponse(p.clone()),
                    (None, Some(r)) => Body::ReversalResponse(r.clone()),
                    _ => {
                        return Ok(Resolution::Unknown(NexoError::Incomplete(
                            "a repeated body",
                        )));
                    }
                };
                // The repeated payment must be this command's (the till's id is the key).
                if let Body::PaymentResponse(p) = &body
                    && let Some(sale) = &p.sale_data
                    && sale.sale_transaction_id.transaction_id != key.to_string()
                {
                    return Ok(Resolution::Unknown(NexoError::Unpaired(
                        "SaleTransactionID",
                    )));
                }
                match self.outcome_of(&entry.request, records, &body) {
                    Ok(Answer::Result(result)) => Ok(Resolution::Done(result)),
                    // The request met Busy or a refusal: it never ran.
                    Ok(Answer::NotSent(_) | Answer::Refused(_)) => Ok(Resolution::NotDone),
                    Ok(Answer::Lost { source, .. }) => Ok(Resolution::Unknown(
                        source.unwrap_or(NexoError::Incomplete("a result")),
                    )),
                    Err(e) => Ok(Resolution::Unknown(e)),
                }
            }
            (ResultCode::Failure, Some(ErrorCondition::InProgress), _) => {
                Ok(Resolution::Running(None))
            }
            (ResultCode::Failure, Some(ErrorCondition::NotFound), _) => {
                let age = self.now().0.saturating_sub(entry.created.0);
                if u128::from(age) <= self.config.status_memory.as_millis() {
                    Ok(Resolution::NotDone)
                } else {
                    Ok(Resolution::Unknown(NexoError::Failure {
                        condition: Some(ErrorCondition::NotFound),
                        text: Some(format!(
                            "the terminal no longer remembers a dialogue from {} s ago",
                            age / 1000
                        )),
                    }))
                }
            }
            _ => Ok(Resolution::Unknown(failure(r))),
        }
    }

    async fn cancel(&self) -> Result<(), NexoError> {
        let Some((sid, category)) = lock(&self.running).clone() else {
            return Ok(());
        };
        let header = self.header(MessageCategory::Abort, self.fresh_service_id());
        let body = Body::AbortRequest(AbortRequest {
            abort_reason: "MerchantAbort".into(),
            message_reference: MessageReference {
                category: Some(category),
                service_id: Some(sid),
                device_id: None,
                sale_id: Some(self.config.sale_id.clone()),
                poi_id: Some(self.config.poi_id.clone()),
            },
        });
        // A terminal answers an abort with an empty body (the payment's own answer says how it
        // ended); anything else is read for a failure.
        match self.call(header, body, Duration::from_secs(10)).await {
            Ok(_) => Ok(()),
            Err(NexoError::Unpaired(_) | NexoError::Decode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn last_transaction(
        &self,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, NexoError> {
        let header = self.header(MessageCategory::TransactionStatus, self.fresh_service_id());
        let body = Body::TransactionStatusRequest(TransactionStatusRequest::default());
        let Some(Message {
            body: Body::TransactionStatusResponse(status),
            ..
        }) = self.call(header, body, deadline).await?
        else {
            return Err(NexoError::Incomplete("a transaction status response"));
        };
        if status.response.result == ResultCode::Failure {
            return match status.response.error_condition {
                Some(ErrorCondition::NotFound) => Ok(None),
                _ => Err(failure(&status.response)),
            };
        }
        let Some(repeated) = status.repeated_message_response else {
            return Ok(None);
        };
        // The dialogue's key, when it is this till's (its ServiceID is the key's).
        let mine = records
            .newest(|e| Some(service_id(&e.key())) == repeated.message_header.service_id)
            .ok()
            .flatten();
        let body = repeated.repeated_response_message_body;
        let body = match (body.payment_response, body.reversal_response) {
            (Some(p), _) => Body::PaymentResponse(p),
            (None, Some(r)) => Body::ReversalResponse(r),
            (None, None) => return Ok(None),
        };
        let request = match &mine {
            Some(e) => e.request.clone(),
            None => {
                // Another till's: read it as a sale of what was authorised.
                let Body::PaymentResponse(p) = &body else {
                    return Ok(None);
                };
                let Some(a) = p
                    .payment_result
                    .as_ref()
                    .and_then(|r| r.amounts_resp.as_ref())
                else {
                    return Ok(None);
                };
                let digits = currency_digits(&a.currency).map_err(NexoError::Amount)?;
                let currency =
                    Currency::new(currency_numeric(&a.currency).map_err(NexoError::Amount)?)
                        .map_err(|_| {
                            NexoError::Amount(AmountError::UnknownCurrency(a.currency.clone()))
                        })?;
                let minor = a
                    .authorized_amount
                    .to_minor(digits)
                    .map_err(NexoError::Amount)?;
                let key = p
                    .poi_data
                    .as_ref()
                    .map(|d| {
                        IdempotencyKey(
                            *transaction_id(&d.poi_transaction_id.transaction_id).as_bytes(),
                        )
                    })
                    .unwrap_or_default();
                TransactionRequest::new(
                    RequestId::default(),
                    key,
                    TransactionCommand::Sale {
                        amount: Amount::new(minor, currency),
                        tip: None,
                        cashback: None,
                    },
                )
            }
        };
        match self.outcome_of(&request, records, &body)? {
            Answer::Result(r) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        _operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> Result<SettlementResult, CallError<NexoError>> {
        let body = Body::ReconciliationRequest(ReconciliationRequest {
            reconciliation_type: "SaleReconciliation".into(),
            poi_reconciliation_id: None,
        });
        let answer = self
            .service(MessageCategory::Reconciliation, body, deadline)
            .await
            .map_err(|e| match e {
                NexoError::Failure { .. } => CallError::Refused(Refusal {
                    code: ErrorCode::INTERNAL,
                    detail: Some(e.to_string()),
                    source: Some(e),
                }),
                e => CallError::Failed(e),
            })?;
        let Body::ReconciliationResponse(r) = answer else {
            return Err(CallError::Failed(NexoError::Incomplete(
                "a reconciliation response",
            )));
        };
        let totals =
            totals_of(r.transaction_totals.as_deref().unwrap_or(&[])).map_err(CallError::Failed)?;
        Ok(SettlementResult {
            request_id: RequestId::default(),
            idempotency_key: key,
            terminal_id: self.capabilities.terminal_id,
            batch_number: r
                .poi_reconciliation_id
                .as_deref()
                .and_then(|b| b.parse().ok())
                .unwrap_or(0),
            status: Ok(()),
            opened: None,
            closed: self.now(),
            totals,
            receipt: None,
            signature: None,
        })
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Receipt, CallError<NexoError>> {
        // The journal keeps the receipts the terminal sent; a key it lacks is asked for.
        let recorded = match records.referenced(&target).ok().flatten() {
            Some(r) => Some(r),
            None => match &target {
                TransactionRef::Key(k) => {
                    let entry = records.entry(k).ok().flatten();
                    match self.resolve(*k, entry.as_ref(), records, deadline).await {
                        Ok(Resolution::Done(r)) => Some(r),
                        Ok(_) => None,
                        Err(e) => return Err(CallError::Failed(e)),
                    }
                }
                _ => None,
            },
        };
        recorded
            .and_then(|r| r.receipts.into_iter().find(|x| x.copy == copy))
            .ok_or_else(|| {
                CallError::Refused(Refusal::new(
                    ErrorCode::NOT_FOUND,
                    Some("no such receipt in the journal or on the terminal".to_owned()),
                ))
            })
    }

    /// The cart as text lines on the customer display (`DisplayRequest`): one per item
    /// (quantity, text, amount), then the total and the message.
    async fn show_cart(&self, cart: &Cart, deadline: Duration) -> Result<bool, NexoError> {
        self.display(cart_lines(cart), deadline).await?;
        Ok(true)
    }

    /// A yes/no question maps onto nexo's `GetConfirmation` input; tips, numbers and
    /// signatures have no neutral nexo input here: `None` (this protocol cannot).
    async fn ask_customer(
        &self,
        prompt: &CustomerPrompt,
    ) -> Result<Option<posbridge_wire::CustomerReply>, NexoError> {
        match prompt.question {
            posbridge_wire::CustomerQuestion::YesNo => {
                // The terminal's own wait, then time for its answer to come.
                let deadline = prompt.timeout + Duration::from_secs(10);
                let yes = self
                    .confirm(vec![prompt.prompt.clone()], prompt.timeout, deadline)
                    .await?;
                Ok(Some(posbridge_wire::CustomerReply::Confirmed(yes)))
            }
            _ => Ok(None),
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    async fn close(self) {}
}
