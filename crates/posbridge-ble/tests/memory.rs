//! The BLE link logic against the in-memory NUS peripheral: chunking at ATT MTU 23 and 247,
//! pacing, reassembly of slow notifications, link loss mid-write, orderly close.

use std::time::Duration;

use bytes::BytesMut;
use posbridge_ble::{
    BleConfig, BleError, BleLink, MemoryPeripheralConfig, WriteMode, memory_peripheral,
};
use posbridge_link::{Delivery, Link, LinkError, LinkExt, LinkKind};

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

async fn read_exactly(link: &mut impl Link, n: usize) -> Result<Vec<u8>, LinkError> {
    let mut got = BytesMut::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(10), link.recv(&mut got))
            .await
            .expect("data within 10 s")?;
    }
    Ok(got.to_vec())
}

async fn round_trip(mtu: u16, n: usize) {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig {
        att_mtu: mtu,
        ..Default::default()
    });
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    let info = phone.info().clone();
    assert_eq!(info.kind, LinkKind::Ble);
    assert_eq!(info.delivery, Delivery::Stream);
    assert_eq!(info.mtu, usize::from(mtu) - 3);

    // The reading side runs at the same time: the peripheral applies backpressure, as a real
    // one does.
    let out = pattern(n, 1);
    let far = tokio::spawn(async move {
        let got = read_exactly(&mut terminal, n).await.unwrap();
        (terminal, got)
    });
    phone.send_all(&out).await.unwrap();
    let (mut terminal, got) = far.await.unwrap();
    assert_eq!(got, out);
    let back = pattern(n, 2);
    let near = tokio::spawn(async move {
        let got = read_exactly(&mut phone, n).await.unwrap();
        (phone, got)
    });
    terminal.send_all(&back).await.unwrap();
    let (phone, got) = near.await.unwrap();
    assert_eq!(got, back);

    let log = peripheral.log();
    let max = usize::from(mtu) - 3;
    assert_eq!(log.writes.iter().map(|w| w.0).sum::<usize>(), n);
    assert!(log.writes.iter().all(|w| w.0 <= max), "a write over MTU-3");
    assert_eq!(log.writes.iter().map(|w| w.0).max(), Some(max));
    assert!(log.notifications.iter().all(|&l| l <= max));
    assert_eq!(log.notifications.iter().sum::<usize>(), n);
    // Write commands, with one write request after every 15 commands.
    let confirmed = log.writes.iter().filter(|w| w.1).count();
    assert_eq!(confirmed, log.writes.len() / 16, "pacing requests");
    let stats = phone.stats();
    assert_eq!(stats.bytes_written, n as u64);
    assert_eq!(stats.bytes_received, n as u64);
    assert_eq!(stats.largest_write, max);
}

#[tokio::test]
async fn mtu_23_writes_are_20_bytes_and_notifications_reassemble() {
    round_trip(23, 3000).await;
}

#[tokio::test]
async fn mtu_247_writes_are_244_bytes() {
    round_trip(247, 20_000).await;
}

#[tokio::test]
async fn large_mtu_is_capped_at_510_bytes() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig {
        att_mtu: 517,
        ..Default::default()
    });
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    assert_eq!(phone.info().mtu, 510);
    phone.send_all(&pattern(2000, 3)).await.unwrap();
    read_exactly(&mut terminal, 2000).await.unwrap();
    assert!(peripheral.log().writes.iter().all(|w| w.0 <= 510));
}

#[tokio::test]
async fn with_response_mode_confirms_every_write() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig::default());
    let config = BleConfig {
        write_mode: WriteMode::WithResponse,
        ..Default::default()
    };
    let mut phone = BleLink::new(gatt, config).unwrap();
    phone.send_all(&pattern(95, 4)).await.unwrap();
    read_exactly(&mut terminal, 95).await.unwrap();
    let log = peripheral.log();
    assert_eq!(log.writes.len(), 5);
    assert!(log.writes.iter().all(|w| w.1));
}

#[tokio::test]
async fn without_response_where_not_offered_is_a_typed_error() {
    let (gatt, _terminal, _p) = memory_peripheral(MemoryPeripheralConfig {
        write_without_response: false,
        ..Default::default()
    });
    let config = BleConfig {
        write_mode: WriteMode::WithoutResponse,
        ..Default::default()
    };
    let err = BleLink::new(gatt, config).unwrap_err();
    assert!(
        matches!(err, BleError::CharacteristicMissing { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn auto_mode_falls_back_to_requests() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig {
        write_without_response: false,
        ..Default::default()
    });
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    phone.send_all(&pattern(60, 5)).await.unwrap();
    read_exactly(&mut terminal, 60).await.unwrap();
    assert!(peripheral.log().writes.iter().all(|w| w.1));
}

#[tokio::test]
async fn slow_notifications_arrive_whole_and_in_order() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig {
        notify_interval: Duration::from_millis(2),
        ..Default::default()
    });
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    let data = pattern(1000, 6);
    // Three writes on the far side, which the peripheral re-cuts into 20-byte notifications.
    for part in [&data[..333], &data[333..334], &data[334..]] {
        terminal.send_all(part).await.unwrap();
    }
    assert_eq!(read_exactly(&mut phone, 1000).await.unwrap(), data);
    assert!(peripheral.log().notifications.len() >= 50);
}

#[tokio::test]
async fn link_lost_mid_write_is_a_disconnect_on_both_directions() {
    let (gatt, _terminal, _p) = memory_peripheral(MemoryPeripheralConfig {
        disconnect_after_writes: Some(3),
        ..Default::default()
    });
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    // 200 bytes = 10 writes; the 4th fails.
    let err = phone.send_all(&pattern(200, 7)).await.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
    assert!(err.is_fatal());
    let mut buf = BytesMut::new();
    let err = phone.recv(&mut buf).await.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
    let err = phone.send_all(b"x").await.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
}

#[tokio::test]
async fn link_loss_while_idle_surfaces_on_receive() {
    let (gatt, _terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig::default());
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        phone.recv(&mut buf).await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    peripheral.drop_connection("supervision timeout").await;
    let err = reader.await.unwrap().unwrap_err();
    match err {
        LinkError::Disconnected(e) => assert!(e.to_string().contains("supervision timeout")),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn data_received_before_a_disconnect_is_still_delivered() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig::default());
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    terminal.send_all(&pattern(45, 8)).await.unwrap();
    // Let the notifications reach the link, then lose the link.
    tokio::time::sleep(Duration::from_millis(50)).await;
    peripheral.drop_connection("gone").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut buf = BytesMut::new();
    assert_eq!(phone.recv(&mut buf).await.unwrap(), 45);
    assert!(matches!(
        phone.recv(&mut buf).await,
        Err(LinkError::Disconnected(_))
    ));
}

#[tokio::test]
async fn close_flushes_then_disconnects() {
    let (gatt, mut terminal, peripheral) = memory_peripheral(MemoryPeripheralConfig::default());
    let mut phone = BleLink::new(gatt, BleConfig::default()).unwrap();
    let data = pattern(500, 9);
    let mut sent = 0;
    while sent < data.len() {
        sent += std::future::poll_fn(|cx| phone.poll_send(cx, &data[sent..]))
            .await
            .unwrap();
    }
    phone.close().await.unwrap();
    assert_eq!(read_exactly(&mut terminal, 500).await.unwrap(), data);
    assert!(peripheral.log().central_disconnected);
    assert!(matches!(phone.send_all(b"x").await, Err(LinkError::Closed)));
}

#[tokio::test]
async fn a_small_send_buffer_applies_backpressure_without_loss() {
    let (gatt, mut terminal, _p) = memory_peripheral(MemoryPeripheralConfig::default());
    let config = BleConfig {
        send_buffer: 64,
        ..Default::default()
    };
    let mut phone = BleLink::new(gatt, config).unwrap();
    let data = pattern(10_000, 10);
    let expect = data.clone();
    let reader = tokio::spawn(async move {
        let got = read_exactly(&mut terminal, 10_000).await;
        (terminal, got)
    });
    let mut sent = 0;
    while sent < data.len() {
        let n = std::future::poll_fn(|cx| phone.poll_send(cx, &data[sent..]))
            .await
            .unwrap();
        assert!(n <= 64);
        sent += n;
    }
    std::future::poll_fn(|cx| phone.poll_flush(cx))
        .await
        .unwrap();
    let (_terminal, got) = reader.await.unwrap();
    assert_eq!(got.unwrap(), expect);
}

#[tokio::test]
async fn an_unread_receive_buffer_is_bounded() {
    let (gatt, mut terminal, _p) = memory_peripheral(MemoryPeripheralConfig::default());
    let config = BleConfig {
        receive_buffer: 1000,
        ..Default::default()
    };
    let mut phone = BleLink::new(gatt, config).unwrap();
    terminal.send_all(&pattern(3000, 11)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buf = BytesMut::new();
    // What fit is delivered; then the overflow is reported, not silently dropped.
    let first = phone.recv(&mut buf).await.unwrap();
    assert!(first <= 1000);
    let err = phone.recv(&mut buf).await.unwrap_err();
    assert!(err.to_string().contains("not read"), "{err}");
}

#[test]
fn outside_a_runtime_is_a_typed_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (gatt, _t, _p) =
        rt.block_on(async { memory_peripheral(MemoryPeripheralConfig::default()) });
    assert!(matches!(
        BleLink::new(gatt, BleConfig::default()),
        Err(BleError::NoRuntime)
    ));
}
