//! Recovery after a lost answer: the terminal drops the connection after deciding but before its
//! result goes out (a fault the simulator injects). The payment is journaled (SQLite), so the
//! app knows it is in doubt; on reconnect, `recover` asks the terminal by idempotency key and
//! records its result — never charging twice. The same happens after the app itself crashes:
//! the journal on disk is what recovery starts from.
//!
//! Run: `cargo run -p posbridge-examples --example recovery`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::{Journal, SqliteJournal};
use posbridge::{Call, ConnectOptions, NativeAdapter, NativeClient, PaymentTerminal, Payments};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{Amount, Currency, IdempotencyKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(vec!["drop:before-result".parse()?]);
    let address = terminal.listen().await?;
    let me = Arc::new(LocalIdentity::generate(PeerId::random()?, "Till 4")?);
    let path = std::env::temp_dir().join(format!("recovery-example-{}.db", std::process::id()));
    let options = |security| ConnectOptions {
        session: SessionConfig::default(),
        identity: me.clone(),
        security,
        hello: common::hello("Till 4"),
        timeout: Duration::from_secs(30),
    };

    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Pair(PairingSecret::code(&terminal.code)?)),
    )
    .await?;
    let paired = client.paired().cloned().ok_or("not paired")?;
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        SqliteJournal::open(&path)?,
    );
    let key = IdempotencyKey(PeerId::random()?.0);
    match payments
        .sale(
            key,
            Amount::new(4200, Currency::EUR),
            Call::within(Duration::from_secs(60)),
        )
        .await
    {
        Ok(r) => println!("unexpected: the answer arrived ({:?})", r.outcome),
        Err(e) => println!("the connection dropped before the answer: {e}"),
    }
    println!(
        "journal: {:?}",
        payments.journal().get(&key)?.map(|e| e.state)
    );
    drop(payments); // as if the app had crashed: only the journal file remains

    // The app starts again: reconnect with the stored key, recover before anything new.
    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Paired {
            terminal_key: paired.peer.channel_key,
        }),
    )
    .await?;
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        SqliteJournal::open(&path)?,
    );
    let report = payments.recover(Duration::from_secs(60)).await?;
    println!(
        "recovery: recorded {:?}, resent {:?}",
        report.recorded, report.resent
    );
    let entry = payments.journal().get(&key)?.ok_or("missing")?;
    println!(
        "journal: {:?}, outcome {:?}; the terminal charged it {} time(s)",
        entry.state,
        entry.result.map(|r| r.outcome),
        terminal
            .simulator()
            .lock()
            .transactions()
            .filter(|r| r.idempotency_key == key)
            .count()
    );
    let (client, _) = payments.into_parts();
    client.close().await;
    std::fs::remove_file(&path)?;
    Ok(())
}
