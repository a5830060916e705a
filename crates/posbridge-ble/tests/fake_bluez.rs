//! btleplug's real Linux backend against the fake BlueZ test bed: scan with the NUS filter,
//! connect at ATT MTU 23 and 247, chunked writes echoed back through notifications, link loss
//! (`DisconnectDevice`) as a link error, reconnect, and a NUS bridge to a TCP server.
//!
//! `harness = false`: `main` starts the test bed and runs the checks in a child process (see
//! `support/fake_bluez.rs`).

mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use posbridge_ble::{BleCentral, BleConfig, BleDiscovery, BleFilter, BleLink};
use posbridge_link::{Discovery, Link, LinkError, LinkExt, LinkKind};
use support::fake_bluez::{FakeBluez, main_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO: &str = "AA:BB:CC:DD:EE:FF";
const WIDE: &str = "AA:BB:CC:DD:EE:01";
const BRIDGE: &str = "AA:BB:CC:DD:EE:02";
const SCAN: Duration = Duration::from_secs(10);

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

async fn read_exactly(link: &mut BleLink, n: usize) -> Result<Vec<u8>, LinkError> {
    let mut got = BytesMut::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(10), link.recv(&mut got))
            .await
            .expect("data within 10 s")?;
    }
    Ok(got.to_vec())
}

async fn echo(link: &mut BleLink, n: usize, seed: u8) -> Duration {
    let data = pattern(n, seed);
    let t = Instant::now();
    link.send_all(&data).await.expect("send");
    let got = read_exactly(link, n).await.expect("echo");
    assert!(got == data, "echo differs");
    t.elapsed()
}

fn check(name: &str) {
    println!("fake-bluez: {name} ... ok");
}

async fn scan(central: &BleCentral) {
    let found = central
        .scan(&BleFilter::default(), Duration::from_secs(1))
        .await
        .unwrap();
    let d = found
        .iter()
        .find(|d| d.address == ECHO)
        .expect("NUS peripheral found");
    assert_eq!(d.name.as_deref(), Some("MockPOS"));
    assert!(d.rssi_dbm.is_some(), "RSSI reported");
    let prefix = BleFilter {
        name_prefix: Some("Mock".into()),
        ..Default::default()
    };
    assert!(central.find(&prefix, SCAN).await.is_ok());
    let other = BleFilter {
        name_prefix: Some("Other".into()),
        ..Default::default()
    };
    assert!(
        central
            .scan(&other, Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    let listed = BleDiscovery::default()
        .discover(Duration::from_secs(1))
        .await
        .unwrap();
    let d = listed.iter().find(|d| d.id == ECHO).expect("discovered");
    assert_eq!(d.kind, LinkKind::Ble);
    assert!(d.rssi_dbm.is_some());
    check("scan with the NUS filter and a name prefix; discovery with RSSI");
}

async fn mtu_23(central: &BleCentral) {
    let filter = BleFilter {
        name_prefix: Some("MockPOS".into()),
        ..Default::default()
    };
    let mut link = central
        .connect_first(&filter, BleConfig::default(), SCAN)
        .await
        .unwrap();
    assert_eq!(link.info().mtu, 20, "ATT MTU 23 -> 20-byte writes");
    assert_eq!(link.info().peer_name.as_deref(), Some("MockPOS"));
    let took = echo(&mut link, 300, 1).await;
    let stats = link.stats();
    assert_eq!(stats.largest_write, 20);
    assert_eq!(stats.writes, 15);
    println!(
        "fake-bluez: 300 bytes echoed at MTU 23 in {took:.2?} ({} notifications)",
        stats.notifications
    );
    link.close().await.unwrap();
    check("MTU 23: chunked writes, notifications reassembled");
}

async fn mtu_247_loss_and_reconnect(central: &BleCentral, bed: &FakeBluez) {
    bed.add_nus(WIDE, "MockPOS-247", "mode,echo,mtu,247");
    let mut link = central
        .connect(WIDE, BleConfig::default(), SCAN)
        .await
        .unwrap();
    assert_eq!(link.info().mtu, 244, "ATT MTU 247 -> 244-byte writes");
    let n = 16 * 1024;
    let took = echo(&mut link, n, 2).await;
    assert_eq!(link.stats().largest_write, 244);
    println!(
        "fake-bluez: {n} bytes echoed at MTU 247 in {took:.2?} = {:.0} B/s each way",
        n as f64 / took.as_secs_f64()
    );
    check("MTU 247: 244-byte writes, 16 KiB echoed");

    bed.drop_link(WIDE);
    let mut buf = BytesMut::new();
    let err = tokio::time::timeout(Duration::from_secs(5), link.recv(&mut buf))
        .await
        .expect("the loss is reported within 5 s")
        .unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
    let err = link.send_all(b"after loss").await.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
    drop(link);
    check("link loss (DisconnectDevice) surfaces as LinkError::Disconnected");

    let mut again = central
        .connect(WIDE, BleConfig::default(), SCAN)
        .await
        .unwrap();
    echo(&mut again, 1000, 3).await;
    again.close().await.unwrap();
    check("reconnect after link loss");
}

async fn bridge(central: &BleCentral, bed: &FakeBluez) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    bed.add_nus(
        BRIDGE,
        "MockPOS-bridge",
        &format!("mode,tcp,tcp_port,{port},mtu,185"),
    );
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while seen.len() < 2000 {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "bridge closed early");
            seen.extend_from_slice(&buf[..n]);
            let answer: Vec<u8> = buf[..n].iter().map(|b| b.wrapping_add(1)).collect();
            sock.write_all(&answer).await.unwrap();
        }
        // The bridge drops the BLE link when its TCP side closes: hold it until the phone has
        // everything.
        let _ = done_rx.await;
        seen
    });
    let mut link = central
        .connect(BRIDGE, BleConfig::default(), SCAN)
        .await
        .unwrap();
    assert_eq!(link.info().mtu, 182);
    let data = pattern(2000, 4);
    link.send_all(&data).await.unwrap();
    let got = read_exactly(&mut link, 2000).await.unwrap();
    let _ = done_tx.send(());
    let want: Vec<u8> = data.iter().map(|b| b.wrapping_add(1)).collect();
    assert!(got == want, "bridged answer differs");
    assert!(
        server.await.unwrap() == data,
        "the TCP side saw other bytes"
    );
    link.close().await.unwrap();
    check("NUS bridge: phone -> BLE -> TCP server and back");
}

fn main() -> ExitCode {
    main_with(|bed| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let central = BleCentral::with_adapter("hci0")
                .await
                .expect("adapter hci0");
            scan(&central).await;
            mtu_23(&central).await;
            mtu_247_loss_and_reconnect(&central, bed).await;
            bridge(&central, bed).await;
        });
    })
}
