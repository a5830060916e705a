//! Persistent identities and pairing records: a small versioned binary format kept in a
//! [`KeyStore`].
//!
//! | record | layout |
//! |---|---|
//! | identity | `PBID`, version, id (16), X25519 secret (32), X25519 public (32), Ed25519 secret (32), name length (1), name, checksum (32, version 2) |
//! | pairing | `PBPR`, version, peer role (1: client, 2: terminal), paired at (8, ms since the Unix epoch, big-endian), peer id (16), X25519 public (32), Ed25519 public (32), name length (1), name, checksum (32, version 2) |
//!
//! Version 2 (written since) ends with a checksum: SHA-256 over `posbridge/key-record/v2`, a zero
//! byte and every byte before the checksum. A record whose checksum does not match was damaged
//! on disk — a flipped bit in a secret key would otherwise go unnoticed until the keys fail in a
//! handshake, or sign results nobody can verify — and is refused with [`RecordError::Corrupt`].
//! Version 1 records (no checksum) are still read. A record of a newer version is refused with
//! [`RecordError::UnsupportedVersion`] rather than misread.

use std::fmt;

use posbridge_wire::Timestamp;
use zeroize::Zeroizing;

use crate::pairing::ByteReader;
use crate::{
    KeyStore, KeyStoreError, LocalIdentity, PairingError, PairingRecord, PeerId, PeerKeys, Role,
    Secret, SigningIdentity, StaticKeypair,
};

const IDENTITY_MAGIC: &[u8; 4] = b"PBID";
const RECORD_MAGIC: &[u8; 4] = b"PBPR";
const FORMAT_VERSION: u8 = 2;
/// Records before checksums; still read.
const FORMAT_V1: u8 = 1;
const CHECKSUM_DOMAIN: &[u8] = b"posbridge/key-record/v2\0";
/// The key-store name of this side's identity.
pub const IDENTITY_NAME: &str = "identity";
const RECORD_PREFIX: &str = "pairing-";

/// Why a stored identity or pairing record could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a record of this kind (wrong magic bytes).
    NotARecord,
    /// Written by a newer posbridge.
    UnsupportedVersion(u8),
    /// Damaged.
    Corrupt(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARecord => f.write_str("not a posbridge key record"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "key record version {v} is newer than this posbridge ({FORMAT_VERSION}); update it"
            ),
            Self::Corrupt(why) => write!(f, "key record is damaged: {why}"),
        }
    }
}

impl std::error::Error for RecordError {}

fn checksum(body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(CHECKSUM_DOMAIN);
    h.update(body);
    h.finalize().into()
}

/// Appends the checksum of everything in `out` (a version-2 record).
fn seal(out: &mut Vec<u8>) {
    let sum = checksum(out);
    out.extend_from_slice(&sum);
}

/// Checks the magic and version, and a version-2 record's checksum; returns a reader over the
/// fields (without the checksum).
fn header<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Result<ByteReader<'a>, RecordError> {
    let mut r = ByteReader(bytes);
    if r.take(4).map_err(|_| RecordError::NotARecord)? != magic {
        return Err(RecordError::NotARecord);
    }
    match r.u8().map_err(RecordError::Corrupt)? {
        FORMAT_V1 => Ok(r),
        FORMAT_VERSION => {
            let Some(split) = bytes.len().checked_sub(32).filter(|&n| n >= 5) else {
                return Err(RecordError::Corrupt("too short for its checksum"));
            };
            let (body, sum) = bytes.split_at(split);
            // Not secret-dependent timing worth hiding: the checksum is of the file's own bytes.
            if checksum(body) != sum {
                return Err(RecordError::Corrupt(
                    "its checksum does not match (the file changed on disk)",
                ));
            }
            Ok(ByteReader(&body[5..]))
        }
        v => Err(RecordError::UnsupportedVersion(v)),
    }
}

impl LocalIdentity {
    /// The stored form (secret: keep it in a [`KeyStore`]).
    pub fn to_secret(&self) -> Secret {
        let mut out = Zeroizing::new(Vec::with_capacity(190));
        out.extend_from_slice(IDENTITY_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.id().0);
        out.extend_from_slice(self.channel().secret());
        out.extend_from_slice(&self.channel().public());
        out.extend_from_slice(self.signing().to_secret().as_ref());
        out.push(self.name().len() as u8);
        out.extend_from_slice(self.name().as_bytes());
        seal(&mut out);
        Secret::new(std::mem::take(&mut *out))
    }

    /// Reads the stored form.
    pub fn from_secret(stored: &Secret) -> Result<Self, RecordError> {
        let mut r = header(stored.expose(), IDENTITY_MAGIC)?;
        let c = RecordError::Corrupt;
        let id = PeerId(r.array().map_err(c)?);
        let channel_secret = Zeroizing::new(r.array::<32>().map_err(c)?);
        let channel_public = r.array::<32>().map_err(c)?;
        let signing_secret = Zeroizing::new(r.array::<32>().map_err(c)?);
        let len = r.u8().map_err(c)? as usize;
        let name = std::str::from_utf8(r.take(len).map_err(c)?)
            .map_err(|_| c("name is not UTF-8"))?
            .to_string();
        r.end().map_err(c)?;
        Ok(Self::from_parts(
            id,
            &name,
            StaticKeypair::from_parts(*channel_secret, channel_public),
            SigningIdentity::from_secret(&signing_secret),
        ))
    }
}

impl PairingRecord {
    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(140 + self.peer.name.len());
        out.extend_from_slice(RECORD_MAGIC);
        out.push(FORMAT_VERSION);
        out.push(match self.peer_role {
            Role::Client => 1,
            Role::Terminal => 2,
        });
        out.extend_from_slice(&self.paired_at.0.to_be_bytes());
        out.extend_from_slice(&self.peer.id.0);
        out.extend_from_slice(&self.peer.channel_key);
        out.extend_from_slice(&self.peer.signing_key.0);
        out.push(self.peer.name.len() as u8);
        out.extend_from_slice(self.peer.name.as_bytes());
        seal(&mut out);
        out
    }

    /// Reads the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = header(bytes, RECORD_MAGIC)?;
        let c = RecordError::Corrupt;
        let peer_role = match r.u8().map_err(c)? {
            1 => Role::Client,
            2 => Role::Terminal,
            _ => return Err(c("unknown peer role")),
        };
        let paired_at = Timestamp(u64::from_be_bytes(r.array().map_err(c)?));
        let peer = PeerKeys::decode(&mut r).map_err(c)?;
        r.end().map_err(c)?;
        Ok(Self {
            peer,
            peer_role,
            paired_at,
        })
    }
}

/// Why loading or saving pairings failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PairingStoreError {
    /// The key store failed.
    Store(KeyStoreError),
    /// Making a new identity failed.
    Generate(PairingError),
    /// A stored entry could not be read.
    Record {
        /// The entry's name in the store.
        name: String,
        /// What is wrong with it.
        error: RecordError,
    },
}

impl fmt::Display for PairingStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => e.fmt(f),
            Self::Generate(e) => write!(f, "making a new identity: {e}"),
            Self::Record { name, error } => write!(f, "key store entry {name:?}: {error}"),
        }
    }
}

impl std::error::Error for PairingStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Generate(e) => Some(e),
            Self::Record { error, .. } => Some(error),
        }
    }
}

impl From<KeyStoreError> for PairingStoreError {
    fn from(e: KeyStoreError) -> Self {
        Self::Store(e)
    }
}

/// This side's identity and its pairings, kept in a [`KeyStore`]: the identity under
/// [`IDENTITY_NAME`], each pairing under `pairing-<peer id in hex>`.
///
/// ```
/// use posbridge_crypto::{MemoryKeyStore, PairingStore, PeerId};
///
/// let store = PairingStore::new(MemoryKeyStore::new());
/// let me = store.identity_or_generate(PeerId([7; 16]), "Till 2")?;
/// // The same keys on the next start.
/// let again = store.identity_or_generate(PeerId([8; 16]), "ignored")?;
/// assert_eq!(me.public_keys(), again.public_keys());
/// assert!(store.records()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PairingStore<S> {
    store: S,
}

fn record_name(id: &PeerId) -> String {
    format!("{RECORD_PREFIX}{id}")
}

impl<S: KeyStore> PairingStore<S> {
    /// Pairings in `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stored identity, if any.
    pub fn identity(&self) -> Result<Option<LocalIdentity>, PairingStoreError> {
        let Some(secret) = self.store.load(IDENTITY_NAME)? else {
            return Ok(None);
        };
        LocalIdentity::from_secret(&secret)
            .map(Some)
            .map_err(|error| PairingStoreError::Record {
                name: IDENTITY_NAME.to_string(),
                error,
            })
    }

    /// The stored identity, or a new one (with the id `id` and the display name `name`), stored
    /// before it is returned. A damaged identity is an error, never silently replaced: replacing
    /// it would break every pairing.
    pub fn identity_or_generate(
        &self,
        id: PeerId,
        name: &str,
    ) -> Result<LocalIdentity, PairingStoreError> {
        if let Some(identity) = self.identity()? {
            return Ok(identity);
        }
        let identity = LocalIdentity::generate(id, name).map_err(PairingStoreError::Generate)?;
        self.store.store(IDENTITY_NAME, &identity.to_secret())?;
        Ok(identity)
    }

    /// Stores `record`, replacing an earlier pairing with the same peer.
    pub fn save(&self, record: &PairingRecord) -> Result<(), PairingStoreError> {
        self.store.store(
            &record_name(&record.peer.id),
            &Secret::new(record.to_bytes()),
        )?;
        Ok(())
    }

    /// The pairing with `peer`, if any.
    pub fn get(&self, peer: &PeerId) -> Result<Option<PairingRecord>, PairingStoreError> {
        let name = record_name(peer);
        let Some(bytes) = self.store.load(&name)? else {
            return Ok(None);
        };
        PairingRecord::from_bytes(bytes.expose())
            .map(Some)
            .map_err(|error| PairingStoreError::Record { name, error })
    }

    /// Every pairing, by peer id.
    pub fn records(&self) -> Result<Vec<PairingRecord>, PairingStoreError> {
        let mut out = Vec::new();
        for name in self.store.names()? {
            if !name.starts_with(RECORD_PREFIX) {
                continue;
            }
            if let Some(bytes) = self.store.load(&name)? {
                out.push(
                    PairingRecord::from_bytes(bytes.expose())
                        .map_err(|error| PairingStoreError::Record { name, error })?,
                );
            }
        }
        Ok(out)
    }

    /// The pairing whose peer holds the channel key `key` (what the secure channel's `respond`
    /// asks about a connecting client).
    pub fn find_by_channel_key(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<PairingRecord>, PairingStoreError> {
        Ok(self
            .records()?
            .into_iter()
            .find(|r| &r.peer.channel_key == key))
    }

    /// Revokes the pairing with `peer`: its channel handshakes are refused from now on. Returns
    /// whether there was one.
    pub fn revoke(&self, peer: &PeerId) -> Result<bool, PairingStoreError> {
        Ok(self.store.delete(&record_name(peer))?)
    }
}
