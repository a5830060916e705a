//! A simulated terminal for the examples: posbridge's embedded simulator
//! (`posbridge_sim::embedded`) at the pace of a quick customer, with pairing open and a manager
//! operator (PIN 2468), so every example runs on its own, without hardware.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use posbridge_sim::embedded::EmbeddedTerminal;
use posbridge_sim::{Fault, Latency, TerminalProfile};

/// The examples' terminal.
pub type Terminal = EmbeddedTerminal;

/// A terminal with pairing open, a manager operator (PIN 2468), and `faults` injected.
pub fn terminal(faults: Vec<Fault>) -> Terminal {
    let profile = TerminalProfile {
        latency: Latency {
            card: Duration::from_millis(300),
            read: Duration::from_millis(100),
            pin: Duration::from_millis(300),
            online: Duration::from_millis(200),
            card_timeout: Duration::from_secs(30),
        },
        ..TerminalProfile::default()
    };
    let terminal =
        EmbeddedTerminal::new(profile, &[("manager", "2468")]).expect("the terminal starts");
    terminal.set_faults(faults);
    terminal
}

/// What the till says about itself.
pub fn hello(name: &str) -> posbridge_wire::Hello {
    posbridge_wire::Hello {
        client_id: posbridge_wire::ClientId([0xE7; 16]),
        client_name: Some(name.into()),
        app_version: Some("posbridge examples".into()),
        protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
        max_frame_size: None,
    }
}
