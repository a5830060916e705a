//! The bindings' own USB on a desktop, through the real Linux USB stack inside the linux-vm test
//! bed (`scripts/vm-tests.sh` runs this binary there after `/opt/testbed/usb-gadget.sh`):
//! dummy_hcd with a composite gadget — a CDC-ACM serial function and a vendor interface with bulk
//! endpoints. `discover` lists both (nusb and the serial ports, with their USB ids); the simulator
//! serves the gadget's side of the serial function and a till pays through the kernel's cdc_acm
//! driver via `connect_device`. Outside the VM (no `TESTBED_VM`) it says so and checks nothing.
#![cfg(all(feature = "usb", feature = "sim"))]

use posbridge_ffi::*;

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

#[tokio::test]
async fn discover_lists_the_gadget_and_a_till_pays_through_its_serial_function() {
    if !in_vm() {
        return;
    }
    let (vid, pid) = (hex_env("USB_VID", 0x1d6b), hex_env("USB_PID", 0x0105));
    let found = discover(DiscoverOptions {
        timeout_ms: 0,
        lan: false,
        ble: false,
        serial: true,
        usb: true,
        usb_vendor_id: Some(vid),
        usb_product_id: Some(pid),
        ..DiscoverOptions::default()
    })
    .await;
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let ours = |d: &&Device| d.usb_vendor_id == Some(vid) && d.usb_product_id == Some(pid);
    let usb = found
        .devices
        .iter()
        .filter(ours)
        .find(|d| d.transport == Transport::Usb)
        .unwrap_or_else(|| panic!("the gadget is not listed as USB: {found:?}"));
    assert!(
        usb.id.starts_with(&format!("{vid:04x}:{pid:04x}")),
        "{usb:?}"
    );
    let port = found
        .devices
        .iter()
        .filter(ours)
        .find(|d| d.transport == Transport::Serial)
        .unwrap_or_else(|| panic!("the gadget's serial port is not listed: {found:?}"))
        .clone();
    assert!(port.id.contains("ttyACM"), "{port:?}");
    println!("vm: discover lists the gadget (nusb) and its CDC-ACM port with USB ids ... ok");

    let sim = start_simulator(0).await.unwrap();
    let gadget = std::env::var("USB_ACM_GADGET").unwrap_or_else(|_| "/dev/ttyGS0".into());
    sim.serve_serial_port(gadget, 115_200).unwrap();
    let data = std::env::temp_dir().join(format!("posbridge-ffi-vm-{}", std::process::id()));
    let terminal = connect_device(
        port,
        DeviceOptions {
            data_dir: data.display().to_string(),
            pairing_code: Some(sim.pairing_code()),
            till_name: "vm till".into(),
            tls_pin: None,
            baud: 115_200,
            connect_timeout_ms: 10_000,
        },
        None,
    )
    .await
    .unwrap();
    let sale = terminal
        .clone()
        .sale("19.00".into(), "EUR".into(), None)
        .await
        .unwrap();
    assert_eq!(sale.outcome, PaymentOutcome::Approved);
    assert!(sale.signed);
    assert_eq!(sim.transactions(), 1);
    terminal.disconnect().await;
    let _ = std::fs::remove_dir_all(&data);
    println!(
        "vm: paired and paid through USB CDC-ACM (cdc_acm, dummy_hcd) via connect_device ... ok"
    );
}
