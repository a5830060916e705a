//! A ZVT terminal through the same `PaymentTerminal` API: register, sell with progress and the
//! printed receipt, lose a result to a dropped connection and recover it from the terminal's
//! last transaction, close the day. The terminal is the simulator's ZVT mode on 127.0.0.1; with
//! a real one connect to its ZVT port (20007 or 22000; 22001 with TLS) or open its serial port
//! at 9600 baud 8N2 with `Framing::Serial`.
//!
//! Run: `cargo run -p posbridge-examples --example zvt_sale`

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::{Journal, MemoryJournal};
use posbridge::{Call, PaymentError, PaymentTerminal};
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey};
use posbridge_zvt::client::{ZvtConfig, ZvtTerminal};
use posbridge_zvt::server::ServerConfig;
use posbridge_zvt::transport::{Framing, ZvtLink};

/// The simulator's ZVT mode on a free port, the connection cut once before a result.
async fn zvt_terminal() -> Result<String, Box<dyn std::error::Error>> {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let backend = posbridge_sim::zvt::simulated(profile).await?;
    let server = Arc::new(posbridge_sim::zvt::server(
        backend,
        52_500_038,
        vec!["drop:before-result:1".parse()?],
        ServerConfig {
            render: posbridge_sim::render,
            ..ServerConfig::default()
        },
    )?);
    let listener = posbridge::tcp::Listener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok(link) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move { server.serve(ZvtLink::new(link, Framing::Tcp)).await });
        }
    });
    Ok(address)
}

async fn connect(
    address: &str,
    journal: MemoryJournal,
) -> Result<ZvtTerminal<MemoryJournal>, Box<dyn std::error::Error>> {
    let link = posbridge::tcp::connect(address, &posbridge::tcp::TcpConfig::default()).await?;
    Ok(posbridge_zvt::client::connect(link, Framing::Tcp, ZvtConfig::default(), journal).await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = zvt_terminal().await?;
    let terminal = connect(&address, MemoryJournal::new()).await?;
    println!(
        "registered with ZVT terminal {:?} at {address}",
        terminal.adapter().registered().terminal_id
    );
    let call = || Call::within(Duration::from_secs(60));
    let eur = |minor| Amount::new(minor, Currency::EUR);

    // The first sale's result is lost: the connection drops before it arrives.
    let lost = IdempotencyKey::from_u128(1);
    match terminal.sale(lost, eur(12_50), call()).await {
        Err(e @ PaymentError::InDoubt(_)) => println!("sale in doubt: {e}"),
        other => println!("unexpected: {other:?}"),
    }
    // A new connection with the same journal recovers it from the terminal's last transaction.
    let terminal = connect(&address, terminal.close().await).await?;
    let report = terminal.recover(Duration::from_secs(30)).await?;
    let recovered = terminal.journal().get(&lost)?.and_then(|e| e.result);
    println!(
        "recovered {} in-doubt sale(s): {:?}",
        report.recorded.len(),
        recovered.map(|r| r.outcome)
    );

    let mut progress = terminal.progress();
    let watcher = tokio::spawn(async move {
        while let Some(p) = progress.next().await {
            println!("  terminal: {}", p.message.unwrap_or_default());
        }
    });
    let sale = terminal
        .sale(IdempotencyKey::from_u128(2), eur(8_00), call())
        .await?;
    println!(
        "sale {:?}: {} EUR, card {}, receipt printed in {} lines",
        sale.outcome,
        sale.approved_minor as f64 / 100.0,
        sale.pan.map(|p| p.to_string()).unwrap_or_default(),
        sale.receipts
            .first()
            .map_or(0, |r| r.header.len() + r.footer.len())
    );
    let day = terminal
        .settle(IdempotencyKey::from_u128(3), call())
        .await?;
    println!(
        "end of day: {:?}, total {:?}",
        day.status,
        day.totals.first().map(|t| t.amount)
    );
    watcher.abort();
    Ok(())
}
