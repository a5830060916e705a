//! `posbridge-sim`: a simulated card-payment terminal speaking posbridge's native protocol.
//!
//! It listens on TCP or TLS (any number of tills at once: one simulator, one batch), or serves a
//! serial port or a pseudo-terminal it creates; keeps its identity, pairings, idempotency memory
//! and batch in directories so it survives restarts; shows its pairing code; plays scenarios
//! (profile, cards, faults) from TOML; injects faults at named steps (drop, silence, reboot) and
//! byte damage; and lets a person present the cards (`--interactive`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use posbridge_link::{FaultConfig, FaultInjector, Faults, Link, LinkError, LinkInfo};
use posbridge_serial::{SerialConfig, SerialLink};
use posbridge_sim::{CardBehaviour, Fault, FaultAction, Scenario};
use posbridge_tcp::{Fingerprint, TlsServerConfig, TlsVersions};

use clap::Parser;
use posbridge::driver;
use posbridge_crypto::{FileKeyStore, LocalIdentity, PairingConfig, PairingStore, PeerId};
use posbridge_session::{
    PairingRegistry, SessionConfig, SharedApp, TerminalApp, TerminalContext, TerminalEvent,
    TerminalSession,
};
use posbridge_sim::{Latency, Simulator};
use posbridge_wire::Timestamp;

/// A simulated card-payment terminal (posbridge native protocol).
#[derive(Parser, Debug)]
#[command(name = "posbridge-sim", version)]
struct Args {
    /// The address to listen on (TCP, or TLS with --tls).
    #[arg(long, default_value = "127.0.0.1:20100")]
    tcp: String,
    /// Serve TLS on --tcp's address, with a self-signed certificate whose SHA-256 pin is printed.
    #[arg(long)]
    tls: bool,
    /// Serve on this serial port instead of TCP (one till at a time on the line).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pty", "tls"])]
    serial: Option<String>,
    /// The serial port's baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Create a pseudo-terminal, serve on it and print the path for the till to open.
    #[arg(long, conflicts_with = "tls")]
    pty: bool,
    /// Open pairing at start and print the code (valid for the pairing window).
    #[arg(long)]
    pair: bool,
    /// The pairing window in seconds.
    #[arg(long, default_value_t = 180)]
    pairing_window: u64,
    /// With --pair: let this pairing replace the pairing of the device with this id (32 hex
    /// digits; a till whose keys were reset pairs again under its old id). Without it, a
    /// pairing that claims a paired device's id under other keys is refused.
    #[arg(long, value_name = "DEVICE_ID", requires = "pair")]
    replace_pairing: Option<String>,
    /// Where the terminal keeps its identity and pairings (created, owner-only); its terminal id
    /// is made with the identity, at random, and kept. Without it the terminal has a new
    /// identity every start, forgets its pairings and reports the profile's terminal id.
    #[arg(long)]
    keys: Option<std::path::PathBuf>,
    /// A file of the operators who may authorise refunds, voids, settlements and configuration
    /// changes: one NAME:PIN a line (`#` starts a comment); it must be readable by its owner
    /// only. Operators may also come from $POSBRIDGE_SIM_OPERATORS (NAME:PIN[,NAME:PIN…]). PINs
    /// are never taken from the command line, which every local user can read (ps).
    #[arg(long, value_name = "FILE")]
    operators_file: Option<std::path::PathBuf>,
    /// Answer at once instead of at the pace of a person at a counter.
    #[arg(long)]
    fast: bool,
    /// The publisher whose signed software updates this terminal installs: its Ed25519 public
    /// key, 64 hex digits (as `posctl update-sign` prints it). Without it every update is
    /// refused as untrusted.
    #[arg(long, value_name = "HEX")]
    update_key: Option<String>,
    /// Where the terminal keeps its memory of idempotency keys and results (`results.log`) and
    /// its open batch (`batch.log`), so a restarted terminal answers a repeated key with the
    /// original result and settles the same totals. Without it both last as long as the
    /// process.
    #[arg(long)]
    state: Option<std::path::PathBuf>,
    /// A scenario file (TOML): terminal profile, latency, cards presented, faults, link damage.
    #[arg(long, value_name = "FILE")]
    scenario: Option<std::path::PathBuf>,
    /// A fault at a step of the next payments, as ACTION:POINT[:TIMES] — ACTION drop, silence
    /// or reboot; POINT after-request, after-card-read, before-result or after-result
    /// (repeatable; reboot needs --keys and --state).
    #[arg(long = "fault", value_name = "ACTION:POINT[:TIMES]")]
    faults: Vec<Fault>,
    /// Flip a bit in this share of the bytes, both directions (0 to 1).
    #[arg(long, value_name = "RATE")]
    corrupt: Option<f64>,
    /// Hold every write back this many milliseconds (a slow terminal).
    #[arg(long, value_name = "MS")]
    delay: Option<u64>,
    /// Seed of the byte damage.
    #[arg(long)]
    seed: Option<u64>,
    /// A person presents the cards: each payment waits for a line on standard input (approve,
    /// decline:51, pin, wrong-pin, removed, no-card, partial:50, offline, or their first
    /// letters).
    #[arg(long)]
    interactive: bool,
    /// The protocol to speak: `native` (posbridge's own: pairing, secure channel, signed
    /// results) or `zvt` (the German ECR protocol, plain APDUs on TCP — use --tcp
    /// 127.0.0.1:20007 — or DLE/STX frames on --serial/--pty; faults drop the register's
    /// connection; no pairing, TLS only with --tls).
    /// `nexo` speaks nexo Sale-to-POI as Adyen's Terminal API does: HTTPS `POST /nexo` on --tcp
    /// (use 127.0.0.1:8443), a certificate for `<POIID>.test.terminal.adyen.com` signed by a
    /// root made at start (written by --nexo-ca-out), messages encrypted under the shared key
    /// whose passphrase comes from $POSBRIDGE_SIM_NEXO_PASSPHRASE or --nexo-passphrase-file.
    #[arg(long, default_value = "native", value_parser = ["native", "zvt", "nexo"])]
    protocol: String,
    /// nexo: the terminal's POIID (default `P400Plus-` and nine digits of its terminal id).
    #[arg(long, value_name = "POIID")]
    nexo_poi_id: Option<String>,
    /// nexo: the shared key's identifier.
    #[arg(long, value_name = "ID", default_value = "posbridge")]
    nexo_key_id: String,
    /// nexo: the shared key's version.
    #[arg(long, value_name = "N", default_value_t = 1)]
    nexo_key_version: u32,
    /// nexo: a file (owner-only) holding the shared key's passphrase. Without it and without
    /// $POSBRIDGE_SIM_NEXO_PASSPHRASE messages travel unencrypted, as test terminals allow.
    #[arg(long, value_name = "FILE")]
    nexo_passphrase_file: Option<std::path::PathBuf>,
    /// nexo: write the certificate authority that signed the terminal's certificate here (PEM),
    /// for tills to trust.
    #[arg(long, value_name = "FILE")]
    nexo_ca_out: Option<std::path::PathBuf>,
    /// nexo: plain HTTP instead of HTTPS (test setups only).
    #[arg(long)]
    plain_http: bool,
    /// Set by the simulator itself when it restarts after a reboot fault.
    #[arg(long, hide = true)]
    rebooted: bool,
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
            TerminalEvent::PairingCode(code) => {
                println!("pairing code: {code} (a new code: the last one's attempts were used up)")
            }
            // The name as paired: the hello's own name is the client's to choose.
            TerminalEvent::Connected { hello, client } => println!(
                "connected: {} ({}){}",
                client.peer.name,
                client.peer.id,
                hello
                    .app_version
                    .as_deref()
                    .map(|v| format!(", {v}"))
                    .unwrap_or_default()
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

/// A link whose terminal can go silent (a dead peer that keeps the connection).
struct Silenceable<L> {
    inner: L,
    silent: Arc<AtomicBool>,
}

impl<L: Link> Link for Silenceable<L> {
    fn info(&self) -> &LinkInfo {
        self.inner.info()
    }
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        if self.silent.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(buf.len()));
        }
        self.inner.poll_send(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if self.silent.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_flush(cx)
    }
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        if self.silent.load(Ordering::Relaxed) {
            // Hears nothing, says nothing, never lets go.
            return Poll::Pending;
        }
        self.inner.poll_recv(cx, buf)
    }
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if self.silent.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        self.inner.poll_close(cx)
    }
}

type Switches = Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>;

/// Everything one connection needs.
#[derive(Clone)]
struct Server {
    context: TerminalContext,
    app: SharedApp<Persisting<Simulator>>,
    switches: Switches,
    link_faults: FaultConfig,
}

impl Server {
    async fn serve(&self, link: impl Link) {
        let session = TerminalSession::new(
            SessionConfig::default(),
            self.context.clone(),
            driver::now(),
        );
        let silent = Arc::new(AtomicBool::new(false));
        self.switches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session.id(), silent.clone());
        let id = session.id();
        let mut link = Silenceable {
            inner: FaultInjector::new(link, self.link_faults.clone()),
            silent,
        };
        let mut app = self.app.clone();
        driver::serve_terminal(session, &mut link, &mut app).await;
        let stats = link.inner.stats();
        if stats.flipped > 0 || stats.dropped > 0 {
            println!(
                "link damage on that connection: {} bytes flipped, {} dropped",
                stats.flipped, stats.dropped
            );
        }
        self.switches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Serves session after session on one serial line, until the line fails.
    async fn serve_line(&self, link: impl Link) -> LinkError {
        let silent = Arc::new(AtomicBool::new(false));
        let line = Silenceable {
            inner: FaultInjector::new(link, self.link_faults.clone()),
            silent: silent.clone(),
        };
        let (context, switches) = (self.context.clone(), self.switches.clone());
        let mut app = self.app.clone();
        driver::serve_terminal_line(
            line,
            move || {
                let session =
                    TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
                switches
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(session.id(), silent.clone());
                session
            },
            &mut app,
        )
        .await
    }
}

/// Starts this program again in place, with its state (a reboot fault).
fn reboot() -> ! {
    println!("posbridge-sim: rebooting (fault)");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let args: Vec<_> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--rebooted")
        .collect();
    let err = match std::env::current_exe() {
        Ok(exe) => {
            use std::os::unix::process::CommandExt;
            std::process::Command::new(exe)
                .args(args)
                .arg("--rebooted")
                .exec()
        }
        Err(e) => e,
    };
    eprintln!("posbridge-sim: could not restart: {err}");
    std::process::exit(75);
}

fn card_shortcut(line: &str) -> Result<CardBehaviour, posbridge_sim::ScenarioError> {
    let line = line.trim();
    let full = match line {
        "a" => "approve",
        "d" => "decline:51",
        "p" => "pin",
        "w" => "wrong-pin",
        "r" => "removed",
        "n" => "no-card",
        "o" => "offline",
        other => other,
    };
    posbridge_sim::parse_card(full)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_toml(
            &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?,
        None => Scenario::default(),
    };
    let mut profile = scenario.profile.clone();
    if args.fast {
        profile.latency = Latency::INSTANT;
    }
    if let Some(hex) = &args.update_key {
        let key: posbridge_crypto::PublicKey =
            hex.parse().map_err(|e| format!("--update-key: {e}"))?;
        profile.device.update_key = Some(key);
    }
    let mut faults = scenario.faults.clone();
    faults.extend(args.faults.iter().copied());
    if args.rebooted {
        // Back from a reboot: the fault has done its work; the terminal now behaves.
        faults.clear();
        println!("posbridge-sim: restarted after a reboot, state restored");
    }
    if faults.iter().any(|f| f.action == FaultAction::Reboot)
        && (args.keys.is_none() || args.state.is_none())
    {
        return Err(
            "a reboot fault needs --keys and --state (the terminal restarts from them)".into(),
        );
    }
    let corrupt = args.corrupt.unwrap_or(scenario.link.corrupt);
    if !(0.0..=1.0).contains(&corrupt) {
        return Err(format!("--corrupt {corrupt}: a probability, 0 to 1").into());
    }
    let delay = args
        .delay
        .map_or(scenario.link.delay, Duration::from_millis);
    let link_faults = FaultConfig {
        seed: args.seed.unwrap_or(scenario.link.seed),
        send: Faults {
            flip: corrupt,
            delay,
            ..Faults::default()
        },
        recv: Faults {
            flip: corrupt,
            ..Faults::default()
        },
        ..FaultConfig::default()
    };
    let (identity, registry, store) = match &args.keys {
        Some(dir) => {
            // A terminal with keys of its own has an id of its own: made with its identity (at
            // random) and kept with it, so two simulators never report the same terminal.
            let store = PairingStore::new(FileKeyStore::open(dir)?);
            let identity = store.identity_or_generate(PeerId::random()?, "posbridge-sim")?;
            profile.terminal_id = identity.id().into();
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
    let mut sim = Simulator::new(profile.clone(), identity.clone(), driver::now(), wall());
    let mut context = sim.context(registry, 100_000);
    if let Some(dir) = &args.state {
        posbridge_crypto::owner_only::create_dir(dir)?;
        let store = posbridge_sim::FileResultStore::open(dir.join("results.log"), 100_000)?;
        context.results = Arc::new(Mutex::new(store));
        sim = sim.with_batch_log(dir.join("batch.log"))?;
        if sim.transactions().count() > 0 {
            println!(
                "batch {} restored: {} transactions",
                sim.batch_number(),
                sim.transactions().count()
            );
        }
    }
    for card in &scenario.cards {
        sim.present(*card);
    }
    if args.protocol == "nexo" {
        return run_nexo(&args, &profile, sim, faults).await;
    }
    if args.protocol == "zvt" {
        // The terminal's record of what it charged, durable under --state as in native mode.
        let results = args.state.is_some().then(|| context.results.clone());
        return run_zvt(&args, &profile, sim, faults, results).await;
    }
    sim.set_manual_cards(args.interactive);
    for (origin, name, pin) in operators(args.operators_file.as_deref())? {
        context
            .operators
            .lock()
            .map_err(|_| "operator table poisoned")?
            .add_pin(&name, &pin)
            .map_err(|e| format!("{origin}: operator {name}: {e}"))?;
    }
    if args.pair && !args.rebooted {
        let mut config = PairingConfig::default();
        config.set_window(Duration::from_secs(args.pairing_window));
        let mut registry = context.registry.lock().map_err(|_| "registry poisoned")?;
        if let Some(hex) = &args.replace_pairing {
            let id = Some(hex)
                .filter(|h| h.len() == 32)
                .and_then(|h| u128::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("--replace-pairing {hex:?}: a device id is 32 hex digits")
                })?;
            registry.allow_replacing(PeerId(id.to_be_bytes()));
            println!("this pairing may replace the pairing of {hex}");
        }
        let code = registry.open_window(config, driver::now())?.to_string();
        println!("pairing code: {code} (for {} s)", args.pairing_window);
    }
    for f in &faults {
        println!("fault: {}:{} ({} times)", f.action, f.at, f.times);
    }
    let switches: Switches = Arc::default();
    let handler_switches = switches.clone();
    sim.set_faults(faults);
    sim.set_fault_handler(Box::new(move |session, action| match action {
        FaultAction::Silence => {
            println!("fault: terminal goes silent");
            if let Some(s) = handler_switches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&session)
            {
                s.store(true, Ordering::Relaxed);
            }
        }
        FaultAction::Reboot => reboot(),
        FaultAction::Drop => {}
    }));
    let admin = Admin {
        registry: context.registry.clone(),
        store: store.clone(),
    };
    let app = SharedApp::new(Persisting { app: sim, store });
    if args.interactive {
        println!(
            "interactive: when a payment waits for a card, type one: approve, decline:51, pin, wrong-pin, removed, no-card, partial:50, offline (or a, d, p, w, r, n, o)"
        );
    }
    {
        // Standard input: the terminal's own keypad — `pairings`, `revoke DEVICE_ID`, and with
        // --interactive the card a person presents.
        let app = app.clone();
        let admin = admin.clone();
        let interactive = args.interactive;
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if admin.command(line) {
                    continue;
                }
                if !interactive {
                    println!("commands: pairings, revoke DEVICE_ID");
                    continue;
                }
                match card_shortcut(line) {
                    Ok(card) => {
                        app.lock().app.present(card);
                        println!("card presented: {card:?}");
                    }
                    Err(e) => println!("{e}"),
                }
            }
        });
    }
    #[cfg(unix)]
    {
        // SIGHUP: read the pairings from --keys again; one whose file was deleted is revoked, and
        // its open sessions close.
        let admin = admin.clone();
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                admin.reload();
            }
        });
    }
    let server = Server {
        context,
        app,
        switches,
        link_faults,
    };
    let banner = |what: &str| {
        println!(
            "posbridge-sim {} listening on {what} (terminal {}, signing key {})",
            env!("CARGO_PKG_VERSION"),
            profile.terminal_id,
            identity.signing().public_key()
        )
    };
    if args.serial.is_some() || args.pty {
        let (line, _slave) = open_line(&args, posbridge_serial::StopBits::One)?;
        banner(line.info().address.as_deref().unwrap_or("serial"));
        tokio::select! {
            e = server.serve_line(line) => return Err(format!("the serial line failed: {e}").into()),
            _ = tokio::signal::ctrl_c() => {
                println!("posbridge-sim: stopping");
                return Ok(());
            }
        }
    }
    let listener = listen(&args).await?;
    banner(&listener.local_addr()?.to_string());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(link) => {
                    let server = server.clone();
                    tokio::spawn(async move { server.serve(link).await });
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

/// The serial line to serve: --serial's port at --baud with `stop_bits`, or a new
/// pseudo-terminal whose path is printed (its other end is returned, kept open so the line stays
/// up while tills open and close it).
fn open_line(
    args: &Args,
    stop_bits: posbridge_serial::StopBits,
) -> Result<(SerialLink, Option<SerialLink>), Box<dyn std::error::Error>> {
    Ok(match &args.serial {
        Some(path) => {
            let config = SerialConfig {
                baud: args.baud,
                stop_bits,
                ..SerialConfig::default()
            };
            (posbridge_serial::open(path, &config)?, None)
        }
        None => {
            let (master, slave) = posbridge_serial::pty_pair()?;
            let path = slave.port_path().ok_or("the pseudo-terminal has no path")?;
            println!("serial port: {path}");
            (master, Some(slave))
        }
    })
}

/// Listens on --tcp's address: plain, or TLS with a new self-signed certificate whose pin is
/// printed.
async fn listen(args: &Args) -> Result<posbridge_tcp::Listener, Box<dyn std::error::Error>> {
    Ok(if args.tls {
        let cert =
            rcgen::generate_simple_self_signed(vec!["posbridge-sim".into(), "localhost".into()])?;
        let der = cert.cert.der().to_vec();
        let tls = TlsServerConfig::new(
            vec![der.clone()],
            cert.signing_key.serialize_der(),
            TlsVersions::Tls12AndTls13,
        );
        println!(
            "TLS certificate pin (SHA-256): {}",
            Fingerprint::of_der(&der)
        );
        posbridge_tcp::Listener::bind_tls(&args.tcp, &tls).await?
    } else {
        posbridge_tcp::Listener::bind(&args.tcp).await?
    })
}

/// The ZVT mode: the simulator behind an in-process native connection, a ZVT terminal role in
/// front.
async fn run_zvt(
    args: &Args,
    profile: &posbridge_sim::TerminalProfile,
    sim: Simulator,
    faults: Vec<Fault>,
    results: Option<posbridge_session::SharedResults>,
) -> Result<(), Box<dyn std::error::Error>> {
    use posbridge_zvt::server::ServerConfig;
    use posbridge_zvt::transport::{Framing, ZvtLink};
    if args.interactive || args.pair || args.corrupt.is_some() || args.delay.is_some() {
        return Err(
            "--interactive, --pair, --corrupt and --delay are for the native protocol, not --protocol zvt"
                .into(),
        );
    }
    // ZVT terminal ids have 8 digits.
    let tid = (u128::from_be_bytes(*profile.terminal_id.as_bytes()) % 100_000_000) as u32;
    let backend = posbridge_sim::zvt::in_process_with(sim, results).await?;
    let mut server = posbridge_sim::zvt::server(
        backend,
        tid,
        faults,
        ServerConfig {
            render: posbridge_sim::render,
            ..ServerConfig::default()
        },
    )?;
    if let Some(dir) = &args.state {
        // Its last transaction and the batch's receipt numbers survive a restart, as on a real
        // terminal.
        let (ledger, hook) = posbridge_sim::zvt::ledger_log(&dir.join("zvt-ledger.log"))?;
        server = server.with_ledger(ledger, hook);
    }
    let server = Arc::new(server);
    if args.serial.is_some() || args.pty {
        let (line, _slave) = open_line(args, posbridge_serial::StopBits::Two)?;
        println!(
            "posbridge-sim {} (ZVT, terminal id {tid:08}) on {}",
            env!("CARGO_PKG_VERSION"),
            line.info().address.as_deref().unwrap_or("serial")
        );
        tokio::select! {
            r = server.serve(ZvtLink::new(line, Framing::Serial)) => {
                return r.map_err(|e| format!("the serial line failed: {e}").into());
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
    let listener = listen(args).await?;
    println!(
        "posbridge-sim {} (ZVT, terminal id {tid:08}) listening on {}",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr()?
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(link) => {
                    let server = server.clone();
                    tokio::spawn(async move {
                        match server.serve(ZvtLink::new(link, Framing::Tcp)).await {
                            Ok(()) => println!("register disconnected"),
                            Err(e) => println!("connection ended: {e}"),
                        }
                    });
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

/// The variable that may hold the nexo shared key's passphrase.
const NEXO_PASSPHRASE_VARIABLE: &str = "POSBRIDGE_SIM_NEXO_PASSPHRASE";

/// The nexo mode: the simulator behind an in-process native connection, a nexo terminal role in
/// front, over HTTPS.
async fn run_nexo(
    args: &Args,
    profile: &posbridge_sim::TerminalProfile,
    sim: Simulator,
    faults: Vec<Fault>,
) -> Result<(), Box<dyn std::error::Error>> {
    use posbridge_nexo::security::SecurityKey;
    if args.interactive || args.pair || args.corrupt.is_some() || args.delay.is_some() || args.tls {
        return Err("--interactive, --pair, --corrupt, --delay and --tls are for the native protocol (nexo is HTTPS unless --plain-http)".into());
    }
    let passphrase = match (
        &args.nexo_passphrase_file,
        std::env::var(NEXO_PASSPHRASE_VARIABLE),
    ) {
        (Some(file), _) => {
            let text = read_private(file, "--nexo-passphrase-file", "the passphrase")?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, Ok(p)) if !p.is_empty() => Some(p),
        _ => None,
    };
    let key = passphrase.as_ref().map(|p| {
        SecurityKey::derive(
            args.nexo_key_id.clone(),
            args.nexo_key_version,
            p.as_bytes(),
        )
    });
    let poi_id = args
        .nexo_poi_id
        .clone()
        .unwrap_or_else(|| posbridge_sim::nexo::poi_id(profile));
    let backend = posbridge_sim::backend::in_process(sim).await?;
    let server = posbridge_sim::nexo::server(backend, &poi_id, key.clone(), &faults)?;
    let listener = tokio::net::TcpListener::bind(&args.tcp).await?;
    let tls = if args.plain_http {
        None
    } else {
        let certs = posbridge_sim::nexo::certificates(&poi_id)?;
        if let Some(out) = &args.nexo_ca_out {
            std::fs::write(out, &certs.ca_pem).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        println!(
            "TLS certificate for {} (SHA-256 pin {})",
            posbridge_nexo::https::adyen_certificate_name(&poi_id, false),
            Fingerprint::of_der(&certs.leaf_der)
        );
        Some(certs.server_config())
    };
    println!(
        "posbridge-sim {} (nexo, POIID {poi_id}, {}) listening on {}://{}/nexo",
        env!("CARGO_PKG_VERSION"),
        match &key {
            Some(k) => format!("key {} version {}", k.identifier(), k.version()),
            None => "unencrypted messages".into(),
        },
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    tokio::select! {
        r = posbridge_nexo::https::serve(listener, tls, server) => {
            r.map_err(|e| format!("the listener failed: {e}").into())
        }
        _ = tokio::signal::ctrl_c() => {
            println!("posbridge-sim: stopping");
            Ok(())
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

/// The text of a file of secrets, refused when other users may read it (`what` says what it
/// holds, for the message).
fn read_private(
    path: &std::path::Path,
    option: &str,
    what: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{option} {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{option} {}: readable by other users (mode {:o}); {what} may be stolen. Fix \
                 with `chmod go-rwx {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )
            .into());
        }
    }
    let _ = what;
    Ok(text)
}

/// The variable that may list the operators, as NAME:PIN[,NAME:PIN…].
const OPERATORS_VARIABLE: &str = "POSBRIDGE_SIM_OPERATORS";

/// An operator as given: where (for messages), name, PIN.
type GivenOperator = (String, String, String);

/// The operators from `file` and from the environment.
fn operators(
    file: Option<&std::path::Path>,
) -> Result<Vec<GivenOperator>, Box<dyn std::error::Error>> {
    let mut found = Vec::new();
    let mut take = |origin: String, entry: &str| -> Result<(), Box<dyn std::error::Error>> {
        let (name, pin) = entry
            .split_once(':')
            .ok_or_else(|| format!("{origin}: expected NAME:PIN"))?;
        found.push((origin, name.trim().to_string(), pin.trim().to_string()));
        Ok(())
    };
    if let Some(path) = file {
        let text = read_private(path, "--operators-file", "its PINs")?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                take(format!("{} line {}", path.display(), i + 1), line)?;
            }
        }
    }
    match std::env::var(OPERATORS_VARIABLE) {
        Ok(list) => {
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                take(format!("${OPERATORS_VARIABLE}"), entry)?;
            }
        }
        Err(std::env::VarError::NotPresent) => {}
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(format!("${OPERATORS_VARIABLE} is not text").into());
        }
    }
    Ok(found)
}

/// The terminal's pairing administration while it runs: list, revoke (open sessions of a
/// revoked device close within a second), and reload from the key store.
#[derive(Clone)]
struct Admin {
    registry: Arc<Mutex<PairingRegistry>>,
    store: Option<Arc<PairingStore<FileKeyStore>>>,
}

impl Admin {
    /// Runs `line` if it is an admin command; returns whether it was.
    fn command(&self, line: &str) -> bool {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("pairings"), None) => {
                let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
                let mut records: Vec<_> = registry.records().collect();
                records.sort_by_key(|r| r.paired_at.0);
                println!("pairings: {}", records.len());
                for r in records {
                    println!(
                        "pairing: {} {} (paired at {} ms)",
                        r.peer.id, r.peer.name, r.paired_at.0
                    );
                }
                true
            }
            (Some("revoke"), Some(id)) => {
                match parse_device(id) {
                    Some(peer) => self.revoke(peer),
                    None => println!("revoke: a device id is 32 hex digits"),
                }
                true
            }
            _ => false,
        }
    }

    fn revoke(&self, peer: PeerId) {
        let removed = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .revoke(&peer);
        if let Some(store) = &self.store
            && let Err(e) = store.revoke(&peer)
        {
            eprintln!("posbridge-sim: could not delete the pairing of {peer}: {e}");
        }
        if removed {
            println!("revoked: {peer} (its open sessions close)");
        } else {
            println!("revoke: {peer} is not paired");
        }
    }

    /// Revokes every pairing whose record is gone from the key store.
    fn reload(&self) {
        let Some(store) = &self.store else {
            println!("reload: no --keys, nothing to read");
            return;
        };
        let kept = match store.records() {
            Ok(records) => records.into_iter().map(|r| r.peer.id).collect::<Vec<_>>(),
            Err(e) => return eprintln!("posbridge-sim: could not read the pairings: {e}"),
        };
        let gone: Vec<PeerId> = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records()
            .map(|r| r.peer.id)
            .filter(|id| !kept.contains(id))
            .collect();
        for peer in &gone {
            self.revoke(*peer);
        }
        println!(
            "reloaded pairings: {} kept, {} revoked",
            kept.len(),
            gone.len()
        );
    }
}

/// A device id: 32 hex digits.
fn parse_device(hex: &str) -> Option<PeerId> {
    Some(hex)
        .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u128::from_str_radix(h, 16).ok())
        .map(|id| PeerId(id.to_be_bytes()))
}
