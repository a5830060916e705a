//! A whole sale phone → Bluetooth LE → terminal through the real kernel stack and BlueZ, inside
//! the linux-vm test bed: `scripts/vm-tests.sh` restarts the test bed's NUS peripheral (on hci1)
//! in bridge mode (`NUS_BRIDGE_PORT`), this test serves the simulator on that port and pairs and
//! sells through btleplug on hci0. Outside the VM it skips.

mod support;

use std::time::Duration;

use posbridge::ble::{BleCentral, BleFilter};
use posbridge::journal::MemoryJournal;
use posbridge_wire::IdempotencyKey;
use support::ble_terminal::{CALL, Till, start_terminal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_and_sales_through_bluez() {
    let (Some(_), Ok(port)) = (
        std::env::var_os("TESTBED_VM"),
        std::env::var("NUS_BRIDGE_PORT"),
    ) else {
        eprintln!("skipped: not inside the linux-vm test bed with a bridged NUS peripheral");
        return;
    };
    let (code, _) = start_terminal(&format!("127.0.0.1:{port}")).await;
    let adapter = std::env::var("BT_CENTRAL").unwrap_or_else(|_| "hci0".into());
    let central = BleCentral::with_adapter(&adapter).await.unwrap();
    let name = std::env::var("NUS_NAME").unwrap_or_else(|_| "PosSim".into());
    let found = central
        .find(
            &BleFilter {
                name_prefix: Some(name),
                ..Default::default()
            },
            Duration::from_secs(30),
        )
        .await
        .expect("the bridged NUS peripheral advertises");
    let mut till = Till::new();
    let t = std::time::Instant::now();
    let payments = till
        .connect(&central, &found.address, &code, None, MemoryJournal::new())
        .await;
    println!("BLE-PAIRED through BlueZ in {:.2?}", t.elapsed());
    let t = std::time::Instant::now();
    till.approved_sale(&payments, 0xB1E_1001, 4200).await;
    println!("BLE-SALE signed sale through BlueZ in {:.2?}", t.elapsed());
    let status = payments
        .adapter()
        .client()
        .status(IdempotencyKey::from_u128(0xB1E_1001), CALL)
        .await
        .unwrap();
    assert!(format!("{status:?}").contains("Approved"), "{status:?}");
    let (client, journal) = payments.into_parts();
    client.close().await;
    // Again, with the stored key.
    let payments = till
        .connect(&central, &found.address, &code, None, journal)
        .await;
    till.approved_sale(&payments, 0xB1E_1002, 1000).await;
    let (client, _) = payments.into_parts();
    client.close().await;
}
