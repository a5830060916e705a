//! The USB link logic against the in-memory bus: one packet per send at the maximum packet size,
//! zero-length packets both ways, segmentation of large messages, a stalled endpoint, an unplugged
//! device. (A whole sale over it, with the simulator on the device's side, is the facade's
//! `tests/usb.rs`.)

use std::time::Duration;

use bytes::BytesMut;
use posbridge_link::{Delivery, Link, LinkError, LinkExt, LinkInfo, LinkKind, Segmented};
use posbridge_usb::{UsbConfig, UsbLink, memory_usb};

fn host(
    mps: usize,
) -> (
    UsbLink<posbridge_usb::MemoryEndpoints>,
    posbridge_usb::MemoryUsbDevice,
) {
    let (endpoints, device) = memory_usb(mps);
    let info = LinkInfo::new(LinkKind::Usb, Delivery::Packet, 0).with_address("bus 1 device 2");
    (UsbLink::new(endpoints, info, UsbConfig::default()), device)
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect()
}

#[tokio::test]
async fn packets_up_to_the_max_packet_size_both_ways() {
    for mps in [64, 512] {
        let (mut link, mut device) = host(mps);
        assert_eq!(link.info().mtu, mps);
        assert_eq!(link.info().kind, LinkKind::Usb);
        assert_eq!(link.info().delivery, Delivery::Packet);
        for len in [1, mps / 2, mps - 1, mps] {
            let data = pattern(len, len as u8);
            link.send_all(&data).await.unwrap();
            let mut got = BytesMut::new();
            assert_eq!(device.recv(&mut got).await.unwrap(), len);
            assert_eq!(&got[..], &data[..]);
            device.send_all(&data).await.unwrap();
            let mut back = BytesMut::new();
            assert_eq!(link.recv(&mut back).await.unwrap(), len);
            assert_eq!(&back[..], &data[..]);
        }
        // Only the full-size packet was followed by a zero-length packet.
        assert_eq!(device.zlps_received(), 1);
        assert_eq!(link.stats().zlps_out, 1);
        assert_eq!(link.stats().packets_out, 4);
    }
}

#[tokio::test]
async fn more_than_one_packet_is_refused() {
    let (mut link, _device) = host(64);
    let err = link.send_all(&[0; 65]).await.unwrap_err();
    assert!(
        matches!(err, LinkError::PacketTooLarge { len: 65, mtu: 64 }),
        "{err}"
    );
    assert!(!err.is_fatal());
    link.send_all(&[0; 64]).await.unwrap();
}

#[tokio::test]
async fn zero_length_packets_from_the_device_are_skipped() {
    let (mut link, mut device) = host(64);
    device.send_all(&[1; 64]).await.unwrap();
    device.send_zlp();
    device.send_all(&[2; 3]).await.unwrap();
    let mut got = BytesMut::new();
    assert_eq!(link.recv(&mut got).await.unwrap(), 64);
    assert_eq!(link.recv(&mut got).await.unwrap(), 3);
    assert_eq!(link.stats().zlps_in, 1);
    assert_eq!(link.stats().packets_in, 2);
}

#[tokio::test]
async fn segmented_messages_of_any_size() {
    let (link, device) = host(64);
    let mut host = Segmented::new(link, 64 * 1024).unwrap();
    let mut dev = Segmented::new(device, 64 * 1024).unwrap();
    let big = pattern(20_000, 9);
    host.send_all(&big).await.unwrap();
    let mut got = BytesMut::new();
    dev.recv(&mut got).await.unwrap();
    assert_eq!(&got[..], &big[..]);
    dev.send_all(&big[..1000]).await.unwrap();
    let mut back = BytesMut::new();
    host.recv(&mut back).await.unwrap();
    assert_eq!(&back[..], &big[..1000]);
}

#[tokio::test]
async fn an_unplugged_device_is_a_disconnect() {
    let (mut link, device) = host(512);
    let reader = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        let r = link.recv(&mut buf).await;
        (link, r)
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    device.unplug();
    let (mut link, r) = reader.await.unwrap();
    let err = r.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
    assert!(err.to_string().contains("USB device gone"), "{err}");
    let err = link.send_all(b"x").await.unwrap_err();
    assert!(matches!(err, LinkError::Disconnected(_)), "{err}");
}

#[tokio::test]
async fn a_stalled_endpoint_is_an_error_not_a_hang() {
    let (mut link, device) = host(64);
    device.stall_in();
    let mut buf = BytesMut::new();
    let err = link.recv(&mut buf).await.unwrap_err();
    assert!(err.to_string().contains("stalled"), "{err}");
}

#[tokio::test]
async fn close_then_closed() {
    let (mut link, mut device) = host(64);
    link.send_all(b"bye").await.unwrap();
    link.close().await.unwrap();
    let mut got = BytesMut::new();
    device.recv(&mut got).await.unwrap();
    assert_eq!(&got[..], b"bye");
    assert!(matches!(link.send_all(b"x").await, Err(LinkError::Closed)));
}
