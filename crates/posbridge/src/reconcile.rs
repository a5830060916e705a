//! Reconciliation: the terminal's settlement totals against the app's journal.

use posbridge_crypto::{PublicKey, verify_result, verify_settlement};
use posbridge_journal::{Entry, EntryState};
use posbridge_wire::{Currency, IdempotencyKey, SettlementResult, Totals, TransactionKind};

/// One way the journal and the settlement disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// The totals of one kind and currency differ (`None`: that side has none).
    Totals {
        /// The kind.
        kind: TransactionKind,
        /// The currency.
        currency: Currency,
        /// The journal's count and sum.
        journal: Option<(u32, u64)>,
        /// The terminal's count and sum.
        terminal: Option<(u32, u64)>,
    },
    /// A journaled result whose signature does not verify against the terminal's key.
    InvalidSignature(IdempotencyKey),
    /// A command still in doubt: recover it, then reconcile again.
    InDoubt(IdempotencyKey),
    /// The settlement report's own signature does not verify.
    SettlementSignature,
    /// A terminal that reports only the batch's net (ZVT's end-of-day total: sales and
    /// captures less refunds and voids) reports another net than the journal's.
    NetTotal {
        /// The currency.
        currency: Currency,
        /// The journal's net (negative when refunds outweigh sales).
        journal: i128,
        /// The terminal's.
        terminal: u64,
    },
}

/// The outcome of a reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    /// The settled batch.
    pub batch_number: u32,
    /// The totals both sides agree on.
    pub matched: Vec<Totals>,
    /// Every difference found.
    pub differences: Vec<Difference>,
    /// Payments of the batch approved offline whose final outcome is not known yet: counted as
    /// approved (as the terminal counts them), and listed so that nobody mistakes them for money
    /// the acquirer confirmed.
    pub pending_offline: Vec<IdempotencyKey>,
    /// Payments of the batch approved offline and declined by the issuer **after the batch
    /// closed**: the terminal counted them in these totals (so the journal does too), but the
    /// card was not charged — what the acquirer pays out is less by their amount. (Declined
    /// before the close, a payment is in neither side's totals.)
    pub declined_after: Vec<IdempotencyKey>,
}

impl Reconciliation {
    /// Whether the journal and the terminal agree on everything.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Whether the journal entry `e` belongs to the batch `settlement` closed: sent to that terminal,
/// and — when it has a result — a result the terminal timed between the batch's opening and its
/// close. Both times are the terminal's own clock, so the till's clock (which may be minutes off)
/// does not move a payment into the wrong batch. An entry without a result (in doubt, or never
/// sent) belongs to the batch when the till created it at or after the opening.
pub fn in_batch(e: &Entry, settlement: &SettlementResult) -> bool {
    let opened = settlement.opened.map_or(0, |t| t.0);
    e.terminal == settlement.terminal_id
        && match &e.result {
            Some(r) => (opened..=settlement.closed.0).contains(&r.time.0),
            None => e.created.0 >= opened,
        }
}

/// The net of `totals` in `currency`: sales, captures and incremental authorisations' captures
/// count in, refunds and voids out; reservations, their release and balance inquiries move no
/// money.
pub fn net_total(totals: &[Totals], currency: Currency) -> i128 {
    totals
        .iter()
        .filter(|t| t.currency == currency)
        .fold(0i128, |acc, t| match t.kind {
            TransactionKind::Refund | TransactionKind::Void => acc - i128::from(t.amount),
            TransactionKind::PreAuth
            | TransactionKind::IncrementalAuth
            | TransactionKind::PreAuthCancel
            | TransactionKind::BalanceInquiry => acc,
            _ => acc + i128::from(t.amount),
        })
}

/// Compares `settlement` with the journal `entries` of its batch: of `entries`, those
/// [`in_batch`] are counted, so a caller may pass more (every entry since a day before the
/// opening, say). With `terminal_key`, every result's signature and the report's are checked
/// too. A report with counts is compared kind by kind; one of nets alone (every count 0, as
/// ZVT's end-of-day reports) by its net per currency ([`net_total`]).
pub fn reconcile(
    entries: &[Entry],
    settlement: &SettlementResult,
    terminal_key: Option<&PublicKey>,
) -> Reconciliation {
    let mut differences = Vec::new();
    if let Some(key) = terminal_key
        && verify_settlement(key, settlement).is_err()
    {
        differences.push(Difference::SettlementSignature);
    }
    let mut results = Vec::new();
    let (mut pending_offline, mut declined_after) = (Vec::new(), Vec::new());
    for e in entries.iter().filter(|e| in_batch(e, settlement)) {
        let counted = match (&e.result, e.state) {
            (Some(r), EntryState::Done) => Some(r),
            (Some(r), EntryState::OfflinePending) => {
                pending_offline.push(e.key());
                Some(r)
            }
            // Declined after the batch closed: in the terminal's totals all the same.
            (Some(r), EntryState::DeclinedAfter)
                if e.offline
                    .as_ref()
                    .is_some_and(|o| o.time > settlement.closed) =>
            {
                declined_after.push(e.key());
                Some(r)
            }
            (_, EntryState::Rejected | EntryState::DeclinedAfter) => None,
            _ => {
                differences.push(Difference::InDoubt(e.key()));
                None
            }
        };
        if let Some(r) = counted {
            let checked = e.terminal_key.as_ref().or(terminal_key);
            if let Some(k) = checked
                && verify_result(k, r).is_err()
            {
                differences.push(Difference::InvalidSignature(e.key()));
            }
            results.push(r.clone());
        }
    }
    let mine = Totals::of(&results);
    let mut matched = Vec::new();
    // A report of the net alone (no counts: ZVT's end-of-day) is compared as a net.
    if !settlement.totals.is_empty() && settlement.totals.iter().all(|t| t.count == 0) {
        for t in &settlement.totals {
            let journal = net_total(&mine, t.currency);
            if journal == i128::from(t.amount) {
                matched.push(t.clone());
            } else {
                differences.push(Difference::NetTotal {
                    currency: t.currency,
                    journal,
                    terminal: t.amount,
                });
            }
        }
        return Reconciliation {
            batch_number: settlement.batch_number,
            matched,
            differences,
            pending_offline,
            declined_after,
        };
    }
    for t in &settlement.totals {
        let m = mine
            .iter()
            .find(|m| m.kind == t.kind && m.currency == t.currency);
        match m {
            Some(m) if m.count == t.count && m.amount == t.amount => matched.push(t.clone()),
            _ => differences.push(Difference::Totals {
                kind: t.kind,
                currency: t.currency,
                journal: m.map(|m| (m.count, m.amount)),
                terminal: Some((t.count, t.amount)),
            }),
        }
    }
    for m in &mine {
        if !settlement
            .totals
            .iter()
            .any(|t| t.kind == m.kind && t.currency == m.currency)
        {
            differences.push(Difference::Totals {
                kind: m.kind,
                currency: m.currency,
                journal: Some((m.count, m.amount)),
                terminal: None,
            });
        }
    }
    Reconciliation {
        batch_number: settlement.batch_number,
        matched,
        differences,
        pending_offline,
        declined_after,
    }
}
