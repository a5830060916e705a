//! The ZVT client (the cash register's side, "ECR"): [`ZvtTerminal`] implements
//! `posbridge::PaymentTerminal` over TCP, TLS or serial links, with the journal.
//!
//! One background task owns the link and runs one exchange at a time, the way ZVT works: the
//! register sends a command and waits up to [`ZvtConfig::ack_timeout`] (the specification's T3,
//! 5 s) for `80 00`; from then on the terminal is master and sends intermediate states, the
//! status information, print lines and text blocks, and ends with a completion (`06 0F`) or an
//! abort (`06 1E`) — each answered `80 00` by the register. Abort (`06 B0`) is sent into a
//! running exchange by [`cancel`](posbridge::PaymentTerminal::cancel).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use posbridge_api::{
    Adapter, Answer, CallError, DoubtReason, Engine, Records, Refusal, Resolution, forward_while,
    wall_clock,
};
use posbridge_journal::{Entry, Journal};
use posbridge_link::Link;
use posbridge_wire::{
    Amount, Capabilities, Currency, ErrorCode, FeatureSet, IdempotencyKey, KindSet, MaskedPan,
    MethodSet, OperatorAuth, Outcome, PaymentMethod, Receipt, ReceiptCopy, RequestId,
    SettlementResult, TerminalId, Timestamp, Totals, TransactionCommand, TransactionId,
    TransactionKind, TransactionRef, TransactionRequest, TransactionResult,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::bmp::Bmp;
use crate::codes::{self, ZvtRef};
pub use crate::exchange::Exchange;
use crate::exchange::{Ended, Register, RegisterEvent, text};
use crate::transport::{Framing, TransportError, ZvtLink};
use crate::{Apdu, Command};

/// Configuration byte: the register prints payment receipts (the terminal sends them).
pub const CONFIG_ECR_PRINTS_PAYMENT: u8 = 0x02;
/// Configuration byte: the register prints administration receipts (end-of-day).
pub const CONFIG_ECR_PRINTS_ADMIN: u8 = 0x04;
/// Configuration byte: the terminal sends intermediate states.
pub const CONFIG_INTERMEDIATE_STATUS: u8 = 0x08;
/// Configuration byte: amounts are entered at the register only.
pub const CONFIG_ECR_CONTROLS_PAYMENT: u8 = 0x10;
/// Configuration byte: administration is started from the register only.
pub const CONFIG_ECR_CONTROLS_ADMIN: u8 = 0x20;
/// Configuration byte: receipts as text blocks (`06 D3`) instead of lines (`06 D1`).
pub const CONFIG_TEXT_BLOCKS: u8 = 0x80;

/// How a [`ZvtTerminal`] registers and how long it waits.
#[derive(Clone, Debug)]
pub struct ZvtConfig {
    /// The terminal's password (6 digits; `000000` on most terminals out of the box).
    pub password: u32,
    /// The configuration byte sent with the registration (the `CONFIG_*` flags).
    pub config_byte: u8,
    /// The currency of every amount (the terminal refuses others).
    pub currency: Currency,
    /// How long to wait for `80 00` after a command (the specification's T3: 5 s).
    pub ack_timeout: Duration,
    /// How long the registration may take in all.
    pub registration_timeout: Duration,
    /// How far a terminal's clock may be off ours (either way, after its learnt offset) when
    /// recovery compares the time of its last transaction with when a command was journaled.
    pub clock_tolerance: Duration,
    /// The service byte (BMP `03`) sent with the registration, or none (the terminal keeps its
    /// own settings): a combination of [`SERVICE_MENU_OFF`] and [`SERVICE_CAPITALS`]
    /// (default: none).
    pub service_byte: Option<u8>,
    /// How the payment host's own result codes (`01`–`63`) are read: raw by default ("declined by
    /// the payment host, code 0x33"), or with a table chosen for the acquirer.
    pub host_codes: codes::HostCodes,
    /// The clock the client reads (default: the wall clock; the ZVT schedules give it
    /// simulated time).
    pub clock: fn() -> Timestamp,
}

/// Service byte bit 0: the terminal's function key no longer opens its service menu (the
/// register controls administration).
pub const SERVICE_MENU_OFF: u8 = 0x01;
/// Service byte bit 1: the terminal shows its texts in capitals.
pub const SERVICE_CAPITALS: u8 = 0x02;

impl Default for ZvtConfig {
    fn default() -> Self {
        Self {
            password: 0,
            config_byte: CONFIG_ECR_PRINTS_PAYMENT
                | CONFIG_ECR_PRINTS_ADMIN
                | CONFIG_INTERMEDIATE_STATUS
                | CONFIG_ECR_CONTROLS_PAYMENT
                | CONFIG_ECR_CONTROLS_ADMIN,
            currency: Currency::EUR,
            ack_timeout: Duration::from_secs(5),
            registration_timeout: Duration::from_secs(30),
            clock_tolerance: Duration::from_secs(600),
            service_byte: None,
            host_codes: codes::HostCodes::Raw,
            clock: wall_clock,
        }
    }
}

/// How an exchange ended, as a connection reports it to its client.
pub fn exchange_result(how: Ended) -> Result<Exchange, ExchangeError> {
    match how {
        Ended::Done(ex) => Ok(ex),
        Ended::Refused(code) => Err(ExchangeError::Refused(code)),
        Ended::NoAcknowledgement => Err(ExchangeError::NoAcknowledgement),
        Ended::Deadline => Err(ExchangeError::Deadline),
    }
}

/// Why an exchange did not end in a completion or an abort from the terminal.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The terminal refused the command (`84 xx`): it did not start.
    Refused(u8),
    /// No `80 00` within the acknowledgement timeout: the terminal may or may not have taken
    /// the command.
    NoAcknowledgement,
    /// The deadline passed while the terminal was working.
    Deadline,
    /// The link failed or carried something that is not ZVT.
    Transport(TransportError),
    /// The connection's task has ended (an earlier exchange lost the link).
    Closed,
    /// The exchange ended without a result code the outcome can be read from (a status
    /// information that could not be read, or none at all).
    NoResultCode,
    /// Recovery cannot tell what became of a command (see [`Unidentified`]).
    Unidentified(Unidentified),
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(c) => write!(f, "the terminal refused the command (84 {c:02X})"),
            Self::NoAcknowledgement => {
                f.write_str("the terminal did not acknowledge the command (no 80 00 within T3)")
            }
            Self::Deadline => f.write_str("the deadline passed before the terminal finished"),
            Self::Transport(e) => write!(f, "{e}"),
            Self::Closed => f.write_str("the ZVT connection is closed; connect again"),
            Self::NoResultCode => f.write_str(
                "the terminal's answer carries no result code that can be read: the outcome is not known",
            ),
            Self::Unidentified(u) => write!(f, "{u}"),
        }
    }
}

impl std::error::Error for ExchangeError {}

/// An intermediate status the terminal showed during the exchange for `request`.
#[derive(Clone, Copy, Debug)]
struct Progressed {
    request: RequestId,
    status: u8,
}

/// Where the intermediate states of one exchange go (to the client that asked for it).
#[derive(Debug)]
pub struct ProgressSink {
    request: RequestId,
    events: broadcast::Sender<Progressed>,
}

impl ProgressSink {
    /// The terminal showed intermediate status `status`.
    pub fn report(&self, status: u8) {
        // Nobody listening is fine.
        let _ = self.events.send(Progressed {
            request: self.request,
            status,
        });
    }
}

/// One exchange a [`ZvtClient`] asks of its [`Connection`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Job {
    /// The command, encoded.
    pub apdu: Apdu,
    /// The idempotency key of the money command it carries (ZVT itself carries none: for logs,
    /// and for the schedules to know which command a terminal took).
    pub key: Option<IdempotencyKey>,
    /// How long the exchange may take, from when it is submitted.
    pub deadline: Duration,
    /// Where its intermediate states go.
    pub progress: ProgressSink,
    /// Where its end goes.
    pub reply: oneshot::Sender<Result<Exchange, ExchangeError>>,
}

/// Where a [`ZvtClient`]'s exchanges run, one at a time: [`LinkConnection`] (a task that owns a
/// link and drives the sans-IO [`Register`] over it) in apps; the ZVT schedules supply one that
/// runs both sides sans-IO under simulated time.
pub trait Connection: Send + Sync + 'static {
    /// Queues `job`; fails (and nothing was sent) when the connection is gone.
    fn submit(&self, job: Job) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Asks the running exchange to abort (`06 B0`).
    fn abort(&self) -> impl Future<Output = Result<(), ExchangeError>> + Send;

    /// Whether the connection has ended.
    fn is_closed(&self) -> bool;
}

/// A [`Connection`] over a posbridge link: a task owns the link and runs each job's exchange
/// with the sans-IO [`Register`]; after a lost link or a deadline it ends.
#[derive(Debug)]
pub struct LinkConnection {
    jobs: mpsc::Sender<Job>,
    aborts: mpsc::Sender<()>,
}

impl LinkConnection {
    /// Starts the task that owns `link`, waiting `ack_timeout` (T3) for acknowledgements.
    pub fn spawn<L: Link + 'static>(link: ZvtLink<L>, ack_timeout: Duration) -> Self {
        let (jobs, jobs_rx) = mpsc::channel(4);
        let (aborts, abort_rx) = mpsc::channel(4);
        tokio::spawn(run(link, jobs_rx, abort_rx, ack_timeout));
        Self { jobs, aborts }
    }
}

impl Connection for LinkConnection {
    async fn submit(&self, job: Job) -> Result<(), ExchangeError> {
        self.jobs.send(job).await.map_err(|_| ExchangeError::Closed)
    }

    async fn abort(&self) -> Result<(), ExchangeError> {
        self.aborts
            .send(())
            .await
            .map_err(|_| ExchangeError::Closed)
    }

    fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }
}

async fn run<L: Link>(
    mut link: ZvtLink<L>,
    mut jobs: mpsc::Receiver<Job>,
    mut aborts: mpsc::Receiver<()>,
    ack_timeout: Duration,
) {
    let mut register = Register::new(ack_timeout);
    let mut tag = 0u64;
    while let Some(job) = jobs.recv().await {
        let Job {
            apdu,
            key: _,
            deadline,
            progress,
            reply,
        } = job;
        let deadline = Instant::now() + deadline;
        // Aborts asked for before this exchange began are for the one before.
        while aborts.try_recv().is_ok() {}
        tag += 1;
        let result = drive(
            &mut link,
            &mut register,
            (apdu, tag),
            deadline,
            &mut aborts,
            &progress,
        )
        .await;
        // After a lost link or a deadline the connection's state is unknown: it ends.
        let fatal = matches!(
            result,
            Err(ExchangeError::Transport(_) | ExchangeError::Deadline)
        );
        let _ = reply.send(result);
        if fatal {
            let _ = link.close().await;
            return;
        }
    }
    let _ = link.close().await;
}

fn std_now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Runs one exchange of the sans-IO [`Register`] over `link`: what it sends goes out, what
/// arrives goes in, its timer runs on tokio's clock, aborts asked for are passed to it.
async fn drive<L: Link>(
    link: &mut ZvtLink<L>,
    register: &mut Register,
    (apdu, tag): (Apdu, u64),
    deadline: Instant,
    aborts: &mut mpsc::Receiver<()>,
    progress: &ProgressSink,
) -> Result<Exchange, ExchangeError> {
    let t = |e| ExchangeError::Transport(e);
    register.reset();
    register
        .start(apdu, tag, std_now(), deadline.into_std())
        .map_err(|_| ExchangeError::Closed)?;
    loop {
        while let Some(out) = register.poll_transmit() {
            link.send(&out).await.map_err(t)?;
            // T3 counts from when the command reached the terminal (a serial line's ACK).
            register.delivered(std_now());
        }
        while let Some(ev) = register.poll_event() {
            match ev {
                RegisterEvent::Status { status, .. } => progress.report(status),
                RegisterEvent::Ended { how, .. } => {
                    // The acknowledgement of the exchange's last message goes first.
                    while let Some(out) = register.poll_transmit() {
                        link.send(&out).await.map_err(t)?;
                    }
                    return exchange_result(how);
                }
            }
        }
        let due = register.poll_timeout().map(Instant::from_std);
        tokio::select! {
            m = link.recv() => register.handle_apdu(m.map_err(t)?, std_now()),
            Some(()) = aborts.recv() => register.abort(),
            () = sleep_until_or_never(due) => register.handle_timeout(std_now()),
        }
    }
}

async fn sleep_until_or_never(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What a ZVT terminal is, learnt at registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// Its terminal id (`29`), if it sent one.
    pub terminal_id: Option<u32>,
    /// The currency it confirmed (`49`).
    pub currency: Option<u16>,
    /// Its status byte (`19`).
    pub status: Option<u8>,
}

/// A card as the terminal read it ([`ZvtClient::read_card`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardRead {
    /// The card number, masked (first six and last four at most).
    pub pan: Option<MaskedPan>,
    /// The expiry, `YYMM`.
    pub expiry: Option<u16>,
    /// The ZVT card type (BMP `8A`).
    pub card_type: Option<u8>,
    /// The card's name.
    pub name: Option<String>,
    /// Every field of the status information, as it came.
    pub fields: Vec<Bmp>,
}

/// What a diagnosis found ([`ZvtClient::diagnosis`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// Whether the terminal reports success (result `00`).
    pub ok: bool,
    /// Its result code.
    pub result: u8,
    /// What it printed.
    pub lines: Vec<String>,
}

/// Why [`ZvtClient::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The registration exchange failed.
    Exchange(ExchangeError),
    /// The terminal aborted the registration with this result code (a wrong password is the
    /// usual reason).
    Aborted(u8),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exchange(ExchangeError::NoAcknowledgement) => f.write_str(
                "the terminal did not answer the ZVT registration: is this the ZVT port (20007 or 22000; 22001 with TLS) of a terminal that speaks ZVT?",
            ),
            Self::Exchange(e) => write!(f, "ZVT registration failed: {e}"),
            Self::Aborted(c) => write!(
                f,
                "the terminal refused the ZVT registration (result {c:02X}): check the password and currency"
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

fn first<T>(fields: &[Bmp], pick: impl Fn(&Bmp) -> Option<T>) -> Option<T> {
    fields.iter().find_map(pick)
}

/// The result code of a status information: `None` when it has none, or two that disagree
/// (then it says nothing that can be relied on).
fn result_code_of(fields: &[Bmp]) -> Option<u8> {
    let mut codes = fields.iter().filter_map(|f| match f {
        Bmp::Result(r) => Some(*r),
        _ => None,
    });
    let code = codes.next()?;
    codes.all(|c| c == code).then_some(code)
}

/// Whether a status information can be read as a transaction's record: every byte of it
/// parsed, and its trace or receipt number there (what later tells this transaction from the
/// next one of the same amount, when recovery reads the terminal's last transaction).
fn identifies(fields: &[Bmp]) -> bool {
    !fields.iter().any(|f| matches!(f, Bmp::Unparsed(_)))
        && fields
            .iter()
            .any(|f| matches!(f, Bmp::Trace(_) | Bmp::Receipt(_)))
}

fn tid_of(fields: &[Bmp]) -> Option<u32> {
    first(fields, |f| match f {
        Bmp::Other(0x29, v) => crate::bmp::from_bcd(v).ok().map(|n| n as u32),
        _ => None,
    })
}

/// The ZVT card type (`8A`) as a payment method, when it says (contactless types are the
/// `x6`/girocard-contactless ones the terminals report; the rest are chip).
fn method_of(fields: &[Bmp]) -> Option<PaymentMethod> {
    first(fields, |f| match f {
        Bmp::Other(0x19, v) if v.first() == Some(&0x50) => Some(PaymentMethod::Contactless),
        _ => None,
    })
}

/// Why recovery cannot tell what became of a command from the terminal's last transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unidentified {
    /// The last transaction has another amount, and is not older than the command: the command
    /// may have completed before it (another register's, say).
    AmountDiffers,
    /// The last transaction is already recorded for another command that was journaled after
    /// this one: this one may have completed before it.
    RecordedForLaterCommand,
    /// The last transaction's time does not fit the command's (the terminal's clock is off by
    /// more than the tolerance, or the transaction is from the future).
    TimeDoesNotFit,
    /// The terminal's last transaction cannot be read.
    Unreadable,
    /// The terminal's clock cannot be related to ours (no result of it recorded yet), so the
    /// time of its last transaction does not say whether it came before the command.
    ClockUnknown,
}

impl fmt::Display for Unidentified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AmountDiffers => {
                "the terminal's last transaction has another amount and is not older than the payment"
            }
            Self::RecordedForLaterCommand => {
                "the terminal's last transaction belongs to a later payment; this one may have completed before it"
            }
            Self::TimeDoesNotFit => {
                "the terminal's last transaction has a time that does not fit the payment (check the terminal's clock)"
            }
            Self::Unreadable => "the terminal's last transaction cannot be read",
            Self::ClockUnknown => {
                "the terminal's clock is not known yet (it keeps local time), so its last transaction cannot be placed before or after the payment"
            }
        })
    }
}

/// A ZVT terminal as an [`Adapter`] of the engine: registration at connect; every money command
/// one exchange (the specification's T3 for the acknowledgement, then intermediate states, the
/// status information, print lines and text blocks, and a completion or an abort); progress
/// from the intermediate states; receipts from what the terminal printed; and the result code
/// of the status information deciding the outcome — a payment whose result code cannot be
/// read is in doubt, never approved. ZVT has no idempotency keys: a lost result is resolved
/// from the terminal's last transaction (repeat receipt, `06 20`), matched to the command by
/// amount and time, and so the engine resolves every command in doubt before anything new is
/// sent ([`Adapter::remembers_keys`] is false).
///
/// `ZvtTerminal<J>` (an [`Engine`] over it) is what apps use: [`connect`].
pub struct ZvtClient<C = LinkConnection> {
    connection: C,
    config: ZvtConfig,
    capabilities: Capabilities,
    registered: Registered,
    events: broadcast::Sender<Progressed>,
    running: AtomicBool,
    requests: AtomicU64,
    closed: AtomicBool,
    /// How far the terminal's clock is ahead of ours (ms), from its status enquiry at connect.
    clock_offset: std::sync::Mutex<Option<i64>>,
}

/// A ZVT terminal with a journal: what an app takes money with ([`connect`]).
pub type ZvtTerminal<J> = Engine<ZvtClient, J>;

/// Registers with the ZVT terminal on `link` and puts it behind the engine with `journal`.
pub async fn connect<L: Link + 'static, J: Journal>(
    link: L,
    framing: Framing,
    config: ZvtConfig,
    journal: J,
) -> Result<ZvtTerminal<J>, ConnectError> {
    Ok(Engine::new(
        ZvtClient::connect(link, framing, config).await?,
        journal,
    ))
}

impl<C> fmt::Debug for ZvtClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZvtClient")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl ZvtClient {
    /// Registers with the terminal on `link` (`06 00` with the password, configuration byte
    /// and currency) and starts the connection's task.
    pub async fn connect<L: Link + 'static>(
        link: L,
        framing: Framing,
        config: ZvtConfig,
    ) -> Result<Self, ConnectError> {
        let connection = LinkConnection::spawn(ZvtLink::new(link, framing), config.ack_timeout);
        Self::over(connection, config).await
    }
}

impl<C: Connection> ZvtClient<C> {
    /// Registers with the terminal over `connection` (`06 00` with the password, configuration
    /// byte and currency) and learns its clock with a status enquiry.
    pub async fn over(connection: C, config: ZvtConfig) -> Result<Self, ConnectError> {
        let (events, _) = broadcast::channel(64);
        let registration = Command::Registration {
            password: config.password,
            config: config.config_byte,
            currency: Some(config.currency.code()),
            // Only what the register means: no service byte unless configured.
            extra: config
                .service_byte
                .map(|b| Bmp::Other(0x03, vec![b]))
                .into_iter()
                .collect(),
        };
        let ex = run_on(
            &connection,
            &registration,
            ProgressSink {
                request: RequestId::default(),
                events: events.clone(),
            },
            config.registration_timeout,
        )
        .await
        .map_err(ConnectError::Exchange)?;
        if let Some(code) = ex.aborted {
            return Err(ConnectError::Aborted(code));
        }
        let fields = ex.completion.unwrap_or_default();
        let registered = Registered {
            terminal_id: tid_of(&fields),
            currency: first(&fields, |f| match f {
                Bmp::Currency(c) => Some(*c),
                _ => None,
            }),
            status: first(&fields, |f| match f {
                Bmp::Other(0x19, v) => v.first().copied(),
                _ => None,
            }),
        };
        let capabilities = Capabilities {
            terminal_id: TerminalId::from_u128(
                0x5A56_5400_0000_0000_0000_0000_0000_0000
                    | u128::from(registered.terminal_id.unwrap_or(0)),
            ),
            model: Some("ZVT terminal".into()),
            firmware: None,
            serial_number: registered.terminal_id.map(|t| format!("{t:08}")),
            merchant_name: None,
            protocol_versions: vec![13],
            selected_version: 13,
            kinds: [
                TransactionKind::Sale,
                TransactionKind::Refund,
                TransactionKind::Void,
                TransactionKind::PreAuth,
                TransactionKind::Capture,
                TransactionKind::PreAuthCancel,
            ]
            .into_iter()
            .collect::<KindSet>(),
            methods: [
                PaymentMethod::Chip,
                PaymentMethod::Contactless,
                PaymentMethod::Swipe,
                PaymentMethod::Wallet,
            ]
            .into_iter()
            .collect::<MethodSet>(),
            currencies: vec![config.currency],
            limits: Vec::new(),
            max_frame_size: None,
            features: FeatureSet::EMPTY,
            offline_limits: Vec::new(),
        };
        let client = Self {
            connection,
            config,
            capabilities,
            registered,
            events,
            running: AtomicBool::new(false),
            requests: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            clock_offset: std::sync::Mutex::new(None),
        };
        // The terminal's clock (local time, no zone), to place its transactions on ours. A
        // terminal that does not answer or does not say keeps it unknown; recovery asks again,
        // learns it from the journal, or leaves what it cannot place in doubt.
        client.learn_clock().await;
        Ok(client)
    }

    /// Asks the terminal its clock (a status enquiry) and keeps how far it is ahead of ours;
    /// `None` when it does not answer or does not say.
    async fn learn_clock(&self) -> Option<i64> {
        let asked_at = (self.config.clock)().0 as i64;
        let status = self
            .status_enquiry(self.config.ack_timeout * 2)
            .await
            .ok()?;
        let t = status.local_time?;
        let now = (asked_at + (self.config.clock)().0 as i64) / 2;
        let offset = t.0 as i64 - now;
        *self.clock_offset.lock().unwrap_or_else(|p| p.into_inner()) = Some(offset);
        Some(offset)
    }

    /// Asks the terminal how it is (`05 01`): its software version, status byte, terminal id
    /// and clock.
    pub async fn status_enquiry(
        &self,
        deadline: Duration,
    ) -> Result<crate::TerminalStatus, ExchangeError> {
        let ex = self
            .run_command(
                &Command::StatusEnquiry {
                    password: self.config.password,
                    extra: Vec::new(),
                },
                deadline,
            )
            .await?;
        if let Some(code) = ex.aborted {
            return Err(ExchangeError::Refused(code));
        }
        let data = ex.completion_data.ok_or(ExchangeError::NoResultCode)?;
        crate::TerminalStatus::parse(&data)
            .map_err(|e| ExchangeError::Transport(TransportError::Codec(e)))
    }

    /// Reads the card presented within `timeout` (`06 C0`), without a payment: its masked
    /// number, expiry, type and name (a charger or a loyalty till identifies customers so).
    /// No card in time: [`ExchangeError::Refused`] with the terminal's result code (`6C`).
    pub async fn read_card(&self, timeout: Duration) -> Result<CardRead, ExchangeError> {
        let secs = timeout.as_secs().clamp(1, 255) as u8;
        let ex = self
            .run_command(
                &Command::ReadCard {
                    timeout: secs,
                    extra: Vec::new(),
                },
                // The terminal's own timeout, then T3 for its answer to arrive.
                timeout + self.config.ack_timeout,
            )
            .await?;
        if let Some(code) = ex.aborted {
            return Err(ExchangeError::Refused(code));
        }
        let fields = ex
            .status
            .last()
            .cloned()
            .ok_or(ExchangeError::NoResultCode)?;
        match result_code_of(&fields) {
            Some(codes::SUCCESS) | None if !fields.is_empty() => {}
            Some(code) => return Err(ExchangeError::Refused(code)),
            None => return Err(ExchangeError::NoResultCode),
        }
        Ok(CardRead {
            pan: first(&fields, |f| match f {
                Bmp::Pan(p) => MaskedPan::parse(p).ok().or_else(|| MaskedPan::mask(p).ok()),
                _ => None,
            }),
            expiry: first(&fields, |f| match f {
                Bmp::Other(0x0E, v) => crate::bmp::from_bcd(v).ok().map(|n| n as u16),
                _ => None,
            }),
            card_type: first(&fields, |f| match f {
                Bmp::CardType(t) => Some(*t),
                _ => None,
            }),
            name: first(&fields, |f| match f {
                Bmp::CardName(n) => Some(
                    n.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                        .to_string(),
                ),
                _ => None,
            })
            .filter(|n| !n.is_empty()),
            fields,
        })
    }

    /// Asks the terminal to check its host connection (`06 70`): its result code and what it
    /// printed.
    pub async fn diagnosis(&self, deadline: Duration) -> Result<Diagnosis, ExchangeError> {
        let ex = self
            .run_command(&Command::Diagnosis(Vec::new()), deadline)
            .await?;
        let result = ex
            .status
            .last()
            .and_then(|f| result_code_of(f))
            .or(ex.aborted)
            // A completion alone: done without a word.
            .or(ex.completion.as_ref().map(|_| codes::SUCCESS))
            .ok_or(ExchangeError::NoResultCode)?;
        Ok(Diagnosis {
            ok: result == codes::SUCCESS,
            result,
            lines: ex.receipts().concat(),
        })
    }

    /// How far the terminal's clock is ahead of ours (ms), if its status enquiry said.
    pub fn clock_offset(&self) -> Option<i64> {
        *self.clock_offset.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the terminal said at registration.
    pub fn registered(&self) -> &Registered {
        &self.registered
    }

    /// The configuration it registered with.
    pub fn config(&self) -> &ZvtConfig {
        &self.config
    }

    /// Runs one command to the end of its exchange (for commands `PaymentTerminal` has no name
    /// for: log-off, diagnosis, vendor commands).
    pub async fn run_command(
        &self,
        command: &Command,
        deadline: Duration,
    ) -> Result<Exchange, ExchangeError> {
        let sink = ProgressSink {
            request: self.next_request(),
            events: self.events.clone(),
        };
        let result = run_on(&self.connection, command, sink, deadline).await;
        self.note(&result);
        result
    }

    /// Remembers that the connection is gone after an exchange that lost it.
    fn note<T>(&self, result: &Result<T, ExchangeError>) {
        if matches!(
            result,
            Err(ExchangeError::Transport(_) | ExchangeError::Deadline | ExchangeError::Closed)
        ) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    fn next_request(&self) -> RequestId {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        RequestId::from_u128(u128::from(n))
    }

    fn terminal_ref(&self) -> u32 {
        self.registered.terminal_id.unwrap_or(0)
    }

    /// The receipt number of the journaled transaction `target` refers to.
    fn receipt_number(
        &self,
        target: &TransactionRef,
        records: &Records<'_>,
    ) -> Result<u16, Refusal<ExchangeError>> {
        let id = match target {
            TransactionRef::Id(id) => *id,
            TransactionRef::Key(k) => match records.result(k) {
                Ok(Some(r)) => r.transaction_id,
                Ok(None) => return Err(original_unknown("no journaled result has that key")),
                Err(e) => {
                    return Err(original_unknown(&format!(
                        "the journal could not be read: {e}"
                    )));
                }
            },
            _ => return Err(original_unknown("unsupported reference")),
        };
        Ok(ZvtRef::from_id(&id).receipt)
    }

    /// The ZVT command for a money command.
    fn zvt_command(
        &self,
        command: &TransactionCommand,
        records: &Records<'_>,
    ) -> Result<Command, Refusal<ExchangeError>> {
        let pw = self.config.password;
        let cc = Some(self.config.currency.code());
        let check = |a: &Amount| {
            if a.currency == self.config.currency {
                Ok(a.minor)
            } else {
                Err(Refusal::new(
                    ErrorCode::CURRENCY_NOT_SUPPORTED,
                    format!(
                        "the ZVT terminal is registered for {} only",
                        self.config.currency
                    ),
                ))
            }
        };
        Ok(match command {
            TransactionCommand::Sale {
                amount,
                tip: None,
                cashback: None,
            } => Command::Authorization {
                amount: check(amount)?,
                currency: cc,
                extra: Vec::new(),
            },
            TransactionCommand::PreAuth { amount } => Command::PreAuthorisation {
                amount: check(amount)?,
                currency: cc,
                extra: Vec::new(),
            },
            TransactionCommand::Refund { amount, .. } => Command::Refund {
                password: pw,
                amount: check(amount)?,
                currency: cc,
                extra: Vec::new(),
            },
            TransactionCommand::Void { original } => Command::Reversal {
                password: pw,
                receipt: Some(self.receipt_number(original, records)?),
                extra: Vec::new(),
            },
            TransactionCommand::Capture {
                original,
                amount,
                tip: None,
            } => Command::BookTotal(vec![
                Bmp::Receipt(self.receipt_number(original, records)?),
                Bmp::Amount(check(amount)?),
                Bmp::Currency(self.config.currency.code()),
            ]),
            TransactionCommand::PreAuthCancel { original } => Command::PreAuthReversal(vec![
                Bmp::Currency(self.config.currency.code()),
                Bmp::Receipt(self.receipt_number(original, records)?),
            ]),
            other => {
                return Err(Refusal::new(
                    ErrorCode::KIND_NOT_SUPPORTED,
                    format!("{:?} is not offered over ZVT", other.kind()),
                ));
            }
        })
    }

    /// The result an exchange reports for `request` (read at `now`), or `None` when the
    /// exchange carries no result code the outcome can be read from: only the terminal's result
    /// code says approved — never the mere arrival of a completion.
    fn result_of(
        &self,
        request: &TransactionRequest,
        ex: &Exchange,
        now: Timestamp,
    ) -> Option<TransactionResult> {
        let fields: Vec<Bmp> = ex.status.last().cloned().unwrap_or_default();
        // A status information that cannot be read whole, or does not say which transaction it
        // is, leaves the outcome to recovery (the terminal's record of it, read again).
        if !ex.status.is_empty() && !identifies(&fields) {
            return None;
        }
        let code = match ex.status.is_empty() {
            // A decline by abort alone.
            true => ex.aborted?,
            false => result_code_of(&fields).or(ex.aborted)?,
        };
        let outcome = codes::outcome_with(code, self.config.host_codes);
        Some(result_from(
            request.idempotency_key,
            request.request_id,
            request.command.kind(),
            request.command.amount(),
            self.config.currency,
            self.terminal_ref(),
            self.capabilities.terminal_id,
            &fields,
            outcome,
            &ex.receipts(),
            now,
        ))
    }

    /// The terminal's last transaction, read with a repeat receipt (`06 20`), as a result under
    /// `key` — `None` when the terminal has none to repeat.
    async fn repeat(
        &self,
        key: IdempotencyKey,
        kind: TransactionKind,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, ExchangeError> {
        let ex = self
            .run_command(
                &Command::RepeatReceipt {
                    password: self.config.password,
                    extra: Vec::new(),
                },
                deadline,
            )
            .await?;
        let Some(fields) = ex.status.last() else {
            // The terminal said it has nothing to repeat (an abort); a completion with no
            // status information says nothing about its last transaction.
            return match ex.aborted {
                Some(_) => Ok(None),
                None => Err(ExchangeError::Unidentified(Unidentified::Unreadable)),
            };
        };
        if !identifies(fields) {
            return Err(ExchangeError::Unidentified(Unidentified::Unreadable));
        }
        let Some(code) = result_code_of(fields) else {
            return Err(ExchangeError::Unidentified(Unidentified::Unreadable));
        };
        let mut r = result_from(
            key,
            RequestId::default(),
            kind,
            first(fields, |f| match f {
                Bmp::Amount(a) => Some(Amount::new(*a, self.config.currency)),
                _ => None,
            }),
            self.config.currency,
            self.terminal_ref(),
            self.capabilities.terminal_id,
            fields,
            codes::outcome_with(code, self.config.host_codes),
            &ex.receipts(),
            (self.config.clock)(),
        );
        r.receipts.iter_mut().for_each(|rc| rc.kind = r.kind);
        Ok(Some(r))
    }

    /// What became of the command journaled as `entry`, from the terminal's last transaction:
    /// its result when the last transaction has the command's amount and a time not before the
    /// command (within [`ZvtConfig::clock_tolerance`]); not done when the last transaction is
    /// older than the command or recorded for a command journaled before it; otherwise the
    /// terminal cannot tell.
    async fn resolve_entry(
        &self,
        entry: &Entry,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Resolution<ExchangeError>, ExchangeError> {
        let key = entry.key();
        let last = match self.repeat(key, entry.kind(), deadline).await {
            Ok(Some(last)) => last,
            Ok(None) => return Ok(Resolution::NotDone),
            Err(ExchangeError::Unidentified(u)) => {
                return Ok(Resolution::Unknown(ExchangeError::Unidentified(u)));
            }
            Err(e) => return Err(e),
        };
        let tolerance = self.config.clock_tolerance.as_millis() as u64;
        // The schedules' mutant `stale_last` (built with `--cfg posbridge_mutant="stale_last"`):
        // a recovery that takes whatever last transaction has the command's amount for its
        // result. The ZVT schedules must catch it.
        if cfg!(posbridge_mutant = "stale_last")
            && entry.amount().is_none_or(|a| a.minor == last.amount.minor)
        {
            let mut last = last;
            last.amount = entry.amount().unwrap_or(last.amount);
            return Ok(Resolution::Done(last));
        }
        // Recorded already for another command: the terminal's last transaction is that one.
        if let Ok(Some(other)) = records.by_transaction(&last.transaction_id)
            && other.key() != key
        {
            return Ok(if other.created.0 <= entry.created.0 {
                // Journaled before this one and still the last: this one never completed.
                Resolution::NotDone
            } else {
                Resolution::Unknown(ExchangeError::Unidentified(
                    Unidentified::RecordedForLaterCommand,
                ))
            });
        }
        // The terminal keeps local time without a zone: its offset from our clock is learnt
        // from the newest result of it recorded in its own call (the terminal's time of the
        // transaction against when it was journaled, seconds apart).
        let terminal = self.capabilities.terminal_id;
        // Not known since connect (its status enquiry went unanswered): asked again first.
        let asked = match self.clock_offset() {
            Some(o) => Some(o),
            None => self.learn_clock().await,
        };
        let offset = asked.or_else(|| {
            records
                .newest(|e| {
                    e.terminal == terminal
                        && e.updated.0.saturating_sub(e.created.0) <= tolerance
                        && e.result
                            .as_ref()
                            .is_some_and(|r| ZvtRef::from_id(&r.transaction_id).stamp != 0)
                })
                .ok()
                .flatten()
                .and_then(|e| Some(e.result?.time.0 as i64 - e.updated.0 as i64))
        });
        let now = (self.config.clock)().0 as i64;
        let (created, tolerance) = (entry.created.0 as i64, tolerance as i64);
        let at = last.time.0 as i64 - offset.unwrap_or(0);
        let amount_matches = entry.amount().is_none_or(|a| a.minor == last.amount.minor);
        let unknown = |u| Ok(Resolution::Unknown(ExchangeError::Unidentified(u)));
        if at > now + tolerance {
            return unknown(match offset {
                Some(_) => Unidentified::TimeDoesNotFit,
                // Read as if it kept our time, it is ahead of us: it does not.
                None => Unidentified::ClockUnknown,
            });
        }
        if at + tolerance < created {
            // Older than the command — a finding only when the terminal's clock is known:
            // a terminal hours behind ours makes the command's own result look older.
            return match offset {
                Some(_) => Ok(Resolution::NotDone),
                None => unknown(Unidentified::ClockUnknown),
            };
        }
        if amount_matches {
            let mut last = last;
            last.amount = entry.amount().unwrap_or(last.amount);
            Ok(Resolution::Done(last))
        } else {
            unknown(Unidentified::AmountDiffers)
        }
    }
}

/// Sends `command` on `connection` and waits for the end of its exchange.
async fn run_on<C: Connection>(
    connection: &C,
    command: &Command,
    progress: ProgressSink,
    deadline: Duration,
) -> Result<Exchange, ExchangeError> {
    let apdu = command
        .to_apdu()
        .map_err(|e| ExchangeError::Transport(TransportError::Codec(e)))?;
    let (reply, answer) = oneshot::channel();
    connection
        .submit(Job {
            apdu,
            key: None,
            deadline,
            progress,
            reply,
        })
        .await?;
    answer.await.map_err(|_| ExchangeError::Closed)?
}

fn original_unknown(why: &str) -> Refusal<ExchangeError> {
    Refusal::new(
        ErrorCode::ORIGINAL_NOT_FOUND,
        format!("ZVT needs the original's receipt number: {why}"),
    )
}

/// A ZVT `84 xx` refusal.
fn refused(code: u8) -> Refusal<ExchangeError> {
    Refusal {
        code: match codes::outcome(code) {
            Outcome::Failed(c) => c,
            _ => ErrorCode::INTERNAL,
        },
        detail: Some(format!("ZVT 84 {code:02X}")),
        source: Some(ExchangeError::Refused(code)),
    }
}

fn call_error(e: ExchangeError) -> CallError<ExchangeError> {
    match e {
        ExchangeError::Refused(code) => CallError::Refused(refused(code)),
        other => CallError::Failed(other),
    }
}

impl<C: Connection> Adapter for ZvtClient<C> {
    type Error = ExchangeError;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn remembers_keys(&self) -> bool {
        false
    }

    async fn send(
        &self,
        mut request: TransactionRequest,
        exchange: &posbridge_api::Exchange<'_>,
        deadline: Duration,
    ) -> Answer<ExchangeError> {
        let zvt = match self.zvt_command(&request.command, exchange.records()) {
            Ok(c) => c,
            Err(refusal) => return Answer::Refused(refusal),
        };
        let request_id = self.next_request();
        request.request_id = request_id;
        // Subscribed before sending, so no intermediate state is missed.
        let mut events = self.events.subscribe();
        let apdu = match zvt.to_apdu() {
            Ok(a) => a,
            Err(e) => {
                return Answer::Refused(Refusal {
                    code: ErrorCode::INVALID_REQUEST,
                    detail: Some(format!("the command cannot be encoded in ZVT: {e}")),
                    source: Some(ExchangeError::Transport(TransportError::Codec(e))),
                });
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            apdu,
            key: Some(request.idempotency_key),
            deadline,
            progress: ProgressSink {
                request: request_id,
                events: self.events.clone(),
            },
            reply,
        };
        if let Err(e) = self.connection.submit(job).await {
            self.closed.store(true, Ordering::Relaxed);
            return Answer::NotSent(e);
        }
        exchange.sent();
        self.running.store(true, Ordering::Relaxed);
        let outcome = forward_while(answer, &mut events, |p: Progressed| {
            if p.request == request_id {
                let (stage, message) = codes::stage(p.status);
                exchange.progress(stage, None, Some(message.into()));
            }
        })
        .await
        .unwrap_or(Err(ExchangeError::Closed));
        self.running.store(false, Ordering::Relaxed);
        self.note(&outcome);
        match outcome {
            Ok(ex) => match self.result_of(&request, &ex, (self.config.clock)()) {
                Some(result) => Answer::Result(result),
                None => Answer::Lost {
                    reason: DoubtReason::Unreadable,
                    source: Some(ExchangeError::NoResultCode),
                },
            },
            Err(ExchangeError::Refused(code)) => Answer::Refused(refused(code)),
            Err(e @ (ExchangeError::NoAcknowledgement | ExchangeError::Deadline)) => Answer::Lost {
                reason: DoubtReason::NoAnswer,
                source: Some(e),
            },
            Err(e) => Answer::Lost {
                reason: DoubtReason::ConnectionLost,
                source: Some(e),
            },
        }
    }

    async fn resolve(
        &self,
        key: IdempotencyKey,
        entry: Option<&Entry>,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Resolution<ExchangeError>, ExchangeError> {
        if self.running.load(Ordering::Relaxed) {
            return Ok(Resolution::Running(None));
        }
        match entry {
            Some(entry) => self.resolve_entry(entry, records, deadline).await,
            // ZVT knows no keys: a command this journal never saw is unknown to it.
            None => {
                let _ = key;
                Ok(Resolution::NotDone)
            }
        }
    }

    async fn cancel(&self) -> Result<(), ExchangeError> {
        if self.running.load(Ordering::Relaxed) {
            self.connection.abort().await?;
        }
        Ok(())
    }

    async fn last_transaction(
        &self,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, ExchangeError> {
        let Some(mut last) = self
            .repeat(IdempotencyKey::default(), TransactionKind::Sale, deadline)
            .await?
        else {
            return Ok(None);
        };
        // Known to the journal: its key and kind.
        match records.by_transaction(&last.transaction_id) {
            Ok(Some(e)) if e.result.is_some() => {
                let r = e.result.expect("checked");
                last.idempotency_key = r.idempotency_key;
                last.kind = r.kind;
                last.amount = r.amount;
            }
            // Not this register's: a key made from the transaction id.
            _ => last.idempotency_key = IdempotencyKey::from_bytes(*last.transaction_id.as_bytes()),
        }
        Ok(Some(last))
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        _operator: Option<OperatorAuth>,
        deadline: Duration,
    ) -> Result<SettlementResult, CallError<ExchangeError>> {
        let ex = self
            .run_command(
                &Command::EndOfDay {
                    password: self.config.password,
                    extra: Vec::new(),
                },
                deadline,
            )
            .await
            .map_err(call_error)?;
        let fields = ex.status.last().cloned().unwrap_or_default();
        let code = result_code_of(&fields)
            .or(ex.aborted)
            .ok_or(CallError::Failed(ExchangeError::NoResultCode))?;
        let total = first(&fields, |f| match f {
            Bmp::Amount(a) => Some(*a),
            _ => None,
        });
        let now = (self.config.clock)();
        // Closed by the terminal's own clock (as its transactions are timed), when it says.
        let closed = match (
            first(&fields, |f| match f {
                Bmp::Date(d) => Some(*d),
                _ => None,
            }),
            first(&fields, |f| match f {
                Bmp::Time(t) => Some(*t),
                _ => None,
            }),
        ) {
            (Some(d), Some(t)) => codes::timestamp(d, t, now).unwrap_or(now),
            _ => now,
        };
        let status = match codes::outcome(code) {
            Outcome::Approved => Ok(()),
            Outcome::Failed(c) => Err(c),
            _ => Err(ErrorCode::INTERNAL),
        };
        // ZVT reports one net total over the batch (sales less refunds), given as the sales
        // total; per-card-type totals (BMP 60) are not broken down.
        let mut totals = Vec::new();
        if let Some(total) = total {
            totals.push(Totals {
                kind: TransactionKind::Sale,
                currency: self.config.currency,
                // ZVT's total carries no count of transactions.
                count: 0,
                amount: total,
            });
        }
        let receipt = ex.receipts().first().map(|lines| Receipt {
            copy: ReceiptCopy::Merchant,
            header: Receipt::fit_printed(lines).0,
            merchant_name: None,
            merchant_id: None,
            terminal_label: None,
            kind: TransactionKind::Sale,
            amount: total.unwrap_or(0),
            currency: self.config.currency,
            tip: None,
            cashback: None,
            time: now,
            method: None,
            card_scheme: None,
            pan: None,
            aid: None,
            application_label: None,
            auth_code: None,
            reference: None,
            trace: None,
            result_text: Some("END OF DAY".into()),
            signature_line: false,
            lines: Vec::new(),
            footer: Vec::new(),
        });
        Ok(SettlementResult {
            request_id: RequestId::default(),
            idempotency_key: key,
            terminal_id: self.capabilities.terminal_id,
            batch_number: first(&fields, |f| match f {
                Bmp::Receipt(r) => Some(u32::from(*r)),
                _ => None,
            })
            .unwrap_or(0),
            status,
            opened: None,
            closed,
            totals,
            receipt,
            signature: None,
        })
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        records: &Records<'_>,
        deadline: Duration,
    ) -> Result<Receipt, CallError<ExchangeError>> {
        // The journal keeps every receipt the terminal printed; the terminal repeats only its
        // last one.
        let recorded = records.referenced(&target).ok().flatten();
        let result = match recorded {
            Some(r) => Some(r),
            None => self
                .last_transaction(records, deadline)
                .await
                .map_err(call_error)?
                .filter(|r| match &target {
                    TransactionRef::Id(id) => r.transaction_id == *id,
                    TransactionRef::Key(k) => r.idempotency_key == *k,
                    _ => false,
                }),
        };
        result
            .and_then(|r| {
                let n = r.receipts.len();
                r.receipts
                    .into_iter()
                    .enumerate()
                    .find(|(i, rc)| rc.copy == copy || (n == 1 && *i == 0))
                    .map(|(_, rc)| rc)
            })
            .ok_or_else(|| {
                CallError::Refused(Refusal::new(
                    ErrorCode::NOT_FOUND,
                    "no such receipt: the terminal repeats only its last one".to_string(),
                ))
            })
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed) || self.connection.is_closed()
    }

    async fn close(self) {
        // Log-off (`06 02`) first, as the specification asks of a register that leaves; a
        // terminal that does not answer it in T3 is left all the same.
        if !Adapter::is_closed(&self) {
            let _ = self
                .run_command(&Command::LogOff, self.config.ack_timeout)
                .await;
        }
        // Dropping the job queue ends the connection's task, which closes the link.
        drop(self.connection);
    }
}

/// A result from the fields of a status information.
#[allow(clippy::too_many_arguments)]
fn result_from(
    key: IdempotencyKey,
    request_id: RequestId,
    kind: TransactionKind,
    asked: Option<Amount>,
    currency: Currency,
    terminal: u32,
    terminal_id: TerminalId,
    fields: &[Bmp],
    outcome: Outcome,
    receipts: &[Vec<String>],
    now: Timestamp,
) -> TransactionResult {
    let trace = first(fields, |f| match f {
        Bmp::Trace(t) => Some(*t),
        _ => None,
    });
    let receipt = first(fields, |f| match f {
        Bmp::Receipt(r) => Some(*r),
        _ => None,
    });
    let date = first(fields, |f| match f {
        Bmp::Date(d) => Some(*d),
        _ => None,
    });
    let time_of_day = first(fields, |f| match f {
        Bmp::Time(t) => Some(*t),
        _ => None,
    });
    let time = match (date, time_of_day) {
        (Some(d), Some(t)) => codes::timestamp(d, t, now).unwrap_or(now),
        _ => now,
    };
    let zref = ZvtRef {
        terminal: tid_of(fields).unwrap_or(terminal),
        trace: trace.unwrap_or(0),
        receipt: receipt.unwrap_or(0),
        stamp: u64::from(date.unwrap_or(0)) * 1_000_000 + u64::from(time_of_day.unwrap_or(0)),
    };
    // Without a trace or receipt number the terminal gave the transaction nothing to tell it by
    // (a decline that came as an abort alone): its id is made from the command's key, so two
    // such results never share one.
    let transaction_id = if trace.is_none() && receipt.is_none() {
        TransactionId::from_bytes(*key.as_bytes())
    } else {
        zref.id()
    };
    let amount = first(fields, |f| match f {
        Bmp::Amount(a) => Some(Amount::new(*a, currency)),
        _ => None,
    });
    let asked = asked.or(amount).unwrap_or(Amount::new(0, currency));
    let approved_minor = if outcome.is_approved() {
        amount.map_or(asked.minor, |a| a.minor)
    } else {
        0
    };
    let outcome = if outcome.is_approved() && approved_minor < asked.minor {
        Outcome::PartiallyApproved
    } else {
        outcome
    };
    // Masked as the terminal sent it; a terminal that sends the whole number (girocard
    // terminals do) has it masked here (first six, last four), never kept or dropped.
    let pan = first(fields, |f| match f {
        Bmp::Pan(p) => MaskedPan::parse(p).ok().or_else(|| MaskedPan::mask(p).ok()),
        _ => None,
    });
    // Names come NUL-padded from some terminals (`MasterCard\0`).
    let scheme = first(fields, |f| match f {
        Bmp::CardName(n) => Some(
            n.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string(),
        ),
        _ => None,
    })
    .filter(|s| !s.is_empty());
    let auth_code = first(fields, |f| match f {
        // Eight bytes, padded with NULs or spaces.
        Bmp::Other(0x3B, v) => Some(
            text(&v.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>())
                .trim()
                .to_string(),
        ),
        _ => None,
    })
    .filter(|s| !s.is_empty());
    let mut result = TransactionResult {
        request_id,
        idempotency_key: key,
        transaction_id,
        terminal_id,
        kind,
        outcome,
        amount: asked,
        approved_minor,
        tip: None,
        cashback: None,
        method: method_of(fields),
        pan,
        card_scheme: scheme,
        auth_code,
        // Terminal id, trace and receipt number (within the wire's 32 characters).
        reference: Some(format!(
            "{:08}-{:06}-{:04}",
            zref.terminal, zref.trace, zref.receipt
        )),
        time,
        offline: false,
        balance: None,
        receipts: Vec::new(),
        signature: None,
        emv: None,
    };
    result.receipts = receipts
        .iter()
        .enumerate()
        .map(|(i, lines)| printed(&result, lines, i, zref.trace))
        .collect();
    result
}

/// A receipt the terminal printed as lines: the lines as they were, the fields from the result.
fn printed(r: &TransactionResult, lines: &[String], index: usize, trace: u32) -> Receipt {
    let lower = lines.join("\n").to_lowercase();
    let copy = if [
        "händlerbeleg",
        "haendlerbeleg",
        "merchant copy",
        "händler-beleg",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        ReceiptCopy::Merchant
    } else if [
        "kundenbeleg",
        "customer copy",
        "keep this receipt",
        "kunden-beleg",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        ReceiptCopy::Customer
    } else if index == 0 {
        ReceiptCopy::Merchant
    } else {
        ReceiptCopy::Customer
    };
    let (header, footer) = Receipt::fit_printed(lines);
    Receipt {
        copy,
        header,
        merchant_name: None,
        merchant_id: None,
        terminal_label: None,
        kind: r.kind,
        amount: r.approved_minor,
        currency: r.amount.currency,
        tip: None,
        cashback: None,
        time: r.time,
        method: r.method,
        card_scheme: r.card_scheme.clone(),
        pan: r.pan,
        aid: None,
        application_label: None,
        auth_code: r.auth_code.clone(),
        reference: r.reference.clone(),
        trace: Some(trace),
        result_text: None,
        signature_line: false,
        lines: Vec::new(),
        footer,
    }
}

pub use posbridge_wire::RECEIPT_LINES;
