//! posctl's terminal commands end to end against a simulated terminal on 127.0.0.1: pair, sale
//! (approved and declined, with exit codes), status, journal list and export, settle with
//! reconciliation, JSON output.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use posbridge::driver;
use posbridge_crypto::{LocalIdentity, PairingConfig};
use posbridge_session::{
    PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{Currency, Timestamp};

/// The test publisher of software updates.
const PUBLISHER_SECRET: [u8; 32] = [0x42; 32];

/// A simulated terminal's parts: the simulator (answering at once), its context with a manager
/// operator (PIN 2468), and the pairing code on its screen.
fn terminal_parts(name: &str) -> (Simulator, TerminalContext, String) {
    terminal_parts_with(name, |_| {})
}

/// The same, its profile changed by `change` first.
fn terminal_parts_with(
    name: &str,
    change: impl FnOnce(&mut TerminalProfile),
) -> (Simulator, TerminalContext, String) {
    let mut profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    change(&mut profile);
    // Besides euros, yen (no minor unit) and Kuwaiti dinars (three decimals).
    profile
        .currencies
        .extend([Currency::JPY, Currency::new(414).unwrap()]);
    // It installs updates signed by the test publisher (`PUBLISHER_SECRET`).
    profile.device.update_key =
        Some(posbridge_crypto::SigningIdentity::from_secret(&PUBLISHER_SECRET).public_key());
    let identity = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), name).unwrap());
    let sim = Simulator::new(
        profile,
        identity,
        driver::now(),
        Timestamp(1_764_000_000_000),
    );
    let ctx = sim.context(PairingRegistry::new(), 1000);
    ctx.operators
        .lock()
        .unwrap()
        .add_pin("manager", "2468")
        .unwrap();
    let code = ctx
        .registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), driver::now())
        .unwrap()
        .to_string();
    (sim, ctx, code)
}

/// Starts a simulator on a pseudo-terminal on its own thread; returns the till's port path
/// and the pairing code.
fn simulator_on_a_pty() -> (String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (mut app, ctx, code) = terminal_parts("serial terminal");
            let (line, till_end) = posbridge_serial::pty_pair().unwrap();
            tx.send((till_end.port_path().unwrap(), code)).unwrap();
            let e = driver::serve_terminal_line(
                line,
                || TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now()),
                &mut app,
            )
            .await;
            drop(till_end);
            panic!("the line failed: {e}");
        });
    });
    rx.recv().unwrap()
}

#[test]
fn pair_and_sell_over_a_serial_line() {
    let (path, code) = simulator_on_a_pty();
    let home = std::env::temp_dir().join(format!("posctl-serial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(&home, &["pair", "--serial", &path, "--code", &code]);
    assert!(o.status.success(), "{}", text(&o));
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains(&path) && config.contains("serial_baud = 115200"),
        "{config}"
    );
    // Each command is a new session on the same line.
    let o = posctl(&home, &["sale", "7.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("Sale Approved: 7.00 EUR"), "{}", text(&o));
    let o = posctl(&home, &["sale", "7.51"]);
    assert_eq!(o.status.code(), Some(4), "declined: {}", text(&o));
    let o = posctl(&home, &["journal", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).matches("Sale").count(),
        2
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn discover_and_completions() {
    let o = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["discover", "--timeout", "1", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        assert!(line.starts_with("{\"kind\":"), "{line}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(env!("CARGO_BIN_EXE_posctl"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success());
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(
            script.contains("posctl") && script.contains("discover"),
            "{shell}"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["pair", "--code", "123456"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "neither --tcp nor --serial");
}

/// Starts a simulator on its own thread; returns its address and pairing code.
fn simulator() -> (String, String) {
    simulator_with(false)
}

/// The same; with `manual_cards` every payment waits for a card that never comes (until the
/// card timeout), so it can be cancelled.
fn simulator_with(manual_cards: bool) -> (String, String) {
    let (address, code, _) = simulator_full(manual_cards, false);
    (address, code)
}

/// The same over TLS with a self-signed certificate; also returns its pin.
fn simulator_tls() -> (String, String, String) {
    let (address, code, pin) = simulator_full(false, true);
    (address, code, pin.unwrap())
}

fn simulator_full(manual_cards: bool, tls: bool) -> (String, String, Option<String>) {
    simulator_serving(manual_cards, tls, |_| {})
}

/// A simulator whose acquirer is gone for the second and third payments (approved offline up
/// to 50.00, then forwarded with the fourth: x.66 declined after the fact).
fn simulator_going_offline() -> (String, String) {
    let (address, code, _) = simulator_serving(false, false, |p| {
        p.floor_limit = 5_000;
        p.device.offline_after = Some(1);
        p.device.offline_for = 2;
    });
    (address, code)
}

fn simulator_serving(
    manual_cards: bool,
    tls: bool,
    change: fn(&mut TerminalProfile),
) -> (String, String, Option<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (mut sim, ctx, code) = terminal_parts_with("test terminal", change);
            let (listener, pin) = if tls {
                let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
                let der = cert.cert.der().to_vec();
                let config = posbridge_tcp::TlsServerConfig::new(
                    vec![der.clone()],
                    cert.signing_key.serialize_der(),
                    posbridge_tcp::TlsVersions::Tls12AndTls13,
                );
                let pin = posbridge_tcp::Fingerprint::of_der(&der).to_string();
                (
                    posbridge_tcp::Listener::bind_tls("127.0.0.1:0", &config)
                        .await
                        .unwrap(),
                    Some(pin),
                )
            } else {
                (
                    posbridge_tcp::Listener::bind("127.0.0.1:0").await.unwrap(),
                    None,
                )
            };
            tx.send((listener.local_addr().unwrap().to_string(), code, pin))
                .unwrap();
            sim.set_manual_cards(manual_cards);
            let app = SharedApp::new(sim);
            loop {
                let Ok(link) = listener.accept().await else {
                    continue;
                };
                let session =
                    TerminalSession::new(SessionConfig::default(), ctx.clone(), driver::now());
                let mut app = app.clone();
                tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
            }
        });
    });
    rx.recv().unwrap()
}

fn posctl(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("POSCTL_OPERATOR_PIN")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("posctl runs")
}

/// posctl with an operator's PIN in its environment, where a script puts it.
fn posctl_pin(home: &Path, pin: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(args)
        .arg("--home")
        .arg(home)
        .env("POSCTL_OPERATOR_PIN", pin)
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
fn pair_sell_check_settle_and_read_the_journal() {
    let (address, code) = simulator();
    let home = std::env::temp_dir().join(format!("posctl-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);

    // Before pairing, a sale says what to do.
    let o = posctl(&home, &["sale", "12.50"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pair with one first"), "{}", text(&o));

    let o = posctl(
        &home,
        &["pair", "--tcp", &address, "--code", &code, "--name", "shop"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("paired with test terminal"),
        "{}",
        text(&o)
    );
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(
        config.contains("[terminals.shop]") && config.contains(&address),
        "{config}"
    );

    let o = posctl(&home, &["sale", "12.50"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("Sale Approved: 12.50 EUR"), "{out}");
    assert!(out.contains("APPROVED"), "receipt printed: {out}");
    let key = out
        .split("key ")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .expect("the key is printed")
        .to_string();

    let txid = |out: &str| {
        out.split("(transaction ")
            .nth(1)
            .and_then(|rest| rest.get(..32))
            .expect("a transaction id is printed")
            .to_string()
    };
    let sale_tx = txid(&out);

    // Refund part of it (an operator must authorise), then void the sale itself.
    let o = posctl_pin(
        &home,
        "2468",
        &[
            "refund",
            "5.00",
            "--original",
            &sale_tx,
            "--operator",
            "manager",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Refund Approved: 5.00 EUR"),
        "{}",
        text(&o)
    );
    let o = posctl_pin(&home, "1111", &["refund", "5.00", "--operator", "manager"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a wrong PIN is refused: {}",
        text(&o)
    );
    // The PIN from a file (a descriptor's /dev/fd/N path works the same way).
    let pin_file = home.join("pin");
    std::fs::write(&pin_file, "2468\n").unwrap();
    let o = posctl(
        &home,
        &[
            "void",
            &sale_tx,
            "--operator",
            "manager",
            "--pin-file",
            pin_file.to_str().unwrap(),
        ],
    );
    std::fs::remove_file(&pin_file).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Void Approved: 12.50 EUR"),
        "{}",
        text(&o)
    );

    // A hotel: reserve, then capture less plus a tip.
    let o = posctl(&home, &["preauth", "100.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pre_tx = txid(&text(&o));
    let o = posctl(&home, &["capture", &pre_tx, "85.00", "--tip", "5.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Capture Approved: 90.00 EUR"),
        "{}",
        text(&o)
    );

    // The simulator's "insufficient funds" card: declined, exit code 4.
    let o = posctl(&home, &["sale", "12.51", "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // One JSON object per line, as docs/cli.md gives it.
    let declined = json_line(&o);
    assert_eq!(declined["outcome"], "declined", "{declined}");
    assert_eq!(declined["reason_code"], 51, "{declined}");
    assert_eq!(declined["kind"], "sale");
    assert_eq!(declined["amount"]["minor"], 1251);
    assert_eq!(declined["amount"]["decimal"], "12.51");
    assert_eq!(declined["amount"]["currency"], "EUR");
    assert_eq!(declined["amount"]["currency_number"], 978);
    assert_eq!(declined["approved"]["minor"], 0);
    assert_eq!(declined["signed"], true);
    assert_eq!(declined["idempotency_key"].as_str().unwrap().len(), 32);
    // Protocol 1.1: the card's EMV data, signed with the result; the issuer's code as its ARC.
    assert_eq!(declined["emv"]["arc"], "51", "{declined}");
    assert_eq!(declined["emv"]["cryptogram_type"], "aac", "{declined}");
    assert_eq!(
        declined["emv"]["tvr"].as_str().unwrap().len(),
        10,
        "{declined}"
    );
    let o = posctl(&home, &["status", &key, "--json"]);
    assert_eq!(json_line(&o)["outcome"], "approved", "{}", text(&o));
    let o = posctl(&home, &["recover", "--json"]);
    let recovered = json_line(&o);
    assert_eq!(recovered["clean"], true, "{recovered}");
    assert!(recovered["recovery"].as_array().unwrap().is_empty());
    // Errors too, on standard output, with their exit code and kind.
    let o = posctl(&home, &["sale", "abc", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let error = json_line(&o);
    assert_eq!(error["error"]["exit_code"], 2, "{error}");
    assert_eq!(error["error"]["kind"], "usage", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an amount")
    );

    let o = posctl(&home, &["status", &key]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&key));

    // The terminal itself (protocol 1.1 telemetry): `status` without a key, of the default
    // profile or the one `--terminal` names.
    let o = posctl(&home, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = text(&o);
    for line in [
        "protocol native 1.1",
        "battery:   87 %",
        "paper:     ok",
        "acquirer:  online",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    let o = posctl(&home, &["status", "--terminal", "shop", "--json"]);
    let status = json_line(&o);
    assert_eq!(status["protocol"], "native 1.1", "{status}");
    assert_eq!(status["telemetry"]["battery_percent"], 87, "{status}");
    assert_eq!(status["telemetry"]["power"], "battery", "{status}");
    assert_eq!(status["telemetry"]["acquirer"], "online", "{status}");
    assert_eq!(status["telemetry"]["stored_offline"], 0, "{status}");
    let o = posctl(&home, &["status", "--terminal", "no-such-terminal"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));

    // The customer's side of the terminal (protocol 1.1): the cart, then questions the
    // simulated customer answers (second tip preset, yes, the smallest number, a signature).
    let o = posctl(
        &home,
        &[
            "display",
            "2 x Cappuccino=7.00",
            "Croissant=2.50",
            "--message",
            "Thank you",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("total 9.50 EUR"), "{}", text(&o));
    let o = posctl(&home, &["display", "Coffee"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = posctl(&home, &["ask", "tip", "50.00", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let tip = json_line(&o);
    assert_eq!(tip["reply"], "tip", "{tip}");
    assert_eq!(tip["tip"]["decimal"], "7.50", "{tip}");
    let o = posctl(&home, &["ask", "yes-no", "Is 9.50 right?"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "yes",
        "{}",
        text(&o)
    );
    let o = posctl(
        &home,
        &["ask", "number", "Room?", "--min", "100", "--max", "999"],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "100",
        "{}",
        text(&o)
    );
    let png = home.join("signature.png");
    let o = posctl(&home, &["ask", "signature", "--out", png.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let o = posctl(&home, &["ask", "tip", "50.00", "--presets", "5,200"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // A software update: the publisher signs its manifest, the till installs it; the terminal
    // reports the new version.
    // (The publisher's files live outside the till's home, whose files are all owner-only.)
    let shipped = std::env::temp_dir().join(format!("posctl-update-{}", std::process::id()));
    std::fs::create_dir_all(&shipped).unwrap();
    let (image, manifest, publisher_key) = (
        shipped.join("sim-9.9.9.img"),
        shipped.join("sim-9.9.9.json"),
        shipped.join("publisher.key"),
    );
    std::fs::write(&image, vec![0x5A; 5000]).unwrap();
    let secret: String = PUBLISHER_SECRET
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    posbridge_crypto::owner_only::write(&publisher_key, secret.as_bytes()).unwrap();
    // The publisher's command needs no till: no --home.
    let sign = |key: &Path| {
        Command::new(env!("CARGO_BIN_EXE_posctl"))
            .args([
                "update-sign",
                image.to_str().unwrap(),
                "--version",
                "9.9.9",
                "--key-file",
                key.to_str().unwrap(),
                "--out",
                manifest.to_str().unwrap(),
            ])
            .output()
            .expect("posctl runs")
    };
    let o = sign(&publisher_key);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A version terminals cannot order is refused before anything is signed.
    let o = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args([
            "update-sign",
            image.to_str().unwrap(),
            "--version",
            "v9-beta",
        ])
        .args(["--key-file", publisher_key.to_str().unwrap()])
        .args(["--out", shipped.join("beta.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("dotted numbers"), "{}", text(&o));
    assert!(!shipped.join("beta.json").exists());
    let update = |home: &Path| {
        posctl(
            home,
            &[
                "update",
                image.to_str().unwrap(),
                "--manifest",
                manifest.to_str().unwrap(),
            ],
        )
    };
    let o = update(&home);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("installed"), "{}", text(&o));
    assert!(
        text(&o).contains("sent 4096 of 5000 bytes"),
        "progress: {}",
        text(&o)
    );
    let o = posctl(&home, &["status"]);
    assert!(text(&o).contains("firmware 9.9.9"), "{}", text(&o));
    // Signed by another publisher: refused, exit 1.
    let other = shipped.join("other.key");
    posbridge_crypto::owner_only::write(&other, "07".repeat(32).as_bytes()).unwrap();
    assert_eq!(sign(&other).status.code(), Some(0));
    let o = update(&home);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("not signed by the publisher"),
        "{}",
        text(&o)
    );
    // A key file others can read is refused.
    let open_key = shipped.join("open.key");
    std::fs::write(&open_key, secret.as_bytes()).unwrap();
    std::fs::set_permissions(
        &open_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(sign(&open_key).status.code(), Some(2));
    std::fs::remove_dir_all(&shipped).unwrap();

    let o = posctl(&home, &["journal", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    // Sale, refund, void, pre-auth, capture and the declined sale; the refund refused for its
    // wrong PIN is journaled as rejected (nothing happened), not left in doubt.
    assert_eq!(
        listing.lines().filter(|l| l.contains(" done ")).count(),
        6,
        "{listing}"
    );
    assert_eq!(
        listing.lines().filter(|l| l.contains(" rejected ")).count(),
        1,
        "{listing}"
    );
    let o = posctl(&home, &["journal", "export", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(csv.lines().count(), 8, "a header and 7 entries: {csv}");
    assert!(
        csv.contains(",valid,"),
        "signatures verified offline: {csv}"
    );

    // A reader that goes away (`posctl sale 3 | head -c1`, a parent that exits) does not turn an
    // approved, journaled sale into a crash: exit code 0, and the journal has it.
    for args in [
        &["sale", "3.00"][..],
        &["journal", "list"][..],
        &["status", &key][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_posctl"))
            .args(args)
            .arg("--home")
            .arg(&home)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
    }
    let o = posctl(&home, &["journal", "list"]);
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        listing.lines().filter(|l| l.contains(" done ")).count(),
        7,
        "the sale whose report nobody read is journaled: {listing}"
    );

    let o = posctl_pin(&home, "0000", &["settle", "--operator", "manager"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a wrong PIN is refused: {}",
        text(&o)
    );
    let o = posctl_pin(&home, "2468", &["settle", "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("reconciled"), "{}", text(&o));
    // The report is kept: reconcile again later, offline.
    let o = posctl(&home, &["reconcile"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("matches the journal") && text(&o).contains("reconciled"),
        "{}",
        text(&o)
    );
    let o = posctl(&home, &["reconcile", "--batch", "77"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Amounts as people type them, by each currency's ISO 4217 decimals.
    for (args, says) in [
        (&["sale", "5"][..], "Sale Approved: 5.00 EUR"),
        (&["sale", "1.5"][..], "Sale Approved: 1.50 EUR"),
        (&["sale", "5.0"][..], "Sale Approved: 5.00 EUR"),
        (
            &["sale", "500", "--currency", "JPY"][..],
            "Sale Approved: 500 JPY",
        ),
        (
            &["sale", "1.5", "--currency", "kwd"][..],
            "Sale Approved: 1.500 KWD",
        ),
    ] {
        let o = posctl(&home, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    let o = posctl(&home, &["journal", "list"]);
    assert!(
        text(&o).contains("500 JPY") && text(&o).contains("1.500 KWD"),
        "{}",
        text(&o)
    );

    // A value that cannot be read is a bad command line: exit code 2, nothing sent.
    for (args, says) in [
        (&["sale", "12,50"][..], "not an amount"),
        (&["sale", "abc"][..], "not an amount"),
        (
            &["sale", "5.00", "--currency", "XYZ"][..],
            "unknown currency",
        ),
        (&["status", "not-a-key"][..], "32 hex digits"),
        (
            &["void", "12", "--operator", "manager"][..],
            "transaction id",
        ),
    ] {
        let o = posctl_pin(&home, "2468", args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
    // A PIN is never taken from the command line (every local user sees it in ps); without one
    // in the environment, a file or at a terminal, posctl says where to put it.
    let o = posctl(&home, &["refund", "1.00", "--operator", "manager:2468"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("name only"), "{}", text(&o));
    let o = posctl(&home, &["refund", "1.00", "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("POSCTL_OPERATOR_PIN"), "{}", text(&o));
    let o = posctl_pin(&home, "12ab", &["settle", "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("4 to 12 digits"), "{}", text(&o));

    // Everything posctl keeps is its owner's alone, and holds no PIN.
    owner_only_without(&home, b"2468");

    // A flipped byte in the till's identity is noticed: no sale with keys that are not its own.
    let identity = home.join("keys").join("identity.key");
    let mut bytes = std::fs::read(&identity).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&identity, &bytes).unwrap();
    let o = posctl(&home, &["sale", "1.00"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("checksum does not match"), "{}", text(&o));
    std::fs::remove_dir_all(&home).unwrap();
}

/// Every file and folder under `dir` is owner-only, and no file holds `secret`.
fn owner_only_without(dir: &Path, secret: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            owner_only_without(&path, secret);
            continue;
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} holds the PIN",
            path.display()
        );
    }
}

#[test]
fn doctor_walks_the_way_to_the_terminal_and_names_the_fix() {
    let home = std::env::temp_dir().join(format!("posctl-doctor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    // Nothing paired yet.
    let o = posctl(&home, &["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pair first"), "{}", text(&o));

    let (address, code) = simulator();
    let o = posctl(&home, &["pair", "--tcp", &address, "--code", &code]);
    assert!(o.status.success(), "{}", text(&o));
    let o = posctl(&home, &["doctor"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for step in [
        "profile",
        "address",
        "reachable",
        "secure session",
        "protocol",
        "clock",
        "accepts",
    ] {
        assert!(
            out.contains(&format!("] {step}: ")),
            "{step} missing: {out}"
        );
    }
    assert!(
        out.contains("version 2 = protocol 1.1 (terminal offers [2, 1]"),
        "{out}"
    );
    assert!(out.contains("agree within"), "clock skew measured: {out}");
    assert!(!out.contains("FAIL"), "{out}");

    // Nothing listens there: the failure and its fix, exit code 3.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = posctl(&home, &["doctor", "--tcp", &dead.to_string()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("[FAIL] reachable"), "{}", text(&o));
    assert!(text(&o).contains("fix: "), "{}", text(&o));

    // A serial port that does not exist.
    let o = posctl(
        &home,
        &[
            "doctor",
            "--serial",
            "/dev/posbridge-no-such-port",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"result\":\"FAIL\""),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn progress_lines_and_ctrl_c_cancels_the_payment() {
    use std::io::{BufRead, BufReader};
    let (address, code) = simulator_with(true);
    let home = std::env::temp_dir().join(format!("posctl-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(&home, &["pair", "--tcp", &address, "--code", &code]);
    assert!(o.status.success(), "{}", text(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["sale", "10.00", "--home"])
        .arg(&home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    // Not a terminal: progress comes as plain lines.
    while !seen.contains("... waiting for the card") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "cancelled: no money moved: {seen}{rest}"
    );
    assert!(rest.contains("Cancelled"), "{seen}{rest}");
    let o = posctl(&home, &["journal", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(" cancelled "),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn cancel_a_payment_left_running_by_a_crashed_posctl() {
    use std::io::{BufRead, BufReader};
    let (address, code) = simulator_with(true);
    let home = std::env::temp_dir().join(format!("posctl-crashed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(&home, &["pair", "--tcp", &address, "--code", &code]);
    assert!(o.status.success(), "{}", text(&o));
    let key = "0123456789abcdef0123456789abcdef";
    let mut child = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["sale", "25.00", "--key", key, "--home"])
        .arg(&home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for the card") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0);
    }
    // Once the step is journaled, the till crashes: the payment stays running on the
    // terminal, journaled as sent.
    for _ in 0..100 {
        if text(&posctl(&home, &["journal", "show", key])).contains("last step") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = posctl(&home, &["journal", "show", key]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("state        sent"), "{}", text(&o));
    assert!(
        text(&o).contains("last step    WaitingForCard"),
        "{}",
        text(&o)
    );

    let o = posctl(&home, &["cancel", key]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("cancelled: no money moved"),
        "{}",
        text(&o)
    );
    let o = posctl(&home, &["journal", "show", key, "--json"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"state\":\"done\""),
        "{}",
        text(&o)
    );
    // Asking again: it is final.
    let o = posctl(&home, &["cancel", key]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("already final"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_tls_terminal_with_a_pinned_certificate() {
    let (address, code, pin) = simulator_tls();
    let home = std::env::temp_dir().join(format!("posctl-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(
        &home,
        &[
            "pair",
            "--tcp",
            &address,
            "--tls-pin",
            &pin,
            "--code",
            &code,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = posctl(&home, &["sale", "3.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = posctl(&home, &["doctor"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("[  ok] TLS: handshake done, the certificate matches the pin"),
        "{}",
        text(&o)
    );
    // Another pin: refused, with the fix.
    let wrong = "00".repeat(32);
    let o = posctl(&home, &["doctor", "--tcp", &address, "--tls-pin", &wrong]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("[FAIL] TLS") && text(&o).contains("pin the new fingerprint"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// A journal.db lost, truncated or replaced is not taken for the till's own: payments are refused
/// until the right one is back or the new one is adopted. A damaged entry does not hide the
/// others from list and export, keeps settle from closing the batch, and doctor names it.
#[test]
fn a_damaged_or_replaced_journal_is_noticed_before_money_moves() {
    let (address, code) = simulator();
    let home = std::env::temp_dir().join(format!("posctl-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(&home, &["pair", "--tcp", &address, "--code", &code]);
    assert!(o.status.success(), "{}", text(&o));
    for amount in ["1.00", "2.00", "3.00"] {
        let o = posctl(&home, &["sale", amount]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = posctl(&home, &["doctor"]);
    assert!(
        text(&o).contains("3 entries, every page sound"),
        "{}",
        text(&o)
    );

    // One entry's stored command damaged.
    let journal = home.join("journal.db");
    {
        let db = rusqlite::Connection::open(&journal).unwrap();
        let n = db
            .execute(
                "UPDATE entries SET request = x'00ff00' WHERE rowid = (SELECT min(rowid) + 1 FROM entries)",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let o = posctl(&home, &["journal", "export", "--format", "csv"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        csv.lines().count(),
        3,
        "a header and the 2 intact entries: {csv}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 damaged journal entry skipped"),
        "{}",
        text(&o)
    );
    let o = posctl(&home, &["journal", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{}",
        text(&o)
    );
    let o = posctl(&home, &["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("1 entry cannot be read"), "{}", text(&o));
    // Settle refuses before the terminal closes its batch.
    let o = posctl_pin(&home, "2468", &["settle", "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the batch was not closed"),
        "{}",
        text(&o)
    );
    assert!(
        !home.join("settlements").exists(),
        "no report: nothing was settled"
    );

    // Truncated to nothing: SQLite would start an empty journal; posctl refuses to sell on it.
    std::fs::write(&journal, b"").unwrap();
    let _ = std::fs::remove_file(home.join("journal.db-wal"));
    let _ = std::fs::remove_file(home.join("journal.db-shm"));
    let o = posctl(&home, &["sale", "4.00"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not the journal this till has kept"),
        "{}",
        text(&o)
    );
    let o = posctl(&home, &["doctor"]);
    assert!(text(&o).contains("journal adopt"), "{}", text(&o));
    // Told so, it goes on with the new journal.
    let o = posctl(&home, &["journal", "adopt"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = posctl(&home, &["sale", "4.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn pairings_are_listed_and_revoked_on_the_till() {
    let (address, code) = simulator();
    let home = std::env::temp_dir().join(format!("posctl-pairings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(
        &home,
        &["pair", "--tcp", &address, "--code", &code, "--name", "shop"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = posctl(&home, &["pairings", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(listed.contains("profiles: shop"), "{listed}");
    let id = listed.get(..32).unwrap().to_string();
    let o = posctl(&home, &["pairings", "list", "--json"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("\"terminal_id\":\"{id}\"")),
        "{}",
        text(&o)
    );

    // A hand-edited terminal id that is not one is named as such, not as "not paired".
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    std::fs::write(
        home.join("config.toml"),
        config.replace(&id, "not-a-terminal-id"),
    )
    .unwrap();
    let o = posctl(&home, &["sale", "1.00"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not a terminal id"), "{}", text(&o));
    std::fs::write(home.join("config.toml"), &config).unwrap();

    // A deposit held, then released (an operator authorises it: money goes back).
    let o = posctl(&home, &["preauth", "80.00"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let held = text(&o)
        .split("(transaction ")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .unwrap()
        .to_string();
    let o = posctl(&home, &["release", &held]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = posctl_pin(&home, "2468", &["release", &held, "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("PreAuthCancel Approved"), "{}", text(&o));

    let o = posctl(&home, &["pairings", "revoke", "nowhere"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = posctl(&home, &["pairings", "revoke", "shop"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("profiles removed: shop"), "{}", text(&o));
    let o = posctl(&home, &["pairings", "list"]);
    assert!(text(&o).contains("no pairings"), "{}", text(&o));
    let o = posctl(&home, &["sale", "1.00"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pair with one first"), "{}", text(&o));
    std::fs::remove_dir_all(&home).unwrap();
}

/// The one JSON object posctl printed on standard output.
fn json_line(o: &Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", text(o));
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Payments approved offline through posctl: the result says so, the journal shows them
/// `offline_pending`, `recover` asks for their outcomes once the terminal has forwarded them
/// (one confirmed, one declined after the fact), the journal follows, the declined key answers
/// "declined" (exit 4), and the settlement reconciles.
#[test]
fn payments_approved_offline_are_followed_to_their_final_outcome() {
    let (address, code) = simulator_going_offline();
    let home = std::env::temp_dir().join(format!("posctl-offline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let o = posctl(
        &home,
        &["pair", "--tcp", &address, "--code", &code, "--name", "shop"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let key = |n: u32| format!("{n:032x}");
    let sale = |amount: &str, n: u32| {
        let o = posctl(&home, &["sale", amount, "--key", &key(n), "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        json_line(&o)
    };
    assert_eq!(sale("10.00", 1)["offline"], false);
    assert_eq!(sale("10.00", 2)["offline"], true);
    assert_eq!(sale("20.66", 3)["offline"], true);
    let state = |n: u32| {
        let o = posctl(&home, &["journal", "show", &key(n), "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        json_line(&o)["state"].as_str().unwrap().to_string()
    };
    assert_eq!(state(2), "offline_pending");
    // Still pending: recover asks, and nothing is in doubt.
    let o = posctl(&home, &["recover", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_line(&o);
    assert_eq!(v["clean"], true, "{v}");
    let ended = |v: &serde_json::Value, n: u32| {
        v["recovery"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["idempotency_key"] == key(n).as_str())
            .map(|r| r["ended"].as_str().unwrap().to_string())
    };
    assert_eq!(ended(&v, 2).as_deref(), Some("pending_offline"), "{v}");
    // The acquirer is back with the fourth payment: the stored ones are forwarded.
    assert_eq!(sale("5.00", 4)["offline"], false);
    let o = posctl(&home, &["recover", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json_line(&o);
    assert_eq!(ended(&v, 2).as_deref(), Some("confirmed_offline"), "{v}");
    assert_eq!(ended(&v, 3).as_deref(), Some("declined_after"), "{v}");
    assert_eq!(
        (state(2), state(3)),
        ("done".into(), "declined_after".into())
    );
    // The declined key: declined, not charged, never a second payment.
    let o = posctl(&home, &["sale", "20.66", "--key", &key(3)]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("declined by the issuer after the fact"),
        "{}",
        text(&o)
    );
    // The batch: 1, 2 and 4 charged; 3 in neither side's totals.
    let o = posctl_pin(&home, "2468", &["settle", "--operator", "manager"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("matches the journal"), "{}", text(&o));
    assert!(!text(&o).contains("DIFFERS"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&home);
}
