//! Operator authorisation on the terminal: who may refund, void, settle or change the
//! configuration — by PIN or by a time-based one-time password (RFC 6238) — with a lockout after
//! repeated failures.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use posbridge_wire::{Credential, OperatorAuth, Timestamp};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Failed attempts before an operator is locked out, and the lockout's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorPolicy {
    max_failures: u32,
    lockout: Duration,
    max_lockout: Duration,
}

impl Default for OperatorPolicy {
    fn default() -> Self {
        Self {
            max_failures: 3,
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
        }
    }
}

impl OperatorPolicy {
    /// Wrong credentials in a row before a lockout (default 3, at least 1).
    pub fn set_max_failures(&mut self, n: u32) -> &mut Self {
        self.max_failures = n.max(1);
        self
    }

    /// The first lockout (default 60 s); each further one in a row doubles, up to `max`
    /// (default 1 h).
    pub fn set_lockout(&mut self, first: Duration, max: Duration) -> &mut Self {
        self.lockout = first;
        self.max_lockout = max.max(first);
        self
    }
}

/// Why an operator credential was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The request needs an operator credential and carries none.
    Required,
    /// Unknown operator, wrong PIN or wrong code. `attempts_left` before a lockout.
    Failed {
        /// Attempts left.
        attempts_left: u32,
    },
    /// Too many failures: try again after `retry_after`.
    LockedOut {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A one-time password cannot be checked: the terminal's clock is not set.
    ClockNotSet,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required => f.write_str("operator authorisation required (PIN or one-time code)"),
            Self::Failed { attempts_left } => write!(
                f,
                "operator authorisation failed; {attempts_left} attempt(s) left before a lockout"
            ),
            Self::LockedOut { retry_after } => write!(
                f,
                "operator locked out after repeated failures; try again in {} s",
                retry_after.as_secs().max(1)
            ),
            Self::ClockNotSet => f.write_str(
                "the terminal's clock is not set, so one-time codes cannot be checked: set it or use a PIN",
            ),
        }
    }
}

impl std::error::Error for AuthError {}

enum Secret {
    /// HMAC-SHA256 of the PIN under a random per-operator key.
    Pin {
        key: Zeroizing<[u8; 32]>,
        tag: [u8; 32],
    },
    /// The RFC 6238 shared secret (SHA-1, 30 s steps, 6 digits, ±1 step).
    Totp(Zeroizing<Vec<u8>>),
}

struct Operator {
    secrets: Vec<Secret>,
}

#[derive(Default)]
struct Failures {
    count: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
}

/// The operators a terminal knows and their failure counters. Secrets never leave it: PINs are
/// kept as keyed hashes, compared in constant time.
#[derive(Default)]
pub struct Operators {
    policy: OperatorPolicy,
    operators: HashMap<String, Operator>,
    failures: HashMap<String, Failures>,
}

impl fmt::Debug for Operators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.operators.keys().collect();
        names.sort();
        f.debug_struct("Operators")
            .field("operators", &names)
            .finish_non_exhaustive()
    }
}

/// Counters for unknown operator ids share one bucket, so guessing ids cannot grow memory.
const UNKNOWN: &str = "\0unknown";
const TOTP_STEP: u64 = 30;
const TOTP_DIGITS: u32 = 6;

fn pin_tag(key: &[u8; 32], pin: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(pin.as_bytes());
    mac
}

impl Operators {
    /// No operators: every request that needs authorisation is refused.
    pub fn new(policy: OperatorPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Gives `operator` a PIN (4 to 12 digits).
    pub fn add_pin(&mut self, operator: &str, pin: &str) -> Result<(), InvalidOperatorSecret> {
        if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidOperatorSecret);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| InvalidOperatorSecret)?;
        let tag = pin_tag(&key, pin).finalize().into_bytes().into();
        self.push(operator, Secret::Pin { key, tag });
        Ok(())
    }

    /// Gives `operator` a TOTP secret (at least 16 bytes; SHA-1, 30 s, 6 digits as authenticator
    /// apps use).
    pub fn add_totp(&mut self, operator: &str, secret: &[u8]) -> Result<(), InvalidOperatorSecret> {
        if secret.len() < 16 {
            return Err(InvalidOperatorSecret);
        }
        self.push(operator, Secret::Totp(Zeroizing::new(secret.to_vec())));
        Ok(())
    }

    fn push(&mut self, operator: &str, secret: Secret) {
        self.operators
            .entry(operator.to_string())
            .or_insert_with(|| Operator {
                secrets: Vec::new(),
            })
            .secrets
            .push(secret);
    }

    /// Removes an operator; returns whether there was one.
    pub fn remove(&mut self, operator: &str) -> bool {
        self.failures.remove(operator);
        self.operators.remove(operator).is_some()
    }

    /// Checks a credential at `now` (`wall` is the terminal's clock, needed for one-time codes).
    /// Failures count per operator; a success resets the count.
    pub fn check(
        &mut self,
        auth: Option<&OperatorAuth>,
        now: Instant,
        wall: Option<Timestamp>,
    ) -> Result<(), AuthError> {
        let auth = auth.ok_or(AuthError::Required)?;
        let bucket = if self.operators.contains_key(&auth.operator_id) {
            auth.operator_id.as_str()
        } else {
            UNKNOWN
        };
        let failures = self.failures.entry(bucket.to_string()).or_default();
        if let Some(until) = failures.locked_until {
            if now < until {
                return Err(AuthError::LockedOut {
                    retry_after: until - now,
                });
            }
            failures.locked_until = None;
        }
        let verdict = match self.operators.get(&auth.operator_id) {
            None => Ok(false),
            Some(op) => verify(op, &auth.credential, wall),
        };
        let failures = self.failures.get_mut(bucket).expect("inserted above");
        match verdict {
            Ok(true) => {
                *failures = Failures::default();
                Ok(())
            }
            Err(e) => Err(e),
            Ok(false) => {
                failures.count += 1;
                if failures.count >= self.policy.max_failures {
                    failures.count = 0;
                    failures.lockouts += 1;
                    let factor = 1u32.checked_shl(failures.lockouts - 1).unwrap_or(u32::MAX);
                    let wait = self
                        .policy
                        .lockout
                        .saturating_mul(factor)
                        .min(self.policy.max_lockout);
                    failures.locked_until = Some(now + wait);
                    return Err(AuthError::LockedOut { retry_after: wait });
                }
                Err(AuthError::Failed {
                    attempts_left: self.policy.max_failures - failures.count,
                })
            }
        }
    }
}

fn verify(
    op: &Operator,
    credential: &Credential,
    wall: Option<Timestamp>,
) -> Result<bool, AuthError> {
    match credential {
        Credential::Pin(pin) => Ok(op.secrets.iter().any(|s| match s {
            Secret::Pin { key, tag } => pin_tag(key, pin.expose()).verify_slice(tag).is_ok(),
            Secret::Totp(_) => false,
        })),
        Credential::Totp(code) => {
            let has_totp = op.secrets.iter().any(|s| matches!(s, Secret::Totp(_)));
            if !has_totp {
                return Ok(false);
            }
            let seconds = wall.ok_or(AuthError::ClockNotSet)?.0 / 1000;
            Ok(op.secrets.iter().any(|s| match s {
                Secret::Totp(secret) => [
                    seconds.saturating_sub(TOTP_STEP),
                    seconds,
                    seconds + TOTP_STEP,
                ]
                .iter()
                .any(|&t| {
                    let expected = Zeroizing::new(totp(secret, t));
                    constant_time_eq(expected.as_bytes(), code.expose().as_bytes())
                }),
                Secret::Pin { .. } => false,
            }))
        }
        _ => Ok(false),
    }
}

/// The RFC 6238 code (SHA-1, 30 s steps, 6 digits) for `secret` at `seconds` since the epoch.
pub fn totp(secret: &[u8], seconds: u64) -> String {
    totp_lite::totp_custom::<totp_lite::Sha1>(TOTP_STEP, TOTP_DIGITS, secret, seconds)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A PIN is 4 to 12 digits; a TOTP secret at least 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidOperatorSecret;

impl fmt::Display for InvalidOperatorSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an operator PIN is 4 to 12 digits, a TOTP secret at least 16 bytes")
    }
}

impl std::error::Error for InvalidOperatorSecret {}
