//! Both journals behave alike; the SQLite one persists, migrates and refuses what it must.

use posbridge_crypto::SigningIdentity;
use posbridge_journal::{
    EntryState, Journal, JournalError, MemoryJournal, Query, SqliteJournal, export_csv,
    export_jsonl,
};
use posbridge_wire::{
    Credential, IdempotencyKey, OperatorAuth, OperatorSecret, ProgressStage, RequestId, TerminalId,
    Timestamp, TransactionKind, TransactionRequest, TransactionResult, samples,
};

const TERMINAL: TerminalId = TerminalId([4; 16]);

fn request(key: u128) -> TransactionRequest {
    let mut r = samples::sale_request();
    r.idempotency_key = IdempotencyKey::from_u128(key);
    r
}

fn result_for(r: &TransactionRequest, signer: &SigningIdentity) -> TransactionResult {
    let mut x = samples::approved_result();
    x.idempotency_key = r.idempotency_key;
    x.terminal_id = TERMINAL;
    signer.sign_result(&mut x);
    x
}

fn journals() -> Vec<(&'static str, Box<dyn Journal>)> {
    vec![
        ("memory", Box::new(MemoryJournal::new())),
        ("sqlite", Box::new(SqliteJournal::open_in_memory().unwrap())),
    ]
}

#[test]
fn an_entry_goes_from_intent_to_done_and_is_never_lost() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    for (name, mut j) in journals() {
        let mut r = request(1);
        r.operator = Some(OperatorAuth {
            operator_id: "anna".into(),
            credential: Credential::Pin(OperatorSecret::new("4711").unwrap()),
        });
        j.record_intent(TERMINAL, &r, Some(signer.public_key()), Timestamp(10))
            .unwrap();
        let e = j.get(&r.idempotency_key).unwrap().unwrap();
        assert_eq!(e.state, EntryState::Intent, "{name}");
        assert_eq!(
            e.request.operator, None,
            "{name}: credentials are never stored"
        );
        assert_eq!(j.unresolved().unwrap().len(), 1, "{name}");

        j.mark_sent(&r.idempotency_key, Timestamp(11)).unwrap();
        j.record_progress(&r.idempotency_key, ProgressStage::CardRead, Timestamp(12))
            .unwrap();
        j.mark_in_doubt(&r.idempotency_key, "link lost", Timestamp(13))
            .unwrap();
        let e = j.get(&r.idempotency_key).unwrap().unwrap();
        assert_eq!(
            (e.state, e.stage, e.note.as_deref()),
            (
                EntryState::InDoubt,
                Some(ProgressStage::CardRead),
                Some("link lost")
            ),
            "{name}"
        );
        // Resent after a status query said "not found".
        j.mark_sent(&r.idempotency_key, Timestamp(14)).unwrap();
        let result = result_for(&r, &signer);
        j.record_result(&result, Timestamp(15)).unwrap();
        let e = j.get(&r.idempotency_key).unwrap().unwrap();
        assert_eq!(e.state, EntryState::Done, "{name}");
        assert_eq!(e.result.as_ref(), Some(&result), "{name}");
        assert_eq!(
            (e.created, e.updated),
            (Timestamp(10), Timestamp(15)),
            "{name}"
        );
        assert!(j.unresolved().unwrap().is_empty(), "{name}");
        // Later noise changes nothing about a finished entry.
        j.mark_in_doubt(&r.idempotency_key, "late", Timestamp(16))
            .unwrap();
        assert_eq!(
            j.get(&r.idempotency_key).unwrap().unwrap().state,
            EntryState::Done
        );
    }
}

#[test]
fn keys_and_results_cannot_be_rewritten() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    for (name, mut j) in journals() {
        let r = request(2);
        j.record_intent(TERMINAL, &r, None, Timestamp(1)).unwrap();
        // The same command again (a retry with a new request id): fine.
        let mut retry = r.clone();
        retry.request_id = RequestId::from_u128(99);
        j.record_intent(TERMINAL, &retry, None, Timestamp(2))
            .unwrap();
        // Another command under the key: refused.
        let mut other = r.clone();
        other.order_ref = Some("ANOTHER".into());
        assert!(
            matches!(
                j.record_intent(TERMINAL, &other, None, Timestamp(3)),
                Err(JournalError::KeyReused(_))
            ),
            "{name}"
        );
        let result = result_for(&r, &signer);
        j.record_result(&result, Timestamp(4)).unwrap();
        // The same result again (a repeat answer carries a new request id): fine.
        let mut repeat = result.clone();
        repeat.request_id = RequestId::from_u128(7);
        j.record_result(&repeat, Timestamp(5)).unwrap();
        // A different one: refused, the first kept.
        let mut forged = result.clone();
        forged.approved_minor = 1;
        assert!(
            matches!(
                j.record_result(&forged, Timestamp(6)),
                Err(JournalError::ConflictingResult(_))
            ),
            "{name}"
        );
        assert_eq!(
            j.get(&r.idempotency_key).unwrap().unwrap().result,
            Some(result),
            "{name}"
        );
        assert!(matches!(
            j.mark_sent(&IdempotencyKey::from_u128(404), Timestamp(7)),
            Err(JournalError::UnknownKey(_))
        ));
    }
}

#[test]
fn queries_by_time_state_terminal_and_kind() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    for (name, mut j) in journals() {
        for k in 0..6u128 {
            let mut r = request(100 + k);
            if k % 2 == 1 {
                r.command = posbridge_wire::TransactionCommand::PreAuth {
                    amount: posbridge_wire::Amount::new(500, posbridge_wire::Currency::EUR),
                };
            }
            let terminal = if k < 4 { TERMINAL } else { TerminalId([5; 16]) };
            j.record_intent(terminal, &r, None, Timestamp(1000 + k as u64 * 10))
                .unwrap();
            if k < 3 {
                j.record_result(&result_for(&r, &signer), Timestamp(2000))
                    .unwrap();
            }
        }
        let q = |q: Query| j.query(&q).unwrap().len();
        assert_eq!(q(Query::default()), 6, "{name}");
        assert_eq!(
            q(Query {
                from: Some(Timestamp(1010)),
                until: Some(Timestamp(1040)),
                ..Query::default()
            }),
            3,
            "{name}"
        );
        assert_eq!(
            q(Query {
                states: Some(vec![EntryState::Done]),
                ..Query::default()
            }),
            3,
            "{name}"
        );
        assert_eq!(
            q(Query {
                terminal: Some(TerminalId([5; 16])),
                ..Query::default()
            }),
            2,
            "{name}"
        );
        assert_eq!(
            q(Query {
                kind: Some(TransactionKind::PreAuth),
                terminal: Some(TERMINAL),
                ..Query::default()
            }),
            2,
            "{name}"
        );
        let order: Vec<u64> = j
            .query(&Query::default())
            .unwrap()
            .iter()
            .map(|e| e.created.0)
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "{name}: oldest first"
        );
    }
}

#[test]
fn the_sqlite_journal_persists_migrates_and_refuses_deletes_and_newer_schemas() {
    let dir = std::env::temp_dir().join(format!("posbridge-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.db");
    let signer = SigningIdentity::from_secret(&[9; 32]);
    let r = request(3);
    {
        let mut j = SqliteJournal::open(&path).unwrap();
        assert_eq!(j.schema_version().unwrap(), SqliteJournal::SCHEMA_VERSION);
        j.record_intent(TERMINAL, &r, Some(signer.public_key()), Timestamp(1))
            .unwrap();
        j.mark_sent(&r.idempotency_key, Timestamp(2)).unwrap();
    }
    // A restart: the entry is there, in doubt.
    let mut j = SqliteJournal::open(&path).unwrap();
    let unresolved = j.unresolved().unwrap();
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].state, EntryState::Sent);
    assert_eq!(unresolved[0].terminal_key, Some(signer.public_key()));
    j.record_result(&result_for(&r, &signer), Timestamp(3))
        .unwrap();
    drop(j);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let err = raw.execute("DELETE FROM entries", []).unwrap_err();
    assert!(err.to_string().contains("never deleted"), "{err}");
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    assert!(matches!(
        SqliteJournal::open(&path),
        Err(JournalError::SchemaTooNew { found: 99, .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exports_carry_the_record_and_check_signatures_offline() {
    let signer = SigningIdentity::from_secret(&[9; 32]);
    let mut j = MemoryJournal::new();
    let mut r = request(4);
    r.order_ref = Some("table 7, \"window\"".into());
    j.record_intent(TERMINAL, &r, Some(signer.public_key()), Timestamp(1))
        .unwrap();
    j.record_result(&result_for(&r, &signer), Timestamp(2))
        .unwrap();
    // A tampered result (approved amount changed after signing).
    let t = request(5);
    j.record_intent(TERMINAL, &t, Some(signer.public_key()), Timestamp(3))
        .unwrap();
    let mut tampered = result_for(&t, &signer);
    tampered.approved_minor += 1;
    j.record_result(&tampered, Timestamp(4)).unwrap();
    // One still in doubt.
    j.record_intent(TERMINAL, &request(6), None, Timestamp(5))
        .unwrap();

    let entries = j.query(&Query::default()).unwrap();
    let mut csv = Vec::new();
    export_csv(&entries, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("created_ms,updated_ms,idempotency_key,terminal,kind,state"));
    assert!(lines[1].contains(",approved,"), "{}", lines[1]);
    assert!(
        lines[1].contains("\"table 7, \"\"window\"\"\""),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("411111******1111"));
    assert!(lines[1].contains(",valid,"), "{}", lines[1]);
    assert!(lines[2].contains(",INVALID,"), "{}", lines[2]);
    assert!(lines[3].contains(",intent,"), "{}", lines[3]);

    let mut jsonl = Vec::new();
    export_jsonl(&entries, &mut jsonl).unwrap();
    let jsonl = String::from_utf8(jsonl).unwrap();
    let first = jsonl.lines().next().unwrap();
    assert!(first.starts_with('{') && first.ends_with('}'));
    assert!(
        first.contains("\"order_ref\":\"table 7, \\\"window\\\"\""),
        "{first}"
    );
    assert!(first.contains("\"signature\":\"valid\""), "{first}");
    assert!(jsonl.lines().nth(2).unwrap().contains("\"outcome\":null"));
}

#[test]
fn a_rejected_command_is_final() {
    for (name, mut j) in journals() {
        let r = request(7);
        j.record_intent(TERMINAL, &r, None, Timestamp(1)).unwrap();
        j.mark_rejected(&r.idempotency_key, "amount over the limit", Timestamp(2))
            .unwrap();
        let e = j.get(&r.idempotency_key).unwrap().unwrap();
        assert_eq!(e.state, EntryState::Rejected, "{name}");
        assert!(
            j.unresolved().unwrap().is_empty(),
            "{name}: nothing to recover"
        );
        j.mark_sent(&r.idempotency_key, Timestamp(3)).unwrap();
        assert_eq!(
            j.get(&r.idempotency_key).unwrap().unwrap().state,
            EntryState::Rejected,
            "{name}"
        );
        // The terminal may refuse a command it was sent (a wrong operator PIN): also final.
        let s = request(8);
        j.record_intent(TERMINAL, &s, None, Timestamp(4)).unwrap();
        j.mark_sent(&s.idempotency_key, Timestamp(5)).unwrap();
        j.mark_rejected(
            &s.idempotency_key,
            "refused: AUTHORIZATION_FAILED",
            Timestamp(6),
        )
        .unwrap();
        assert_eq!(
            j.get(&s.idempotency_key).unwrap().unwrap().state,
            EntryState::Rejected,
            "{name}"
        );
        assert!(j.unresolved().unwrap().is_empty(), "{name}");
    }
}

#[test]
fn unresolved_answers_from_an_index_what_a_query_by_state_finds() {
    let signer = SigningIdentity::generate().unwrap();
    for (name, mut j) in journals() {
        for n in 0..60u128 {
            let r = request(n);
            j.record_intent(TERMINAL, &r, None, Timestamp(n as u64))
                .unwrap();
            let key = r.idempotency_key;
            match n % 6 {
                0 => j.mark_sent(&key, Timestamp(100)).unwrap(),
                1 => j.mark_in_doubt(&key, "lost", Timestamp(100)).unwrap(),
                2 => j
                    .record_result(&result_for(&r, &signer), Timestamp(100))
                    .unwrap(),
                3 => j.mark_rejected(&key, "refused", Timestamp(100)).unwrap(),
                4 => {
                    j.mark_in_doubt(&key, "lost", Timestamp(100)).unwrap();
                    j.record_result(&result_for(&r, &signer), Timestamp(101))
                        .unwrap();
                }
                _ => {}
            }
        }
        let by_query = j
            .query(&Query {
                states: Some(vec![
                    EntryState::Intent,
                    EntryState::Sent,
                    EntryState::InDoubt,
                ]),
                ..Query::default()
            })
            .unwrap();
        let unresolved = j.unresolved().unwrap();
        assert_eq!(unresolved, by_query, "{name}");
        assert_eq!(unresolved.len(), 30, "{name}");
    }
}

#[cfg(unix)]
#[test]
fn the_sqlite_journal_and_its_wal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("posbridge-journal-mode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let path = dir.join("journal.db");
    let mut j = SqliteJournal::open(&path).unwrap();
    j.record_intent(TERMINAL, &request(1), None, Timestamp(1))
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("journal.db-wal")), 0o600);
    drop(j);
    // A journal an earlier version left readable by everyone is made owner-only when opened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let j = SqliteJournal::open(&path).unwrap();
    assert_eq!(
        j.get(&request(1).idempotency_key).unwrap().unwrap().state,
        EntryState::Intent
    );
    assert_eq!(mode(&path), 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_journal_knows_itself_and_a_damaged_entry_does_not_hide_the_others() {
    let dir = std::env::temp_dir().join(format!("posbridge-journal-damage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.db");
    let id = {
        let mut j = SqliteJournal::open(&path).unwrap();
        for k in 1..=3 {
            j.record_intent(TERMINAL, &request(k), None, Timestamp(k as u64))
                .unwrap();
        }
        assert!(j.check_integrity().unwrap().is_empty());
        j.identity().unwrap()
    };
    // The same file keeps its identity.
    assert_eq!(SqliteJournal::open(&path).unwrap().identity().unwrap(), id);

    // One entry's stored request damaged (as a bad sector or a stray write would).
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE entries SET request = x'ff00ff' WHERE key = ?1",
            [request(2).idempotency_key.as_bytes().to_vec()],
        )
        .unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    assert!(matches!(
        j.query(&Query::default()),
        Err(JournalError::Corrupt { .. })
    ));
    let scan = j.scan(&Query::default()).unwrap();
    let keys: Vec<_> = scan.entries.iter().map(|e| e.key()).collect();
    assert_eq!(
        keys,
        vec![request(1).idempotency_key, request(3).idempotency_key]
    );
    assert!(matches!(
        &scan.damaged[..],
        [JournalError::Corrupt { key: Some(k), .. }] if *k == request(2).idempotency_key
    ));
    drop(j);

    // Truncated to nothing, the file is a new, empty journal to SQLite — with another identity.
    std::fs::write(&path, b"").unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("journal.db{suffix}")));
    }
    let j = SqliteJournal::open(&path).unwrap();
    assert!(j.query(&Query::default()).unwrap().is_empty());
    assert_ne!(j.identity().unwrap(), id);
    drop(j);

    // Pages damaged in the middle of the file: the integrity check says so.
    let mut j = SqliteJournal::open(&path).unwrap();
    for k in 10..200 {
        j.record_intent(TERMINAL, &request(k), None, Timestamp(k as u64))
            .unwrap();
    }
    drop(j);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
    // The headers of pages 2 and 3 (b-tree pages of 4096 bytes).
    for page in [1, 2] {
        for b in &mut bytes[page * 4096..page * 4096 + 12] {
            *b = 0xA5;
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    let found = SqliteJournal::open(&path).and_then(|j| j.check_integrity());
    assert!(
        matches!(&found, Ok(problems) if !problems.is_empty()) || found.is_err(),
        "{found:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A payment approved offline and its final outcome: pending (counted, never recovered), then
/// confirmed (done) or declined after the fact (final, not charged); the outcome is kept and
/// cannot be rewritten; an outcome for a result that was not offline is refused.
#[test]
fn a_payment_approved_offline_waits_for_its_final_outcome() {
    use posbridge_wire::{DeclineReason, OfflineOutcome, OfflineState};
    let signer = SigningIdentity::from_secret(&[9; 32]);
    let outcome = |r: &TransactionResult, state: OfflineState| {
        let mut o = OfflineOutcome {
            request_id: None,
            idempotency_key: r.idempotency_key,
            transaction_id: r.transaction_id,
            terminal_id: r.terminal_id,
            state,
            time: Timestamp(50),
            signature: None,
        };
        signer.sign_offline_outcome(&mut o);
        o
    };
    let offline_result = |r: &TransactionRequest| {
        let mut x = samples::approved_result();
        x.idempotency_key = r.idempotency_key;
        x.terminal_id = TERMINAL;
        x.offline = true;
        signer.sign_result(&mut x);
        x
    };
    let dir = std::env::temp_dir().join(format!("posbridge-offline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("journal.db");
    let mut all = journals();
    all.push(("sqlite file", Box::new(SqliteJournal::open(&path).unwrap())));
    for (name, mut j) in all {
        let (a, b, c) = (request(21), request(22), request(23));
        for r in [&a, &b, &c] {
            j.record_intent(TERMINAL, r, None, Timestamp(1)).unwrap();
            j.mark_sent(&r.idempotency_key, Timestamp(2)).unwrap();
        }
        let (ra, rb) = (offline_result(&a), offline_result(&b));
        j.record_result(&ra, Timestamp(3)).unwrap();
        j.record_result(&rb, Timestamp(3)).unwrap();
        let online = result_for(&c, &signer);
        j.record_result(&online, Timestamp(3)).unwrap();
        let state = |j: &dyn Journal, r: &TransactionRequest| {
            j.get(&r.idempotency_key).unwrap().unwrap().state
        };
        assert_eq!(state(&*j, &a), EntryState::OfflinePending, "{name}");
        assert_eq!(state(&*j, &c), EntryState::Done, "{name}");
        assert!(
            j.unresolved().unwrap().is_empty(),
            "{name}: never recovered"
        );
        let pending: Vec<_> = j
            .offline_pending()
            .unwrap()
            .iter()
            .map(|e| e.key())
            .collect();
        assert_eq!(pending, [a.idempotency_key, b.idempotency_key], "{name}");
        // Nothing moves a pending entry back: a late sent mark, doubt or refusal.
        j.mark_in_doubt(&a.idempotency_key, "late", Timestamp(4))
            .unwrap();
        j.mark_rejected(&a.idempotency_key, "late", Timestamp(4))
            .unwrap();
        j.mark_sent(&a.idempotency_key, Timestamp(4)).unwrap();
        assert_eq!(state(&*j, &a), EntryState::OfflinePending, "{name}");
        // The same result again (a status query) changes nothing either.
        j.record_result(&ra, Timestamp(5)).unwrap();
        assert_eq!(state(&*j, &a), EntryState::OfflinePending, "{name}");

        // Pending: nothing changes. Confirmed: done. Declined after the fact: final, with why.
        assert!(
            !j.record_offline_outcome(&outcome(&ra, OfflineState::Pending), Timestamp(6))
                .unwrap()
        );
        let confirmed = outcome(&ra, OfflineState::Confirmed);
        assert!(j.record_offline_outcome(&confirmed, Timestamp(7)).unwrap());
        let declined = outcome(&rb, OfflineState::Declined(DeclineReason::DO_NOT_HONOUR));
        assert!(j.record_offline_outcome(&declined, Timestamp(7)).unwrap());
        let ea = j.get(&a.idempotency_key).unwrap().unwrap();
        let eb = j.get(&b.idempotency_key).unwrap().unwrap();
        assert_eq!(
            (ea.state, ea.offline.as_ref()),
            (EntryState::Done, Some(&confirmed)),
            "{name}"
        );
        assert_eq!(
            (eb.state, eb.offline.as_ref()),
            (EntryState::DeclinedAfter, Some(&declined)),
            "{name}"
        );
        assert!(eb.state.is_final(), "{name}");
        assert!(eb.note.unwrap().contains("reason 5"), "{name}");
        assert!(j.offline_pending().unwrap().is_empty(), "{name}");

        // Again: nothing changes; the other outcome: a conflict, the first kept.
        assert!(!j.record_offline_outcome(&declined, Timestamp(8)).unwrap());
        let flip = outcome(&rb, OfflineState::Confirmed);
        assert!(matches!(
            j.record_offline_outcome(&flip, Timestamp(8)),
            Err(JournalError::ConflictingResult(_))
        ));
        assert_eq!(state(&*j, &b), EntryState::DeclinedAfter, "{name}");
        // An outcome for a payment approved online, or naming another transaction: refused.
        assert!(matches!(
            j.record_offline_outcome(&outcome(&online, OfflineState::Confirmed), Timestamp(9)),
            Err(JournalError::NotOffline(_))
        ));
        let mut other = outcome(&ra, OfflineState::Confirmed);
        other.transaction_id = posbridge_wire::TransactionId([0xEE; 16]);
        assert!(matches!(
            j.record_offline_outcome(&other, Timestamp(9)),
            Err(JournalError::NotOffline(_))
        ));
        // Unknown key.
        let mut stray = outcome(&ra, OfflineState::Confirmed);
        stray.idempotency_key = IdempotencyKey::from_u128(999);
        assert!(matches!(
            j.record_offline_outcome(&stray, Timestamp(9)),
            Err(JournalError::UnknownKey(_))
        ));
    }
    // Persisted: reopened, the states and the signed outcome read back.
    let j = SqliteJournal::open(&path).unwrap();
    let eb = j.get(&request(22).idempotency_key).unwrap().unwrap();
    assert_eq!(eb.state, EntryState::DeclinedAfter);
    let key = SigningIdentity::from_secret(&[9; 32]).public_key();
    posbridge_crypto::verify_offline_outcome(&key, eb.offline.as_ref().unwrap()).unwrap();
    drop(j);
    let _ = std::fs::remove_dir_all(&dir);
}
