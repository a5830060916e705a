//! The engine over a scripted terminal: every way a money command can end is journaled the same
//! way for every protocol, recovery follows the one policy, a key is never charged twice, and a
//! journal failure is returned, never dropped.

use std::cell::Cell;
use std::time::Duration;

use posbridge_api::testing::{Script, ScriptedTerminal};
use posbridge_api::{
    Call, DoubtReason, Engine, InDoubt, PaymentError, PaymentTerminal, RecoveryPolicy,
    ReversalPolicy, reversal_key,
};
use posbridge_journal::{Entry, EntryState, Journal, JournalError, MemoryJournal, Query};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Outcome, PublicKey, TerminalId, Timestamp,
    TransactionCommand, TransactionKind, TransactionRequest, TransactionResult, TransactionStatus,
};

const CALL: Duration = Duration::from_secs(60);

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(1_000_000) };
}

fn clock() -> Timestamp {
    NOW.with(|n| Timestamp(n.get()))
}

fn advance(by: Duration) {
    NOW.with(|n| n.set(n.get() + by.as_millis() as u64));
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey::from_u128(0xE0_0000 + n)
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn engine(remembers_keys: bool) -> Engine<ScriptedTerminal, MemoryJournal> {
    Engine::new(ScriptedTerminal::new(remembers_keys), MemoryJournal::new()).with_clock(clock)
}

fn state(e: &Engine<ScriptedTerminal, impl Journal>, k: IdempotencyKey) -> EntryState {
    e.journal().get(&k).unwrap().unwrap().state
}

async fn sale<J: Journal>(
    e: &Engine<ScriptedTerminal, J>,
    k: IdempotencyKey,
    minor: u64,
) -> Result<TransactionResult, PaymentError<posbridge_api::testing::ScriptError>> {
    e.sale(k, eur(minor), Call::within(CALL)).await
}

#[tokio::test]
async fn approved_declined_and_refused_are_journaled_as_final() {
    for remembers in [true, false] {
        let e = engine(remembers);
        e.adapter()
            .script([Script::Approve, Script::Decline, Script::Refuse]);
        let r = sale(&e, key(1), 1000).await.unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        assert_eq!(state(&e, key(1)), EntryState::Done);
        let d = sale(&e, key(2), 1000).await.unwrap();
        assert!(matches!(d.outcome, Outcome::Declined(_)));
        assert_eq!(state(&e, key(2)), EntryState::Done);
        let refused = sale(&e, key(3), 1000).await.unwrap_err();
        assert!(
            matches!(refused, PaymentError::Refused { key: Some(k), .. } if k == key(3)),
            "{refused}"
        );
        assert_eq!(state(&e, key(3)), EntryState::Rejected);
        // Asked again: the recorded outcomes, nothing sent.
        let seen = e.adapter().seen();
        assert_eq!(sale(&e, key(1), 1000).await.unwrap(), r);
        assert!(matches!(
            sale(&e, key(3), 1000).await,
            Err(PaymentError::AlreadyRefused { .. })
        ));
        assert_eq!(e.adapter().seen(), seen);
        assert_eq!(e.adapter().charges(), vec![key(1)]);
    }
}

#[tokio::test]
async fn a_command_that_does_not_fit_the_terminal_is_not_journaled() {
    let e = engine(true);
    let err = e
        .sale(key(1), Amount::new(100, Currency::USD), Call::within(CALL))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err}");
    assert!(e.journal().get(&key(1)).unwrap().is_none());
    assert_eq!(e.adapter().seen(), 0);
}

#[tokio::test]
async fn a_lost_answer_is_in_doubt_with_its_key_and_recovery_records_it_once() {
    for remembers in [true, false] {
        let e = engine(remembers);
        e.adapter().script([Script::LoseAnswer]);
        let err = sale(&e, key(7), 4200).await.unwrap_err();
        match &err {
            PaymentError::InDoubt(InDoubt { key: k, reason, .. }) => {
                assert_eq!(*k, key(7));
                assert_eq!(*reason, DoubtReason::ConnectionLost);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&key(7).to_string()), "{err}");
        assert_eq!(state(&e, key(7)), EntryState::InDoubt);
        let report = e.recover(CALL).await.unwrap();
        assert_eq!(report.recorded, vec![key(7)], "{report:?}");
        let entry = e.journal().get(&key(7)).unwrap().unwrap();
        assert_eq!(entry.state, EntryState::Done);
        assert_eq!(entry.result.unwrap().outcome, Outcome::Approved);
        assert_eq!(e.adapter().charges(), vec![key(7)]);
        assert!(e.recover(CALL).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_same_key_asked_again_after_a_lost_answer_gets_the_result_not_a_second_charge() {
    for remembers in [true, false] {
        let e = engine(remembers);
        e.adapter().script([Script::LoseAnswer]);
        assert!(sale(&e, key(8), 500).await.is_err());
        let r = sale(&e, key(8), 500).await.unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        assert_eq!(
            e.adapter().charges(),
            vec![key(8)],
            "remembers keys: {remembers}"
        );
        assert_eq!(state(&e, key(8)), EntryState::Done);
    }
}

#[tokio::test]
async fn a_command_the_terminal_never_took_is_sent_again_only_when_the_app_asks() {
    for remembers in [true, false] {
        // Recovery on its own: not taken, recorded as such; the key is final.
        let e = engine(remembers);
        e.adapter().script([Script::LoseCommand]);
        assert!(sale(&e, key(9), 900).await.unwrap_err().is_in_doubt());
        let report = e.recover(CALL).await.unwrap();
        assert_eq!(report.not_taken, vec![key(9)], "{report:?}");
        assert_eq!(state(&e, key(9)), EntryState::Rejected);
        assert!(matches!(
            sale(&e, key(9), 900).await,
            Err(PaymentError::AlreadyRefused { .. })
        ));
        assert!(e.adapter().charges().is_empty());

        // The app asks again with the same key: sent, charged once.
        let e = engine(remembers);
        e.adapter().script([Script::LoseCommand]);
        assert!(sale(&e, key(10), 900).await.is_err());
        let r = sale(&e, key(10), 900).await.unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        assert_eq!(e.adapter().charges(), vec![key(10)]);

        // A window set by the app: recovery sends it again while it is young.
        let e = engine(remembers).with_policy(RecoveryPolicy {
            resend_within: Some(Duration::from_secs(120)),
            reversal: None,
        });
        e.adapter().script([Script::LoseCommand]);
        assert!(sale(&e, key(11), 900).await.is_err());
        advance(Duration::from_secs(60));
        let report = e.recover(CALL).await.unwrap();
        assert_eq!(report.resent, vec![key(11)], "{report:?}");
        // The next sale finds an older one open and sends it first, while it is young.
        e.adapter().script([Script::LoseCommand]);
        assert!(sale(&e, key(12), 900).await.is_err());
        sale(&e, key(14), 900).await.unwrap();
        assert_eq!(state(&e, key(12)), EntryState::Done);
        e.adapter().script([Script::LoseCommand]);
        assert!(sale(&e, key(13), 900).await.is_err());
        advance(Duration::from_secs(121));
        let report = e.recover(CALL).await.unwrap();
        assert_eq!(report.not_taken, vec![key(13)], "{report:?}");
        assert_eq!(e.adapter().charges(), vec![key(11), key(12), key(14)]);
    }
}

#[tokio::test]
async fn not_sent_keeps_the_intent_and_the_same_key_goes_out_later() {
    let e = engine(true);
    e.adapter().script([Script::NotSent]);
    let err = sale(&e, key(20), 300).await.unwrap_err();
    assert!(
        matches!(err, PaymentError::NotSent { key: k, .. } if k == key(20)),
        "{err}"
    );
    assert_eq!(state(&e, key(20)), EntryState::Intent);
    sale(&e, key(20), 300).await.unwrap();
    assert_eq!(e.adapter().charges(), vec![key(20)]);
}

#[tokio::test]
async fn an_unreadable_answer_is_never_approved_and_recovery_finds_the_truth() {
    let e = engine(false);
    e.adapter().script([Script::Garble]);
    let err = sale(&e, key(30), 1234).await.unwrap_err();
    assert!(
        matches!(
            err,
            PaymentError::InDoubt(InDoubt {
                reason: DoubtReason::Unreadable,
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(state(&e, key(30)), EntryState::InDoubt);
    assert_eq!(e.recover(CALL).await.unwrap().recorded, vec![key(30)]);
}

#[tokio::test]
async fn on_a_terminal_without_keys_an_undecided_payment_stops_new_ones() {
    let e = engine(false);
    e.adapter().script([Script::LoseAnswer]);
    assert!(sale(&e, key(40), 100).await.is_err());
    e.adapter().undecided(1);
    let err = sale(&e, key(41), 200).await.unwrap_err();
    match &err {
        PaymentError::StillInDoubt(report) => {
            assert_eq!(report.unresolved.len(), 1);
            assert_eq!(report.unresolved[0].key, key(40));
        }
        other => panic!("{other}"),
    }
    assert!(
        e.journal().get(&key(41)).unwrap().is_none(),
        "nothing new journaled"
    );
    assert!(err.to_string().contains(&key(40).to_string()), "{err}");
    // Once the terminal can tell, the new one goes through.
    sale(&e, key(41), 200).await.unwrap();
    assert_eq!(state(&e, key(40)), EntryState::Done);
    assert_eq!(e.adapter().charges(), vec![key(40), key(41)]);
}

#[tokio::test]
async fn on_a_terminal_with_keys_an_undecided_payment_does_not_stop_new_ones() {
    let e = engine(true);
    e.adapter().script([Script::LoseAnswer]);
    assert!(sale(&e, key(50), 100).await.is_err());
    e.adapter().undecided(1);
    sale(&e, key(51), 200).await.unwrap();
    assert_eq!(state(&e, key(50)), EntryState::InDoubt);
    assert_eq!(e.recover(CALL).await.unwrap().recorded, vec![key(50)]);
}

#[tokio::test]
async fn a_payment_unconfirmed_past_the_deadline_is_reversed_once() {
    let e = engine(true).with_reversal_policy(ReversalPolicy {
        after: Duration::from_secs(300),
        operator: None,
    });
    e.adapter().script([Script::LoseAnswer]);
    assert!(sale(&e, key(60), 700).await.is_err());
    advance(Duration::from_secs(301));
    let report = e.recover(CALL).await.unwrap();
    assert_eq!(report.reversed, vec![key(60)], "{report:?}");
    let void = e.journal().get(&reversal_key(key(60))).unwrap().unwrap();
    assert_eq!(void.kind(), TransactionKind::Void);
    assert_eq!(void.state, EntryState::Done);
    assert!(e.recover(CALL).await.unwrap().is_empty());
    assert_eq!(
        e.adapter().charges(),
        vec![key(60), reversal_key(key(60))],
        "charged once, voided once"
    );
}

#[tokio::test]
async fn a_key_reused_for_another_command_is_refused_before_anything_is_sent() {
    let e = engine(true);
    sale(&e, key(70), 100).await.unwrap();
    let err = sale(&e, key(70), 101).await.unwrap_err();
    assert!(
        matches!(err, PaymentError::Journal(JournalError::KeyReused(_))),
        "{err}"
    );
    assert_eq!(e.adapter().seen(), 1);
}

#[tokio::test]
async fn status_records_what_it_finds() {
    let e = engine(true);
    e.adapter().script([Script::LoseAnswer]);
    assert!(sale(&e, key(80), 100).await.is_err());
    let status = e.status(key(80), CALL).await.unwrap();
    assert!(matches!(status, TransactionStatus::Done(_)), "{status:?}");
    assert_eq!(state(&e, key(80)), EntryState::Done);
    assert_eq!(
        e.status(key(81), CALL).await.unwrap(),
        TransactionStatus::NotFound
    );
}

/// A journal that fails every write once told to.
struct Failing {
    inner: MemoryJournal,
    fail: bool,
}

impl Journal for Failing {
    fn record_intent(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        self.inner
            .record_intent(terminal, request, terminal_key, now)
    }

    fn update(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        if self.fail {
            return Err(JournalError::Storage("disk full".into()));
        }
        self.inner.update(key, change)
    }

    fn get(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        self.inner.get(key)
    }

    fn query(&self, query: &Query) -> Result<Vec<Entry>, JournalError> {
        self.inner.query(query)
    }

    fn record_settlement(
        &mut self,
        result: &posbridge_wire::SettlementResult,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        if self.fail {
            return Err(JournalError::Storage("disk full".into()));
        }
        self.inner.record_settlement(result, terminal_key, now)
    }

    fn settlements(
        &self,
        terminal: Option<TerminalId>,
    ) -> Result<Vec<posbridge_journal::SettlementRecord>, JournalError> {
        self.inner.settlements(terminal)
    }
}

#[tokio::test]
async fn a_journal_failure_is_returned_not_dropped() {
    for script in [Script::Approve, Script::LoseAnswer, Script::Refuse] {
        let e = Engine::new(
            ScriptedTerminal::new(false),
            Failing {
                inner: MemoryJournal::new(),
                fail: true,
            },
        );
        e.adapter().script([script]);
        let err = sale(&e, key(90), 100).await.unwrap_err();
        assert!(
            matches!(err, PaymentError::Journal(JournalError::Storage(_))),
            "{script:?}: {err}"
        );
        // The intent stays: recovery resolves it once the journal works again.
        assert_eq!(state(&e, key(90)), EntryState::Intent);
        e.journal().fail = false;
        let report = e.recover(CALL).await.unwrap();
        let expected = if script == Script::Refuse {
            report.not_taken.clone()
        } else {
            report.recorded.clone()
        };
        assert_eq!(expected, vec![key(90)], "{script:?}: {report:?}");
    }
}

#[tokio::test]
async fn the_same_key_twice_at_once_is_refused_while_the_first_runs() {
    let e = engine(true);
    let (a, b) = tokio::join!(sale(&e, key(100), 100), async {
        tokio::task::yield_now().await;
        sale(&e, key(100), 100).await
    });
    // The scripted terminal answers at once, so the second may find the first done; either
    // way one charge.
    assert!(a.is_ok());
    assert!(
        b.is_ok() || matches!(b, Err(PaymentError::KeyInUse(_))),
        "{b:?}"
    );
    assert_eq!(e.adapter().charges(), vec![key(100)]);
}

/// A small deterministic generator for the schedules below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

#[tokio::test]
async fn random_schedules_never_charge_twice_and_recovery_accounts_for_every_charge() {
    const SCRIPTS: [Script; 7] = [
        Script::Approve,
        Script::Decline,
        Script::Refuse,
        Script::LoseAnswer,
        Script::LoseCommand,
        Script::NotSent,
        Script::Garble,
    ];
    for seed in 0..300u64 {
        let mut rng = Rng(seed);
        let remembers = seed % 2 == 0;
        let e = engine(remembers);
        for op in 0..30u128 {
            let n = rng.below(8) as u128;
            let k = key(1000 + n);
            e.adapter().script([SCRIPTS[rng.below(7) as usize]]);
            if rng.below(5) == 0 {
                e.adapter().undecided(1);
            }
            let result = match rng.below(4) {
                0 => e.recover(CALL).await.map(drop),
                _ => sale(&e, k, 100 + n as u64).await.map(drop),
            };
            if let Err(PaymentError::Journal(err)) = result {
                panic!("seed {seed} op {op}: {err}");
            }
            advance(Duration::from_secs(rng.below(30)));
        }
        // A last recovery while the terminal can tell.
        e.adapter().undecided(0);
        let report = e.recover(CALL).await.unwrap();
        assert!(report.is_clean(), "seed {seed}: {report:?}");
        let charges = e.adapter().charges();
        let mut seen = std::collections::HashSet::new();
        for c in &charges {
            assert!(seen.insert(*c), "seed {seed}: {c} charged twice");
        }
        let journal = e.journal().query(&Query::default()).unwrap();
        for entry in &journal {
            let charged = charges.contains(&entry.key());
            let approved = entry
                .result
                .as_ref()
                .is_some_and(|r| r.outcome.is_approved());
            assert_eq!(
                charged,
                approved,
                "seed {seed}: {} charged {charged}, journaled approved {approved} ({:?}, {:?})",
                entry.key(),
                entry.state,
                entry.note
            );
            assert!(
                matches!(entry.state, EntryState::Done | EntryState::Rejected),
                "seed {seed}: {} left {:?}",
                entry.key(),
                entry.state
            );
        }
        for c in &charges {
            assert!(
                journal.iter().any(|e| e.key() == *c),
                "seed {seed}: charge {c} missing from the journal"
            );
        }
    }
}

#[test]
fn commands_are_the_same_kind_as_their_reversal_needs() {
    let r = TransactionResult {
        kind: TransactionKind::PreAuth,
        ..posbridge_wire::samples::approved_result()
    };
    assert!(matches!(
        posbridge_api::reversal_of(&r),
        Some(TransactionCommand::PreAuthCancel { .. })
    ));
}

#[tokio::test]
async fn a_call_dropped_midway_leaves_its_command_for_the_next_one_to_resolve() {
    let e = engine(false);
    e.adapter().script([Script::Hang]);
    // The app gives up waiting (its own timeout drops the call).
    let gave_up = tokio::time::timeout(Duration::from_millis(20), sale(&e, key(110), 100)).await;
    assert!(gave_up.is_err());
    assert_eq!(state(&e, key(110)), EntryState::Sent);
    // The next payment resolves it first: the terminal never took it.
    sale(&e, key(111), 200).await.unwrap();
    assert_eq!(state(&e, key(110)), EntryState::Rejected);
    assert_eq!(e.adapter().charges(), vec![key(111)]);
}
