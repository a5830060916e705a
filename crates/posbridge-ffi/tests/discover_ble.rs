//! The bindings' own Bluetooth LE on a desktop: btleplug's real BlueZ backend against the fake
//! BlueZ test bed, whose NUS peripheral bridges to the embedded simulator on 127.0.0.1.
//! `discover` lists the terminal with its signal strength, `connect_device` pairs over BLE and a
//! sale runs; then a reconnect with the pairing kept and a status query.
//!
//! `harness = false`: `main` starts the test bed and runs the checks in a child process.

#[path = "../../posbridge-ble/tests/support/fake_bluez.rs"]
mod fake_bluez;

use std::process::ExitCode;

use posbridge_ffi::*;

const ADDRESS: &str = "AA:BB:CC:DD:EE:31";

async fn checks(bed: &fake_bluez::FakeBluez) {
    let sim = start_simulator(0).await.unwrap();
    let port = sim.address().rsplit(':').next().unwrap().to_owned();
    bed.add_nus(
        ADDRESS,
        "PosSim-ffi",
        &format!("mode,tcp,tcp_port,{port},mtu,185"),
    );

    let found = discover(DiscoverOptions {
        timeout_ms: 1000,
        lan: false,
        serial: false,
        usb: false,
        ble: true,
        ble_name_prefix: Some("PosSim".into()),
        ..DiscoverOptions::default()
    })
    .await;
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let [device] = found.devices.as_slice() else {
        panic!("one terminal named PosSim… expected: {found:?}");
    };
    assert_eq!(
        (device.transport, device.id.as_str(), device.name.as_deref()),
        (Transport::Ble, ADDRESS, Some("PosSim-ffi"))
    );
    assert!(device.rssi_dbm.is_some());
    println!("fake-bluez: discover lists the BLE terminal with RSSI ... ok");

    let data = std::env::temp_dir().join(format!("posbridge-ffi-ble-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let options = |code: Option<String>| DeviceOptions {
        data_dir: data.display().to_string(),
        pairing_code: code,
        till_name: "ble test".into(),
        tls_pin: None,
        baud: 115_200,
        connect_timeout_ms: 10_000,
    };
    let terminal = connect_device(device.clone(), options(Some(sim.pairing_code())), None)
        .await
        .unwrap();
    let sale = terminal
        .clone()
        .sale("12.00".into(), "EUR".into(), None)
        .await
        .unwrap();
    assert_eq!(sale.outcome, PaymentOutcome::Approved);
    assert!(sale.signed);
    terminal.disconnect().await;
    println!("fake-bluez: connect_device pairs over BLE and a signed sale runs ... ok");

    // Again with the pairing kept in the data directory.
    let terminal = connect_device(device.clone(), options(None), None)
        .await
        .unwrap();
    let status = terminal.clone().status(sale.key.clone()).await.unwrap();
    assert_eq!(
        status.map(|s| s.transaction_id),
        Some(sale.transaction_id.clone())
    );
    assert_eq!(sim.transactions(), 1);
    terminal.disconnect().await;
    let _ = std::fs::remove_dir_all(&data);
    println!("fake-bluez: reconnect with the pairing kept, status of the sale ... ok");
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
