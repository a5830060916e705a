//! Decoding and encoding whole messages: `{"SaleToPOIRequest": {…}}` and
//! `{"SaleToPOIResponse": {…}}`, in the clear or sealed (`NexoBlob` and `SecurityTrailer`), with
//! the checks money depends on and typed errors that name the JSON path.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::amount::{AmountError, Decimal, currency_digits};
use crate::message::{
    AmountsReq, AmountsResp, BODIES, Body, MessageCategory, MessageClass, MessageHeader,
    MessageType, PaymentTotals, TransactionTotals,
};

/// Which way a message travels: `SaleToPOIRequest` (requests, and the terminal's event
/// notifications) or `SaleToPOIResponse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `SaleToPOIRequest`.
    Request,
    /// `SaleToPOIResponse`.
    Response,
}

impl Direction {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Request => "SaleToPOIRequest",
            Self::Response => "SaleToPOIResponse",
        }
    }
}

/// A message in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Which way it travels.
    pub direction: Direction,
    /// `MessageHeader`.
    pub header: MessageHeader,
    /// The body.
    pub body: Body,
}

/// `SecurityTrailer` of a sealed message (Adyen crypto version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityTrailer {
    /// `AdyenCryptoVersion` (1).
    #[serde(rename = "AdyenCryptoVersion")]
    pub crypto_version: u32,
    /// `KeyIdentifier`: which shared key.
    #[serde(rename = "KeyIdentifier")]
    pub key_identifier: String,
    /// `KeyVersion`.
    #[serde(rename = "KeyVersion")]
    pub key_version: u32,
    /// `Nonce`: 16 random bytes, base64.
    #[serde(rename = "Nonce")]
    pub nonce: String,
    /// `Hmac`: HMAC-SHA256 of the plaintext, base64.
    #[serde(rename = "Hmac")]
    pub hmac: String,
}

/// A sealed message: its header in the clear (a copy of the one inside), the encrypted whole
/// message, and the trailer. [`crate::security`] opens and seals them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Which way it travels.
    pub direction: Direction,
    /// The clear copy of the header.
    pub header: MessageHeader,
    /// `NexoBlob`: base64 of the ciphertext.
    pub blob: String,
    /// `SecurityTrailer`.
    pub trailer: SecurityTrailer,
}

/// A message as it travels.
// One message at a time, moved once: boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// In the clear (test terminals).
    Clear(Message),
    /// Encrypted and authenticated.
    Sealed(Sealed),
}

/// What was wrong with a message, and where (`path`: a JSON path such as
/// `SaleToPOIRequest.PaymentRequest.PaymentTransaction.AmountsReq.RequestedAmount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the message.
    pub path: String,
    /// What.
    pub kind: DecodeErrorKind,
}

/// The kinds of [`DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Not JSON, or JSON of the wrong shape (a missing field, a wrong type, an unknown value of
    /// a strict enumeration); serde's text.
    Syntax(String),
    /// The header's category, class or type does not fit the body.
    Mismatch(String),
    /// A required identifier is missing, empty or too long.
    Identifier(String),
    /// An amount or currency is not money.
    Amount(AmountError),
    /// Neither a body nor a sealed blob, or both, or two bodies.
    Shape(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "the message"
        } else {
            &self.path
        };
        match &self.kind {
            DecodeErrorKind::Syntax(t) => write!(f, "{path}: {t}"),
            DecodeErrorKind::Mismatch(t) => write!(f, "{path}: {t}"),
            DecodeErrorKind::Identifier(t) => write!(f, "{path}: {t}"),
            DecodeErrorKind::Amount(e) => write!(f, "{path}: {e}"),
            DecodeErrorKind::Shape(t) => write!(f, "{path}: {t}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn error(path: impl Into<String>, kind: DecodeErrorKind) -> DecodeError {
    DecodeError {
        path: path.into(),
        kind,
    }
}

/// The longest `ServiceID` nexo allows.
pub const MAX_SERVICE_ID: usize = 10;

/// Decodes a message and checks it (see [`check`]).
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    // Fast path without path tracking; a message that fails is read again to name the path.
    let envelope: Envelope = match serde_json::from_slice(bytes) {
        Ok(e) => e,
        Err(_) => return Err(locate(bytes)),
    };
    match &envelope {
        Envelope::Clear(m) => check(m)?,
        Envelope::Sealed(s) => check_header(s.direction, &s.header, None)?,
    }
    Ok(envelope)
}

/// The error of bytes that do not decode, with the JSON path where it is.
fn locate(bytes: &[u8]) -> DecodeError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, Envelope>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            error(
                if path == "." { String::new() } else { path },
                DecodeErrorKind::Syntax(e.into_inner().to_string()),
            )
        }
        Ok(_) => match de.end() {
            Err(e) => error(
                "",
                DecodeErrorKind::Syntax(format!("trailing characters: {e}")),
            ),
            Ok(()) => error("", DecodeErrorKind::Syntax("not a message".into())),
        },
    }
}

/// Encodes a message (compact JSON).
pub fn encode(envelope: &Envelope) -> Vec<u8> {
    serde_json::to_vec(envelope).expect("a message always serialises")
}

/// Checks what money depends on: the header's class, category and type agree with the body
/// and the direction; `SaleID`, `POIID` and (for services and devices) a `ServiceID` of at
/// most ten characters are present; every amount is a plain decimal with no more decimals than
/// its ISO 4217 currency has.
pub fn check(message: &Message) -> Result<(), DecodeError> {
    check_header(message.direction, &message.header, Some(&message.body))?;
    check_amounts(message)
}

fn check_header(
    direction: Direction,
    header: &MessageHeader,
    body: Option<&Body>,
) -> Result<(), DecodeError> {
    let at = |field: &str| format!("{}.MessageHeader.{field}", direction.key());
    if let Some(body) = body {
        let request = direction == Direction::Request;
        if body.is_request() != request {
            return Err(error(
                format!("{}.{}", direction.key(), body.key()),
                DecodeErrorKind::Mismatch(format!(
                    "a {} cannot travel in a {}",
                    body.key(),
                    direction.key()
                )),
            ));
        }
        if header.category != body.category() {
            return Err(error(
                at("MessageCategory"),
                DecodeErrorKind::Mismatch(format!(
                    "{:?} does not fit a {}",
                    header.category,
                    body.key()
                )),
            ));
        }
    }
    if header.class != header.category.class() {
        return Err(error(
            at("MessageClass"),
            DecodeErrorKind::Mismatch(format!(
                "{:?} does not fit category {:?}",
                header.class, header.category
            )),
        ));
    }
    let expected = match (direction, header.category) {
        (Direction::Request, MessageCategory::Event) => MessageType::Notification,
        (Direction::Request, _) => MessageType::Request,
        (Direction::Response, _) => MessageType::Response,
    };
    if header.kind != expected {
        return Err(error(
            at("MessageType"),
            DecodeErrorKind::Mismatch(format!(
                "a {} of category {:?} has type {expected:?}, not {:?}",
                direction.key(),
                header.category,
                header.kind
            )),
        ));
    }
    for (field, value) in [("SaleID", &header.sale_id), ("POIID", &header.poi_id)] {
        if value.is_empty() {
            return Err(error(
                at(field),
                DecodeErrorKind::Identifier(format!("{field} is empty")),
            ));
        }
    }
    if header.class != MessageClass::Event {
        match header.service_id.as_deref() {
            None | Some("") => {
                return Err(error(
                    at("ServiceID"),
                    DecodeErrorKind::Identifier(
                        "a service or device message needs a ServiceID".into(),
                    ),
                ));
            }
            Some(id) if id.chars().count() > MAX_SERVICE_ID => {
                return Err(error(
                    at("ServiceID"),
                    DecodeErrorKind::Identifier(format!(
                        "ServiceID {id:?} is longer than {MAX_SERVICE_ID} characters"
                    )),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn amount(path: &str, currency: &str, value: &Decimal) -> Result<u64, DecodeError> {
    let digits = currency_digits(currency).map_err(|e| error(path, DecodeErrorKind::Amount(e)))?;
    value
        .to_minor(digits)
        .map_err(|e| error(path, DecodeErrorKind::Amount(e)))
}

fn check_req(path: &str, a: &AmountsReq) -> Result<(), DecodeError> {
    let total = amount(
        &format!("{path}.RequestedAmount"),
        &a.currency,
        &a.requested_amount,
    )?;
    let mut parts = 0u64;
    for (name, v) in [
        ("TipAmount", &a.tip_amount),
        ("CashBackAmount", &a.cash_back_amount),
    ] {
        if let Some(v) = v {
            parts = parts.saturating_add(amount(&format!("{path}.{name}"), &a.currency, v)?);
        }
    }
    if parts > total {
        return Err(error(
            path,
            DecodeErrorKind::Mismatch(format!(
                "tip and cashback ({parts} minor units) exceed the requested amount ({total})"
            )),
        ));
    }
    Ok(())
}

fn check_resp(path: &str, a: &AmountsResp) -> Result<(), DecodeError> {
    amount(
        &format!("{path}.AuthorizedAmount"),
        &a.currency,
        &a.authorized_amount,
    )?;
    for (name, v) in [
        ("TipAmount", &a.tip_amount),
        ("CashBackAmount", &a.cash_back_amount),
    ] {
        if let Some(v) = v {
            amount(&format!("{path}.{name}"), &a.currency, v)?;
        }
    }
    Ok(())
}

fn check_totals(path: &str, totals: &[TransactionTotals]) -> Result<(), DecodeError> {
    for (i, t) in totals.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(currency) = t.payment_currency.as_deref() else {
            continue;
        };
        currency_digits(currency)
            .map_err(|e| error(format!("{at}.PaymentCurrency"), DecodeErrorKind::Amount(e)))?;
        for (
            j,
            PaymentTotals {
                transaction_amount, ..
            },
        ) in t.payment_totals.iter().flatten().enumerate()
        {
            amount(
                &format!("{at}.PaymentTotals[{j}].TransactionAmount"),
                currency,
                transaction_amount,
            )?;
        }
    }
    Ok(())
}

fn check_amounts(m: &Message) -> Result<(), DecodeError> {
    let root = format!("{}.{}", m.direction.key(), m.body.key());
    match &m.body {
        Body::PaymentRequest(p) => check_req(
            &format!("{root}.PaymentTransaction.AmountsReq"),
            &p.payment_transaction.amounts_req,
        ),
        Body::PaymentResponse(p) => match p
            .payment_result
            .as_ref()
            .and_then(|r| r.amounts_resp.as_ref())
        {
            Some(a) => check_resp(&format!("{root}.PaymentResult.AmountsResp"), a),
            None => Ok(()),
        },
        Body::TransactionStatusResponse(t) => {
            let Some(rep) = &t.repeated_message_response else {
                return Ok(());
            };
            let body = &rep.repeated_response_message_body;
            let at = format!("{root}.RepeatedMessageResponse.RepeatedResponseMessageBody");
            let present = usize::from(body.payment_response.is_some())
                + usize::from(body.reversal_response.is_some());
            if present != 1 {
                return Err(error(
                    at,
                    DecodeErrorKind::Shape(format!(
                        "a repeated response holds exactly one body, not {present}"
                    )),
                ));
            }
            let category = if body.payment_response.is_some() {
                MessageCategory::Payment
            } else {
                MessageCategory::Reversal
            };
            if rep.message_header.category != category {
                return Err(error(
                    format!("{root}.RepeatedMessageResponse.MessageHeader.MessageCategory"),
                    DecodeErrorKind::Mismatch(format!(
                        "{:?} does not fit the repeated body",
                        rep.message_header.category
                    )),
                ));
            }
            match body
                .payment_response
                .as_ref()
                .and_then(|p| p.payment_result.as_ref())
                .and_then(|r| r.amounts_resp.as_ref())
            {
                Some(a) => check_resp(
                    &format!("{at}.PaymentResponse.PaymentResult.AmountsResp"),
                    a,
                ),
                None => Ok(()),
            }
        }
        Body::ReconciliationResponse(r) => check_totals(
            &format!("{root}.TransactionTotals"),
            r.transaction_totals.as_deref().unwrap_or(&[]),
        ),
        Body::GetTotalsResponse(r) => check_totals(
            &format!("{root}.TransactionTotals"),
            r.transaction_totals.as_deref().unwrap_or(&[]),
        ),
        _ => Ok(()),
    }
}

// ---- serde: the envelope by hand, so that the body is chosen by its key (and checked against
// the header afterwards) and amounts are read from their exact text.

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut outer = s.serialize_map(Some(1))?;
        match self {
            Self::Clear(m) => outer.serialize_entry(m.direction.key(), &ClearInner(m))?,
            Self::Sealed(m) => outer.serialize_entry(m.direction.key(), &SealedInner(m))?,
        }
        outer.end()
    }
}

struct ClearInner<'a>(&'a Message);

impl Serialize for ClearInner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("MessageHeader", &self.0.header)?;
        let key = self.0.body.key();
        match &self.0.body {
            Body::PaymentRequest(b) => map.serialize_entry(key, b)?,
            Body::PaymentResponse(b) => map.serialize_entry(key, b)?,
            Body::ReversalRequest(b) => map.serialize_entry(key, b)?,
            Body::ReversalResponse(b) => map.serialize_entry(key, b)?,
            Body::AbortRequest(b) => map.serialize_entry(key, b)?,
            Body::TransactionStatusRequest(b) => map.serialize_entry(key, b)?,
            Body::TransactionStatusResponse(b) => map.serialize_entry(key, b)?,
            Body::ReconciliationRequest(b) => map.serialize_entry(key, b)?,
            Body::ReconciliationResponse(b) => map.serialize_entry(key, b)?,
            Body::GetTotalsRequest(b) => map.serialize_entry(key, b)?,
            Body::GetTotalsResponse(b) => map.serialize_entry(key, b)?,
            Body::DiagnosisRequest(b) => map.serialize_entry(key, b)?,
            Body::DiagnosisResponse(b) => map.serialize_entry(key, b)?,
            Body::LoginRequest(b) => map.serialize_entry(key, b)?,
            Body::LoginResponse(b) => map.serialize_entry(key, b)?,
            Body::LogoutRequest(b) => map.serialize_entry(key, b)?,
            Body::LogoutResponse(b) => map.serialize_entry(key, b)?,
            Body::DisplayRequest(b) => map.serialize_entry(key, b)?,
            Body::DisplayResponse(b) => map.serialize_entry(key, b)?,
            Body::InputRequest(b) => map.serialize_entry(key, b)?,
            Body::InputResponse(b) => map.serialize_entry(key, b)?,
            Body::EventNotification(b) => map.serialize_entry(key, b)?,
        }
        map.end()
    }
}

struct SealedInner<'a>(&'a Sealed);

impl Serialize for SealedInner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("MessageHeader", &self.0.header)?;
        map.serialize_entry("NexoBlob", &self.0.blob)?;
        map.serialize_entry("SecurityTrailer", &self.0.trailer)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OuterVisitor)
    }
}

struct OuterVisitor;

impl<'de> Visitor<'de> for OuterVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with one key, SaleToPOIRequest or SaleToPOIResponse")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let direction = match key.as_str() {
                "SaleToPOIRequest" => Direction::Request,
                "SaleToPOIResponse" => Direction::Response,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if found.is_some() {
                return Err(de::Error::custom("two messages in one"));
            }
            found = Some(map.next_value_seed(InnerSeed(direction))?);
        }
        found.ok_or_else(|| de::Error::custom("neither SaleToPOIRequest nor SaleToPOIResponse"))
    }
}

struct InnerSeed(Direction);

impl<'de> de::DeserializeSeed<'de> for InnerSeed {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InnerSeed {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a message: MessageHeader and a body, or MessageHeader, NexoBlob and SecurityTrailer",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut header: Option<MessageHeader> = None;
        let mut body: Option<Body> = None;
        let mut blob: Option<String> = None;
        let mut trailer: Option<SecurityTrailer> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "MessageHeader" => {
                    if header.is_some() {
                        return Err(de::Error::duplicate_field("MessageHeader"));
                    }
                    header = Some(map.next_value()?);
                }
                "NexoBlob" => blob = Some(map.next_value()?),
                "SecurityTrailer" => trailer = Some(map.next_value()?),
                k if BODIES.iter().any(|(b, _, _)| *b == k) => {
                    if let Some(other) = &body {
                        return Err(de::Error::custom(format!(
                            "two bodies, {} and {k}",
                            other.key()
                        )));
                    }
                    body = Some(body_value(k, &mut map)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let header = header.ok_or_else(|| de::Error::missing_field("MessageHeader"))?;
        match (body, blob, trailer) {
            (Some(body), None, None) => Ok(Envelope::Clear(Message {
                direction: self.0,
                header,
                body,
            })),
            (None, Some(blob), Some(trailer)) => Ok(Envelope::Sealed(Sealed {
                direction: self.0,
                header,
                blob,
                trailer,
            })),
            (None, None, None) => Err(de::Error::custom("no body and no NexoBlob")),
            (None, Some(_), None) => Err(de::Error::missing_field("SecurityTrailer")),
            (None, None, Some(_)) => Err(de::Error::missing_field("NexoBlob")),
            (Some(_), _, _) => Err(de::Error::custom(
                "a body in the clear beside a NexoBlob or SecurityTrailer",
            )),
        }
    }
}

fn body_value<'de, A: MapAccess<'de>>(key: &str, map: &mut A) -> Result<Body, A::Error> {
    Ok(match key {
        "PaymentRequest" => Body::PaymentRequest(map.next_value()?),
        "PaymentResponse" => Body::PaymentResponse(map.next_value()?),
        "ReversalRequest" => Body::ReversalRequest(map.next_value()?),
        "ReversalResponse" => Body::ReversalResponse(map.next_value()?),
        "AbortRequest" => Body::AbortRequest(map.next_value()?),
        "TransactionStatusRequest" => Body::TransactionStatusRequest(map.next_value()?),
        "TransactionStatusResponse" => Body::TransactionStatusResponse(map.next_value()?),
        "ReconciliationRequest" => Body::ReconciliationRequest(map.next_value()?),
        "ReconciliationResponse" => Body::ReconciliationResponse(map.next_value()?),
        "GetTotalsRequest" => Body::GetTotalsRequest(map.next_value()?),
        "GetTotalsResponse" => Body::GetTotalsResponse(map.next_value()?),
        "DiagnosisRequest" => Body::DiagnosisRequest(map.next_value()?),
        "DiagnosisResponse" => Body::DiagnosisResponse(map.next_value()?),
        "LoginRequest" => Body::LoginRequest(map.next_value()?),
        "LoginResponse" => Body::LoginResponse(map.next_value()?),
        "LogoutRequest" => Body::LogoutRequest(map.next_value()?),
        "LogoutResponse" => Body::LogoutResponse(map.next_value()?),
        "DisplayRequest" => Body::DisplayRequest(map.next_value()?),
        "DisplayResponse" => Body::DisplayResponse(map.next_value()?),
        "InputRequest" => Body::InputRequest(map.next_value()?),
        "InputResponse" => Body::InputResponse(map.next_value()?),
        "EventNotification" => Body::EventNotification(map.next_value()?),
        other => return Err(de::Error::custom(format!("unknown body {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALE: &str = r#"{"SaleToPOIRequest":{"MessageHeader":{"ProtocolVersion":"3.0","MessageClass":"Service","MessageCategory":"Payment","MessageType":"Request","ServiceID":"4711","SaleID":"till-1","POIID":"V400m-346403161"},"PaymentRequest":{"SaleData":{"SaleTransactionID":{"TransactionID":"27908","TimeStamp":"2026-12-04T09:30:00.000Z"},"VendorField":{"x":[1,2]}},"PaymentTransaction":{"AmountsReq":{"Currency":"EUR","RequestedAmount":10.99}}}}}"#;

    fn clear(bytes: &str) -> Message {
        match decode(bytes.as_bytes()).unwrap() {
            Envelope::Clear(m) => m,
            Envelope::Sealed(_) => panic!("sealed"),
        }
    }

    #[test]
    fn a_sale_request_decodes_and_encodes_back() {
        let m = clear(SALE);
        assert_eq!(m.direction, Direction::Request);
        assert_eq!(m.header.service_id.as_deref(), Some("4711"));
        let Body::PaymentRequest(p) = &m.body else {
            panic!("{m:?}")
        };
        assert_eq!(
            p.payment_transaction
                .amounts_req
                .requested_amount
                .to_minor(2),
            Ok(1099)
        );
        // Unknown fields are dropped, everything else survives a round trip.
        let again = encode(&Envelope::Clear(m.clone()));
        assert!(String::from_utf8_lossy(&again).contains("\"RequestedAmount\":10.99"));
        assert_eq!(clear(std::str::from_utf8(&again).unwrap()), m);
    }

    fn kind_at(text: &str) -> (String, DecodeErrorKind) {
        let e = decode(text.as_bytes()).unwrap_err();
        (e.path, e.kind)
    }

    #[test]
    fn what_money_depends_on_is_refused_with_its_path() {
        let (path, kind) = kind_at(&SALE.replace("10.99", "10.999"));
        assert_eq!(
            path,
            "SaleToPOIRequest.PaymentRequest.PaymentTransaction.AmountsReq.RequestedAmount"
        );
        assert!(matches!(
            kind,
            DecodeErrorKind::Amount(AmountError::TooPrecise { .. })
        ));

        let (path, kind) = kind_at(&SALE.replace("10.99", "-10.99"));
        assert_eq!(
            path,
            "SaleToPOIRequest.PaymentRequest.PaymentTransaction.AmountsReq.RequestedAmount"
        );
        assert!(matches!(kind, DecodeErrorKind::Syntax(_)), "{kind:?}");

        let (path, _) = kind_at(&SALE.replace("10.99", "\"10.99\""));
        assert!(path.ends_with("RequestedAmount"), "{path}");

        let (path, kind) = kind_at(&SALE.replace("\"EUR\"", "\"EURO\""));
        assert!(path.ends_with("RequestedAmount"), "{path}");
        assert!(matches!(
            kind,
            DecodeErrorKind::Amount(AmountError::UnknownCurrency(_))
        ));

        let (path, kind) = kind_at(&SALE.replace(
            "\"Payment\",\"MessageType\"",
            "\"Reversal\",\"MessageType\"",
        ));
        assert_eq!(path, "SaleToPOIRequest.MessageHeader.MessageCategory");
        assert!(matches!(kind, DecodeErrorKind::Mismatch(_)));

        let (path, _) =
            kind_at(&SALE.replace("\"Request\",\"ServiceID\"", "\"Response\",\"ServiceID\""));
        assert_eq!(path, "SaleToPOIRequest.MessageHeader.MessageType");

        let (path, kind) = kind_at(&SALE.replace("\"4711\"", "\"12345678901\""));
        assert_eq!(path, "SaleToPOIRequest.MessageHeader.ServiceID");
        assert!(matches!(kind, DecodeErrorKind::Identifier(_)));

        let (path, _) = kind_at(&SALE.replace("SaleToPOIRequest", "SaleToPOIResponse"));
        assert_eq!(path, "SaleToPOIResponse.PaymentRequest");

        let (path, kind) = kind_at(&SALE.replace("\"SaleID\":\"till-1\",", ""));
        assert_eq!(path, "SaleToPOIRequest.MessageHeader");
        assert!(
            matches!(kind, DecodeErrorKind::Syntax(ref t) if t.contains("SaleID")),
            "{kind:?}"
        );

        let (_, kind) = kind_at(&format!("{SALE} x"));
        assert!(matches!(kind, DecodeErrorKind::Syntax(_)));

        let tip = SALE.replace(
            "\"RequestedAmount\":10.99",
            "\"RequestedAmount\":10.99,\"TipAmount\":11.00",
        );
        let (_, kind) = kind_at(&tip);
        assert!(matches!(kind, DecodeErrorKind::Mismatch(_)));
    }

    #[test]
    fn a_status_response_with_the_repeated_payment_decodes() {
        let text = r#"{"SaleToPOIResponse":{"MessageHeader":{"MessageClass":"Service","MessageCategory":"TransactionStatus","MessageType":"Response","ServiceID":"4712","SaleID":"till-1","POIID":"P1"},"TransactionStatusResponse":{"Response":{"Result":"Success"},"MessageReference":{"MessageCategory":"Payment","ServiceID":"4711","SaleID":"till-1"},"RepeatedMessageResponse":{"MessageHeader":{"MessageClass":"Service","MessageCategory":"Payment","MessageType":"Response","ServiceID":"4711","SaleID":"till-1","POIID":"P1"},"RepeatedResponseMessageBody":{"PaymentResponse":{"Response":{"Result":"Failure","ErrorCondition":"Refusal","AdditionalResponse":"refusalReason=Not%20enough%20balance"},"POIData":{"POITransactionID":{"TransactionID":"abc.123","TimeStamp":"2026-12-04T09:30:01Z"}},"PaymentResult":{"AmountsResp":{"Currency":"EUR","AuthorizedAmount":0}}}}}}}}"#;
        let m = clear(text);
        let Body::TransactionStatusResponse(t) = &m.body else {
            panic!()
        };
        let p = t
            .repeated_message_response
            .as_ref()
            .unwrap()
            .repeated_response_message_body
            .payment_response
            .as_ref()
            .unwrap();
        assert_eq!(p.response.result, crate::message::ResultCode::Failure);
        assert_eq!(
            p.response.additional("refusalReason").as_deref(),
            Some("Not enough balance")
        );
        // A repeated body of the wrong category is refused.
        let wrong = text.replacen(
            "\"MessageCategory\":\"Payment\",\"MessageType\":\"Response\"",
            "\"MessageCategory\":\"Reversal\",\"MessageType\":\"Response\"",
            1,
        );
        let (path, _) = kind_at(&wrong);
        assert!(
            path.ends_with("RepeatedMessageResponse.MessageHeader.MessageCategory"),
            "{path}"
        );
        // An error condition posbridge does not know is kept.
        let odd = text.replace("\"Refusal\"", "\"VendorSpecific\"");
        assert!(odd.contains("VendorSpecific"));
        let m = clear(&odd);
        assert!(format!("{m:?}").contains("Other(\"VendorSpecific\")"));
    }
}
