//! posbridge-usb and posbridge-serial through the real Linux USB stack, inside the linux-vm test
//! bed (`scripts/vm-tests.sh` runs this binary there after `/opt/testbed/usb-gadget.sh`):
//! dummy_hcd with a composite gadget — a CDC-ACM port and a vendor interface whose bulk
//! endpoints echo. Outside the VM (no `TESTBED_VM`) only the checks that hold on any machine run.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use posbridge_link::{Discovery, Link, LinkExt, LinkKind, Segmented};
use posbridge_serial::SerialConfig;
use posbridge_usb::{UsbConfig, UsbDiscovery, UsbError, UsbFilter, list_devices, open};

fn in_vm() -> bool {
    let yes = std::env::var_os("TESTBED_VM").is_some();
    if !yes {
        eprintln!("skipped: not inside the linux-vm test bed");
    }
    yes
}

fn hex_env(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| u16::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(default)
}

fn gadget() -> UsbFilter {
    UsbFilter::vid_pid(hex_env("USB_VID", 0x1d6b), hex_env("USB_PID", 0x0105))
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

#[test]
fn a_device_that_is_not_there_is_a_typed_error() {
    let err = open(&UsbFilter::vid_pid(0xffff, 0xfffe), UsbConfig::default()).unwrap_err();
    assert!(matches!(err, UsbError::NoDevice(_)), "{err}");
    assert!(err.to_string().contains("ffff:fffe"), "{err}");
}

#[tokio::test]
async fn finds_the_gadget_by_vid_pid_and_class() {
    if !in_vm() {
        return;
    }
    let found = list_devices(&gadget());
    assert_eq!(found.len(), 1, "{found:?}");
    if let Ok(product) = std::env::var("USB_PRODUCT") {
        assert_eq!(found[0].ids.product.as_deref(), Some(product.as_str()));
    }
    let listed = UsbDiscovery { filter: gadget() }
        .discover(Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, LinkKind::Usb);
    assert_eq!(
        listed[0].usb.as_ref().unwrap().vid,
        hex_env("USB_VID", 0x1d6b)
    );
    // The CDC-ACM interface has no vendor class: asking for class 0x0A (CDC data) finds the
    // device, but its bulk endpoints belong to the serial port, which the kernel driver holds.
    let cdc = UsbFilter {
        interface_class: Some(0x42),
        ..gadget()
    };
    assert!(list_devices(&cdc).is_empty());
}

#[tokio::test]
async fn bulk_packets_echo_through_the_gadget() {
    if !in_vm() {
        return;
    }
    let mut link = open(&gadget(), UsbConfig::default()).expect("open the gadget");
    let mps = link.info().mtu;
    assert_eq!(mps, 512, "dummy_hcd runs at high speed");
    eprintln!("usb: opened {}", link.info());
    for len in [1, 100, mps - 1, mps] {
        let data = pattern(len, len as u8);
        link.send_all(&data).await.unwrap();
        let mut got = BytesMut::new();
        tokio::time::timeout(Duration::from_secs(10), link.recv(&mut got))
            .await
            .expect("echo within 10 s")
            .unwrap();
        assert_eq!(&got[..], &data[..], "packet of {len}");
    }
    // The full-size packet went out with a zero-length packet behind it, and its echo came back
    // with one: both handled.
    assert_eq!(link.stats().zlps_out, 1);
}

#[tokio::test]
async fn segmented_messages_and_throughput() {
    if !in_vm() {
        return;
    }
    let link = open(&gadget(), UsbConfig::default()).expect("open the gadget");
    let mut link = Segmented::new(link, 1 << 20).unwrap();
    let message = pattern(64 * 1024, 7);
    link.send_all(&message).await.unwrap();
    let mut got = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(20), link.recv(&mut got))
        .await
        .expect("echo within 20 s")
        .unwrap();
    assert!(got[..] == message[..], "64 KiB message differs");

    let total = 1 << 20;
    let t = Instant::now();
    let mut echoed = 0;
    while echoed < total {
        link.send_all(&message).await.unwrap();
        let mut got = BytesMut::new();
        link.recv(&mut got).await.unwrap();
        assert_eq!(got.len(), message.len());
        echoed += got.len();
    }
    let took = t.elapsed();
    println!(
        "USB-BULK-THROUGHPUT {echoed} bytes echoed in {took:.2?} = {:.0} B/s each way (512-byte packets, VM under TCG)",
        echoed as f64 / took.as_secs_f64()
    );
}

#[tokio::test]
async fn serial_finds_the_cdc_acm_port_by_vid_pid_and_moves_bytes() {
    if !in_vm() {
        return;
    }
    let (vid, pid) = (hex_env("USB_VID", 0x1d6b), hex_env("USB_PID", 0x0105));
    let ports = posbridge_serial::list_ports().expect("list ports");
    let port = ports
        .iter()
        .find(|p| p.usb.as_ref().is_some_and(|u| u.vid == vid && u.pid == pid))
        .unwrap_or_else(|| panic!("no port of {vid:04x}:{pid:04x} in {ports:?}"));
    let host_path = port.id.clone();
    assert!(host_path.contains("ttyACM"), "{host_path}");
    let gadget_path = std::env::var("USB_ACM_GADGET").unwrap_or_else(|_| "/dev/ttyGS0".into());
    let config = SerialConfig::default();
    let mut host = posbridge_serial::open(&host_path, &config).expect("open the host side");
    let mut device = posbridge_serial::open(&gadget_path, &config).expect("open the gadget side");
    assert_eq!(host.info().kind, LinkKind::Serial);
    for (from_host, n) in [(true, 16 * 1024), (false, 16 * 1024)] {
        let data = pattern(n, from_host as u8);
        let (tx, rx): (&mut dyn Link, &mut dyn Link) = if from_host {
            (&mut host, &mut device)
        } else {
            (&mut device, &mut host)
        };
        let sending = data.clone();
        let mut got = BytesMut::new();
        let mut sent = 0;
        // Interleave: a tty buffers only so much before the writer must wait for the reader.
        while got.len() < n {
            if sent < n {
                let chunk = &sending[sent..(sent + 1024).min(n)];
                sent += std::future::poll_fn(|cx| tx.poll_send(cx, chunk))
                    .await
                    .unwrap();
                std::future::poll_fn(|cx| tx.poll_flush(cx)).await.unwrap();
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                std::future::poll_fn(|cx| rx.poll_recv(cx, &mut got)),
            )
            .await;
        }
        assert!(got[..] == data[..], "serial bytes differ");
    }
    eprintln!("serial: 2 x 16 KiB through {host_path} <-> {gadget_path}");
}
