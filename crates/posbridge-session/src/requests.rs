//! The client's requests: ids, correlation of answers, one money command at a time with the rest
//! queued, deadlines, cancel, and validation against the terminal's capabilities.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use posbridge_wire::{
    Capabilities, CapabilityError, Message, MessageEncodeError, RequestId, TransactionRequest,
};

/// Why a request was refused before anything was sent: the terminal's capabilities rule it out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The session is not connected (or is closing).
    NotReady,
    /// The message is not something a client asks.
    NotARequest,
    /// The command does not fit the terminal's capabilities (kind, currency, payment methods,
    /// amount limits).
    Capability(CapabilityError),
    /// The deadline has already passed.
    DeadlineInPast,
    /// The message cannot be encoded (a field breaks a protocol limit).
    Unencodable(MessageEncodeError),
    /// The message belongs to a later protocol version than the one agreed with this terminal
    /// (a 1.0 terminal has no telemetry): nothing was sent.
    NotInVersion {
        /// The version agreed.
        agreed: u16,
        /// The version the message needs.
        needs: u16,
    },
    /// The message does not fit in a frame.
    TooLarge {
        /// Its size, sealed.
        len: usize,
        /// The largest frame payload.
        max: usize,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady => f.write_str("not connected to the terminal"),
            Self::NotARequest => f.write_str("that message is not a request"),
            Self::Capability(e) => write!(f, "{e}"),
            Self::DeadlineInPast => f.write_str("the request's deadline has already passed"),
            Self::NotInVersion { agreed, needs } => write!(
                f,
                "the terminal speaks protocol version {agreed}; this request needs version {needs} (protocol 1.1)"
            ),
            Self::Unencodable(e) => write!(f, "the request cannot be encoded: {e}"),
            Self::TooLarge { len, max } => write!(
                f,
                "the request is {len} bytes sealed, more than a frame carries ({max}): shorten it or raise the frame size on both sides"
            ),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Capability(e) => Some(e),
            Self::Unencodable(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a money command against what the terminal said it can do (kind, payment methods,
/// currency, amount limits): what [`ClientSession::request`](crate::ClientSession::request) does
/// before sending, for callers that need the answer before they journal anything.
pub fn validate(t: &TransactionRequest, caps: &Capabilities) -> Result<(), RequestError> {
    caps.check(t).map_err(RequestError::from)
}

impl From<CapabilityError> for RequestError {
    fn from(e: CapabilityError) -> Self {
        Self::Capability(e)
    }
}

/// Sets the request id of a client request; `false` if the message is not one.
pub(crate) fn set_request_id(message: &mut Message, id: RequestId) -> bool {
    match message {
        Message::Transaction(m) => m.request_id = id,
        Message::StatusQuery(m) => m.request_id = id,
        Message::LastTransaction(m) => m.request_id = id,
        Message::Cancel(m) => m.request_id = id,
        Message::Settlement(m) => m.request_id = id,
        Message::ReceiptRequest(m) => m.request_id = id,
        Message::ConfigRead(m) => m.request_id = id,
        Message::ConfigWrite(m) => m.request_id = id,
        Message::TelemetryQuery(m) => m.request_id = id,
        Message::CustomerDisplay(m) => m.request_id = id,
        Message::CustomerInput(m) => m.request_id = id,
        Message::LeaseRequest(m) => m.request_id = id,
        Message::LeaseRelease(m) => m.request_id = id,
        Message::UpdateOffer(m) => m.request_id = id,
        Message::UpdateChunk(m) => m.request_id = id,
        Message::OfflineOutcomeQuery(m) => m.request_id = id,
        _ => return false,
    }
    true
}

/// Whether the terminal runs this request exclusively (one at a time): money commands, the
/// settlement, configuration changes.
pub(crate) fn is_exclusive(message: &Message) -> bool {
    matches!(
        message,
        Message::Transaction(_) | Message::Settlement(_) | Message::ConfigWrite(_)
    )
}

/// Whether this answer ends its request (progress does not).
pub(crate) fn is_final(message: &Message) -> bool {
    !matches!(message, Message::Progress(_))
}

/// Where a request stands on the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting behind another money command; nothing sent yet.
    Queued,
    /// Sent; no final answer yet.
    Sent,
}

pub(crate) struct Pending {
    pub(crate) id: RequestId,
    pub(crate) message: Message,
    pub(crate) deadline: Instant,
    pub(crate) state: RequestState,
    pub(crate) exclusive: bool,
    pub(crate) cancel_requested: bool,
}

/// The client's requests in flight.
#[derive(Default)]
pub(crate) struct Requests {
    next: u64,
    base: u64,
    pending: Vec<Pending>,
    queue: VecDeque<RequestId>,
}

impl Requests {
    pub(crate) fn new(base: u64) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    pub(crate) fn next_id(&mut self) -> RequestId {
        self.next += 1;
        RequestId::from_u128(u128::from(self.base) << 64 | u128::from(self.next))
    }

    pub(crate) fn get_mut(&mut self, id: RequestId) -> Option<&mut Pending> {
        self.pending.iter_mut().find(|p| p.id == id)
    }

    pub(crate) fn state(&self, id: RequestId) -> Option<RequestState> {
        self.pending.iter().find(|p| p.id == id).map(|p| p.state)
    }

    /// Whether an exclusive request is out at the terminal.
    pub(crate) fn exclusive_running(&self) -> bool {
        self.pending
            .iter()
            .any(|p| p.exclusive && p.state == RequestState::Sent)
    }

    pub(crate) fn add(&mut self, pending: Pending) {
        if pending.state == RequestState::Queued {
            self.queue.push_back(pending.id);
        }
        self.pending.push(pending);
    }

    /// Removes a request (answered, failed or cancelled).
    pub(crate) fn remove(&mut self, id: RequestId) -> Option<Pending> {
        self.queue.retain(|q| *q != id);
        let idx = self.pending.iter().position(|p| p.id == id)?;
        Some(self.pending.remove(idx))
    }

    pub(crate) fn remove_from_queue(&mut self, id: RequestId) {
        self.queue.retain(|q| *q != id);
    }

    /// The next queued request to send, if nothing exclusive is running.
    pub(crate) fn next_to_send(&mut self) -> Option<RequestId> {
        if self.exclusive_running() {
            return None;
        }
        self.queue.pop_front()
    }

    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    pub(crate) fn expired(&self, now: Instant) -> Vec<RequestId> {
        self.pending
            .iter()
            .filter(|p| p.deadline <= now)
            .map(|p| p.id)
            .collect()
    }

    pub(crate) fn drain(&mut self) -> Vec<Pending> {
        self.queue.clear();
        std::mem::take(&mut self.pending)
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
