//! posctl against a ZVT terminal (the simulator's ZVT mode on 127.0.0.1): sale, decline,
//! refund, status from the journal, recover and end-of-day with `--protocol zvt`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use posbridge_sim::{Latency, TerminalProfile};
use posbridge_zvt::server::ServerConfig;
use posbridge_zvt::transport::{Framing, ZvtLink};

/// A ZVT terminal on its own thread; returns its address.
fn zvt_terminal() -> String {
    zvt_terminal_with(Vec::new())
}

/// A ZVT terminal whose status informations start with `prefix`.
fn zvt_terminal_with(prefix: Vec<posbridge_zvt::bmp::Bmp>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let profile = TerminalProfile {
                latency: Latency::INSTANT,
                ..TerminalProfile::default()
            };
            let backend = posbridge_sim::zvt::simulated(profile).await.unwrap();
            let server = Arc::new(
                posbridge_sim::zvt::server(
                    backend,
                    12_345_678,
                    Vec::new(),
                    ServerConfig {
                        render: posbridge_sim::render,
                        status_prefix: prefix,
                        ..ServerConfig::default()
                    },
                )
                .unwrap(),
            );
            let listener = posbridge_tcp::Listener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            while let Ok(link) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.serve(ZvtLink::new(link, Framing::Tcp)).await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

fn posctl(home: &Path, address: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .args(["--protocol", "zvt", "--zvt", address, "--home"])
        .arg(home)
        .output()
        .expect("posctl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn sale_decline_refund_status_recover_and_end_of_day_over_zvt() {
    let address = zvt_terminal();
    let home = std::env::temp_dir().join(format!("posctl-zvt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);

    let o = posctl(&home, &address, &["sale", "12.50"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Sale Approved: 12.50 EUR"), "{out}");
    assert!(out.contains("Insert card"), "progress shown: {out}");
    let key = out
        .split("key ")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .expect("the key is printed")
        .to_string();

    let o = posctl(&home, &address, &["sale", "20.51"]);
    assert_eq!(o.status.code(), Some(4), "declined: {}", text(&o));

    let o = posctl(&home, &address, &["refund", "5.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = posctl(&home, &address, &["status", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("12.50"), "{}", text(&o));

    // A pre-authorisation held and released over ZVT (the terminal's pre-auth reversal, 06 25).
    let o = posctl(&home, &address, &["preauth", "60.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let held = text(&o)
        .split("(transaction ")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .expect("the transaction id is printed")
        .to_string();
    let o = posctl(&home, &address, &["release", &held]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("PreAuthCancel Approved"), "{}", text(&o));

    let o = posctl(&home, &address, &["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // End-of-day reports the batch's net (12.50 sold, 5.00 refunded; the declined sale and the
    // released reservation move nothing), reconciled with the journal.
    let o = posctl(&home, &address, &["settle"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("net total"), "{out}");
    assert!(out.contains("7.50 EUR  matches the journal"), "{out}");
    assert!(out.contains("reconciled"), "{out}");

    // The journal lists the ZVT payments like any others.
    let o = posctl(&home, &address, &["journal", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(text(&o).matches("done").count(), 5, "{}", text(&o));
    // A host's decline code is shown as it came, not read as ISO 8583.
    assert!(
        text(&o).contains("declined by the payment host, code 0x33"),
        "{}",
        text(&o)
    );

    // A port without a ZVT terminal is named as such.
    let o = posctl(&home, "127.0.0.1:9", &["sale", "1.00"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    // The doctor checks the way step by step.
    let o = posctl(&home, &address, &["doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("terminal id 12345678"), "{}", text(&o));
    assert!(text(&o).contains("the terminal is ready"), "{}", text(&o));
    let o = posctl(&home, "127.0.0.1:9", &["doctor"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("fix:"), "{}", text(&o));

    // What ZVT has no notion of is refused with the way to do it instead.
    let o = posctl(
        &home,
        &address,
        &["pair", "--tcp", &address, "--code", "000000"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not paired"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&home);
}

/// A payment recovery cannot settle (the terminal's reports cannot be read, so neither can its
/// record of its last transaction) stays in doubt and blocks new ones, until a person who
/// checked the terminal resolves it by hand: `posctl resolve KEY --charged|--not-charged --by`.
#[test]
fn a_payment_recovery_cannot_settle_is_resolved_by_hand() {
    use posbridge_zvt::bmp::Bmp;
    // A field whose length nobody knows before every status information.
    let address = zvt_terminal_with(vec![Bmp::Unparsed(vec![0x55, 0x01, 0x02])]);
    let home = std::env::temp_dir().join(format!("posctl-zvt-resolve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let first = "0000000000000000000000000000a001";
    let second = "0000000000000000000000000000a002";

    let o = posctl(&home, &address, &["sale", "12.00", "--key", first]);
    assert_eq!(o.status.code(), Some(5), "in doubt: {}", text(&o));
    let o = posctl(&home, &address, &["recover"]);
    assert_eq!(o.status.code(), Some(5), "still in doubt: {}", text(&o));
    let o = posctl(&home, &address, &["sale", "3.00", "--key", second]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "nothing new meanwhile: {}",
        text(&o)
    );

    // Neither finding, or no name: a bad command line.
    let o = posctl(&home, &address, &["resolve", first, "--by", "Ann"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = posctl(
        &home,
        &address,
        &["resolve", first, "--charged", "--by", " "],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // The terminal's display showed it approved.
    let o = posctl(
        &home,
        &address,
        &[
            "resolve",
            first,
            "--charged",
            "--by",
            "Ann (terminal display)",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("Approved: 12.00 EUR"), "{}", text(&o));
    let o = posctl(&home, &address, &["journal", "show", first, "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["outcome"], "approved", "{v}");
    // Final now: not again.
    let o = posctl(
        &home,
        &address,
        &["resolve", first, "--not-charged", "--by", "Ann"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("final already"), "{}", text(&o));

    // The next one goes out, ends in doubt the same way, and was not charged.
    let o = posctl(&home, &address, &["sale", "3.00", "--key", second]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let o = posctl(
        &home,
        &address,
        &["resolve", second, "--not-charged", "--by", "Ann"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = posctl(&home, &address, &["journal", "show", second, "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["state"], "rejected", "{v}");
    let _ = std::fs::remove_dir_all(&home);
}
