#![allow(clippy::inconsistent_digit_grouping)] // amounts as euros_cents
//! The ZVT client against the simulator's ZVT mode: every money command, progress, receipts,
//! abort, end-of-day, TCP and serial framing, and recovery of lost results through the journal.

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{Call, PaymentError, PaymentTerminal, driver};
use posbridge_link::{Delivery, MemoryLink, memory_pair};
use posbridge_sim::{Fault, Latency, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, DeclineReason, IdempotencyKey, Outcome, ProgressStage, ReceiptCopy,
    RequestId, Timestamp, TransactionCommand, TransactionKind, TransactionRef, TransactionRequest,
    TransactionStatus,
};
use posbridge_zvt::client::{ZvtConfig, ZvtTerminal};
use posbridge_zvt::server::{ServerConfig, ZvtServer};
use posbridge_zvt::transport::{Framing, ZvtLink};

type Backend = posbridge_sim::zvt::Backend;

struct Bed {
    server: Arc<ZvtServer<Backend>>,
}

impl Bed {
    async fn new(faults: Vec<Fault>, latency: Latency) -> Self {
        Self::with(
            faults,
            latency,
            ServerConfig {
                render: posbridge_sim::render,
                ..ServerConfig::default()
            },
        )
        .await
    }

    /// A terminal with the ZVT server set up as `config` says (its quirks).
    async fn with(faults: Vec<Fault>, latency: Latency, config: ServerConfig) -> Self {
        let profile = TerminalProfile {
            latency,
            ..TerminalProfile::default()
        };
        let backend = posbridge_sim::zvt::simulated(profile).await.unwrap();
        let server = posbridge_sim::zvt::server(backend, 52_500_038, faults, config).unwrap();
        Self {
            server: Arc::new(server),
        }
    }

    /// A register's link to the terminal (served until it closes).
    fn link(&self, framing: Framing) -> MemoryLink {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let server = self.server.clone();
        tokio::spawn(async move {
            let _ = server.serve(ZvtLink::new(theirs, framing)).await;
        });
        ours
    }

    async fn register<J: Journal + Send>(&self, framing: Framing, journal: J) -> ZvtTerminal<J> {
        posbridge_zvt::client::connect(self.link(framing), framing, ZvtConfig::default(), journal)
            .await
            .unwrap()
    }
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn key(n: u128) -> IdempotencyKey {
    IdempotencyKey::from_u128(n)
}

fn call() -> Call {
    Call::within(Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sale_refund_reversal_and_end_of_day_over_tcp_framing() {
    let bed = Bed::new(Vec::new(), Latency::INSTANT).await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    assert_eq!(t.adapter().registered().terminal_id, Some(52_500_038));
    assert_eq!(t.adapter().registered().currency, Some(978));

    let mut progress = t.progress();
    let sale = t.sale(key(1), eur(12_50), call()).await.unwrap();
    assert_eq!(sale.outcome, Outcome::Approved);
    assert_eq!(sale.approved_minor, 12_50);
    assert!(sale.pan.is_some(), "the masked card number comes back");
    assert!(
        sale.auth_code
            .as_deref()
            .is_some_and(|a| a.len() == 6 && a.bytes().all(|b| b.is_ascii_digit())),
        "{:?}",
        sale.auth_code
    );
    assert_eq!(
        sale.receipts.len(),
        2,
        "merchant and customer copies printed"
    );
    assert!(
        sale.receipts[0].header.iter().any(|l| l.contains("12.50")),
        "{:?}",
        sale.receipts[0].header
    );
    let mut stages = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), progress.next()).await
    {
        stages.push(p.stage);
    }
    assert!(
        stages.contains(&ProgressStage::WaitingForCard),
        "{stages:?}"
    );
    assert!(
        stages.contains(&ProgressStage::ProcessingOnline),
        "{stages:?}"
    );

    // The same key again: the journaled result, no second payment.
    let again = t.sale(key(1), eur(12_50), call()).await.unwrap();
    assert_eq!(again, sale);

    // Declines carry the host's code as it came (its meaning depends on the acquirer).
    let declined = t.sale(key(2), eur(20_51), call()).await.unwrap();
    assert_eq!(
        declined.outcome,
        Outcome::Declined(DeclineReason::host(0x33))
    );
    assert_eq!(declined.approved_minor, 0);

    let refund = t.refund(key(3), eur(5_00), None, call()).await.unwrap();
    assert_eq!(refund.outcome, Outcome::Approved);
    assert_eq!(refund.kind, TransactionKind::Refund);

    // Reversal by the sale's receipt number, found through the journal.
    let void = t
        .void(key(4), TransactionRef::Key(key(1)), call())
        .await
        .unwrap();
    assert_eq!(void.outcome, Outcome::Approved, "{void:?}");
    let twice = t
        .void(key(5), TransactionRef::Key(key(1)), call())
        .await
        .unwrap();
    assert!(
        matches!(twice.outcome, Outcome::Failed(_)),
        "a second reversal of the same sale fails: {twice:?}"
    );

    // Status and receipts from the journal; last transaction from the terminal.
    match t.status(key(1), Duration::from_secs(5)).await.unwrap() {
        TransactionStatus::Done(r) => assert_eq!(*r, sale),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.status(key(99), Duration::from_secs(5)).await.unwrap(),
        TransactionStatus::NotFound
    );
    let r = t
        .receipt(
            TransactionRef::Key(key(1)),
            ReceiptCopy::Customer,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(r.copy, ReceiptCopy::Customer);
    let last = t
        .last_transaction(Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.transaction_id, twice.transaction_id);
    assert_eq!(
        last.idempotency_key,
        key(5),
        "known to the journal by its key"
    );

    let eod = t.settle(key(6), call()).await.unwrap();
    assert_eq!(eod.status, Ok(()));
    // 12.50 sold, voided; 5.00 refunded: the net is 0 (never below).
    assert_eq!(eod.totals[0].amount, 0, "{eod:?}");
    assert!(eod.receipt.is_some(), "the end-of-day report is printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_authorisation_book_total_and_reversal_over_serial_framing() {
    let bed = Bed::new(Vec::new(), Latency::INSTANT).await;
    let t = bed.register(Framing::Serial, MemoryJournal::new()).await;
    let hold = t.preauth(key(1), eur(100_00), call()).await.unwrap();
    assert_eq!(hold.outcome, Outcome::Approved);
    assert_eq!(hold.kind, TransactionKind::PreAuth);
    let capture = t
        .capture(
            key(2),
            TransactionRef::Key(key(1)),
            eur(80_00),
            None,
            call(),
        )
        .await
        .unwrap();
    assert_eq!(capture.outcome, Outcome::Approved, "{capture:?}");
    assert_eq!(capture.approved_minor, 80_00);

    let hold2 = t.preauth(key(3), eur(50_00), call()).await.unwrap();
    let release = t
        .preauth_cancel(key(4), TransactionRef::Id(hold2.transaction_id), call())
        .await
        .unwrap();
    assert_eq!(release.outcome, Outcome::Approved, "{release:?}");

    // What ZVT cannot do is refused before anything is sent, and journaled nowhere.
    let err = t
        .incremental_auth(key(5), TransactionRef::Key(key(1)), eur(10_00), call())
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err}");
    let err = t
        .sale(key(6), Amount::new(1_00, Currency::USD), call())
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err}");
    assert!(t.journal().get(&key(6)).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_aborts_a_payment_waiting_for_a_card() {
    let slow = Latency {
        card: Duration::from_secs(3),
        ..Latency::INSTANT
    };
    let bed = Bed::new(Vec::new(), slow).await;
    let t = Arc::new(bed.register(Framing::Tcp, MemoryJournal::new()).await);
    let mut progress = t.progress();
    let running = {
        let t = t.clone();
        tokio::spawn(async move { t.sale(key(1), eur(30_00), call()).await })
    };
    let first = tokio::time::timeout(Duration::from_secs(5), progress.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.stage, ProgressStage::WaitingForCard);
    t.cancel().await.unwrap();
    let result = running.await.unwrap().unwrap();
    assert_eq!(result.outcome, Outcome::Cancelled);
    assert_eq!(
        t.journal().get(&key(1)).unwrap().unwrap().state,
        EntryState::Done
    );
}

/// A sale whose result is lost at each fault point is recovered from the terminal's last
/// transaction on the next connection — recorded once, charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_results_are_recovered_from_the_last_transaction() {
    for (i, fault) in [
        "drop:after-request",
        "drop:after-card-read",
        "drop:before-result",
    ]
    .into_iter()
    .enumerate()
    {
        let latency = Latency {
            card: Duration::from_millis(50),
            read: Duration::from_millis(50),
            online: Duration::from_millis(100),
            ..Latency::INSTANT
        };
        let bed = Bed::new(vec![fault.parse().unwrap()], latency).await;
        let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
        let k = key(100 + i as u128);
        let err = t.sale(k, eur(42_00), call()).await.unwrap_err();
        assert!(matches!(err, PaymentError::InDoubt(_)), "{fault}: {err}");
        let journal = t.close().await;
        assert_eq!(journal.get(&k).unwrap().unwrap().state, EntryState::InDoubt);
        // Let the payment finish on the terminal.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let t = bed.register(Framing::Tcp, journal).await;
        let report = t.recover(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.recorded, vec![k], "{fault}: {report:?}");
        let entry = t.journal().get(&k).unwrap().unwrap();
        assert_eq!(entry.state, EntryState::Done, "{fault}");
        let r = entry.result.unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        assert_eq!(r.amount, eur(42_00));
        // Asked again under its key: the recovered result, not a second charge.
        let again = t.sale(k, eur(42_00), call()).await.unwrap();
        assert_eq!(again.transaction_id, r.transaction_id, "{fault}");
    }
}

/// A command journaled but never run (the register crashed before sending it) is not the
/// terminal's last transaction: recovery marks it not charged instead of claiming another
/// payment's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_never_ran_is_not_given_another_payments_result() {
    let bed = Bed::new(Vec::new(), Latency::INSTANT).await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    let sale = t.sale(key(1), eur(42_00), call()).await.unwrap();
    let mut journal = t.close().await;
    // Same amount, journaled after the sale, never sent.
    let request = TransactionRequest::new(
        RequestId::default(),
        key(2),
        TransactionCommand::Sale {
            amount: eur(42_00),
            tip: None,
            cashback: None,
        },
    );
    journal
        .record_intent(sale.terminal_id, &request, None, driver::wall_clock())
        .unwrap();
    let t = bed.register(Framing::Tcp, journal).await;
    let report = t.recover(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.not_taken, vec![key(2)], "{report:?}");
    assert!(report.recorded.is_empty());
    assert_eq!(
        t.journal().get(&key(2)).unwrap().unwrap().state,
        EntryState::Rejected
    );
    assert_eq!(
        t.journal().get(&key(1)).unwrap().unwrap().result.unwrap(),
        sale
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_does_not_speak_zvt_is_named_as_such() {
    // A peer that reads and never answers.
    let (ours, mut theirs) = memory_pair(Delivery::Stream, 4096, 16);
    tokio::spawn(async move {
        let mut buf = bytes::BytesMut::new();
        use posbridge_link::LinkExt;
        while theirs.recv(&mut buf).await.is_ok() {}
    });
    let config = ZvtConfig {
        ack_timeout: Duration::from_millis(300),
        ..ZvtConfig::default()
    };
    let err = posbridge_zvt::client::connect(ours, Framing::Tcp, config, MemoryJournal::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("ZVT port"), "{text}");
    let _ = Timestamp(0);
}

/// A terminal as real ones are: a decline reported by the result code in the status
/// information, then a completion; fields the register may not know in every status
/// information.
async fn quirky(prefix: Vec<posbridge_zvt::bmp::Bmp>) -> Bed {
    Bed::with(
        Vec::new(),
        Latency::INSTANT,
        ServerConfig {
            status_prefix: prefix,
            decline_with_completion: true,
            ..ServerConfig::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_reported_in_the_status_information_is_a_decline_even_with_unknown_fields() {
    use posbridge_zvt::bmp::Bmp;
    // `E9 00` (maximum input length), a field other implementations read, before the rest.
    let bed = quirky(vec![Bmp::Other(0xE9, vec![0x00])]).await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    let declined = t.sale(key(1), eur(12_05), call()).await.unwrap();
    assert!(
        matches!(declined.outcome, Outcome::Declined(_)),
        "{:?}",
        declined.outcome
    );
    assert_eq!(declined.approved_minor, 0);
    let entry = t.journal().get(&key(1)).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert!(!entry.result.unwrap().outcome.is_approved());
    let approved = t.sale(key(2), eur(12_00), call()).await.unwrap();
    assert_eq!(approved.outcome, Outcome::Approved);
    assert_ne!(declined.transaction_id, approved.transaction_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_information_that_cannot_be_read_is_never_approved() {
    use posbridge_zvt::bmp::Bmp;
    // A field whose length nobody can know (tag 55 is in no table) before the result code:
    // nothing after it can be read.
    let bed = quirky(vec![Bmp::Unparsed(vec![0x55, 0x01, 0x02])]).await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    for (k, minor) in [(3, 12_00), (4, 12_05)] {
        let err = t.sale(key(k), eur(minor), call()).await.unwrap_err();
        assert!(
            matches!(
                err,
                PaymentError::InDoubt(posbridge_api::InDoubt {
                    reason: posbridge_api::DoubtReason::Unreadable,
                    ..
                })
            ),
            "{minor}: {err}"
        );
        let entry = t.journal().get(&key(k)).unwrap().unwrap();
        assert_eq!(entry.state, EntryState::InDoubt, "{minor}");
        assert!(entry.result.is_none());
        // The terminal's last transaction cannot be read either: it stays in doubt for a person,
        // and nothing new is sent meanwhile.
        let next = t.sale(key(100 + k), eur(1_00), call()).await.unwrap_err();
        assert!(
            matches!(next, PaymentError::StillInDoubt(_)),
            "{minor}: {next}"
        );
        assert!(t.journal().get(&key(100 + k)).unwrap().is_none());
        // A person decides (here: the terminal's own display said so); the next one goes on.
        t.journal()
            .mark_rejected(
                &key(k),
                "checked on the terminal",
                posbridge_api::wall_clock(),
            )
            .unwrap();
    }
}

/// Found by the ZVT schedules: a status information with two result codes that disagree was
/// read by its first, so a decline with an approval after it (or the reverse) was booked as the
/// first said. It says nothing that can be relied on: in doubt, never approved or declined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_information_whose_result_codes_disagree_is_never_read_as_either() {
    use posbridge_zvt::bmp::Bmp;
    // The terminal approves (result 00 after the prefix), but a "declined" code comes first.
    let bed = quirky(vec![Bmp::Result(0x05)]).await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    let err = t.sale(key(7), eur(12_00), call()).await.unwrap_err();
    assert!(
        matches!(
            err,
            PaymentError::InDoubt(posbridge_api::InDoubt {
                reason: posbridge_api::DoubtReason::Unreadable,
                ..
            })
        ),
        "{err}"
    );
    let entry = t.journal().get(&key(7)).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::InDoubt);
    assert!(entry.result.is_none());
}

/// A terminal whose clock is `hours` off UTC (local time, as ZVT terminals keep it), telling its
/// clock in its status enquiry or not.
async fn clocked(hours: i64, status_clock: bool) -> Bed {
    Bed::with(
        Vec::new(),
        Latency::INSTANT,
        ServerConfig {
            clock_offset_secs: hours * 3600,
            status_clock,
            ..ServerConfig::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_hours_behind_never_makes_a_charged_sale_look_not_taken() {
    for hours in [-5, 2] {
        // A terminal that does not tell its clock, and no result of it recorded yet: its clock
        // is unknown, the lost sale stays in doubt (and is never recorded as not taken).
        let bed = clocked(hours, false).await;
        let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
        bed.server.set_faults(posbridge_sim::zvt::fault_hook(vec![
            "drop:before-result".parse().unwrap(),
        ]));
        let k = key(200);
        assert!(t.sale(k, eur(42_00), call()).await.is_err());
        let journal = t.close().await;
        let t = bed.register(Framing::Tcp, journal).await;
        let report = t.recover(Duration::from_secs(10)).await.unwrap();
        assert!(report.not_taken.is_empty(), "{hours} h: {report:?}");
        assert_eq!(
            report.unresolved.iter().map(|u| u.key).collect::<Vec<_>>(),
            vec![k],
            "{hours} h: {report:?}"
        );
        assert_eq!(
            t.journal().get(&k).unwrap().unwrap().state,
            EntryState::InDoubt
        );

        // A terminal that tells its clock in its status enquiry: learnt at connect, and a lost
        // sale is recovered.
        let bed = clocked(hours, true).await;
        let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
        assert!(
            t.adapter()
                .clock_offset()
                .is_some_and(|o| (o - hours * 3_600_000).abs() < 5_000),
            "{hours} h: {:?}",
            t.adapter().clock_offset()
        );
        bed.server.set_faults(posbridge_sim::zvt::fault_hook(vec![
            "drop:before-result".parse().unwrap(),
        ]));
        assert!(t.sale(k, eur(42_00), call()).await.is_err());
        let journal = t.close().await;
        let t = bed.register(Framing::Tcp, journal).await;
        let report = t.recover(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.recorded, vec![k], "{hours} h: {report:?}");

        // Once a result of it is recorded, its offset is known from the journal too.
        let bed = clocked(hours, false).await;
        let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
        t.sale(key(201), eur(10_00), call()).await.unwrap();
        bed.server.set_faults(posbridge_sim::zvt::fault_hook(vec![
            "drop:before-result".parse().unwrap(),
        ]));
        assert!(t.sale(key(202), eur(42_00), call()).await.is_err());
        let journal = t.close().await;
        let t = bed.register(Framing::Tcp, journal).await;
        let report = t.recover(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.recorded, vec![key(202)], "{hours} h: {report:?}");
        let r = t.journal().get(&key(202)).unwrap().unwrap().result.unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
        // And a command journaled after that, never sent, is not given its result.
        let mut journal = t.close().await;
        let never = TransactionRequest::new(
            RequestId::default(),
            key(203),
            TransactionCommand::Sale {
                amount: eur(42_00),
                tip: None,
                cashback: None,
            },
        );
        journal
            .record_intent(r.terminal_id, &never, None, posbridge_api::wall_clock())
            .unwrap();
        let t = bed.register(Framing::Tcp, journal).await;
        let report = t.recover(Duration::from_secs(10)).await.unwrap();
        assert_eq!(report.not_taken, vec![key(203)], "{hours} h: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_card_number_is_masked_and_a_padded_card_name_trimmed() {
    use posbridge_zvt::bmp::Bmp;
    // As a girocard terminal sends them: the whole number (a real capture's), a NUL-padded name.
    let bed = quirky(vec![
        Bmp::Pan("4711008005757038004".into()),
        Bmp::CardName("MasterCard\0".into()),
    ])
    .await;
    let t = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    let sale = t.sale(key(1), eur(12_00), call()).await.unwrap();
    assert_eq!(
        sale.pan.map(|p| p.to_string()).as_deref(),
        Some("471100*********8004")
    );
    assert_eq!(sale.card_scheme.as_deref(), Some("MasterCard"));
    let journaled = t.journal().get(&key(1)).unwrap().unwrap().result.unwrap();
    assert_eq!(journaled.pan, sale.pan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_logs_off_before_it_closes() {
    use posbridge_zvt::Apdu;
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    // A terminal that answers registration and status enquiry, and reports what came last.
    let terminal = tokio::spawn(async move {
        let mut link = ZvtLink::new(theirs, Framing::Tcp);
        let mut last = None;
        while let Ok(apdu) = link.recv().await {
            if apdu.code() == [0x80, 0x00] {
                continue;
            }
            link.send(&Apdu::ack()).await.unwrap();
            match apdu.code() {
                [0x06, 0x00] => {
                    let done = posbridge_zvt::Command::Completion(Vec::new());
                    link.send(&done.to_apdu().unwrap()).await.unwrap();
                }
                [0x05, 0x01] => {
                    let abort = posbridge_zvt::Command::AbortFromTerminal {
                        result: 0x83,
                        extra: Vec::new(),
                    };
                    link.send(&abort.to_apdu().unwrap()).await.unwrap();
                }
                code => last = Some(code),
            }
        }
        last
    });
    let t = posbridge_zvt::client::connect(
        ours,
        Framing::Tcp,
        ZvtConfig::default(),
        MemoryJournal::new(),
    )
    .await
    .unwrap();
    t.close().await;
    assert_eq!(terminal.await.unwrap(), Some([0x06, 0x02]), "log-off last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_sends_a_service_byte_only_when_configured() {
    use posbridge_zvt::Apdu;
    use posbridge_zvt::bmp::Bmp;
    use posbridge_zvt::client::{SERVICE_MENU_OFF, ZvtConfig};
    for service_byte in [None, Some(SERVICE_MENU_OFF)] {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let terminal = tokio::spawn(async move {
            let mut link = ZvtLink::new(theirs, Framing::Tcp);
            let registration = link.recv().await.unwrap();
            link.send(&Apdu::ack()).await.unwrap();
            let done = posbridge_zvt::Command::Completion(Vec::new());
            link.send(&done.to_apdu().unwrap()).await.unwrap();
            registration
        });
        let config = ZvtConfig {
            service_byte,
            ..ZvtConfig::default()
        };
        // The terminal answers nothing more: connect's status enquiry gives up after 2 T3.
        let _ = tokio::time::timeout(
            Duration::from_millis(300),
            posbridge_zvt::client::connect(ours, Framing::Tcp, config, MemoryJournal::new()),
        )
        .await;
        let sent = posbridge_zvt::Command::from_apdu(&terminal.await.unwrap()).unwrap();
        let posbridge_zvt::Command::Registration { extra, .. } = sent else {
            panic!("{sent:?}")
        };
        let expected: Vec<Bmp> = service_byte
            .map(|b| Bmp::Other(0x03, vec![b]))
            .into_iter()
            .collect();
        assert_eq!(extra, expected);
    }
}

/// A host's result code is read only with a table chosen for the acquirer; without one it is kept
/// raw and said so — never read as ISO 8583 by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_code_is_read_only_with_the_acquirer_s_table() {
    use posbridge_zvt::codes::{HostCodes, ISO_8583_AS_BINARY};
    let bed = Bed::new(Vec::new(), Latency::INSTANT).await;
    let raw = bed.register(Framing::Tcp, MemoryJournal::new()).await;
    let declined = raw.sale(key(1), eur(12_51), call()).await.unwrap();
    let Outcome::Declined(reason) = declined.outcome else {
        panic!("{:?}", declined.outcome)
    };
    assert_eq!(reason.host_code(), Some(0x33));
    assert_eq!(
        reason.to_string(),
        "declined by the payment host, code 0x33"
    );
    // Journaled with the raw code.
    let entry = raw.journal().get(&key(1)).unwrap().unwrap();
    assert_eq!(entry.result.unwrap().outcome, declined.outcome);
    let config = ZvtConfig {
        host_codes: HostCodes::Table(&ISO_8583_AS_BINARY),
        ..ZvtConfig::default()
    };
    let read = posbridge_zvt::client::connect(
        bed.link(Framing::Tcp),
        Framing::Tcp,
        config,
        MemoryJournal::new(),
    )
    .await
    .unwrap();
    let declined = read.sale(key(2), eur(12_51), call()).await.unwrap();
    assert_eq!(
        declined.outcome,
        Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS)
    );
}

/// Read card (`06 C0`), diagnosis (`06 70`), initialisation (`06 93`), print system
/// configuration (`06 1A`) and set terminal ID (`06 1B`) are answered as a terminal does (they
/// used to get `84 83`, command not possible).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administration_commands_and_read_card_are_answered_as_a_terminal_does() {
    use posbridge_zvt::Command;
    use posbridge_zvt::bmp::{Bmp, bcd};

    let bed = Bed::new(Vec::new(), Latency::INSTANT).await;
    let t = bed.register(Framing::Serial, MemoryJournal::new()).await;
    let client = t.adapter();

    let card = client.read_card(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        card.pan.map(|p| p.to_string()).as_deref(),
        Some("411111******1111")
    );
    assert_eq!(card.expiry, Some(2912));
    assert_eq!(card.card_type, Some(10));
    assert_eq!(card.name.as_deref(), Some("VISA CREDIT"));

    let diagnosis = client.diagnosis(Duration::from_secs(10)).await.unwrap();
    assert!(diagnosis.ok, "{diagnosis:?}");
    assert!(
        diagnosis
            .lines
            .iter()
            .any(|l| l.contains("HOST CONNECTION OK")),
        "{diagnosis:?}"
    );

    for command in [
        Command::Initialisation {
            password: 0,
            extra: Vec::new(),
        },
        Command::PrintSystemConfiguration {
            password: 0,
            extra: Vec::new(),
        },
    ] {
        let ex = client
            .run_command(&command, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(ex.completion.is_some(), "{command:?}: {ex:?}");
        assert_eq!(ex.aborted, None);
    }
    let config = client
        .run_command(
            &Command::PrintSystemConfiguration {
                password: 0,
                extra: Vec::new(),
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(
        config
            .receipts()
            .concat()
            .iter()
            .any(|l| l.contains("Terminal ID 52500038")),
        "{config:?}"
    );

    // A wrong password is refused before anything happens.
    let refused = client
        .run_command(
            &Command::Initialisation {
                password: 123_456,
                extra: Vec::new(),
            },
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(posbridge_zvt::client::ExchangeError::Refused(0x83))
        ),
        "{refused:?}"
    );

    let set = client
        .run_command(
            &Command::SetTerminalId {
                password: 0,
                extra: vec![Bmp::Other(0x29, bcd(61_234_567, 4).unwrap())],
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(set.completion.is_some(), "{set:?}");
    let status = client
        .status_enquiry(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(status.terminal_id, Some(61_234_567));
}
