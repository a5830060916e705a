//! A till's journal changes on their way to a back office.
//!
//! Every change of a journal entry and every settlement gets a sequence number in the journal's
//! outbox, in the transaction that makes it (`posbridge_journal::SqliteJournal::outbox`). An
//! uploader (feature `uploader`) ships the changes after the shipped mark as an [`Upload`],
//! signed by the till's Ed25519 key, and moves the mark only once the back office answered with
//! an [`Ack`] saying it committed them. A crash anywhere ships some changes again; the back
//! office keys every change by (till, journal, sequence number) and ignores what it has, so
//! nothing is lost and nothing is counted twice.
//!
//! The format (`docs/backoffice.md`): a JSON object, bytes in base64 (standard alphabet, padded),
//! ids in hex. The request carries the till's id in [`TILL_HEADER`] and the signature over the
//! body in [`SIGNATURE_HEADER`]; the journal's identity is part of the key, so a journal made
//! anew after a loss (numbering from 1 again) never collides with the one it replaces.

#[cfg(feature = "uploader")]
mod uploader;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use posbridge_crypto::{SigningIdentity, Verifier};
use posbridge_journal::{OutboxItem, OutboxRecord};
use posbridge_wire::PublicKey;
use serde::{Deserialize, Serialize};

#[cfg(feature = "uploader")]
pub use uploader::{HttpSink, Sink, SinkError, UploadReport, Uploader, UploaderConfig};

/// The HTTP header that names the till (32 hex digits).
pub const TILL_HEADER: &str = "posbridge-till";
/// The HTTP header with the till's signature over the body (128 hex digits).
pub const SIGNATURE_HEADER: &str = "posbridge-signature";
/// The path the back office takes uploads on.
pub const UPLOAD_PATH: &str = "/v1/upload";
/// The format's version, in every upload.
pub const VERSION: u32 = 1;

/// What went wrong with an upload's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncError {
    /// The body is not an upload of this format: where and why.
    Malformed(String),
    /// The format's version is not one this side reads.
    Version(u32),
    /// A header is missing or not hex of the right length.
    Header(&'static str),
    /// The signature does not verify under the till's key (or the key is malformed).
    Signature,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "not a posbridge upload: {why}"),
            Self::Version(v) => write!(
                f,
                "upload format version {v} is not read here (this side reads {VERSION})"
            ),
            Self::Header(h) => write!(f, "header {h} is missing or malformed"),
            Self::Signature => f.write_str("the upload's signature does not verify"),
        }
    }
}

impl std::error::Error for SyncError {}

/// A batch of a till's journal changes, in sequence order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The till (its posbridge identity's id).
    pub till: [u8; 16],
    /// The journal's identity (`SqliteJournal::identity`).
    pub journal: [u8; 16],
    /// The changes.
    pub records: Vec<OutboxRecord>,
}

/// The back office's answer: what it committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Every change of the upload up to this sequence number is committed (the uploader may
    /// acknowledge it in the journal).
    pub committed_through: u64,
    /// Changes stored now.
    pub accepted: u64,
    /// Changes it had already (a resend after a crash).
    pub duplicates: u64,
    /// Changes stored in quarantine: damaged or forged (a signature that does not verify).
    pub quarantined: u64,
}

impl Ack {
    /// The JSON sent back.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an ack serialises")
    }

    /// Reads an ack.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SyncError> {
        serde_json::from_slice(bytes).map_err(|e| SyncError::Malformed(format!("ack: {e}")))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireUpload {
    version: u32,
    till: String,
    journal: String,
    records: Vec<WireRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord {
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry: Option<WireEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settlement: Option<WireSettlement>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    key: String,
    terminal: String,
    state: String,
    request: String,
    result: Option<String>,
    terminal_key: Option<String>,
    note: Option<String>,
    created: u64,
    updated: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSettlement {
    key: String,
    terminal: String,
    result: String,
    terminal_key: Option<String>,
    recorded: u64,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Bytes of hex text (either case); `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn id16(text: &str, what: &str) -> Result<[u8; 16], SyncError> {
    unhex(text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SyncError::Malformed(format!("{what}: 32 hex digits expected")))
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(text: &str, at: &str) -> Result<Vec<u8>, SyncError> {
    B64.decode(text)
        .map_err(|e| SyncError::Malformed(format!("{at}: not base64: {e}")))
}

impl Upload {
    /// The body as sent.
    pub fn to_json(&self) -> Vec<u8> {
        let records = self
            .records
            .iter()
            .map(|r| match &r.item {
                OutboxItem::Entry {
                    key,
                    terminal,
                    state,
                    request,
                    result,
                    terminal_key,
                    note,
                    created,
                    updated,
                } => WireRecord {
                    seq: r.seq,
                    entry: Some(WireEntry {
                        key: hex(key),
                        terminal: hex(terminal),
                        state: state.clone(),
                        request: b64(request),
                        result: result.as_deref().map(b64),
                        terminal_key: terminal_key.as_deref().map(hex),
                        note: note.clone(),
                        created: *created,
                        updated: *updated,
                    }),
                    settlement: None,
                },
                OutboxItem::Settlement {
                    key,
                    terminal,
                    result,
                    terminal_key,
                    recorded,
                } => WireRecord {
                    seq: r.seq,
                    entry: None,
                    settlement: Some(WireSettlement {
                        key: hex(key),
                        terminal: hex(terminal),
                        result: b64(result),
                        terminal_key: terminal_key.as_deref().map(hex),
                        recorded: *recorded,
                    }),
                },
            })
            .collect();
        serde_json::to_vec(&WireUpload {
            version: VERSION,
            till: hex(&self.till),
            journal: hex(&self.journal),
            records,
        })
        .expect("an upload serialises")
    }

    /// Reads a body. Ids and bytes must be well formed; what they hold (a request, a result) is
    /// the receiver's to check, record by record.
    pub fn from_json(body: &[u8]) -> Result<Self, SyncError> {
        let wire: WireUpload =
            serde_json::from_slice(body).map_err(|e| SyncError::Malformed(e.to_string()))?;
        if wire.version != VERSION {
            return Err(SyncError::Version(wire.version));
        }
        let mut records = Vec::with_capacity(wire.records.len());
        let mut last = 0;
        for (i, r) in wire.records.into_iter().enumerate() {
            let at = format!("records[{i}]");
            if r.seq <= last {
                return Err(SyncError::Malformed(format!(
                    "{at}: sequence numbers must rise ({} after {last})",
                    r.seq
                )));
            }
            last = r.seq;
            let item = match (r.entry, r.settlement) {
                (Some(e), None) => OutboxItem::Entry {
                    key: id16(&e.key, &format!("{at}.entry.key"))?.to_vec(),
                    terminal: id16(&e.terminal, &format!("{at}.entry.terminal"))?.to_vec(),
                    state: e.state,
                    request: unb64(&e.request, &format!("{at}.entry.request"))?,
                    result: e
                        .result
                        .map(|x| unb64(&x, &format!("{at}.entry.result")))
                        .transpose()?,
                    terminal_key: e
                        .terminal_key
                        .map(|k| {
                            unhex(&k).ok_or_else(|| {
                                SyncError::Malformed(format!("{at}.entry.terminal_key: not hex"))
                            })
                        })
                        .transpose()?,
                    note: e.note,
                    created: e.created,
                    updated: e.updated,
                },
                (None, Some(s)) => OutboxItem::Settlement {
                    key: id16(&s.key, &format!("{at}.settlement.key"))?.to_vec(),
                    terminal: id16(&s.terminal, &format!("{at}.settlement.terminal"))?.to_vec(),
                    result: unb64(&s.result, &format!("{at}.settlement.result"))?,
                    terminal_key: s
                        .terminal_key
                        .map(|k| {
                            unhex(&k).ok_or_else(|| {
                                SyncError::Malformed(format!(
                                    "{at}.settlement.terminal_key: not hex"
                                ))
                            })
                        })
                        .transpose()?,
                    recorded: s.recorded,
                },
                _ => {
                    return Err(SyncError::Malformed(format!(
                        "{at}: exactly one of entry and settlement"
                    )));
                }
            };
            records.push(OutboxRecord { seq: r.seq, item });
        }
        Ok(Self {
            till: id16(&wire.till, "till")?,
            journal: id16(&wire.journal, "journal")?,
            records,
        })
    }
}

/// The signature header's value for `body`, by the till's key.
pub fn sign(identity: &SigningIdentity, body: &[u8]) -> String {
    hex(&identity.sign_upload(body))
}

/// Checks the signature header's value over `body` against the till's public key.
pub fn verify(key: &PublicKey, body: &[u8], signature: &str) -> Result<(), SyncError> {
    let signature: [u8; 64] = unhex(signature)
        .and_then(|b| b.try_into().ok())
        .ok_or(SyncError::Header(SIGNATURE_HEADER))?;
    Verifier::new(key)
        .map_err(|_| SyncError::Signature)?
        .verify_upload(body, &signature)
        .map_err(|_| SyncError::Signature)
}

/// The till header's value, read.
pub fn till_of(header: &str) -> Result<[u8; 16], SyncError> {
    unhex(header)
        .and_then(|b| b.try_into().ok())
        .ok_or(SyncError::Header(TILL_HEADER))
}
