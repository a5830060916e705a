//! The `posbridge-sim` binary: it listens on 127.0.0.1, shows its pairing code, pairs a till,
//! serves a sale, and keeps the pairing across a restart when given a key directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use posbridge::{ConnectOptions, NativeClient};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_session::harness::hello;
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_tcp::TcpConfig;
use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome};

struct Sim {
    child: Child,
    address: String,
    code: Option<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
        .args(["--tcp", "127.0.0.1:0", "--fast"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("posbridge-sim starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut address, mut code) = (None, None);
    while address.is_none() {
        let line = lines.next().expect("output").expect("utf-8");
        if let Some(rest) = line.strip_prefix("pairing code: ") {
            code = Some(rest[..6].to_string());
        }
        if let Some(i) = line.find("listening on ") {
            let rest = &line[i + "listening on ".len()..];
            address = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Sim {
        child,
        address: address.unwrap(),
        code,
    }
}

async fn connect(
    sim: &Sim,
    identity: Arc<LocalIdentity>,
    security: ClientSecurity,
) -> NativeClient {
    let link = posbridge_tcp::connect(&sim.address, &TcpConfig::default())
        .await
        .unwrap();
    NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity,
            security,
            hello: hello(),
            timeout: Duration::from_secs(20),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn pairs_sells_and_remembers_the_pairing_across_a_restart() {
    let keys = std::env::temp_dir().join(format!("posbridge-sim-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&keys);
    let keys_arg = keys.to_str().unwrap();
    let till = Arc::new(LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap());

    let sim = start(&["--pair", "--keys", keys_arg]);
    let code = sim.code.clone().expect("a pairing code on screen");
    let client = connect(
        &sim,
        till.clone(),
        ClientSecurity::Pair(PairingSecret::code(&code).unwrap()),
    )
    .await;
    let record = client.paired().cloned().expect("paired");
    let r = client
        .sale(
            IdempotencyKey::from_u128(1),
            Amount::new(1250, Currency::EUR),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    posbridge_crypto::verify_result(&record.peer.signing_key, &r).unwrap();
    client.close().await;
    drop(sim);

    // Restarted with the same key directory: same terminal keys, the pairing remembered.
    let sim = start(&["--keys", keys_arg]);
    assert!(sim.code.is_none());
    let client = connect(
        &sim,
        till,
        ClientSecurity::Paired {
            terminal_key: record.peer.channel_key,
        },
    )
    .await;
    let r = client
        .sale(
            IdempotencyKey::from_u128(2),
            Amount::new(500, Currency::EUR),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    posbridge_crypto::verify_result(&record.peer.signing_key, &r).unwrap();
    client.close().await;
    drop(sim);
    std::fs::remove_dir_all(&keys).unwrap();
}
