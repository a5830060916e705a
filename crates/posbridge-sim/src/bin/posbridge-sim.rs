//! `posbridge-sim`: a simulated card-payment terminal speaking posbridge's native protocol.
//!
//! It listens on TCP, serves any number of tills at once (one simulator, one batch), keeps its
//! identity and pairings in a key directory, and shows its pairing code when asked to pair.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use posbridge::driver;
use posbridge_crypto::{FileKeyStore, LocalIdentity, PairingConfig, PairingStore, PeerId};
use posbridge_session::{
    PairingRegistry, SessionConfig, SharedApp, TerminalApp, TerminalContext, TerminalEvent,
    TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::Timestamp;

/// A simulated card-payment terminal (posbridge native protocol).
#[derive(Parser, Debug)]
#[command(name = "posbridge-sim", version)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:20100")]
    tcp: String,
    /// Open pairing at start and print the code (valid for the pairing window).
    #[arg(long)]
    pair: bool,
    /// The pairing window in seconds.
    #[arg(long, default_value_t = 180)]
    pairing_window: u64,
    /// Where the terminal keeps its identity and pairings (created, owner-only). Without it the
    /// terminal has a new identity every start and forgets its pairings.
    #[arg(long)]
    keys: Option<std::path::PathBuf>,
    /// An operator who may authorise refunds, voids, settlements and configuration changes,
    /// as NAME:PIN (repeatable).
    #[arg(long = "operator", value_name = "NAME:PIN")]
    operators: Vec<String>,
    /// Answer at once instead of at the pace of a person at a counter.
    #[arg(long)]
    fast: bool,
    /// Where the terminal keeps its memory of idempotency keys and results (`results.log`), so a
    /// restarted terminal answers a repeated key with the original result. Without it the
    /// memory lasts as long as the process.
    #[arg(long)]
    state: Option<std::path::PathBuf>,
}

/// Persists the pairings the simulator makes.
struct Persisting<A> {
    app: A,
    store: Option<Arc<PairingStore<FileKeyStore>>>,
}

impl<A: TerminalApp> TerminalApp for Persisting<A> {
    fn on_event(
        &mut self,
        session: &mut TerminalSession,
        event: &TerminalEvent,
        now: std::time::Instant,
    ) {
        match event {
            TerminalEvent::Paired(record) => {
                let mut record = record.clone();
                record.paired_at = wall();
                println!("paired with {} ({})", record.peer.name, record.peer.id);
                if let Some(store) = &self.store
                    && let Err(e) = store.save(&record)
                {
                    eprintln!("posbridge-sim: could not store the pairing: {e}");
                }
            }
            TerminalEvent::Connected { hello, client } => println!(
                "connected: {} ({})",
                hello.client_name.as_deref().unwrap_or("unnamed client"),
                client.peer.id
            ),
            TerminalEvent::Closed(reason) => println!("connection ended: {reason:?}"),
            TerminalEvent::Transaction { request, .. } => println!(
                "{:?} {:?}",
                request.command.kind(),
                request
                    .command
                    .amount()
                    .map(|a| posbridge_sim::money(a.minor, a.currency))
            ),
            _ => {}
        }
        self.app.on_event(session, event, now);
    }

    fn poll_timeout(&self, session: &TerminalSession) -> Option<std::time::Instant> {
        self.app.poll_timeout(session)
    }

    fn handle_timeout(&mut self, session: &mut TerminalSession, now: std::time::Instant) {
        self.app.handle_timeout(session, now);
    }
}

fn wall() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let profile = TerminalProfile {
        latency: if args.fast {
            Latency::INSTANT
        } else {
            Latency::default()
        },
        ..TerminalProfile::default()
    };
    let (identity, registry, store) = match &args.keys {
        Some(dir) => {
            let store = PairingStore::new(FileKeyStore::open(dir)?);
            let identity =
                store.identity_or_generate(PeerId::from(profile.terminal_id), "posbridge-sim")?;
            let registry = PairingRegistry::with_records(store.records()?);
            (identity, registry, Some(Arc::new(store)))
        }
        None => (
            LocalIdentity::generate(PeerId::from(profile.terminal_id), "posbridge-sim")?,
            PairingRegistry::new(),
            None,
        ),
    };
    let identity = Arc::new(identity);
    let mut context =
        TerminalContext::new(identity.clone(), registry, profile.capabilities(), 100_000);
    if let Some(dir) = &args.state {
        std::fs::create_dir_all(dir)?;
        let store = posbridge_sim::FileResultStore::open(dir.join("results.log"), 100_000)?;
        context.results = Arc::new(std::sync::Mutex::new(store));
    }
    for op in &args.operators {
        let (name, pin) = op
            .split_once(':')
            .ok_or_else(|| format!("--operator {op:?}: expected NAME:PIN"))?;
        context
            .operators
            .lock()
            .map_err(|_| "operator table poisoned")?
            .add_pin(name, pin)
            .map_err(|e| format!("--operator {name}: {e}"))?;
    }
    if args.pair {
        let mut config = PairingConfig::default();
        config.set_window(Duration::from_secs(args.pairing_window));
        let mut registry = context.registry.lock().map_err(|_| "registry poisoned")?;
        let code = registry.open_window(config, driver::now())?.to_string();
        println!("pairing code: {code} (for {} s)", args.pairing_window);
    }
    let listener = posbridge_tcp::Listener::bind(&args.tcp).await?;
    println!(
        "posbridge-sim {} listening on {} (terminal {}, signing key {})",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr()?,
        profile.terminal_id,
        identity.signing().public_key()
    );
    let app = SharedApp::new(Persisting {
        app: Simulator::new(profile, identity, driver::now(), wall()),
        store,
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(link) => {
                    let session = TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
                    let mut app = app.clone();
                    tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
                }
                Err(e) => eprintln!("posbridge-sim: accept failed: {e}"),
            },
            _ = tokio::signal::ctrl_c() => {
                println!("posbridge-sim: stopping");
                return Ok(());
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("posbridge-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("posbridge-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
