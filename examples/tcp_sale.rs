//! A sale over TCP: pair with the code on the terminal's screen, then sell through the
//! protocol-independent `PaymentTerminal` API, with every payment journaled (SQLite) before it is
//! sent and its signed result verified.
//!
//! Run: `cargo run -p posbridge-examples --example tcp_sale`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::SqliteJournal;
use posbridge::{Call, ConnectOptions, NativeAdapter, NativeClient, PaymentTerminal, Payments};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{Amount, Currency, IdempotencyKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(Vec::new());
    let address = terminal.listen().await?;
    println!(
        "terminal on {address}, its screen shows pairing code {}",
        terminal.code
    );

    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(LocalIdentity::generate(PeerId::random()?, "Till 1")?),
            security: ClientSecurity::Pair(PairingSecret::code(&terminal.code)?),
            hello: common::hello("Till 1"),
            timeout: Duration::from_secs(30),
        },
    )
    .await?;
    let paired = client.paired().cloned().ok_or("not paired")?;
    println!("paired with {}", paired.peer.name);

    let journal_path = std::env::temp_dir().join(format!("tcp-sale-{}.db", std::process::id()));
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        SqliteJournal::open(&journal_path)?,
    );
    let mut progress = payments.progress();
    tokio::spawn(async move {
        while let Some(p) = progress.next().await {
            println!("  ... {:?}", p.stage);
        }
    });
    // One idempotency key per payment, kept for its retries.
    let key = IdempotencyKey(PeerId::random()?.0);
    let result = payments
        .sale(
            key,
            Amount::new(1250, Currency::EUR),
            Call::within(Duration::from_secs(120)),
        )
        .await?;
    println!(
        "sale {:?}: {} minor units, transaction {}, signature verified, journaled in {}",
        result.outcome,
        result.approved_minor,
        result.transaction_id,
        journal_path.display()
    );
    let (client, _) = payments.into_parts();
    client.close().await;
    let _ = std::fs::remove_file(&journal_path);
    Ok(())
}
