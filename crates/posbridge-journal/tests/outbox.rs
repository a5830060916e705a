//! The SQLite journal's outbox: every change of an entry's state, result or note and every
//! settlement gets the next sequence number in the same transaction; the shipped mark only moves
//! forward; a journal from before the outbox queues its history; a reopened journal goes on
//! numbering where it stopped.

use posbridge_crypto::SigningIdentity;
use posbridge_journal::{
    EntryState, Journal, JournalError, MemoryJournal, OutboxItem, SqliteJournal,
};
use posbridge_wire::{
    Currency, IdempotencyKey, Message, ProgressStage, RequestId, SettlementResult, TerminalId,
    Timestamp, Totals, TransactionKind, TransactionRequest, TransactionResult, samples,
};

const TERMINAL: TerminalId = TerminalId([4; 16]);

fn request(key: u128) -> TransactionRequest {
    let mut r = samples::sale_request();
    r.idempotency_key = IdempotencyKey::from_u128(key);
    r
}

fn result(r: &TransactionRequest, approved: bool, signer: &SigningIdentity) -> TransactionResult {
    let mut x = if approved {
        samples::approved_result()
    } else {
        samples::declined_result()
    };
    x.idempotency_key = r.idempotency_key;
    x.terminal_id = TERMINAL;
    signer.sign_result(&mut x);
    x
}

fn settlement(key: u128, batch: u32, signer: &SigningIdentity) -> SettlementResult {
    let mut s = SettlementResult {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(key),
        terminal_id: TERMINAL,
        batch_number: batch,
        status: Ok(()),
        opened: Some(Timestamp(1)),
        closed: Timestamp(50),
        totals: vec![Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            count: 1,
            amount: 1350,
        }],
        receipt: None,
        signature: None,
    };
    signer.sign_settlement(&mut s);
    s
}

fn states(j: &SqliteJournal) -> Vec<(u64, String)> {
    j.outbox(100)
        .unwrap()
        .into_iter()
        .map(|r| match r.item {
            OutboxItem::Entry { state, .. } => (r.seq, state),
            OutboxItem::Settlement { .. } => (r.seq, "settlement".into()),
        })
        .collect()
}

#[test]
fn every_change_is_queued_in_order_and_acknowledged_once() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    let mut j = SqliteJournal::open_in_memory().unwrap();
    assert_eq!(j.last_seq().unwrap(), 0);
    let sale = request(1);
    j.record_intent(TERMINAL, &sale, Some(signer.public_key()), Timestamp(10))
        .unwrap();
    j.mark_sent(&sale.idempotency_key, Timestamp(11)).unwrap();
    // Progress changes neither state, result nor note: nothing for the back office.
    j.record_progress(
        &sale.idempotency_key,
        ProgressStage::CardRead,
        Timestamp(12),
    )
    .unwrap();
    j.record_result(&result(&sale, true, &signer), Timestamp(13))
        .unwrap();
    // The same result again (a retried status query) changes nothing.
    j.record_result(&result(&sale, true, &signer), Timestamp(14))
        .unwrap();
    let declined = request(2);
    j.record_intent(TERMINAL, &declined, None, Timestamp(20))
        .unwrap();
    j.mark_in_doubt(&declined.idempotency_key, "no answer", Timestamp(21))
        .unwrap();
    j.record_result(&result(&declined, false, &signer), Timestamp(22))
        .unwrap();
    assert_eq!(
        states(&j),
        [
            (1, "intent".into()),
            (2, "sent".into()),
            (3, "done".into()),
            (4, "intent".into()),
            (5, "in_doubt".into()),
            (6, "done".into()),
        ]
    );
    let first = &j.outbox(1).unwrap()[0];
    let OutboxItem::Entry { key, request, .. } = &first.item else {
        panic!("an entry: {first:?}");
    };
    assert_eq!(key.as_slice(), sale.idempotency_key.as_bytes());
    assert!(matches!(
        Message::decode(request),
        Ok(Message::Transaction(_))
    ));

    let status = j.outbox_status().unwrap();
    assert_eq!((status.shipped, status.last, status.unshipped), (0, 6, 6));
    assert_eq!(status.oldest_unshipped, Some(Timestamp(10)));
    assert_eq!(status.oldest_unshipped_approved, Some(Timestamp(13)));

    j.acknowledge(3).unwrap();
    assert_eq!(j.shipped().unwrap(), 3);
    assert_eq!(states(&j).first().map(|s| s.0), Some(4));
    let status = j.outbox_status().unwrap();
    assert_eq!(status.unshipped, 3);
    assert_eq!(
        status.oldest_unshipped_approved, None,
        "the one left is a decline: no approved money waits"
    );
    // The mark never goes back, and cannot pass what was made.
    j.acknowledge(1).unwrap();
    assert_eq!(j.shipped().unwrap(), 3);
    assert!(matches!(j.acknowledge(7), Err(JournalError::Storage(_))));
    j.acknowledge(6).unwrap();
    assert!(j.outbox(100).unwrap().is_empty());
    assert_eq!(j.outbox_status().unwrap().unshipped, 0);
    // The entries themselves stay.
    assert_eq!(
        j.get(&sale.idempotency_key).unwrap().unwrap().state,
        EntryState::Done
    );
}

#[test]
fn settlements_are_kept_once_and_queued() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    let mut sqlite = SqliteJournal::open_in_memory().unwrap();
    let mut memory = MemoryJournal::new();
    for j in [&mut sqlite as &mut dyn Journal, &mut memory] {
        let s = settlement(77, 5, &signer);
        j.record_settlement(&s, Some(signer.public_key()), Timestamp(60))
            .unwrap();
        // A retried settlement returns the same result under another request id.
        let mut again = s.clone();
        again.request_id = RequestId::from_u128(9);
        j.record_settlement(&again, Some(signer.public_key()), Timestamp(61))
            .unwrap();
        let other = settlement(77, 6, &signer);
        assert!(matches!(
            j.record_settlement(&other, None, Timestamp(62)),
            Err(JournalError::ConflictingResult(_))
        ));
        let kept = j.settlements(Some(TERMINAL)).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].result, s);
        assert_eq!(kept[0].recorded, Timestamp(60));
        assert!(signer.public_key() == kept[0].terminal_key.unwrap());
        assert!(j.settlements(Some(TerminalId([5; 16]))).unwrap().is_empty());
    }
    let queued = sqlite.outbox(10).unwrap();
    assert_eq!(queued.len(), 1);
    let OutboxItem::Settlement {
        key,
        terminal,
        result,
        recorded,
        ..
    } = &queued[0].item
    else {
        panic!("a settlement: {queued:?}");
    };
    assert_eq!(key.as_slice(), IdempotencyKey::from_u128(77).as_bytes());
    assert_eq!(terminal.as_slice(), TERMINAL.as_bytes());
    assert_eq!(*recorded, 60);
    assert!(
        matches!(Message::decode(result), Ok(Message::SettlementResult(s)) if s.batch_number == 5)
    );
}

#[test]
fn numbering_survives_a_restart_and_an_older_journal_queues_its_history() {
    let dir = std::env::temp_dir().join(format!("posbridge-outbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let signer = SigningIdentity::from_secret(&[9; 32]);

    // A journal at schema version 3 (before the outbox) with two entries.
    let old = dir.join("v3.db");
    {
        let mut j = SqliteJournal::open(&old).unwrap();
        for k in [11, 12] {
            j.record_intent(TERMINAL, &request(k), None, Timestamp(k as u64))
                .unwrap();
        }
    }
    {
        let raw = rusqlite::Connection::open(&old).unwrap();
        raw.execute_batch(
            "DROP TRIGGER outbox_entry_inserted; DROP TRIGGER outbox_entry_changed;
             DROP TRIGGER outbox_settlement; DROP TRIGGER settlements_never_deleted;
             DROP TABLE outbox; DROP TABLE settlements;
             DELETE FROM meta WHERE name = 'shipped'; ALTER TABLE entries DROP COLUMN offline;
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let mut j = SqliteJournal::open(&old).unwrap();
    assert_eq!(j.schema_version().unwrap(), SqliteJournal::SCHEMA_VERSION);
    assert_eq!(
        states(&j),
        [(1, "intent".into()), (2, "intent".into())],
        "the history is queued when the outbox is made"
    );
    j.acknowledge(2).unwrap();
    j.record_result(&result(&request(11), true, &signer), Timestamp(30))
        .unwrap();
    drop(j);

    // Reopened: the mark is kept and numbering goes on after the pruned changes.
    let mut j = SqliteJournal::open(&old).unwrap();
    assert_eq!(j.shipped().unwrap(), 2);
    assert_eq!(states(&j), [(3, "done".into())]);
    j.acknowledge(3).unwrap();
    drop(j);
    let mut j = SqliteJournal::open(&old).unwrap();
    j.record_result(&result(&request(12), false, &signer), Timestamp(31))
        .unwrap();
    assert_eq!(
        states(&j),
        [(4, "done".into())],
        "never a number used twice"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
