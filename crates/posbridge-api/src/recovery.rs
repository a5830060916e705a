//! What recovery does with a journaled command whose answer was lost: the policy, the report,
//! and the decision itself as a pure function of the entry, the terminal's answer and the time.

use std::fmt;
use std::time::Duration;

use posbridge_journal::Entry;
use posbridge_wire::{
    IdempotencyKey, OperatorAuth, Timestamp, TransactionCommand, TransactionKind, TransactionRef,
    TransactionResult,
};

use crate::Resolution;

/// What recovery does with payments whose outcome the app did not learn.
#[derive(Clone, Debug, Default)]
pub struct RecoveryPolicy {
    /// A command the terminal never took is sent again by recovery only if its intent is younger
    /// than this; older, it is recorded as not taken (nothing was charged), because the customer
    /// it was for has likely left. `None` (the default): recovery never sends anything again on
    /// its own — only the call that journaled it does, while it runs, or the app when it asks
    /// again with the same key (`execute` or `resume`).
    pub resend_within: Option<Duration>,
    /// Undo payments still unconfirmed past a deadline instead of completing them.
    pub reversal: Option<ReversalPolicy>,
}

/// What to do with payments whose outcome the app did not learn in time — the customer has
/// left, or paid another way. Without a policy, recovery records every result it finds. With
/// one, a command still unconfirmed `after` its intent was written is undone instead: approved,
/// it is reversed (a sale, refund, capture or increment voided, a pre-authorisation released)
/// under a key derived from its own ([`reversal_key`]), so the reversal itself is idempotent and
/// journaled.
#[derive(Clone, Debug)]
pub struct ReversalPolicy {
    /// How long a payment may stay unconfirmed.
    pub after: Duration,
    /// The operator credential reversals run under (terminals require one for voids).
    pub operator: Option<OperatorAuth>,
}

/// The key a reversal of `key` runs under: derived, so that repeating the reversal never
/// reverses twice.
pub fn reversal_key(key: IdempotencyKey) -> IdempotencyKey {
    let mut k = key.0;
    for (i, b) in k.iter_mut().enumerate() {
        *b ^= 0xA5 ^ (i as u8).wrapping_mul(0x3B);
    }
    IdempotencyKey(k)
}

/// The command that reverses an approved `result`, if its kind can be reversed.
pub fn reversal_of(result: &TransactionResult) -> Option<TransactionCommand> {
    if !result.outcome.is_approved() {
        return None;
    }
    let original = TransactionRef::Id(result.transaction_id);
    Some(match result.kind {
        TransactionKind::Sale
        | TransactionKind::Refund
        | TransactionKind::Capture
        | TransactionKind::IncrementalAuth => TransactionCommand::Void { original },
        TransactionKind::PreAuth => TransactionCommand::PreAuthCancel { original },
        _ => return None,
    })
}

/// A command recovery could not resolve, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Its key.
    pub key: IdempotencyKey,
    /// Why, for a person.
    pub reason: String,
}

/// What recovery did, command by command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Commands whose result the terminal had: now recorded (approved or not).
    pub recorded: Vec<IdempotencyKey>,
    /// Commands that were still running: joined (asked again under their key, which never
    /// starts a second one), and their result recorded.
    pub awaited: Vec<IdempotencyKey>,
    /// Commands the terminal never took, young enough for
    /// [`RecoveryPolicy::resend_within`]: sent again under their key, their result recorded.
    pub resent: Vec<IdempotencyKey>,
    /// Commands the terminal certainly did not take, not sent again: recorded as not taken
    /// (nothing was charged).
    pub not_taken: Vec<IdempotencyKey>,
    /// Approved commands unconfirmed past the [`ReversalPolicy`] deadline: reversed.
    pub reversed: Vec<IdempotencyKey>,
    /// Commands still running when recovery ended: still in doubt; recover again later.
    pub running: Vec<IdempotencyKey>,
    /// Commands that could not be resolved now, and why: still in doubt.
    pub unresolved: Vec<Unresolved>,
    /// Payments approved offline that the acquirer has now confirmed: done.
    pub confirmed_offline: Vec<IdempotencyKey>,
    /// Payments approved offline that the issuer declined after the fact: the card was not
    /// charged (the goods are out — the merchant decides what to do).
    pub declined_after: Vec<IdempotencyKey>,
    /// Payments approved offline whose final outcome is not known yet (the terminal has not
    /// forwarded them, or could not be asked): counted as approved; asked again next time.
    pub pending_offline: Vec<IdempotencyKey>,
}

impl RecoveryReport {
    /// Whether nothing recovery looked at is still in doubt. (A payment approved offline and
    /// still pending is not in doubt: its signed result is recorded and counted.)
    pub fn is_clean(&self) -> bool {
        self.running.is_empty() && self.unresolved.is_empty()
    }

    /// How many commands it looked at.
    pub fn len(&self) -> usize {
        self.recorded.len()
            + self.awaited.len()
            + self.resent.len()
            + self.not_taken.len()
            + self.reversed.len()
            + self.running.len()
            + self.unresolved.len()
            + self.confirmed_offline.len()
            + self.declined_after.len()
            + self.pending_offline.len()
    }

    /// Whether it looked at none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing was in doubt");
        }
        let mut parts = Vec::new();
        let mut list = |what: &str, keys: &[IdempotencyKey]| {
            if !keys.is_empty() {
                let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
                parts.push(format!("{what}: {}", keys.join(", ")));
            }
        };
        list("recorded", &self.recorded);
        list("joined and recorded", &self.awaited);
        list("sent again", &self.resent);
        list("not taken (nothing charged)", &self.not_taken);
        list("reversed", &self.reversed);
        list("still running", &self.running);
        list("approved offline, now confirmed", &self.confirmed_offline);
        list(
            "approved offline, declined after the fact (not charged)",
            &self.declined_after,
        );
        list("approved offline, still pending", &self.pending_offline);
        for u in &self.unresolved {
            parts.push(format!("still in doubt: {} ({})", u.key, u.reason));
        }
        f.write_str(&parts.join("; "))
    }
}

/// What recovery does with one entry, decided from the terminal's answer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step<E> {
    /// Record this result.
    Record(TransactionResult),
    /// Record this approved result, then reverse it (it stayed unconfirmed past the deadline).
    Reverse(TransactionResult),
    /// Send the command again under its key.
    Resend,
    /// Record it as not taken: nothing was charged.
    NotTaken,
    /// Ask again under its key, which joins the running command; then, if `reverse` (it stayed
    /// unconfirmed past the [`ReversalPolicy`] deadline), reverse what it approved.
    Join {
        /// Whether an approved result is reversed.
        reverse: bool,
    },
    /// Leave it running (it cannot be joined); recover again later.
    LeaveRunning,
    /// Leave it in doubt for a person, with the adapter's reason.
    Undecided(E),
}

/// Whether `entry`, journaled at `entry.created`, is older than `age` at `now`.
pub fn older_than(entry: &Entry, age: Duration, now: Timestamp) -> bool {
    now.0.saturating_sub(entry.created.0) >= age.as_millis() as u64
}

/// The one recovery policy: what happens to `entry` after the terminal answered `resolution`
/// at `now`, for a terminal that does or does not remember keys.
pub fn decide<E>(
    entry: &Entry,
    resolution: Resolution<E>,
    policy: &RecoveryPolicy,
    remembers_keys: bool,
    now: Timestamp,
) -> Step<E> {
    let stale = policy
        .reversal
        .as_ref()
        .is_some_and(|p| older_than(entry, p.after, now));
    match resolution {
        Resolution::Done(r) if stale && reversal_of(&r).is_some() => Step::Reverse(r),
        Resolution::Done(r) => Step::Record(r),
        Resolution::NotDone => match policy.resend_within {
            Some(window) if !stale && !older_than(entry, window, now) => Step::Resend,
            _ => Step::NotTaken,
        },
        Resolution::Running(_) if remembers_keys => Step::Join { reverse: stale },
        Resolution::Running(_) => Step::LeaveRunning,
        Resolution::Unknown(e) => Step::Undecided(e),
    }
}
