//! posbridge-ble through the real kernel Bluetooth stack and BlueZ, inside the linux-vm test bed
//! (`scripts/vm-tests.sh` runs this binary there after `/opt/testbed/bluetooth.sh`): two virtual
//! controllers, a NUS peripheral (`nus-peripheral`, echo mode) on hci1, our central on hci0.
//! Outside the VM (no `TESTBED_VM`) it skips.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use posbridge_ble::{BleCentral, BleConfig, BleFilter};
use posbridge_link::{Link, LinkExt};

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nus_echo_through_bluez() {
    if std::env::var_os("TESTBED_VM").is_none() {
        eprintln!("skipped: not inside the linux-vm test bed");
        return;
    }
    let adapter = std::env::var("BT_CENTRAL").unwrap_or_else(|_| "hci0".into());
    let name = std::env::var("NUS_NAME").unwrap_or_else(|_| "PosSim".into());
    let central = BleCentral::with_adapter(&adapter).await.expect("adapter");
    let filter = BleFilter {
        name_prefix: Some(name.clone()),
        ..Default::default()
    };
    let found = central
        .find(&filter, Duration::from_secs(30))
        .await
        .expect("the NUS peripheral advertises");
    println!(
        "ble: found {} {:?} rssi {:?}",
        found.address, found.name, found.rssi_dbm
    );
    let t = Instant::now();
    let mut link = central
        .connect(
            &found.address,
            BleConfig::default(),
            Duration::from_secs(30),
        )
        .await
        .expect("connect");
    println!(
        "ble: connected in {:.2?}: {} chunk {} bytes",
        t.elapsed(),
        link.info(),
        link.info().mtu
    );
    assert!(link.info().mtu >= 20);

    for (n, seed) in [(300usize, 1u8), (4096, 2)] {
        let data = pattern(n, seed);
        let t = Instant::now();
        link.send_all(&data).await.unwrap();
        let mut got = BytesMut::new();
        while got.len() < n {
            tokio::time::timeout(Duration::from_secs(20), link.recv(&mut got))
                .await
                .expect("echo within 20 s")
                .unwrap();
        }
        assert!(got[..] == data[..], "echo of {n} bytes differs");
        println!(
            "BLE-ECHO {n} bytes in {:.2?} = {:.0} B/s each way ({} writes, {} notifications)",
            t.elapsed(),
            n as f64 / t.elapsed().as_secs_f64(),
            link.stats().writes,
            link.stats().notifications
        );
    }
    link.close().await.unwrap();
}
