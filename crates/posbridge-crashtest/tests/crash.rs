//! The crash test: a terminal (the simulator) serves on 127.0.0.1; an app process
//! (`crash-client`) sells through posbridge with an SQLite journal and is killed with SIGKILL at
//! seeded random moments, again and again; after each kill it restarts, recovers and goes on.
//! At the end the journal and the terminal must agree exactly: every sale recorded once, with
//! the terminal's result, none charged twice, none lost.
//!
//! `POSBRIDGE_CRASH_KILLS` sets how many kills (default 100).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge::driver;
use posbridge::journal::{EntryState, Journal, SqliteJournal};
use posbridge_crypto::{FileKeyStore, LocalIdentity, PairingRecord, PairingStore, PeerId, Role};
use posbridge_session::harness::Rng;
use posbridge_session::{PairingRegistry, SessionConfig, TerminalContext, TerminalSession};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_tcp::Listener;
use posbridge_wire::{IdempotencyKey, Timestamp};
use tokio::sync::oneshot;

const SALES: u64 = 1000;

fn key(n: u64) -> IdempotencyKey {
    IdempotencyKey::from_u128(0xC0A5_0000_0000_0000 << 64 | u128::from(n))
}

fn spawn_client(address: &str, keys: &str, journal: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash-client"))
        .args([address, keys, journal, &SALES.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crash-client starts")
}

#[tokio::test(flavor = "current_thread")]
async fn killed_at_random_moments_the_journal_and_the_terminal_still_agree() {
    let kills_wanted: u32 = std::env::var("POSBRIDGE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("posbridge-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys_dir = dir.join("keys");
    let journal_path = dir.join("journal.db");

    // The app's identity and its pairing with the terminal, as a real app keeps them.
    let profile = TerminalProfile {
        latency: Latency {
            card: Duration::from_millis(1),
            read: Duration::ZERO,
            pin: Duration::ZERO,
            online: Duration::from_millis(2),
            card_timeout: Duration::from_secs(30),
        },
        ..TerminalProfile::default()
    };
    let terminal_id = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim").unwrap());
    let app_store = PairingStore::new(FileKeyStore::open(&keys_dir).unwrap());
    let app = app_store
        .identity_or_generate(PeerId::random().unwrap(), "crash-client")
        .unwrap();
    app_store
        .save(&PairingRecord {
            peer: terminal_id.public_keys(),
            peer_role: Role::Terminal,
            paired_at: Timestamp(1),
        })
        .unwrap();
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: app.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(1),
    });

    // The terminal: one simulator serving one connection after another on 127.0.0.1.
    let ctx = TerminalContext::new(
        terminal_id.clone(),
        registry,
        profile.capabilities(),
        10_000,
    );
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let serve_ctx = ctx.clone();
    let server = tokio::spawn(async move {
        let mut sim = Simulator::new(
            profile,
            terminal_id,
            driver::now(),
            Timestamp(1_764_000_000_000),
        );
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok(link) = accepted else { continue };
                    let session = TerminalSession::new(SessionConfig::default(), serve_ctx.clone(), driver::now());
                    driver::serve_terminal(session, link, &mut sim).await;
                }
                _ = &mut stop_rx => return sim,
            }
        }
    });

    let (keys, journal) = (
        keys_dir.to_str().unwrap().to_string(),
        journal_path.to_str().unwrap().to_string(),
    );
    let mut rng = Rng::new(0xC4A5);
    let mut kills = 0u32;
    let mut finished_early = 0u32;
    let mut in_doubt_kills = 0u32;
    let started = Instant::now();
    while kills < kills_wanted {
        let mut child = spawn_client(&address, &keys, &journal);
        let delay = Duration::from_micros(rng.below(60_000));
        let deadline = Instant::now() + delay;
        // Let it run (the terminal keeps serving meanwhile), then kill it mid-whatever.
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "crash-client failed on its own: {:?}",
                    child_stderr(&mut child)
                );
                finished_early += 1;
                break;
            }
            if Instant::now() >= deadline {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                // Did this kill leave a sale in doubt (journaled, no result yet)?
                if let Ok(j) = SqliteJournal::open(&journal_path)
                    && !j.unresolved().unwrap_or_default().is_empty()
                {
                    in_doubt_kills += 1;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the crash test ran too long"
        );
    }

    // A last run, left alone: it recovers and finishes every sale.
    let mut child = spawn_client(&address, &keys, &journal);
    let until = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "the final run did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let final_err = child_stderr(&mut child);
    let _ = stop_tx.send(());
    let sim = server.await.unwrap();
    if !status.success() {
        let store = ctx.results.lock().unwrap();
        let stuck: Vec<u64> = (0..SALES)
            .filter(|&n| store.load(&key(n)).is_some_and(|r| r.result.is_none()))
            .collect();
        panic!(
            "the final run failed: {final_err}\nsimulator: {sim:?}\nkeys running in the terminal's memory: {stuck:?}"
        );
    }

    // The journal: every sale done, nothing in doubt.
    let journal = SqliteJournal::open(&journal_path).unwrap();
    assert!(journal.unresolved().unwrap().is_empty());
    let mut charged: HashMap<IdempotencyKey, u32> = HashMap::new();
    for t in sim.transactions() {
        *charged.entry(t.idempotency_key).or_default() += 1;
    }
    let store = ctx.results.lock().unwrap();
    for n in 0..SALES {
        let k = key(n);
        let entry = journal
            .get(&k)
            .unwrap()
            .unwrap_or_else(|| panic!("sale {n} lost from the journal"));
        assert_eq!(entry.state, EntryState::Done, "sale {n}");
        let mine = entry.result.unwrap();
        let theirs = store
            .load(&k)
            .and_then(|r| r.result)
            .unwrap_or_else(|| panic!("sale {n} unknown to the terminal"));
        assert_eq!(
            (mine.transaction_id, mine.outcome, mine.approved_minor),
            (theirs.transaction_id, theirs.outcome, theirs.approved_minor),
            "sale {n}: journal and terminal disagree"
        );
        assert!(
            charged.get(&k).copied().unwrap_or(0) <= 1,
            "sale {n} charged twice"
        );
    }
    // Nothing the terminal did is missing from the journal.
    for k in charged.keys() {
        assert!(
            journal.get(k).unwrap().is_some(),
            "{k:?} charged but not journaled"
        );
    }
    eprintln!(
        "crash test: {kills} kills ({in_doubt_kills} with a sale in doubt), {finished_early} runs finished before their kill, {} sales charged once each, {:?}",
        charged.len(),
        started.elapsed()
    );
    // The hard case — killed between the intent and the result — must have happened often.
    assert!(
        in_doubt_kills >= kills / 10,
        "only {in_doubt_kills} of {kills} kills hit a sale in flight"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn child_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}
