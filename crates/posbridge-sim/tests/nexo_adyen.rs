//! Interop with Adyen's own Node library (`@adyen/api-library`, an interop peer installed under
//! `target/npm` by `.ci/run`): its `NexoCrypto` and posbridge's `SecurityKey` open each other's
//! messages, and its `TerminalLocalAPI` runs a payment, a transaction status, a refund, a
//! reversal and an abort against the simulator's nexo mode over HTTPS.
//!
//! Without node or the library the tests print why and pass, unless `POSBRIDGE_REQUIRE_INTEROP`
//! is set (CI sets it), when they fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use posbridge_nexo::codec::{self, Envelope};
use posbridge_nexo::security::SecurityKey;
use posbridge_sim::{Latency, TerminalProfile};

const PASSPHRASE: &str = "a shared passphrase";
const POI: &str = "V400m-346403161";

/// `target/npm/node_modules`, when node and the library are there.
fn modules() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/npm/node_modules");
    let lib = root.join("@adyen/api-library/package.json");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if lib.exists() && node {
        return Some(root);
    }
    let why = format!(
        "node or {} is missing: run `npm install --prefix target/npm @adyen/api-library@32.1.0`",
        lib.display()
    );
    assert!(
        std::env::var_os("POSBRIDGE_REQUIRE_INTEROP").is_none(),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// Runs `script` (`-e` and its text, or a file's path) under node with `args`, and `input` on
/// standard input; its standard output.
fn node(modules: &Path, script: &[&str], args: &[&str], input: &str) -> String {
    let mut child = Command::new("node")
        .args(script)
        .args(args)
        .env("NODE_PATH", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const CRYPTO: &str = "const NexoCrypto = require('@adyen/api-library/lib/src/security/nexoCrypto').default;\n\
     const key = { Passphrase: process.argv[1], KeyIdentifier: 'adyen-interop', KeyVersion: 1, AdyenCryptoVersion: 1 };\n\
     const input = require('fs').readFileSync(0, 'utf8');\n";

const SALE: &str = r#"{"SaleToPOIRequest":{"MessageHeader":{"ProtocolVersion":"3.0","MessageClass":"Service","MessageCategory":"Payment","MessageType":"Request","ServiceID":"4711","SaleID":"till-1","POIID":"V400m-346403161"},"PaymentRequest":{"SaleData":{"SaleTransactionID":{"TransactionID":"27908","TimeStamp":"2026-12-04T09:30:00.000Z"}},"PaymentTransaction":{"AmountsReq":{"Currency":"EUR","RequestedAmount":10.99}}}}}"#;

#[test]
fn messages_cross_between_adyen_nexocrypto_and_posbridge_both_ways() {
    let Some(modules) = modules() else { return };
    let key = SecurityKey::derive("adyen-interop", 1, PASSPHRASE.as_bytes());
    let Envelope::Clear(expected) = codec::decode(SALE.as_bytes()).unwrap() else {
        unreachable!()
    };

    // Adyen's library seals, posbridge opens.
    let sealed = node(
        &modules,
        &[
            "-e",
            &format!(
                "{CRYPTO}const m = JSON.parse(input);\n\
             const s = NexoCrypto.encrypt(m.SaleToPOIRequest.MessageHeader, input, key);\n\
             process.stdout.write(JSON.stringify({{ SaleToPOIRequest: s }}));"
            ),
        ],
        &[PASSPHRASE],
        SALE,
    );
    let Envelope::Sealed(s) = codec::decode(sealed.as_bytes()).expect("decodes") else {
        panic!("not sealed: {sealed}")
    };
    assert_eq!(key.open(&s).expect("opens with posbridge's key"), expected);

    // posbridge seals, Adyen's library opens (and checks the HMAC).
    let ours = codec::encode(&Envelope::Sealed(key.seal(&expected).unwrap()));
    let decrypt = format!(
        "{CRYPTO}const m = JSON.parse(input);\n\
         try {{ process.stdout.write(new NexoCrypto().decrypt(m.SaleToPOIRequest, key)); }}\n\
         catch (e) {{ process.stdout.write('refused: ' + e.message); }}"
    );
    let plain = node(
        &modules,
        &["-e", &decrypt],
        &[PASSPHRASE],
        std::str::from_utf8(&ours).unwrap(),
    );
    assert_eq!(
        plain.as_bytes(),
        codec::encode(&Envelope::Clear(expected.clone()))
    );

    // Sealed under another passphrase: Adyen's HMAC check refuses it.
    let verdict = node(
        &modules,
        &["-e", &decrypt],
        &["not the passphrase"],
        std::str::from_utf8(&ours).unwrap(),
    );
    assert!(verdict.starts_with("refused"), "{verdict}");
}

/// A simulator in nexo mode over HTTPS on its own thread; its port and root certificate file.
fn terminal(dir: &Path) -> (u16, PathBuf) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // Each payment waits a second for its card, so that an abort can reach a running one.
            let profile = TerminalProfile {
                latency: Latency {
                    card: Duration::from_secs(1),
                    ..Latency::INSTANT
                },
                ..TerminalProfile::default()
            };
            let backend = posbridge_sim::backend::simulated(profile).await.unwrap();
            let key = SecurityKey::derive("adyen-interop", 1, PASSPHRASE.as_bytes());
            let server = posbridge_sim::nexo::server(backend, POI, Some(key), &[]).unwrap();
            let certs = posbridge_sim::nexo::certificates(POI).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((listener.local_addr().unwrap().port(), certs.ca_pem.clone()))
                .unwrap();
            let _ =
                posbridge_nexo::https::serve(listener, Some(certs.server_config()), server).await;
        });
    });
    let (port, pem) = rx.recv().unwrap();
    let ca = dir.join("root.pem");
    std::fs::write(&ca, pem).unwrap();
    (port, ca)
}

#[test]
fn adyen_terminal_local_api_runs_payment_status_refund_reversal_and_abort_against_the_simulator() {
    let Some(modules) = modules() else { return };
    let dir = std::env::temp_dir().join(format!("posbridge-adyen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, ca) = terminal(&dir);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/adyen/terminal_api.js");
    let out = node(
        &modules,
        &[script.to_str().unwrap()],
        &[&port.to_string(), ca.to_str().unwrap(), POI, PASSPHRASE],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("the script prints JSON");
    eprintln!("{v}");
    assert_eq!(v["sale"]["result"], "Success", "{v:#}");
    assert_eq!(v["sale"]["amount"], 12.5, "{v:#}");
    assert_eq!(v["status"]["result"], "Success", "{v:#}");
    assert_eq!(v["status"]["repeatedResult"], "Success", "{v:#}");
    assert_eq!(v["status"]["repeatedPoi"], v["sale"]["poi"], "{v:#}");
    assert_eq!(v["refund"]["result"], "Success", "{v:#}");
    assert_eq!(v["reversal"]["result"], "Success", "{v:#}");
    assert_eq!(v["aborted"]["result"], "Failure", "{v:#}");
    assert_eq!(v["aborted"]["condition"], "Cancel", "{v:#}");
    assert_eq!(v["unknown"]["Result"], "Failure", "{v:#}");
    assert_eq!(v["unknown"]["ErrorCondition"], "NotFound", "{v:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
