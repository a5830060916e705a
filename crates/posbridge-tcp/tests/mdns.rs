//! LAN discovery over multicast on the loopback interface: a listener announces itself, the
//! client finds it and connects.
//!
//! The test re-runs itself inside a network namespace of its own (`unshare --net`, which needs
//! root) whose only interface is `lo`, so that not even a multicast group join reaches a real
//! network. Where no namespace can be made it says why and runs nothing.
#![cfg(feature = "mdns")]

use std::time::Duration;

use posbridge_link::{Discovery, LinkExt, LinkKind};
use posbridge_tcp::*;

const INSIDE: &str = "POSBRIDGE_MDNS_TEST_IN_NETNS";

#[test]
fn a_listener_announces_itself_and_the_client_finds_and_connects() {
    if std::env::var_os(INSIDE).is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(announce_find_connect());
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
            "a_listener_announces_itself_and_the_client_finds_and_connects",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) if s.code() == Some(1) && !can_make_netns() => {
            println!(
                "skipped: cannot make a network namespace here (needs root and util-linux `unshare`)"
            );
        }
        Ok(s) => panic!("the discovery test failed inside its network namespace: {s}"),
        Err(e) => println!("skipped: `unshare` is not available ({e})"),
    }
}

fn can_make_netns() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

async fn announce_find_connect() {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = MdnsConfig::default();
    // A port of our own, away from any system responder; loopback only.
    config
        .set_port(15353 + (std::process::id() % 1000) as u16)
        .set_loopback_only(true);
    let _announcer = Announcer::announce(
        &config,
        "Counter 2",
        "00112233445566778899aabbccddeeff",
        "sim-1",
        "127.0.0.1".parse().unwrap(),
        port,
    )
    .unwrap();

    let mut discovery = MdnsDiscovery::new(config);
    let mut found = Vec::new();
    for _ in 0..3 {
        found = discovery.discover(Duration::from_secs(3)).await.unwrap();
        if !found.is_empty() {
            break;
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let terminal = &found[0];
    assert_eq!(terminal.kind, LinkKind::Tcp);
    assert_eq!(terminal.id, format!("127.0.0.1:{port}"));
    assert_eq!(
        terminal.name.as_deref(),
        Some("Counter 2 (00112233445566778899aabbccddeeff)")
    );

    let server = tokio::spawn(async move {
        let mut link = listener.accept().await.unwrap();
        link.send_all(b"hello from the terminal").await.unwrap();
    });
    let mut link = connect(&terminal.id, &TcpConfig::default()).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    link.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..], b"hello from the terminal");
    server.await.unwrap();
}
