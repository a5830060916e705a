//! Protocol 1.1: software updates — an image offered with its signature, sent in chunks,
//! resumable after a disconnect, verified before it is applied.

use alloc::string::String;
use alloc::vec::Vec;

use super::common::limits;
use crate::error::MessageEncodeError;
use crate::tlv::{DecResult, EncResult, Reader, Slot, Tlv, Writer, key};
use crate::types::RequestId;

/// The largest image, in bytes (64 MiB).
pub const MAX_UPDATE_SIZE: u32 = 64 << 20;
/// The largest chunk, in bytes (it travels in one frame of the default size).
pub const UPDATE_CHUNK: u16 = 2048;

const REQUEST_ID: u8 = key(1, true);

/// What an update image is, as its publisher signed it: the terminal checks the signature with
/// the update key it trusts before it takes a byte, and the image's SHA-256 before it applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateManifest {
    /// The version the image installs ("2.5.0").
    pub version: String,
    /// The image's size in bytes (1 to [`MAX_UPDATE_SIZE`]).
    pub size: u32,
    /// The image's SHA-256.
    pub digest: [u8; 32],
    /// The publisher's Ed25519 signature over the manifest (docs/security.md).
    pub signature: [u8; 64],
}

/// Client → terminal (1.1): an update to install. Answered by an [`UpdateStatus`]: ready from an
/// offset (0, or where an interrupted transfer of the same image stopped), or refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateOffer {
    /// This request's id.
    pub request_id: RequestId,
    /// The image's manifest.
    pub manifest: UpdateManifest,
}

mod offer {
    use super::key;
    pub(super) const VERSION: u8 = key(2, false);
    pub(super) const SIZE: u8 = key(3, true);
    pub(super) const DIGEST: u8 = key(4, true);
    pub(super) const SIGNATURE: u8 = key(5, true);
}

impl Tlv for UpdateOffer {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use offer::*;
        let m = &self.manifest;
        if !(1..=MAX_UPDATE_SIZE).contains(&m.size) {
            return Err(MessageEncodeError::InvalidValue { key: SIZE });
        }
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.text(VERSION, &m.version, limits::NAME)?;
        w.uint(SIZE, m.size.into());
        w.bytes(DIGEST, &m.digest, 32)?;
        w.bytes(SIGNATURE, &m.signature, 64)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use offer::*;
        let (mut id, mut version, mut size, mut digest, mut signature) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                VERSION => version.set(&f, f.text(limits::NAME))?,
                SIZE => size.set(&f, {
                    let v = f.u32()?;
                    f.check(v, |v| (1..=MAX_UPDATE_SIZE).contains(v))
                })?,
                DIGEST => digest.set(&f, f.array())?,
                SIGNATURE => signature.set(&f, f.array())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            manifest: UpdateManifest {
                version: version.required(VERSION, r)?,
                size: size.required(SIZE, r)?,
                digest: digest.required(DIGEST, r)?,
                signature: signature.required(SIGNATURE, r)?,
            },
        })
    }
}

/// Client → terminal (1.1): bytes of the offered image (named by its digest) from `offset`.
/// Answered by an [`UpdateStatus`]: ready for the next offset, or — after the last byte — what
/// came of the check and the installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateChunk {
    /// This request's id.
    pub request_id: RequestId,
    /// The image's SHA-256, as offered.
    pub digest: [u8; 32],
    /// Where these bytes go in the image.
    pub offset: u32,
    /// The bytes (1 to [`UPDATE_CHUNK`]).
    pub data: Vec<u8>,
}

mod chunk {
    use super::key;
    pub(super) const DIGEST: u8 = key(2, true);
    pub(super) const OFFSET: u8 = key(3, true);
    pub(super) const DATA: u8 = key(4, true);
}

impl Tlv for UpdateChunk {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use chunk::*;
        if self.data.is_empty() {
            return Err(MessageEncodeError::InvalidValue { key: DATA });
        }
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.bytes(DIGEST, &self.digest, 32)?;
        w.uint(OFFSET, self.offset.into());
        w.bytes(DATA, &self.data, UPDATE_CHUNK)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use chunk::*;
        let (mut id, mut digest, mut offset, mut data) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                DIGEST => digest.set(&f, f.array())?,
                OFFSET => offset.set(&f, f.u32())?,
                DATA => data.set(&f, {
                    let v = f.bytes(UPDATE_CHUNK)?;
                    f.check(v, |v| !v.is_empty())
                })?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            digest: digest.required(DIGEST, r)?,
            offset: offset.required(OFFSET, r)?,
            data: data.required(DATA, r)?,
        })
    }
}

/// Why a terminal will not take or install an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UpdateRefusal {
    /// The signature does not verify with the update key the terminal trusts (or it trusts
    /// none).
    Untrusted = 1,
    /// The battery is below the terminal's threshold and not charging.
    BatteryLow = 2,
    /// A payment is running.
    PaymentRunning = 3,
    /// The image is already installed.
    AlreadyInstalled = 4,
    /// No such image was offered (a chunk of an image the terminal does not hold).
    NotOffered = 5,
    /// The image's bytes do not match its signed digest: nothing was installed, the bytes were
    /// dropped; offer it again.
    DigestMismatch = 6,
    /// Installing failed; the terminal runs the version it ran before.
    InstallFailed = 7,
    /// The image's version is older than the one running (both dotted numbers, compared number
    /// by number): a downgrade.
    Older = 8,
}

impl UpdateRefusal {
    const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Untrusted,
            2 => Self::BatteryLow,
            3 => Self::PaymentRunning,
            4 => Self::AlreadyInstalled,
            5 => Self::NotOffered,
            6 => Self::DigestMismatch,
            7 => Self::InstallFailed,
            8 => Self::Older,
            _ => return None,
        })
    }
}

/// Where an update stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateState {
    /// Send the bytes from `offset` on (the progress: `offset` of the image's size).
    Ready {
        /// The next byte the terminal needs.
        offset: u32,
    },
    /// Installed: the terminal restarts running `version`.
    Installed {
        /// The version now.
        version: String,
    },
    /// Not taken, or not installed.
    Refused(UpdateRefusal),
}

/// Terminal → client (1.1): the answer to an [`UpdateOffer`] or an [`UpdateChunk`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateStatus {
    /// The request answered.
    pub request_id: RequestId,
    /// Where the update stands.
    pub state: UpdateState,
}

mod status {
    use super::key;
    pub(super) const STATE: u8 = key(2, true);
    pub(super) const OFFSET: u8 = key(3, true);
    pub(super) const VERSION: u8 = key(4, false);
    pub(super) const REASON: u8 = key(5, true);
}

impl Tlv for UpdateStatus {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use status::*;
        w.id(REQUEST_ID, self.request_id.as_bytes());
        match &self.state {
            UpdateState::Ready { offset } => {
                w.uint(STATE, 1);
                w.uint(OFFSET, (*offset).into());
            }
            UpdateState::Installed { version } => {
                w.uint(STATE, 2);
                w.text(VERSION, version, limits::NAME)?;
            }
            UpdateState::Refused(reason) => {
                w.uint(STATE, 3);
                w.uint(REASON, *reason as u64);
            }
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use status::*;
        let (mut id, mut state, mut offset, mut version, mut reason) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                STATE => state.set(&f, f.code(|c| (1..=3).contains(&c).then_some(c)))?,
                OFFSET => offset.set(&f, f.u32())?,
                VERSION => version.set(&f, f.text(limits::NAME))?,
                REASON => reason.set(&f, f.code(UpdateRefusal::from_code))?,
                _ => f.unknown()?,
            }
        }
        let stray = [
            (offset.is_some(), offset.invalid(OFFSET)),
            (version.is_some(), version.invalid(VERSION)),
            (reason.is_some(), reason.invalid(REASON)),
        ];
        let code = state.required(STATE, r)?;
        for (i, (present, e)) in stray.into_iter().enumerate() {
            if present && i + 1 != usize::from(code) {
                return Err(e);
            }
        }
        let state = match code {
            1 => UpdateState::Ready {
                offset: offset.required(OFFSET, r)?,
            },
            2 => UpdateState::Installed {
                version: version.required(VERSION, r)?,
            },
            _ => UpdateState::Refused(reason.required(REASON, r)?),
        };
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            state,
        })
    }
}
