//! The `posbridge-sim` binary's other modes, each through the real client SDK: TLS with a pinned
//! self-signed certificate, a pseudo-terminal it creates, a scenario file, faults (silence,
//! reboot with the batch restored), and a person presenting cards on standard input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, MemoryJournal};
use posbridge::{ConnectOptions, NativeAdapter, NativeClient, Payments};
use posbridge_crypto::{LocalIdentity, PairingRecord, PairingSecret, PeerId};
use posbridge_link::Link;
use posbridge_session::harness::hello;
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_tcp::{Fingerprint, ServerVerification, TcpConfig, TlsClientConfig, TlsVersions};
use posbridge_wire::{
    Amount, Currency, DeclineReason, IdempotencyKey, Message, Outcome, TransactionCommand,
};

const CALL: Duration = Duration::from_secs(60);

struct Sim {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("posbridge-sim starts");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `pattern`; returns what follows it.
    fn wait_for(&mut self, pattern: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {pattern:?} in {:#?}", self.seen));
            self.seen.push(line.clone());
            if let Some(i) = line.find(pattern) {
                return line[i + pattern.len()..].trim().to_string();
            }
        }
    }

    fn address(&mut self) -> String {
        self.wait_for("listening on ")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

fn till() -> Arc<LocalIdentity> {
    Arc::new(LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap())
}

fn options(identity: Arc<LocalIdentity>, security: ClientSecurity) -> ConnectOptions {
    let mut session = SessionConfig::default();
    session.set_heartbeat(Duration::from_secs(1));
    ConnectOptions {
        session,
        identity,
        security,
        hello: hello(),
        timeout: Duration::from_secs(20),
    }
}

async fn tcp(address: &str) -> posbridge_tcp::TcpLink {
    posbridge_tcp::connect(address, &TcpConfig::default())
        .await
        .unwrap()
}

fn sale(minor: u64) -> TransactionCommand {
    TransactionCommand::Sale {
        amount: Amount::new(minor, Currency::EUR),
        tip: None,
        cashback: None,
    }
}

fn pair_code(sim: &mut Sim) -> PairingSecret {
    let code = sim.wait_for("pairing code: ");
    PairingSecret::code(&code[..6]).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("posbridge-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn tls_with_the_printed_pin() {
    let mut sim = Sim::start(&["--tcp", "127.0.0.1:0", "--tls", "--pair", "--fast"]);
    let secret = pair_code(&mut sim);
    let pin: Fingerprint = sim
        .wait_for("TLS certificate pin (SHA-256): ")
        .parse()
        .unwrap();
    let address = sim.address();
    let mut config = TcpConfig::default();
    config.set_tls(Some(
        TlsClientConfig::new(
            "posbridge-sim",
            ServerVerification::Pinned(vec![pin]),
            TlsVersions::Tls13Only,
        )
        .unwrap(),
    ));
    let link = posbridge_tcp::connect(&address, &config).await.unwrap();
    assert_eq!(link.info().kind, posbridge_link::LinkKind::Tls);
    let client = NativeClient::connect(link, options(till(), ClientSecurity::Pair(secret)))
        .await
        .unwrap();
    let r = client
        .sale(
            IdempotencyKey::from_u128(1),
            Amount::new(700, Currency::EUR),
            CALL,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    client.close().await;

    // A wrong pin is refused before anything is said.
    let mut wrong = TcpConfig::default();
    wrong.set_tls(Some(
        TlsClientConfig::new(
            "posbridge-sim",
            ServerVerification::Pinned(vec![Fingerprint([7; 32])]),
            TlsVersions::Tls13Only,
        )
        .unwrap(),
    ));
    assert!(posbridge_tcp::connect(&address, &wrong).await.is_err());
}

#[tokio::test]
async fn a_pseudo_terminal_it_creates_two_tills_one_after_the_other() {
    let mut sim = Sim::start(&["--pty", "--pair", "--fast"]);
    let secret = pair_code(&mut sim);
    let path = sim.wait_for("serial port: ");
    assert!(path.starts_with("/dev/"), "{path}");
    let identity = till();
    let port = posbridge_serial::open(&path, &posbridge_serial::SerialConfig::default()).unwrap();
    let client = NativeClient::connect(
        port,
        options(identity.clone(), ClientSecurity::Pair(secret)),
    )
    .await
    .expect("pair over the pseudo-terminal");
    let record: PairingRecord = client.paired().cloned().unwrap();
    let key = IdempotencyKey::from_u128(10);
    let r = client
        .sale(key, Amount::new(1999, Currency::EUR), CALL)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    client.close().await;

    // The line stays up: the next session on it uses the stored key.
    let port = posbridge_serial::open(&path, &posbridge_serial::SerialConfig::default()).unwrap();
    let client = NativeClient::connect(
        port,
        options(
            identity,
            ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
        ),
    )
    .await
    .expect("a second session on the same line");
    let status = client.status(key, CALL).await.unwrap();
    assert!(format!("{status:?}").contains("Approved"), "{status:?}");
    client.close().await;
}

#[tokio::test]
async fn a_scenario_file_sets_profile_cards_and_faults() {
    let dir = temp("scenario");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cafe.toml");
    std::fs::write(
        &file,
        r#"
cards = ["decline:51", "wrong-pin"]

[terminal]
merchant_name = "Café am Markt"
currencies = ["EUR", "CHF"]
methods = ["contactless"]

[latency]
card = 10
read = 10
pin = 10
online = 10
"#,
    )
    .unwrap();
    let mut sim = Sim::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--pair",
        "--scenario",
        file.to_str().unwrap(),
    ]);
    let secret = pair_code(&mut sim);
    let address = sim.address();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(till(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    assert!(client.capabilities().currencies.contains(&Currency::CHF));
    let outcomes: Vec<Outcome> = {
        let mut v = Vec::new();
        for i in 0..3u128 {
            let r = client
                .sale(
                    IdempotencyKey::from_u128(20 + i),
                    Amount::new(1000, Currency::EUR),
                    CALL,
                )
                .await
                .unwrap();
            v.push(r.outcome);
        }
        v
    };
    assert_eq!(
        outcomes,
        vec![
            Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
            Outcome::Declined(DeclineReason::WRONG_PIN),
            Outcome::Approved,
        ]
    );
    client.close().await;
    // A bad scenario is refused with the reason.
    std::fs::write(&file, "cards = [\"teleport\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
        .args(["--scenario", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("teleport"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn silence_then_recovery_on_a_new_connection() {
    let mut sim = Sim::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--pair",
        "--fast",
        "--fault",
        "silence:after-card-read",
    ]);
    let secret = pair_code(&mut sim);
    let address = sim.address();
    let identity = till();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(identity.clone(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    let record = client.paired().cloned().unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        MemoryJournal::new(),
    );
    let key = IdempotencyKey::from_u128(30);
    // The terminal stops answering but keeps the connection: the client's heartbeat gives up.
    let first = payments.transaction(key, sale(4200), CALL).await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(
        payments.journal().get(&key).unwrap().unwrap().state,
        EntryState::InDoubt
    );
    let (_, journal) = payments.into_parts();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(
            identity,
            ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
        ),
    )
    .await
    .unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        journal,
    );
    payments.recover(CALL).await.unwrap();
    let entry = payments.journal().get(&key).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(entry.result.unwrap().outcome, Outcome::Approved);
}

#[tokio::test]
async fn reboot_before_the_result_then_recovery_and_the_batch_settles() {
    let (keys, state) = (temp("reboot-keys"), temp("reboot-state"));
    let operators = operators_file("reboot", 0o600);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut sim = Sim::start(&[
        "--tcp",
        &address,
        "--pair",
        "--fast",
        "--operators-file",
        operators.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--fault",
        "reboot:before-result",
    ]);
    let secret = pair_code(&mut sim);
    sim.address();
    let identity = till();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(identity.clone(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    let record = client.paired().cloned().unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        MemoryJournal::new(),
    );
    let key = IdempotencyKey::from_u128(40);
    let first = payments.transaction(key, sale(2500), CALL).await;
    assert!(first.is_err(), "{first:?}");
    sim.wait_for("rebooting");
    sim.wait_for("restarted after a reboot");
    assert!(sim.wait_for("batch 1 restored: ").starts_with('1'));
    sim.address();
    let (_, journal) = payments.into_parts();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(
            identity,
            ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
        ),
    )
    .await
    .expect("the restarted terminal still knows the pairing");
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        journal,
    );
    let report = payments.recover(CALL).await.unwrap();
    assert_eq!(report.recorded, vec![key], "{report:?}");
    let entry = payments.journal().get(&key).unwrap().unwrap();
    assert_eq!(entry.result.unwrap().outcome, Outcome::Approved);
    // The restarted terminal still has its operator (from the same file): a refund with the
    // PIN, then a settlement with it, closes the batch that holds both.
    let pin = || posbridge_wire::OperatorAuth {
        operator_id: "manager".into(),
        credential: posbridge_wire::Credential::Pin(
            posbridge_wire::OperatorSecret::new("2468").unwrap(),
        ),
    };
    let mut refund = posbridge_wire::TransactionRequest::new(
        Default::default(),
        IdempotencyKey::from_u128(42),
        TransactionCommand::Refund {
            amount: Amount::new(500, Currency::EUR),
            original: None,
        },
    );
    refund.operator = Some(pin());
    let refunded = payments.run(refund, CALL).await.unwrap();
    assert_eq!(refunded.outcome, Outcome::Approved);
    let settle = Message::Settlement(posbridge_wire::SettlementRequest {
        request_id: Default::default(),
        idempotency_key: IdempotencyKey::from_u128(41),
        operator: Some(pin()),
    });
    let answer = payments.adapter().client().request(settle, CALL).await;
    let Ok(Message::SettlementResult(report)) = answer else {
        panic!("{answer:?}");
    };
    assert!(report.status.is_ok(), "{report:?}");
    assert_eq!(
        report.totals.len(),
        2,
        "a sale total and a refund total: {report:?}"
    );
    drop(payments);
    drop(sim);
    // No file of the terminal's state holds the PIN, and every one is owner-only.
    owner_only_without(&state, b"2468");
    owner_only_without(&keys, b"2468");
    let _ = std::fs::remove_dir_all(&keys);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(&operators);
}

/// An operators file with `manager:2468`, with `mode`.
fn operators_file(name: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!(
        "posbridge-sim-operators-{name}-{}",
        std::process::id()
    ));
    std::fs::write(&path, "# who may refund\nmanager:2468\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Every file and folder under `dir` is owner-only, and no file holds `secret`.
fn owner_only_without(dir: &std::path::Path, secret: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            owner_only_without(&path, secret);
            continue;
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} holds the PIN",
            path.display()
        );
    }
}

#[test]
fn an_operators_file_others_can_read_is_refused() {
    let operators = operators_file("loose", 0o644);
    let out = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
        .args(["--tcp", "127.0.0.1:0", "--operators-file"])
        .arg(&operators)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&operators);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by other users"), "{err}");
    // A PIN on the command line is not an option at all.
    let out = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
        .args(["--tcp", "127.0.0.1:0", "--operator", "manager:2468"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_presents_the_cards() {
    let mut sim = Sim::start(&["--tcp", "127.0.0.1:0", "--pair", "--fast", "--interactive"]);
    let secret = pair_code(&mut sim);
    let address = sim.address();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(till(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    let pending = tokio::spawn(async move {
        let r = client
            .sale(
                IdempotencyKey::from_u128(50),
                Amount::new(1000, Currency::EUR),
                CALL,
            )
            .await;
        (client, r)
    });
    sim.wait_for("Sale");
    sim.type_line("teleport");
    sim.wait_for("card \"teleport\"");
    sim.type_line("w");
    let (client, r) = pending.await.unwrap();
    assert_eq!(
        r.unwrap().outcome,
        Outcome::Declined(DeclineReason::WRONG_PIN)
    );
    client.close().await;
}

#[tokio::test]
async fn damaged_and_slow_bytes_are_survived() {
    let mut sim = Sim::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--pair",
        "--fast",
        // One byte in 5,000 damaged: a 2 KB signed result with its receipts arrives whole two
        // times in three. (At 0.002, as a first version of this test had it, such a frame
        // arrives whole 2 % of the time, and every retransmission is of the whole frame: the
        // session needs minutes, which is the rate's doing, not a fault.)
        "--corrupt",
        "0.0002",
        "--delay",
        "20",
        "--seed",
        "3",
    ]);
    let secret = pair_code(&mut sim);
    let address = sim.address();
    // The default heartbeat (5 s, dead after three): the 1 s of the other tests is for
    // detecting a silent terminal quickly, and a busy machine retransmitting damaged frames
    // can stay quiet for longer than three of those.
    let mut patient = options(till(), ClientSecurity::Pair(secret));
    patient.session = SessionConfig::default();
    let client = NativeClient::connect(tcp(&address).await, patient)
        .await
        .expect("pairing through damaged bytes");
    for i in 0..5u128 {
        let r = client
            .sale(
                IdempotencyKey::from_u128(60 + i),
                Amount::new(1000, Currency::EUR),
                CALL,
            )
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Approved);
    }
    client.close().await;
    let damage = sim.wait_for("link damage on that connection: ");
    let flipped: u64 = damage.split_whitespace().next().unwrap().parse().unwrap();
    assert!(flipped > 0, "the bytes were damaged: {damage}");
    // Out of range is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_posbridge-sim"))
        .args(["--corrupt", "1.5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("probability"));
}

/// `--protocol zvt`: a ZVT register (posbridge's ZVT client) pays over TCP; a result dropped by
/// a fault is recovered from the terminal's last transaction on the next connection; the same
/// over a pseudo-terminal with ZVT's serial framing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zvt_mode_over_tcp_with_a_dropped_result_and_over_a_pty() {
    use posbridge::PaymentTerminal;
    use posbridge_zvt::client::ZvtConfig;
    use posbridge_zvt::transport::Framing;

    let mut sim = Sim::start(&[
        "--protocol",
        "zvt",
        "--fast",
        "--tcp",
        "127.0.0.1:0",
        "--fault",
        "drop:before-result",
    ]);
    let address = sim.address();
    let tcp = TcpConfig::default();
    let call = || posbridge::Call::within(Duration::from_secs(30));
    let eur = Amount::new(7_00, Currency::EUR);
    let key = IdempotencyKey::from_u128(7);

    let link = posbridge_tcp::connect(&address, &tcp).await.unwrap();
    let t = posbridge_zvt::client::connect(
        link,
        Framing::Tcp,
        ZvtConfig::default(),
        MemoryJournal::new(),
    )
    .await
    .unwrap();
    let err = t.sale(key, eur, call()).await.unwrap_err();
    assert!(matches!(err, posbridge::PaymentError::InDoubt(_)), "{err}");
    let journal = t.close().await;

    let link = posbridge_tcp::connect(&address, &tcp).await.unwrap();
    let t = posbridge_zvt::client::connect(link, Framing::Tcp, ZvtConfig::default(), journal)
        .await
        .unwrap();
    let report = t.recover(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.recorded, vec![key], "{report:?}");
    let entry = t.journal().get(&key).unwrap().unwrap();
    assert_eq!(entry.state, EntryState::Done);
    assert_eq!(entry.result.unwrap().outcome, Outcome::Approved);
    // The fault struck once: the next sale goes through.
    let next = t
        .sale(IdempotencyKey::from_u128(8), eur, call())
        .await
        .unwrap();
    assert_eq!(next.outcome, Outcome::Approved);
    drop(sim);

    let mut sim = Sim::start(&["--protocol", "zvt", "--fast", "--pty"]);
    let path = sim.wait_for("serial port: ");
    let config = posbridge_serial::SerialConfig {
        baud: 9600,
        stop_bits: posbridge_serial::StopBits::Two,
        ..posbridge_serial::SerialConfig::default()
    };
    let line = posbridge_serial::open(&path, &config).unwrap();
    let t = posbridge_zvt::client::connect(
        line,
        Framing::Serial,
        ZvtConfig::default(),
        MemoryJournal::new(),
    )
    .await
    .unwrap();
    let r = t.sale(key, eur, call()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    drop(sim);
}

/// A terminal killed and restarted within its first batch settles a batch that reconciles with
/// the journal: the batch keeps the time it opened (it used to reopen at the restart, so the
/// sale before the restart fell out of it and reconciliation said DIFFERS).
#[tokio::test]
async fn a_restart_in_the_first_batch_still_reconciles() {
    let (keys, state) = (temp("first-batch-keys"), temp("first-batch-state"));
    let operators = operators_file("first-batch", 0o600);
    let address = format!("127.0.0.1:{}", free_port());
    let args = |pair: bool| {
        let mut a = vec![
            "--tcp".to_string(),
            address.clone(),
            "--fast".into(),
            "--operators-file".into(),
            operators.to_str().unwrap().into(),
            "--keys".into(),
            keys.to_str().unwrap().into(),
            "--state".into(),
            state.to_str().unwrap().into(),
        ];
        if pair {
            a.push("--pair".into());
        }
        a
    };
    let start = |a: Vec<String>| Sim::start(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut sim = start(args(true));
    let secret = pair_code(&mut sim);
    sim.address();
    let identity = till();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(identity.clone(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    let record = client.paired().cloned().unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        MemoryJournal::new(),
    );
    payments
        .transaction(IdempotencyKey::from_u128(1), sale(100), CALL)
        .await
        .unwrap();
    let (_, journal) = payments.into_parts();
    // SIGKILL, then the same folders again.
    drop(sim);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut sim = start(args(false));
    assert!(sim.wait_for("batch 1 restored: ").starts_with('1'));
    sim.address();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(
            identity,
            ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
        ),
    )
    .await
    .unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        journal,
    );
    payments
        .transaction(IdempotencyKey::from_u128(2), sale(200), CALL)
        .await
        .unwrap();
    let settle = Message::Settlement(posbridge_wire::SettlementRequest {
        request_id: Default::default(),
        idempotency_key: IdempotencyKey::from_u128(3),
        operator: Some(posbridge_wire::OperatorAuth {
            operator_id: "manager".into(),
            credential: posbridge_wire::Credential::Pin(
                posbridge_wire::OperatorSecret::new("2468").unwrap(),
            ),
        }),
    });
    let answer = payments.adapter().client().request(settle, CALL).await;
    let Ok(Message::SettlementResult(report)) = answer else {
        panic!("{answer:?}");
    };
    let entries = payments
        .journal()
        .query(&posbridge::journal::Query::default())
        .unwrap();
    let reconciliation = posbridge::reconcile(&entries, &report, Some(&record.peer.signing_key));
    assert!(reconciliation.is_clean(), "{reconciliation:?}");
    assert_eq!(
        report
            .totals
            .iter()
            .map(|t| (t.count, t.amount))
            .collect::<Vec<_>>(),
        vec![(2, 300)]
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(&keys);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(&operators);
}

/// Pairings are listed and revoked while the terminal runs (standard input, or SIGHUP after a
/// pairing file was deleted): the revoked till's open session closes, no sale goes through it,
/// and it cannot connect again.
#[tokio::test]
async fn a_pairing_revoked_while_the_terminal_runs_ends_its_session() {
    let keys = temp("revoke-keys");
    let address = format!("127.0.0.1:{}", free_port());
    let mut sim = Sim::start(&[
        "--tcp",
        &address,
        "--pair",
        "--fast",
        "--keys",
        keys.to_str().unwrap(),
    ]);
    let secret = pair_code(&mut sim);
    sim.address();
    let identity = till();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(identity.clone(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    let record = client.paired().cloned().unwrap();
    let payments = Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        MemoryJournal::new(),
    );
    payments
        .transaction(IdempotencyKey::from_u128(1), sale(100), CALL)
        .await
        .unwrap();
    sim.type_line("pairings");
    assert!(sim.wait_for("pairings: ").starts_with('1'));
    let listed = sim.wait_for("pairing: ");
    assert!(listed.starts_with(&identity.id().to_string()), "{listed}");
    sim.type_line(&format!("revoke {}", identity.id()));
    sim.wait_for("revoked: ");
    // The open session is closed: the next sale never reaches the terminal.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = payments
        .transaction(IdempotencyKey::from_u128(2), sale(200), CALL)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let again = NativeClient::connect(
        tcp(&address).await,
        options(
            identity.clone(),
            ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
        ),
    )
    .await;
    assert!(again.is_err(), "a revoked till cannot connect again");
    // Its pairing file is gone too: a restart would not bring it back.
    assert!(
        !std::fs::read_dir(&keys).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("pairing-")),
        "the pairing file is deleted"
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(&keys);
}

#[tokio::test]
async fn sighup_revokes_a_pairing_whose_file_was_deleted() {
    let keys = temp("hup-keys");
    let address = format!("127.0.0.1:{}", free_port());
    let mut sim = Sim::start(&[
        "--tcp",
        &address,
        "--pair",
        "--fast",
        "--keys",
        keys.to_str().unwrap(),
    ]);
    let secret = pair_code(&mut sim);
    sim.address();
    let client = NativeClient::connect(
        tcp(&address).await,
        options(till(), ClientSecurity::Pair(secret)),
    )
    .await
    .unwrap();
    sim.wait_for("paired with");
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pairing-")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let status = Command::new("kill")
        .args(["-HUP", &sim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        sim.wait_for("reloaded pairings: ")
            .starts_with("0 kept, 1 revoked"),
        "{:?}",
        sim.seen
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        client
            .request(
                Message::LastTransaction(posbridge_wire::LastTransactionQuery {
                    request_id: Default::default(),
                }),
                CALL
            )
            .await
            .is_err()
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(&keys);
}

/// Each terminal with keys of its own reports a terminal id of its own, kept across restarts.
#[test]
fn each_identity_has_its_own_terminal_id() {
    let id_of = |keys: &std::path::Path| {
        let mut sim = Sim::start(&["--tcp", "127.0.0.1:0", "--keys", keys.to_str().unwrap()]);
        let banner = sim.wait_for("(terminal ");
        banner.split(',').next().unwrap().to_string()
    };
    let (a, b) = (temp("id-a"), temp("id-b"));
    let first = id_of(&a);
    assert_eq!(first.len(), 32, "{first}");
    assert_ne!(first, id_of(&b), "two terminals, two ids");
    assert_eq!(
        first,
        id_of(&a),
        "the same keys, the same id after a restart"
    );
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}
