//! `pair`, `sale`, `status`, `settle` and `journal`: one terminal, one till, a journal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use posbridge::Either;
use posbridge::journal::{Journal, Query, SqliteJournal, export_csv, export_jsonl};
use posbridge::{
    Adapter, Call, ConnectOptions, NativeAdapter, NativeClient, PaymentError, PaymentTerminal,
    Payments, ProgressEvents,
};
use posbridge_crypto::PairingSecret;
use posbridge_link::Link;
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_sim::{money, render};
use posbridge_tcp::TcpConfig;
use posbridge_wire::{
    Amount, ClientId, Currency, Hello, IdempotencyKey, Message, OperatorAuth, Outcome, ReceiptCopy,
    TransactionCommand, TransactionId, TransactionRef, TransactionResult, TransactionStatus,
};
use posbridge_zvt::client::{ZvtConfig, ZvtTerminal};
use posbridge_zvt::transport::Framing;

use crate::home::{Home, TerminalProfile};

/// Exit codes (documented in `posctl --help`).
pub(crate) mod exit {
    /// The payment was approved / the command succeeded.
    pub(crate) const OK: u8 = 0;
    /// Something failed (a step, the journal, a refusal).
    pub(crate) const FAILED: u8 = 1;
    /// A bad command line: an unknown option, or a value that cannot be read (an amount, a
    /// currency, a key, an operator's name or PIN). Nothing was sent.
    pub(crate) const USAGE: u8 = 2;
    /// Could not connect.
    pub(crate) const CONNECT: u8 = 3;
    /// The payment was declined (or cancelled, or failed at the terminal): no money moved.
    pub(crate) const DECLINED: u8 = 4;
    /// The outcome is in doubt: it is journaled; run `posctl recover`.
    pub(crate) const IN_DOUBT: u8 = 5;
}

/// Options every terminal command takes.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Common {
    /// Where posctl keeps keys, pairings, the journal and config.toml.
    #[arg(long, global = true)]
    pub(crate) home: Option<PathBuf>,
    /// Which paired terminal (a profile name in config.toml; default: the default profile).
    #[arg(long, global = true)]
    pub(crate) terminal: Option<String>,
    /// Print results as JSON lines for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The terminal's protocol: `native` (a paired profile) or `zvt` (a ZVT terminal at
    /// --zvt, no pairing; its password with --zvt-password).
    #[arg(long, global = true, value_enum, default_value_t = Protocol::Native)]
    pub(crate) protocol: Protocol,
    /// With --protocol zvt: the terminal's `host:port` (ZVT listens on 20007 or 22000), or a
    /// serial port's path with --zvt-baud.
    #[arg(long = "zvt", global = true, value_name = "ADDRESS")]
    pub(crate) zvt_address: Option<String>,
    /// With --protocol zvt on a serial port: the baud rate (ZVT's default is 9600, 8N2).
    #[arg(long, global = true)]
    pub(crate) zvt_baud: Option<u32>,
    /// With --protocol zvt: the terminal's password (6 digits).
    #[arg(long, global = true, default_value_t = 0)]
    pub(crate) zvt_password: u32,
    /// With --protocol nexo: the terminal's `host:port` (Adyen terminals: port 8443).
    #[arg(long = "nexo", global = true, value_name = "ADDRESS")]
    pub(crate) nexo_address: Option<String>,
    /// With --protocol nexo: the terminal's POIID (`<model>-<serial>`, such as V400m-346403161).
    #[arg(long, global = true, value_name = "POIID")]
    pub(crate) poi_id: Option<String>,
    /// With --protocol nexo: this till's SaleID (unique among the terminal's tills).
    #[arg(long, global = true, value_name = "ID", default_value = "posctl")]
    pub(crate) sale_id: String,
    /// With --protocol nexo: the shared key's identifier (its passphrase from
    /// --nexo-passphrase-file or $POSCTL_NEXO_PASSPHRASE, never the command line).
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) nexo_key_id: Option<String>,
    /// With --protocol nexo: the shared key's version.
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    pub(crate) nexo_key_version: u32,
    /// With --protocol nexo: a file (owner-only) holding the shared key's passphrase.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) nexo_passphrase_file: Option<PathBuf>,
    /// With --protocol nexo: the root certificate(s) the terminal's certificate chains to (PEM;
    /// Adyen's terminal root), checked with the name `<POIID>.test.terminal.adyen.com`.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) nexo_ca: Option<PathBuf>,
    /// With --protocol nexo: trust the terminal certificate with this SHA-256 fingerprint
    /// instead of a root.
    #[arg(long, global = true, value_name = "FINGERPRINT")]
    pub(crate) nexo_pin: Option<String>,
    /// With --protocol nexo: the terminal is a live one (certificate name `….live.terminal.adyen.com`).
    #[arg(long, global = true)]
    pub(crate) nexo_live: bool,
    /// With --protocol nexo: plain HTTP, no TLS (test terminals only).
    #[arg(long, global = true)]
    pub(crate) plain_http: bool,
    /// The operator's PIN (for --operator): the first line of this file, `/dev/fd/N` for a
    /// descriptor, `-` for standard input. Without it: $POSCTL_OPERATOR_PIN, else a prompt.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) pin_file: Option<PathBuf>,
}

/// The protocols posctl speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// posbridge's own protocol: paired, encrypted, signed results.
    Native,
    /// ZVT, the German ECR-terminal protocol (no pairing; the terminal's password).
    Zvt,
    /// nexo Sale-to-POI as Adyen's Terminal API (HTTPS; a shared key; no pairing).
    Nexo,
}

impl Common {
    pub(crate) fn zvt(&self) -> bool {
        self.protocol == Protocol::Zvt
    }

    /// posbridge's own protocol (paired; operators authorised by PIN).
    pub(crate) fn native(&self) -> bool {
        self.protocol == Protocol::Native
    }
}

/// The currencies posctl offers a nexo terminal.
const NEXO_CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "JPY", "AUD", "CAD",
    "NZD", "SGD", "HKD",
];

/// The variable that may hold the nexo shared key's passphrase.
const NEXO_PASSPHRASE_VARIABLE: &str = "POSCTL_NEXO_PASSPHRASE";

/// The nexo client `common` describes (the transport built, not yet connected).
pub(crate) fn nexo_client(
    common: &Common,
) -> Result<posbridge_nexo::NexoClient<posbridge_nexo::https::HttpsTransport>, Failure> {
    use posbridge_nexo::https::{TerminalTrust, pem_certificates, transport_to};
    use posbridge_nexo::security::SecurityKey;
    let address = common
        .nexo_address
        .as_deref()
        .ok_or_else(|| usage("--protocol nexo needs --nexo HOST:PORT (Adyen terminals: 8443)"))?;
    let addr: std::net::SocketAddr = match address.parse() {
        Ok(a) => a,
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(address)
            .map_err(|e| usage(format!("--nexo {address}: {e}")))?
            .next()
            .ok_or_else(|| usage(format!("--nexo {address}: no address")))?,
    };
    let poi_id = common.poi_id.clone().ok_or_else(|| {
        usage("--protocol nexo needs --poi-id (the terminal's POIID, such as V400m-346403161)")
    })?;
    let trust = match (&common.nexo_ca, &common.nexo_pin, common.plain_http) {
        (_, _, true) => TerminalTrust::PlainHttp,
        (Some(file), None, false) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| usage(format!("--nexo-ca {}: {e}", file.display())))?;
            TerminalTrust::Roots(
                pem_certificates(&text)
                    .map_err(|e| usage(format!("--nexo-ca {}: {e}", file.display())))?,
            )
        }
        (None, Some(pin), false) => TerminalTrust::Pinned(vec![
            pin.parse().map_err(|e| usage(format!("--nexo-pin: {e}")))?,
        ]),
        (Some(_), Some(_), false) => return Err(usage("give --nexo-ca or --nexo-pin, not both")),
        (None, None, false) => {
            return Err(usage(
                "--protocol nexo needs the terminal's root certificate (--nexo-ca FILE) or its fingerprint (--nexo-pin), or --plain-http for a test terminal",
            ));
        }
    };
    let passphrase = match (
        &common.nexo_passphrase_file,
        std::env::var(NEXO_PASSPHRASE_VARIABLE),
    ) {
        (Some(file), _) => Some(
            crate::secret::read_private(file, "--nexo-passphrase-file")?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        (None, Ok(p)) if !p.is_empty() => Some(p),
        _ => None,
    };
    let key = match (&common.nexo_key_id, passphrase) {
        (Some(id), Some(p)) => Some(SecurityKey::derive(
            id.clone(),
            common.nexo_key_version,
            p.as_bytes(),
        )),
        (None, None) => None,
        (Some(_), None) => {
            return Err(usage(format!(
                "--nexo-key-id needs the passphrase: --nexo-passphrase-file FILE or ${NEXO_PASSPHRASE_VARIABLE}"
            )));
        }
        (None, Some(_)) => {
            return Err(usage(
                "a nexo passphrase needs --nexo-key-id (and --nexo-key-version)",
            ));
        }
    };
    let transport =
        transport_to(addr, &poi_id, common.nexo_live, trust).map_err(connect_failure)?;
    let mut config = posbridge_nexo::NexoConfig::new(common.sale_id.clone(), poi_id, key);
    // A nexo terminal does not list its currencies: posctl offers the common ones and the
    // terminal refuses what its acquirer does not take.
    config.currencies = NEXO_CURRENCIES
        .iter()
        .filter_map(|c| posbridge_nexo::amount::currency_numeric(c).ok())
        .filter_map(|n| Currency::new(n).ok())
        .collect();
    Ok(posbridge_nexo::NexoClient::new(transport, config))
}

/// The nexo terminal `common` names, with the journal: checked with a diagnosis first.
async fn connect_nexo(home: &Home, common: &Common) -> Result<NexoTill, Failure> {
    let client = nexo_client(common)?;
    client
        .diagnose(Duration::from_secs(15))
        .await
        .map_err(connect_failure)?;
    Ok(posbridge_api::Engine::new(client, home.journal()?))
}

type NexoTill = posbridge_nexo::NexoTerminal<posbridge_nexo::https::HttpsTransport, SqliteJournal>;

/// A ZVT serial line's settings: `baud`, 8 data bits, no parity, 2 stop bits.
pub(crate) fn zvt_serial(baud: u32) -> posbridge_serial::SerialConfig {
    posbridge_serial::SerialConfig {
        baud,
        stop_bits: posbridge_serial::StopBits::Two,
        ..posbridge_serial::SerialConfig::default()
    }
}

/// Registers with the ZVT terminal `common` names, with the journal.
async fn connect_zvt(home: &Home, common: &Common) -> Result<ZvtTerminal<SqliteJournal>, Failure> {
    let address = common
        .zvt_address
        .as_deref()
        .ok_or("--protocol zvt needs --zvt HOST:PORT (or a serial port with --zvt-baud)")?;
    let journal = home.journal()?;
    let (link, framing): (Box<dyn Link>, Framing) = match common.zvt_baud {
        Some(baud) => {
            let config = zvt_serial(baud);
            (
                Box::new(posbridge_serial::open(address, &config).map_err(connect_failure)?),
                Framing::Serial,
            )
        }
        None => (
            Box::new(
                posbridge_tcp::connect(address, &tcp_config(None)?)
                    .await
                    .map_err(connect_failure)?,
            ),
            Framing::Tcp,
        ),
    };
    let config = ZvtConfig {
        password: common.zvt_password,
        ..ZvtConfig::default()
    };
    posbridge_zvt::client::connect(link, framing, config, journal)
        .await
        .map_err(connect_failure)
}

/// The terminal posctl talks to, of either protocol, as one `PaymentTerminal`: the commands
/// below name no protocol; only connecting (and pairing, which ZVT has not) does.
type Terminal = Either<Payments<SqliteJournal>, Either<ZvtTerminal<SqliteJournal>, NexoTill>>;

/// Connects to the terminal `common` names, with the till's journal.
pub(crate) async fn connect_terminal(home: &Home, common: &Common) -> Result<Terminal, Failure> {
    Ok(match common.protocol {
        Protocol::Zvt => Either::Right(Either::Left(connect_zvt(home, common).await?)),
        Protocol::Nexo => Either::Right(Either::Right(connect_nexo(home, common).await?)),
        Protocol::Native => Either::Left(connect(home, common).await?.0),
    })
}

/// The journal behind `terminal`.
fn journal_of(terminal: &Terminal) -> std::sync::MutexGuard<'_, SqliteJournal> {
    match terminal {
        Either::Left(t) => t.journal(),
        Either::Right(Either::Left(t)) => t.journal(),
        Either::Right(Either::Right(t)) => t.journal(),
    }
}

/// Ends the connection in order.
pub(crate) async fn close(terminal: Terminal) {
    match terminal {
        Either::Left(t) => {
            t.close().await;
        }
        Either::Right(Either::Left(t)) => {
            t.close().await;
        }
        Either::Right(Either::Right(t)) => {
            t.close().await;
        }
    }
}

type Error = Box<dyn std::error::Error>;

pub(crate) struct Failure(pub(crate) u8, pub(crate) Error);

impl<E: Into<Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(exit::FAILED, e.into())
    }
}

fn connect_failure(e: impl Into<Error>) -> Failure {
    Failure(exit::CONNECT, e.into())
}

pub(crate) fn finish(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, e)) => {
            errln!("posctl: {e}");
            if crate::json::enabled() {
                crate::json::print(&crate::json::Failed {
                    error: crate::json::ErrorBody {
                        exit_code: code,
                        kind: match code {
                            exit::USAGE => "usage",
                            exit::CONNECT => "connect",
                            exit::DECLINED => "declined",
                            exit::IN_DOUBT => "in_doubt",
                            _ => "failed",
                        },
                        message: e.to_string(),
                        idempotency_key: e.downcast_ref::<KeyedError>().map(|k| k.key.to_string()),
                    },
                });
            }
            ExitCode::from(code)
        }
    }
}

/// A payment's error with the key it is about (for `--json`, and for the message).
#[derive(Debug)]
struct KeyedError {
    key: IdempotencyKey,
    inner: Error,
}

impl std::fmt::Display for KeyedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for KeyedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

pub(crate) fn hello() -> Hello {
    Hello {
        client_id: ClientId([0x50; 16]),
        client_name: Some("posctl".into()),
        app_version: Some(concat!("posctl ", env!("CARGO_PKG_VERSION")).into()),
        protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
        max_frame_size: None,
    }
}

/// Reads an amount of `currency` as typed (`5`, `5.0`, `12.50`; `500` JPY, `1.250` KWD) into
/// minor units, by the currency's ISO 4217 digits (`posbridge::money`).
pub(crate) fn parse_amount(text: &str, currency: Currency) -> Result<u64, Failure> {
    posbridge::money::parse_amount(text, currency).map_err(usage)
}

/// A value on the command line that cannot be read: exit code 2, nothing sent.
pub(crate) fn usage(e: impl Into<Error>) -> Failure {
    Failure(exit::USAGE, e.into())
}

pub(crate) fn parse_currency(code: &str) -> Result<Currency, Failure> {
    posbridge::money::parse_currency(code).map_err(usage)
}

fn new_key() -> Result<IdempotencyKey, Error> {
    Ok(IdempotencyKey(posbridge_crypto::PeerId::random()?.0))
}

async fn connect(
    home: &Home,
    common: &Common,
) -> Result<(Payments<SqliteJournal>, String), Failure> {
    let (name, profile, record) = home.terminal(common.terminal.as_deref())?;
    // The journal first: nothing is asked of the terminal without the till's own journal.
    let journal = home.journal()?;
    let link = open_link(
        &profile.address,
        profile.serial_baud,
        profile.tls_pin.as_deref(),
    )
    .await?;
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(home.identity()?),
            security: ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
            hello: hello(),
            timeout: Duration::from_secs(20),
        },
    )
    .await
    .map_err(connect_failure)?;
    Ok((
        Payments::new(
            NativeAdapter::new(client, Some(record.peer.signing_key)),
            journal,
        ),
        name,
    ))
}

/// The TCP settings for a terminal: TLS pinned to `pin` when given.
pub(crate) fn tcp_config(pin: Option<&str>) -> Result<TcpConfig, Failure> {
    let mut config = TcpConfig::default();
    if let Some(pin) = pin {
        let pin: posbridge::tcp::Fingerprint = pin
            .parse()
            .map_err(|_| format!("TLS pin {pin:?}: expected 32 hex bytes (colons optional)"))?;
        config.set_tls(Some(
            posbridge::tcp::TlsClientConfig::new(
                "posbridge-terminal",
                posbridge::tcp::ServerVerification::Pinned(vec![pin]),
                posbridge::tcp::TlsVersions::Tls12AndTls13,
            )
            .map_err(|e| e.to_string())?,
        ));
    }
    Ok(config)
}

/// Opens the link to a terminal: TCP to `host:port` (TLS with a pin), or the serial port at
/// `address` when a baud rate is given.
async fn open_link(
    address: &str,
    baud: Option<u32>,
    tls_pin: Option<&str>,
) -> Result<Box<dyn Link>, Failure> {
    Ok(match baud {
        Some(baud) => {
            let config = posbridge_serial::SerialConfig {
                baud,
                ..posbridge_serial::SerialConfig::default()
            };
            Box::new(posbridge_serial::open(address, &config).map_err(connect_failure)?)
        }
        None => Box::new(
            posbridge_tcp::connect(address, &tcp_config(tls_pin)?)
                .await
                .map_err(connect_failure)?,
        ),
    })
}

/// `posctl pair`.
#[derive(clap::Args, Debug)]
#[group(id = "link", required = true, multiple = false, args = ["tcp", "serial"])]
pub(crate) struct PairArgs {
    /// The terminal's address (`host:port`).
    #[arg(long)]
    tcp: Option<String>,
    /// The serial port the terminal is on (`/dev/ttyACM0`, `COM3`, a pseudo-terminal).
    #[arg(long, value_name = "PATH")]
    serial: Option<String>,
    /// The serial port's baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// With --tcp: speak TLS, and accept only the certificate with this SHA-256 fingerprint
    /// (shown by the terminal, e.g. `posbridge-sim --tls`).
    #[arg(long, value_name = "SHA256", requires = "tcp")]
    tls_pin: Option<String>,
    /// The code on the terminal's screen.
    #[arg(long)]
    code: String,
    /// The profile name to keep it under.
    #[arg(long, default_value = "default")]
    name: String,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn pair(args: PairArgs) -> Result<u8, Failure> {
    if args.common.zvt() {
        return Err("ZVT terminals are not paired: give each command --protocol zvt --zvt HOST:PORT (posctl doctor --protocol zvt checks the way)".into());
    }
    if args.common.protocol == Protocol::Nexo {
        return Err("nexo terminals are not paired: they share a key with the till; give each command --protocol nexo --nexo HOST:PORT --poi-id POIID --nexo-key-id ID (posctl doctor --protocol nexo checks the way)".into());
    }
    let home = Home::locate(args.common.home.as_deref())?;
    let secret = PairingSecret::code(&args.code)?;
    let (address, baud) = match (&args.tcp, &args.serial) {
        (Some(tcp), _) => (tcp.clone(), None),
        (None, Some(path)) => (path.clone(), Some(args.baud)),
        (None, None) => return Err("give --tcp HOST:PORT or --serial PATH".into()),
    };
    let link = open_link(&address, baud, args.tls_pin.as_deref()).await?;
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(home.identity()?),
            security: ClientSecurity::Pair(secret),
            hello: hello(),
            timeout: Duration::from_secs(60),
        },
    )
    .await
    .map_err(connect_failure)?;
    let record = client
        .paired()
        .cloned()
        .ok_or("the terminal did not pair")?;
    home.pairings()?.save(&record)?;
    let mut config = home.config()?;
    config.terminals.insert(
        args.name.clone(),
        TerminalProfile {
            address,
            serial_baud: baud,
            tls_pin: args.tls_pin.clone(),
            terminal_id: record.peer.id.to_string(),
        },
    );
    config.default.get_or_insert(args.name.clone());
    home.save_config(&config)?;
    client.close().await;
    if args.common.json {
        outln!(
            "{{\"paired\":true,\"profile\":\"{}\",\"terminal_id\":\"{}\",\"terminal_name\":{:?}}}",
            args.name,
            record.peer.id,
            record.peer.name
        );
    } else {
        outln!(
            "paired with {} ({}) as profile {:?}",
            record.peer.name,
            record.peer.id,
            args.name
        );
    }
    Ok(exit::OK)
}

/// `posctl sale`.
#[derive(clap::Args, Debug)]
pub(crate) struct SaleArgs {
    /// The amount, like `12.50`.
    amount: String,
    /// The currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The idempotency key (32 hex digits) to retry a sale; new by default.
    #[arg(long)]
    key: Option<String>,
    /// How long to wait for the customer and the issuer, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    common: Common,
}

fn print_result(json: bool, r: &TransactionResult) {
    if json {
        crate::json::print(&crate::json::Payment::of(r));
    } else {
        outln!(
            "{:?} {:?}: {} (transaction {}, key {})",
            r.kind,
            r.outcome,
            money(r.approved_minor + r.tip.unwrap_or(0), r.amount.currency),
            r.transaction_id,
            r.idempotency_key
        );
        if r.offline && r.outcome.is_approved() {
            outln!(
                "approved offline: counted; its final outcome comes when the terminal forwards it (posctl recover)"
            );
        }
        if let Some(receipt) = r.receipts.iter().find(|x| x.copy == ReceiptCopy::Customer) {
            outln!("\n{}", render(receipt));
        }
    }
}

/// An outcome as a person reads it: `approved`, `declined: insufficient funds`, …
fn outcome_text(o: Outcome) -> String {
    match o {
        Outcome::Approved => "approved".into(),
        Outcome::PartiallyApproved => "partially approved".into(),
        Outcome::Declined(r) => format!("declined: {r}"),
        Outcome::Cancelled => "cancelled".into(),
        Outcome::Failed(e) => format!("failed: {e}"),
        other => format!("{other:?}"),
    }
}

fn outcome_code(r: &TransactionResult) -> u8 {
    if r.outcome.is_approved() {
        exit::OK
    } else {
        exit::DECLINED
    }
}

pub(crate) fn payment_failure<E: std::error::Error + Send + Sync + 'static>(
    e: PaymentError<E>,
) -> Failure {
    let code = if e.is_in_doubt() {
        exit::IN_DOUBT
    } else if matches!(e, PaymentError::DeclinedAfter { .. }) {
        // Declined, only later: the payment did not go through.
        exit::DECLINED
    } else {
        exit::FAILED
    };
    match e.key() {
        Some(key) => Failure(
            code,
            Box::new(KeyedError {
                key,
                inner: e.into(),
            }),
        ),
        None => Failure(code, e.into()),
    }
}

pub(crate) async fn sale(args: SaleArgs) -> Result<u8, Failure> {
    let currency = parse_currency(&args.currency)?;
    let amount = Amount::new(parse_amount(&args.amount, currency)?, currency);
    let command = TransactionCommand::Sale {
        amount,
        tip: None,
        cashback: None,
    };
    run_command(
        &args.common,
        args.key.as_deref(),
        command,
        None,
        args.timeout,
    )
    .await
}

fn parse_key(hex: &str) -> Result<IdempotencyKey, Failure> {
    IdempotencyKey::parse_hex(hex)
        .map_err(|_| usage(format!("{hex:?}: an idempotency key is 32 hex digits")))
}

fn parse_transaction(hex: &str) -> Result<TransactionRef, Failure> {
    Ok(TransactionRef::Id(TransactionId::parse_hex(hex).map_err(
        |_| usage(format!("{hex:?}: a transaction id is 32 hex digits")),
    )?))
}

/// The operator a refund or void needs on the native protocol (a ZVT terminal authorises these
/// itself).
/// What a refund, void or release without `--operator` is told.
const FOLLOW_UP_OPERATOR: &str =
    "--operator NAME: an operator authorises refunds, voids and releases";

fn authorising(
    common: &Common,
    name: Option<&str>,
    missing: &str,
) -> Result<Option<OperatorAuth>, Failure> {
    match name {
        _ if !common.native() => Ok(None),
        Some(name) => crate::secret::operator(name, common.pin_file.as_deref()).map(Some),
        None => Err(usage(missing)),
    }
}

/// Connects, recovers what is in doubt, runs `command` journaled, prints the result.
async fn run_command(
    common: &Common,
    key: Option<&str>,
    command: TransactionCommand,
    operator: Option<OperatorAuth>,
    timeout: u64,
) -> Result<u8, Failure> {
    let home = Home::locate(common.home.as_deref())?;
    let key = match key {
        Some(hex) => parse_key(hex)?,
        None => new_key()?,
    };
    let terminal = connect_terminal(&home, common).await?;
    // Nothing new goes out before what is in doubt is resolved.
    let report = terminal
        .recover(Duration::from_secs(timeout))
        .await
        .map_err(payment_failure)?;
    // What recovery did with earlier payments is said before this one runs (payments approved
    // offline and still pending are not news: `posctl recover` lists them).
    if report.len() > report.pending_offline.len() {
        if common.json {
            crate::json::print(&crate::json::Recovery::of(&report));
        } else {
            outln!("before this payment, earlier ones were recovered:\n{report}");
        }
    }
    if !report.running.is_empty() || !report.unresolved.is_empty() {
        return Err(Failure(
            exit::IN_DOUBT,
            "earlier payments are still in doubt (listed above); nothing new is sent until they are resolved: run posctl recover".into(),
        ));
    }
    let mut call = Call::within(Duration::from_secs(timeout));
    call.operator = operator;
    let progress = Progress::start(terminal.progress(), common.json);
    let result = {
        let run = terminal.execute(key, command, call);
        tokio::pin!(run);
        let mut interrupts = 0;
        loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tokio::signal::ctrl_c() => {
                    interrupts += 1;
                    if interrupts > 1 {
                        progress.stop();
                        return Err(Failure(
                            exit::IN_DOUBT,
                            format!("interrupted; payment {key} is journaled and in doubt: run posctl recover").into(),
                        ));
                    }
                    if progress.started() {
                        progress.note("cancel requested (press Ctrl-C again to stop waiting)");
                        if let Err(e) = terminal.cancel().await {
                            progress.note(&format!("cancel not sent: {e}"));
                        }
                    } else {
                        progress.note("the terminal has not started yet; press Ctrl-C again to stop waiting");
                    }
                }
            }
        }
    };
    progress.stop();
    let result = result.map_err(payment_failure)?;
    print_result(common.json, &result);
    close(terminal).await;
    Ok(outcome_code(&result))
}

/// `posctl refund`.
#[derive(clap::Args, Debug)]
pub(crate) struct RefundArgs {
    /// The amount, like `5.00`.
    amount: String,
    /// The sale it refunds (its transaction id); without it the refund is unreferenced.
    #[arg(long)]
    original: Option<String>,
    /// The operator authorising it (the name; the PIN from --pin-file, $POSCTL_OPERATOR_PIN or
    /// a prompt). Not with --protocol zvt, where the terminal asks for its own authorisation.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// The currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The idempotency key (32 hex digits) to retry; new by default.
    #[arg(long)]
    key: Option<String>,
    /// Seconds to wait.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn refund(args: RefundArgs) -> Result<u8, Failure> {
    let currency = parse_currency(&args.currency)?;
    let command = TransactionCommand::Refund {
        amount: Amount::new(parse_amount(&args.amount, currency)?, currency),
        original: args
            .original
            .as_deref()
            .map(parse_transaction)
            .transpose()?,
    };
    let operator = authorising(&args.common, args.operator.as_deref(), FOLLOW_UP_OPERATOR)?;
    run_command(
        &args.common,
        args.key.as_deref(),
        command,
        operator,
        args.timeout,
    )
    .await
}

/// `posctl void`.
#[derive(clap::Args, Debug)]
pub(crate) struct VoidArgs {
    /// The transaction to cancel (its id).
    transaction: String,
    /// The operator authorising it (the name; the PIN from --pin-file, $POSCTL_OPERATOR_PIN or
    /// a prompt). Not with --protocol zvt, where the terminal asks for its own authorisation.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// The idempotency key (32 hex digits) to retry; new by default.
    #[arg(long)]
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn void(args: VoidArgs) -> Result<u8, Failure> {
    let command = TransactionCommand::Void {
        original: parse_transaction(&args.transaction)?,
    };
    let operator = authorising(&args.common, args.operator.as_deref(), FOLLOW_UP_OPERATOR)?;
    run_command(&args.common, args.key.as_deref(), command, operator, 120).await
}

/// `posctl release`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReleaseArgs {
    /// The pre-authorisation to release (its transaction id).
    transaction: String,
    /// The operator authorising it: the deposit goes back to the customer (the name; the PIN
    /// from --pin-file, $POSCTL_OPERATOR_PIN or a prompt). Not with --protocol zvt.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// The idempotency key (32 hex digits) to retry; new by default.
    #[arg(long)]
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Releases a pre-authorisation without taking money (`PreAuthCancel`; over ZVT the
/// pre-authorisation reversal, `06 25`).
pub(crate) async fn release(args: ReleaseArgs) -> Result<u8, Failure> {
    let command = TransactionCommand::PreAuthCancel {
        original: parse_transaction(&args.transaction)?,
    };
    let operator = authorising(&args.common, args.operator.as_deref(), FOLLOW_UP_OPERATOR)?;
    run_command(&args.common, args.key.as_deref(), command, operator, 120).await
}

/// `posctl preauth`.
#[derive(clap::Args, Debug)]
pub(crate) struct PreauthArgs {
    /// The amount to reserve, like `100.00`.
    amount: String,
    /// The currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The idempotency key (32 hex digits) to retry; new by default.
    #[arg(long)]
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn preauth(args: PreauthArgs) -> Result<u8, Failure> {
    let currency = parse_currency(&args.currency)?;
    let command = TransactionCommand::PreAuth {
        amount: Amount::new(parse_amount(&args.amount, currency)?, currency),
    };
    run_command(&args.common, args.key.as_deref(), command, None, 120).await
}

/// `posctl capture`.
#[derive(clap::Args, Debug)]
pub(crate) struct CaptureArgs {
    /// The pre-authorisation (its transaction id).
    transaction: String,
    /// The final amount, like `85.00`.
    amount: String,
    /// A tip added at capture.
    #[arg(long)]
    tip: Option<String>,
    /// The currency.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// The idempotency key (32 hex digits) to retry; new by default.
    #[arg(long)]
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn capture(args: CaptureArgs) -> Result<u8, Failure> {
    let currency = parse_currency(&args.currency)?;
    let command = TransactionCommand::Capture {
        original: parse_transaction(&args.transaction)?,
        amount: Amount::new(parse_amount(&args.amount, currency)?, currency),
        tip: args
            .tip
            .as_deref()
            .map(|t| parse_amount(t, currency))
            .transpose()?,
    };
    run_command(&args.common, args.key.as_deref(), command, None, 120).await
}

/// `posctl status`.
#[derive(clap::Args, Debug)]
pub(crate) struct StatusArgs {
    /// The idempotency key (32 hex digits) of the payment to look up. Without one, the
    /// terminal's own status (of the profile `--terminal` names): battery, power, software,
    /// paper, acquirer link, payments stored offline (native protocol 1.1; other terminals
    /// report what they can).
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn status(args: StatusArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let Some(key) = &args.key else {
        let terminal = connect_terminal(&home, &args.common).await?;
        let telemetry = terminal
            .telemetry(Duration::from_secs(20))
            .await
            .map_err(payment_failure)?;
        print_terminal(
            args.common.json,
            args.common.protocol,
            terminal.capabilities(),
            telemetry.as_ref(),
        );
        close(terminal).await;
        return Ok(exit::OK);
    };
    let key = parse_key(key)?;
    let terminal = connect_terminal(&home, &args.common).await?;
    let status = terminal
        .status(key, Duration::from_secs(20))
        .await
        .map_err(payment_failure)?;
    let code = print_status(args.common.json, &status);
    close(terminal).await;
    Ok(code)
}

/// What `posctl status --terminal` prints.
fn print_terminal(
    json: bool,
    protocol: Protocol,
    caps: &posbridge_wire::Capabilities,
    telemetry: Option<&posbridge_wire::Telemetry>,
) {
    let protocol = match protocol {
        Protocol::Native if caps.selected_version >= posbridge_wire::VERSION_1_1 => "native 1.1",
        Protocol::Native => "native 1.0",
        Protocol::Zvt => "zvt",
        Protocol::Nexo => "nexo",
    };
    if json {
        crate::json::print(&crate::json::TerminalStatus::of(protocol, caps, telemetry));
        return;
    }
    outln!(
        "terminal {} ({}), protocol {protocol}",
        caps.terminal_id,
        caps.model.as_deref().unwrap_or("model not reported")
    );
    let Some(t) = telemetry else {
        outln!("telemetry: not reported by this terminal");
        return;
    };
    let text = crate::json::TelemetryText::of(t);
    outln!("battery:   {}", text.battery);
    outln!("power:     {}", text.power);
    outln!("software:  {}", text.software);
    outln!("paper:     {}", text.paper);
    outln!("acquirer:  {}", text.acquirer);
    outln!("stored offline, not yet forwarded: {}", t.stored_offline);
}

fn print_status(json: bool, status: &TransactionStatus) -> u8 {
    match status {
        TransactionStatus::Done(r) => {
            print_result(json, r);
            outcome_code(r)
        }
        TransactionStatus::NotFound => {
            if json {
                crate::json::print(&crate::json::Status {
                    status: "not_found",
                    result: None,
                });
            } else {
                outln!("not found: the terminal never saw this key");
            }
            exit::FAILED
        }
        _ => {
            if json {
                crate::json::print(&crate::json::Status {
                    status: "in_progress",
                    result: None,
                });
            } else {
                outln!("in progress");
            }
            exit::IN_DOUBT
        }
    }
}

/// `posctl recover`.
#[derive(clap::Args, Debug)]
pub(crate) struct RecoverArgs {
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn recover(args: RecoverArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let terminal = connect_terminal(&home, &args.common).await?;
    let report = terminal.recover(Duration::from_secs(120)).await;
    close(terminal).await;
    let report = report.map_err(payment_failure)?;
    if args.common.json {
        crate::json::print(&crate::json::Recovery::of(&report));
    } else {
        outln!(
            "recorded {}, joined {}, resent {}, not taken {}, reversed {}, still running {}, unresolved {}",
            report.recorded.len(),
            report.awaited.len(),
            report.resent.len(),
            report.not_taken.len(),
            report.reversed.len(),
            report.running.len(),
            report.unresolved.len()
        );
        if report.confirmed_offline.len()
            + report.declined_after.len()
            + report.pending_offline.len()
            > 0
        {
            outln!(
                "approved offline: confirmed {}, declined after the fact {}, still pending {}",
                report.confirmed_offline.len(),
                report.declined_after.len(),
                report.pending_offline.len()
            );
        }
        // Which payment ended how, and why one is still in doubt.
        if !report.is_empty() {
            outln!("{report}");
        }
    }
    Ok(if report.is_clean() {
        exit::OK
    } else {
        exit::IN_DOUBT
    })
}

/// `posctl settle`.
#[derive(clap::Args, Debug)]
pub(crate) struct SettleArgs {
    /// The operator authorising it (the name; the PIN from --pin-file, $POSCTL_OPERATOR_PIN or
    /// a prompt). Not with --protocol zvt, which authorises end-of-day with --zvt-password.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn settle(args: SettleArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let operator = authorising(
        &args.common,
        args.operator.as_deref(),
        "--operator NAME authorises the settlement",
    )?;
    let terminal = connect_terminal(&home, &args.common).await?;
    // Closing the batch cannot be undone: the journal it is reconciled with must be readable
    // first, or the batch would close and leave nothing to compare it with.
    journal_is_sound(&journal_of(&terminal))?;
    let mut call = Call::within(Duration::from_secs(120));
    call.operator = operator;
    let mut report = terminal
        .settle(new_key()?, call)
        .await
        .map_err(payment_failure)?;
    if let Err(code) = report.status {
        return Err(format!(
            "the terminal did not close the batch: {}",
            code.description().unwrap_or("refused")
        )
        .into());
    }
    // Kept, so `posctl reconcile` can compare again after late recoveries.
    let dir = home.settlements_dir();
    crate::home::private_dir(&dir)?;
    // A report that does not say when its batch opened (ZVT's end-of-day) covers what came
    // after the one kept before it.
    if report.opened.is_none() {
        report.opened = previous_close(&dir, &report);
    }
    let file = dir.join(format!(
        "{}-{:08}.bin",
        report.terminal_id, report.batch_number
    ));
    let bytes = Message::SettlementResult(report.clone())
        .to_bytes()
        .map_err(|e| format!("encode the settlement report: {e}"))?;
    crate::home::write_private(&file, &bytes)?;
    outln!("batch {} closed", report.batch_number);
    let clean = print_reconciliation(
        &journal_of(&terminal),
        &report,
        terminal_key_of(&terminal).as_ref(),
    )?;
    close(terminal).await;
    Ok(if clean {
        outln!("reconciled");
        exit::OK
    } else {
        exit::FAILED
    })
}

/// When the newest report kept for `report`'s terminal closed its batch (before `report`).
fn previous_close(
    dir: &std::path::Path,
    report: &posbridge_wire::SettlementResult,
) -> Option<posbridge_wire::Timestamp> {
    let prefix = format!("{}-", report.terminal_id);
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .filter_map(|p| match Message::decode(&std::fs::read(p).ok()?).ok()? {
            Message::SettlementResult(r) => Some(r.closed),
            _ => None,
        })
        .filter(|closed| closed.0 < report.closed.0)
        .max_by_key(|closed| closed.0)
}

/// The key the terminal signs with, where its protocol signs.
fn terminal_key_of(terminal: &Terminal) -> Option<posbridge_crypto::PublicKey> {
    match terminal {
        Either::Left(t) => t.adapter().terminal_key(),
        Either::Right(Either::Left(t)) => t.adapter().terminal_key(),
        Either::Right(Either::Right(t)) => t.adapter().terminal_key(),
    }
}

/// Compares a settlement report with the journal and prints each total and difference; whether
/// everything matched.
fn print_reconciliation(
    journal: &SqliteJournal,
    report: &posbridge_wire::SettlementResult,
    key: Option<&posbridge_crypto::PublicKey>,
) -> Result<bool, Failure> {
    // The batch: this terminal's entries whose results it timed within the batch (by its own
    // clock; see posbridge::in_batch). The query reaches a day further back than the opening, for
    // a till whose clock runs behind the terminal's.
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    let entries = journal.query(&Query {
        from: report
            .opened
            .map(|t| posbridge_wire::Timestamp(t.0.saturating_sub(DAY_MS))),
        terminal: Some(report.terminal_id),
        ..Query::default()
    })?;
    let reconciliation = posbridge::reconcile(&entries, report, key);
    let net_only = report.totals.iter().all(|t| t.count == 0);
    for t in report.totals.iter().filter(|_| net_only) {
        outln!(
            "  net total {:>14}  {}",
            money(t.amount, t.currency),
            if reconciliation.matched.contains(t) {
                "matches the journal"
            } else {
                "DIFFERS"
            }
        );
    }
    for t in report.totals.iter().filter(|_| !net_only) {
        outln!(
            "  {:<16} {:>4} x {:>14}  {}",
            format!("{:?}", t.kind),
            t.count,
            money(t.amount, t.currency),
            if reconciliation.matched.contains(t) {
                "matches the journal"
            } else {
                "DIFFERS"
            }
        );
    }
    for d in &reconciliation.differences {
        outln!("  difference: {d:?}");
    }
    for k in &reconciliation.pending_offline {
        outln!("  approved offline, not confirmed yet (counted): {k}");
    }
    for k in &reconciliation.declined_after {
        outln!(
            "  approved offline, declined by the issuer after this batch closed (counted, NOT charged): {k}"
        );
    }
    Ok(reconciliation.is_clean())
}

/// Refuses a journal SQLite finds damaged, or with entries that cannot be read.
fn journal_is_sound(journal: &SqliteJournal) -> Result<(), Failure> {
    let problems = journal.check_integrity()?;
    if !problems.is_empty() {
        return Err(format!(
            "the journal is damaged ({}); the batch was not closed. Run posctl doctor",
            problems.join("; ")
        )
        .into());
    }
    let damaged = journal.scan(&Query::default())?.damaged;
    if let Some(first) = damaged.first() {
        return Err(format!(
            "{} journal entr{} cannot be read (first: {first}); the batch was not closed. Run \
             posctl doctor",
            damaged.len(),
            if damaged.len() == 1 { "y" } else { "ies" }
        )
        .into());
    }
    Ok(())
}

/// `posctl reconcile`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReconcileArgs {
    /// The batch number (default: the most recent settlement kept).
    #[arg(long)]
    batch: Option<u32>,
    #[command(flatten)]
    common: Common,
}

/// Reconciles a kept settlement report with the journal as it is now (after `recover` resolved
/// what was in doubt at settlement time). Needs no connection.
pub(crate) fn reconcile(args: ReconcileArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let (_, profile, record) = home.terminal(args.common.terminal.as_deref())?;
    let dir = home.settlements_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|_| "no settlement kept yet: run posctl settle first")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&profile.terminal_id))
        })
        .collect();
    files.sort();
    let file = match args.batch {
        Some(n) => files
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(&format!("-{n:08}.bin")))
            .ok_or_else(|| format!("no settlement of batch {n} kept"))?,
        None => files
            .pop()
            .ok_or("no settlement kept yet: run posctl settle first")?,
    };
    let Message::SettlementResult(report) =
        Message::decode(&std::fs::read(&file)?).map_err(|e| format!("{}: {e}", file.display()))?
    else {
        return Err(format!("{}: not a settlement report", file.display()).into());
    };
    let journal = home.journal_for_reading()?;
    outln!(
        "batch {} (closed at {} ms)",
        report.batch_number,
        report.closed.0
    );
    let clean = print_reconciliation(&journal, &report, Some(&record.peer.signing_key))?;
    Ok(if clean {
        outln!("reconciled");
        exit::OK
    } else {
        exit::FAILED
    })
}

/// `posctl journal`.
#[derive(clap::Args, Debug)]
pub(crate) struct JournalArgs {
    #[command(subcommand)]
    action: JournalAction,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand, Debug)]
enum JournalAction {
    /// Lists the entries, oldest first.
    List,
    /// Shows one entry in full, by idempotency key.
    Show {
        /// The idempotency key (32 hex digits).
        key: String,
    },
    /// Writes every entry to stdout as CSV or JSON Lines.
    Export {
        /// `csv` or `jsonl`.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Accepts the journal.db that is there now as this till's own. Payments refuse to run on
    /// a journal other than the one the till has kept (a lost, truncated or replaced journal.db
    /// forgets what was in doubt); after restoring the right one from a backup nothing is
    /// needed, but to go on with another one — knowing what is lost — adopt it.
    Adopt,
}

/// A report written to standard output: a reader that went away (`| head`) ends it quietly.
fn written(result: std::io::Result<()>) -> Result<(), Failure> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub(crate) fn journal(args: JournalArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    if let JournalAction::Adopt = args.action {
        let id = home.adopt_journal()?;
        outln!(
            "{} (identity {id}) is now this till's journal",
            home.journal_path().display()
        );
        return Ok(exit::OK);
    }
    let journal = home.journal_for_reading()?;
    // What can be read is listed and exported; a damaged entry is reported, not a reason to
    // show nothing.
    let scan = journal.scan(&Query::default())?;
    let entries = scan.entries;
    let stdout = std::io::stdout();
    match args.action {
        JournalAction::Adopt => {}
        JournalAction::List if args.common.json => written(export_jsonl(&entries, stdout.lock()))?,
        JournalAction::List => {
            for e in &entries {
                let r = e.result.as_ref();
                outln!(
                    "{}  {:<9} {:<8} {:>12}  {:<24} {}",
                    e.key(),
                    e.state.as_str(),
                    format!("{:?}", e.kind()),
                    // A void or a release names no amount; its result carries the original's.
                    e.amount()
                        .or(r.map(|r| r.amount))
                        .map(|a| money(a.minor, a.currency))
                        .unwrap_or_default(),
                    r.map(|r| outcome_text(r.outcome)).unwrap_or_default(),
                    r.and_then(|r| r.pan)
                        .map(|p| p.to_string())
                        .unwrap_or_default()
                );
            }
        }
        JournalAction::Show { key } => {
            let key = parse_key(&key)?;
            let e = journal
                .get(&key)?
                .ok_or_else(|| format!("no journal entry with key {key}"))?;
            if args.common.json {
                written(export_jsonl(std::slice::from_ref(&e), stdout.lock()))?;
            } else {
                outln!("key          {}", e.key());
                outln!("terminal     {}", e.terminal);
                outln!("kind         {:?}", e.kind());
                if let Some(a) = e.amount() {
                    outln!("amount       {}", money(a.minor, a.currency));
                }
                outln!("state        {}", e.state.as_str());
                if let Some(stage) = e.stage {
                    outln!("last step    {stage:?}");
                }
                if let Some(note) = &e.note {
                    outln!("note         {note}");
                }
                outln!("created      {} ms", e.created.0);
                outln!("updated      {} ms", e.updated.0);
                if let Some(r) = &e.result {
                    outln!("outcome      {:?}", r.outcome);
                    outln!(
                        "approved     {}",
                        money(r.approved_minor, r.amount.currency)
                    );
                    outln!("transaction  {}", r.transaction_id);
                    if let Some(card) = &r.pan {
                        outln!("card         {card}");
                    }
                    if let Some(code) = &r.auth_code {
                        outln!("auth code    {code}");
                    }
                    outln!(
                        "signature    {}",
                        if r.signature.is_some() {
                            "present (verified when recorded)"
                        } else {
                            "none"
                        }
                    );
                    for receipt in &r.receipts {
                        outln!("\n{}", render(receipt));
                    }
                }
            }
        }
        JournalAction::Export { format } => match format.as_str() {
            "csv" => written(export_csv(&entries, stdout.lock()))?,
            "jsonl" => written(export_jsonl(&entries, stdout.lock()))?,
            other => return Err(usage(format!("--format {other:?}: use csv or jsonl"))),
        },
    }
    if scan.damaged.is_empty() {
        return Ok(exit::OK);
    }
    for damage in &scan.damaged {
        errln!("posctl: skipped a damaged journal entry: {damage}");
    }
    errln!(
        "posctl: {} damaged journal entr{} skipped; run posctl doctor",
        scan.damaged.len(),
        if scan.damaged.len() == 1 { "y" } else { "ies" }
    );
    Ok(exit::FAILED)
}

/// `posctl pairings`.
#[derive(clap::Args, Debug)]
pub(crate) struct PairingsArgs {
    #[command(subcommand)]
    action: PairingsAction,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand, Debug)]
enum PairingsAction {
    /// The terminals this till is paired with: id, name, when, and the profiles that use each.
    List,
    /// Forgets a terminal: its pairing record is deleted and its profiles removed, so this till
    /// no longer connects to it (the terminal's own record of the till is revoked there).
    Revoke {
        /// A profile name from config.toml, or the terminal's id (32 hex digits).
        terminal: String,
    },
}

pub(crate) fn pairings(args: PairingsArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let store = home.pairings()?;
    let mut config = home.config()?;
    let terminals: Vec<_> = store
        .records()?
        .into_iter()
        .filter(|r| r.peer_role == posbridge_crypto::Role::Terminal)
        .collect();
    let profiles_of = |id: &str, config: &crate::home::Config| {
        config
            .terminals
            .iter()
            .filter(|(_, p)| p.terminal_id.eq_ignore_ascii_case(id))
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>()
    };
    match args.action {
        PairingsAction::List => {
            if terminals.is_empty() {
                outln!("no pairings: pair with a terminal first (posctl pair)");
            }
            for r in &terminals {
                let id = r.peer.id.to_string();
                let profiles = profiles_of(&id, &config);
                if args.common.json {
                    crate::json::print(&crate::json::Pairing {
                        terminal_id: id.clone(),
                        name: r.peer.name.clone(),
                        paired_at_ms: r.paired_at.0,
                        profiles: profiles.clone(),
                    });
                } else {
                    outln!(
                        "{id}  {:<24} paired at {} ms  profiles: {}",
                        r.peer.name,
                        r.paired_at.0,
                        if profiles.is_empty() {
                            "-".to_string()
                        } else {
                            profiles.join(", ")
                        }
                    );
                }
            }
            Ok(exit::OK)
        }
        PairingsAction::Revoke { terminal } => {
            let id = match config.terminals.get(&terminal) {
                Some(p) => p.terminal_id.clone(),
                None => terminal.clone(),
            };
            let Some(record) = terminals
                .iter()
                .find(|r| r.peer.id.to_string().eq_ignore_ascii_case(&id))
            else {
                return Err(usage(format!(
                    "{terminal:?} is neither a profile nor a paired terminal's id (posctl pairings list)"
                )));
            };
            store.revoke(&record.peer.id)?;
            let removed = profiles_of(&id, &config);
            config.terminals.retain(|n, _| !removed.contains(n));
            if config.default.as_ref().is_some_and(|d| removed.contains(d)) {
                config.default = None;
            }
            home.save_config(&config)?;
            outln!(
                "revoked the pairing with {} ({}); profiles removed: {}",
                record.peer.name,
                record.peer.id,
                if removed.is_empty() {
                    "-".to_string()
                } else {
                    removed.join(", ")
                }
            );
            Ok(exit::OK)
        }
    }
}

/// `posctl discover`.
#[derive(clap::Args, Debug)]
pub(crate) struct DiscoverArgs {
    /// How long to listen for LAN announcements and BLE advertisements, in seconds.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
    /// Print one JSON object per device.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn discover(args: DiscoverArgs) -> Result<u8, Failure> {
    let options = posbridge::DiscoverOptions {
        timeout: Duration::from_secs(args.timeout),
        ..posbridge::DiscoverOptions::default()
    };
    let found = posbridge::discover(&options).await;
    for d in &found.devices {
        let usb = d
            .usb
            .as_ref()
            .map(|u| format!("{:04x}:{:04x}", u.vid, u.pid));
        if args.json {
            crate::json::print(&crate::json::Device {
                kind: d.kind.to_string(),
                id: d.id.clone(),
                name: d.name.clone(),
                rssi_dbm: d.rssi_dbm,
                usb: usb.clone(),
            });
        } else {
            let mut line = format!("{:<7} {}", d.kind.to_string(), d.id);
            if let Some(n) = &d.name {
                line.push_str(&format!("  {n}"));
            }
            if let Some(u) = &usb {
                line.push_str(&format!("  USB {u}"));
            }
            if let Some(r) = d.rssi_dbm {
                line.push_str(&format!("  {r} dBm"));
            }
            outln!("{line}");
        }
    }
    for p in &found.problems {
        errln!("posctl: could not search {}: {}", p.kind, p.error);
    }
    if !args.json {
        let searched = [
            "LAN (mDNS)",
            "serial ports",
            #[cfg(feature = "usb")]
            "USB",
            #[cfg(feature = "ble")]
            "Bluetooth LE",
        ];
        outln!(
            "{} found; searched {}",
            found.devices.len(),
            searched.join(", ")
        );
    }
    Ok(exit::OK)
}

/// Shows where a payment is while it runs: a spinner on a terminal, plain lines otherwise
/// (on standard error with `--json`, so standard output stays JSON).
struct Progress {
    task: tokio::task::JoinHandle<()>,
    state: Arc<std::sync::Mutex<ProgressState>>,
}

#[derive(Default)]
struct ProgressState {
    /// The terminal reported progress: the command is running there.
    started: bool,
    line: Option<String>,
    spinner: bool,
}

fn stage_text(stage: posbridge_wire::ProgressStage) -> String {
    use posbridge_wire::ProgressStage as S;
    match stage {
        S::WaitingForCard => "waiting for the card: insert, tap or swipe".into(),
        S::CardRead => "card read".into(),
        S::PinEntry => "the customer enters the PIN".into(),
        S::ProcessingOnline => "authorising online".into(),
        S::SignatureRequired => "signature required".into(),
        S::RemoveCard => "remove the card".into(),
        S::Other(code) => format!("terminal step {code}"),
        other => format!("terminal step {}", other.code()),
    }
}

impl Progress {
    fn start(mut events: ProgressEvents, json: bool) -> Self {
        use std::io::{IsTerminal, Write};
        let spinner = !json && std::io::stdout().is_terminal();
        let state = Arc::new(std::sync::Mutex::new(ProgressState {
            spinner,
            ..ProgressState::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let mut tick = tokio::time::interval(Duration::from_millis(120));
            let mut frame = 0;
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(p) => {
                            // The protocol's own words for a step the vocabulary has no name for.
                            let text = match (p.stage, p.message) {
                                (posbridge_wire::ProgressStage::Other(_), Some(m)) => m,
                                // The terminal's own words after ours, when it has some.
                                (stage, Some(m)) => format!("{} ({m})", stage_text(stage)),
                                (stage, None) => stage_text(stage),
                            };
                            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                            s.started = true;
                            if s.spinner {
                                s.line = Some(text);
                            } else if json {
                                errln!("{{\"progress\":{:?}}}", text);
                            } else {
                                outln!("... {text}");
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick(), if spinner => {
                        let s = shared.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(line) = &s.line {
                            frame = (frame + 1) % FRAMES.len();
                            let mut out = std::io::stdout();
                            let _ = write!(out, "\r{} {line}\x1b[K", FRAMES[frame]);
                            let _ = out.flush();
                        }
                    }
                }
            }
        });
        Self { task, state }
    }

    fn started(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).started
    }

    fn note(&self, text: &str) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.spinner {
            outln!("\r{text}\x1b[K");
        } else {
            errln!("posctl: {text}");
        }
    }

    fn stop(&self) {
        self.task.abort();
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.spinner && s.line.is_some() {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

/// `posctl resolve`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("finding").required(true).args(["charged", "not_charged"])))]
pub(crate) struct ResolveArgs {
    /// The payment's idempotency key (`posctl journal list`).
    key: String,
    /// The terminal charged it (its display, its printed journal or the acquirer's statement
    /// shows it): it is journaled approved, for the amount asked.
    #[arg(long)]
    charged: bool,
    /// The terminal did not charge it: it is journaled as not taken.
    #[arg(long)]
    not_charged: bool,
    /// With --charged: the transaction's id, when the terminal shows one (32 hex digits).
    #[arg(long, value_name = "ID", requires = "charged")]
    transaction: Option<String>,
    /// Who decided, and on what (kept in the journal).
    #[arg(long, value_name = "NAME")]
    by: String,
    #[command(flatten)]
    common: Common,
}

/// Settles by hand a payment recovery could not (the terminal's record did not identify it —
/// a ZVT terminal keeps only its last transaction): a person checked the terminal and says
/// whether it was charged. Only for payments still open; works without the terminal.
pub(crate) fn resolve(args: ResolveArgs) -> Result<u8, Failure> {
    let home = Home::locate(args.common.home.as_deref())?;
    let key = parse_key(&args.key)?;
    let by = args.by.trim();
    if by.is_empty() {
        return Err(usage("--by NAME: who decided"));
    }
    let mut journal = home.journal()?;
    let entry = journal
        .get(&key)?
        .ok_or_else(|| format!("no journal entry with key {key}"))?;
    if entry.state.is_final() {
        return Err(format!(
            "payment {key} is final already ({}): nothing to resolve",
            entry.state.as_str()
        )
        .into());
    }
    // Approved offline, its signed result recorded: the terminal tells the rest (recover).
    if !entry.state.needs_recovery() {
        return Err(format!(
            "payment {key} is not in doubt ({}: its final outcome comes from the terminal — posctl recover): nothing to resolve",
            entry.state.as_str()
        )
        .into());
    }
    let now = posbridge::driver::wall_clock();
    if args.not_charged {
        journal.mark_rejected(&key, &format!("not charged: resolved by hand by {by}"), now)?;
        if args.common.json {
            crate::json::print(&crate::json::Status {
                status: "not_charged",
                result: None,
            });
        } else {
            outln!("payment {key} journaled as not charged (resolved by hand by {by})");
        }
        return Ok(exit::OK);
    }
    let transaction_id = match &args.transaction {
        Some(hex) => TransactionId::parse_hex(hex)
            .map_err(|_| usage(format!("{hex:?}: a transaction id is 32 hex digits")))?,
        None => TransactionId::from_bytes(*key.as_bytes()),
    };
    let amount = entry
        .amount()
        .ok_or_else(|| format!("payment {key} has no amount to journal as charged"))?;
    let reference: String = format!("by hand: {by}").chars().take(32).collect();
    let result = TransactionResult {
        request_id: entry.request.request_id,
        idempotency_key: key,
        transaction_id,
        terminal_id: entry.terminal,
        kind: entry.kind(),
        outcome: Outcome::Approved,
        amount,
        approved_minor: amount.minor,
        tip: None,
        cashback: None,
        method: None,
        pan: None,
        card_scheme: None,
        auth_code: None,
        reference: Some(reference),
        time: now,
        offline: false,
        balance: None,
        receipts: Vec::new(),
        // No terminal signed it: a reconciliation against a terminal that signs its results
        // shows it as such.
        signature: None,
        emv: None,
    };
    journal.record_result(&result, now)?;
    print_result(args.common.json, &result);
    Ok(exit::OK)
}

/// `posctl cancel`.
#[derive(clap::Args, Debug)]
pub(crate) struct CancelArgs {
    /// The payment's idempotency key (`posctl journal list`).
    key: String,
    /// The operator, when the payment is a refund or a void (the name; the PIN from
    /// --pin-file, $POSCTL_OPERATOR_PIN or a prompt).
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// Seconds to wait for the terminal's final answer.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    #[command(flatten)]
    common: Common,
}

/// Joins a payment that is still running (sending its journaled command again with the same key
/// attaches to it — never a second charge), asks the terminal to cancel it, and records the
/// final answer: cancelled, or the real result when it was too late.
pub(crate) async fn cancel(args: CancelArgs) -> Result<u8, Failure> {
    if args.common.zvt() {
        return Err("a ZVT terminal cannot be joined from another connection: cancel with Ctrl-C in the posctl that runs the payment (it sends abort, 06 B0), or on the terminal".into());
    }
    if args.common.protocol == Protocol::Nexo {
        return Err("a nexo payment is aborted by the till that runs it: Ctrl-C in that posctl (it sends an AbortRequest), or cancel on the terminal".into());
    }
    let home = Home::locate(args.common.home.as_deref())?;
    let key = parse_key(&args.key)?;
    let operator = args
        .operator
        .as_deref()
        .map(|name| crate::secret::operator(name, args.common.pin_file.as_deref()))
        .transpose()?;
    let (payments, _) = connect(&home, &args.common).await?;
    let entry = payments
        .journal()
        .get(&key)?
        .ok_or_else(|| format!("no journal entry with key {key}"))?;
    if let (
        posbridge::journal::EntryState::Done | posbridge::journal::EntryState::OfflinePending,
        Some(r),
    ) = (entry.state, &entry.result)
    {
        outln!("already final: nothing to cancel");
        print_result(args.common.json, r);
        return Ok(outcome_code(r));
    }
    let progress = Progress::start(payments.progress(), args.common.json);
    let result = {
        let run = payments.resume(key, operator, Duration::from_secs(args.timeout));
        tokio::pin!(run);
        let mut asked = false;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                r = &mut run => break r,
                _ = poll.tick(), if !asked => {
                    if payments.adapter().running_request().is_some() {
                        asked = true;
                        progress.note("cancel requested");
                        payments.cancel().await.map_err(payment_failure)?;
                    }
                }
            }
        }
    };
    progress.stop();
    let result = result.map_err(payment_failure)?;
    if result.outcome == Outcome::Cancelled {
        outln!("cancelled: no money moved");
    } else {
        outln!("too late to cancel: the terminal had already finished");
    }
    print_result(args.common.json, &result);
    payments.close().await;
    Ok(outcome_code(&result))
}
