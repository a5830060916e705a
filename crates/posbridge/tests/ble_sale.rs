//! A whole sale phone → Bluetooth LE → terminal: btleplug's real BlueZ backend against the fake
//! BlueZ test bed, whose NUS peripheral bridges to the simulator listening on 127.0.0.1 (the way
//! a terminal's BLE module passes bytes to its payment application). First at ATT MTU 247 with
//! pairing by code, then at MTU 23 with the key that pairing stored.
//!
//! `harness = false`: `main` starts the test bed and runs the checks in a child process.

#[path = "../../posbridge-ble/tests/support/fake_bluez.rs"]
mod fake_bluez;
mod support;

use std::process::ExitCode;
use std::time::Duration;

use posbridge::ble::BleCentral;
use posbridge::journal::{Journal, MemoryJournal};
use posbridge_wire::{IdempotencyKey, Outcome};
use support::ble_terminal::{CALL, Till, sale, start_terminal};

const WIDE: &str = "AA:BB:CC:DD:EE:10";
const NARROW: &str = "AA:BB:CC:DD:EE:11";

async fn checks(bed: &fake_bluez::FakeBluez) {
    // The terminal: the simulator on 127.0.0.1, one session per TCP connection of the bridge.
    let (code, port) = start_terminal("127.0.0.1:0").await;
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

    // Pair over BLE at MTU 247, then sell.
    let central = BleCentral::with_adapter("hci0").await.unwrap();
    let mut till = Till::new();
    let payments = till
        .connect(&central, WIDE, &code, Some(244), MemoryJournal::new())
        .await;
    till.approved_sale(&payments, 0xB1E_0001, 1250).await;
    println!("fake-bluez: pairing and a signed sale over BLE at MTU 247 ... ok");
    let (client, journal) = payments.into_parts();
    client.close().await;

    // Reconnect at MTU 23 with the stored key: a sale, a decline, and the first sale's status.
    let payments = till
        .connect(&central, NARROW, &code, Some(20), journal)
        .await;
    till.approved_sale(&payments, 0xB1E_0002, 2000).await;
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
        .adapter()
        .client()
        .status(IdempotencyKey::from_u128(0xB1E_0001), CALL)
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
