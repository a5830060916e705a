//! `posctl demo`: a day at the till against the embedded simulator.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge::journal::{Journal, Query, SqliteJournal};
use posbridge::{
    Cart, ClientError, ConnectOptions, CustomerPrompt, NativeAdapter, NativeClient,
    PaymentTerminal, Payments, driver,
};
use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId};
use posbridge_session::{
    ClientEvent, ClientSecurity, PairingRegistry, SessionConfig, TerminalSession,
};
use posbridge_sim::{CustomerProfile, Latency, Simulator, TerminalProfile, money, render};
use posbridge_tcp::{Listener, TcpConfig};
use posbridge_wire::{
    Amount, CartLine, ClientId, Credential, Currency, CustomerQuestion, CustomerReply, Hello,
    IdempotencyKey, Message, OperatorAuth, OperatorSecret, ReceiptCopy, RequestId,
    SettlementRequest, Timestamp, TransactionCommand, TransactionRef, TransactionRequest,
    TransactionResult, TransactionStatus,
};

/// Options of `posctl demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Answer at once instead of at the pace of a person at a counter.
    #[arg(long)]
    fast: bool,
    /// The port for the simulator on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Keep the journal (SQLite) at this path; by default it goes to a temporary file that is
    /// removed at the end.
    #[arg(long)]
    journal: Option<std::path::PathBuf>,
}

const OPERATOR: &str = "manager";
const OPERATOR_PIN: &str = "2468";
const CALL: Duration = Duration::from_secs(120);

fn wall() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// A fresh idempotency key (the time in nanoseconds and a counter: unique per run).
fn key(n: u8) -> IdempotencyKey {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    IdempotencyKey::from_u128(nanos << 8 | u128::from(n))
}

fn operator() -> Result<OperatorAuth, Box<dyn std::error::Error>> {
    Ok(OperatorAuth {
        operator_id: OPERATOR.into(),
        credential: Credential::Pin(OperatorSecret::new(OPERATOR_PIN)?),
    })
}

pub(crate) async fn run(args: DemoArgs) -> ExitCode {
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(DemoError::Connect(e)) => {
            errln!("posctl demo: {e}");
            ExitCode::from(3)
        }
        Err(DemoError::Step(e)) => {
            errln!("posctl demo: {e}");
            ExitCode::from(1)
        }
    }
}

enum DemoError {
    Connect(Box<dyn std::error::Error>),
    Step(Box<dyn std::error::Error>),
}

impl<E: std::error::Error + 'static> From<E> for DemoError {
    fn from(e: E) -> Self {
        Self::Step(Box::new(e))
    }
}

fn step(e: impl Into<Box<dyn std::error::Error>>) -> DemoError {
    DemoError::Step(e.into())
}

async fn demo(args: DemoArgs) -> Result<(), DemoError> {
    // The terminal: a simulator listening on 127.0.0.1, in pairing mode, with one operator.
    let profile = TerminalProfile {
        latency: if args.fast {
            Latency::INSTANT
        } else {
            Latency {
                card: Duration::from_millis(600),
                read: Duration::from_millis(200),
                pin: Duration::from_millis(900),
                online: Duration::from_millis(400),
                card_timeout: Duration::from_secs(30),
            }
        },
        customer: CustomerProfile {
            delay: if args.fast {
                Duration::ZERO
            } else {
                Duration::from_millis(1200)
            },
            ..CustomerProfile::default()
        },
        ..TerminalProfile::default()
    };
    let terminal_keys = Arc::new(
        LocalIdentity::generate(profile.terminal_id.into(), "posbridge-sim")
            .map_err(|e| DemoError::Connect(Box::new(e)))?,
    );
    let mut sim = Simulator::new(profile.clone(), terminal_keys, driver::now(), wall());
    let context = sim.context(PairingRegistry::new(), 10_000);
    context
        .operators
        .lock()
        .map_err(|_| step("operator table poisoned"))?
        .add_pin(OPERATOR, OPERATOR_PIN)?;
    let code = context
        .registry
        .lock()
        .map_err(|_| step("pairing registry poisoned"))?
        .open_window(PairingConfig::default(), driver::now())?
        .to_string();
    let listener = Listener::bind(&format!("127.0.0.1:{}", args.port))
        .await
        .map_err(|e| DemoError::Connect(Box::new(e)))?;
    let address = listener
        .local_addr()
        .map_err(|e| DemoError::Connect(Box::new(e)))?;
    outln!("terminal simulator listening on {address}");
    outln!("terminal screen: pairing code {code}");
    let terminal_context = context.clone();
    tokio::spawn(async move {
        if let Ok(link) = listener.accept().await {
            let session =
                TerminalSession::new(SessionConfig::default(), terminal_context, driver::now());
            driver::serve_terminal(session, link, &mut sim).await;
        }
    });

    // The till: connect over TCP and pair with the code from the screen.
    let link = posbridge_tcp::connect(&address.to_string(), &TcpConfig::default())
        .await
        .map_err(|e| DemoError::Connect(Box::new(e)))?;
    let options = ConnectOptions {
        session: SessionConfig::default(),
        identity: Arc::new(
            LocalIdentity::generate(
                PeerId::random().map_err(|e| DemoError::Connect(Box::new(e)))?,
                "posctl demo till",
            )
            .map_err(|e| DemoError::Connect(Box::new(e)))?,
        ),
        security: ClientSecurity::Pair(PairingSecret::code(&code)?),
        hello: Hello {
            client_id: ClientId([0xDE; 16]),
            client_name: Some("posctl demo till".into()),
            app_version: Some(concat!("posctl ", env!("CARGO_PKG_VERSION")).into()),
            protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
            max_frame_size: None,
        },
        timeout: Duration::from_secs(30),
    };
    let client = NativeClient::connect(link, options)
        .await
        .map_err(|e: ClientError| DemoError::Connect(Box::new(e)))?;
    let record = client
        .paired()
        .cloned()
        .ok_or_else(|| step("connected without pairing"))?;
    let version = client.capabilities().selected_version;
    outln!(
        "paired with {} ({}), secure channel up, protocol {}",
        record.peer.name,
        client.capabilities().terminal_id,
        posbridge_wire::version_name(version).unwrap_or("?")
    );
    let signing_key = record.peer.signing_key;

    // The till's journal: every command is written there before it is sent.
    let (journal_path, keep_journal) = match &args.journal {
        Some(p) => (p.clone(), true),
        None => (
            std::env::temp_dir().join(format!("posctl-demo-{}.db", std::process::id())),
            false,
        ),
    };
    let journal = SqliteJournal::open(&journal_path)?;
    let payments = Payments::new(NativeAdapter::new(client, Some(signing_key)), journal);
    let client = payments.adapter().client();

    // Progress as the customer sees it.
    let mut events = client.events();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let ClientEvent::Progress { progress, .. } = event {
                outln!("    ... {:?}", progress.stage);
            }
        }
    });

    let eur = |m| Amount::new(m, Currency::EUR);
    let show = |title: &str, r: TransactionResult| -> TransactionResult {
        outln!(
            "{title}: {:?}, {} (transaction {}, signature verified, journaled)",
            r.outcome,
            money(r.approved_minor + r.tip.unwrap_or(0), r.amount.currency),
            r.transaction_id
        );
        r
    };

    // Protocol 1.1: the terminal itself, the cart on its customer display, a tip chosen there.
    if let Some(t) = payments.telemetry(CALL).await? {
        let text = crate::json::TelemetryText::of(&t);
        outln!(
            "terminal: battery {}, {}, paper {}, acquirer {}",
            text.battery,
            text.power,
            text.paper,
            text.acquirer
        );
    }
    let cart = Cart {
        lines: vec![
            CartLine {
                text: "Cappuccino".into(),
                quantity: Some(2),
                amount: 700,
            },
            CartLine {
                text: "Croissant".into(),
                quantity: None,
                amount: 250,
            },
            CartLine {
                text: "Orange juice".into(),
                quantity: None,
                amount: 300,
            },
        ],
        currency: Currency::EUR,
        total: 1250,
        message: Some("Thank you!".into()),
    };
    if payments.show_cart(&cart, CALL).await? {
        outln!(
            "\ncustomer display: 2 × Cappuccino 7.00, Croissant 2.50, Orange juice 3.00 — total {}",
            money(cart.total, Currency::EUR)
        );
    }
    let tip = match payments
        .ask_customer(&CustomerPrompt {
            prompt: "Add a tip?".into(),
            question: CustomerQuestion::Tip {
                base: cart.total,
                currency: Currency::EUR,
                presets: vec![10, 15, 20],
                custom: true,
            },
            timeout: Duration::from_secs(60),
        })
        .await?
    {
        Some(CustomerReply::Tip(t)) if t > 0 => {
            outln!(
                "the customer chose a tip of {} on the terminal",
                money(t, Currency::EUR)
            );
            Some(t)
        }
        _ => None,
    };

    outln!("\nsale of {}", money(1250, Currency::EUR));
    let sale_key = key(1);
    let sale = payments
        .transaction(
            sale_key,
            TransactionCommand::Sale {
                amount: eur(1250),
                tip,
                cashback: None,
            },
            CALL,
        )
        .await?;
    let sale = show("sale", sale);
    if let Some(receipt) = sale
        .receipts
        .iter()
        .find(|r| r.copy == ReceiptCopy::Customer)
    {
        outln!("\n{}", render(receipt));
    }

    outln!(
        "refund of {} on that sale, authorised by the {OPERATOR}'s PIN",
        money(500, Currency::EUR)
    );
    let mut refund = TransactionRequest::new(
        RequestId::default(),
        key(2),
        TransactionCommand::Refund {
            amount: eur(500),
            original: Some(TransactionRef::Id(sale.transaction_id)),
        },
    );
    refund.operator = Some(operator().map_err(DemoError::Step)?);
    show("refund", payments.run(refund, CALL).await?);

    outln!(
        "\npre-authorisation of {} (hotel check-in)",
        money(10_000, Currency::EUR)
    );
    let pre = payments
        .transaction(
            key(3),
            TransactionCommand::PreAuth {
                amount: eur(10_000),
            },
            CALL,
        )
        .await?;
    let pre = show("pre-authorisation", pre);
    outln!(
        "capture of {} plus {} tip (check-out)",
        money(8_500, Currency::EUR),
        money(500, Currency::EUR)
    );
    let capture = payments
        .transaction(
            key(4),
            TransactionCommand::Capture {
                original: TransactionRef::Id(pre.transaction_id),
                amount: eur(8_500),
                tip: Some(500),
            },
            CALL,
        )
        .await?;
    show("capture", capture);

    outln!("\nstatus of the sale by its idempotency key");
    match client.status(sale_key, CALL).await? {
        TransactionStatus::Done(r) if r.transaction_id == sale.transaction_id => {
            outln!(
                "status: done, {:?} — the terminal's record matches the till's",
                r.outcome
            )
        }
        other => return Err(step(format!("unexpected status {other:?}"))),
    }

    outln!("\nsettlement (end of day), authorised by the {OPERATOR}'s PIN");
    let settle = Message::Settlement(SettlementRequest {
        request_id: RequestId::default(),
        idempotency_key: key(5),
        operator: Some(operator().map_err(DemoError::Step)?),
    });
    let report = match client.request(settle, CALL).await? {
        Message::SettlementResult(s) => s,
        other => return Err(step(format!("unexpected answer {other:?}"))),
    };
    outln!(
        "batch {} closed, report signature verified",
        report.batch_number
    );
    let entries = payments.journal().query(&Query::default())?;
    let reconciliation = posbridge::reconcile(&entries, &report, Some(&signing_key));
    if !reconciliation
        .differences
        .contains(&posbridge::Difference::SettlementSignature)
    {
        outln!("report signature verified");
    }
    for t in &report.totals {
        let ok = reconciliation.matched.contains(t);
        outln!(
            "  {:<20} {:>3} x  {:>14}   {}",
            format!("{:?}", t.kind),
            t.count,
            money(t.amount, t.currency),
            if ok {
                "matches the journal"
            } else {
                "DIFFERS from the journal"
            }
        );
    }
    let differences = reconciliation.differences.len();
    if reconciliation.is_clean() {
        outln!("reconciled: terminal and till agree on every total");
    } else {
        for d in &reconciliation.differences {
            outln!("  difference: {d:?}");
        }
        outln!("reconciliation: {differences} difference(s)");
    }

    outln!("\nthe till's journal ({})", journal_path.display());
    for e in &entries {
        let r = e.result.as_ref();
        outln!(
            "  {:<9} {:<10} {:<20} {:>12}  {}",
            e.state.as_str(),
            format!("{:?}", e.kind()),
            r.map(|r| format!("{:?}", r.outcome)).unwrap_or_default(),
            r.map(|r| money(r.approved_minor + r.tip.unwrap_or(0), r.amount.currency))
                .unwrap_or_default(),
            r.and_then(|r| r.pan)
                .map(|p| p.to_string())
                .unwrap_or_default()
        );
    }
    let unresolved = payments.journal().unresolved()?.len();
    outln!("in doubt: {unresolved}");
    drop(payments.close().await);
    if !keep_journal {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", journal_path.display()));
        }
    }
    if differences == 0 {
        Ok(())
    } else {
        Err(step("the settlement does not reconcile"))
    }
}
