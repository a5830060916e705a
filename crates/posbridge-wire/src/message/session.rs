//! Connection messages: hello and capabilities, pairing and handshake carriers, heartbeat, error.

use alloc::string::String;
use alloc::vec::Vec;

use super::common::{AmountLimit, limits};
use super::offline::OfflineLimit;
use crate::error::MessageEncodeError;
use crate::frame::{HARD_MAX_FRAME_SIZE, MIN_FRAME_SIZE};
use crate::tlv::{DecResult, EncResult, Field, Reader, Slot, Tlv, Writer, key, push};
use crate::types::{
    ClientId, Currency, ErrorCode, FeatureSet, KindSet, MethodSet, RequestId, TerminalId, Timestamp,
};

fn frame_size(f: &Field<'_>) -> DecResult<u32> {
    let v = f.u32()?;
    f.check(v, |v| {
        (MIN_FRAME_SIZE as u32..=HARD_MAX_FRAME_SIZE as u32).contains(v)
    })
}

fn versions(f: &Field<'_>) -> DecResult<Vec<u16>> {
    let v = f.u16_list(limits::LIST)?;
    f.check(v, |v| !v.is_empty())
}

fn put_versions(w: &mut Writer<'_>, k: u8, v: &[u16]) -> EncResult {
    if v.is_empty() {
        return Err(MessageEncodeError::InvalidValue { key: k });
    }
    w.u16_list(k, v, limits::LIST)
}

/// The client's first message: who it is and which protocol versions it speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The client's permanent identity: the id it paired under (the terminal refuses a hello
    /// that names another device than the one its keys belong to; `ClientSession` fills it in
    /// from its identity).
    pub client_id: ClientId,
    /// A human-readable name (`"Till 3"`).
    pub client_name: Option<String>,
    /// The app's name and version, for the terminal's logs.
    pub app_version: Option<String>,
    /// Protocol versions the client speaks, most preferred first (at least one).
    pub protocol_versions: Vec<u16>,
    /// The largest frame the client accepts.
    pub max_frame_size: Option<u32>,
}

mod hello {
    use super::key;
    pub(super) const CLIENT_ID: u8 = key(1, true);
    pub(super) const NAME: u8 = key(2, false);
    pub(super) const APP: u8 = key(3, false);
    pub(super) const VERSIONS: u8 = key(4, true);
    pub(super) const MAX_FRAME: u8 = key(5, false);
}

impl Tlv for Hello {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use hello::*;
        w.id(CLIENT_ID, self.client_id.as_bytes());
        w.opt_text(NAME, self.client_name.as_deref(), limits::NAME)?;
        w.opt_text(APP, self.app_version.as_deref(), limits::NAME)?;
        put_versions(w, VERSIONS, &self.protocol_versions)?;
        w.opt_uint(MAX_FRAME, self.max_frame_size.map(u64::from));
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use hello::*;
        let (mut id, mut name, mut app, mut versions_, mut max_frame) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                CLIENT_ID => id.set(&f, f.array().map(ClientId))?,
                NAME => name.set(&f, f.text(limits::NAME))?,
                APP => app.set(&f, f.text(limits::NAME))?,
                VERSIONS => versions_.set(&f, versions(&f))?,
                MAX_FRAME => max_frame.set(&f, frame_size(&f))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            client_id: id.required(CLIENT_ID, r)?,
            client_name: name.get(),
            app_version: app.get(),
            protocol_versions: versions_.required(VERSIONS, r)?,
            max_frame_size: max_frame.get(),
        })
    }
}

/// The terminal's answer to [`Hello`]: who it is, the protocol version chosen, and what it can
/// do. The client validates every request against it before sending anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The terminal's permanent identity.
    pub terminal_id: TerminalId,
    /// The terminal's model.
    pub model: Option<String>,
    /// The terminal's firmware version.
    pub firmware: Option<String>,
    /// The terminal's serial number.
    pub serial_number: Option<String>,
    /// The merchant's name as configured.
    pub merchant_name: Option<String>,
    /// Protocol versions the terminal speaks (at least one).
    pub protocol_versions: Vec<u16>,
    /// The version chosen for this connection: the client's most preferred one that the
    /// terminal speaks.
    pub selected_version: u16,
    /// Transaction kinds enabled.
    pub kinds: KindSet,
    /// Payment methods enabled.
    pub methods: MethodSet,
    /// Currencies accepted.
    pub currencies: Vec<Currency>,
    /// Amount limits per kind and currency; a kind and currency without an entry has no limit
    /// beyond the protocol's.
    pub limits: Vec<AmountLimit>,
    /// The largest frame the terminal accepts.
    pub max_frame_size: Option<u32>,
    /// Optional abilities.
    pub features: FeatureSet,
    /// How far it approves offline, per currency (protocol 1.1; sent only to 1.1 clients).
    pub offline_limits: Vec<OfflineLimit>,
}

mod caps {
    use super::key;
    pub(super) const TERMINAL_ID: u8 = key(1, true);
    pub(super) const MODEL: u8 = key(2, false);
    pub(super) const FIRMWARE: u8 = key(3, false);
    pub(super) const SERIAL: u8 = key(4, false);
    pub(super) const MERCHANT: u8 = key(5, false);
    pub(super) const VERSIONS: u8 = key(6, true);
    pub(super) const SELECTED: u8 = key(7, true);
    pub(super) const KINDS: u8 = key(8, true);
    pub(super) const METHODS: u8 = key(9, true);
    pub(super) const CURRENCIES: u8 = key(10, true);
    pub(super) const LIMITS: u8 = key(11, true);
    pub(super) const MAX_FRAME: u8 = key(12, false);
    pub(super) const FEATURES: u8 = key(13, false);
    pub(super) const OFFLINE: u8 = key(14, false);
}

pub(crate) fn currency_list(f: &Field<'_>) -> DecResult<Vec<Currency>> {
    let codes = f.u16_list(limits::LIST)?;
    codes
        .into_iter()
        .map(|c| {
            Currency::new(c)
                .map_err(|_| f.fail(crate::MessageErrorKind::InvalidValue { key: f.key }))
        })
        .collect()
}

pub(crate) fn put_currencies(w: &mut Writer<'_>, k: u8, list: &[Currency]) -> EncResult {
    let mut codes = [0u16; limits::LIST as usize];
    crate::tlv::check_count(k, list.len(), limits::LIST)?;
    for (slot, c) in codes.iter_mut().zip(list) {
        *slot = c.code();
    }
    w.u16_list(k, &codes[..list.len()], limits::LIST)
}

impl Tlv for Capabilities {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use caps::*;
        w.id(TERMINAL_ID, self.terminal_id.as_bytes());
        w.opt_text(MODEL, self.model.as_deref(), limits::NAME)?;
        w.opt_text(FIRMWARE, self.firmware.as_deref(), limits::NAME)?;
        w.opt_text(SERIAL, self.serial_number.as_deref(), limits::NAME)?;
        w.opt_text(MERCHANT, self.merchant_name.as_deref(), limits::NAME)?;
        put_versions(w, VERSIONS, &self.protocol_versions)?;
        w.uint(SELECTED, self.selected_version.into());
        w.uint(KINDS, self.kinds.0.into());
        w.uint(METHODS, self.methods.0.into());
        put_currencies(w, CURRENCIES, &self.currencies)?;
        w.items(LIMITS, &self.limits, limits::LIST)?;
        w.opt_uint(MAX_FRAME, self.max_frame_size.map(u64::from));
        if self.features.0 != 0 {
            w.uint(FEATURES, self.features.0.into());
        }
        w.items(OFFLINE, &self.offline_limits, limits::LIST)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use caps::*;
        let (mut id, mut model, mut firmware, mut serial, mut merchant) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut versions_, mut selected, mut kinds, mut methods, mut currencies) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut limit_list, mut max_frame, mut features, mut offline) =
            (Vec::new(), Slot::default(), Slot::default(), Vec::new());
        while let Some(f) = r.next_field()? {
            match f.key {
                TERMINAL_ID => id.set(&f, f.array().map(TerminalId))?,
                MODEL => model.set(&f, f.text(limits::NAME))?,
                FIRMWARE => firmware.set(&f, f.text(limits::NAME))?,
                SERIAL => serial.set(&f, f.text(limits::NAME))?,
                MERCHANT => merchant.set(&f, f.text(limits::NAME))?,
                VERSIONS => versions_.set(&f, versions(&f))?,
                SELECTED => selected.set(&f, f.u16())?,
                KINDS => kinds.set(&f, f.u32().map(KindSet))?,
                METHODS => methods.set(&f, f.u32().map(MethodSet))?,
                CURRENCIES => currencies.set(&f, currency_list(&f))?,
                LIMITS => push(&mut limit_list, &f, f.item(), limits::LIST)?,
                MAX_FRAME => max_frame.set(&f, frame_size(&f))?,
                FEATURES => features.set(&f, f.nonzero_u32().map(FeatureSet))?,
                OFFLINE => push(&mut offline, &f, f.item(), limits::LIST)?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            terminal_id: id.required(TERMINAL_ID, r)?,
            model: model.get(),
            firmware: firmware.get(),
            serial_number: serial.get(),
            merchant_name: merchant.get(),
            protocol_versions: versions_.required(VERSIONS, r)?,
            selected_version: selected.required(SELECTED, r)?,
            kinds: kinds.required(KINDS, r)?,
            methods: methods.required(METHODS, r)?,
            currencies: currencies.required(CURRENCIES, r)?,
            limits: limit_list,
            max_frame_size: max_frame.get(),
            features: features.get().unwrap_or_default(),
            offline_limits: offline,
        })
    }
}

/// Carries one step of pairing (the PAKE exchange, defined by `posbridge-crypto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pairing {
    /// Which step of the pairing exchange.
    pub step: u8,
    /// The step's body, opaque to this layer (at most 2048 bytes).
    pub body: Vec<u8>,
}

/// Carries one message of the secure-channel handshake (Noise, defined by `posbridge-crypto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Which handshake message (0 for the first).
    pub step: u8,
    /// The handshake message, opaque to this layer (at most 2048 bytes).
    pub body: Vec<u8>,
}

const STEP: u8 = key(1, true);
const BODY: u8 = key(2, true);

fn encode_carrier(w: &mut Writer<'_>, step: u8, body: &[u8]) -> EncResult {
    w.uint(STEP, step.into());
    w.bytes(BODY, body, limits::HANDSHAKE_BODY)
}

fn decode_carrier(r: &mut Reader<'_>) -> DecResult<(u8, Vec<u8>)> {
    let (mut step, mut body) = (Slot::default(), Slot::default());
    while let Some(f) = r.next_field()? {
        match f.key {
            STEP => step.set(&f, f.u8())?,
            BODY => body.set(&f, f.bytes(limits::HANDSHAKE_BODY))?,
            _ => f.unknown()?,
        }
    }
    Ok((step.required(STEP, r)?, body.required(BODY, r)?))
}

impl Tlv for Pairing {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        encode_carrier(w, self.step, &self.body)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        decode_carrier(r).map(|(step, body)| Self { step, body })
    }
}

impl Tlv for Handshake {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        encode_carrier(w, self.step, &self.body)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        decode_carrier(r).map(|(step, body)| Self { step, body })
    }
}

/// An application-level liveness probe, answered by [`HeartbeatAck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Echoed in the answer.
    pub nonce: u64,
}

const NONCE: u8 = key(1, false);

impl Tlv for Heartbeat {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.uint(NONCE, self.nonce);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let mut nonce = Slot::default();
        while let Some(f) = r.next_field()? {
            match f.key {
                NONCE => nonce.set(&f, f.uint())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            nonce: nonce.required(NONCE, r)?,
        })
    }
}

/// What the terminal is doing, reported in a [`HeartbeatAck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TerminalState {
    /// Ready for a request.
    Idle = 1,
    /// Running a transaction (requests queue).
    Busy = 2,
    /// In a maintenance mode (settlement, update); requests wait.
    Maintenance = 3,
}

impl TerminalState {
    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Idle),
            2 => Some(Self::Busy),
            3 => Some(Self::Maintenance),
            _ => None,
        }
    }
}

/// The answer to a [`Heartbeat`], with the terminal's state and clock (for skew detection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The heartbeat's nonce.
    pub nonce: u64,
    /// What the terminal is doing.
    pub state: TerminalState,
    /// The terminal's clock.
    pub time: Option<Timestamp>,
}

mod ack {
    use super::key;
    pub(super) const NONCE: u8 = key(1, false);
    pub(super) const STATE: u8 = key(2, false);
    pub(super) const TIME: u8 = key(3, false);
}

impl Tlv for HeartbeatAck {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        w.uint(ack::NONCE, self.nonce);
        w.uint(ack::STATE, self.state as u64);
        w.opt_uint(ack::TIME, self.time.map(|t| t.0));
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        let (mut nonce, mut state, mut time) = (Slot::default(), Slot::default(), Slot::default());
        while let Some(f) = r.next_field()? {
            match f.key {
                ack::NONCE => nonce.set(&f, f.uint())?,
                ack::STATE => state.set(&f, f.code(TerminalState::from_code))?,
                ack::TIME => time.set(&f, f.uint().map(Timestamp))?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            nonce: nonce.required(ack::NONCE, r)?,
            state: state.required(ack::STATE, r)?,
            time: time.get(),
        })
    }
}

/// An error, about one request or about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMessage {
    /// The request the error is about, if any.
    pub request_id: Option<RequestId>,
    /// What went wrong.
    pub code: ErrorCode,
    /// Detail for logs and support (never card data).
    pub detail: Option<String>,
    /// When the client may try again.
    pub retry_after_ms: Option<u32>,
}

mod error_msg {
    use super::key;
    pub(super) const REQUEST_ID: u8 = key(1, true);
    pub(super) const CODE: u8 = key(2, true);
    pub(super) const DETAIL: u8 = key(3, false);
    pub(super) const RETRY_AFTER: u8 = key(4, false);
}

impl Tlv for ErrorMessage {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use error_msg::*;
        if let Some(id) = &self.request_id {
            w.id(REQUEST_ID, id.as_bytes());
        }
        w.uint(CODE, self.code.0.into());
        w.opt_text(DETAIL, self.detail.as_deref(), limits::TEXT)?;
        w.opt_uint(RETRY_AFTER, self.retry_after_ms.map(u64::from));
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use error_msg::*;
        let (mut id, mut code, mut detail, mut retry) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                CODE => code.set(&f, f.u16().map(ErrorCode))?,
                DETAIL => detail.set(&f, f.text(limits::TEXT))?,
                RETRY_AFTER => retry.set(&f, f.u32())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.get(),
            code: code.required(CODE, r)?,
            detail: detail.get(),
            retry_after_ms: retry.get(),
        })
    }
}
