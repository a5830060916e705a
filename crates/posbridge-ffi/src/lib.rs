//! posbridge for apps written in Kotlin, Swift and Python: UniFFI bindings of the SDK.
//!
//! * [`connect`] pairs with (or reconnects to) a terminal over TCP with the native protocol and
//!   returns a [`Terminal`]: sale, refund, void, pre-authorisation and capture, cancel, status,
//!   recovery, settlement, the journal and progress — every money command journaled (SQLite, in
//!   the app's data directory) before it is sent, its signed result verified, lost answers in
//!   doubt until [`Terminal::recover`] resolves them.
//! * [`discover`] lists the terminals in reach (LAN by mDNS, serial ports, and with the `ble` and
//!   `usb` features Bluetooth LE and USB through posbridge's own transports) and
//!   [`connect_device`] connects to one it found; on phones the app brings its own Bluetooth or
//!   USB connection ([`connect_gatt`], [`connect_usb`]) or any byte stream ([`connect_stream`]).
//! * [`start_simulator`] (feature `sim`) runs posbridge's simulator inside the app's process, on
//!   127.0.0.1, so apps and their tests run without hardware.
//! * Errors are one enum, [`PosError`], whose variants say what to do.
//!
//! Every call runs on posbridge's own multi-thread tokio runtime, whatever the caller's event
//! loop (Kotlin coroutines, Swift concurrency, Python asyncio).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal, Query, SqliteJournal};
use posbridge::{
    Adapter, Call, ConnectOptions as NativeOptions, NativeAdapter, NativeClient, PaymentError,
    PaymentTerminal, Payments,
};
use posbridge_api::money::{alpha_code, parse_amount, parse_currency};
use posbridge_crypto::{FileKeyStore, LocalIdentity, PairingSecret, PairingStore, PeerId};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{
    Amount, ClientId, Credential, Hello, IdempotencyKey, OperatorAuth, OperatorSecret,
    TransactionCommand, TransactionRef, TransactionResult, TransactionStatus,
};

mod discover;
mod gatt;
mod handover;
mod keystore;
mod protocols;
mod stream;
mod usb;
pub use discover::{
    Device, DeviceOptions, DiscoverOptions, Discovered, DiscoveryProblem, Transport,
    connect_device, discover,
};
pub use gatt::{GattNotifier, GattOptions, GattPeripheral, connect_gatt};
pub use handover::{HandoverInfo, connect_handover, read_handover};
pub use keystore::{SecretStore, StoreFailure};
pub use protocols::{NexoOptions, NexoTrust, connect_nexo, connect_zvt};
pub use stream::{ByteStream, LinkFailure, StreamOptions, connect_stream};
pub use usb::{UsbBulk, UsbOptions, connect_usb};

#[cfg(feature = "sim")]
mod sim;
#[cfg(feature = "sim")]
pub use sim::{
    NexoSimulator, SimulatedUsbDevice, Simulator, TlsEndpoint, ZvtSimulator, start_nexo_simulator,
    start_simulator, start_zvt_simulator,
};

uniffi::setup_scaffolding!("posbridge");

/// posbridge's runtime: two worker threads, started on first use.
pub(crate) static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("posbridge")
        .enable_all()
        .build()
        .expect("posbridge's runtime starts")
});

/// Runs `future` on posbridge's runtime and waits for it from whatever executor calls.
async fn on_runtime<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match RUNTIME.spawn(future).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// What went wrong, and what to do about it.
#[derive(Debug, uniffi::Error)]
pub enum PosError {
    /// The input cannot be used (an amount, a currency, a key, an operator's PIN): fix it;
    /// nothing was sent.
    InvalidInput {
        /// What and why.
        detail: String,
    },
    /// This data directory is not paired with a terminal: connect with the pairing code the
    /// terminal shows.
    NotPaired {
        /// Why.
        detail: String,
    },
    /// The terminal could not be reached: try again later with the **same** key.
    ConnectFailed {
        /// Why.
        detail: String,
    },
    /// The terminal (or posbridge) refused the command before anything was charged.
    Refused {
        /// The native protocol's error code.
        code: u16,
        /// Why.
        detail: String,
    },
    /// The payment's outcome is not known: it is journaled; call `recover` (after reconnecting)
    /// — never charge again under a new key.
    InDoubt {
        /// The payment's idempotency key.
        key: String,
        /// Why.
        detail: String,
    },
    /// Earlier payments are still in doubt and nothing new is sent until they are resolved:
    /// call `recover`.
    StillInDoubt {
        /// Which and why.
        detail: String,
    },
    /// A command under this key is running now: wait for it.
    KeyInUse {
        /// The key.
        key: String,
    },
    /// The journal (on the device) failed.
    Journal {
        /// Why.
        detail: String,
    },
    /// Anything else: the terminal or the connection failed a call that moves no money.
    Failed {
        /// Why.
        detail: String,
    },
}

impl fmt::Display for PosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput { detail } => write!(f, "invalid input: {detail}"),
            Self::NotPaired { detail } => write!(f, "not paired: {detail}"),
            Self::ConnectFailed { detail } => write!(f, "cannot connect: {detail}"),
            Self::Refused { code, detail } => write!(f, "refused ({code}): {detail}"),
            Self::InDoubt { key, detail } => write!(f, "payment {key} is in doubt: {detail}"),
            Self::StillInDoubt { detail } => write!(f, "earlier payments are in doubt: {detail}"),
            Self::KeyInUse { key } => write!(f, "a command under key {key} is running"),
            Self::Journal { detail } => write!(f, "journal: {detail}"),
            Self::Failed { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for PosError {}

fn invalid(detail: impl fmt::Display) -> PosError {
    PosError::InvalidInput {
        detail: detail.to_string(),
    }
}

fn failed(detail: impl fmt::Display) -> PosError {
    PosError::Failed {
        detail: detail.to_string(),
    }
}

impl<E: std::error::Error> From<PaymentError<E>> for PosError {
    fn from(e: PaymentError<E>) -> Self {
        let detail = e.to_string();
        match e {
            PaymentError::Invalid(c) => Self::Refused {
                code: c.error_code().0,
                detail,
            },
            PaymentError::Refused { refusal, .. } => Self::Refused {
                code: refusal.code.0,
                detail,
            },
            // Nothing charged, like a refusal: the detail says it was declined after the fact.
            PaymentError::AlreadyRefused { .. } | PaymentError::DeclinedAfter { .. } => {
                Self::Refused { code: 0, detail }
            }
            PaymentError::InDoubt(d) => Self::InDoubt {
                key: d.key.to_string(),
                detail,
            },
            PaymentError::NotSent { .. } => Self::ConnectFailed { detail },
            PaymentError::StillInDoubt(_) => Self::StillInDoubt { detail },
            PaymentError::KeyInUse(k) => Self::KeyInUse { key: k.to_string() },
            PaymentError::Journal(_) => Self::Journal { detail },
            _ => Self::Failed { detail },
        }
    }
}

/// How a payment came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum PaymentOutcome {
    /// Approved in full.
    Approved,
    /// Approved for less than asked (`approved_minor`).
    PartiallyApproved,
    /// Declined (`decline_code`): no money moved.
    Declined,
    /// Cancelled before it completed: no money moved.
    Cancelled,
    /// Failed at the terminal: no money moved.
    Failed,
}

/// A payment's final result.
#[derive(Clone, Debug, uniffi::Record)]
pub struct PaymentResult {
    /// Its idempotency key (32 hex digits): keep it for retries, status and refunds.
    pub key: String,
    /// The terminal's transaction id (32 hex digits).
    pub transaction_id: String,
    /// `sale`, `refund`, `void`, `pre_auth`, `capture`, …
    pub kind: String,
    /// How it came out.
    pub outcome: PaymentOutcome,
    /// The issuer's or terminal's code when declined or failed.
    pub decline_code: Option<u16>,
    /// The amount asked for, in minor units.
    pub amount_minor: u64,
    /// Its currency (ISO 4217 alphabetic).
    pub currency: String,
    /// The amount approved, in minor units.
    pub approved_minor: u64,
    /// The tip, in minor units.
    pub tip_minor: Option<u64>,
    /// The card scheme.
    pub card_scheme: Option<String>,
    /// The masked card number.
    pub masked_pan: Option<String>,
    /// The issuer's authorisation code.
    pub auth_code: Option<String>,
    /// Approved offline, to be forwarded later.
    pub offline: bool,
    /// Signed by the terminal (and the signature verified before it was journaled).
    pub signed: bool,
    /// When the terminal completed it, milliseconds since 1970 (UTC).
    pub time_ms: u64,
}

fn kind_name(kind: posbridge_wire::TransactionKind) -> String {
    use posbridge_wire::TransactionKind as K;
    match kind {
        K::Sale => "sale",
        K::Refund => "refund",
        K::Void => "void",
        K::PreAuth => "pre_auth",
        K::IncrementalAuth => "incremental_auth",
        K::Capture => "capture",
        K::PreAuthCancel => "pre_auth_cancel",
        K::BalanceInquiry => "balance_inquiry",
        _ => "unknown",
    }
    .into()
}

fn outcome_of(o: posbridge_wire::Outcome) -> (PaymentOutcome, Option<u16>) {
    use posbridge_wire::Outcome as O;
    match o {
        O::Approved => (PaymentOutcome::Approved, None),
        O::PartiallyApproved => (PaymentOutcome::PartiallyApproved, None),
        O::Declined(r) => (PaymentOutcome::Declined, Some(r.0)),
        O::Cancelled => (PaymentOutcome::Cancelled, None),
        O::Failed(c) => (PaymentOutcome::Failed, Some(c.0)),
        _ => (PaymentOutcome::Failed, None),
    }
}

impl From<&TransactionResult> for PaymentResult {
    fn from(r: &TransactionResult) -> Self {
        let (outcome, decline_code) = outcome_of(r.outcome);
        Self {
            key: r.idempotency_key.to_string(),
            transaction_id: r.transaction_id.to_string(),
            kind: kind_name(r.kind),
            outcome,
            decline_code,
            amount_minor: r.amount.minor,
            currency: currency_name(r.amount.currency),
            approved_minor: r.approved_minor,
            tip_minor: r.tip,
            card_scheme: r.card_scheme.clone(),
            masked_pan: r.pan.map(|p| p.to_string()),
            auth_code: r.auth_code.clone(),
            offline: r.offline,
            signed: r.signature.is_some(),
            time_ms: r.time.0,
        }
    }
}

/// A step a running payment reached.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ProgressUpdate {
    /// The payment's key.
    pub key: String,
    /// The stage (`WaitingForCard`, `CardRead`, `PinEntry`, `ProcessingOnline`, …).
    pub stage: String,
    /// The terminal's own words, if any.
    pub detail: Option<String>,
}

/// What the app implements to hear of progress (called on one of posbridge's threads).
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// A payment reached a stage.
    fn on_progress(&self, update: ProgressUpdate);
}

/// An operator authorising a refund, void, capture or settlement.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Operator {
    /// The operator's name, as configured on the terminal.
    pub name: String,
    /// The PIN (4 to 12 digits). Never journaled.
    pub pin: String,
}

/// A journaled command.
#[derive(Clone, Debug, uniffi::Record)]
pub struct JournalEntry {
    /// Its key.
    pub key: String,
    /// Its kind.
    pub kind: String,
    /// `intent`, `sent`, `in_doubt`, `done`, `rejected`; for a payment approved offline
    /// `offline_pending` (counted, its final outcome awaited) or `declined_after` (declined by
    /// the issuer after the fact: not charged).
    pub state: String,
    /// Its amount in minor units (0 for a void).
    pub amount_minor: u64,
    /// Its result, once known.
    pub result: Option<PaymentResult>,
}

/// What recovery did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RecoveryReport {
    /// Keys whose results the terminal had, now journaled.
    pub recorded: Vec<String>,
    /// Keys the terminal never took: not charged.
    pub not_taken: Vec<String>,
    /// Keys sent again (the terminal never had them).
    pub resent: Vec<String>,
    /// Keys still running on the terminal.
    pub running: Vec<String>,
    /// Keys left in doubt, with why.
    pub unresolved: Vec<String>,
    /// Payments approved offline that the acquirer has now confirmed.
    pub confirmed_offline: Vec<String>,
    /// Payments approved offline that the issuer declined after the fact: not charged.
    pub declined_after: Vec<String>,
    /// Payments approved offline whose final outcome is not known yet (counted as approved).
    pub pending_offline: Vec<String>,
}

/// The terminal's state beyond payments (native protocol 1.1).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TerminalStatus {
    /// Battery charge, 0–100 %, if it has a battery.
    pub battery_percent: Option<u8>,
    /// Whether the battery is charging.
    pub charging: bool,
    /// `battery`, `mains` or `usb`, if known.
    pub power: Option<String>,
    /// The firmware version.
    pub firmware: Option<String>,
    /// The payment application's version.
    pub app_version: Option<String>,
    /// The printer's paper: `ok`, `low` or `out`; `None` without a printer.
    pub paper: Option<String>,
    /// Whether the acquirer is reachable (offline: payments are approved offline within the
    /// terminal's limits, or declined).
    pub acquirer_online: bool,
    /// Payments approved offline and not yet forwarded.
    pub stored_offline: u32,
}

/// Where this till stands with the terminal's lease (one terminal, several tills).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Lease {
    /// `granted`, `queued`, `busy`, `released` or `expired` (`unknown`: a state of a later
    /// protocol than this build knows).
    pub state: String,
    /// Who holds the terminal, when another till does.
    pub holder: Option<String>,
    /// The place in the queue (1: next), when queued.
    pub position: Option<u32>,
    /// Milliseconds left, when granted (every request of this till renews it).
    pub expires_in_ms: Option<u32>,
}

/// A line of the cart shown on the customer display.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CartItem {
    /// What it is ("Cappuccino").
    pub text: String,
    /// How many, when more than one is worth saying.
    pub quantity: Option<u32>,
    /// The line's amount, as people write it (`3.80`).
    pub amount: String,
}

/// A question for the customer on the terminal's screen.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CustomerQuestion {
    /// A tip on `base` (as people write it) in `currency`: one of `presets` (percentages), no
    /// tip, or — when `custom` — an amount the customer types.
    Tip {
        /// The amount the tip is on.
        base: String,
        /// Its currency (`EUR`).
        currency: String,
        /// The percentages offered.
        presets: Vec<u16>,
        /// Whether the customer may type an amount.
        custom: bool,
    },
    /// Yes or no.
    YesNo,
    /// A whole number between `min` and `max`.
    Number {
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A signature drawn on the screen.
    Signature,
}

/// The customer's answer.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CustomerAnswer {
    /// The tip chosen, in minor units (0: no tip).
    Tip {
        /// The tip.
        amount_minor: u64,
    },
    /// Yes or no.
    Confirmed {
        /// Yes.
        yes: bool,
    },
    /// The number typed.
    Number {
        /// The number.
        value: u64,
    },
    /// The signature, a PNG image.
    Signature {
        /// The image.
        png: Vec<u8>,
    },
    /// The customer did not answer in time.
    TimedOut,
    /// The question was cancelled.
    Cancelled,
}

impl From<posbridge_wire::Telemetry> for TerminalStatus {
    fn from(t: posbridge_wire::Telemetry) -> Self {
        let name = |v: &dyn fmt::Debug| posbridge_wire::snake_name(v);
        Self {
            battery_percent: t.battery_percent,
            charging: t.charging,
            power: t.power.as_ref().map(|p| name(p)),
            firmware: t.firmware,
            app_version: t.app_version,
            paper: t.paper.as_ref().map(|p| name(p)),
            acquirer_online: t.acquirer == posbridge_wire::AcquirerLink::Online,
            stored_offline: t.stored_offline,
        }
    }
}

impl From<posbridge_wire::LeaseState> for Lease {
    fn from(s: posbridge_wire::LeaseState) -> Self {
        use posbridge_wire::LeaseState as L;
        let lease = |state: &str| Self {
            state: state.into(),
            holder: None,
            position: None,
            expires_in_ms: None,
        };
        match s {
            L::Granted { expires_in_ms } => Self {
                expires_in_ms: Some(expires_in_ms),
                ..lease("granted")
            },
            L::Queued { position, holder } => Self {
                position: Some(position),
                holder: Some(holder),
                ..lease("queued")
            },
            L::Busy { holder } => Self {
                holder: Some(holder),
                ..lease("busy")
            },
            L::Released => lease("released"),
            L::Expired => lease("expired"),
            // A state of a later protocol than this build knows.
            _ => lease("unknown"),
        }
    }
}

/// A closed batch.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Settlement {
    /// The batch's number.
    pub batch_number: u32,
    /// Per kind and currency: `kind`, `currency`, count, amount.
    pub totals: Vec<Total>,
    /// The terminal's totals equal the journal's.
    pub reconciled: bool,
}

/// One line of a settlement's totals.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Total {
    /// The kind.
    pub kind: String,
    /// The currency.
    pub currency: String,
    /// How many.
    pub count: u32,
    /// Their sum, minor units.
    pub amount_minor: u64,
}

/// How to reach and pair with a terminal.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ConnectOptions {
    /// `host:port` of the terminal's native protocol.
    pub address: String,
    /// Where this till keeps its keys, the pairing and the journal (`journal.db`): one directory
    /// per terminal, private to the app.
    pub data_dir: String,
    /// The code the terminal shows, to pair now; `None` to use the pairing kept in `data_dir`.
    pub pairing_code: Option<String>,
    /// This till's name, as the terminal shows it.
    pub till_name: String,
    /// TLS to the terminal, its certificate pinned to this SHA-256 fingerprint (64 hex digits,
    /// colons optional); `None`: plain TCP (the native protocol is encrypted end to end either
    /// way).
    #[uniffi(default = None)]
    pub tls_pin: Option<String>,
}

/// A native terminal.
type Native = Payments<SqliteJournal>;
/// A ZVT terminal.
type Zvt = posbridge_zvt::client::ZvtTerminal<SqliteJournal>;
/// A nexo terminal.
type Nexo = posbridge_nexo::NexoTerminal<posbridge_nexo::https::HttpsTransport, SqliteJournal>;
/// A terminal of any of the three protocols, as one `PaymentTerminal`.
type Inner = posbridge_api::Either<Native, posbridge_api::Either<Zvt, Nexo>>;

fn journal_of(t: &Inner) -> std::sync::MutexGuard<'_, SqliteJournal> {
    use posbridge_api::Either::{Left, Right};
    match t {
        Left(t) => t.journal(),
        Right(Left(t)) => t.journal(),
        Right(Right(t)) => t.journal(),
    }
}

fn terminal_key_of(t: &Inner) -> Option<posbridge_wire::PublicKey> {
    use posbridge_api::Either::{Left, Right};
    match t {
        Left(t) => t.adapter().terminal_key(),
        Right(Left(t)) => t.adapter().terminal_key(),
        Right(Right(t)) => t.adapter().terminal_key(),
    }
}

async fn close_inner(t: Inner) {
    use posbridge_api::Either::{Left, Right};
    match t {
        Left(t) => Adapter::close(t.into_parts().0).await,
        Right(Left(t)) => Adapter::close(t.into_parts().0).await,
        Right(Right(t)) => Adapter::close(t.into_parts().0).await,
    }
}

/// A connected terminal of any protocol (native, ZVT, nexo): see the crate.
#[derive(uniffi::Object)]
pub struct Terminal {
    /// `None` once closed.
    inner: tokio::sync::RwLock<Option<Inner>>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The tasks carrying an app-supplied stream's bytes (they end once it is closed).
    pumps: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Progress for [`Terminal::next_progress`], subscribed at connecting.
    progress: tokio::sync::Mutex<Option<posbridge::ProgressEvents>>,
    /// What the terminal said it is and accepts, when connecting.
    info: TerminalInfo,
}

/// An amount limit of one kind of payment in one currency.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AmountLimit {
    /// The kind (`sale`, `refund`, …).
    pub kind: String,
    /// The currency (ISO 4217 alphabetic).
    pub currency: String,
    /// The smallest amount, minor units.
    pub min_minor: u64,
    /// The largest amount, minor units.
    pub max_minor: u64,
}

/// What a terminal is and accepts: commands outside it are refused before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TerminalInfo {
    /// The terminal's permanent id (32 hex digits).
    pub terminal_id: String,
    /// Its model.
    pub model: Option<String>,
    /// Its firmware version.
    pub firmware: Option<String>,
    /// Its serial number.
    pub serial_number: Option<String>,
    /// The merchant's name as configured on it.
    pub merchant_name: Option<String>,
    /// The native protocol version in use (1 is 1.0); for ZVT and nexo what their adapters report.
    pub protocol_version: u16,
    /// Kinds of payment enabled (`sale`, `refund`, `void`, `pre_auth`, `capture`, …).
    pub kinds: Vec<String>,
    /// Payment methods enabled (`chip`, `contactless`, `swipe`, `customer_qr`, …).
    pub methods: Vec<String>,
    /// Currencies accepted (ISO 4217 alphabetic).
    pub currencies: Vec<String>,
    /// Amount limits; a kind and currency without one has none beyond the protocol's.
    pub limits: Vec<AmountLimit>,
    /// Optional abilities (`tipping`, `cashback`, `partial_approval`, `offline_approval`,
    /// `signature_capture`, `printer`, `operator_totp`).
    pub features: Vec<String>,
}

fn currency_name(c: posbridge_wire::Currency) -> String {
    alpha_code(c).map_or_else(|| c.code().to_string(), str::to_owned)
}

impl From<&posbridge_wire::Capabilities> for TerminalInfo {
    fn from(c: &posbridge_wire::Capabilities) -> Self {
        Self {
            terminal_id: c.terminal_id.to_string(),
            model: c.model.clone(),
            firmware: c.firmware.clone(),
            serial_number: c.serial_number.clone(),
            merchant_name: c.merchant_name.clone(),
            protocol_version: c.selected_version,
            kinds: c.kinds.iter().map(kind_name).collect(),
            methods: c
                .methods
                .iter()
                .map(|m| posbridge_wire::snake_name(&m))
                .collect(),
            currencies: c.currencies.iter().copied().map(currency_name).collect(),
            limits: c
                .limits
                .iter()
                .map(|l| AmountLimit {
                    kind: kind_name(l.kind),
                    currency: currency_name(l.currency),
                    min_minor: l.min,
                    max_minor: l.max,
                })
                .collect(),
            features: c
                .features
                .iter()
                .map(|f| posbridge_wire::snake_name(&f))
                .collect(),
        }
    }
}

fn closed() -> PosError {
    PosError::Failed {
        detail: "the terminal was closed: connect again".into(),
    }
}

impl fmt::Debug for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Terminal")
    }
}

fn hello(name: &str) -> Hello {
    Hello {
        client_id: ClientId::from_u128(0x0FF1),
        client_name: Some(name.into()),
        app_version: Some(concat!("posbridge-ffi ", env!("CARGO_PKG_VERSION")).into()),
        protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
        max_frame_size: None,
    }
}

/// Connects to the terminal `options` describe (pairing first when a code is given); this till's
/// identity and the pairing are kept in files under the data directory (owner-only).
#[uniffi::export]
pub async fn connect(options: ConnectOptions) -> Result<Arc<Terminal>, PosError> {
    on_runtime(connect_inner(options, None)).await
}

/// [`connect`], with this till's identity and the pairing kept in the app's `store` (the
/// platform keystore) instead of files; the journal stays in the data directory.
#[uniffi::export]
pub async fn connect_with_store(
    options: ConnectOptions,
    store: Arc<dyn SecretStore>,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(connect_inner(options, Some(store))).await
}

async fn connect_inner(
    options: ConnectOptions,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    let config = tcp_config(options.tls_pin.as_deref())?;
    let link = posbridge::tcp::connect(&options.address, &config)
        .await
        .map_err(|e| PosError::ConnectFailed {
            detail: e.to_string(),
        })?;
    connect_link_stored(
        link,
        options.data_dir,
        options.pairing_code,
        options.till_name,
        store,
    )
    .await
}

/// Plain TCP, or TLS with the terminal's certificate pinned to `pin` (SHA-256, 64 hex digits).
fn tcp_config(pin: Option<&str>) -> Result<posbridge::tcp::TcpConfig, PosError> {
    let mut config = posbridge::tcp::TcpConfig::default();
    if let Some(pin) = pin {
        let pin: posbridge_tcp::Fingerprint = pin
            .parse()
            .map_err(|_| invalid(format!("TLS pin {pin:?}: 64 hex digits, colons optional")))?;
        config.set_tls(Some(
            posbridge_tcp::TlsClientConfig::new(
                "posbridge-terminal",
                posbridge_tcp::ServerVerification::Pinned(vec![pin]),
                posbridge_tcp::TlsVersions::Tls12AndTls13,
            )
            .map_err(|e| invalid(e.to_string()))?,
        ));
    }
    Ok(config)
}

/// Pairs (or reconnects) over `link`, the identity and pairing in the app's `store` when given,
/// else in files under `data_dir`.
async fn connect_link_stored(
    link: impl posbridge_link::Link + 'static,
    data_dir: String,
    pairing_code: Option<String>,
    till_name: String,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    match store {
        Some(store) => {
            let pairing = pairing_code
                .as_deref()
                .map(PairingSecret::code)
                .transpose()
                .map_err(invalid)?;
            connect_link_with(
                link,
                data_dir,
                pairing,
                till_name,
                PairingStore::new(keystore::Foreign(store)),
            )
            .await
        }
        None => connect_link(link, data_dir, pairing_code, till_name).await,
    }
}

/// Connects to a terminal on a serial port (RS-232, or USB CDC-ACM seen as one) at `path`
/// (`/dev/ttyUSB0`, `COM3`), `baud` 8N1 — on desktops, where posbridge opens the port itself.
/// Pairing and the journal as for [`connect`].
#[uniffi::export]
pub async fn connect_serial(
    path: String,
    baud: u32,
    data_dir: String,
    pairing_code: Option<String>,
    till_name: String,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(async move {
        let config = posbridge::serial::SerialConfig {
            baud,
            ..Default::default()
        };
        let link =
            posbridge::serial::open(&path, &config).map_err(|e| PosError::ConnectFailed {
                detail: e.to_string(),
            })?;
        connect_link(link, data_dir, pairing_code, till_name).await
    })
    .await
}

/// Pairs (or reconnects) over `link` with the keys, pairing and journal in `data_dir`.
async fn connect_link(
    link: impl posbridge_link::Link + 'static,
    data_dir: String,
    pairing_code: Option<String>,
    till_name: String,
) -> Result<Arc<Terminal>, PosError> {
    let pairing = pairing_code
        .as_deref()
        .map(PairingSecret::code)
        .transpose()
        .map_err(invalid)?;
    connect_link_paired(link, data_dir, pairing, till_name).await
}

/// [`connect_link`] with a pairing secret of any kind (a typed code, a handover's secret).
async fn connect_link_paired(
    link: impl posbridge_link::Link + 'static,
    data_dir: String,
    pairing: Option<PairingSecret>,
    till_name: String,
) -> Result<Arc<Terminal>, PosError> {
    let dir = PathBuf::from(&data_dir);
    posbridge_crypto::owner_only::create_dir(&dir)
        .map_err(|e| invalid(format!("data_dir: {e}")))?;
    let store = PairingStore::new(FileKeyStore::open(dir.join("keys")).map_err(failed)?);
    connect_link_with(link, data_dir, pairing, till_name, store).await
}

/// [`connect_link`] with the identity and the pairing in `store`.
async fn connect_link_with<S: posbridge_crypto::KeyStore>(
    link: impl posbridge_link::Link + 'static,
    data_dir: String,
    pairing: Option<PairingSecret>,
    till_name: String,
    store: PairingStore<S>,
) -> Result<Arc<Terminal>, PosError> {
    let pairing_given = pairing.is_some();
    let dir = PathBuf::from(&data_dir);
    posbridge_crypto::owner_only::create_dir(&dir)
        .map_err(|e| invalid(format!("data_dir: {e}")))?;
    let identity: LocalIdentity = store
        .identity_or_generate(PeerId::random().map_err(failed)?, &till_name)
        .map_err(failed)?;
    let mut stored = None;
    let security = match pairing {
        Some(secret) => ClientSecurity::Pair(secret),
        None => {
            let records = store.records().map_err(failed)?;
            match records.as_slice() {
                [record] => {
                    stored = Some(record.clone());
                    ClientSecurity::Paired {
                        terminal_key: record.peer.channel_key,
                    }
                }
                [] => {
                    return Err(PosError::NotPaired {
                        detail: "no pairing is kept for this till: connect with the code the terminal shows".into(),
                    });
                }
                _ => {
                    return Err(invalid(
                        "the data directory holds several pairings: use one directory per terminal",
                    ));
                }
            }
        }
    };
    let journal = SqliteJournal::open(dir.join("journal.db")).map_err(|e| PosError::Journal {
        detail: e.to_string(),
    })?;
    let client = NativeClient::connect(
        link,
        NativeOptions {
            session: SessionConfig::default(),
            identity: Arc::new(identity),
            security,
            hello: hello(&till_name),
            timeout: Duration::from_secs(30),
        },
    )
    .await
    .map_err(|e| {
        let detail = e.to_string();
        if !pairing_given && detail.contains("pair") {
            PosError::NotPaired { detail }
        } else {
            PosError::ConnectFailed { detail }
        }
    })?;
    let record = client
        .paired()
        .cloned()
        .or(stored)
        .ok_or_else(|| PosError::NotPaired {
            detail: "the terminal did not pair".into(),
        })?;
    if pairing_given {
        store.save(&record).map_err(failed)?;
    }
    Ok(Terminal::over(posbridge_api::Either::Left(Payments::new(
        NativeAdapter::new(client, Some(record.peer.signing_key)),
        journal,
    ))))
}

fn parse_key(key: Option<String>) -> Result<IdempotencyKey, PosError> {
    match key {
        Some(k) => IdempotencyKey::parse_hex(&k)
            .map_err(|_| invalid(format!("key {k:?}: 32 hex digits expected"))),
        None => Ok(IdempotencyKey(PeerId::random().map_err(failed)?.0)),
    }
}

fn money(amount: &str, currency: &str) -> Result<Amount, PosError> {
    let currency = parse_currency(currency).map_err(invalid)?;
    Ok(Amount::new(
        parse_amount(amount, currency).map_err(invalid)?,
        currency,
    ))
}

fn operator(op: Option<Operator>) -> Result<Option<OperatorAuth>, PosError> {
    op.map(|o| {
        Ok(OperatorAuth {
            operator_id: o.name,
            credential: Credential::Pin(
                OperatorSecret::new(&o.pin).map_err(|_| invalid("a PIN has 4 to 12 digits"))?,
            ),
        })
    })
    .transpose()
}

fn original(key: &str) -> Result<TransactionRef, PosError> {
    Ok(TransactionRef::Key(parse_key(Some(key.to_owned()))?))
}

const DEADLINE: Duration = Duration::from_secs(120);

impl Terminal {
    fn over(inner: Inner) -> Arc<Self> {
        // Subscribed now, so that no report is missed before the app first asks.
        let progress = inner.progress();
        let info = TerminalInfo::from(inner.capabilities());
        Arc::new(Self {
            info,
            inner: tokio::sync::RwLock::new(Some(inner)),
            listener: Mutex::new(None),
            pumps: Mutex::new(Vec::new()),
            progress: tokio::sync::Mutex::new(Some(progress)),
        })
    }

    async fn run(
        self: Arc<Self>,
        key: IdempotencyKey,
        command: TransactionCommand,
        operator: Option<OperatorAuth>,
    ) -> Result<PaymentResult, PosError> {
        on_runtime(async move {
            let mut call = Call::within(DEADLINE);
            call.operator = operator;
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            let r = t.execute(key, command, call).await?;
            Ok(PaymentResult::from(&r))
        })
        .await
    }
}

#[uniffi::export]
impl Terminal {
    /// A sale of `amount` (as people write it: `12.50`) in `currency` (`EUR`), under `key` (32
    /// hex digits; a new one when `None` — keep it from the result for a retry).
    pub async fn sale(
        self: Arc<Self>,
        amount: String,
        currency: String,
        key: Option<String>,
    ) -> Result<PaymentResult, PosError> {
        let command = TransactionCommand::Sale {
            amount: money(&amount, &currency)?,
            tip: None,
            cashback: None,
        };
        self.run(parse_key(key)?, command, None).await
    }

    /// A refund, of the sale under `original_key` or unreferenced, authorised by `operator`.
    pub async fn refund(
        self: Arc<Self>,
        amount: String,
        currency: String,
        original_key: Option<String>,
        operator: Option<Operator>,
        key: Option<String>,
    ) -> Result<PaymentResult, PosError> {
        let command = TransactionCommand::Refund {
            amount: money(&amount, &currency)?,
            original: original_key.as_deref().map(original).transpose()?,
        };
        self.run(parse_key(key)?, command, crate::operator(operator)?)
            .await
    }

    /// Cancels the transaction under `original_key` (of the open batch).
    pub async fn void(
        self: Arc<Self>,
        original_key: String,
        operator: Option<Operator>,
        key: Option<String>,
    ) -> Result<PaymentResult, PosError> {
        let command = TransactionCommand::Void {
            original: original(&original_key)?,
        };
        self.run(parse_key(key)?, command, crate::operator(operator)?)
            .await
    }

    /// Reserves `amount` (hotels, car rental, fuel).
    pub async fn preauth(
        self: Arc<Self>,
        amount: String,
        currency: String,
        key: Option<String>,
    ) -> Result<PaymentResult, PosError> {
        let command = TransactionCommand::PreAuth {
            amount: money(&amount, &currency)?,
        };
        self.run(parse_key(key)?, command, None).await
    }

    /// Completes the pre-authorisation under `original_key` with the final `amount`.
    pub async fn capture(
        self: Arc<Self>,
        original_key: String,
        amount: String,
        currency: String,
        operator: Option<Operator>,
        key: Option<String>,
    ) -> Result<PaymentResult, PosError> {
        let command = TransactionCommand::Capture {
            original: original(&original_key)?,
            amount: money(&amount, &currency)?,
            tip: None,
        };
        self.run(parse_key(key)?, command, crate::operator(operator)?)
            .await
    }

    /// Asks the terminal to abort the payment running now (its own call then returns the
    /// cancelled result, or the real one if it was too late).
    pub async fn cancel(self: Arc<Self>) -> Result<(), PosError> {
        on_runtime(async move {
            let guard = self.inner.read().await;
            Ok(guard.as_ref().ok_or_else(closed)?.cancel().await?)
        })
        .await
    }

    /// What became of the payment under `key`: its result, or `None` while it runs or when the
    /// terminal never saw it (then it may be sent again under the same key).
    pub async fn status(self: Arc<Self>, key: String) -> Result<Option<PaymentResult>, PosError> {
        let key = parse_key(Some(key))?;
        on_runtime(async move {
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            Ok(match t.status(key, Duration::from_secs(30)).await? {
                TransactionStatus::Done(r) => Some(PaymentResult::from(&*r)),
                _ => None,
            })
        })
        .await
    }

    /// Resolves every payment the journal holds in doubt by asking the terminal.
    pub async fn recover(self: Arc<Self>) -> Result<RecoveryReport, PosError> {
        on_runtime(async move {
            let guard = self.inner.read().await;
            let r = guard
                .as_ref()
                .ok_or_else(closed)?
                .recover(Duration::from_secs(60))
                .await?;
            let hex = |v: &[IdempotencyKey]| v.iter().map(|k| k.to_string()).collect();
            Ok(RecoveryReport {
                recorded: hex(&r.recorded),
                not_taken: hex(&r.not_taken),
                resent: hex(&r.resent),
                running: hex(&r.running),
                unresolved: r
                    .unresolved
                    .iter()
                    .map(|u| format!("{}: {:?}", u.key, u.reason))
                    .collect(),
                confirmed_offline: hex(&r.confirmed_offline),
                declined_after: hex(&r.declined_after),
                pending_offline: hex(&r.pending_offline),
            })
        })
        .await
    }

    /// Closes the batch, authorised by `operator`, and reconciles it with the journal.
    pub async fn settle(
        self: Arc<Self>,
        operator: Option<Operator>,
    ) -> Result<Settlement, PosError> {
        let operator = crate::operator(operator)?;
        on_runtime(async move {
            let key = parse_key(None)?;
            let mut call = Call::within(DEADLINE);
            call.operator = operator;
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            let s = t.settle(key, call).await?;
            let entries =
                journal_of(t)
                    .query(&Query::default())
                    .map_err(|e| PosError::Journal {
                        detail: e.to_string(),
                    })?;
            let reconciled = posbridge::reconcile(&entries, &s, terminal_key_of(t).as_ref())
                .is_clean()
                && s.status.is_ok();
            Ok(Settlement {
                batch_number: s.batch_number,
                totals: s
                    .totals
                    .iter()
                    .map(|t| Total {
                        kind: kind_name(t.kind),
                        currency: alpha_code(t.currency)
                            .map_or_else(|| t.currency.code().to_string(), str::to_owned),
                        count: t.count,
                        amount_minor: t.amount,
                    })
                    .collect(),
                reconciled,
            })
        })
        .await
    }

    /// The journal's entries, oldest first.
    pub fn journal(&self) -> Result<Vec<JournalEntry>, PosError> {
        self.entries(|_| true)
    }

    /// The whole journal, oldest first, as JSON Lines (`csv` false: one object per command) or
    /// CSV (`csv` true: for spreadsheets and accountants) — posbridge-journal's export: keys,
    /// kinds, states, amounts (as strings of digits), outcomes and codes, masked card numbers,
    /// transaction ids, each signature checked offline against the key journaled with it
    /// (`valid`, `INVALID`, `unsigned`, `no_key`), times. Never PINs.
    pub fn export_journal(&self, csv: bool) -> Result<String, PosError> {
        let guard = self.inner.blocking_read();
        let all = journal_of(guard.as_ref().ok_or_else(closed)?)
            .query(&Query::default())
            .map_err(|e| PosError::Journal {
                detail: e.to_string(),
            })?;
        let mut out = Vec::new();
        let written = if csv {
            posbridge::journal::export_csv(&all, &mut out)
        } else {
            posbridge::journal::export_jsonl(&all, &mut out)
        };
        written.map_err(failed)?;
        String::from_utf8(out).map_err(failed)
    }

    /// What the terminal said it is and accepts when connecting: id, model, firmware, kinds,
    /// methods, currencies, limits and features.
    pub fn info(&self) -> TerminalInfo {
        self.info.clone()
    }

    /// The entries in doubt.
    pub fn in_doubt(&self) -> Result<Vec<JournalEntry>, PosError> {
        self.entries(|s| s == EntryState::InDoubt)
    }

    /// Calls `listener` for every progress report of the payments this terminal runs (replacing
    /// an earlier listener).
    pub fn set_progress_listener(&self, listener: Arc<dyn ProgressListener>) {
        let Some(mut events) = self.inner.blocking_read().as_ref().map(|t| t.progress()) else {
            return;
        };
        let task = RUNTIME.spawn(async move {
            while let Some(p) = events.next().await {
                listener.on_progress(ProgressUpdate {
                    key: p.key.to_string(),
                    stage: format!("{:?}", p.stage),
                    detail: p.message,
                });
            }
        });
        if let Some(old) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task)
        {
            old.abort();
        }
    }

    /// The next progress report of a payment this terminal runs, waiting for it: an async
    /// stream for apps that prefer one to a listener (`while (u = await next_progress())`).
    /// `None` once the terminal is disconnected. Reports since connecting that nobody read yet
    /// are kept (up to 256; older ones are dropped).
    pub async fn next_progress(self: Arc<Self>) -> Option<ProgressUpdate> {
        on_runtime(async move {
            let mut slot = self.progress.lock().await;
            let p = slot.as_mut()?.next().await?;
            Some(ProgressUpdate {
                key: p.key.to_string(),
                stage: format!("{:?}", p.stage),
                detail: p.message,
            })
        })
        .await
    }

    /// Whether the connection is up (a closed one needs `connect` again; the journal is kept).
    pub fn is_connected(&self) -> bool {
        use posbridge_api::Either::{Left, Right};
        match self.inner.blocking_read().as_ref() {
            None => false,
            Some(Left(t)) => !t.adapter().is_closed(),
            Some(Right(Left(t))) => !t.adapter().is_closed(),
            Some(Right(Right(t))) => !t.adapter().is_closed(),
        }
    }

    /// The terminal's battery, power, software, paper, acquirer link and payments stored
    /// offline (native protocol 1.1); `None` from a terminal or protocol that does not report
    /// them (ZVT, nexo, a native terminal of protocol 1.0).
    pub async fn terminal_status(self: Arc<Self>) -> Result<Option<TerminalStatus>, PosError> {
        on_runtime(async move {
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            Ok(t.telemetry(Duration::from_secs(20))
                .await?
                .map(TerminalStatus::from))
        })
        .await
    }

    /// Takes the terminal's lease for `seconds` as `holder` (the name other tills see); with
    /// `wait_seconds`, queues and waits up to that long for it. `None` from a terminal without
    /// leases.
    pub async fn acquire(
        self: Arc<Self>,
        holder: String,
        seconds: u32,
        wait_seconds: Option<u32>,
    ) -> Result<Option<Lease>, PosError> {
        on_runtime(async move {
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            Ok(t.acquire(
                &holder,
                Duration::from_secs(seconds.into()),
                wait_seconds.map(|w| Duration::from_secs(w.into())),
            )
            .await?
            .map(Lease::from))
        })
        .await
    }

    /// Gives the terminal's lease back (or leaves its queue).
    pub async fn release(self: Arc<Self>) -> Result<(), PosError> {
        on_runtime(async move {
            let guard = self.inner.read().await;
            guard.as_ref().ok_or_else(closed)?.release().await?;
            Ok(())
        })
        .await
    }

    /// Shows the cart on the customer display: `items`, the `total` to pay in `currency` and a
    /// line under it. `false` from a terminal without a customer display a till drives.
    pub async fn show_cart(
        self: Arc<Self>,
        items: Vec<CartItem>,
        total: String,
        currency: String,
        message: Option<String>,
    ) -> Result<bool, PosError> {
        let total = money(&total, &currency)?;
        let lines = items
            .into_iter()
            .map(|i| {
                Ok(posbridge_wire::CartLine {
                    amount: money(&i.amount, &currency)?.minor,
                    text: i.text,
                    quantity: i.quantity,
                })
            })
            .collect::<Result<Vec<_>, PosError>>()?;
        let cart = posbridge::Cart {
            lines,
            currency: total.currency,
            total: total.minor,
            message,
        };
        on_runtime(async move {
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            Ok(t.show_cart(&cart, Duration::from_secs(20)).await?)
        })
        .await
    }

    /// Asks the customer `question` on the terminal's screen, showing `prompt`, for up to
    /// `timeout_seconds` (at most 300); `None` from a terminal that cannot ask.
    pub async fn ask_customer(
        self: Arc<Self>,
        prompt: String,
        question: CustomerQuestion,
        timeout_seconds: u32,
    ) -> Result<Option<CustomerAnswer>, PosError> {
        use posbridge_wire::CustomerQuestion as Q;
        let question = match question {
            CustomerQuestion::Tip {
                base,
                currency,
                presets,
                custom,
            } => {
                let base = money(&base, &currency)?;
                Q::Tip {
                    base: base.minor,
                    currency: base.currency,
                    presets,
                    custom,
                }
            }
            CustomerQuestion::YesNo => Q::YesNo,
            CustomerQuestion::Number { min, max } => Q::Number { min, max },
            CustomerQuestion::Signature => Q::Signature,
        };
        let prompt = posbridge::CustomerPrompt {
            prompt,
            question,
            timeout: Duration::from_secs(timeout_seconds.into()),
        };
        on_runtime(async move {
            use posbridge_wire::CustomerReply as R;
            let guard = self.inner.read().await;
            let t = guard.as_ref().ok_or_else(closed)?;
            Ok(match t.ask_customer(&prompt).await? {
                None => None,
                Some(R::Tip(amount_minor)) => Some(CustomerAnswer::Tip { amount_minor }),
                Some(R::Confirmed(yes)) => Some(CustomerAnswer::Confirmed { yes }),
                Some(R::Number(value)) => Some(CustomerAnswer::Number { value }),
                Some(R::Signature(png)) => Some(CustomerAnswer::Signature { png }),
                Some(R::TimedOut) => Some(CustomerAnswer::TimedOut),
                Some(R::Cancelled) => Some(CustomerAnswer::Cancelled),
                Some(other) => {
                    return Err(failed(format!("an answer that is not one: {other:?}")));
                }
            })
        })
        .await
    }

    /// Ends the connection (the journal stays in the data directory). Named so because Kotlin
    /// objects already have `close()` (freeing the object).
    pub async fn disconnect(self: Arc<Self>) {
        on_runtime(async move {
            if let Some(t) = self
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                t.abort();
            }
            if let Some(t) = self.inner.write().await.take() {
                close_inner(t).await;
            }
            self.progress.lock().await.take();
            // An app's stream is closed once the connection is; wait for its last calls into the
            // app, so that none is left running when the app goes on (or exits).
            let pumps: Vec<_> = self
                .pumps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
                .collect();
            for mut pump in pumps {
                if tokio::time::timeout(Duration::from_secs(2), &mut pump)
                    .await
                    .is_err()
                {
                    pump.abort();
                }
            }
        })
        .await
    }
}

impl Terminal {
    fn entries(&self, pick: impl Fn(EntryState) -> bool) -> Result<Vec<JournalEntry>, PosError> {
        let guard = self.inner.blocking_read();
        let all = journal_of(guard.as_ref().ok_or_else(closed)?)
            .query(&Query::default())
            .map_err(|e| PosError::Journal {
                detail: e.to_string(),
            })?;
        Ok(all
            .into_iter()
            .filter(|e| pick(e.state))
            .map(|e| JournalEntry {
                key: e.key().to_string(),
                kind: kind_name(e.kind()),
                state: e.state.as_str().to_string(),
                amount_minor: e.amount().map_or(0, |a| a.minor),
                result: e.result.as_ref().map(PaymentResult::from),
            })
            .collect())
    }
}

/// posbridge's version.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}
