//! Typed messages: the payload of data and handshake frames. See docs/protocol.md, "Messages".
//!
//! A message is one type byte followed by the fields of its body.

use bytes::{BufMut, BytesMut};

use crate::error::{MessageEncodeError, MessageError, MessageErrorKind};
use crate::tlv::{Reader, Tlv, Writer};
use crate::types::RequestId;

/// A small code enumeration of protocol 1.1 (one byte on the wire, unknown codes refused).
macro_rules! small_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $code:literal, )+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value for a wire code, if it is one this version knows.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }
    };
}

mod check;
pub(crate) mod common;
pub(crate) mod customer;
pub(crate) mod emv;
pub(crate) mod lease;
pub(crate) mod offline;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod session;
pub(crate) mod telemetry;
pub(crate) mod update;

pub use check::CapabilityError;
pub use common::{
    AmountLimit, Credential, InvalidSecret, Metadata, MetadataError, OperatorAuth, OperatorSecret,
    RECEIPT_LINES, Receipt, ReceiptLine, TransactionRef, limits,
};
pub use customer::{
    CART_LINES, CartLine, CustomerDisplay, CustomerInput, CustomerQuestion, CustomerReply,
    CustomerResponse, MAX_INPUT_TIMEOUT_MS, SIGNATURE_IMAGE, TIP_PRESETS,
};
pub use emv::{CardholderVerification, CryptogramType, EmvData};
pub use lease::{LeaseRequest, LeaseResponse, LeaseState, MAX_LEASE_MS, MIN_LEASE_MS};
pub use offline::{OfflineLimit, OfflineOutcome, OfflineOutcomeQuery, OfflineState};
pub use request::{
    Cancel, ConfigRead, ConfigWrite, LastTransactionQuery, LeaseRelease, ReceiptRequest,
    SettlementRequest, StatusQuery, TelemetryQuery, TerminalConfig, TransactionCommand,
    TransactionRequest,
};
pub use response::{
    CancelResponse, CancelState, ConfigResponse, LastTransactionResponse, Progress,
    ReceiptResponse, SettlementResult, StatusResponse, Totals, TransactionResult,
    TransactionStatus,
};
pub use session::{
    Capabilities, ErrorMessage, Handshake, Heartbeat, HeartbeatAck, Hello, Pairing, TerminalState,
};
pub use telemetry::{AcquirerLink, PaperState, PowerSource, Telemetry, TelemetryReport};
pub use update::{
    MAX_UPDATE_SIZE, UPDATE_CHUNK, UpdateChunk, UpdateManifest, UpdateOffer, UpdateRefusal,
    UpdateState, UpdateStatus,
};

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $code:literal, )+) => {
        /// Every message of the native protocol.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $( $(#[$doc])* $variant($ty), )+
        }

        /// The type byte of each message.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum MessageType {
            $( $(#[$doc])* $variant = $code, )+
        }

        impl MessageType {
            /// Every message type, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The type byte.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The message type for a type byte.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }

        impl Message {
            /// This message's type.
            pub const fn message_type(&self) -> MessageType {
                match self {
                    $( Self::$variant(_) => MessageType::$variant, )+
                }
            }

            fn encode_body(&self, w: &mut Writer<'_>) -> Result<(), MessageEncodeError> {
                match self {
                    $( Self::$variant(m) => m.encode_fields(w), )+
                }
            }

            fn decode_body(t: MessageType, r: &mut Reader<'_>) -> Result<Self, MessageError> {
                Ok(match t {
                    $( MessageType::$variant => Self::$variant(<$ty>::decode_fields(r)?), )+
                })
            }
        }

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Self {
                    Self::$variant(m)
                }
            }
        )+
    };
}

messages! {
    /// Client → terminal: who the client is and which versions it speaks.
    Hello(Hello) = 0x01,
    /// Terminal → client: who the terminal is and what it can do.
    Capabilities(Capabilities) = 0x02,
    /// Either way: one pairing step.
    Pairing(Pairing) = 0x03,
    /// Either way: one secure-channel handshake message.
    Handshake(Handshake) = 0x04,
    /// Either way: application liveness probe.
    Heartbeat(Heartbeat) = 0x05,
    /// Answer to a heartbeat.
    HeartbeatAck(HeartbeatAck) = 0x06,
    /// Either way: an error about a request or the connection.
    Error(ErrorMessage) = 0x07,
    /// Client → terminal: a money command.
    Transaction(TransactionRequest) = 0x10,
    /// Client → terminal: what became of a money command.
    StatusQuery(StatusQuery) = 0x11,
    /// Client → terminal: the most recent result.
    LastTransaction(LastTransactionQuery) = 0x12,
    /// Client → terminal: abort a running request.
    Cancel(Cancel) = 0x13,
    /// Client → terminal: close the batch.
    Settlement(SettlementRequest) = 0x14,
    /// Client → terminal: reprint a receipt.
    ReceiptRequest(ReceiptRequest) = 0x15,
    /// Client → terminal: read the configuration.
    ConfigRead(ConfigRead) = 0x16,
    /// Client → terminal: change the configuration.
    ConfigWrite(ConfigWrite) = 0x17,
    /// Client → terminal (1.1): the terminal's telemetry.
    TelemetryQuery(TelemetryQuery) = 0x18,
    /// Client → terminal (1.1): show the cart on the customer display.
    CustomerDisplay(CustomerDisplay) = 0x19,
    /// Client → terminal (1.1): ask the customer (tip, yes/no, a number, a signature).
    CustomerInput(CustomerInput) = 0x1A,
    /// Client → terminal (1.1): take the terminal for this till's payments.
    LeaseRequest(LeaseRequest) = 0x1B,
    /// Client → terminal (1.1): give the terminal back.
    LeaseRelease(LeaseRelease) = 0x1C,
    /// Client → terminal (1.1): a signed software update to install.
    UpdateOffer(UpdateOffer) = 0x1D,
    /// Client → terminal (1.1): bytes of the offered update.
    UpdateChunk(UpdateChunk) = 0x1E,
    /// Client → terminal (1.1): what became of a payment approved offline.
    OfflineOutcomeQuery(OfflineOutcomeQuery) = 0x1F,
    /// Terminal → client: where a request is.
    Progress(Progress) = 0x20,
    /// Terminal → client: the final result of a money command.
    TransactionResult(TransactionResult) = 0x21,
    /// Terminal → client: answer to a status query.
    StatusResponse(StatusResponse) = 0x22,
    /// Terminal → client: answer to a cancel.
    CancelResponse(CancelResponse) = 0x23,
    /// Terminal → client: the closed batch and its totals.
    SettlementResult(SettlementResult) = 0x24,
    /// Terminal → client: a receipt.
    ReceiptResponse(ReceiptResponse) = 0x25,
    /// Terminal → client: the configuration.
    ConfigResponse(ConfigResponse) = 0x26,
    /// Terminal → client: the most recent result.
    LastTransactionResponse(LastTransactionResponse) = 0x27,
    /// Terminal → client (1.1): telemetry, answered or pushed when it changes.
    TelemetryReport(TelemetryReport) = 0x28,
    /// Terminal → client (1.1): what came of a customer display or question.
    CustomerResponse(CustomerResponse) = 0x29,
    /// Terminal → client (1.1): where this till stands with the lease, answered or pushed.
    LeaseResponse(LeaseResponse) = 0x2A,
    /// Terminal → client (1.1): where an update stands.
    UpdateStatus(UpdateStatus) = 0x2B,
    /// Terminal → client (1.1): the signed final outcome of a payment approved offline.
    OfflineOutcome(OfflineOutcome) = 0x2C,
}

impl Message {
    /// The lowest protocol version that has this message: a session that agreed on an older one
    /// neither sends nor accepts it.
    pub const fn since_version(&self) -> u16 {
        match self {
            Self::TelemetryQuery(_)
            | Self::TelemetryReport(_)
            | Self::CustomerDisplay(_)
            | Self::CustomerInput(_)
            | Self::CustomerResponse(_)
            | Self::LeaseRequest(_)
            | Self::LeaseRelease(_)
            | Self::LeaseResponse(_)
            | Self::UpdateOffer(_)
            | Self::UpdateChunk(_)
            | Self::UpdateStatus(_)
            | Self::OfflineOutcomeQuery(_)
            | Self::OfflineOutcome(_) => crate::VERSION_1_1,
            _ => crate::VERSION_1_0,
        }
    }

    /// Decodes a message from a frame payload (after decryption). Strict: any deviation from
    /// the canonical encoding is an error that says what and where.
    ///
    /// ```
    /// use posbridge_wire::{Message, MessageErrorKind};
    ///
    /// let err = Message::decode(&[0x7E]).unwrap_err();
    /// assert_eq!(err.kind, MessageErrorKind::UnknownMessageType(0x7E));
    /// assert_eq!(err.offset, 0);
    /// ```
    pub fn decode(payload: &[u8]) -> Result<Self, MessageError> {
        let (&code, body) = payload.split_first().ok_or(MessageError {
            kind: MessageErrorKind::Empty,
            offset: 0,
        })?;
        let t = MessageType::from_code(code).ok_or(MessageError {
            kind: MessageErrorKind::UnknownMessageType(code),
            offset: 0,
        })?;
        Self::decode_body(t, &mut Reader::new(body, 1))
    }

    /// Appends the message's encoding to `dst`. On error `dst` is left as it was.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), MessageEncodeError> {
        let start = dst.len();
        dst.put_u8(self.message_type().code());
        let out = self.encode_body(&mut Writer::new(dst));
        if out.is_err() {
            dst.truncate(start);
        }
        out
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Result<BytesMut, MessageEncodeError> {
        let mut out = BytesMut::with_capacity(128);
        self.encode(&mut out)?;
        Ok(out)
    }

    /// The request id this message carries or answers, if it has one.
    pub fn request_id(&self) -> Option<RequestId> {
        Some(match self {
            Self::Transaction(m) => m.request_id,
            Self::StatusQuery(m) => m.request_id,
            Self::LastTransaction(m) => m.request_id,
            Self::Cancel(m) => m.request_id,
            Self::Settlement(m) => m.request_id,
            Self::ReceiptRequest(m) => m.request_id,
            Self::ConfigRead(m) => m.request_id,
            Self::ConfigWrite(m) => m.request_id,
            Self::TelemetryQuery(m) => m.request_id,
            Self::CustomerDisplay(m) => m.request_id,
            Self::CustomerInput(m) => m.request_id,
            Self::CustomerResponse(m) => m.request_id,
            Self::LeaseRequest(m) => m.request_id,
            Self::LeaseRelease(m) => m.request_id,
            Self::UpdateOffer(m) => m.request_id,
            Self::UpdateChunk(m) => m.request_id,
            Self::UpdateStatus(m) => m.request_id,
            Self::OfflineOutcomeQuery(m) => m.request_id,
            Self::Progress(m) => m.request_id,
            Self::TransactionResult(m) => m.request_id,
            Self::StatusResponse(m) => m.request_id,
            Self::CancelResponse(m) => m.request_id,
            Self::SettlementResult(m) => m.request_id,
            Self::ReceiptResponse(m) => m.request_id,
            Self::ConfigResponse(m) => m.request_id,
            Self::LastTransactionResponse(m) => m.request_id,
            Self::Error(m) => return m.request_id,
            Self::TelemetryReport(m) => return m.request_id,
            Self::LeaseResponse(m) => return m.request_id,
            Self::OfflineOutcome(m) => return m.request_id,
            Self::Hello(_)
            | Self::Capabilities(_)
            | Self::Pairing(_)
            | Self::Handshake(_)
            | Self::Heartbeat(_)
            | Self::HeartbeatAck(_) => return None,
        })
    }
}
