//! A whole sale phone → Bluetooth LE → terminal: btleplug's real BlueZ backend against the fake
//! BlueZ test bed, whose NUS peripheral bridges to the simulator listening on 127.0.0.1 (the way
//! a terminal's BLE module passes bytes to its payment application). First at ATT MTU 247 with
//! pairing by code, then at MTU 23 with the key that pairing stored.
//!
//! `harness = false`: `main` starts the test bed and runs the checks in a child process.

#[path = "../../posbridge-ble/tests/support/fake_bluez.rs"]
mod fake_bluez;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use posbridge::ble::{BleCentral, BleConfig};
use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{ConnectOptions, NativeClient, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId, verify_result};
use posbridge_link::Link;
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome, Timestamp, TransactionCommand};

const WIDE: &str = "AA:BB:CC:DD:EE:10";
const NARROW: &str = "AA:BB:CC:DD:EE:11";
const CALL: Duration = Duration::from_secs(60);

fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

async fn checks(bed: &fake_bluez::FakeBluez) {
    // The terminal: the simulator on 127.0.0.1, one session per TCP connection of the bridge.
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let keys = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim").unwrap());
    let context = TerminalContext::new(
        keys.clone(),
        PairingRegistry::new(),
        profile.capabilities(),
        1000,
    );
    let code = context
        .registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), driver::now())
        .unwrap()
        .to_string();
    let listener = posbridge::tcp::Listener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = context.clone();
    tokio::spawn(async move {
        let sim = Arc::new(tokio::sync::Mutex::new(Simulator::new(
            profile,
            keys,
            driver::now(),
            Timestamp(1_764_000_000_000),
        )));
        while let Ok(link) = listener.accept().await {
            let session =
                TerminalSession::new(SessionConfig::default(), served.clone(), driver::now());
            let sim = sim.clone();
            tokio::spawn(async move {
                let mut sim = sim.lock().await;
                driver::serve_terminal(session, link, &mut *sim).await;
            });
        }
    });
    bed.add_nus(
        WIDE,
        "PosSim-247",
        &format!("mode,tcp,tcp_port,{port},mtu,247"),
    );
    bed.add_nus(
        NARROW,
        "PosSim-23",
        &format!("mode,tcp,tcp_port,{port},mtu,23"),
    );

    // One call lists every terminal in reach: here both BLE terminals, with signal strength.
    let found = posbridge::discover(&posbridge::DiscoverOptions {
        timeout: Duration::from_secs(1),
        mdns: false,
        ..Default::default()
    })
    .await;
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    for address in [WIDE, NARROW] {
        let d = found
            .devices
            .iter()
            .find(|d| d.id == address)
            .unwrap_or_else(|| panic!("{address} not discovered: {found:?}"));
        assert_eq!(d.kind, posbridge_link::LinkKind::Ble);
        assert!(d.rssi_dbm.is_some());
    }
    println!("fake-bluez: posbridge::discover lists the BLE terminals with RSSI ... ok");

    let central = BleCentral::with_adapter("hci0").await.unwrap();
    let identity =
        Arc::new(LocalIdentity::generate(PeerId::random().unwrap(), "BLE till").unwrap());
    let options = |security| ConnectOptions {
        session: SessionConfig::default(),
        identity: identity.clone(),
        security,
        hello: hello(),
        timeout: Duration::from_secs(30),
    };

    // Pair over BLE at MTU 247, then sell.
    let link = central
        .connect(WIDE, BleConfig::default(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(link.info().mtu, 244);
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Pair(PairingSecret::code(&code).unwrap())),
    )
    .await
    .expect("pair over BLE");
    let record = client.paired().cloned().expect("paired");
    let payments = Payments::new(client, MemoryJournal::new(), Some(record.peer.signing_key));
    let key = IdempotencyKey::from_u128(0xB1E_0001);
    let result = payments
        .transaction(key, sale(1250), CALL)
        .await
        .expect("sale over BLE");
    assert_eq!(result.outcome, Outcome::Approved);
    assert_eq!(result.approved_minor, 1250);
    verify_result(&record.peer.signing_key, &result).expect("signed by the paired terminal");
    assert_eq!(
        payments.journal().get(&key).unwrap().unwrap().state,
        EntryState::Done
    );
    println!("fake-bluez: pairing and a signed sale over BLE at MTU 247 ... ok");
    let (client, journal) = payments.into_parts();
    client.close().await;

    // Reconnect at MTU 23 with the stored key: a sale, a decline, and the first sale's status.
    let link = central
        .connect(NARROW, BleConfig::default(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(link.info().mtu, 20);
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Paired {
            terminal_key: record.peer.channel_key,
        }),
    )
    .await
    .expect("reconnect with the paired key");
    let payments = Payments::new(client, journal, Some(record.peer.signing_key));
    let second = IdempotencyKey::from_u128(0xB1E_0002);
    let r = payments
        .transaction(second, sale(2000), CALL)
        .await
        .expect("sale at MTU 23");
    assert_eq!(r.outcome, Outcome::Approved);
    // 51 cents: the test card for insufficient funds.
    let declined = payments
        .transaction(IdempotencyKey::from_u128(0xB1E_0003), sale(5100 + 51), CALL)
        .await
        .expect("a decline is an answer");
    assert!(
        matches!(declined.outcome, Outcome::Declined(_)),
        "{:?}",
        declined.outcome
    );
    let status = payments
        .client()
        .status(key, CALL)
        .await
        .expect("status of the first sale");
    assert!(format!("{status:?}").contains("Approved"), "{status:?}");
    assert_eq!(payments.journal().unresolved().unwrap().len(), 0);
    println!(
        "fake-bluez: reconnect with the stored key, sales and a status query over BLE at MTU 23 ... ok"
    );
    let (client, _) = payments.into_parts();
    client.close().await;
}

fn main() -> ExitCode {
    fake_bluez::main_with(|bed| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(checks(bed));
    })
}
