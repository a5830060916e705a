//! The terminal role: [`NexoServer`] answers nexo requests with any [`PaymentTerminal`] — the
//! simulator's, or a real terminal behind another protocol — as `ZvtServer` does for ZVT.
//!
//! Each money dialogue runs under an idempotency key derived from the till's `SaleID`, the
//! `ServiceID` and the category, so the same request sent again gets the first one's answer from
//! the backend's journal, never a second payment, and `TransactionStatus` about a dialogue is
//! answered from the backend too (after a restart as well): `InProgress` while it runs, the
//! original answer in a `RepeatedMessageResponse` once it ended, `NotFound` when it never
//! arrived. A second money dialogue while one runs gets `Busy`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use posbridge_api::{Call, PaymentError, PaymentTerminal};
use posbridge_wire::{
    Amount, Currency, ErrorCode, IdempotencyKey, OperatorAuth, Outcome, ReceiptCopy,
    TransactionCommand, TransactionId, TransactionKind, TransactionRef, TransactionResult,
    TransactionStatus,
};
use sha2::{Digest, Sha256};

use crate::amount::{Decimal, currency_alpha, currency_digits, currency_numeric};
use crate::codec::{self, Direction, Envelope, Message};
use crate::message::*;
use crate::security::SecurityKey;
use crate::time;
use crate::transport::Handler;

/// How the server behaves.
#[derive(Clone)]
pub struct ServerConfig {
    /// `POIID`: the terminal's name in nexo (requests to another are refused).
    pub poi_id: String,
    /// The shared key: requests must be sealed with it, answers are. `None`: in the clear.
    pub key: Option<SecurityKey>,
    /// How long a payment may take.
    pub deadline: Duration,
    /// The operator credential the terminal behind wants for refunds, voids, captures and
    /// settlement (nexo has no operator PIN: the shared key authenticates the till).
    pub operator: Option<OperatorAuth>,
    /// How a receipt becomes the printed lines of a `PaymentReceipt`.
    pub render: fn(&posbridge_wire::Receipt) -> String,
}

impl ServerConfig {
    /// A terminal named `poi_id`, with the shared key `key`, payments within two minutes (nexo's
    /// local timeout), no operator credential.
    pub fn new(poi_id: impl Into<String>, key: Option<SecurityKey>) -> Self {
        Self {
            poi_id: poi_id.into(),
            key,
            deadline: Duration::from_secs(120),
            operator: None,
            render: posbridge_api::plain_receipt,
        }
    }

    fn call(&self) -> Call {
        Call {
            deadline: self.deadline,
            operator: self.operator.clone(),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("poi_id", &self.poi_id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A dialogue's identity: the till, its `ServiceID` and the category.
type Dialogue = (String, String, MessageCategory);

#[derive(Default)]
struct State {
    /// The money dialogue running now.
    running: Option<Dialogue>,
    /// Answers of ended dialogues, newest last (a bounded memory; the backend's journal
    /// answers beyond it).
    ended: VecDeque<(Dialogue, Message)>,
    /// The kind of each transaction the backend ran, by id (to tell a release of a
    /// pre-authorisation from a void).
    kinds: HashMap<TransactionId, (TransactionKind, Currency)>,
    /// The last ended money dialogue.
    last: Option<Dialogue>,
}

const MEMORY: usize = 1000;

/// A nexo terminal over a [`PaymentTerminal`] (see the module).
pub struct NexoServer<P> {
    backend: Arc<P>,
    config: ServerConfig,
    state: Mutex<State>,
    drop_answers: AtomicU32,
}

impl<P> fmt::Debug for NexoServer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NexoServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The backend's idempotency key of a dialogue.
pub fn dialogue_key(sale_id: &str, service_id: &str, category: MessageCategory) -> IdempotencyKey {
    let d = Sha256::new()
        .chain_update(b"posbridge nexo dialogue")
        .chain_update(sale_id.as_bytes())
        .chain_update([0])
        .chain_update(service_id.as_bytes())
        .chain_update([0])
        .chain_update(format!("{category:?}").as_bytes())
        .finalize();
    IdempotencyKey(d[..16].try_into().expect("16 bytes"))
}

fn currency_of(alpha: &str) -> Option<(Currency, u8)> {
    let digits = currency_digits(alpha).ok()?;
    Some((Currency::new(currency_numeric(alpha).ok()?).ok()?, digits))
}

fn refusal(condition: ErrorCondition, code: Option<ErrorCode>, text: &str) -> Response {
    let mut r = Response::failure(condition, Some(text.to_owned()));
    if let Some(code) = code {
        r.additional_response = Some(format!(
            "{}&errorCode={}",
            r.additional_response.unwrap_or_default(),
            code.0
        ));
    }
    r
}

impl<P: PaymentTerminal + 'static> NexoServer<P> {
    /// A nexo terminal answering with `backend`.
    pub fn new(backend: Arc<P>, config: ServerConfig) -> Self {
        Self {
            backend,
            config,
            state: Mutex::new(State::default()),
            drop_answers: AtomicU32::new(0),
        }
    }

    /// The next `n` money dialogues run to their end and their answers are dropped (the
    /// connection closes instead): the classic in-doubt case, for tests and the simulator.
    pub fn drop_next_answers(&self, n: u32) {
        self.drop_answers.store(n, Ordering::SeqCst);
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<P> {
        &self.backend
    }

    /// Answers one request body (decoded, opened, dispatched, sealed): the response body, an
    /// empty body for an abort, or an HTTP status and text for a request it cannot take.
    pub async fn answer(&self, body: &[u8]) -> Result<Vec<u8>, (u16, String)> {
        let message = match (codec::decode(body), &self.config.key) {
            (Err(e), _) => return Err((400, e.to_string())),
            (Ok(Envelope::Sealed(s)), Some(key)) => {
                key.open(&s).map_err(|e| (401, e.to_string()))?
            }
            (Ok(Envelope::Clear(_)), Some(_)) => {
                return Err((401, "this terminal takes encrypted messages only".into()));
            }
            (Ok(Envelope::Sealed(_)), None) => {
                return Err((401, "this terminal has no key configured".into()));
            }
            (Ok(Envelope::Clear(m)), None) => m,
        };
        if message.direction != Direction::Request {
            return Err((400, "a terminal takes requests, not responses".into()));
        }
        if message.header.poi_id != self.config.poi_id {
            return Err((
                404,
                format!(
                    "this terminal is {:?}, not {:?}",
                    self.config.poi_id, message.header.poi_id
                ),
            ));
        }
        let money = matches!(
            message.body,
            Body::PaymentRequest(_) | Body::ReversalRequest(_)
        );
        let Some(body) = self.dispatch(&message).await else {
            return Ok(Vec::new());
        };
        if money && self.drop_answers.load(Ordering::SeqCst) > 0 {
            self.drop_answers.fetch_sub(1, Ordering::SeqCst);
            return Err((503, "the answer was dropped (fault injected)".into()));
        }
        let mut header = message.header.clone();
        header.kind = MessageType::Response;
        header.protocol_version = None;
        let answer = Message {
            direction: Direction::Response,
            header,
            body,
        };
        Ok(match &self.config.key {
            Some(key) => codec::encode(&Envelope::Sealed(
                key.seal(&answer).map_err(|e| (500, e.to_string()))?,
            )),
            None => codec::encode(&Envelope::Clear(answer)),
        })
    }

    async fn dispatch(&self, m: &Message) -> Option<Body> {
        let h = &m.header;
        let sid = h.service_id.clone().unwrap_or_default();
        let dialogue: Dialogue = (h.sale_id.clone(), sid, h.category);
        Some(match &m.body {
            Body::PaymentRequest(_) | Body::ReversalRequest(_) => self.money(dialogue, m).await,
            Body::AbortRequest(a) => {
                let running = lock(&self.state).running.clone();
                let target = &a.message_reference;
                if let Some((sale, sid, _)) = running
                    && target.service_id.as_deref() == Some(sid.as_str())
                    && target.sale_id.as_deref().is_none_or(|s| s == sale)
                {
                    let _ = self.backend.cancel().await;
                }
                return None;
            }
            Body::TransactionStatusRequest(t) => {
                Body::TransactionStatusResponse(self.status(h, t.message_reference.as_ref()).await)
            }
            Body::ReconciliationRequest(_) => self.reconcile(&dialogue).await,
            Body::GetTotalsRequest(_) => Body::GetTotalsResponse(GetTotalsResponse {
                response: Response::success(),
                poi_reconciliation_id: "0".into(),
                transaction_totals: Some(self.open_totals()),
            }),
            Body::DiagnosisRequest(_) => Body::DiagnosisResponse(DiagnosisResponse {
                response: Response::success(),
                poi_status: Some(PoiStatus {
                    global_status: if lock(&self.state).running.is_some() {
                        "Busy".into()
                    } else {
                        "OK".into()
                    },
                    ped_ok: Some(true),
                    card_reader_ok: Some(true),
                    printer_status: Some("OK".into()),
                    communication_ok: Some(true),
                }),
                host_status: None,
            }),
            Body::LoginRequest(_) => Body::LoginResponse(LoginResponse {
                response: Response::success(),
            }),
            Body::LogoutRequest(_) => Body::LogoutResponse(LogoutResponse {
                response: Response::success(),
            }),
            Body::DisplayRequest(d) => Body::DisplayResponse(DisplayResponse {
                output_result: d
                    .display_output
                    .iter()
                    .map(|o| OutputResult {
                        device: o.device.clone(),
                        info_qualify: o.info_qualify.clone(),
                        response: Response::success(),
                    })
                    .collect(),
            }),
            Body::InputRequest(i) => Body::InputResponse(InputResponse {
                output_result: None,
                input_result: InputResult {
                    device: i.input_data.device.clone(),
                    info_qualify: i.input_data.info_qualify.clone(),
                    response: if i.input_data.input_command == "GetConfirmation" {
                        Response::success()
                    } else {
                        Response::failure(
                            ErrorCondition::UnavailableDevice,
                            Some(format!("{} is not offered", i.input_data.input_command)),
                        )
                    },
                    input: (i.input_data.input_command == "GetConfirmation").then(|| Input {
                        input_command: "GetConfirmation".into(),
                        confirmed_flag: Some(true),
                        digit_input: None,
                        text_input: None,
                    }),
                },
            }),
            Body::EventNotification(_) => return None,
            // A response sent to a terminal.
            _ => return None,
        })
    }

    /// The command a money request asks for, or the failure to answer.
    fn command_of(&self, m: &Message) -> Result<TransactionCommand, Response> {
        let bad = |t: &str| {
            refusal(
                ErrorCondition::MessageFormat,
                Some(ErrorCode::INVALID_REQUEST),
                t,
            )
        };
        type Found = Option<(TransactionKind, Currency)>;
        let original = |o: &OriginalPoiTransaction| -> Result<(TransactionRef, Found), Response> {
            let id =
                TransactionId::parse_hex(&o.poi_transaction_id.transaction_id).map_err(|_| {
                    refusal(
                        ErrorCondition::NotFound,
                        Some(ErrorCode::ORIGINAL_NOT_FOUND),
                        "no such transaction on this terminal",
                    )
                })?;
            let kind = lock(&self.state).kinds.get(&id).copied();
            Ok((TransactionRef::Id(id), kind))
        };
        match &m.body {
            Body::PaymentRequest(p) => {
                let a = &p.payment_transaction.amounts_req;
                let (currency, digits) =
                    currency_of(&a.currency).ok_or_else(|| bad("unknown currency"))?;
                let read = |d: &Decimal| d.to_minor(digits).map_err(|e| bad(&e.to_string()));
                let total = read(&a.requested_amount)?;
                let tip = a.tip_amount.as_ref().map(read).transpose()?;
                let cashback = a.cash_back_amount.as_ref().map(read).transpose()?;
                let goods = total - tip.unwrap_or(0) - cashback.unwrap_or(0);
                let amount = Amount::new(goods, currency);
                let preauth = p
                    .sale_data
                    .sale_to_acquirer_data
                    .as_deref()
                    .is_some_and(|d| d.split('&').any(|kv| kv == "authorisationType=PreAuth"));
                let kind = p
                    .payment_data
                    .as_ref()
                    .and_then(|d| d.payment_type)
                    .unwrap_or(PaymentType::Normal);
                let reference = p.payment_transaction.original_poi_transaction.as_ref();
                Ok(match (kind, reference) {
                    (PaymentType::Normal, _) if preauth => TransactionCommand::PreAuth { amount },
                    (PaymentType::Normal, _) => TransactionCommand::Sale {
                        amount,
                        tip,
                        cashback,
                    },
                    (PaymentType::Refund, _) => TransactionCommand::Refund {
                        amount,
                        original: None,
                    },
                    (PaymentType::FirstReservation | PaymentType::OneTimeReservation, _) => {
                        TransactionCommand::PreAuth { amount }
                    }
                    (PaymentType::UpdateReservation, Some(o)) => {
                        TransactionCommand::IncrementalAuth {
                            original: original(o)?.0,
                            amount,
                        }
                    }
                    (PaymentType::Completion, Some(o)) => TransactionCommand::Capture {
                        original: original(o)?.0,
                        amount: Amount::new(goods, currency),
                        tip,
                    },
                    (other, _) => {
                        return Err(refusal(
                            ErrorCondition::NotAllowed,
                            Some(ErrorCode::KIND_NOT_SUPPORTED),
                            &format!("payment type {other:?} is not offered"),
                        ));
                    }
                })
            }
            Body::ReversalRequest(r) => {
                let (target, kind) = original(&r.original_poi_transaction)?;
                match (&r.reversed_amount, kind) {
                    (_, Some((TransactionKind::PreAuth, _))) => {
                        Ok(TransactionCommand::PreAuthCancel { original: target })
                    }
                    (Some(amount), found) => {
                        // A referenced refund, in the original's currency (the terminal's
                        // first when the original ran before this process).
                        let currency = found
                            .map(|(_, c)| c)
                            .or_else(|| self.backend.capabilities().currencies.first().copied())
                            .unwrap_or(Currency::EUR);
                        let digits = currency_alpha(currency.code())
                            .and_then(|a| currency_digits(a).ok())
                            .ok_or_else(|| bad("the original's currency has no minor unit"))?;
                        let minor = amount.to_minor(digits).map_err(|e| bad(&e.to_string()))?;
                        Ok(TransactionCommand::Refund {
                            amount: Amount::new(minor, currency),
                            original: Some(target),
                        })
                    }
                    (None, _) => Ok(TransactionCommand::Void { original: target }),
                }
            }
            _ => Err(bad("not a money request")),
        }
    }

    async fn money(&self, dialogue: Dialogue, m: &Message) -> Body {
        let reversal = matches!(m.body, Body::ReversalRequest(_));
        let fail = |r: Response| {
            if reversal {
                Body::ReversalResponse(ReversalResponse {
                    response: r,
                    poi_data: None,
                    original_poi_transaction: None,
                    reversed_amount: None,
                    payment_receipt: None,
                })
            } else {
                Body::PaymentResponse(PaymentResponse {
                    response: r,
                    sale_data: None,
                    poi_data: None,
                    payment_result: None,
                    payment_receipt: None,
                })
            }
        };
        {
            let mut state = lock(&self.state);
            if let Some(running) = &state.running {
                let text = if *running == dialogue {
                    "this dialogue is running"
                } else {
                    "another dialogue is running"
                };
                return fail(Response::failure(ErrorCondition::Busy, Some(text.into())));
            }
            state.running = Some(dialogue.clone());
        }
        let body = match self.command_of(m) {
            Err(r) => fail(r),
            Ok(command) => {
                let key = dialogue_key(&dialogue.0, &dialogue.1, dialogue.2);
                let outcome = self.backend.execute(key, command, self.config.call()).await;
                match outcome {
                    Ok(result) => {
                        lock(&self.state)
                            .kinds
                            .insert(result.transaction_id, (result.kind, result.amount.currency));
                        self.body_of(m, &result)
                    }
                    Err(e) => fail(self.refused(&e)),
                }
            }
        };
        let mut state = lock(&self.state);
        state.running = None;
        state.last = Some(dialogue.clone());
        state.ended.push_back((
            dialogue,
            Message {
                direction: Direction::Response,
                header: MessageHeader {
                    kind: MessageType::Response,
                    protocol_version: None,
                    ..m.header.clone()
                },
                body: body.clone(),
            },
        ));
        if state.ended.len() > MEMORY {
            state.ended.pop_front();
        }
        body
    }

    fn refused<E: std::error::Error>(&self, e: &PaymentError<E>) -> Response {
        let (condition, code) = match e {
            PaymentError::AlreadyRefused { .. } => (ErrorCondition::NotAllowed, None),
            PaymentError::Refused { refusal, .. } => {
                let c = match refusal.code {
                    ErrorCode::ORIGINAL_NOT_FOUND => ErrorCondition::NotFound,
                    ErrorCode::BUSY => ErrorCondition::Busy,
                    ErrorCode::INVALID_REQUEST => ErrorCondition::MessageFormat,
                    _ => ErrorCondition::NotAllowed,
                };
                (c, Some(refusal.code))
            }
            PaymentError::Invalid(c) => (ErrorCondition::NotAllowed, Some(c.error_code())),
            _ => (
                ErrorCondition::UnavailableService,
                Some(ErrorCode::INTERNAL),
            ),
        };
        refusal(condition, code, &e.to_string())
    }

    /// The answer a backend result makes.
    fn body_of(&self, m: &Message, r: &TransactionResult) -> Body {
        let alpha = currency_alpha(r.amount.currency.code()).unwrap_or("EUR");
        let digits = currency_digits(alpha).unwrap_or(2);
        let dec = |v: u64| Decimal::from_minor(v, digits);
        let response = match r.outcome {
            Outcome::Approved => Response::success(),
            Outcome::PartiallyApproved => Response {
                result: ResultCode::Partial,
                error_condition: None,
                additional_response: None,
            },
            Outcome::Declined(reason) => {
                let condition = match reason {
                    posbridge_wire::DeclineReason::WRONG_PIN => ErrorCondition::WrongPin,
                    posbridge_wire::DeclineReason::INVALID_CARD => ErrorCondition::InvalidCard,
                    _ => ErrorCondition::Refusal,
                };
                let mut resp = Response::failure(condition, Some(format!("{reason}")));
                resp.additional_response = Some(format!(
                    "{}&refusalReason={}&declineCode={}",
                    resp.additional_response.unwrap_or_default(),
                    form_escape(&reason.to_string()),
                    reason.0
                ));
                resp
            }
            Outcome::Cancelled => {
                Response::failure(ErrorCondition::Cancel, Some("cancelled".into()))
            }
            Outcome::Failed(code) => refusal(
                ErrorCondition::UnavailableService,
                Some(code),
                &code.to_string(),
            ),
            _ => refusal(
                ErrorCondition::UnavailableService,
                Some(ErrorCode::INTERNAL),
                "unknown outcome",
            ),
        };
        let poi = PoiData {
            poi_transaction_id: TransactionIdentification {
                transaction_id: r.transaction_id.to_string(),
                time_stamp: time::format(r.time),
            },
            poi_reconciliation_id: None,
        };
        let receipts: Vec<PaymentReceipt> = r
            .receipts
            .iter()
            .map(|x| PaymentReceipt {
                document_qualifier: match x.copy {
                    ReceiptCopy::Customer => "CustomerReceipt".into(),
                    _ => "CashierReceipt".into(),
                },
                required_signature_flag: Some(x.signature_line),
                output_content: OutputContent::text(
                    (self.config.render)(x).lines().map(str::to_owned),
                ),
            })
            .collect();
        let receipts = (!receipts.is_empty()).then_some(receipts);
        match &m.body {
            Body::ReversalRequest(q) => Body::ReversalResponse(ReversalResponse {
                response,
                poi_data: Some(poi),
                original_poi_transaction: Some(q.original_poi_transaction.clone()),
                // A void reverses the whole; a referenced refund says how much.
                reversed_amount: q
                    .reversed_amount
                    .as_ref()
                    .filter(|_| r.outcome.is_approved())
                    .map(|_| dec(r.approved_minor)),
                payment_receipt: receipts,
            }),
            Body::PaymentRequest(q) => Body::PaymentResponse(PaymentResponse {
                response,
                sale_data: Some(SaleDataResp {
                    sale_transaction_id: q.sale_data.sale_transaction_id.clone(),
                }),
                poi_data: Some(poi),
                payment_result: Some(PaymentResult {
                    payment_type: q.payment_data.as_ref().and_then(|d| d.payment_type),
                    payment_instrument_data: Some(PaymentInstrumentData {
                        payment_instrument_type: Some("Card".into()),
                        card_data: Some(CardData {
                            payment_brand: r.card_scheme.clone(),
                            masked_pan: r.pan.map(|p| p.to_string()),
                            entry_mode: r.method.map(|m| {
                                vec![
                                    match m {
                                        posbridge_wire::PaymentMethod::Contactless => "Contactless",
                                        posbridge_wire::PaymentMethod::Swipe => "MagStripe",
                                        posbridge_wire::PaymentMethod::Wallet => "Mobile",
                                        _ => "ICC",
                                    }
                                    .into(),
                                ]
                            }),
                        }),
                    }),
                    amounts_resp: Some(AmountsResp {
                        currency: alpha.into(),
                        authorized_amount: dec(if r.outcome.is_approved() {
                            r.approved_minor + r.tip.unwrap_or(0) + r.cashback.unwrap_or(0)
                        } else {
                            0
                        }),
                        cash_back_amount: r.cashback.filter(|_| r.outcome.is_approved()).map(dec),
                        tip_amount: r.tip.filter(|_| r.outcome.is_approved()).map(dec),
                    }),
                    payment_acquirer_data: Some(PaymentAcquirerData {
                        approval_code: r.auth_code.clone(),
                        ..PaymentAcquirerData::default()
                    }),
                    online_flag: Some(!r.offline),
                }),
                payment_receipt: receipts,
            }),
            _ => unreachable!("money dialogues only"),
        }
    }

    async fn status(
        &self,
        h: &MessageHeader,
        reference: Option<&MessageReference>,
    ) -> TransactionStatusResponse {
        let wanted: Option<Dialogue> = match reference {
            Some(r) => Some((
                r.sale_id.clone().unwrap_or_else(|| h.sale_id.clone()),
                r.service_id.clone().unwrap_or_default(),
                r.category.unwrap_or(MessageCategory::Payment),
            )),
            None => lock(&self.state).last.clone(),
        };
        let not_found = |text: &str| TransactionStatusResponse {
            response: Response::failure(ErrorCondition::NotFound, Some(text.into())),
            message_reference: reference.cloned(),
            repeated_message_response: None,
        };
        let Some(wanted) = wanted else {
            return not_found("no transaction yet");
        };
        let (running, remembered) = {
            let state = lock(&self.state);
            (
                state.running.as_ref() == Some(&wanted),
                state
                    .ended
                    .iter()
                    .rev()
                    .find(|(d, _)| *d == wanted)
                    .map(|(_, m)| m.clone()),
            )
        };
        if running {
            return TransactionStatusResponse {
                response: Response::failure(ErrorCondition::InProgress, None),
                message_reference: reference.cloned(),
                repeated_message_response: None,
            };
        }
        let repeated = |message: Message| {
            let mut body = RepeatedResponseMessageBody::default();
            match message.body {
                Body::PaymentResponse(p) => body.payment_response = Some(p),
                Body::ReversalResponse(r) => body.reversal_response = Some(r),
                _ => return not_found("not a payment or reversal"),
            }
            TransactionStatusResponse {
                response: Response::success(),
                message_reference: Some(MessageReference {
                    category: Some(wanted.2),
                    service_id: Some(wanted.1.clone()),
                    device_id: None,
                    sale_id: Some(wanted.0.clone()),
                    poi_id: Some(self.config.poi_id.clone()),
                }),
                repeated_message_response: Some(RepeatedMessageResponse {
                    message_header: message.header,
                    repeated_response_message_body: body,
                }),
            }
        };
        if let Some(message) = remembered {
            return repeated(message);
        }
        // Beyond this process's memory: the backend's journal knows the key.
        let key = dialogue_key(&wanted.0, &wanted.1, wanted.2);
        match self.backend.status(key, Duration::from_secs(10)).await {
            Ok(TransactionStatus::Done(result)) => {
                let header = MessageHeader {
                    protocol_version: None,
                    class: MessageClass::Service,
                    category: wanted.2,
                    kind: MessageType::Response,
                    service_id: Some(wanted.1.clone()),
                    device_id: None,
                    sale_id: wanted.0.clone(),
                    poi_id: self.config.poi_id.clone(),
                };
                let request = match wanted.2 {
                    MessageCategory::Reversal => Body::ReversalRequest(ReversalRequest {
                        original_poi_transaction: OriginalPoiTransaction {
                            sale_id: None,
                            poi_id: None,
                            poi_transaction_id: TransactionIdentification {
                                transaction_id: String::new(),
                                time_stamp: String::new(),
                            },
                        },
                        reversal_reason: "MerchantCancel".into(),
                        reversed_amount: None,
                        sale_data: None,
                    }),
                    _ => Body::PaymentRequest(PaymentRequest {
                        sale_data: SaleData {
                            sale_transaction_id: TransactionIdentification {
                                transaction_id: String::new(),
                                time_stamp: String::new(),
                            },
                            sale_reference_id: None,
                            operator_id: None,
                            sale_to_acquirer_data: None,
                        },
                        payment_transaction: PaymentTransaction {
                            amounts_req: AmountsReq {
                                currency: "EUR".into(),
                                requested_amount: Decimal::from_minor(0, 2),
                                cash_back_amount: None,
                                tip_amount: None,
                            },
                            original_poi_transaction: None,
                        },
                        payment_data: None,
                    }),
                };
                let asked = Message {
                    direction: Direction::Request,
                    header: header.clone(),
                    body: request,
                };
                let mut body = self.body_of(&asked, &result);
                // The till's id of the transaction is not in the backend's journal.
                if let Body::PaymentResponse(p) = &mut body {
                    p.sale_data = None;
                }
                repeated(Message {
                    direction: Direction::Response,
                    header,
                    body,
                })
            }
            Ok(TransactionStatus::InProgress { .. }) => TransactionStatusResponse {
                response: Response::failure(ErrorCondition::InProgress, None),
                message_reference: reference.cloned(),
                repeated_message_response: None,
            },
            Ok(TransactionStatus::NotFound) => not_found("no such dialogue"),
            Ok(_) => not_found("no such dialogue"),
            Err(e) => TransactionStatusResponse {
                response: Response::failure(
                    ErrorCondition::UnavailableService,
                    Some(e.to_string()),
                ),
                message_reference: reference.cloned(),
                repeated_message_response: None,
            },
        }
    }

    fn open_totals(&self) -> Vec<TransactionTotals> {
        // The totals of the dialogues this process ran since its last reconciliation.
        let state = lock(&self.state);
        let mut by: Vec<(String, String, u64, u64)> = Vec::new();
        for (_, m) in &state.ended {
            let (kind, amounts) = match &m.body {
                Body::PaymentResponse(p) if p.response.result != ResultCode::Failure => (
                    match p.payment_result.as_ref().and_then(|r| r.payment_type) {
                        Some(PaymentType::Refund) => "Credit",
                        _ => "Debit",
                    },
                    p.payment_result
                        .as_ref()
                        .and_then(|r| r.amounts_resp.as_ref()),
                ),
                _ => continue,
            };
            let Some(a) = amounts else { continue };
            let Ok(digits) = currency_digits(&a.currency) else {
                continue;
            };
            let Ok(minor) = a.authorized_amount.to_minor(digits) else {
                continue;
            };
            match by
                .iter_mut()
                .find(|(c, k, _, _)| *c == a.currency && k == kind)
            {
                Some(e) => {
                    e.2 += 1;
                    e.3 += minor;
                }
                None => by.push((a.currency.clone(), kind.to_owned(), 1, minor)),
            }
        }
        by.into_iter()
            .map(|(currency, kind, count, minor)| TransactionTotals {
                payment_instrument_type: "Card".into(),
                acquirer_id: None,
                card_brand: None,
                payment_totals: Some(vec![PaymentTotals {
                    transaction_type: kind,
                    transaction_count: count,
                    transaction_amount: Decimal::from_minor(
                        minor,
                        currency_digits(&currency).unwrap_or(2),
                    ),
                }]),
                payment_currency: Some(currency),
            })
            .collect()
    }

    async fn reconcile(&self, dialogue: &Dialogue) -> Body {
        let key = dialogue_key(&dialogue.0, &dialogue.1, dialogue.2);
        match self.backend.settle(key, self.config.call()).await {
            Ok(s) => {
                let mut totals: Vec<TransactionTotals> = Vec::new();
                for t in &s.totals {
                    let Some(alpha) = currency_alpha(t.currency.code()) else {
                        continue;
                    };
                    let digits = currency_digits(alpha).unwrap_or(2);
                    let kind = match t.kind {
                        TransactionKind::Sale => "Debit",
                        TransactionKind::Refund => "Credit",
                        TransactionKind::Void => "ReverseDebit",
                        TransactionKind::PreAuth => "FirstReservation",
                        TransactionKind::IncrementalAuth => "UpdateReservation",
                        TransactionKind::Capture => "CompletedReservation",
                        _ => continue,
                    };
                    totals.push(TransactionTotals {
                        payment_instrument_type: "Card".into(),
                        acquirer_id: None,
                        card_brand: None,
                        payment_currency: Some(alpha.into()),
                        payment_totals: Some(vec![PaymentTotals {
                            transaction_type: kind.into(),
                            transaction_count: u64::from(t.count),
                            transaction_amount: Decimal::from_minor(t.amount, digits),
                        }]),
                    });
                }
                lock(&self.state).ended.clear();
                Body::ReconciliationResponse(ReconciliationResponse {
                    response: Response::success(),
                    reconciliation_type: "SaleReconciliation".into(),
                    poi_reconciliation_id: Some(s.batch_number.to_string()),
                    transaction_totals: Some(totals),
                })
            }
            Err(e) => Body::ReconciliationResponse(ReconciliationResponse {
                response: self.refused(&e),
                reconciliation_type: "SaleReconciliation".into(),
                poi_reconciliation_id: None,
                transaction_totals: None,
            }),
        }
    }
}

impl<P: PaymentTerminal + 'static> Handler for NexoServer<P> {
    async fn handle(&self, body: Vec<u8>) -> Result<Vec<u8>, (u16, String)> {
        self.answer(&body).await
    }
}
