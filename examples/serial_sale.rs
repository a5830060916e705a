//! A sale over a serial port. The terminal here sits on one end of a pseudo-terminal pair (a
//! real tty driver, no hardware); with a real terminal open its port instead — find it with
//! `posbridge::serial::find_usb(vid, pid, None)` or `list_ports()`.
//!
//! Run: `cargo run -p posbridge-examples --example serial_sale`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{Call, ConnectOptions, NativeAdapter, NativeClient, PaymentTerminal, Payments};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_link::Link;
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{Amount, Currency, IdempotencyKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(Vec::new());
    let (line, till_end) = posbridge::serial::pty_pair()?;
    let path = till_end.port_path().ok_or("no path")?;
    terminal.serve_line(line);
    println!(
        "terminal on serial port {path}, pairing code {}",
        terminal.code
    );

    let config = posbridge::serial::SerialConfig {
        baud: 115_200,
        ..Default::default()
    };
    let port = posbridge::serial::open(&path, &config)?;
    println!("opened {}", port.info());
    let client = NativeClient::connect(
        port,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(LocalIdentity::generate(PeerId::random()?, "Till 2")?),
            security: ClientSecurity::Pair(PairingSecret::code(&terminal.code)?),
            hello: common::hello("Till 2"),
            timeout: Duration::from_secs(30),
        },
    )
    .await?;
    let paired = client.paired().cloned().ok_or("not paired")?;
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        MemoryJournal::new(),
    );
    let result = payments
        .sale(
            IdempotencyKey(PeerId::random()?.0),
            Amount::new(899, Currency::EUR),
            Call::within(Duration::from_secs(120)),
        )
        .await?;
    println!(
        "sale over the serial line: {:?}, transaction {}",
        result.outcome, result.transaction_id
    );
    let (client, _) = payments.into_parts();
    client.close().await;
    drop(till_end);
    Ok(())
}
