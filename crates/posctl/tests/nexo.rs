//! posctl against a nexo terminal (the simulator's nexo mode over HTTPS on 127.0.0.1, its
//! certificate signed by a root posctl is given): sale, decline, refund, void, status, a lost
//! answer recovered through `TransactionStatus`, settlement reconciled, and the doctor on a
//! right and a wrong passphrase.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use posbridge_nexo::security::SecurityKey;
use posbridge_sim::{Latency, TerminalProfile};

const POI: &str = "P400Plus-123456789";
const PASSPHRASE: &str = "a shared passphrase";

/// A nexo terminal on its own thread (HTTPS, the shared key `posctl-test` version 1); returns
/// its address, the server (to inject faults) and the root certificate's PEM.
fn nexo_terminal() -> (
    String,
    Arc<posbridge_nexo::NexoServer<posbridge_sim::backend::Backend>>,
    String,
) {
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
            let backend = posbridge_sim::backend::simulated(profile).await.unwrap();
            let key = SecurityKey::derive("posctl-test", 1, PASSPHRASE.as_bytes());
            let server = posbridge_sim::nexo::server(backend, POI, Some(key), &[]).unwrap();
            let certs = posbridge_sim::nexo::certificates(POI).unwrap();
            let tls = certs.server_config();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((
                listener.local_addr().unwrap().to_string(),
                server.clone(),
                certs.ca_pem.clone(),
            ))
            .unwrap();
            let _ = posbridge_nexo::https::serve(listener, Some(tls), server).await;
        });
    });
    rx.recv().unwrap()
}

fn posctl(home: &Path, address: &str, passphrase: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .args(["--protocol", "nexo", "--nexo", address, "--poi-id", POI])
        .args(["--nexo-key-id", "posctl-test", "--nexo-ca"])
        .arg(home.join("root.pem"))
        .arg("--home")
        .arg(home)
        .env("POSCTL_NEXO_PASSPHRASE", passphrase)
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

fn printed<'a>(out: &'a str, marker: &str) -> &'a str {
    out.split(marker)
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .unwrap_or_else(|| panic!("{marker} is printed: {out}"))
}

#[test]
fn sale_decline_refund_void_recovery_and_settlement_over_nexo_https() {
    let (address, server, root) = nexo_terminal();
    let home = std::env::temp_dir().join(format!("posctl-nexo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("root.pem"), root).unwrap();
    let run = |args: &[&str]| posctl(&home, &address, PASSPHRASE, args);

    let o = run(&["doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("certificate valid for P400Plus-123456789.test.terminal.adyen.com"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("the terminal answers"), "{}", text(&o));

    let o = run(&["sale", "12.50"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Sale Approved: 12.50 EUR"), "{out}");
    let key = printed(&out, "key ").to_string();

    let o = run(&["sale", "20.51"]);
    assert_eq!(o.status.code(), Some(4), "declined: {}", text(&o));

    let o = run(&["refund", "5.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = run(&["sale", "7.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let voided = printed(&text(&o), "(transaction ").to_string();
    let o = run(&["void", &voided]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("Void Approved"), "{}", text(&o));

    let o = run(&["status", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("12.50"), "{}", text(&o));

    // The answer of a sale is lost after the terminal took it: in doubt, then recovered through
    // TransactionStatus — booked approved once, and nothing charged twice.
    server.drop_next_answers(1);
    let o = run(&["sale", "3.30"]);
    assert_eq!(o.status.code(), Some(5), "in doubt: {}", text(&o));
    let lost = printed(&text(&o), "payment ").to_string();
    let o = run(&["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&["status", &lost]);
    assert!(text(&o).contains("Approved"), "{}", text(&o));

    // End of day: 12.50 + 7.00 + 3.30 sold, 5.00 refunded, 7.00 voided — reconciled with the
    // journal.
    let o = run(&["settle"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("reconciled"), "{}", text(&o));

    // A wrong passphrase is named by the doctor, and nothing is charged with it.
    let o = posctl(&home, &address, "not the passphrase", &["doctor"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("passphrase"), "{}", text(&o));
    let o = posctl(&home, &address, "not the passphrase", &["sale", "1.00"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));

    // nexo terminals are not paired.
    let o = run(&["pair", "--tcp", &address, "--code", "000000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not paired"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&home);
}
