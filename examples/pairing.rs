//! Pairing: the code on the terminal's screen once, then the stored keys every time after.
//! Pairing records and the till's own identity live in a key directory (files owner-only,
//! written atomically, versioned).
//!
//! Run: `cargo run -p posbridge-examples --example pairing`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use posbridge::{ConnectOptions, NativeClient};
use posbridge_crypto::{FileKeyStore, PairingSecret, PairingStore, PeerId, Role};
use posbridge_session::{ClientSecurity, SessionConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(Vec::new());
    let address = terminal.listen().await?;
    let dir = std::env::temp_dir().join(format!("pairing-example-{}", std::process::id()));
    let store = PairingStore::new(FileKeyStore::open(&dir)?);
    let me = Arc::new(store.identity_or_generate(PeerId::random()?, "Till 3")?);

    // First time: the code from the terminal's screen (SPAKE2: a wrong code learns nothing).
    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let options = |security| ConnectOptions {
        session: SessionConfig::default(),
        identity: me.clone(),
        security,
        hello: common::hello("Till 3"),
        timeout: Duration::from_secs(30),
    };
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Pair(PairingSecret::code(&terminal.code)?)),
    )
    .await?;
    let record = client.paired().cloned().ok_or("not paired")?;
    store.save(&record)?;
    println!(
        "paired with {} ({}); record kept in {}",
        record.peer.name,
        record.peer.id,
        dir.display()
    );
    client.close().await;

    // Every time after: the stored terminal key (Noise IK; a terminal without it cannot answer).
    let stored = store
        .records()?
        .into_iter()
        .find(|r| r.peer_role == Role::Terminal)
        .ok_or("no terminal paired")?;
    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let client = NativeClient::connect(
        link,
        options(ClientSecurity::Paired {
            terminal_key: stored.peer.channel_key,
        }),
    )
    .await?;
    println!(
        "reconnected with the stored key: {} speaks protocol version {}",
        client.capabilities().terminal_id,
        client.capabilities().selected_version
    );
    client.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
