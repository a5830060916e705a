//! Ed25519 signatures over canonical encodings of results and settlements.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use posbridge_wire::{
    Message, OfflineOutcome, OfflineState, Outcome, SettlementResult, TransactionResult,
    UpdateManifest,
};
use zeroize::Zeroizing;

/// Domain separation: a signature over a result can never be mistaken for one over a
/// settlement or anything else.
const RESULT_DOMAIN: &[u8] = b"posbridge/result/v1\0";
const SETTLEMENT_DOMAIN: &[u8] = b"posbridge/settlement/v1\0";
const UPDATE_DOMAIN: &[u8] = b"posbridge/update/v1\0";
const OFFLINE_DOMAIN: &[u8] = b"posbridge/offline-outcome/v1\0";

/// Errors of key handling.
#[derive(Debug)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random source failed.
    Random(getrandom::Error),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random(e) => write!(f, "the system random source failed: {e}"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// Why a signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The record carries no signature.
    Missing,
    /// The signature does not match the record and the key: the record was altered, or signed
    /// by another terminal. Do not trust it.
    Invalid,
    /// The public key is not a valid Ed25519 key.
    MalformedKey,
    /// The stored message is not a decodable transaction result.
    Undecodable,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "the result is not signed",
            Self::Invalid => {
                "the terminal's signature does not match: the record was altered or comes from another terminal"
            }
            Self::MalformedKey => "the terminal's public key is malformed",
            Self::Undecodable => "the stored result cannot be decoded",
        })
    }
}

impl std::error::Error for SignatureError {}

/// A terminal's Ed25519 public key (defined with the wire's types, so that the journal and the
/// protocol-neutral API hold it without the cryptography).
pub use posbridge_wire::PublicKey;

/// A terminal's signing key. Never printed; wiped on drop.
pub struct SigningIdentity {
    key: SigningKey,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(CryptoError::Random)?;
        Ok(Self::from_secret(&seed))
    }

    /// The key for a 32-byte secret (as kept in a [`KeyStore`](crate::KeyStore)).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte secret, for storing. Handle with care.
    pub fn to_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public half, to hand to clients at pairing.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `result` (sets its `signature`).
    pub fn sign_result(&self, result: &mut TransactionResult) {
        result.signature = Some(self.key.sign(&result_signing_bytes(result)).to_bytes());
    }

    /// Signs an upload of a till's journal changes to a back office (`body` as sent): the
    /// signature covers a context of its own and the whole body, so it proves neither a payment
    /// nor a settlement.
    pub fn sign_upload(&self, body: &[u8]) -> [u8; 64] {
        self.key.sign(&upload_signing_bytes(body)).to_bytes()
    }

    /// Signs a software update's manifest as its publisher (sets its `signature`): terminals that
    /// trust this key install the image whose size and SHA-256 it names.
    pub fn sign_update(&self, manifest: &mut UpdateManifest) {
        manifest.signature = self.key.sign(&update_signing_bytes(manifest)).to_bytes();
    }

    /// Signs the final outcome of a payment approved offline (sets its `signature`).
    pub fn sign_offline_outcome(&self, outcome: &mut OfflineOutcome) {
        outcome.signature = Some(
            self.key
                .sign(&offline_outcome_signing_bytes(outcome))
                .to_bytes(),
        );
    }

    /// Signs `settlement` (sets its `signature`).
    pub fn sign_settlement(&self, settlement: &mut SettlementResult) {
        settlement.signature = Some(
            self.key
                .sign(&settlement_signing_bytes(settlement))
                .to_bytes(),
        );
    }
}

fn opt(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_be_bytes());
        }
        None => out.extend_from_slice(&[0; 9]),
    }
}

fn text(out: &mut Vec<u8>, value: Option<&str>) {
    let b = value.unwrap_or("").as_bytes();
    // Wire limits keep these short; the length byte saturates rather than wraps.
    let len = b.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&b[..len]);
}

const UPLOAD_DOMAIN: &[u8] = b"posbridge/upload/v1\0";

fn upload_signing_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(UPLOAD_DOMAIN.len() + body.len());
    out.extend_from_slice(UPLOAD_DOMAIN);
    out.extend_from_slice(body);
    out
}

/// The bytes a transaction result's signature covers (docs/security.md, "Signed results").
pub fn result_signing_bytes(r: &TransactionResult) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(RESULT_DOMAIN);
    out.extend_from_slice(r.terminal_id.as_bytes());
    out.extend_from_slice(r.idempotency_key.as_bytes());
    out.extend_from_slice(r.transaction_id.as_bytes());
    out.push(r.kind.code());
    let (outcome, reason) = match r.outcome {
        Outcome::Approved => (1u8, 0u16),
        Outcome::PartiallyApproved => (2, 0),
        Outcome::Declined(d) => (3, d.0),
        Outcome::Cancelled => (4, 0),
        Outcome::Failed(e) => (5, e.0),
        _ => (0, 0),
    };
    out.push(outcome);
    out.extend_from_slice(&reason.to_be_bytes());
    out.extend_from_slice(&r.amount.currency.code().to_be_bytes());
    out.extend_from_slice(&r.amount.minor.to_be_bytes());
    out.extend_from_slice(&r.approved_minor.to_be_bytes());
    opt(&mut out, r.tip);
    opt(&mut out, r.cashback);
    opt(&mut out, r.balance);
    out.extend_from_slice(&r.time.0.to_be_bytes());
    out.push(u8::from(r.offline));
    out.push(r.method.map_or(0, |m| m.code()));
    text(&mut out, r.pan.map(|p| p.to_masked_string()).as_deref());
    text(&mut out, r.auth_code.as_deref());
    text(&mut out, r.reference.as_deref());
    // Protocol 1.1: the EMV data, only when there is some, so that a result without it signs
    // the same bytes as under 1.0.
    if let Some(emv) = &r.emv {
        text(&mut out, Some(&emv.aid));
        text(&mut out, emv.label.as_deref());
        out.extend_from_slice(&emv.tvr);
        out.extend_from_slice(&emv.tsi);
        text(&mut out, emv.arc.as_deref());
        out.push(emv.cvm as u8);
        out.push(emv.cryptogram_type as u8);
        out.extend_from_slice(&emv.cryptogram);
    }
    out
}

/// The bytes a settlement's signature covers (docs/security.md, "Signed results").
pub fn settlement_signing_bytes(s: &SettlementResult) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 15 * s.totals.len());
    out.extend_from_slice(SETTLEMENT_DOMAIN);
    out.extend_from_slice(s.terminal_id.as_bytes());
    out.extend_from_slice(s.idempotency_key.as_bytes());
    out.extend_from_slice(&s.batch_number.to_be_bytes());
    out.extend_from_slice(&s.status.err().map_or(0, |e| e.0).to_be_bytes());
    opt(&mut out, s.opened.map(|t| t.0));
    out.extend_from_slice(&s.closed.0.to_be_bytes());
    out.extend_from_slice(&(s.totals.len() as u16).to_be_bytes());
    for t in &s.totals {
        out.push(t.kind.code());
        out.extend_from_slice(&t.currency.code().to_be_bytes());
        out.extend_from_slice(&t.count.to_be_bytes());
        out.extend_from_slice(&t.amount.to_be_bytes());
    }
    out
}

/// A terminal's public key, decoded once, for checking many records (an audit of a whole
/// journal): decoding a key costs about 4 µs, a tenth of a verification.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// Decodes `key`.
    pub fn new(key: &PublicKey) -> Result<Self, SignatureError> {
        Ok(Self {
            key: VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::MalformedKey)?,
        })
    }

    fn check(&self, message: &[u8], signature: Option<&[u8; 64]>) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        self.key
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .map_err(|_| SignatureError::Invalid)
    }

    /// Checks a result's signature.
    pub fn verify_result(&self, result: &TransactionResult) -> Result<(), SignatureError> {
        self.check(&result_signing_bytes(result), result.signature.as_ref())
    }

    /// Checks an upload's signature ([`SigningIdentity::sign_upload`]).
    pub fn verify_upload(&self, body: &[u8], signature: &[u8; 64]) -> Result<(), SignatureError> {
        self.check(&upload_signing_bytes(body), Some(signature))
    }

    /// Checks a settlement's signature.
    pub fn verify_settlement(&self, settlement: &SettlementResult) -> Result<(), SignatureError> {
        self.check(
            &settlement_signing_bytes(settlement),
            settlement.signature.as_ref(),
        )
    }
}

/// Checks a result's signature against the terminal's public key.
pub fn verify_result(key: &PublicKey, result: &TransactionResult) -> Result<(), SignatureError> {
    if result.signature.is_none() {
        return Err(SignatureError::Missing);
    }
    Verifier::new(key)?.verify_result(result)
}

/// The bytes an update manifest's signature covers (docs/security.md, "Software updates"):
/// the domain, the version (1 length byte + UTF-8), the size (4, big-endian) and the SHA-256.
pub fn update_signing_bytes(m: &UpdateManifest) -> Vec<u8> {
    let mut out = Vec::with_capacity(UPDATE_DOMAIN.len() + 1 + m.version.len() + 36);
    out.extend_from_slice(UPDATE_DOMAIN);
    text(&mut out, Some(&m.version));
    out.extend_from_slice(&m.size.to_be_bytes());
    out.extend_from_slice(&m.digest);
    out
}

/// The bytes an offline outcome's signature covers (docs/security.md, "Signed results"): the
/// domain, terminal id, idempotency key, transaction id, state (1 pending, 2 confirmed,
/// 3 declined), decline reason (2, 0 if none) and time (8).
pub fn offline_outcome_signing_bytes(o: &OfflineOutcome) -> Vec<u8> {
    let mut out = Vec::with_capacity(OFFLINE_DOMAIN.len() + 59);
    out.extend_from_slice(OFFLINE_DOMAIN);
    out.extend_from_slice(o.terminal_id.as_bytes());
    out.extend_from_slice(o.idempotency_key.as_bytes());
    out.extend_from_slice(o.transaction_id.as_bytes());
    let (state, reason) = match o.state {
        OfflineState::Pending => (1u8, 0u16),
        OfflineState::Confirmed => (2, 0),
        OfflineState::Declined(r) => (3, r.0),
        _ => (0, 0),
    };
    out.push(state);
    out.extend_from_slice(&reason.to_be_bytes());
    out.extend_from_slice(&o.time.0.to_be_bytes());
    out
}

/// Checks an offline outcome's signature against the terminal's public key.
pub fn verify_offline_outcome(key: &PublicKey, o: &OfflineOutcome) -> Result<(), SignatureError> {
    Verifier::new(key)?.check(&offline_outcome_signing_bytes(o), o.signature.as_ref())
}

/// Checks an update manifest's signature against the publisher's key the terminal trusts.
pub fn verify_update(key: &PublicKey, manifest: &UpdateManifest) -> Result<(), SignatureError> {
    Verifier::new(key)?.check(&update_signing_bytes(manifest), Some(&manifest.signature))
}

/// Checks a settlement's signature against the terminal's public key.
pub fn verify_settlement(
    key: &PublicKey,
    settlement: &SettlementResult,
) -> Result<(), SignatureError> {
    if settlement.signature.is_none() {
        return Err(SignatureError::Missing);
    }
    Verifier::new(key)?.verify_settlement(settlement)
}

/// Checks a result as a journal keeps it: the encoded `TransactionResult` message and the
/// terminal's public key. Needs nothing else — no connection, no terminal — so an auditor can
/// run it years later.
pub fn verify_result_message(
    key: &PublicKey,
    encoded: &[u8],
) -> Result<TransactionResult, SignatureError> {
    match Message::decode(encoded) {
        Ok(Message::TransactionResult(result)) => {
            verify_result(key, &result)?;
            Ok(result)
        }
        _ => Err(SignatureError::Undecodable),
    }
}
