//! NFC Forum NDEF messages (NDEF 1.0), and the handover payload inside one.

use std::fmt;

use crate::{
    ContentError, EXTERNAL_TYPE, Handover, MAX_LIST, MAX_TEXT, MIME_TYPE, PairingSecret,
    TcpEndpoint, UsbTarget, VERSION, check_limits,
};

const MB: u8 = 0x80;
const ME: u8 = 0x40;
const CF: u8 = 0x20;
const SR: u8 = 0x10;
const IL: u8 = 0x08;

/// The Type Name Format of a record: how to read its type field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tnf {
    /// No type, id or payload.
    Empty = 0,
    /// An NFC Forum well-known type (`U` for URI, `T` for text, ...).
    WellKnown = 1,
    /// A MIME media type (RFC 2046).
    Mime = 2,
    /// An absolute URI (RFC 3986).
    AbsoluteUri = 3,
    /// An NFC Forum external type (`domain:type`).
    External = 4,
    /// Unknown type.
    Unknown = 5,
    /// A continuation chunk (not accepted here).
    Unchanged = 6,
}

/// One NDEF record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdefRecord {
    /// How to read `record_type`.
    pub tnf: Tnf,
    /// The type.
    pub record_type: Vec<u8>,
    /// The optional id.
    pub id: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Which record type a handover is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdefRecordKind {
    /// MIME type `application/vnd.posbridge.handover`.
    Mime,
    /// External type `posbridge.dev:handover`.
    External,
}

/// Why an NDEF message or its handover record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NdefError {
    /// No bytes at all.
    Empty,
    /// A record runs past the end of the message, at this offset.
    Truncated {
        /// Offset of the record's header byte.
        offset: usize,
    },
    /// A chunked record (CF flag or TNF "unchanged"): posbridge tags never chunk, and
    /// reassembling chunks from untrusted tags is not worth the risk.
    Chunked {
        /// Offset of the record's header byte.
        offset: usize,
    },
    /// The first record lacks the message-begin flag, or a later one has it.
    MessageBegin {
        /// Offset of the record's header byte.
        offset: usize,
    },
    /// No record has the message-end flag.
    MissingMessageEnd,
    /// Bytes follow the record with the message-end flag.
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
    /// TNF 7 is reserved.
    ReservedTnf {
        /// Offset of the record's header byte.
        offset: usize,
    },
    /// An empty record (TNF 0) with a type, id or payload.
    InvalidEmptyRecord {
        /// Offset of the record's header byte.
        offset: usize,
    },
    /// The message holds no posbridge handover record: not a posbridge terminal's tag.
    NoHandoverRecord,
    /// The handover record's content is invalid.
    Content(ContentError),
}

impl fmt::Display for NdefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty NDEF message"),
            Self::Truncated { offset } => write!(
                f,
                "NDEF record at byte {offset} is cut short; hold the phone still on the tag"
            ),
            Self::Chunked { offset } => {
                write!(f, "chunked NDEF record at byte {offset} is not supported")
            }
            Self::MessageBegin { offset } => {
                write!(f, "NDEF message-begin flag wrong at byte {offset}")
            }
            Self::MissingMessageEnd => {
                f.write_str("NDEF message has no end; hold the phone still on the tag")
            }
            Self::TrailingBytes { offset } => {
                write!(f, "bytes after the end of the NDEF message at {offset}")
            }
            Self::ReservedTnf { offset } => write!(f, "reserved type name format at byte {offset}"),
            Self::InvalidEmptyRecord { offset } => {
                write!(f, "empty NDEF record at byte {offset} has content")
            }
            Self::NoHandoverRecord => f.write_str("this tag is not a posbridge terminal's tag"),
            Self::Content(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for NdefError {}

impl From<ContentError> for NdefError {
    fn from(e: ContentError) -> Self {
        Self::Content(e)
    }
}

/// Parses a whole NDEF message into its records.
pub fn parse_ndef_message(bytes: &[u8]) -> Result<Vec<NdefRecord>, NdefError> {
    if bytes.is_empty() {
        return Err(NdefError::Empty);
    }
    let mut at = 0;
    let mut records = Vec::new();
    loop {
        let offset = at;
        let truncated = NdefError::Truncated { offset };
        let header = *bytes.get(at).ok_or(truncated)?;
        at += 1;
        if (header & MB != 0) != records.is_empty() {
            return Err(NdefError::MessageBegin { offset });
        }
        let tnf = match header & 0x07 {
            0 => Tnf::Empty,
            1 => Tnf::WellKnown,
            2 => Tnf::Mime,
            3 => Tnf::AbsoluteUri,
            4 => Tnf::External,
            5 => Tnf::Unknown,
            6 => return Err(NdefError::Chunked { offset }),
            _ => return Err(NdefError::ReservedTnf { offset }),
        };
        if header & CF != 0 {
            return Err(NdefError::Chunked { offset });
        }
        let type_len = usize::from(*bytes.get(at).ok_or(truncated)?);
        at += 1;
        let payload_len = if header & SR != 0 {
            let n = usize::from(*bytes.get(at).ok_or(truncated)?);
            at += 1;
            n
        } else {
            let b = bytes.get(at..at + 4).ok_or(truncated)?;
            at += 4;
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        let id_len = if header & IL != 0 {
            let n = usize::from(*bytes.get(at).ok_or(truncated)?);
            at += 1;
            n
        } else {
            0
        };
        // Checked against what is there before anything is allocated.
        let total = type_len + id_len;
        if total > bytes.len() - at || payload_len > bytes.len() - at - total {
            return Err(truncated);
        }
        let record_type = bytes[at..at + type_len].to_vec();
        at += type_len;
        let id = bytes[at..at + id_len].to_vec();
        at += id_len;
        let payload = bytes[at..at + payload_len].to_vec();
        at += payload_len;
        if tnf == Tnf::Empty && (type_len | id_len | payload_len) != 0 {
            return Err(NdefError::InvalidEmptyRecord { offset });
        }
        records.push(NdefRecord {
            tnf,
            record_type,
            id,
            payload,
        });
        if header & ME != 0 {
            if at != bytes.len() {
                return Err(NdefError::TrailingBytes { offset: at });
            }
            return Ok(records);
        }
        if at == bytes.len() {
            return Err(NdefError::MissingMessageEnd);
        }
    }
}

/// Encodes records as one NDEF message (short records where the payload fits in 255 bytes).
pub fn encode_ndef_message(records: &[NdefRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut header = r.tnf as u8;
        if i == 0 {
            header |= MB;
        }
        if i + 1 == records.len() {
            header |= ME;
        }
        let short = r.payload.len() < 256;
        if short {
            header |= SR;
        }
        if !r.id.is_empty() {
            header |= IL;
        }
        out.push(header);
        out.push(r.record_type.len() as u8);
        if short {
            out.push(r.payload.len() as u8);
        } else {
            out.extend_from_slice(&(r.payload.len() as u32).to_be_bytes());
        }
        if !r.id.is_empty() {
            out.push(r.id.len() as u8);
        }
        out.extend_from_slice(&r.record_type);
        out.extend_from_slice(&r.id);
        out.extend_from_slice(&r.payload);
    }
    out
}

mod tag {
    pub(super) const VERSION: u8 = 0x01;
    pub(super) const TERMINAL_ID: u8 = 0x02;
    pub(super) const NAME: u8 = 0x03;
    pub(super) const TCP: u8 = 0x04;
    pub(super) const TLS_PIN: u8 = 0x05;
    pub(super) const BLE_ADDRESS: u8 = 0x06;
    pub(super) const BLE_NAME: u8 = 0x07;
    pub(super) const USB: u8 = 0x08;
    pub(super) const SECRET: u8 = 0x09;
}

fn put(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

fn text(value: &[u8], name: &'static str) -> Result<String, ContentError> {
    if value.len() > MAX_TEXT {
        return Err(ContentError::TooLong(name));
    }
    String::from_utf8(value.to_vec()).map_err(|_| ContentError::InvalidField(name))
}

impl Handover {
    /// The binary payload of a handover record: `tag (1 byte), length (1 byte), value` entries,
    /// version first, in tag order; tags a reader does not know are skipped.
    pub fn to_payload(&self) -> Result<Vec<u8>, ContentError> {
        check_limits(self)?;
        let mut out = Vec::with_capacity(64);
        put(&mut out, tag::VERSION, &[VERSION]);
        put(&mut out, tag::TERMINAL_ID, &self.terminal_id);
        if let Some(n) = &self.name {
            put(&mut out, tag::NAME, n.as_bytes());
        }
        for t in &self.tcp {
            let mut v = t.port.to_be_bytes().to_vec();
            v.extend_from_slice(t.host.as_bytes());
            put(&mut out, tag::TCP, &v);
        }
        if let Some(pin) = &self.tls_pin {
            put(&mut out, tag::TLS_PIN, pin);
        }
        if let Some(a) = &self.ble_address {
            put(&mut out, tag::BLE_ADDRESS, a);
        }
        if let Some(n) = &self.ble_name {
            put(&mut out, tag::BLE_NAME, n.as_bytes());
        }
        for u in &self.usb {
            let mut v = u.vid.to_be_bytes().to_vec();
            v.extend_from_slice(&u.pid.to_be_bytes());
            if let Some(s) = &u.serial_number {
                v.extend_from_slice(s.as_bytes());
            }
            put(&mut out, tag::USB, &v);
        }
        if let Some(s) = &self.pairing_secret {
            put(&mut out, tag::SECRET, s.expose());
        }
        Ok(out)
    }

    /// Reads the binary payload of a handover record.
    pub fn from_payload(payload: &[u8]) -> Result<Self, ContentError> {
        let mut at = 0;
        let mut version = None;
        let mut h = Self::new([0; 16]);
        let mut have_id = false;
        while at < payload.len() {
            let (tag, len) = match payload.get(at..at + 2) {
                Some(&[t, l]) => (t, usize::from(l)),
                _ => return Err(ContentError::InvalidField("payload")),
            };
            let value = payload
                .get(at + 2..at + 2 + len)
                .ok_or(ContentError::InvalidField("payload"))?;
            at += 2 + len;
            let once = |present: bool, name| {
                if present {
                    Err(ContentError::InvalidField(name))
                } else {
                    Ok(())
                }
            };
            match tag {
                tag::VERSION => {
                    once(version.is_some(), "version")?;
                    version = Some(*value.first().ok_or(ContentError::InvalidField("version"))?);
                }
                tag::TERMINAL_ID => {
                    once(have_id, "terminal id")?;
                    h.terminal_id = value
                        .try_into()
                        .map_err(|_| ContentError::InvalidField("terminal id"))?;
                    have_id = true;
                }
                tag::NAME => {
                    once(h.name.is_some(), "name")?;
                    h.name = Some(text(value, "name")?);
                }
                tag::TCP => {
                    if value.len() < 3 || h.tcp.len() >= MAX_LIST {
                        return Err(ContentError::InvalidField("TCP address"));
                    }
                    h.tcp.push(TcpEndpoint {
                        port: u16::from_be_bytes([value[0], value[1]]),
                        host: text(&value[2..], "TCP host")?,
                    });
                }
                tag::TLS_PIN => {
                    once(h.tls_pin.is_some(), "TLS pin")?;
                    h.tls_pin = Some(
                        value
                            .try_into()
                            .map_err(|_| ContentError::InvalidField("TLS pin"))?,
                    );
                }
                tag::BLE_ADDRESS => {
                    once(h.ble_address.is_some(), "BLE address")?;
                    h.ble_address = Some(
                        value
                            .try_into()
                            .map_err(|_| ContentError::InvalidField("BLE address"))?,
                    );
                }
                tag::BLE_NAME => {
                    once(h.ble_name.is_some(), "BLE name")?;
                    h.ble_name = Some(text(value, "BLE name")?);
                }
                tag::USB => {
                    if value.len() < 4 || h.usb.len() >= MAX_LIST {
                        return Err(ContentError::InvalidField("USB ids"));
                    }
                    h.usb.push(UsbTarget {
                        vid: u16::from_be_bytes([value[0], value[1]]),
                        pid: u16::from_be_bytes([value[2], value[3]]),
                        serial_number: if value.len() > 4 {
                            Some(text(&value[4..], "USB serial number")?)
                        } else {
                            None
                        },
                    });
                }
                tag::SECRET => {
                    once(h.pairing_secret.is_some(), "pairing secret")?;
                    let bytes: [u8; 16] = value
                        .try_into()
                        .map_err(|_| ContentError::InvalidField("pairing secret"))?;
                    h.pairing_secret = Some(PairingSecret::from_bytes(bytes));
                }
                _ => {}
            }
        }
        match version {
            Some(VERSION) => {}
            Some(v) => return Err(ContentError::UnsupportedVersion(v)),
            None => return Err(ContentError::InvalidField("version")),
        }
        if !have_id {
            return Err(ContentError::MissingTerminalId);
        }
        check_limits(&h)?;
        Ok(h)
    }

    /// An NDEF message with one handover record, for writing to a tag or answering an NFC read.
    pub fn to_ndef(&self, kind: NdefRecordKind) -> Result<Vec<u8>, ContentError> {
        let (tnf, record_type) = match kind {
            NdefRecordKind::Mime => (Tnf::Mime, MIME_TYPE),
            NdefRecordKind::External => (Tnf::External, EXTERNAL_TYPE),
        };
        Ok(encode_ndef_message(&[NdefRecord {
            tnf,
            record_type: record_type.as_bytes().to_vec(),
            id: Vec::new(),
            payload: self.to_payload()?,
        }]))
    }

    /// Reads the first handover record of an NDEF message (other records, such as an Android
    /// application record, are skipped).
    pub fn from_ndef(bytes: &[u8]) -> Result<Self, NdefError> {
        let records = parse_ndef_message(bytes)?;
        let record = records
            .iter()
            .find(|r| {
                // MIME and external types compare case-insensitively.
                (r.tnf == Tnf::Mime && r.record_type.eq_ignore_ascii_case(MIME_TYPE.as_bytes()))
                    || (r.tnf == Tnf::External
                        && r.record_type.eq_ignore_ascii_case(EXTERNAL_TYPE.as_bytes()))
            })
            .ok_or(NdefError::NoHandoverRecord)?;
        Ok(Self::from_payload(&record.payload)?)
    }
}
