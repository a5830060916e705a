//! `crash-client ADDRESS KEYS_DIR JOURNAL SALES`: the app side of the crash test. It loads its
//! identity and pairing from `KEYS_DIR`, opens the SQLite journal, connects to the terminal,
//! recovers whatever is in doubt, then runs sale number 0..SALES (idempotency key = the number),
//! skipping those the journal already has. Every step is
//! durable before the next, so it may be killed at any moment.

use std::process::ExitCode;
use std::time::Duration;

use posbridge::journal::{Journal, SqliteJournal};
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, Payments, RecoveryPolicy};
use posbridge_crypto::{FileKeyStore, PairingStore, Role};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_tcp::TcpConfig;
use posbridge_wire::{Amount, ClientId, Currency, Hello, IdempotencyKey, TransactionCommand};

/// The amount of sale `n`: whole euros, except every seventh ending in .51 — the simulator's
/// "insufficient funds" card, so declines are journaled too (no amount selects a card that
/// makes the customer wait).
fn amount(n: u64) -> u64 {
    1000 + n * 100 + if n % 7 == 3 { 51 } else { 0 }
}

/// The idempotency key of sale `n`.
fn key(n: u64) -> IdempotencyKey {
    IdempotencyKey::from_u128(0xC0A5_0000_0000_0000 << 64 | u128::from(n))
}

async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [address, keys, journal, sales] = args else {
        return Err("usage: crash-client ADDRESS KEYS_DIR JOURNAL SALES".into());
    };
    let sales: u64 = sales.parse()?;
    let store = PairingStore::new(FileKeyStore::open(keys)?);
    let identity = store.identity()?.ok_or("no identity in the key store")?;
    let terminal = store
        .records()?
        .into_iter()
        .find(|r| r.peer_role == Role::Terminal)
        .ok_or("not paired with a terminal")?;
    let journal = SqliteJournal::open(journal)?;
    let link = posbridge_tcp::connect(address, &TcpConfig::default()).await?;
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: std::sync::Arc::new(identity),
            security: ClientSecurity::Paired {
                terminal_key: terminal.peer.channel_key,
            },
            hello: Hello {
                client_id: ClientId([0xC5; 16]),
                client_name: Some("crash-client".into()),
                app_version: None,
                protocol_versions: vec![1],
                max_frame_size: None,
            },
            timeout: Duration::from_secs(10),
        },
    )
    .await?;
    // This till finishes every sale it started, however long it was down: recovery sends again
    // what the terminal never took, within a window longer than the test.
    let payments = Payments::new(
        NativeAdapter::new(client, Some(terminal.peer.signing_key)),
        journal,
    )
    .with_policy(RecoveryPolicy {
        resend_within: Some(Duration::from_secs(3600)),
        reversal: None,
    });
    let report = payments.recover(Duration::from_secs(10)).await?;
    if !report.is_clean() {
        return Err(format!("recovery left commands in doubt: {report:?}").into());
    }
    for n in 0..sales {
        if payments.journal().get(&key(n))?.is_some() {
            continue;
        }
        payments
            .transaction(
                key(n),
                TransactionCommand::Sale {
                    amount: Amount::new(amount(n), Currency::EUR),
                    tip: None,
                    cashback: None,
                },
                Duration::from_secs(10),
            )
            .await?;
    }
    payments.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("crash-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-client: {e}");
            ExitCode::FAILURE
        }
    }
}
