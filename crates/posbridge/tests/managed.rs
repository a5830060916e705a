//! A till that stays connected: back-off between attempts, recovery after every reconnect, the
//! state stream, pause and resume, giving up.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{
    Backoff, ConnectOptions, ConnectionState, ManagedError, ManagedPayments, NativeConnect, driver,
};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_link::{Delivery, MemoryLink, memory_pair};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome, Timestamp, TransactionCommand};

fn ids() -> &'static (Arc<LocalIdentity>, Arc<LocalIdentity>) {
    static IDS: OnceLock<(Arc<LocalIdentity>, Arc<LocalIdentity>)> = OnceLock::new();
    IDS.get_or_init(|| {
        (
            Arc::new(LocalIdentity::generate(PeerId([2; 16]), "till").unwrap()),
            Arc::new(
                LocalIdentity::generate(TerminalProfile::default().terminal_id.into(), "sim")
                    .unwrap(),
            ),
        )
    })
}

/// A terminal that outlives connections; `serve` gives a new connection to it.
#[derive(Clone)]
struct Terminal {
    ctx: TerminalContext,
    sim: SharedApp<Simulator>,
    /// The task serving the current connection (to cut it).
    current: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Terminal {
    fn new(latency: Latency) -> Self {
        let (till, terminal) = ids();
        let profile = TerminalProfile {
            latency,
            ..TerminalProfile::default()
        };
        let mut registry = PairingRegistry::new();
        registry.add(PairingRecord {
            peer: till.public_keys(),
            peer_role: Role::Client,
            paired_at: Timestamp(0),
        });
        let ctx = TerminalContext::new(terminal.clone(), registry, profile.capabilities(), 100);
        let sim = SharedApp::new(Simulator::new(
            profile,
            terminal.clone(),
            driver::now(),
            Timestamp(1_764_000_000_000),
        ));
        Self {
            ctx,
            sim,
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn serve(&self) -> MemoryLink {
        let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 256);
        let session =
            TerminalSession::new(SessionConfig::default(), self.ctx.clone(), driver::now());
        let mut app = self.sim.clone();
        let task = tokio::spawn(async move {
            driver::serve_terminal(session, theirs, &mut app).await;
        });
        *self.current.lock().unwrap() = Some(task);
        ours
    }

    fn cut(&self) {
        if let Some(t) = self.current.lock().unwrap().take() {
            t.abort();
        }
    }
}

fn options() -> ConnectOptions {
    let (till, terminal) = ids();
    ConnectOptions {
        session: SessionConfig::default(),
        identity: till.clone(),
        security: ClientSecurity::Paired {
            terminal_key: terminal.channel().public(),
        },
        hello: hello(),
        timeout: Duration::from_secs(10),
    }
}

fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

type Boxed = Box<dyn std::error::Error + Send + Sync>;

#[test]
fn back_off_doubles_caps_and_jitters_within_bounds() {
    let b = Backoff::default();
    assert_eq!(b.delay(1, 0.0), Duration::from_millis(250));
    assert_eq!(b.delay(2, 0.0), Duration::from_millis(500));
    assert_eq!(b.delay(3, 0.0), Duration::from_secs(1));
    assert_eq!(b.delay(20, 0.0), Duration::from_secs(30), "capped");
    assert_eq!(
        b.delay(2, 1.0),
        Duration::from_millis(400),
        "at most 20 % shorter"
    );
    assert!(b.delay(u32::MAX, 0.5) <= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn reconnects_with_back_off_and_recovers_a_sale_lost_with_the_link() {
    let terminal = Terminal::new(Latency::default());
    let failures = Arc::new(AtomicU32::new(2));
    let t = terminal.clone();
    let f = failures.clone();
    let connector = move || {
        let t = t.clone();
        let f = f.clone();
        async move {
            // The first attempts find nobody listening.
            if f.load(Ordering::SeqCst) > 0 {
                f.fetch_sub(1, Ordering::SeqCst);
                return Err::<MemoryLink, Boxed>("connection refused".into());
            }
            Ok(t.serve())
        }
    };
    let key = Some(ids().1.signing().public_key());
    let mut till = ManagedPayments::new(
        NativeConnect {
            links: connector,
            options: options(),
            terminal_key: key,
        },
        MemoryJournal::new(),
    );
    let mut states = till.states();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let state = states.borrow().clone();
            s.lock().unwrap().push(state);
        }
    });

    let r = till
        .transaction(IdempotencyKey::from_u128(1), sale(1000))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    tokio::task::yield_now().await;
    // A watch stream: a slow observer sees the latest state, so short-lived ones may be
    // skipped; the retries and the end state always show.
    let log = seen.lock().unwrap().clone();
    let waits: Vec<(u32, Duration)> = log
        .iter()
        .filter_map(|s| match s {
            ConnectionState::Reconnecting {
                attempt,
                after,
                reason,
            } => {
                assert_eq!(reason, "connection refused");
                Some((*attempt, *after))
            }
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 2, "{log:?}");
    assert_eq!((waits[0].0, waits[1].0), (2, 3));
    assert!(waits[0].1 > Duration::from_millis(199) && waits[0].1 <= Duration::from_millis(250));
    assert!(waits[1].1 > Duration::from_millis(399) && waits[1].1 <= Duration::from_millis(500));
    assert_eq!(log.last(), Some(&ConnectionState::Ready), "{log:?}");

    // The link dies while the next card is read.
    let t = terminal.clone();
    let cutter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1700)).await;
        t.cut();
    });
    let lost = till
        .transaction(IdempotencyKey::from_u128(2), sale(2000))
        .await
        .unwrap_err();
    assert!(matches!(lost, ManagedError::Payment(_)), "{lost}");
    cutter.await.unwrap();
    // The next command reconnects, resolves sale 2 first (the simulator finished it), then runs.
    let r = till
        .transaction(IdempotencyKey::from_u128(3), sale(3000))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    till.with_journal(|j| {
        let two = j.get(&IdempotencyKey::from_u128(2)).unwrap().unwrap();
        assert_eq!(two.state, EntryState::Done);
        assert_eq!(two.result.unwrap().outcome, Outcome::Approved);
        assert!(j.unresolved().unwrap().is_empty());
    });
    let charged: Vec<u64> = terminal
        .sim
        .lock()
        .transactions()
        .map(|t| t.amount.minor)
        .collect();
    assert_eq!(charged, vec![1000, 2000, 3000], "each once");

    // Paused (the app went to the background) and resumed by the next command.
    till.pause().await;
    assert!(matches!(
        *till.states().borrow(),
        ConnectionState::Disconnected { .. }
    ));
    till.transaction(IdempotencyKey::from_u128(4), sale(400))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_its_attempts_with_a_typed_error() {
    let connector = || async { Err::<MemoryLink, Boxed>("no route to host".into()) };
    let mut till = ManagedPayments::new(
        NativeConnect {
            links: connector,
            options: options(),
            terminal_key: None,
        },
        MemoryJournal::new(),
    );
    till.set_backoff(Backoff::default(), 4);
    let started = tokio::time::Instant::now();
    let err = till
        .transaction(IdempotencyKey::from_u128(1), sale(100))
        .await
        .unwrap_err();
    match err {
        ManagedError::Unreachable { attempts, last } => {
            assert_eq!(attempts, 4);
            assert!(last.to_string().contains("no route"), "{last}");
        }
        other => panic!("{other}"),
    }
    // Three waits: at most 250 + 500 + 1000 ms, at least 80 % of that.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited <= Duration::from_millis(1760),
        "{waited:?}"
    );
    // Nothing was journaled: the command never left.
    till.with_journal(|j| assert!(j.get(&IdempotencyKey::from_u128(1)).unwrap().is_none()));
}
