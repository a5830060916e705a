//! Every fault the simulator injects, through the real client SDK (`Payments` over
//! `NativeClient`, journal before sending, recovery on reconnect): each gives its documented
//! outcome, and no payment is lost or taken twice. Also the batch log: a simulator restarted
//! mid-batch settles the same totals.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, PaymentError, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Fault, FaultAction, FaultPoint, Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Outcome, SettlementRequest, Timestamp, TransactionCommand,
};
use posbridge_wire::{Credential, OperatorAuth, OperatorSecret, RequestId};

const CALL: Duration = Duration::from_secs(120);

fn client_identity() -> Arc<LocalIdentity> {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| Arc::new(LocalIdentity::generate(PeerId([3; 16]), "Till").unwrap()))
        .clone()
}

fn terminal_identity() -> Arc<LocalIdentity> {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| {
        Arc::new(
            LocalIdentity::generate(TerminalProfile::default().terminal_id.into(), "sim").unwrap(),
        )
    })
    .clone()
}

fn profile() -> TerminalProfile {
    TerminalProfile {
        latency: Latency {
            card: Duration::from_millis(300),
            read: Duration::from_millis(100),
            pin: Duration::from_millis(500),
            online: Duration::from_millis(400),
            card_timeout: Duration::from_secs(30),
        },
        ..TerminalProfile::default()
    }
}

/// A terminal that serves any number of connections over memory links, one simulator.
struct Terminal {
    context: TerminalContext,
    app: SharedApp<Simulator>,
}

impl Terminal {
    fn new(sim: Simulator) -> Self {
        let mut registry = PairingRegistry::new();
        registry.add(PairingRecord {
            peer: client_identity().public_keys(),
            peer_role: Role::Client,
            paired_at: Timestamp(0),
        });
        let context = TerminalContext::new(
            terminal_identity(),
            registry,
            profile().capabilities(),
            1000,
        );
        context
            .operators
            .lock()
            .unwrap()
            .add_pin("manager", "2468")
            .unwrap();
        Self {
            context,
            app: SharedApp::new(sim),
        }
    }

    async fn connect(&self, journal: MemoryJournal) -> Payments<MemoryJournal> {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let session = TerminalSession::new(
            SessionConfig::default(),
            self.context.clone(),
            driver::now(),
        );
        let mut app = self.app.clone();
        tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut app).await });
        let options = ConnectOptions {
            session: SessionConfig::default(),
            identity: client_identity(),
            security: ClientSecurity::Paired {
                terminal_key: terminal_identity().channel().public(),
            },
            hello: hello(),
            timeout: Duration::from_secs(30),
        };
        let client = NativeClient::connect(ours, options).await.expect("connect");
        Payments::new(
            NativeAdapter::new(client, Some(terminal_identity().signing().public_key())),
            journal,
        )
    }

    fn charged(&self, key: IdempotencyKey) -> usize {
        self.app
            .lock()
            .transactions()
            .filter(|r| r.idempotency_key == key)
            .count()
    }
}

fn sim() -> Simulator {
    Simulator::new(
        profile(),
        terminal_identity(),
        driver::now(),
        Timestamp(1_764_000_000_000),
    )
}

fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

/// A sale hit by a dropped connection at `at`: what the app sees at once, then what recovery
/// on the next connection makes of it.
async fn dropped_at(
    at: FaultPoint,
    minor: u64,
) -> (
    Result<Outcome, PaymentError<posbridge::ClientError>>,
    Outcome,
) {
    let mut s = sim();
    s.set_faults(vec![Fault {
        at,
        action: FaultAction::Drop,
        times: 1,
    }]);
    let terminal = Terminal::new(s);
    let key = IdempotencyKey::from_u128(0xFA17 + minor as u128);
    let payments = terminal.connect(MemoryJournal::new()).await;
    let first = payments
        .transaction(key, sale(minor), CALL)
        .await
        .map(|r| r.outcome);
    // Let the terminal notice, and let the payment run on there.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (client, journal) = payments.into_parts();
    drop(client);
    let payments = terminal.connect(journal).await;
    let report = payments.recover(CALL).await.expect("recovery");
    assert!(
        report.unresolved.is_empty() && report.running.is_empty(),
        "{report:?}"
    );
    let entry = payments.journal().get(&key).unwrap().expect("journaled");
    assert_eq!(entry.state, EntryState::Done, "{entry:?}");
    let outcome = entry.result.expect("result recorded").outcome;
    assert_eq!(
        terminal.charged(key),
        1,
        "charged once, not twice, not never"
    );
    (first, outcome)
}

#[tokio::test(start_paused = true)]
async fn drop_after_the_request_the_terminal_finishes_and_recovery_records_it() {
    let (first, recovered) = dropped_at(FaultPoint::AfterRequest, 1000).await;
    assert!(first.is_err(), "the app sees the loss: {first:?}");
    assert_eq!(recovered, Outcome::Approved);
}

#[tokio::test(start_paused = true)]
async fn drop_after_the_card_read() {
    let (first, recovered) = dropped_at(FaultPoint::AfterCardRead, 2000).await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(recovered, Outcome::Approved);
}

#[tokio::test(start_paused = true)]
async fn drop_before_the_result_leaves_it_stored_on_the_terminal() {
    // 12.51: a decline, so recovery must record the terminal's answer, not assume approval.
    let (first, recovered) = dropped_at(FaultPoint::BeforeResult, 1251).await;
    assert!(first.is_err(), "{first:?}");
    assert!(matches!(recovered, Outcome::Declined(_)), "{recovered:?}");
}

#[tokio::test(start_paused = true)]
async fn drop_after_the_result_the_app_already_has_it() {
    let (first, recovered) = dropped_at(FaultPoint::AfterResult, 3000).await;
    assert_eq!(first.unwrap(), Outcome::Approved);
    assert_eq!(recovered, Outcome::Approved);
}

#[tokio::test(start_paused = true)]
async fn silence_and_reboot_go_to_the_handler() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut s = sim();
    s.set_faults(vec![
        "silence:after-card-read".parse().unwrap(),
        "reboot:before-result".parse().unwrap(),
    ]);
    let log = seen.clone();
    s.set_fault_handler(Box::new(move |_, action| log.lock().unwrap().push(action)));
    let terminal = Terminal::new(s);
    let payments = terminal.connect(MemoryJournal::new()).await;
    // The handler here does nothing to the link, so the sale completes: the handler was told.
    let r = payments
        .transaction(IdempotencyKey::from_u128(5), sale(500), CALL)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![FaultAction::Silence, FaultAction::Reboot]
    );
    assert!(terminal.app.lock().faults().iter().all(|f| f.times == 0));
}

#[test]
fn fault_descriptions_parse_and_bad_ones_are_explained() {
    let f: Fault = "drop:after-result:3".parse().unwrap();
    assert_eq!(
        f,
        Fault {
            at: FaultPoint::AfterResult,
            action: FaultAction::Drop,
            times: 3
        }
    );
    for bad in [
        "drop",
        "explode:after-result",
        "drop:later",
        "drop:after-result:x",
    ] {
        let e = bad.parse::<Fault>().unwrap_err();
        assert!(e.to_string().contains("ACTION:POINT"), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_batch_survives_a_restart_and_settles_the_same_totals() {
    let dir = std::env::temp_dir().join(format!("posbridge-sim-batch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("batch.log");
    let totals_before;
    {
        let terminal = Terminal::new(sim().with_batch_log(&path).unwrap());
        let payments = terminal.connect(MemoryJournal::new()).await;
        for (i, minor) in [1000u64, 2550, 1251].into_iter().enumerate() {
            payments
                .transaction(
                    IdempotencyKey::from_u128(100 + i as u128),
                    sale(minor),
                    CALL,
                )
                .await
                .unwrap();
        }
        totals_before = terminal.app.lock().totals();
        assert_eq!(terminal.app.lock().batch_log_errors(), 0);
    }
    // A new process: the batch comes back from the log, trace numbers go on.
    let terminal = Terminal::new(sim().with_batch_log(&path).unwrap());
    assert_eq!(terminal.app.lock().totals(), totals_before);
    assert_eq!(terminal.app.lock().transactions().count(), 3);
    let payments = terminal.connect(MemoryJournal::new()).await;
    let fourth = payments
        .transaction(IdempotencyKey::from_u128(200), sale(400), CALL)
        .await
        .unwrap();
    assert_eq!(fourth.reference.as_deref(), Some("000100000004"));
    let settle = posbridge_wire::Message::Settlement(SettlementRequest {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(900),
        operator: Some(OperatorAuth {
            operator_id: "manager".into(),
            credential: Credential::Pin(OperatorSecret::new("2468").unwrap()),
        }),
    });
    let answer = payments.adapter().client().request(settle, CALL).await;
    let Ok(posbridge_wire::Message::SettlementResult(report)) = answer else {
        panic!("{answer:?}");
    };
    let approved: u64 = report.totals.iter().map(|t| t.amount).sum();
    assert_eq!(approved, 1000 + 2550 + 400);
    // After settling, a restart opens batch 2, empty.
    drop(payments);
    drop(terminal);
    let again = sim().with_batch_log(&path).unwrap();
    assert_eq!(again.batch_number(), 2);
    assert_eq!(again.transactions().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn scenario_files_parse_with_every_section_and_explain_mistakes() {
    use posbridge_sim::{CardBehaviour, Scenario};
    let s = Scenario::from_toml(
        r#"
cards = ["approve", "decline:51", "wrong-pin", "partial:30", "no-card", "offline", "pin", "removed"]
faults = ["drop:before-result", "reboot:after-card-read:2"]

[terminal]
merchant_name = "Café am Markt"
currencies = ["EUR", "CHF", "978"]
methods = ["contactless", "chip", "qr", "wallet"]
floor_limit = 2500
max_sale = 100000

[latency]
card = 600
online = 400

[device]
battery = 40
battery_drain = 2
power = "usb"
paper = "none"
offline_after = 3
offline_for = 4
update_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
update_fails = true

[customer]
delay_ms = 800
tip = "custom:250"
confirm = false
number = 214
signs = false
absent = true

[link]
corrupt = 0.001
delay_ms = 50
seed = 7
"#,
    )
    .unwrap();
    let d = &s.profile.device;
    assert_eq!(
        (
            d.battery,
            d.battery_drain,
            d.power,
            d.paper,
            d.offline_after,
            d.offline_for
        ),
        (
            Some(40),
            2,
            posbridge_wire::PowerSource::Usb,
            None,
            Some(3),
            4
        )
    );
    assert!(d.update_fails);
    assert_eq!(
        d.update_key.map(|k| k.0[0]),
        Some(0xd7),
        "the publisher's key from the scenario"
    );
    let c = &s.profile.customer;
    assert_eq!(c.delay, Duration::from_millis(800));
    assert_eq!(c.tip, posbridge_sim::TipChoice::Custom(250));
    assert!(!c.confirm && !c.signs && c.absent);
    assert_eq!(c.number, 214);
    assert_eq!(s.profile.merchant_name, "Café am Markt");
    assert_eq!(
        s.profile.currencies,
        vec![Currency::EUR, Currency::CHF, Currency::EUR]
    );
    assert_eq!(s.profile.floor_limit, 2500);
    assert!(
        s.profile
            .limits
            .iter()
            .any(|l| l.kind == posbridge_wire::TransactionKind::Sale && l.max == 100_000)
    );
    assert_eq!(s.profile.latency.card, Duration::from_millis(600));
    assert_eq!(s.cards.len(), 8);
    assert_eq!(
        s.cards[1],
        CardBehaviour::Decline(posbridge_wire::DeclineReason::INSUFFICIENT_FUNDS)
    );
    assert_eq!(s.cards[3], CardBehaviour::Partial { percent: 30 });
    assert_eq!(s.faults.len(), 2);
    assert_eq!(s.faults[1].times, 2);
    assert_eq!(s.link.delay, Duration::from_millis(50));
    assert_eq!(s.link.seed, 7);
    for (bad, why) in [
        ("[terminal]\ncolour = \"red\"\n", "colour"),
        ("[terminal]\ncurrencies = [\"XYZ\"]\n", "XYZ"),
        ("[terminal]\nmethods = [\"cheque\"]\n", "cheque"),
        ("cards = [\"partial:150\"]\n", "partial:150"),
        ("faults = [\"drop:never\"]\n", "never"),
        ("[link]\ncorrupt = 2.0\n", "probability"),
        ("[device]\nbattery = 140\n", "0 to 100"),
        ("[device]\npower = \"solar\"\n", "solar"),
        ("[device]\noffline_for = 2\n", "offline_after"),
        ("[device]\nupdate_key = \"abc\"\n", "64 hex digits"),
        ("[customer]\ntip = \"lots\"\n", "preset:N"),
        ("[customer]\nmood = \"happy\"\n", "mood"),
    ] {
        let e = Scenario::from_toml(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[tokio::test(start_paused = true)]
async fn every_test_card_through_the_client_sdk() {
    use posbridge_wire::{DeclineReason as D, ErrorCode};
    let terminal = Terminal::new(sim());
    let payments = terminal.connect(MemoryJournal::new()).await;
    let cases: Vec<(u64, Outcome, u64, bool)> = vec![
        (1000, Outcome::Approved, 1000, false),
        (1005, Outcome::Declined(D::DO_NOT_HONOUR), 0, false),
        (1010, Outcome::PartiallyApproved, 505, false),
        (1013, Outcome::Failed(ErrorCode::CARD_REMOVED), 0, false),
        (1014, Outcome::Declined(D::INVALID_CARD), 0, false),
        (1018, Outcome::Failed(ErrorCode::TIMEOUT), 0, false),
        (1020, Outcome::Approved, 1020, false),
        (1051, Outcome::Declined(D::INSUFFICIENT_FUNDS), 0, false),
        (1054, Outcome::Declined(D::EXPIRED_CARD), 0, false),
        (1055, Outcome::Declined(D::WRONG_PIN), 0, false),
        (1057, Outcome::Declined(D::NOT_PERMITTED), 0, false),
        (1059, Outcome::Declined(D::SUSPECTED_FRAUD), 0, false),
        (1061, Outcome::Declined(D::LIMIT_EXCEEDED), 0, false),
        (4991, Outcome::Approved, 4991, true),
        (5091, Outcome::Declined(D::ISSUER_UNAVAILABLE), 0, false),
    ];
    for (i, (minor, outcome, approved, offline)) in cases.into_iter().enumerate() {
        let key = IdempotencyKey::from_u128(0xCA4D_0000 + i as u128);
        let r = payments
            .transaction(key, sale(minor), CALL)
            .await
            .unwrap_or_else(|e| panic!("{minor}: {e}"));
        assert_eq!(r.outcome, outcome, "amount {minor}");
        assert_eq!(r.approved_minor, approved, "amount {minor}");
        assert_eq!(r.offline, offline, "amount {minor}");
        let entry = payments.journal().get(&key).unwrap().unwrap();
        // Refusals are final answers, recorded; nothing is left in doubt. An approval offline
        // waits for the acquirer's word, counted.
        let expected = if offline {
            matches!(entry.state, EntryState::OfflinePending)
        } else {
            matches!(entry.state, EntryState::Done | EntryState::Rejected)
        };
        assert!(expected, "{minor}: {entry:?}");
    }
    assert!(payments.journal().unresolved().unwrap().is_empty());
}

/// A reversal policy: a sale whose answer was lost stays unconfirmed past the deadline (the
/// customer left), so recovery voids it instead of recording it as a sale — and a sale the
/// terminal never saw is not sent any more.
#[tokio::test(start_paused = true)]
async fn unconfirmed_past_the_deadline_is_reversed_not_completed() {
    use posbridge::{ReversalPolicy, reversal_key};
    let policy = ReversalPolicy {
        after: Duration::ZERO,
        operator: Some(OperatorAuth {
            operator_id: "manager".into(),
            credential: Credential::Pin(OperatorSecret::new("2468").unwrap()),
        }),
    };
    let mut s = sim();
    s.set_faults(vec!["drop:before-result".parse().unwrap()]);
    let terminal = Terminal::new(s);
    let key = IdempotencyKey::from_u128(0x5E7E_0001);
    let payments = terminal.connect(MemoryJournal::new()).await;
    assert!(payments.transaction(key, sale(6000), CALL).await.is_err());
    // A command that never left: written as an intent, the app gone before sending.
    let never = IdempotencyKey::from_u128(0x5E7E_0002);
    let (client, mut journal) = payments.into_parts();
    drop(client);
    journal
        .record_intent(
            profile().terminal_id,
            &posbridge_wire::TransactionRequest::new(RequestId::default(), never, sale(700)),
            None,
            Timestamp(0),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let payments = terminal.connect(journal).await.with_reversal_policy(policy);
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.reversed, vec![key], "{report:?}");
    assert_eq!(report.not_taken, vec![never], "{report:?}");
    {
        let journal = payments.journal();
        let sale_entry = journal.get(&key).unwrap().unwrap();
        assert_eq!(sale_entry.result.unwrap().outcome, Outcome::Approved);
        let void = journal.get(&reversal_key(key)).unwrap().unwrap();
        assert_eq!(void.state, EntryState::Done);
        assert_eq!(
            void.result.unwrap().kind,
            posbridge_wire::TransactionKind::Void
        );
        assert_eq!(
            journal.get(&never).unwrap().unwrap().state,
            EntryState::Rejected
        );
    }
    // The terminal: the sale once, its void once, the abandoned one never.
    assert_eq!(terminal.charged(key), 1);
    assert_eq!(terminal.charged(reversal_key(key)), 1);
    assert_eq!(terminal.charged(never), 0);
    // Recovering again changes nothing.
    let again = payments.recover(CALL).await.unwrap();
    assert!(
        again.reversed.is_empty() && again.recorded.is_empty(),
        "{again:?}"
    );
}
