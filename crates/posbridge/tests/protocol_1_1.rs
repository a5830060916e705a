//! Protocol 1.1 end to end through the SDK against the simulator: telemetry
//! (`PaymentTerminal::telemetry` and `telemetry_events`: battery drain, paper, an acquirer outage
//! during which payments are approved offline under the floor limit), the EMV data of results,
//! covered by their signatures, the customer display and questions (cart, tip, yes/no,
//! number, signature, timeout, cancel), and two tills sharing the terminal by lease (busy with
//! the holder's name, queued and handed over); and a 1.0 client of the same terminal, which gets none of
//! them and keeps working — its results signed again without the EMV data, and verified.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use posbridge::journal::{EntryState, MemoryJournal};
use posbridge::{
    Call, Cart, ConnectOptions, CustomerPrompt, NativeAdapter, NativeClient, PaymentTerminal,
    Payments, driver,
};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientEvent, ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalSession,
};
use posbridge_sim::{CustomerProfile, DeviceProfile, Latency, Simulator, TerminalProfile};
use posbridge_wire::{
    AcquirerLink, Amount, CardholderVerification, CartLine, CryptogramType, Currency,
    CustomerInput, CustomerQuestion, CustomerReply, DeclineReason, EmvData, IdempotencyKey,
    LeaseState, Message, OfflineState, Outcome, PaperState, PowerSource, RequestId,
    TelemetryChange, Timestamp, UpdateManifest, UpdateRefusal, UpdateState, VERSION_1_0,
};

const WALL: Timestamp = Timestamp(1_764_000_000_000);
const CALL: Duration = Duration::from_secs(90);

fn identity(id: u8, name: &str) -> Arc<LocalIdentity> {
    Arc::new(LocalIdentity::generate(PeerId([id; 16]), name).unwrap())
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

/// A simulated portable terminal: battery 20 % draining 3 % per payment, paper for 3 receipts
/// (low from 1), the acquirer gone after the first payment for two payments; a client of
/// `versions` paired with it and connected.
async fn connect(versions: &[u16]) -> Payments<MemoryJournal> {
    Payments::new(
        NativeAdapter::new(
            connect_client(versions, device_profile()).await,
            Some(terminal_identity().signing().public_key()),
        ),
        MemoryJournal::new(),
    )
}

fn device_profile() -> TerminalProfile {
    TerminalProfile {
        latency: Latency::INSTANT,
        floor_limit: 5_000,
        device: DeviceProfile {
            battery: Some(20),
            battery_drain: 3,
            power: PowerSource::Battery,
            paper: Some(3),
            paper_low: 1,
            offline_after: Some(1),
            offline_for: 2,
            ..DeviceProfile::default()
        },
        ..TerminalProfile::default()
    }
}

/// A client of `versions` paired with a simulator of `profile` and connected.
async fn connect_client(versions: &[u16], profile: TerminalProfile) -> NativeClient {
    let client = identity(2, "Till 1");
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: client.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    let mut sim = Simulator::new(profile, terminal_identity(), driver::now(), WALL);
    let context = sim.context(registry, 100);
    let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
    let session = TerminalSession::new(SessionConfig::default(), context, driver::now());
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let mut hello = hello();
    hello.protocol_versions = versions.to_vec();
    NativeClient::connect(
        ours,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: client,
            security: ClientSecurity::Paired {
                terminal_key: terminal_identity().channel().public(),
            },
            hello,
            timeout: Duration::from_secs(30),
        },
    )
    .await
    .unwrap()
}

/// The next push, within 3 s.
async fn next(events: &mut posbridge::TelemetryEvents) -> posbridge::TelemetryChanged {
    tokio::time::timeout(Duration::from_secs(3), events.next())
        .await
        .expect("a push within 3 s")
        .expect("the stream is open")
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

#[tokio::test(start_paused = true)]
async fn telemetry_is_read_and_its_changes_pushed_through_the_sdk() {
    let payments = connect(posbridge_wire::PROTOCOL_VERSIONS).await;
    let now = payments
        .telemetry(CALL)
        .await
        .unwrap()
        .expect("a 1.1 terminal reports telemetry");
    assert_eq!(now.battery_percent, Some(20));
    assert_eq!(now.power, Some(PowerSource::Battery));
    assert_eq!(now.paper, Some(PaperState::Ok));
    assert_eq!(now.acquirer, AcquirerLink::Online);
    assert!(now.firmware.is_some() && now.app_version.is_some());

    let mut events = payments.telemetry_events();

    // The first payment goes online; after it the acquirer is gone.
    let r = payments
        .sale(IdempotencyKey::from_u128(1), eur(1000), Call::within(CALL))
        .await
        .unwrap();
    assert!(r.outcome.is_approved() && !r.offline);
    let pushed = next(&mut events).await;
    assert!(
        pushed.changes.contains(TelemetryChange::Offline),
        "{pushed:?}"
    );
    assert_eq!(pushed.telemetry.acquirer, AcquirerLink::Offline);

    // Offline: under the floor limit approved offline and stored for forwarding …
    let r = payments
        .sale(IdempotencyKey::from_u128(2), eur(1000), Call::within(CALL))
        .await
        .unwrap();
    assert!(r.outcome.is_approved() && r.offline);
    let pushed = next(&mut events).await;
    for c in [
        TelemetryChange::StoredOffline,
        TelemetryChange::BatteryLow,
        TelemetryChange::PaperLow,
    ] {
        assert!(pushed.changes.contains(c), "{c:?} in {pushed:?}");
    }
    assert_eq!(pushed.telemetry.stored_offline, 1);
    assert_eq!(pushed.telemetry.battery_percent, Some(14));

    // … above it declined: the issuer cannot be asked.
    let r = payments
        .sale(IdempotencyKey::from_u128(3), eur(9000), Call::within(CALL))
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        Outcome::Declined(DeclineReason::ISSUER_UNAVAILABLE)
    );
    // Back online after two commands: what was stored is forwarded.
    let pushed = next(&mut events).await;
    assert!(
        pushed.changes.contains(TelemetryChange::Online),
        "{pushed:?}"
    );
    assert_eq!(pushed.telemetry.stored_offline, 0);
    let now = payments.telemetry(CALL).await.unwrap().unwrap();
    assert_eq!(now.acquirer, AcquirerLink::Online);
    assert_eq!(now.battery_percent, Some(11));
}

#[tokio::test(start_paused = true)]
async fn a_one_zero_client_of_the_same_terminal_gets_none_and_keeps_working() {
    let payments = connect(&[VERSION_1_0]).await;
    assert_eq!(payments.telemetry(CALL).await.unwrap(), None);
    let mut events = payments.telemetry_events();
    let r = payments
        .sale(IdempotencyKey::from_u128(1), eur(1000), Call::within(CALL))
        .await
        .unwrap();
    assert!(r.outcome.is_approved());
    // The acquirer went away after that payment; a 1.0 client is not told.
    let pushed = tokio::time::timeout(Duration::from_secs(3), events.next()).await;
    assert!(
        pushed.is_err(),
        "nothing pushed to a 1.0 client: {pushed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn results_carry_signed_emv_data_to_a_one_one_client_only() {
    let payments = connect(posbridge_wire::PROTOCOL_VERSIONS).await;
    // Contactless (the simulator's default method) for 12.00 EUR: under the 50.00 limit for
    // cardholder verification.
    let r = payments
        .sale(IdempotencyKey::from_u128(1), eur(1200), Call::within(CALL))
        .await
        .unwrap();
    let emv = r
        .emv
        .clone()
        .expect("a contactless payment carries EMV data");
    assert!(EmvData::valid_aid(&emv.aid), "{emv:?}");
    assert_eq!(emv.arc.as_deref(), Some("00"));
    assert_eq!(emv.cryptogram_type, CryptogramType::Tc);
    assert_eq!(emv.cvm, CardholderVerification::NoCvm);
    // The engine verified the signature before journaling; it covers the EMV data.
    let key = terminal_identity().signing().public_key();
    posbridge_crypto::verify_result(&key, &r).unwrap();
    let mut forged = r.clone();
    forged.emv.as_mut().unwrap().cvm = CardholderVerification::OnlinePin;
    assert!(posbridge_crypto::verify_result(&key, &forged).is_err());
    // The receipt shows the fields.
    let receipt = r.receipts.first().expect("receipts in the result");
    for label in ["TVR", "TSI", "ARC", "CVM", "TC"] {
        assert!(
            receipt.lines.iter().any(|l| l.label == label),
            "{label} on the receipt"
        );
    }

    let old = connect(&[VERSION_1_0]).await;
    let r = old
        .sale(IdempotencyKey::from_u128(1), eur(1200), Call::within(CALL))
        .await
        .expect("a 1.0 client's result verifies: signed again without the EMV data");
    assert_eq!(r.emv, None);
    posbridge_crypto::verify_result(&key, &r).unwrap();
}

fn cart() -> Cart {
    Cart {
        lines: vec![
            CartLine {
                text: "Cappuccino".into(),
                quantity: Some(2),
                amount: 700,
            },
            CartLine {
                text: "Croissant".into(),
                quantity: None,
                amount: 250,
            },
        ],
        currency: Currency::EUR,
        total: 950,
        message: Some("Thank you!".into()),
    }
}

fn prompt(question: CustomerQuestion) -> CustomerPrompt {
    CustomerPrompt {
        prompt: "Question".into(),
        question,
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test(start_paused = true)]
async fn the_customer_sees_the_cart_and_answers_on_the_terminal() {
    let payments = connect(posbridge_wire::PROTOCOL_VERSIONS).await;
    assert!(payments.show_cart(&cart(), CALL).await.unwrap());
    // The simulated customer picks the second preset: 15 % of 50.00.
    let tip = CustomerQuestion::Tip {
        base: 5000,
        currency: Currency::EUR,
        presets: vec![10, 15, 20],
        custom: true,
    };
    let asked = tokio::time::Instant::now();
    let answer = payments.ask_customer(&prompt(tip)).await.unwrap();
    assert_eq!(answer, Some(CustomerReply::Tip(750)));
    assert!(
        asked.elapsed() >= Duration::from_millis(1500),
        "the customer took their time"
    );
    let answer = payments
        .ask_customer(&prompt(CustomerQuestion::YesNo))
        .await
        .unwrap();
    assert_eq!(answer, Some(CustomerReply::Confirmed(true)));
    let answer = payments
        .ask_customer(&prompt(CustomerQuestion::Number { min: 100, max: 999 }))
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some(CustomerReply::Number(100)),
        "1 clamped into the range"
    );
    match payments
        .ask_customer(&prompt(CustomerQuestion::Signature))
        .await
        .unwrap()
    {
        Some(CustomerReply::Signature(png)) => assert!(png.starts_with(b"\x89PNG")),
        other => panic!("{other:?}"),
    }
    // A 1.0 client: nothing shown, nothing asked, no error.
    let old = connect(&[VERSION_1_0]).await;
    assert!(!old.show_cart(&cart(), CALL).await.unwrap());
    assert_eq!(
        old.ask_customer(&prompt(CustomerQuestion::YesNo))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_question_times_out_and_one_can_be_withdrawn() {
    let mut profile = device_profile();
    profile.customer = CustomerProfile {
        absent: true,
        ..CustomerProfile::default()
    };
    let client = connect_client(posbridge_wire::PROTOCOL_VERSIONS, profile).await;
    let asked = tokio::time::Instant::now();
    let mut p = prompt(CustomerQuestion::YesNo);
    p.timeout = Duration::from_secs(20);
    assert_eq!(
        client.ask_customer(&p).await.unwrap(),
        Some(CustomerReply::TimedOut)
    );
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(22),
        "{waited:?}"
    );
    // Withdrawn by the till before the customer answers.
    let pending = client
        .send(
            Message::CustomerInput(CustomerInput {
                request_id: RequestId::default(),
                prompt: "Room number?".into(),
                question: CustomerQuestion::Number { min: 1, max: 999 },
                timeout_ms: 60_000,
            }),
            Duration::from_secs(70),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    client.cancel(pending.id()).await.unwrap();
    match pending.answer().await.unwrap() {
        Message::CustomerResponse(r) => assert_eq!(r.reply, CustomerReply::Cancelled),
        other => panic!("{other:?}"),
    }
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "withdrawn at once"
    );
}

#[tokio::test(start_paused = true)]
async fn two_tills_share_the_terminal_by_lease_and_the_second_waits_for_it() {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let sim = Simulator::new(profile, terminal_identity(), driver::now(), WALL);
    let till_a = identity(2, "Till A");
    let till_b = identity(3, "Till B");
    let mut registry = PairingRegistry::new();
    for till in [&till_a, &till_b] {
        registry.add(PairingRecord {
            peer: till.public_keys(),
            peer_role: Role::Client,
            paired_at: Timestamp(0),
        });
    }
    let context = sim.context(registry, 100);
    let app = SharedApp::new(sim);
    let mut tills = Vec::new();
    for id in [till_a, till_b] {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let session =
            TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
        let mut app = app.clone();
        tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut app).await });
        let client = NativeClient::connect(
            ours,
            ConnectOptions {
                session: SessionConfig::default(),
                identity: id,
                security: ClientSecurity::Paired {
                    terminal_key: terminal_identity().channel().public(),
                },
                hello: hello(),
                timeout: Duration::from_secs(30),
            },
        )
        .await
        .unwrap();
        tills.push(Payments::new(
            NativeAdapter::new(client, Some(terminal_identity().signing().public_key())),
            MemoryJournal::new(),
        ));
    }
    let (a, b) = (&tills[0], &tills[1]);
    let minute = Duration::from_secs(60);
    assert!(matches!(
        a.acquire("Till A", minute, None).await.unwrap(),
        Some(LeaseState::Granted { .. })
    ));
    assert_eq!(
        b.acquire("Till B", minute, None).await.unwrap(),
        Some(LeaseState::Busy {
            holder: "Till A".into()
        })
    );
    // B's payment is refused before anything happens, naming the holder.
    let refused = b
        .sale(IdempotencyKey::from_u128(10), eur(1000), Call::within(CALL))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Till A"), "{refused}");
    assert!(!refused.is_in_doubt());
    let r = a
        .sale(IdempotencyKey::from_u128(11), eur(1000), Call::within(CALL))
        .await
        .unwrap();
    assert!(r.outcome.is_approved());
    // B queues and waits; A hands the terminal over two seconds later.
    let waiting = b.acquire("Till B", minute, Some(Duration::from_secs(30)));
    let handing = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        a.release().await.unwrap();
    };
    let (state, ()) = tokio::join!(waiting, handing);
    assert!(
        matches!(state.unwrap(), Some(LeaseState::Granted { .. })),
        "B holds the terminal once A released it"
    );
    let r = b
        .sale(IdempotencyKey::from_u128(12), eur(1000), Call::within(CALL))
        .await
        .unwrap();
    assert!(r.outcome.is_approved());
    let refused = a
        .sale(IdempotencyKey::from_u128(13), eur(1000), Call::within(CALL))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Till B"), "{refused}");
}

/// A simulated terminal that tills connect to again and again (its state outlives connections).
struct Shared {
    context: posbridge_session::TerminalContext,
    app: SharedApp<Simulator>,
}

impl Shared {
    fn new(profile: TerminalProfile, tills: &[&Arc<LocalIdentity>]) -> Self {
        Self::of(
            Simulator::new(profile, terminal_identity(), driver::now(), WALL),
            tills,
        )
    }

    fn of(sim: Simulator, tills: &[&Arc<LocalIdentity>]) -> Self {
        let mut registry = PairingRegistry::new();
        for till in tills {
            registry.add(PairingRecord {
                peer: till.public_keys(),
                peer_role: Role::Client,
                paired_at: Timestamp(0),
            });
        }
        let context = sim.context(registry, 100);
        Self {
            context,
            app: SharedApp::new(sim),
        }
    }

    async fn connect(&self, till: &Arc<LocalIdentity>) -> NativeClient {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let session = TerminalSession::new(
            SessionConfig::default(),
            self.context.clone(),
            driver::now(),
        );
        let mut app = self.app.clone();
        tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut app).await });
        NativeClient::connect(
            ours,
            ConnectOptions {
                session: SessionConfig::default(),
                identity: till.clone(),
                security: ClientSecurity::Paired {
                    terminal_key: terminal_identity().channel().public(),
                },
                hello: hello(),
                timeout: Duration::from_secs(30),
            },
        )
        .await
        .unwrap()
    }
}

fn publisher() -> &'static posbridge_crypto::SigningIdentity {
    static KEY: OnceLock<posbridge_crypto::SigningIdentity> = OnceLock::new();
    KEY.get_or_init(|| posbridge_crypto::SigningIdentity::generate().unwrap())
}

fn signed_update(version: &str, image: &[u8]) -> UpdateManifest {
    use sha2::Digest as _;
    let mut m = UpdateManifest {
        version: version.into(),
        size: image.len() as u32,
        digest: sha2::Sha256::digest(image).into(),
        signature: [0; 64],
    };
    publisher().sign_update(&mut m);
    m
}

fn update_profile(device: DeviceProfile) -> TerminalProfile {
    TerminalProfile {
        latency: Latency::default(),
        device: DeviceProfile {
            update_key: Some(publisher().public_key()),
            ..device
        },
        ..TerminalProfile::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_signed_update_resumes_after_a_disconnect_and_installs_with_a_restart() {
    let till = identity(2, "Till 1");
    let terminal = Shared::new(update_profile(DeviceProfile::default()), &[&till]);
    let image: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let m = signed_update("2.0.0", &image);

    // The first attempt: offered, two chunks, then the connection is gone.
    let client = terminal.connect(&till).await;
    let ask = |m: Message| client.request(m, CALL);
    let offered = ask(Message::UpdateOffer(posbridge_wire::UpdateOffer {
        request_id: RequestId::default(),
        manifest: m.clone(),
    }))
    .await
    .unwrap();
    assert!(matches!(
        offered,
        Message::UpdateStatus(s) if s.state == UpdateState::Ready { offset: 0 }
    ));
    for offset in [0u32, 2048] {
        ask(Message::UpdateChunk(posbridge_wire::UpdateChunk {
            request_id: RequestId::default(),
            digest: m.digest,
            offset,
            data: image[offset as usize..offset as usize + 2048].to_vec(),
        }))
        .await
        .unwrap();
    }
    client.close().await;

    // Again over a new connection: it resumes at 4096, and installs.
    let client = terminal.connect(&till).await;
    let seen = std::sync::Mutex::new(Vec::new());
    let state = client
        .update(&m, &image, &|have, of| {
            seen.lock().unwrap().push((have, of))
        })
        .await
        .unwrap();
    assert_eq!(
        state,
        Some(UpdateState::Installed {
            version: "2.0.0".into()
        })
    );
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen.first(),
        Some(&(4096, 20_000)),
        "resumed, not restarted"
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    // The terminal restarted: the connection ends; connected again, it runs the new version.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(client.is_closed(), "the terminal restarted");
    let client = terminal.connect(&till).await;
    let now = client.telemetry(CALL).await.unwrap().unwrap();
    assert_eq!(now.firmware.as_deref(), Some("2.0.0"));
    // The same update again: already installed.
    assert_eq!(
        client.update(&m, &image, &|_, _| {}).await.unwrap(),
        Some(UpdateState::Refused(UpdateRefusal::AlreadyInstalled))
    );
}

#[tokio::test(start_paused = true)]
async fn updates_are_refused_untrusted_on_low_battery_during_a_payment_or_when_they_fail() {
    let till = identity(2, "Till 1");
    let image: Vec<u8> = vec![7; 3000];
    let m = signed_update("3.0.0", &image);

    // Signed by someone else.
    let terminal = Shared::new(update_profile(DeviceProfile::default()), &[&till]);
    let client = terminal.connect(&till).await;
    let mut forged = m.clone();
    posbridge_crypto::SigningIdentity::generate()
        .unwrap()
        .sign_update(&mut forged);
    assert_eq!(
        client.update(&forged, &image, &|_, _| {}).await.unwrap(),
        Some(UpdateState::Refused(UpdateRefusal::Untrusted))
    );
    // An image that is not the one signed: caught before anything is sent.
    assert!(matches!(
        client.update(&m, &image[..2999], &|_, _| {}).await,
        Err(posbridge::ClientError::UpdateMismatch)
    ));

    // While a payment runs (the customer takes 1.5 s to present the card).
    let payments = Payments::new(
        NativeAdapter::new(client, Some(terminal_identity().signing().public_key())),
        MemoryJournal::new(),
    );
    let sale = payments.sale(IdempotencyKey::from_u128(1), eur(1000), Call::within(CALL));
    let during = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        payments.update(&m, &image, &|_, _| {}).await
    };
    let (sold, refused) = tokio::join!(sale, during);
    assert!(sold.unwrap().outcome.is_approved());
    assert_eq!(
        refused.unwrap(),
        Some(UpdateState::Refused(UpdateRefusal::PaymentRunning))
    );

    // Battery at 20 % on battery power.
    let low = Shared::new(
        update_profile(DeviceProfile {
            battery: Some(20),
            ..DeviceProfile::default()
        }),
        &[&till],
    );
    let client = low.connect(&till).await;
    assert_eq!(
        client.update(&m, &image, &|_, _| {}).await.unwrap(),
        Some(UpdateState::Refused(UpdateRefusal::BatteryLow))
    );

    // Installing fails: the old version stays.
    let failing = Shared::new(
        update_profile(DeviceProfile {
            update_fails: true,
            ..DeviceProfile::default()
        }),
        &[&till],
    );
    let client = failing.connect(&till).await;
    let before = client.telemetry(CALL).await.unwrap().unwrap().firmware;
    assert_eq!(
        client.update(&m, &image, &|_, _| {}).await.unwrap(),
        Some(UpdateState::Refused(UpdateRefusal::InstallFailed))
    );
    assert_eq!(
        client.telemetry(CALL).await.unwrap().unwrap().firmware,
        before
    );
}

#[tokio::test(start_paused = true)]
async fn payments_approved_offline_get_their_signed_final_outcome_when_forwarded() {
    let till = identity(2, "Till 1");
    // The acquirer is gone for the second and third payments.
    let terminal = Shared::new(device_profile(), &[&till]);
    let client = terminal.connect(&till).await;
    let caps = client.capabilities().clone();
    assert!(
        caps.offline_limits
            .iter()
            .any(|l| l.currency == Currency::EUR && l.per_payment == 5_000 && l.count == 10),
        "the limits it approves offline within: {:?}",
        caps.offline_limits
    );
    let key = terminal_identity().signing().public_key();
    let mut events = client.events();
    let payments = Payments::new(NativeAdapter::new(client, Some(key)), MemoryJournal::new());
    let sell = |k: u128, minor: u64| {
        payments.sale(IdempotencyKey::from_u128(k), eur(minor), Call::within(CALL))
    };
    assert!(!sell(1, 1000).await.unwrap().offline);
    let second = sell(2, 1000).await.unwrap();
    let third = sell(3, 2066).await.unwrap();
    assert!(second.offline && third.offline && third.outcome.is_approved());
    // Asked before it is forwarded: pending, signed.
    assert_eq!(asked(&payments, 2).await.state, OfflineState::Pending);
    // Not an offline payment: not found.
    assert!(
        payments
            .adapter()
            .client()
            .offline_outcome(IdempotencyKey::from_u128(1), Some(&key), CALL)
            .await
            .is_err()
    );
    // The acquirer is back: the next payment goes online, and the stored ones are forwarded —
    // the terminal pushes each one's final outcome, the x.66 one declined after the fact.
    assert!(!sell(4, 1000).await.unwrap().offline);
    let mut finals = std::collections::HashMap::new();
    while finals.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(3), events.recv())
            .await
            .expect("pushed within 3 s")
            .unwrap();
        if let ClientEvent::OfflineOutcome(o) = event {
            posbridge_crypto::verify_offline_outcome(&key, &o).unwrap();
            finals.insert(o.idempotency_key, o.state);
        }
    }
    assert_eq!(
        finals[&IdempotencyKey::from_u128(2)],
        OfflineState::Confirmed
    );
    assert_eq!(
        finals[&IdempotencyKey::from_u128(3)],
        OfflineState::Declined(DeclineReason::DO_NOT_HONOUR)
    );
    let now = asked(&payments, 3).await;
    assert_eq!(
        now.state,
        OfflineState::Declined(DeclineReason::DO_NOT_HONOUR)
    );
    assert_eq!(
        payments
            .telemetry(CALL)
            .await
            .unwrap()
            .unwrap()
            .stored_offline,
        0
    );
}

/// The states of the journal's entries, by key number.
fn states(payments: &Payments<MemoryJournal>, keys: &[u128]) -> Vec<EntryState> {
    use posbridge::journal::Journal as _;
    keys.iter()
        .map(|&k| {
            payments
                .journal()
                .get(&IdempotencyKey::from_u128(k))
                .unwrap()
                .unwrap()
                .state
        })
        .collect()
}

/// A manager of `terminal` (settlements need one), and their credential.
fn manager(terminal: &Shared) -> posbridge_wire::OperatorAuth {
    terminal
        .context
        .operators
        .lock()
        .unwrap()
        .add_pin("manager", "2468")
        .unwrap();
    posbridge_wire::OperatorAuth {
        operator_id: "manager".into(),
        credential: posbridge_wire::Credential::Pin(
            posbridge_wire::OperatorSecret::new("2468").unwrap(),
        ),
    }
}

fn keys(ks: &[u128]) -> Vec<IdempotencyKey> {
    ks.iter().map(|&k| IdempotencyKey::from_u128(k)).collect()
}

/// The journal follows a payment approved offline to its end: pending (counted, never sent
/// again, answered from the journal), then — from the terminal's pushes — done or declined
/// after the fact; the declined one's key answers `DeclinedAfter`, and the batch reconciles
/// (the terminal leaves it out of its totals, and so does the journal).
#[tokio::test(start_paused = true)]
async fn the_journal_follows_a_payment_approved_offline_to_its_final_outcome() {
    let till = identity(2, "Till 1");
    let terminal = Shared::new(device_profile(), &[&till]);
    let key = terminal_identity().signing().public_key();
    let payments = Payments::new(
        NativeAdapter::new(terminal.connect(&till).await, Some(key)),
        MemoryJournal::new(),
    );
    let sell = |k: u128, minor: u64| {
        payments.sale(IdempotencyKey::from_u128(k), eur(minor), Call::within(CALL))
    };
    assert!(!sell(1, 1000).await.unwrap().offline);
    let second = sell(2, 1000).await.unwrap();
    let third = sell(3, 2066).await.unwrap();
    assert!(second.offline && third.offline);
    assert_eq!(
        states(&payments, &[1, 2, 3]),
        [
            EntryState::Done,
            EntryState::OfflinePending,
            EntryState::OfflinePending
        ]
    );
    // Pending is not in doubt: recovery sends nothing, asks the terminal, and reports them.
    let report = payments.recover(CALL).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.pending_offline, keys(&[2, 3]));
    assert!(report.recorded.is_empty() && report.resent.is_empty());
    // The same key again: the recorded result, never a second payment.
    assert_eq!(sell(2, 1000).await.unwrap(), second);

    // The acquirer is back: the next payment goes online and the stored ones are forwarded;
    // their outcomes are pushed and journaled at the engine's next call.
    assert!(!sell(4, 1000).await.unwrap().offline);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.confirmed_offline, keys(&[2]), "{report}");
    assert_eq!(report.declined_after, keys(&[3]), "{report}");
    assert!(report.pending_offline.is_empty(), "{report}");
    assert_eq!(
        states(&payments, &[2, 3]),
        [EntryState::Done, EntryState::DeclinedAfter]
    );
    {
        use posbridge::journal::Journal as _;
        let entry = payments
            .journal()
            .get(&IdempotencyKey::from_u128(3))
            .unwrap()
            .unwrap();
        let outcome = entry.offline.expect("the signed outcome is kept");
        posbridge_crypto::verify_offline_outcome(&key, &outcome).unwrap();
    }
    match sell(3, 2066).await {
        Err(posbridge::PaymentError::DeclinedAfter { key: k, reason }) => {
            assert_eq!(k, IdempotencyKey::from_u128(3));
            assert_eq!(reason, DeclineReason::DO_NOT_HONOUR);
        }
        other => panic!("declined after the fact: {other:?}"),
    }
    assert!(matches!(
        payments.status(IdempotencyKey::from_u128(3), CALL).await,
        Err(posbridge::PaymentError::DeclinedAfter { .. })
    ));

    // The batch: 1, 2 and 4 charged; 3 in neither side's totals.
    let settlement = payments
        .settle(
            IdempotencyKey::from_u128(100),
            Call::within(CALL).operator(manager(&terminal)),
        )
        .await
        .unwrap();
    let sale = settlement
        .totals
        .iter()
        .find(|t| t.kind == posbridge_wire::TransactionKind::Sale)
        .unwrap();
    assert_eq!((sale.count, sale.amount), (3, 3000));
    let r = posbridge::reconcile(&entries(&payments), &settlement, Some(&key));
    assert!(r.is_clean(), "{:?}", r.differences);
    assert!(r.pending_offline.is_empty() && r.declined_after.is_empty());
}

/// Outcomes learnt while the till was away (no push reaches it) are asked for when it
/// reconnects; a payment declined after its batch closed is in that batch's totals on both
/// sides, and listed.
#[tokio::test(start_paused = true)]
async fn outcomes_learnt_while_away_are_asked_for_and_reconcile_across_the_close() {
    let (till, other) = (identity(2, "Till 1"), identity(3, "Till 2"));
    let terminal = Shared::new(device_profile(), &[&till, &other]);
    let key = terminal_identity().signing().public_key();
    let payments = Payments::new(
        NativeAdapter::new(terminal.connect(&till).await, Some(key)),
        MemoryJournal::new(),
    );
    for (k, minor) in [(1, 1000), (2, 1000), (3, 2066)] {
        payments
            .sale(IdempotencyKey::from_u128(k), eur(minor), Call::within(CALL))
            .await
            .unwrap();
    }
    // Settled while 2 and 3 are pending: the terminal counts them, and so does the journal.
    let settlement = payments
        .settle(
            IdempotencyKey::from_u128(100),
            Call::within(CALL).operator(manager(&terminal)),
        )
        .await
        .unwrap();
    let r = posbridge::reconcile(&entries(&payments), &settlement, Some(&key));
    assert!(r.is_clean(), "{:?}", r.differences);
    assert_eq!(r.pending_offline, keys(&[2, 3]));
    let journal = payments.close().await;

    // Another till takes the next payment: the acquirer is back, 2 and 3 are forwarded — and
    // pushed to that till only.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = terminal.connect(&other).await;
    client
        .sale(
            IdempotencyKey::from_u128(50),
            eur(1000),
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    client.close().await;

    // Back: recovery asks for what is pending.
    let payments = Payments::new(
        NativeAdapter::new(terminal.connect(&till).await, Some(key)),
        journal,
    );
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.confirmed_offline, keys(&[2]), "{report}");
    assert_eq!(report.declined_after, keys(&[3]), "{report}");
    assert_eq!(
        states(&payments, &[1, 2, 3]),
        [
            EntryState::Done,
            EntryState::Done,
            EntryState::DeclinedAfter
        ]
    );
    // The settled batch still reconciles: 3 was declined after it closed, so both sides count
    // it — and it is listed, because the acquirer pays out less by its amount.
    let r = posbridge::reconcile(&entries(&payments), &settlement, Some(&key));
    assert!(r.is_clean(), "{:?}", r.differences);
    assert_eq!(r.declined_after, keys(&[3]));
    assert!(r.pending_offline.is_empty());
}

/// Every entry of the till's journal.
fn entries(payments: &Payments<MemoryJournal>) -> Vec<posbridge::journal::Entry> {
    use posbridge::journal::Journal as _;
    payments
        .journal()
        .query(&posbridge::journal::Query::default())
        .unwrap()
}

/// The terminal's signed answer about the payment under key `k` approved offline, verified.
async fn asked(payments: &Payments<MemoryJournal>, k: u128) -> posbridge_wire::OfflineOutcome {
    let key = terminal_identity().signing().public_key();
    payments
        .adapter()
        .client()
        .offline_outcome(IdempotencyKey::from_u128(k), Some(&key), CALL)
        .await
        .unwrap()
        .expect("a 1.1 terminal answers")
}

/// A sale of `minor` cents under key `k`.
async fn sale_of(
    payments: &Payments<MemoryJournal>,
    k: u128,
    minor: u64,
) -> Result<posbridge_wire::TransactionResult, posbridge::PaymentError<posbridge::ClientError>> {
    payments
        .sale(IdempotencyKey::from_u128(k), eur(minor), Call::within(CALL))
        .await
}

/// A journaled till of `terminal`.
async fn paying(
    terminal: &Shared,
    till: &Arc<LocalIdentity>,
    key: posbridge_crypto::PublicKey,
) -> Payments<MemoryJournal> {
    Payments::new(
        NativeAdapter::new(terminal.connect(till).await, Some(key)),
        MemoryJournal::new(),
    )
}

/// A simulator restarted from its batch log still forwards what it had stored, and still knows
/// what became of each: a payment declined after the fact stays out of its totals, and its
/// outcome is still answered.
#[tokio::test(start_paused = true)]
async fn a_restarted_simulator_remembers_what_it_stored_and_what_became_of_it() {
    let dir = std::env::temp_dir().join(format!("posbridge-offline-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("batch.log");
    let till = identity(2, "Till 1");
    let key = terminal_identity().signing().public_key();
    let start = |path: &std::path::Path| {
        Shared::of(
            Simulator::new(device_profile(), terminal_identity(), driver::now(), WALL)
                .with_batch_log(path)
                .unwrap(),
            &[&till],
        )
    };
    {
        // First life: one sale online, then two approved offline and stored.
        let terminal = start(&path);
        let payments = paying(&terminal, &till, key).await;
        assert!(!sale_of(&payments, 1, 1000).await.unwrap().offline);
        assert!(sale_of(&payments, 2, 1000).await.unwrap().offline);
        assert!(sale_of(&payments, 3, 2066).await.unwrap().offline);
        payments.close().await;
    }
    {
        // Second life: still stored; the first payment forwards them.
        let terminal = start(&path);
        let payments = paying(&terminal, &till, key).await;
        let t = payments.telemetry(CALL).await.unwrap().unwrap();
        assert_eq!(
            t.stored_offline, 2,
            "what it had stored survives the restart"
        );
        assert!(!sale_of(&payments, 4, 500).await.unwrap().offline);
        let t = payments.telemetry(CALL).await.unwrap().unwrap();
        assert_eq!(t.stored_offline, 0);
        let sale_total = |terminal: &Shared| {
            terminal
                .app
                .lock()
                .totals()
                .iter()
                .filter(|t| t.kind == posbridge_wire::TransactionKind::Sale)
                .map(|t| (t.count, t.amount))
                .next()
        };
        assert_eq!(
            sale_total(&terminal),
            Some((3, 2500)),
            "20.66 declined after the fact"
        );
        payments.close().await;
    }
    // Third life: the outcome and the totals come back from the log.
    let terminal = start(&path);
    let totals = terminal.app.lock().totals();
    let sale = totals
        .iter()
        .find(|t| t.kind == posbridge_wire::TransactionKind::Sale)
        .unwrap();
    assert_eq!((sale.count, sale.amount), (3, 2500));
    let payments = paying(&terminal, &till, key).await;
    let outcome = asked(&payments, 3).await;
    assert_eq!(
        outcome.state,
        OfflineState::Declined(DeclineReason::DO_NOT_HONOUR)
    );
    let t = payments.telemetry(CALL).await.unwrap().unwrap();
    assert_eq!(t.stored_offline, 0, "nothing left to forward");
    payments.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
