//! Reconciliation finds every kind of difference between a settlement and the journal.

use posbridge::journal::{Journal, MemoryJournal, Query};
use posbridge::{Difference, in_batch, reconcile};
use posbridge_crypto::SigningIdentity;
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, RequestId, SettlementResult, TerminalId, Timestamp, Totals,
    TransactionKind, TransactionResult, samples,
};

const TERMINAL: TerminalId = TerminalId([4; 16]);

fn sale(
    journal: &mut MemoryJournal,
    signer: &SigningIdentity,
    n: u128,
    minor: u64,
) -> TransactionResult {
    // The terminal's clock: within the batch (opened at 1000, closed at 2000).
    sale_timed(journal, signer, n, minor, 1000 + n as u64, n as u64 + 1)
}

/// A sale the terminal timed at `terminal_ms`, journaled by the till at `till_ms`.
fn sale_timed(
    journal: &mut MemoryJournal,
    signer: &SigningIdentity,
    n: u128,
    minor: u64,
    terminal_ms: u64,
    till_ms: u64,
) -> TransactionResult {
    let mut req = samples::sale_request();
    req.idempotency_key = IdempotencyKey::from_u128(n);
    journal
        .record_intent(
            TERMINAL,
            &req,
            Some(signer.public_key()),
            Timestamp(n as u64),
        )
        .unwrap();
    let mut r = samples::approved_result();
    r.idempotency_key = req.idempotency_key;
    r.terminal_id = TERMINAL;
    r.amount = Amount::new(minor, Currency::EUR);
    r.approved_minor = minor;
    r.tip = None;
    r.time = Timestamp(terminal_ms);
    signer.sign_result(&mut r);
    journal.record_result(&r, Timestamp(till_ms)).unwrap();
    r
}

fn settlement(signer: &SigningIdentity, totals: Vec<Totals>) -> SettlementResult {
    let mut s = SettlementResult {
        request_id: RequestId::from_u128(1),
        idempotency_key: IdempotencyKey::from_u128(99),
        terminal_id: TERMINAL,
        batch_number: 7,
        status: Ok(()),
        opened: Some(Timestamp(1000)),
        closed: Timestamp(2000),
        totals,
        receipt: None,
        signature: None,
    };
    signer.sign_settlement(&mut s);
    s
}

fn eur_sales(count: u32, amount: u64) -> Totals {
    Totals {
        kind: TransactionKind::Sale,
        currency: Currency::EUR,
        count,
        amount,
    }
}

#[test]
fn a_clean_batch_reconciles() {
    let signer = SigningIdentity::from_secret(&[1; 32]);
    let mut j = MemoryJournal::new();
    sale(&mut j, &signer, 1, 1000);
    sale(&mut j, &signer, 2, 2500);
    let entries = j.query(&Query::default()).unwrap();
    let s = settlement(&signer, vec![eur_sales(2, 3500)]);
    let r = reconcile(&entries, &s, Some(&signer.public_key()));
    assert!(r.is_clean(), "{r:?}");
    assert_eq!((r.batch_number, r.matched.len()), (7, 1));
}

#[test]
fn every_kind_of_difference_is_listed() {
    let signer = SigningIdentity::from_secret(&[1; 32]);
    let mut j = MemoryJournal::new();
    sale(&mut j, &signer, 1, 1000);
    // A result the journal holds but whose signature does not verify.
    let mut req = samples::sale_request();
    req.idempotency_key = IdempotencyKey::from_u128(2);
    j.record_intent(TERMINAL, &req, Some(signer.public_key()), Timestamp(5))
        .unwrap();
    let mut forged = samples::approved_result();
    forged.idempotency_key = req.idempotency_key;
    forged.terminal_id = TERMINAL;
    forged.time = Timestamp(1500);
    signer.sign_result(&mut forged);
    forged.approved_minor = 1;
    j.record_result(&forged, Timestamp(6)).unwrap();
    // One still in doubt.
    let mut pending = samples::sale_request();
    pending.idempotency_key = IdempotencyKey::from_u128(3);
    j.record_intent(TERMINAL, &pending, None, Timestamp(1007))
        .unwrap();
    let entries = j.query(&Query::default()).unwrap();

    // The terminal counted another sum, and refunds the journal knows nothing of; and the
    // report's signature is broken.
    let mut s = settlement(
        &signer,
        vec![
            eur_sales(2, 9999),
            Totals {
                kind: TransactionKind::Refund,
                currency: Currency::EUR,
                count: 1,
                amount: 500,
            },
        ],
    );
    s.batch_number = 8;
    let r = reconcile(&entries, &s, Some(&signer.public_key()));
    assert!(!r.is_clean());
    let d = &r.differences;
    assert!(d.contains(&Difference::SettlementSignature), "{d:?}");
    assert!(
        d.contains(&Difference::InvalidSignature(IdempotencyKey::from_u128(2))),
        "{d:?}"
    );
    assert!(
        d.contains(&Difference::InDoubt(IdempotencyKey::from_u128(3))),
        "{d:?}"
    );
    assert!(
        d.contains(&Difference::Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            journal: Some((2, 1101)), // 10.00 + the forged 0.01 with its 1.00 tip
            terminal: Some((2, 9999)),
        }),
        "{d:?}"
    );
    assert!(
        d.contains(&Difference::Totals {
            kind: TransactionKind::Refund,
            currency: Currency::EUR,
            journal: None,
            terminal: Some((1, 500)),
        }),
        "{d:?}"
    );
    // And a batch the terminal never counted at all.
    let empty = settlement(&signer, vec![]);
    let r = reconcile(&entries[..1], &empty, Some(&signer.public_key()));
    assert_eq!(
        r.differences,
        vec![Difference::Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            journal: Some((1, 1000)),
            terminal: None,
        }]
    );
}

/// The batch is what the terminal timed within it, by its own clock: a till whose clock is off,
/// or a result journaled long after (recovered later), is still counted in the right batch; a
/// result of the batch before is not.
#[test]
fn the_batch_is_chosen_by_the_terminal_s_clock() {
    let signer = SigningIdentity::from_secret(&[1; 32]);
    let mut j = MemoryJournal::new();
    // Batch 6 (closed at 1000): a sale the terminal timed at 990.
    sale_timed(&mut j, &signer, 1, 700, 990, 1);
    // Batch 7: the till's clock is far behind (intents at 2 and 3, well before 1000), and one
    // result was journaled long after the settlement (recovered late): both are the batch's.
    sale(&mut j, &signer, 2, 1000);
    sale_timed(&mut j, &signer, 3, 2500, 1003, 999_999);
    // Another terminal's sale in the same window is not.
    let mut req = samples::sale_request();
    req.idempotency_key = IdempotencyKey::from_u128(4);
    j.record_intent(TerminalId([5; 16]), &req, None, Timestamp(1500))
        .unwrap();
    let entries = j.query(&Query::default()).unwrap();
    let s = settlement(&signer, vec![eur_sales(2, 3500)]);
    let members: Vec<IdempotencyKey> = entries
        .iter()
        .filter(|e| in_batch(e, &s))
        .map(|e| e.key())
        .collect();
    assert_eq!(
        members,
        vec![IdempotencyKey::from_u128(2), IdempotencyKey::from_u128(3)]
    );
    let r = reconcile(&entries, &s, Some(&signer.public_key()));
    assert!(r.is_clean(), "{r:?}");
}
