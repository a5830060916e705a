//! posbridge's security layer.
//!
//! It has four parts:
//!
//! * **Pairing.** The terminal shows a 6-digit code (or hands over a 128-bit secret by NFC or QR
//!   code); both sides run SPAKE2 with it, confirm the shared key, and exchange their long-term
//!   public keys under it ([`PairingWindow`] and [`TerminalPairing`] on the terminal,
//!   [`ClientPairing`] on the client). The terminal allows 3 attempts per code, then makes a new
//!   code and backs off exponentially; its pairing window expires. Each side keeps a
//!   [`PairingRecord`] ([`PairingStore`] persists records and this side's [`LocalIdentity`]).
//! * **The secure channel.** A Noise IK handshake (X25519, AES-256-GCM, SHA-256) between the
//!   static keys exchanged at pairing ([`InitiatorHandshake`], [`respond`]), then
//!   [`SecureChannel`] seals frame payloads with the frame header as associated data, explicit
//!   strictly increasing counters and periodic rekeying (docs/security.md, "Secure channel").
//! * **Signed results.** The terminal signs every final transaction result and every settlement
//!   with Ed25519 over a canonical encoding of the fields that matter for money (who, which
//!   transaction, how much, which currency, what outcome, when). The client verifies with the
//!   terminal's paired key, and anyone can verify later, offline, from a journal record alone
//!   ([`verify_result_message`]).
//! * **Key storage.** The [`KeyStore`] trait, a [`FileKeyStore`] (owner-only permissions, atomic
//!   writes: temporary file, fsync, rename, fsync of the directory) and a [`MemoryKeyStore`].
//!   Secrets are zeroised on drop and never appear in `Debug` output.
//!
//! All of it is sans-IO: messages and the current time go in, messages and records come out.
//! Nothing here does network IO or reads a clock (only [`FileKeyStore`] touches the file system,
//! and key generation the OS random source).
//!
//! ```
//! use posbridge_crypto::{SigningIdentity, verify_result};
//! # use posbridge_wire::*;
//! # let mut result = TransactionResult {
//! #     request_id: RequestId::from_u128(1), idempotency_key: IdempotencyKey::from_u128(2),
//! #     transaction_id: TransactionId::from_u128(3), terminal_id: TerminalId::from_u128(4),
//! #     kind: TransactionKind::Sale, outcome: Outcome::Approved,
//! #     amount: Amount::new(1250, Currency::EUR), approved_minor: 1250, tip: None, cashback: None,
//! #     method: None, pan: None, card_scheme: None, auth_code: None, reference: None,
//! #     time: Timestamp(1_764_000_000_000), offline: false, balance: None, receipts: vec![],
//! #     signature: None, emv: None,
//! # };
//! let terminal = SigningIdentity::generate()?;
//! terminal.sign_result(&mut result);
//! verify_result(&terminal.public_key(), &result)?;
//! result.approved_minor = 125; // tampered
//! assert!(verify_result(&terminal.public_key(), &result).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod channel;
pub mod owner_only;
mod pairing;
mod records;
mod signing;
mod store;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub use channel::{
    Accepted, ChannelConfig, ChannelError, InitiatorHandshake, NOISE_PATTERN, Responder,
    SEAL_OVERHEAD, SecureChannel, StaticKeypair, respond,
};
pub use pairing::{
    ABORT_STEP, AbortReason, ClientConfirmed, ClientPairing, LocalIdentity, MAX_NAME, MAX_WINDOW,
    PAIRING_VERSION, PairingConfig, PairingError, PairingRecord, PairingSecret, PairingWindow,
    PeerId, PeerKeys, Role, TerminalPairing, WindowState, abort,
};
pub use records::{IDENTITY_NAME, PairingStore, PairingStoreError, RecordError};
pub use signing::{
    CryptoError, PublicKey, SignatureError, SigningIdentity, Verifier,
    offline_outcome_signing_bytes, result_signing_bytes, settlement_signing_bytes,
    update_signing_bytes, verify_offline_outcome, verify_result, verify_result_message,
    verify_settlement, verify_update,
};
pub use store::{FileKeyStore, KeyStore, KeyStoreError, MemoryKeyStore, Secret};
