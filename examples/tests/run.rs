//! Every example runs to its end and prints what it promises (they are built by `cargo test`
//! next to this test, in `target/<profile>/examples`).

use std::process::Command;

fn run(name: &str) -> String {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let exe = dir.join(name);
    let out = Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name}: {text}");
    text
}

#[test]
fn tcp_sale() {
    let out = run("tcp_sale");
    assert!(out.contains("sale Approved"), "{out}");
    assert!(out.contains("WaitingForCard"), "progress shown: {out}");
}

#[test]
fn counter() {
    let out = run("counter");
    for line in [
        "terminal: battery Some(87) %",
        "lease: this till holds the terminal",
        "customer display shows the cart: true",
        "the customer tips 180 cents",
        "sale: Approved, 1200 + 180 tip (EMV data on the receipt: true)",
        "lease given back",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
}

#[test]
fn serial_sale() {
    assert!(run("serial_sale").contains("sale over the serial line: Approved"));
}

#[test]
fn pairing() {
    assert!(run("pairing").contains("reconnected with the stored key"));
}

#[test]
fn recovery() {
    let out = run("recovery");
    assert!(out.contains("journal: Some(InDoubt)"), "{out}");
    assert!(
        out.contains("journal: Done, outcome Some(Approved); the terminal charged it 1 time(s)"),
        "{out}"
    );
}

#[test]
fn custom_link() {
    assert!(run("custom_link").contains("sale over the app's own link (20-byte chunks): Approved"));
}

#[test]
fn wire_sale() {
    run("wire_sale");
}

#[test]
fn zvt_sale() {
    let out = run("zvt_sale");
    assert!(out.contains("sale in doubt"), "{out}");
    assert!(
        out.contains("recovered 1 in-doubt sale(s): Some(Approved)"),
        "{out}"
    );
    assert!(out.contains("terminal: Insert card"), "{out}");
    assert!(out.contains("sale Approved: 8 EUR"), "{out}");
    assert!(
        out.contains("end of day: Ok(()), total Some(2050)"),
        "{out}"
    );
}
