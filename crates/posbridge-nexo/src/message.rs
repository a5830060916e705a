//! The nexo Sale-to-POI message model, in the JSON form Adyen's Terminal API uses: the header,
//! and the body of every message category posbridge speaks.
//!
//! Field names are nexo's (`PascalCase`, with `ID` and `POI` as written there). Unknown fields
//! are ignored when decoding (vendors add their own); fields money depends on are typed
//! strictly: amounts ([`Decimal`]), the result (`Success`, `Failure`, `Partial` and nothing
//! else), the payment type, identifiers.

use serde::{Deserialize, Serialize};

use crate::amount::Decimal;

/// `MessageClass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageClass {
    /// A service dialogue (payments, reversals, status, reconciliation, login …).
    Service,
    /// A device request (display, input).
    Device,
    /// An event the terminal notifies.
    Event,
}

/// `MessageCategory`: which dialogue a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageCategory {
    /// A payment (sale, refund, reservation, completion).
    Payment,
    /// Reversal of an earlier transaction (void, referenced refund).
    Reversal,
    /// Abort of a running dialogue.
    Abort,
    /// The state and result of an earlier dialogue.
    TransactionStatus,
    /// End of day.
    Reconciliation,
    /// Totals without closing.
    GetTotals,
    /// Terminal health.
    Diagnosis,
    /// Opening a session of the sale system.
    Login,
    /// Closing it.
    Logout,
    /// Text on a display.
    Display,
    /// Input from the customer or the cashier.
    Input,
    /// An event notification.
    Event,
}

impl MessageCategory {
    /// The class a message of this category belongs to.
    pub fn class(self) -> MessageClass {
        match self {
            Self::Display | Self::Input => MessageClass::Device,
            Self::Event => MessageClass::Event,
            _ => MessageClass::Service,
        }
    }
}

/// `MessageType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageType {
    /// A request.
    Request,
    /// Its response.
    Response,
    /// A notification (events).
    Notification,
}

/// `MessageHeader`: who talks to whom in which dialogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHeader {
    /// `ProtocolVersion` (`3.0`), in login and service requests.
    #[serde(
        rename = "ProtocolVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol_version: Option<String>,
    /// `MessageClass`.
    #[serde(rename = "MessageClass")]
    pub class: MessageClass,
    /// `MessageCategory`.
    #[serde(rename = "MessageCategory")]
    pub category: MessageCategory,
    /// `MessageType`.
    #[serde(rename = "MessageType")]
    pub kind: MessageType,
    /// `ServiceID`: the dialogue's id, unique per sale system among its recent dialogues (at
    /// most 10 characters).
    #[serde(rename = "ServiceID", default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// `DeviceID`, of device dialogues inside a service.
    #[serde(rename = "DeviceID", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `SaleID`: the sale system (till).
    #[serde(rename = "SaleID")]
    pub sale_id: String,
    /// `POIID`: the terminal.
    #[serde(rename = "POIID")]
    pub poi_id: String,
}

/// `TransactionIdentification`: an id and when it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionIdentification {
    /// `TransactionID`.
    #[serde(rename = "TransactionID")]
    pub transaction_id: String,
    /// `TimeStamp`, ISO 8601.
    #[serde(rename = "TimeStamp")]
    pub time_stamp: String,
}

/// `SaleData` of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaleData {
    /// `SaleTransactionID`: the till's id of the transaction.
    #[serde(rename = "SaleTransactionID")]
    pub sale_transaction_id: TransactionIdentification,
    /// `SaleReferenceID`: the shop's own reference (an order number).
    #[serde(
        rename = "SaleReferenceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sale_reference_id: Option<String>,
    /// `OperatorID`: the cashier.
    #[serde(
        rename = "OperatorID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operator_id: Option<String>,
    /// `SaleToAcquirerData`: key=value pairs for the acquirer (Adyen:
    /// `authorisationType=PreAuth`, `tenderOption=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_to_acquirer_data: Option<String>,
}

/// `PaymentType`: what a payment request does with money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentType {
    /// A sale.
    Normal,
    /// Money back to the card.
    Refund,
    /// A reservation that is completed once.
    OneTimeReservation,
    /// The first reservation of a pre-authorisation.
    FirstReservation,
    /// Raising (or lowering) a reservation.
    UpdateReservation,
    /// Completing a reservation: the capture.
    Completion,
    /// Cash advance.
    CashAdvance,
    /// Cash deposit.
    CashDeposit,
    /// A recurring payment.
    Recurring,
    /// An instalment.
    Instalment,
    /// An issuer instalment.
    IssuerInstalment,
    /// Paid out.
    PaidOut,
}

/// `PaymentData`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentData {
    /// `PaymentType` (`Normal` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<PaymentType>,
}

/// `AmountsReq`: what a payment asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmountsReq {
    /// `Currency`: ISO 4217 alphabetic.
    pub currency: String,
    /// `RequestedAmount`: the whole amount, tip and cashback included.
    pub requested_amount: Decimal,
    /// `CashBackAmount`, part of the requested amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_back_amount: Option<Decimal>,
    /// `TipAmount`, part of the requested amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_amount: Option<Decimal>,
}

/// `OriginalPOITransaction`: the earlier transaction a reversal or completion refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalPoiTransaction {
    /// `SaleID` of the till that ran it.
    #[serde(rename = "SaleID", default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    /// `POIID`.
    #[serde(rename = "POIID", default, skip_serializing_if = "Option::is_none")]
    pub poi_id: Option<String>,
    /// `POITransactionID`: the terminal's id of it.
    #[serde(rename = "POITransactionID")]
    pub poi_transaction_id: TransactionIdentification,
}

/// `PaymentTransaction`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentTransaction {
    /// `AmountsReq`.
    pub amounts_req: AmountsReq,
    /// `OriginalPOITransaction`, for a completion or an update of a reservation.
    #[serde(
        rename = "OriginalPOITransaction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_poi_transaction: Option<OriginalPoiTransaction>,
}

/// `PaymentRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentRequest {
    /// `SaleData`.
    pub sale_data: SaleData,
    /// `PaymentTransaction`.
    pub payment_transaction: PaymentTransaction,
    /// `PaymentData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<PaymentData>,
}

/// `Result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultCode {
    /// Done as asked.
    Success,
    /// Not done.
    Failure,
    /// Partly done (a partial approval).
    Partial,
}

/// `ErrorCondition`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCondition {
    /// Aborted by the sale system or the terminal.
    Aborted,
    /// Another dialogue is running: the request was not started.
    Busy,
    /// Cancelled by the customer.
    Cancel,
    /// The device is out of order.
    DeviceOut,
    /// The referenced dialogue is still running.
    InProgress,
    /// A card was inserted where none was expected.
    InsertedCard,
    /// The card is not usable.
    InvalidCard,
    /// No session: log in first.
    LoggedOut,
    /// The message is malformed.
    MessageFormat,
    /// Not allowed.
    NotAllowed,
    /// The referenced dialogue or transaction is not known.
    NotFound,
    /// A restriction of the payment (a limit, a method).
    PaymentRestriction,
    /// Refused (declined by the issuer or the acquirer).
    Refusal,
    /// The device is not available.
    UnavailableDevice,
    /// The service is not available.
    UnavailableService,
    /// The acquirer cannot be reached.
    UnreachableHost,
    /// Wrong PIN.
    #[serde(rename = "WrongPIN")]
    WrongPin,
    /// A condition posbridge does not know (vendors add their own): a failure all the same.
    #[serde(untagged)]
    Other(String),
}

/// `Response`: how a request came out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    /// `Result`.
    pub result: ResultCode,
    /// `ErrorCondition`, with a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_condition: Option<ErrorCondition>,
    /// `AdditionalResponse`: key=value pairs (Adyen: `refusalReason`, `pspReference`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_response: Option<String>,
}

impl Response {
    /// A success.
    pub fn success() -> Self {
        Self {
            result: ResultCode::Success,
            error_condition: None,
            additional_response: None,
        }
    }

    /// A failure for `condition`, with text for people.
    pub fn failure(condition: ErrorCondition, text: Option<String>) -> Self {
        Self {
            result: ResultCode::Failure,
            error_condition: Some(condition),
            additional_response: text.map(|t| format!("message={}", form_escape(&t))),
        }
    }

    /// The value of `key` in the additional response's `key=value&…` pairs.
    pub fn additional(&self, key: &str) -> Option<String> {
        let text = self.additional_response.as_deref()?;
        text.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| form_unescape(v))
        })
    }
}

/// Escapes text for a `key=value&…` list (percent-encoding of `%`, `&`, `=`, `+` and controls).
pub fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' | '&' | '=' | '+' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() && (c as u32) < 0x80 => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`form_escape`] (and `+` as a space, as form encoding has it). A `%` not followed
/// by two hex digits stays as it is.
pub fn form_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POIData`: the terminal's id of the transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoiData {
    /// `POITransactionID`.
    #[serde(rename = "POITransactionID")]
    pub poi_transaction_id: TransactionIdentification,
    /// `POIReconciliationID`: the batch.
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
}

/// `SaleData` of a response: the till's id echoed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleDataResp {
    /// `SaleTransactionID`.
    #[serde(rename = "SaleTransactionID")]
    pub sale_transaction_id: TransactionIdentification,
}

/// `CardData`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CardData {
    /// `PaymentBrand` (`mc`, `visa`, `girocard`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_brand: Option<String>,
    /// `MaskedPan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_pan: Option<String>,
    /// `EntryMode`: `Contactless`, `ICC`, `MagStripe`, `Keyed`, `Mobile`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_mode: Option<Vec<String>>,
}

/// `PaymentInstrumentData`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentInstrumentData {
    /// `PaymentInstrumentType` (`Card`, `Mobile`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_instrument_type: Option<String>,
    /// `CardData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_data: Option<CardData>,
}

/// `AmountsResp`: what was authorised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AmountsResp {
    /// `Currency`.
    pub currency: String,
    /// `AuthorizedAmount`: the whole amount authorised, tip and cashback included.
    pub authorized_amount: Decimal,
    /// `CashBackAmount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash_back_amount: Option<Decimal>,
    /// `TipAmount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip_amount: Option<Decimal>,
}

/// `PaymentAcquirerData`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAcquirerData {
    /// `AcquirerID`.
    #[serde(
        rename = "AcquirerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub acquirer_id: Option<String>,
    /// `MerchantID`.
    #[serde(
        rename = "MerchantID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub merchant_id: Option<String>,
    /// `AcquirerPOIID`.
    #[serde(
        rename = "AcquirerPOIID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub acquirer_poi_id: Option<String>,
    /// `ApprovalCode`: the issuer's authorisation code.
    #[serde(
        rename = "ApprovalCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub approval_code: Option<String>,
    /// `AcquirerTransactionID`.
    #[serde(
        rename = "AcquirerTransactionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub acquirer_transaction_id: Option<TransactionIdentification>,
}

/// `PaymentResult`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResult {
    /// `PaymentType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<PaymentType>,
    /// `PaymentInstrumentData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_instrument_data: Option<PaymentInstrumentData>,
    /// `AmountsResp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amounts_resp: Option<AmountsResp>,
    /// `PaymentAcquirerData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_acquirer_data: Option<PaymentAcquirerData>,
    /// `OnlineFlag`: authorised online (false: offline, to be forwarded later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_flag: Option<bool>,
}

/// `OutputText`: one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputText {
    /// `Text`.
    pub text: String,
    /// `EndOfLineFlag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_of_line_flag: Option<bool>,
}

/// `OutputContent`: text to show or print.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputContent {
    /// `OutputFormat` (`Text`).
    pub output_format: String,
    /// `OutputText`.
    #[serde(default)]
    pub output_text: Vec<OutputText>,
}

impl OutputContent {
    /// Lines of plain text.
    pub fn text(lines: impl IntoIterator<Item = String>) -> Self {
        Self {
            output_format: "Text".into(),
            output_text: lines
                .into_iter()
                .map(|text| OutputText {
                    text,
                    end_of_line_flag: Some(true),
                })
                .collect(),
        }
    }
}

/// `PaymentReceipt`: one copy of a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentReceipt {
    /// `DocumentQualifier`: `CashierReceipt` or `CustomerReceipt`.
    pub document_qualifier: String,
    /// `RequiredSignatureFlag`: the cardholder signs the merchant copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_signature_flag: Option<bool>,
    /// `OutputContent`.
    pub output_content: OutputContent,
}

/// `PaymentResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentResponse {
    /// `Response`.
    pub response: Response,
    /// `SaleData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_data: Option<SaleDataResp>,
    /// `POIData`.
    #[serde(rename = "POIData", default, skip_serializing_if = "Option::is_none")]
    pub poi_data: Option<PoiData>,
    /// `PaymentResult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_result: Option<PaymentResult>,
    /// `PaymentReceipt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_receipt: Option<Vec<PaymentReceipt>>,
}

/// `ReversalRequest`: void (the whole amount) or a referenced refund (`ReversedAmount`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReversalRequest {
    /// `OriginalPOITransaction`.
    #[serde(rename = "OriginalPOITransaction")]
    pub original_poi_transaction: OriginalPoiTransaction,
    /// `ReversalReason`: `MerchantCancel`, `CustCancel`, `Malfunction`, `Unable2Compl`.
    pub reversal_reason: String,
    /// `ReversedAmount`, in the original's currency, for less than the whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_amount: Option<Decimal>,
    /// `SaleData`: the till's id of the reversal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_data: Option<SaleData>,
}

/// `ReversalResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReversalResponse {
    /// `Response`.
    pub response: Response,
    /// `POIData`: the reversal's own id.
    #[serde(rename = "POIData", default, skip_serializing_if = "Option::is_none")]
    pub poi_data: Option<PoiData>,
    /// `OriginalPOITransaction`.
    #[serde(
        rename = "OriginalPOITransaction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_poi_transaction: Option<OriginalPoiTransaction>,
    /// `ReversedAmount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversed_amount: Option<Decimal>,
    /// `PaymentReceipt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_receipt: Option<Vec<PaymentReceipt>>,
}

/// `MessageReference`: the dialogue an abort or a status request is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReference {
    /// `MessageCategory`.
    #[serde(
        rename = "MessageCategory",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<MessageCategory>,
    /// `ServiceID`.
    #[serde(rename = "ServiceID", default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// `DeviceID`.
    #[serde(rename = "DeviceID", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `SaleID`.
    #[serde(rename = "SaleID", default, skip_serializing_if = "Option::is_none")]
    pub sale_id: Option<String>,
    /// `POIID`.
    #[serde(rename = "POIID", default, skip_serializing_if = "Option::is_none")]
    pub poi_id: Option<String>,
}

/// `AbortRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AbortRequest {
    /// `AbortReason`.
    pub abort_reason: String,
    /// `MessageReference`.
    pub message_reference: MessageReference,
}

/// `TransactionStatusRequest`: the state or the result of an earlier dialogue (the last one
/// without a reference).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionStatusRequest {
    /// `MessageReference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// `ReceiptReprintFlag`: the receipts again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_reprint_flag: Option<bool>,
    /// `DocumentQualifier`: which receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_qualifier: Option<Vec<String>>,
}

/// `RepeatedResponseMessageBody`: the original answer of the referenced dialogue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepeatedResponseMessageBody {
    /// `PaymentResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_response: Option<PaymentResponse>,
    /// `ReversalResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal_response: Option<ReversalResponse>,
}

/// `RepeatedMessageResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RepeatedMessageResponse {
    /// `MessageHeader` of the original answer.
    pub message_header: MessageHeader,
    /// `RepeatedResponseMessageBody`.
    pub repeated_response_message_body: RepeatedResponseMessageBody,
}

/// `TransactionStatusResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionStatusResponse {
    /// `Response`: `Failure` with `InProgress` while it runs, `NotFound` when unknown.
    pub response: Response,
    /// `MessageReference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_reference: Option<MessageReference>,
    /// `RepeatedMessageResponse`, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated_message_response: Option<RepeatedMessageResponse>,
}

/// `PaymentTotals`: count and amount of one transaction type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PaymentTotals {
    /// `TransactionType`: `Debit` (sales), `Credit` (refunds), `ReverseDebit` (voided sales),
    /// `ReverseCredit`, `FirstReservation`, `CompletedReservation`, …
    pub transaction_type: String,
    /// `TransactionCount`.
    pub transaction_count: u64,
    /// `TransactionAmount`.
    pub transaction_amount: Decimal,
}

/// `TransactionTotals`: totals of one instrument, acquirer and currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionTotals {
    /// `PaymentInstrumentType`.
    #[serde(rename = "PaymentInstrumentType")]
    pub payment_instrument_type: String,
    /// `AcquirerID`.
    #[serde(
        rename = "AcquirerID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub acquirer_id: Option<String>,
    /// `CardBrand`.
    #[serde(rename = "CardBrand", default, skip_serializing_if = "Option::is_none")]
    pub card_brand: Option<String>,
    /// `PaymentCurrency`.
    #[serde(
        rename = "PaymentCurrency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_currency: Option<String>,
    /// `PaymentTotals`.
    #[serde(
        rename = "PaymentTotals",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_totals: Option<Vec<PaymentTotals>>,
}

/// `ReconciliationRequest`: end of day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReconciliationRequest {
    /// `ReconciliationType`: `SaleReconciliation` (close the batch), `AcquirerReconciliation`,
    /// `PreviousReconciliation` (a closed batch again).
    pub reconciliation_type: String,
    /// `POIReconciliationID`, of a previous reconciliation.
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
}

/// `ReconciliationResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReconciliationResponse {
    /// `Response`.
    pub response: Response,
    /// `ReconciliationType`.
    pub reconciliation_type: String,
    /// `POIReconciliationID`: the batch closed.
    #[serde(
        rename = "POIReconciliationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub poi_reconciliation_id: Option<String>,
    /// `TransactionTotals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_totals: Option<Vec<TransactionTotals>>,
}

/// `GetTotalsRequest`: totals of the open batch, without closing it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTotalsRequest {
    /// `TotalDetails`: how to break the totals down (`PaymentInstrumentType`, `AcquirerID`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_details: Option<Vec<String>>,
}

/// `GetTotalsResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTotalsResponse {
    /// `Response`.
    pub response: Response,
    /// `POIReconciliationID`: the open batch.
    #[serde(rename = "POIReconciliationID")]
    pub poi_reconciliation_id: String,
    /// `TransactionTotals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_totals: Option<Vec<TransactionTotals>>,
}

/// `DiagnosisRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiagnosisRequest {
    /// `HostDiagnosisFlag`: check the acquirers too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_diagnosis_flag: Option<bool>,
}

/// `POIStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoiStatus {
    /// `GlobalStatus`: `OK`, `Busy`, `Maintenance`, `Unreachable`.
    #[serde(rename = "GlobalStatus")]
    pub global_status: String,
    /// `PEDOKFlag`.
    #[serde(rename = "PEDOKFlag", default, skip_serializing_if = "Option::is_none")]
    pub ped_ok: Option<bool>,
    /// `CardReaderOKFlag`.
    #[serde(
        rename = "CardReaderOKFlag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub card_reader_ok: Option<bool>,
    /// `PrinterStatus`: `OK`, `PaperLow`, `NoPaper`, `PaperJam`, `OutOfOrder`.
    #[serde(
        rename = "PrinterStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub printer_status: Option<String>,
    /// `CommunicationOKFlag`.
    #[serde(
        rename = "CommunicationOKFlag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub communication_ok: Option<bool>,
}

/// `HostStatus`: one acquirer's reachability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    /// `AcquirerID`.
    #[serde(rename = "AcquirerID")]
    pub acquirer_id: String,
    /// `IsReachableFlag`.
    #[serde(
        rename = "IsReachableFlag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_reachable: Option<bool>,
}

/// `DiagnosisResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiagnosisResponse {
    /// `Response`.
    pub response: Response,
    /// `POIStatus`.
    #[serde(rename = "POIStatus", default, skip_serializing_if = "Option::is_none")]
    pub poi_status: Option<PoiStatus>,
    /// `HostStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_status: Option<Vec<HostStatus>>,
}

/// `SaleSoftware`: the till's software, announced at login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleSoftware {
    /// `ManufacturerID`.
    #[serde(rename = "ManufacturerID")]
    pub manufacturer_id: String,
    /// `ApplicationName`.
    #[serde(rename = "ApplicationName")]
    pub application_name: String,
    /// `SoftwareVersion`.
    #[serde(rename = "SoftwareVersion")]
    pub software_version: String,
    /// `CertificationCode`.
    #[serde(rename = "CertificationCode")]
    pub certification_code: String,
}

/// `LoginRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginRequest {
    /// `DateTime`, ISO 8601.
    pub date_time: String,
    /// `SaleSoftware`.
    pub sale_software: SaleSoftware,
    /// `OperatorLanguage` (ISO 639-1).
    pub operator_language: String,
    /// `OperatorID`.
    #[serde(
        rename = "OperatorID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operator_id: Option<String>,
}

/// `LoginResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginResponse {
    /// `Response`.
    pub response: Response,
}

/// `LogoutRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogoutRequest {
    /// `MaintenanceAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_allowed: Option<bool>,
}

/// `LogoutResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogoutResponse {
    /// `Response`.
    pub response: Response,
}

/// `DisplayOutput`: what to show on which display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisplayOutput {
    /// `ResponseRequiredFlag`: answer once shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_required_flag: Option<bool>,
    /// `MinimumDisplayTime`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_display_time: Option<u32>,
    /// `Device`: `CustomerDisplay` or `CashierDisplay`.
    pub device: String,
    /// `InfoQualify`: `Display`, `Status`, `Error`, …
    pub info_qualify: String,
    /// `OutputContent`.
    pub output_content: OutputContent,
}

/// `OutputResult`: how showing went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutputResult {
    /// `Device`.
    pub device: String,
    /// `InfoQualify`.
    pub info_qualify: String,
    /// `Response`.
    pub response: Response,
}

/// `DisplayRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisplayRequest {
    /// `DisplayOutput`.
    pub display_output: Vec<DisplayOutput>,
}

/// `DisplayResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisplayResponse {
    /// `OutputResult`.
    #[serde(default)]
    pub output_result: Vec<OutputResult>,
}

/// `InputData`: what to ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputData {
    /// `Device`: `CustomerInput` or `CashierInput`.
    pub device: String,
    /// `InfoQualify`: `Input`.
    pub info_qualify: String,
    /// `InputCommand`: `GetConfirmation`, `DigitString`, `TextString`, `GetMenuEntry`, …
    pub input_command: String,
    /// `MaxInputTime`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_time: Option<u32>,
    /// `DefaultInputString`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_input_string: Option<String>,
}

/// `InputRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputRequest {
    /// `DisplayOutput`: the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_output: Option<DisplayOutput>,
    /// `InputData`.
    pub input_data: InputData,
}

/// `Input`: what was entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    /// `InputCommand`.
    pub input_command: String,
    /// `ConfirmedFlag`, of a confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_flag: Option<bool>,
    /// `DigitInput`, of a digit string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit_input: Option<String>,
    /// `TextInput`, of a text string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_input: Option<String>,
}

/// `InputResult`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputResult {
    /// `Device`.
    pub device: String,
    /// `InfoQualify`.
    pub info_qualify: String,
    /// `Response`.
    pub response: Response,
    /// `Input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
}

/// `InputResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InputResponse {
    /// `OutputResult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_result: Option<OutputResult>,
    /// `InputResult`.
    pub input_result: InputResult,
}

/// `EventNotification`: something the terminal tells unasked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventNotification {
    /// `TimeStamp`.
    pub time_stamp: String,
    /// `EventToNotify`: `BeginMaintenance`, `EndMaintenance`, `Shutdown`, `Initialised`,
    /// `OutOfOrder`, `Completed`, `Abort`, `Reject`, `NetworkConnected`, …
    pub event_to_notify: String,
    /// `EventDetails`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_details: Option<String>,
    /// `RejectedMessage`: a request the terminal could not read, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_message: Option<String>,
}

/// The body of a message: one per category and direction, named as in nexo (the key beside
/// `MessageHeader`).
// One body per message, moved once: boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// `PaymentRequest`.
    PaymentRequest(PaymentRequest),
    /// `PaymentResponse`.
    PaymentResponse(PaymentResponse),
    /// `ReversalRequest`.
    ReversalRequest(ReversalRequest),
    /// `ReversalResponse`.
    ReversalResponse(ReversalResponse),
    /// `AbortRequest`.
    AbortRequest(AbortRequest),
    /// `TransactionStatusRequest`.
    TransactionStatusRequest(TransactionStatusRequest),
    /// `TransactionStatusResponse`.
    TransactionStatusResponse(TransactionStatusResponse),
    /// `ReconciliationRequest`.
    ReconciliationRequest(ReconciliationRequest),
    /// `ReconciliationResponse`.
    ReconciliationResponse(ReconciliationResponse),
    /// `GetTotalsRequest`.
    GetTotalsRequest(GetTotalsRequest),
    /// `GetTotalsResponse`.
    GetTotalsResponse(GetTotalsResponse),
    /// `DiagnosisRequest`.
    DiagnosisRequest(DiagnosisRequest),
    /// `DiagnosisResponse`.
    DiagnosisResponse(DiagnosisResponse),
    /// `LoginRequest`.
    LoginRequest(LoginRequest),
    /// `LoginResponse`.
    LoginResponse(LoginResponse),
    /// `LogoutRequest`.
    LogoutRequest(LogoutRequest),
    /// `LogoutResponse`.
    LogoutResponse(LogoutResponse),
    /// `DisplayRequest`.
    DisplayRequest(DisplayRequest),
    /// `DisplayResponse`.
    DisplayResponse(DisplayResponse),
    /// `InputRequest`.
    InputRequest(InputRequest),
    /// `InputResponse`.
    InputResponse(InputResponse),
    /// `EventNotification`.
    EventNotification(EventNotification),
}

/// The body keys, with their category and whether they are requests (`SaleToPOIRequest`) or
/// responses.
pub(crate) const BODIES: &[(&str, MessageCategory, bool)] = &[
    ("PaymentRequest", MessageCategory::Payment, true),
    ("PaymentResponse", MessageCategory::Payment, false),
    ("ReversalRequest", MessageCategory::Reversal, true),
    ("ReversalResponse", MessageCategory::Reversal, false),
    ("AbortRequest", MessageCategory::Abort, true),
    (
        "TransactionStatusRequest",
        MessageCategory::TransactionStatus,
        true,
    ),
    (
        "TransactionStatusResponse",
        MessageCategory::TransactionStatus,
        false,
    ),
    (
        "ReconciliationRequest",
        MessageCategory::Reconciliation,
        true,
    ),
    (
        "ReconciliationResponse",
        MessageCategory::Reconciliation,
        false,
    ),
    ("GetTotalsRequest", MessageCategory::GetTotals, true),
    ("GetTotalsResponse", MessageCategory::GetTotals, false),
    ("DiagnosisRequest", MessageCategory::Diagnosis, true),
    ("DiagnosisResponse", MessageCategory::Diagnosis, false),
    ("LoginRequest", MessageCategory::Login, true),
    ("LoginResponse", MessageCategory::Login, false),
    ("LogoutRequest", MessageCategory::Logout, true),
    ("LogoutResponse", MessageCategory::Logout, false),
    ("DisplayRequest", MessageCategory::Display, true),
    ("DisplayResponse", MessageCategory::Display, false),
    ("InputRequest", MessageCategory::Input, true),
    ("InputResponse", MessageCategory::Input, false),
    ("EventNotification", MessageCategory::Event, true),
];

impl Body {
    /// The body's key (`PaymentRequest`, …).
    pub fn key(&self) -> &'static str {
        match self {
            Self::PaymentRequest(_) => "PaymentRequest",
            Self::PaymentResponse(_) => "PaymentResponse",
            Self::ReversalRequest(_) => "ReversalRequest",
            Self::ReversalResponse(_) => "ReversalResponse",
            Self::AbortRequest(_) => "AbortRequest",
            Self::TransactionStatusRequest(_) => "TransactionStatusRequest",
            Self::TransactionStatusResponse(_) => "TransactionStatusResponse",
            Self::ReconciliationRequest(_) => "ReconciliationRequest",
            Self::ReconciliationResponse(_) => "ReconciliationResponse",
            Self::GetTotalsRequest(_) => "GetTotalsRequest",
            Self::GetTotalsResponse(_) => "GetTotalsResponse",
            Self::DiagnosisRequest(_) => "DiagnosisRequest",
            Self::DiagnosisResponse(_) => "DiagnosisResponse",
            Self::LoginRequest(_) => "LoginRequest",
            Self::LoginResponse(_) => "LoginResponse",
            Self::LogoutRequest(_) => "LogoutRequest",
            Self::LogoutResponse(_) => "LogoutResponse",
            Self::DisplayRequest(_) => "DisplayRequest",
            Self::DisplayResponse(_) => "DisplayResponse",
            Self::InputRequest(_) => "InputRequest",
            Self::InputResponse(_) => "InputResponse",
            Self::EventNotification(_) => "EventNotification",
        }
    }

    fn entry(&self) -> &'static (&'static str, MessageCategory, bool) {
        let key = self.key();
        BODIES
            .iter()
            .find(|(k, _, _)| *k == key)
            .expect("every body has an entry")
    }

    /// The category a message with this body belongs to.
    pub fn category(&self) -> MessageCategory {
        self.entry().1
    }

    /// Whether it travels as a `SaleToPOIRequest` (requests and notifications) rather than a
    /// `SaleToPOIResponse`.
    pub fn is_request(&self) -> bool {
        self.entry().2
    }

    /// The `Response` of a response body.
    pub fn response(&self) -> Option<&Response> {
        Some(match self {
            Self::PaymentResponse(b) => &b.response,
            Self::ReversalResponse(b) => &b.response,
            Self::TransactionStatusResponse(b) => &b.response,
            Self::ReconciliationResponse(b) => &b.response,
            Self::GetTotalsResponse(b) => &b.response,
            Self::DiagnosisResponse(b) => &b.response,
            Self::LoginResponse(b) => &b.response,
            Self::LogoutResponse(b) => &b.response,
            Self::InputResponse(b) => &b.input_result.response,
            Self::DisplayResponse(b) => return b.output_result.first().map(|r| &r.response),
            _ => return None,
        })
    }
}
