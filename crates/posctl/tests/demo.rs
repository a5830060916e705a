//! `posctl demo` end to end: the binary, the simulator on 127.0.0.1, TCP, pairing, every step.

use std::process::Command;

#[test]
fn the_demo_runs_every_step_and_reconciles() {
    let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["demo", "--fast"])
        .output()
        .expect("posctl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    for needle in [
        "terminal simulator listening on 127.0.0.1:",
        "pairing code",
        "paired with posbridge-sim",
        "protocol 1.1",
        "terminal: battery 87 %",
        "customer display: 2 × Cappuccino",
        "the customer chose a tip of 1.87 EUR on the terminal",
        "sale: Approved, 14.37 EUR",
        "TVR",
        "signature verified",
        "APPROVED",
        "refund: Approved, 5.00 EUR",
        "pre-authorisation: Approved, 100.00 EUR",
        "capture: Approved, 90.00 EUR",
        "status: done, Approved",
        "report signature verified",
        "reconciled: terminal and till agree on every total",
        "journaled",
        "the till's journal",
        "in doubt: 0",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing:\n{stdout}");
    }
    // Four journal entries, all done.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("done "))
            .count(),
        4
    );
    // Only masked card numbers ever appear.
    assert!(!stdout.contains("4111111111111111"));
}

#[test]
fn a_wrong_command_line_exits_with_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_posctl"))
        .args(["demo", "--no-such-flag"])
        .output()
        .expect("posctl runs");
    assert_eq!(out.status.code(), Some(2));
}
