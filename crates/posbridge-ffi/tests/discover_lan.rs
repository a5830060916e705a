//! The bindings' discovery on the LAN: the embedded simulator announced over mDNS on the loopback
//! interface, `discover` finds it, `connect_device` pairs with what it found, and a sale runs —
//! the exported functions themselves, as an app calls them.
//!
//! The test re-runs itself inside a network namespace of its own (`unshare --net`, which needs
//! root) whose only interface is `lo`, so that not even a multicast group join reaches a real
//! network. Where no namespace can be made it says why and runs nothing, except under `CI=true`.
#![cfg(feature = "sim")]

use std::time::Duration;

use posbridge::tcp::{Announcer, MdnsConfig};
use posbridge_ffi::*;

const INSIDE: &str = "POSBRIDGE_FFI_MDNS_IN_NETNS";
const TERMINAL: &str = "7e57ab1e0000000000000000000000a1";

#[test]
fn discover_finds_an_announced_terminal_and_connect_device_sells_through_it() {
    if std::env::var_os(INSIDE).is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(find_pair_sell());
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" \"$@\"",
        ])
        .arg(&exe)
        .args([
            "--exact",
            "discover_finds_an_announced_terminal_and_connect_device_sells_through_it",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .status();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match status {
        Ok(s) if s.success() => {}
        Ok(s) if s.code() == Some(1) && !can_make_netns() && !ci => {
            println!(
                "skipped: cannot make a network namespace here (needs root and util-linux `unshare`)"
            );
        }
        Ok(s) => panic!("the discovery test failed inside its network namespace: {s}"),
        Err(e) if !ci => println!("skipped: `unshare` is not available ({e})"),
        Err(e) => panic!("`unshare` is needed under CI: {e}"),
    }
}

fn can_make_netns() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

async fn find_pair_sell() {
    let sim = start_simulator(0).await.unwrap();
    let address = sim.address();
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let mdns_port = 25353 + (std::process::id() % 1000) as u16;
    let mut config = MdnsConfig::default();
    config.set_port(mdns_port).set_loopback_only(true);
    let _announcer = Announcer::announce(
        &config,
        "Counter 3",
        TERMINAL,
        "posbridge-sim",
        "127.0.0.1".parse().unwrap(),
        port,
    )
    .unwrap();

    let options = DiscoverOptions {
        timeout_ms: 3000,
        lan: true,
        serial: false,
        ble: false,
        usb: false,
        mdns_port,
        mdns_loopback_only: true,
        ..DiscoverOptions::default()
    };
    let mut found = Discovered::default();
    for _ in 0..3 {
        found = discover(options.clone()).await;
        if !found.devices.is_empty() {
            break;
        }
    }
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let [device] = found.devices.as_slice() else {
        panic!("one terminal expected: {found:?}");
    };
    assert_eq!(device.transport, Transport::Tcp);
    assert_eq!(device.id, address);
    assert_eq!(
        device.name.as_deref(),
        Some(format!("Counter 3 ({TERMINAL})").as_str())
    );

    let data = std::env::temp_dir().join(format!("posbridge-ffi-lan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let terminal = connect_device(
        device.clone(),
        DeviceOptions {
            data_dir: data.display().to_string(),
            pairing_code: Some(sim.pairing_code()),
            till_name: "lan test".into(),
            tls_pin: None,
            baud: 115_200,
            connect_timeout_ms: 5000,
        },
        None,
    )
    .await
    .unwrap();
    let info = terminal.info();
    assert!(info.kinds.iter().any(|k| k == "sale"), "{info:?}");
    let sale = terminal
        .clone()
        .sale("7.00".into(), "EUR".into(), None)
        .await
        .unwrap();
    assert_eq!(sale.outcome, PaymentOutcome::Approved);
    assert!(sale.signed);
    assert_eq!(sim.transactions(), 1);
    tokio::time::timeout(Duration::from_secs(5), terminal.disconnect())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&data);
    println!("mDNS: discovered, paired and sold through the bindings ... ok");
}
