//! Adyen's encryption of local Terminal API messages (crypto version 1): the `NexoBlob` and its
//! `SecurityTrailer`.
//!
//! From the shared key's passphrase, PBKDF2-HMAC-SHA1 (salt `AdyenNexoV1Salt`, 4000 rounds)
//! derives 80 bytes: the HMAC key (bytes 0–31), the cipher key (32–63) and an IV (64–79). Each
//! message gets a fresh random 16-byte nonce; the whole message (`{"SaleToPOIRequest": …}` as
//! JSON) is encrypted with AES-256-CBC and PKCS#7 under the cipher key and the IV xor the nonce,
//! and authenticated with HMAC-SHA256 of the plaintext under the HMAC key. On the wire the
//! header goes in the clear beside `NexoBlob` (base64 of the ciphertext) and the trailer
//! (`AdyenCryptoVersion` 1, `KeyIdentifier`, `KeyVersion`, `Nonce`, `Hmac`).
//!
//! Opening checks the key identifier and version first (a [`SecurityError::UnknownKey`] names
//! them), then the MAC in constant time ([`SecurityError::Mac`]: a wrong passphrase or a damaged
//! message — nothing of the plaintext is revealed either way), then that the header inside
//! matches the clear copy. Derived keys are zeroised when dropped.

use std::fmt;

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{self, DecodeError, Envelope, Message, Sealed, SecurityTrailer};

/// The PBKDF2 salt of crypto version 1.
pub const SALT: &[u8] = b"AdyenNexoV1Salt";
/// The PBKDF2 rounds of crypto version 1.
pub const ROUNDS: u32 = 4000;
/// The crypto version this module speaks.
pub const CRYPTO_VERSION: u32 = 1;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// A shared key: its identifier and version as configured on the terminal, and the keys derived
/// from its passphrase (the passphrase itself is not kept).
#[derive(Clone)]
pub struct SecurityKey {
    identifier: String,
    version: u32,
    hmac_key: [u8; 32],
    cipher_key: [u8; 32],
    iv: [u8; 16],
}

impl Drop for SecurityKey {
    fn drop(&mut self) {
        self.hmac_key.zeroize();
        self.cipher_key.zeroize();
        self.iv.zeroize();
    }
}

impl fmt::Debug for SecurityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityKey")
            .field("identifier", &self.identifier)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Why a message could not be sealed or opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecurityError {
    /// The message names a key this side does not have (or another version of it).
    UnknownKey {
        /// The `KeyIdentifier` the message names.
        identifier: String,
        /// Its `KeyVersion`.
        version: u32,
    },
    /// A crypto version other than 1.
    UnsupportedVersion(u32),
    /// The MAC does not match: a wrong passphrase, or the message was damaged or forged.
    Mac,
    /// The trailer or blob is malformed (not base64, a nonce that is not 16 bytes, a
    /// ciphertext that is not whole blocks or has bad padding — only ever after the MAC check
    /// could not be reached).
    Malformed(&'static str),
    /// The decrypted message is not a valid message.
    Inner(DecodeError),
    /// The header inside differs from the clear copy.
    HeaderMismatch,
    /// A message in the clear arrived where only sealed ones are accepted.
    NotSealed,
    /// The system's random source failed.
    Random,
}

impl fmt::Display for SecurityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey {
                identifier,
                version,
            } => write!(
                f,
                "the message is encrypted under key {identifier:?} version {version}, which is not configured here"
            ),
            Self::UnsupportedVersion(v) => {
                write!(f, "Adyen crypto version {v} is not supported (only 1)")
            }
            Self::Mac => f.write_str(
                "the message's HMAC does not match: the passphrase differs, or the message was damaged",
            ),
            Self::Malformed(what) => write!(f, "malformed encrypted message: {what}"),
            Self::Inner(e) => write!(f, "the decrypted message is not valid: {e}"),
            Self::HeaderMismatch => {
                f.write_str("the header inside the encrypted message differs from the clear one")
            }
            Self::NotSealed => f.write_str("an unencrypted message where encryption is required"),
            Self::Random => f.write_str("the system's random source failed"),
        }
    }
}

impl std::error::Error for SecurityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Inner(e) => Some(e),
            _ => None,
        }
    }
}

impl SecurityKey {
    /// Derives the keys of `passphrase` for key `identifier`, `version` (4000 rounds of
    /// PBKDF2-HMAC-SHA1: about a millisecond; derive once and keep the key).
    pub fn derive(identifier: impl Into<String>, version: u32, passphrase: &[u8]) -> Self {
        let mut material = Zeroizing::new([0u8; 80]);
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(passphrase, SALT, ROUNDS, &mut *material);
        let mut key = Self {
            identifier: identifier.into(),
            version,
            hmac_key: [0; 32],
            cipher_key: [0; 32],
            iv: [0; 16],
        };
        key.hmac_key.copy_from_slice(&material[..32]);
        key.cipher_key.copy_from_slice(&material[32..64]);
        key.iv.copy_from_slice(&material[64..80]);
        key
    }

    /// The key identifier.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }

    fn mac(&self, plaintext: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key).expect("any key length");
        mac.update(plaintext);
        mac.finalize().into_bytes().into()
    }

    fn iv_for(&self, nonce: &[u8; 16]) -> Zeroizing<[u8; 16]> {
        let mut iv = Zeroizing::new(self.iv);
        for (b, n) in iv.iter_mut().zip(nonce) {
            *b ^= n;
        }
        iv
    }

    /// Seals `message` with a fresh random nonce.
    pub fn seal(&self, message: &Message) -> Result<Sealed, SecurityError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|_| SecurityError::Random)?;
        Ok(self.seal_with_nonce(message, nonce))
    }

    /// Seals `message` with `nonce` (for known-answer tests; use [`seal`](Self::seal)).
    pub fn seal_with_nonce(&self, message: &Message, nonce: [u8; 16]) -> Sealed {
        let plaintext = Zeroizing::new(codec::encode(&Envelope::Clear(message.clone())));
        let iv = self.iv_for(&nonce);
        let ciphertext = Aes256CbcEnc::new(&self.cipher_key.into(), &(*iv).into())
            .encrypt_padded_vec_mut::<Pkcs7>(&plaintext);
        Sealed {
            direction: message.direction,
            header: message.header.clone(),
            blob: B64.encode(ciphertext),
            trailer: SecurityTrailer {
                crypto_version: CRYPTO_VERSION,
                key_identifier: self.identifier.clone(),
                key_version: self.version,
                nonce: B64.encode(nonce),
                hmac: B64.encode(self.mac(&plaintext)),
            },
        }
    }

    /// Opens a sealed message: the key named, the MAC, then the message inside.
    pub fn open(&self, sealed: &Sealed) -> Result<Message, SecurityError> {
        let t = &sealed.trailer;
        if t.crypto_version != CRYPTO_VERSION {
            return Err(SecurityError::UnsupportedVersion(t.crypto_version));
        }
        if t.key_identifier != self.identifier || t.key_version != self.version {
            return Err(SecurityError::UnknownKey {
                identifier: t.key_identifier.clone(),
                version: t.key_version,
            });
        }
        let nonce: [u8; 16] = B64
            .decode(&t.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SecurityError::Malformed(
                "the nonce is not 16 bytes of base64",
            ))?;
        let hmac: [u8; 32] = B64
            .decode(&t.hmac)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SecurityError::Malformed(
                "the HMAC is not 32 bytes of base64",
            ))?;
        let ciphertext = B64
            .decode(&sealed.blob)
            .map_err(|_| SecurityError::Malformed("the NexoBlob is not base64"))?;
        let iv = self.iv_for(&nonce);
        // A wrong key gives garbage or bad padding: either way the MAC decides, so that a
        // padding error tells nothing the MAC would not.
        let plaintext = Zeroizing::new(
            Aes256CbcDec::new(&self.cipher_key.into(), &(*iv).into())
                .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
                .unwrap_or_default(),
        );
        let expected = self.mac(&plaintext);
        if !bool::from(expected.ct_eq(&hmac)) || plaintext.is_empty() {
            return Err(SecurityError::Mac);
        }
        let inner = match codec::decode(&plaintext).map_err(SecurityError::Inner)? {
            Envelope::Clear(m) => m,
            Envelope::Sealed(_) => {
                return Err(SecurityError::Malformed(
                    "a sealed message inside a sealed one",
                ));
            }
        };
        if inner.direction != sealed.direction || inner.header != sealed.header {
            return Err(SecurityError::HeaderMismatch);
        }
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Envelope;

    fn sale() -> Message {
        let text = r#"{"SaleToPOIRequest":{"MessageHeader":{"ProtocolVersion":"3.0","MessageClass":"Service","MessageCategory":"Payment","MessageType":"Request","ServiceID":"4711","SaleID":"till-1","POIID":"P1"},"PaymentRequest":{"SaleData":{"SaleTransactionID":{"TransactionID":"27908","TimeStamp":"2026-12-04T09:30:00.000Z"}},"PaymentTransaction":{"AmountsReq":{"Currency":"EUR","RequestedAmount":10.99}}}}}"#;
        match codec::decode(text.as_bytes()).unwrap() {
            Envelope::Clear(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_derived_keys_are_pbkdf2_sha1_of_the_passphrase() {
        // PBKDF2-HMAC-SHA1 is checked against RFC 6070's first vector through the same call.
        let mut out = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"password", b"salt", 1, &mut out);
        assert_eq!(
            out,
            [
                0x0c, 0x60, 0xc8, 0x0f, 0x96, 0x1f, 0x0e, 0x71, 0xf3, 0xa9, 0xb5, 0x24, 0xaf, 0x60,
                0x12, 0x06, 0x2f, 0xe0, 0x37, 0xa6
            ]
        );
        let key = SecurityKey::derive("k", 1, b"passphrase");
        let mut whole = [0u8; 80];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(b"passphrase", SALT, ROUNDS, &mut whole);
        assert_eq!(key.hmac_key, whole[..32]);
        assert_eq!(key.cipher_key, whole[32..64]);
        assert_eq!(key.iv, whole[64..]);
    }

    #[test]
    fn sealed_messages_open_and_wrong_keys_are_told_apart() {
        let key = SecurityKey::derive("mykey", 2, b"correct horse");
        let sealed = key.seal(&sale()).unwrap();
        // On the wire and back.
        let bytes = codec::encode(&Envelope::Sealed(sealed.clone()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"NexoBlob\"") && !text.contains("RequestedAmount"));
        let Envelope::Sealed(back) = codec::decode(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(key.open(&back).unwrap(), sale());

        // Two seals of one message differ (fresh nonces).
        assert_ne!(key.seal(&sale()).unwrap().blob, sealed.blob);

        let other_pass = SecurityKey::derive("mykey", 2, b"wrong horse");
        assert!(matches!(other_pass.open(&sealed), Err(SecurityError::Mac)));
        let other_version = SecurityKey::derive("mykey", 3, b"correct horse");
        assert!(matches!(
            other_version.open(&sealed),
            Err(SecurityError::UnknownKey { ref identifier, version: 2 }) if identifier == "mykey"
        ));

        // Any flipped bit of the blob, the nonce or the MAC fails the MAC check.
        let mut damaged = sealed.clone();
        let mut raw = B64.decode(&damaged.blob).unwrap();
        raw[5] ^= 1;
        damaged.blob = B64.encode(raw);
        assert!(matches!(key.open(&damaged), Err(SecurityError::Mac)));
        let mut damaged = sealed.clone();
        let mut raw = B64.decode(&damaged.trailer.nonce).unwrap();
        raw[0] ^= 0x80;
        damaged.trailer.nonce = B64.encode(raw);
        assert!(matches!(key.open(&damaged), Err(SecurityError::Mac)));

        // The clear header must be the one inside.
        let mut moved = sealed.clone();
        moved.header.poi_id = "P2".into();
        assert!(matches!(
            key.open(&moved),
            Err(SecurityError::HeaderMismatch)
        ));
    }
}
