//! What can go wrong with a call, typed and nested: the engine's own cases, the journal's error,
//! and the protocol adapter's error kept as the typed source.

use std::error::Error;
use std::fmt;

use posbridge_journal::JournalError;
use posbridge_wire::{CapabilityError, ErrorCode, IdempotencyKey};

use crate::RecoveryReport;

/// Why the terminal (or this side, on its behalf) refused a command before anything was charged.
#[derive(Debug)]
pub struct Refusal<E> {
    /// What was wrong, in the native protocol's codes (shared by every adapter).
    pub code: ErrorCode,
    /// The terminal's own words, or the adapter's, if any.
    pub detail: Option<String>,
    /// The adapter's error behind it (a ZVT `84 xx`, a nexo `Response`), if there is one.
    pub source: Option<E>,
}

impl<E> Refusal<E> {
    /// A refusal with `code` and `detail`, without an adapter error behind it.
    pub fn new(code: ErrorCode, detail: impl Into<Option<String>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            source: None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Refusal<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code.description().unwrap_or("refused"))?;
        match (&self.detail, &self.source) {
            (Some(d), _) => write!(f, " ({d})"),
            (None, Some(s)) => write!(f, " ({s})"),
            (None, None) => Ok(()),
        }
    }
}

/// Why an outcome is in doubt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DoubtReason {
    /// The deadline passed before the terminal answered.
    NoAnswer,
    /// The connection broke after the command had left.
    ConnectionLost,
    /// The terminal answered, but what it sent cannot be read as a result.
    Unreadable,
    /// The terminal answered something this command does not expect.
    Unexpected,
    /// The result's signature does not verify against the terminal's key (kept out of the
    /// journal's results).
    Unverified,
    /// Recovery could not establish what became of it: the terminal's record does not identify
    /// it (amount, receipt, trace, time), so a person has to decide.
    Unidentified,
    /// The command is still running on the terminal and cannot be joined from here.
    StillRunning,
    /// The terminal could not be asked about it (the connection failed).
    Unasked,
}

impl fmt::Display for DoubtReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoAnswer => "no answer before the deadline",
            Self::ConnectionLost => "the connection broke after the command was sent",
            Self::Unreadable => "the terminal's answer could not be read",
            Self::Unexpected => "the terminal answered something else",
            Self::Unverified => "the result's signature does not verify",
            Self::Unidentified => "the terminal's record does not identify the payment",
            Self::StillRunning => "it is still running on the terminal",
            Self::Unasked => "the terminal could not be asked about it",
        })
    }
}

/// A command whose outcome is in doubt: it is journaled, and recovery resolves it. Never charge
/// again under a new key.
#[derive(Debug)]
pub struct InDoubt<E> {
    /// The command's idempotency key (what `status`, `recover` and `cancel` need).
    pub key: IdempotencyKey,
    /// Why.
    pub reason: DoubtReason,
    /// The adapter's error behind it, if there is one.
    pub source: Option<E>,
}

/// Why a call failed. `E` is the protocol adapter's own error (`NativeError`, the ZVT client's
/// `ZvtError`…), kept as the typed source of the variants that carry one.
#[derive(Debug)]
#[non_exhaustive]
pub enum PaymentError<E> {
    /// The command does not fit what the terminal can do: refused before anything was journaled
    /// or sent.
    Invalid(CapabilityError),
    /// Refused before anything was charged, by this side or by the terminal: a money command is
    /// journaled as refused, final.
    Refused {
        /// The command's key (a money command or a settlement), if the call had one.
        key: Option<IdempotencyKey>,
        /// Why.
        refusal: Refusal<E>,
    },
    /// The outcome is in doubt: journaled; recovery resolves it. Do not charge again.
    InDoubt(InDoubt<E>),
    /// The command could not be handed to the terminal (the connection is gone): nothing left,
    /// the journal keeps the intent. Send it again with the same key once connected.
    NotSent {
        /// The command's key.
        key: IdempotencyKey,
        /// Why it could not be sent.
        source: E,
    },
    /// Earlier commands are still in doubt, and this terminal's protocol keeps only its last
    /// transaction: nothing new is sent until a person resolves them (the report says which and
    /// why).
    StillInDoubt(Box<RecoveryReport>),
    /// The key belongs to a command that was refused and is final: nothing was charged. A new
    /// payment needs a new key.
    AlreadyRefused {
        /// The key.
        key: IdempotencyKey,
        /// What the journal noted about it.
        note: Option<String>,
    },
    /// A command under this key is running now in this process: wait for it.
    KeyInUse(IdempotencyKey),
    /// The payment under this key was approved offline, then declined by the issuer after the
    /// fact (the terminal's signed outcome is journaled): the customer's card is not charged. A
    /// new payment needs a new key.
    DeclinedAfter {
        /// The key.
        key: IdempotencyKey,
        /// The issuer's reason.
        reason: posbridge_wire::DeclineReason,
    },
    /// The journal failed. Before sending: nothing was sent. After: the command's state is what
    /// the journal last held, and recovery resolves it.
    Journal(JournalError),
    /// The terminal or the connection failed a call that is not a money command (status,
    /// settlement, receipt, cancel), or the adapter cannot do what was asked.
    Terminal(E),
}

impl<E> PaymentError<E> {
    /// The idempotency key of the command the error is about, if it is about one.
    pub fn key(&self) -> Option<IdempotencyKey> {
        match self {
            Self::Refused { key, .. } => *key,
            Self::NotSent { key, .. }
            | Self::AlreadyRefused { key, .. }
            | Self::DeclinedAfter { key, .. }
            | Self::KeyInUse(key) => Some(*key),
            Self::InDoubt(d) => Some(d.key),
            _ => None,
        }
    }

    /// Whether the outcome is in doubt (money may have moved; recovery will tell).
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, Self::InDoubt(_) | Self::StillInDoubt(_))
    }

    /// The same error with the protocol's error turned into another type by `f` (to put
    /// terminals of two protocols behind one type, as [`Either`](crate::Either) does).
    pub fn map_source<F>(self, f: impl Fn(E) -> F) -> PaymentError<F> {
        let refusal = |r: Refusal<E>| Refusal {
            code: r.code,
            detail: r.detail,
            source: r.source.map(&f),
        };
        match self {
            Self::Invalid(e) => PaymentError::Invalid(e),
            Self::Refused { key, refusal: r } => PaymentError::Refused {
                key,
                refusal: refusal(r),
            },
            Self::InDoubt(d) => PaymentError::InDoubt(InDoubt {
                key: d.key,
                reason: d.reason,
                source: d.source.map(&f),
            }),
            Self::NotSent { key, source } => PaymentError::NotSent {
                key,
                source: f(source),
            },
            Self::StillInDoubt(r) => PaymentError::StillInDoubt(r),
            Self::AlreadyRefused { key, note } => PaymentError::AlreadyRefused { key, note },
            Self::KeyInUse(k) => PaymentError::KeyInUse(k),
            Self::DeclinedAfter { key, reason } => PaymentError::DeclinedAfter { key, reason },
            Self::Journal(e) => PaymentError::Journal(e),
            Self::Terminal(e) => PaymentError::Terminal(f(e)),
        }
    }
}

impl<E: fmt::Display> fmt::Display for PaymentError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "{e}"),
            Self::Refused { refusal, .. } => {
                write!(f, "refused, nothing was charged: {refusal}")
            }
            Self::InDoubt(d) => {
                write!(f, "payment {} is in doubt: {}", d.key, d.reason)?;
                if let Some(s) = &d.source {
                    write!(f, " ({s})")?;
                }
                f.write_str(
                    "; it is journaled and recovery resolves it (posctl recover) — do not charge again",
                )
            }
            Self::NotSent { key, source } => write!(
                f,
                "payment {key} was not sent ({source}); nothing left for the terminal — send it again with the same key once connected"
            ),
            Self::StillInDoubt(r) => {
                write!(
                    f,
                    "{} earlier payment(s) are still in doubt, and nothing new is sent until they are resolved",
                    r.unresolved.len() + r.running.len()
                )?;
                for u in &r.unresolved {
                    write!(f, "; {}: {}", u.key, u.reason)?;
                }
                for k in &r.running {
                    write!(f, "; {k}: still running on the terminal")?;
                }
                Ok(())
            }
            Self::AlreadyRefused { key, note } => {
                write!(
                    f,
                    "payment {key} was refused and is final, nothing was charged"
                )?;
                if let Some(n) = note {
                    write!(f, " ({n})")?;
                }
                f.write_str(": a new payment needs a new key")
            }
            Self::KeyInUse(key) => write!(
                f,
                "payment {key} is running now; wait for its result instead of sending it again"
            ),
            Self::DeclinedAfter { key, reason } => write!(
                f,
                "payment {key} was approved offline, then declined by the issuer after the fact ({reason}): the card was not charged — a new payment needs a new key"
            ),
            Self::Journal(e) => write!(f, "{e}"),
            Self::Terminal(e) => write!(f, "{e}"),
        }
    }
}

impl<E: Error + 'static> Error for PaymentError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Refused { refusal, .. } => refusal.source.as_ref().map(|e| e as _),
            Self::InDoubt(d) => d.source.as_ref().map(|e| e as _),
            Self::NotSent { source, .. } => Some(source),
            Self::Journal(e) => Some(e),
            Self::Terminal(e) => Some(e),
            _ => None,
        }
    }
}

impl<E> From<JournalError> for PaymentError<E> {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}
