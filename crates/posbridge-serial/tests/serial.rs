//! Serial links over real pseudo-terminal pairs, and enumeration over a sysfs tree made here.

use std::time::Duration;

use bytes::BytesMut;
use posbridge_link::{Link, LinkError, LinkExt, LinkKind};
use posbridge_serial::*;
use tokio_serial::SerialPort;

async fn read_exactly(link: &mut impl Link, n: usize) -> Vec<u8> {
    let mut buf = BytesMut::new();
    while buf.len() < n {
        tokio::time::timeout(Duration::from_secs(20), link.recv(&mut buf))
            .await
            .expect("data in time")
            .unwrap();
    }
    buf.to_vec()
}

#[tokio::test]
async fn every_byte_value_crosses_a_pty_pair_both_ways() {
    let (mut a, mut b) = pty_pair().unwrap();
    assert_eq!(a.info().kind, LinkKind::Serial);
    // All 256 values, twice, so that control characters (XON/XOFF, ^C, CR, LF, DEL) appear in
    // every position: the port must be raw.
    let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    a.send_all(&data).await.unwrap();
    assert_eq!(read_exactly(&mut b, data.len()).await, data);
    b.send_all(&data).await.unwrap();
    assert_eq!(read_exactly(&mut a, data.len()).await, data);
}

#[tokio::test]
async fn large_writes_arrive_whole() {
    let (mut a, mut b) = pty_pair().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        a.send_all(&data).await.unwrap();
        a
    });
    assert_eq!(read_exactly(&mut b, expect.len()).await, expect);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn far_end_going_away_ends_the_link() {
    let (a, mut b) = pty_pair().unwrap();
    drop(a);
    let mut buf = BytesMut::new();
    let end = tokio::time::timeout(Duration::from_secs(5), b.recv(&mut buf))
        .await
        .expect("the end is reported, not waited on forever");
    assert!(
        matches!(
            end,
            Err(LinkError::Disconnected(_)) | Err(LinkError::Closed)
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn open_by_path_is_exclusive_and_errors_are_typed() {
    let (master, _slave_link) = tokio_serial::SerialStream::pair().unwrap();
    let (_m, slave) = (master, _slave_link);
    let path = slave.name().expect("the pty has a path");
    drop(slave);
    let config = SerialConfig::default();
    let mut link = open(&path, &config).unwrap();
    assert_eq!(link.info().address.as_deref(), Some(path.as_str()));
    assert_eq!(link.info().bits_per_second, Some(115_200));
    // A second open of the same port is refused while the first holds it, even for root.
    let err = open(&path, &config).unwrap_err();
    assert!(matches!(err, SerialError::Busy { .. }), "{err:?}");
    assert!(err.to_string().contains("in use"));
    link.close().await.ok();
    drop(link);
    // Released on drop.
    drop(open(&path, &config).unwrap());

    let err = open("/dev/posbridge-no-such-port", &config).unwrap_err();
    assert!(matches!(err, SerialError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"));
}

#[test]
fn zvt_line_settings() {
    let c = SerialConfig::zvt();
    assert_eq!(
        (c.baud, c.stop_bits, c.parity),
        (9600, StopBits::Two, Parity::None)
    );
}

/// A sysfs tree with a USB CDC-ACM terminal, a USB-serial adapter, a legacy UART stub, a real
/// platform UART and a virtual console.
#[cfg(target_os = "linux")]
#[test]
fn enumeration_reads_usb_identity_from_sysfs() {
    use std::fs;
    use std::os::unix::fs::symlink;
    let root = std::env::temp_dir().join(format!("posbridge-sysfs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let sys = root.join("sys");
    let usb = sys.join("devices/pci0000:00/0000:00:14.0/usb1/1-2");
    let iface = usb.join("1-2:1.0");
    fs::create_dir_all(iface.join("tty/ttyACM0")).unwrap();
    for (f, v) in [
        ("idVendor", "1234\n"),
        ("idProduct", "5678\n"),
        ("serial", "T0042\n"),
        ("product", "Payment Terminal\n"),
    ] {
        fs::write(usb.join(f), v).unwrap();
    }
    let adapter = sys.join("devices/pci0000:00/0000:00:14.0/usb1/1-3");
    let adapter_port = adapter.join("1-3:1.0/ttyUSB0");
    fs::create_dir_all(&adapter_port).unwrap();
    fs::write(adapter.join("idVendor"), "0403\n").unwrap();
    fs::write(adapter.join("idProduct"), "6001\n").unwrap();
    let stub = sys.join("devices/platform/serial8250/tty/ttyS0");
    fs::create_dir_all(&stub).unwrap();
    let drivers = sys.join("bus/platform/drivers");
    fs::create_dir_all(drivers.join("serial8250")).unwrap();
    fs::create_dir_all(drivers.join("dw-apb-uart")).unwrap();
    symlink(
        drivers.join("serial8250"),
        sys.join("devices/platform/serial8250/driver"),
    )
    .unwrap();
    let uart = sys.join("devices/platform/80060000.serial");
    fs::create_dir_all(&uart).unwrap();
    symlink(drivers.join("dw-apb-uart"), uart.join("driver")).unwrap();
    let class = sys.join("class/tty");
    for name in ["ttyACM0", "ttyUSB0", "ttyS0", "ttyS4", "tty0"] {
        fs::create_dir_all(class.join(name)).unwrap();
    }
    symlink(&iface, class.join("ttyACM0/device")).unwrap();
    symlink(adapter.join("1-3:1.0"), class.join("ttyUSB0/device")).unwrap();
    symlink(
        sys.join("devices/platform/serial8250"),
        class.join("ttyS0/device"),
    )
    .unwrap();
    symlink(&uart, class.join("ttyS4/device")).unwrap();

    let ports = list_ports_in(&sys, std::path::Path::new("/dev")).unwrap();
    let ids: Vec<&str> = ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["/dev/ttyACM0", "/dev/ttyS4", "/dev/ttyUSB0"]);
    let acm = &ports[0];
    let ids = acm.usb.as_ref().unwrap();
    assert_eq!((ids.vid, ids.pid), (0x1234, 0x5678));
    assert_eq!(ids.serial_number.as_deref(), Some("T0042"));
    assert_eq!(acm.name.as_deref(), Some("Payment Terminal"));
    assert!(ports[1].usb.is_none());
    let ftdi = ports[2].usb.as_ref().unwrap();
    assert_eq!(
        (ftdi.vid, ftdi.pid, ftdi.serial_number.as_deref()),
        (0x0403, 0x6001, None)
    );
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn listing_the_real_system_works_without_usb() {
    // This machine has no USB: the list may be empty, but it must not fail, and a VID/PID search
    // finds nothing.
    let ports = list_ports().unwrap();
    assert!(find_usb(0xFFFE, 0xFFFE, None).unwrap().is_none());
    // The Discovery trait gives the same list.
    let found = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(posbridge_link::Discovery::discover(
            &mut SerialDiscovery,
            Duration::from_secs(1),
        ))
        .unwrap();
    assert_eq!(found, ports);
}
