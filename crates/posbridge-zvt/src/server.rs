//! The ZVT terminal role: [`ZvtServer`] answers a cash register that speaks ZVT and runs its
//! commands on any `posbridge_api::PaymentTerminal` — the simulator's ZVT mode, or a gateway that
//! lets a ZVT register drive a terminal of the native protocol.
//!
//! Money commands run in their own task: a register that disconnects mid-payment does not stop
//! the payment, and its result is what the next repeat receipt (`06 20`) reports.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use posbridge_api::money::Money;
use posbridge_api::{Call, PaymentError, PaymentTerminal, wall_clock};
use posbridge_link::Link;
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, MaskedPan, OperatorAuth, Outcome, ProgressStage, Receipt,
    SettlementResult, Timestamp, TransactionCommand, TransactionId, TransactionKind,
    TransactionRef, TransactionResult,
};

use crate::bmp::{self, Bmp};
use crate::codes;
use crate::exchange::{Terminal, TerminalEvent};
use crate::transport::{TransportError, ZvtLink};
use crate::{Apdu, Command, amount_of, receipt_of};

/// Where a [`Faults`] hook is asked whether to cut the connection: the steps of a money command
/// the simulator names too.
pub use posbridge_api::FaultPoint;

/// Asked at each [`FaultPoint`] of a money command: `true` cuts the connection there (the
/// payment goes on without it).
pub type Faults = Box<dyn FnMut(FaultPoint) -> bool + Send>;

/// How a [`ZvtServer`] presents itself.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The terminal id it reports (`29`, 8 digits; higher digits are dropped).
    pub terminal_id: u32,
    /// The password registration, refunds, reversals and end-of-day must carry.
    pub password: u32,
    /// The currency it accepts.
    pub currency: Currency,
    /// How long a money command may take on the terminal behind.
    pub deadline: Duration,
    /// How long to wait for the register's `80 00` after each message.
    pub ack_timeout: Duration,
    /// How receipts are laid out as print lines.
    pub render: fn(&Receipt) -> String,
    /// The operator credential the terminal behind wants for refunds, reversals, captures and
    /// end-of-day (ZVT authorises those with its password, checked here first).
    pub operator: Option<OperatorAuth>,
    /// Fields put before the others in every status information — to act as a terminal whose
    /// fields a register may not know (default: none).
    pub status_prefix: Vec<Bmp>,
    /// End a declined or failed payment with a completion (`06 0F`) after the status
    /// information that carries its result code, as many real terminals do, instead of an abort
    /// (`06 1E`) (default: false).
    pub decline_with_completion: bool,
    /// How far the terminal's clock (local time, no zone, as ZVT terminals keep it) is ahead of
    /// UTC, in seconds; negative when behind (default: 0).
    pub clock_offset_secs: i64,
    /// Whether the answer to a status enquiry carries the terminal's clock (default: true).
    pub status_clock: bool,
    /// The software version a status enquiry reports.
    pub software_version: String,
    /// The card a read card (`06 C0`) finds in the reader, or none (the register's timeout
    /// passes and the command ends with result `6C`, aborted).
    pub presented_card: Option<PresentedCard>,
}

/// A card as read card (`06 C0`) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCard {
    /// The card number, masked (BMP `22`).
    pub pan: MaskedPan,
    /// Its expiry, `YYMM` (BMP `0E`).
    pub expiry: u16,
    /// The ZVT card type (BMP `8A`: 5 girocard, 6 Mastercard, 10 Visa, …).
    pub card_type: u8,
    /// The card's name (BMP `8B`).
    pub name: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            terminal_id: 52_500_038,
            password: 0,
            currency: Currency::EUR,
            deadline: Duration::from_secs(180),
            ack_timeout: Duration::from_secs(5),
            render: plain_receipt,
            operator: None,
            status_prefix: Vec::new(),
            decline_with_completion: false,
            clock_offset_secs: 0,
            status_clock: true,
            software_version: concat!("posbridge ZVT ", env!("CARGO_PKG_VERSION")).into(),
            presented_card: None,
        }
    }
}

pub use posbridge_api::plain_receipt;

/// A finished money command, numbered the ZVT way.
#[derive(Clone, Debug)]
pub struct Done {
    /// Its result.
    pub result: TransactionResult,
    /// Its trace number (`0B`).
    pub trace: u32,
    /// Its receipt number (`87`).
    pub receipt: u16,
}

/// A terminal's ZVT numbering: trace and receipt numbers, each transaction of the open batch by
/// receipt number, and the last transaction (what a repeat receipt reports).
#[derive(Debug, Default)]
pub struct Ledger {
    last: Option<Done>,
    /// Receipt number -> the transaction and what it reserved or approved.
    receipts: HashMap<u16, (TransactionId, TransactionKind, u64)>,
    trace: u32,
    receipt: u16,
}

impl Ledger {
    /// Numbers `result` and keeps it as the last transaction.
    pub fn finish(&mut self, result: TransactionResult) -> Done {
        self.trace = self.trace % 999_999 + 1;
        self.receipt = self.receipt % 9_999 + 1;
        let done = Done {
            trace: self.trace,
            receipt: self.receipt,
            result,
        };
        let value = done.result.approved_minor;
        self.receipts.insert(
            done.receipt,
            (done.result.transaction_id, done.result.kind, value),
        );
        self.last = Some(done.clone());
        done
    }

    /// The last transaction.
    pub fn last(&self) -> Option<&Done> {
        self.last.as_ref()
    }

    /// The transaction with receipt number `receipt` (the last one when `None`): its id, kind
    /// and the amount it approved or reserved.
    pub fn original(&self, receipt: Option<u16>) -> Option<(TransactionId, TransactionKind, u64)> {
        receipt
            .or(self.last.as_ref().map(|d| d.receipt))
            .and_then(|r| self.receipts.get(&r).copied())
    }

    /// The batch is closed: its receipt numbers refer to nothing any more.
    pub fn close_batch(&mut self) {
        self.receipts.clear();
    }

    /// Applies `event` as it happened (to rebuild a ledger from its record after a restart).
    pub fn apply(&mut self, event: &LedgerEvent) {
        match event {
            LedgerEvent::Finished(done) => {
                self.trace = done.trace;
                self.receipt = done.receipt;
                self.receipts.insert(
                    done.receipt,
                    (
                        done.result.transaction_id,
                        done.result.kind,
                        done.result.approved_minor,
                    ),
                );
                self.last = Some(done.clone());
            }
            LedgerEvent::BatchClosed => self.close_batch(),
        }
    }
}

/// What changes a [`Ledger`]: what a terminal keeps on disk so that, restarted, it still knows
/// its last transaction (what a repeat receipt reports, and what registers recover by) and the
/// receipt numbers of its open batch. See [`ZvtServer::with_ledger`].
// Made once per payment and passed by reference: boxing would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum LedgerEvent {
    /// A money command finished, numbered.
    Finished(Done),
    /// End-of-day closed the batch.
    BatchClosed,
}

/// Called with every [`LedgerEvent`] before the register hears of it.
pub type LedgerHook = Box<dyn FnMut(&LedgerEvent) + Send>;

/// Tells the ledger's hook, if one is set, of `event`.
fn tell(hook: &Mutex<Option<LedgerHook>>, event: &LedgerEvent) {
    if let Some(hook) = hook.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        hook(event);
    }
}

#[derive(Default)]
struct State {
    ledger: Ledger,
    /// The terminal id set by the register (`06 1B`), if it changed it.
    terminal_id: Option<u32>,
    keys: u64,
    /// The register's configuration byte.
    config: u8,
}

/// The ZVT terminal role over `T`.
pub struct ZvtServer<T> {
    backend: Arc<T>,
    config: ServerConfig,
    state: Arc<Mutex<State>>,
    faults: Mutex<Option<Faults>>,
    started: u64,
    /// The register sent abort (`06 B0`) during the running payment.
    abort_requested: std::sync::atomic::AtomicBool,
    ledger_hook: Arc<Mutex<Option<LedgerHook>>>,
}

/// The terminal's side of one connection: the sans-IO [`Terminal`] exchange driven over the
/// link (T3 for each message, the register's abort answered and noted, commands sent again
/// while one runs ignored).
struct Side<L> {
    link: ZvtLink<L>,
    term: Terminal,
    /// The register asked to abort the running command.
    abort: bool,
}

fn std_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl<L: Link> Side<L> {
    fn new(link: ZvtLink<L>, ack_timeout: Duration) -> Self {
        Self {
            link,
            term: Terminal::new(ack_timeout),
            abort: false,
        }
    }

    /// Sends what the exchange has to send.
    async fn flush(&mut self) -> Result<(), TransportError> {
        while let Some(a) = self.term.poll_transmit(std_now()) {
            let awaited = !matches!(a.code(), [0x80, 0x00] | [0x84, _]);
            self.link.send(&a).await?;
            if awaited {
                // T3 counts from when it reached the register (a serial line's ACK).
                self.term.delivered(std_now());
            }
        }
        Ok(())
    }

    /// Reads one APDU into the exchange (cancel-safe: the link keeps what it read).
    async fn pump(&mut self) -> Result<(), TransportError> {
        let a = self.link.recv().await?;
        self.term.handle_apdu(a, std_now());
        self.note_events();
        Ok(())
    }

    /// Notes an abort asked for; other events need no action here.
    fn note_events(&mut self) -> Option<TerminalEvent> {
        while let Some(ev) = self.term.poll_event() {
            match ev {
                TerminalEvent::AbortRequested => self.abort = true,
                other => return Some(other),
            }
        }
        None
    }

    /// The next command from the register.
    async fn command(&mut self) -> Result<Apdu, TransportError> {
        loop {
            self.flush().await?;
            while let Some(ev) = self.note_events() {
                if let TerminalEvent::Command(a) = ev {
                    return Ok(a);
                }
            }
            let a = self.link.recv().await?;
            self.term.handle_apdu(a, std_now());
        }
    }

    /// Takes the command on (`80 00`).
    async fn ack(&mut self) -> Result<(), TransportError> {
        self.term.accept();
        self.flush().await
    }

    /// Refuses the command (`84 code`).
    async fn nak(&mut self, code: u8) -> Result<(), TransportError> {
        self.term.refuse(code);
        self.flush().await
    }

    /// Answers a command that needs only `80 00`.
    async fn acknowledge_only(&mut self) -> Result<(), TransportError> {
        self.term.acknowledge_only();
        self.flush().await
    }

    /// Sends `apdu` and waits for the register's `80 00` within T3.
    async fn send_acked(&mut self, apdu: Apdu) -> Result<(), ServeError> {
        self.term.send(apdu, std_now());
        loop {
            self.flush().await?;
            while let Some(ev) = self.note_events() {
                match ev {
                    TerminalEvent::Acknowledged => return Ok(()),
                    TerminalEvent::NoAcknowledgement => return Err(ServeError::NoAcknowledgement),
                    _ => {}
                }
            }
            let due = self.term.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                r = self.link.recv() => self.term.handle_apdu(r?, std_now()),
                () = async {
                    match due {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.term.handle_timeout(std_now()),
            }
        }
    }

    /// Whether the register asked to abort since the last call.
    fn take_abort(&mut self) -> bool {
        std::mem::take(&mut self.abort)
    }

    /// The command's exchange is over.
    fn finish(&mut self) {
        self.term.finish();
        self.abort = false;
    }
}

/// How often an abort is passed on again while the payment runs.
const ABORT_RETRY: Duration = Duration::from_millis(250);

impl<T> fmt::Debug for ZvtServer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZvtServer")
            .field("terminal_id", &self.config.terminal_id)
            .finish_non_exhaustive()
    }
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// The link failed or carried something that is not ZVT.
    Transport(TransportError),
    /// The register did not acknowledge a message in time.
    NoAcknowledgement,
    /// A fault hook cut the connection.
    Cut(FaultPoint),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::NoAcknowledgement => f.write_str("the register did not acknowledge in time"),
            Self::Cut(p) => write!(f, "connection cut by a fault at {p:?}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<TransportError> for ServeError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The text of a print line in code page 437 (ASCII kept; other characters as `?`).
fn cp437(line: &str) -> Vec<u8> {
    line.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            'ü' => 0x81,
            'ä' => 0x84,
            'Ä' => 0x8E,
            'ö' => 0x94,
            'Ö' => 0x99,
            'Ü' => 0x9A,
            'ß' => 0xE1,
            _ => b'?',
        })
        .collect()
}

impl<T: PaymentTerminal + 'static> ZvtServer<T> {
    /// A ZVT terminal in front of `backend`.
    pub fn new(backend: Arc<T>, config: ServerConfig) -> Self {
        Self {
            backend,
            config,
            state: Arc::new(Mutex::new(State {
                config: 0xFF,
                ..State::default()
            })),
            faults: Mutex::new(None),
            started: wall_clock().0,
            abort_requested: std::sync::atomic::AtomicBool::new(false),
            ledger_hook: Arc::new(Mutex::new(None)),
        }
    }

    fn abort(&self) {
        self.abort_requested
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn aborting(&self) -> bool {
        self.abort_requested
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts from `ledger` (its record read back after a restart) and calls `hook` with every
    /// change before the register hears of it, so the record can be kept durably.
    #[must_use]
    pub fn with_ledger(self, ledger: Ledger, hook: LedgerHook) -> Self {
        lock(&self.state).ledger = ledger;
        *self.ledger_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        self
    }

    /// Cuts connections where `faults` says.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = Some(faults);
    }

    fn strike(&self, at: FaultPoint) -> Result<(), ServeError> {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let cut = f.as_mut().is_some_and(|hook| hook(at));
        if cut {
            Err(ServeError::Cut(at))
        } else {
            Ok(())
        }
    }

    fn next_key(&self) -> IdempotencyKey {
        let mut s = lock(&self.state);
        s.keys += 1;
        IdempotencyKey::from_u128(u128::from(self.started) << 64 | u128::from(s.keys))
    }

    /// Serves one register on `link` until it disconnects.
    pub async fn serve<L: Link>(&self, link: ZvtLink<L>) -> Result<(), ServeError> {
        let mut side = Side::new(link, self.config.ack_timeout);
        loop {
            let apdu = match side.command().await {
                Ok(a) => a,
                Err(TransportError::Link(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            self.handle(&mut side, &apdu).await?;
            // The command's exchange is over: the next may come.
            side.finish();
        }
    }

    async fn handle<L: Link>(&self, link: &mut Side<L>, apdu: &Apdu) -> Result<(), ServeError> {
        let Ok(command) = Command::from_apdu(apdu) else {
            link.nak(codes::FUNCTION_NOT_POSSIBLE).await?;
            return Ok(());
        };
        let pw_ok = |p: u32| p == self.config.password;
        let cur_ok = |c: Option<u16>| c.is_none_or(|c| c == self.config.currency.code());
        let amount = |minor: u64| Amount::new(minor, self.config.currency);
        let original = |receipt: Option<u16>| lock(&self.state).ledger.original(receipt);
        let money = match command {
            Command::Registration {
                password, config, ..
            } => {
                if !pw_ok(password) {
                    link.nak(codes::FUNCTION_NOT_POSSIBLE).await?;
                    return Ok(());
                }
                lock(&self.state).config = config;
                link.ack().await?;
                let done = Command::Completion(vec![
                    Bmp::Other(0x19, vec![0x00]),
                    self.tid_field(),
                    Bmp::Currency(self.config.currency.code()),
                ]);
                return self.send_acked(link, &done).await;
            }
            Command::Authorization {
                amount: a,
                currency,
                ..
            } if cur_ok(currency) => TransactionCommand::Sale {
                amount: amount(a),
                tip: None,
                cashback: None,
            },
            Command::PreAuthorisation {
                amount: a,
                currency,
                ..
            } if cur_ok(currency) => TransactionCommand::PreAuth { amount: amount(a) },
            Command::Refund {
                password,
                amount: a,
                currency,
                ..
            } if pw_ok(password) && cur_ok(currency) => TransactionCommand::Refund {
                amount: amount(a),
                original: None,
            },
            Command::Reversal {
                password, receipt, ..
            } if pw_ok(password) => match original(receipt) {
                Some((id, _, _)) => TransactionCommand::Void {
                    original: TransactionRef::Id(id),
                },
                None => return self.refuse(link, codes::REVERSAL_NOT_POSSIBLE).await,
            },
            Command::BookTotal(f) => match original(receipt_of(&f)) {
                Some((id, TransactionKind::PreAuth, reserved)) => TransactionCommand::Capture {
                    original: TransactionRef::Id(id),
                    amount: amount(amount_of(&f).unwrap_or(reserved)),
                    tip: None,
                },
                _ => return self.refuse(link, codes::PREAUTH_INCORRECT).await,
            },
            Command::PartialReversal(f) => match original(receipt_of(&f)) {
                Some((id, TransactionKind::PreAuth, reserved)) => {
                    let release = amount_of(&f).unwrap_or(0).min(reserved);
                    TransactionCommand::Capture {
                        original: TransactionRef::Id(id),
                        amount: amount(reserved - release),
                        tip: None,
                    }
                }
                _ => return self.refuse(link, codes::PREAUTH_INCORRECT).await,
            },
            Command::PreAuthReversal(f) => match original(receipt_of(&f)) {
                Some((id, TransactionKind::PreAuth, _)) => TransactionCommand::PreAuthCancel {
                    original: TransactionRef::Id(id),
                },
                _ => return self.refuse(link, codes::PREAUTH_INCORRECT).await,
            },
            Command::EndOfDay { password, .. } if pw_ok(password) => {
                link.ack().await?;
                return self.end_of_day(link).await;
            }
            // Answered as the specification and real terminals do: a completion with the
            // software version, the status byte and a TLV container (terminal id, clock).
            Command::StatusEnquiry { .. } => {
                link.ack().await?;
                let status = crate::TerminalStatus {
                    software_version: self.config.software_version.clone(),
                    status: 0,
                    terminal_id: Some(self.terminal_id() % 100_000_000),
                    local_time: self
                        .config
                        .status_clock
                        .then(|| self.local_time(wall_clock())),
                    tlv: Vec::new(),
                };
                let data = status.encode().map_err(TransportError::Codec)?;
                return self
                    .send_acked_apdu(link, Apdu::new(0x06, 0x0F, data))
                    .await;
            }
            Command::ReadCard { .. } => {
                link.ack().await?;
                return match self.config.presented_card.clone() {
                    Some(card) => {
                        let fields = vec![
                            Bmp::Result(codes::SUCCESS),
                            Bmp::Pan(card.pan.to_string()),
                            Bmp::Other(
                                0x0E,
                                bmp::bcd(u64::from(card.expiry), 2)
                                    .map_err(TransportError::Codec)?,
                            ),
                            Bmp::CardType(card.card_type),
                            Bmp::CardName(card.name),
                        ];
                        self.send_acked(link, &Command::StatusInformation(fields))
                            .await?;
                        self.send_acked(link, &Command::Completion(vec![self.tid_field()]))
                            .await
                    }
                    None => self.end_with(link, codes::ABORTED).await,
                };
            }
            // The host connection is the terminal behind: reachable, as this answer shows.
            Command::Diagnosis(_) => {
                link.ack().await?;
                return self
                    .admin_done(link, &["DIAGNOSIS", "HOST CONNECTION OK"])
                    .await;
            }
            Command::Initialisation { password, .. } if pw_ok(password) => {
                link.ack().await?;
                return self
                    .admin_done(link, &["INITIALISATION", "PARAMETERS LOADED"])
                    .await;
            }
            Command::PrintSystemConfiguration { password, .. } if pw_ok(password) => {
                link.ack().await?;
                let config_byte = lock(&self.state).config;
                let lines = [
                    "SYSTEM CONFIGURATION".to_string(),
                    format!("Terminal ID {:08}", self.terminal_id() % 100_000_000),
                    self.config.software_version.clone(),
                    format!("Currency {}", self.config.currency),
                    format!("ECR config byte {config_byte:02X}"),
                ];
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                return self.admin_done(link, &lines).await;
            }
            Command::SetTerminalId { password, extra } if pw_ok(password) => {
                let id = extra.iter().find_map(|f| match f {
                    Bmp::Other(0x29, v) => bmp::from_bcd(v).ok(),
                    _ => None,
                });
                return match id {
                    Some(id) => {
                        link.ack().await?;
                        lock(&self.state).terminal_id = Some(id as u32);
                        self.send_acked(link, &Command::Completion(vec![self.tid_field()]))
                            .await
                    }
                    None => self.refuse(link, codes::FUNCTION_NOT_POSSIBLE).await,
                };
            }
            Command::RepeatReceipt { password, .. } if pw_ok(password) => {
                link.ack().await?;
                let last = lock(&self.state).ledger.last().cloned();
                return match last {
                    Some(done) => self.report(link, &done).await,
                    None => self.end_with(link, codes::FUNCTION_NOT_POSSIBLE).await,
                };
            }
            Command::LogOff | Command::Abort => {
                link.acknowledge_only().await?;
                return Ok(());
            }
            Command::Authorization { .. }
            | Command::PreAuthorisation { .. }
            | Command::Refund { .. } => {
                return self.refuse(link, codes::CURRENCY_NOT_APPLICABLE).await;
            }
            _ => {
                link.nak(codes::FUNCTION_NOT_POSSIBLE).await?;
                return Ok(());
            }
        };
        link.ack().await?;
        self.payment(link, money).await
    }

    /// Ends an administration command: `lines` printed (when the register prints
    /// administration receipts), a status information with result `00`, a completion.
    async fn admin_done<L: Link>(
        &self,
        link: &mut Side<L>,
        lines: &[&str],
    ) -> Result<(), ServeError> {
        if lock(&self.state).config & 0x04 != 0 {
            self.print(link, &lines.join("\n")).await?;
        }
        self.send_acked(
            link,
            &Command::StatusInformation(vec![Bmp::Result(codes::SUCCESS)]),
        )
        .await?;
        self.send_acked(link, &Command::Completion(vec![self.tid_field()]))
            .await
    }

    /// Acknowledges, then ends the command with an abort carrying `code`.
    async fn refuse<L: Link>(&self, link: &mut Side<L>, code: u8) -> Result<(), ServeError> {
        link.ack().await?;
        self.end_with(link, code).await
    }

    /// The terminal id field (`29`, 8 BCD digits).
    fn tid_field(&self) -> Bmp {
        tid_field(&self.config_now())
    }

    /// The terminal id it reports now (set by the register, or configured).
    fn terminal_id(&self) -> u32 {
        lock(&self.state)
            .terminal_id
            .unwrap_or(self.config.terminal_id)
    }

    /// The configuration with the terminal id as it is now.
    fn config_now(&self) -> std::borrow::Cow<'_, ServerConfig> {
        let id = self.terminal_id();
        if id == self.config.terminal_id {
            std::borrow::Cow::Borrowed(&self.config)
        } else {
            std::borrow::Cow::Owned(ServerConfig {
                terminal_id: id,
                ..self.config.clone()
            })
        }
    }

    /// Ends the running command with an abort (`06 1E`) carrying result `code`.
    async fn end_with<L: Link>(&self, link: &mut Side<L>, code: u8) -> Result<(), ServeError> {
        self.send_acked(
            link,
            &Command::AbortFromTerminal {
                result: code,
                extra: Vec::new(),
            },
        )
        .await
    }

    /// Sends `command` and waits for the register's `80 00`. An abort (`06 B0`) the register
    /// sends meanwhile is passed to the terminal behind.
    async fn send_acked<L: Link>(
        &self,
        link: &mut Side<L>,
        command: &Command,
    ) -> Result<(), ServeError> {
        let apdu = command
            .to_apdu()
            .map_err(|e| ServeError::Transport(TransportError::Codec(e)))?;
        self.send_acked_apdu(link, apdu).await
    }

    /// The terminal's local time (its clock, [`ServerConfig::clock_offset_secs`] off UTC) at
    /// `t`.
    fn local_time(&self, t: Timestamp) -> Timestamp {
        local_time(&self.config, t)
    }

    /// Sends `apdu` and waits for the register's `80 00` (passing on an abort meanwhile).
    async fn send_acked_apdu<L: Link>(
        &self,
        link: &mut Side<L>,
        apdu: Apdu,
    ) -> Result<(), ServeError> {
        let acknowledged = link.send_acked(apdu).await;
        if link.take_abort() {
            self.abort();
            let _ = self.backend.cancel().await;
        }
        acknowledged
    }

    async fn payment<L: Link>(
        &self,
        link: &mut Side<L>,
        command: TransactionCommand,
    ) -> Result<(), ServeError> {
        let key = self.next_key();
        let mut progress = self.backend.progress();
        let backend = self.backend.clone();
        let state = self.state.clone();
        let hook = self.ledger_hook.clone();
        let mut call = Call::within(self.config.deadline);
        if !matches!(
            command,
            TransactionCommand::Sale { .. } | TransactionCommand::PreAuth { .. }
        ) {
            call.operator = self.config.operator.clone();
        }
        let mut task = tokio::spawn(async move {
            let r = backend.execute(key, command, call).await;
            // Numbered and kept as the last transaction whether or not the register is still
            // there to hear it.
            r.map(|result| {
                let done = lock(&state).ledger.finish(result);
                tell(&hook, &LedgerEvent::Finished(done.clone()));
                done
            })
        });
        // The payment runs on its own from here: a cut connection does not stop it.
        self.abort_requested
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.strike(FaultPoint::AfterRequest)?;
        let mut progress_open = true;
        let outcome = loop {
            tokio::select! {
                // Progress reported before the result is shown before it.
                biased;
                p = progress.next(), if progress_open => {
                    progress_open = p.is_some();
                    if let Some(p) = p {
                        // Only to registers that asked for them (configuration byte 08).
                        if lock(&self.state).config & 0x08 != 0 {
                            self.send_acked(link, &Command::IntermediateStatus {
                                status: codes::status_for(p.stage),
                                timeout: None,
                                extra: Vec::new(),
                            }).await?;
                        }
                        if p.stage == ProgressStage::CardRead {
                            self.strike(FaultPoint::AfterCardRead)?;
                        }
                    }
                }
                r = &mut task => break r,
                r = link.pump() => {
                    r?;
                    // The register may abort while the terminal is working (the exchange
                    // answers it `80 00`).
                    link.flush().await?;
                    if link.take_abort() {
                        self.abort();
                        let _ = self.backend.cancel().await;
                    }
                }
                // An abort asked for is asked again until the payment ends: the terminal
                // behind may not have taken the command as its running one yet.
                () = tokio::time::sleep(ABORT_RETRY), if self.aborting() => {
                    let _ = self.backend.cancel().await;
                }
            }
        };
        self.abort_requested
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.strike(FaultPoint::BeforeResult)?;
        match outcome {
            Ok(Ok(done)) => {
                self.report(link, &done).await?;
                self.strike(FaultPoint::AfterResult)
            }
            Ok(Err(e)) => {
                let code = match &e {
                    PaymentError::Refused { refusal, .. } => {
                        codes::result_code(Outcome::Failed(refusal.code))
                    }
                    _ => codes::SYSTEM_ERROR,
                };
                self.end_with(link, code).await
            }
            Err(_) => self.end_with(link, codes::SYSTEM_ERROR).await,
        }
    }

    /// Status information, receipts as print lines (when the register prints), and the end:
    /// a completion when money moved or the register asked for nothing more, else an abort with
    /// the result code.
    async fn report<L: Link>(&self, link: &mut Side<L>, done: &Done) -> Result<(), ServeError> {
        let prints = lock(&self.state).config & 0x02 != 0;
        for message in report(&self.config_now(), done, prints) {
            self.send_acked(link, &message).await?;
        }
        Ok(())
    }

    async fn print<L: Link>(&self, link: &mut Side<L>, text: &str) -> Result<(), ServeError> {
        for line in print_lines(text) {
            self.send_acked(link, &line).await?;
        }
        Ok(())
    }

    async fn end_of_day<L: Link>(&self, link: &mut Side<L>) -> Result<(), ServeError> {
        let key = self.next_key();
        let settled = self
            .backend
            .settle(
                key,
                Call {
                    deadline: self.config.deadline,
                    operator: self.config.operator.clone(),
                },
            )
            .await;
        match settled {
            Ok(s) if s.status.is_ok() => {
                self.send_acked(link, &Command::StatusInformation(self.eod_fields(&s)))
                    .await?;
                if lock(&self.state).config & 0x04 != 0 {
                    self.print(link, &eod_text(&s)).await?;
                }
                lock(&self.state).ledger.close_batch();
                tell(&self.ledger_hook, &LedgerEvent::BatchClosed);
                self.send_acked(link, &Command::Completion(Vec::new()))
                    .await
            }
            Ok(s) => {
                let code = codes::result_code(Outcome::Failed(
                    s.status
                        .err()
                        .unwrap_or(posbridge_wire::ErrorCode::INTERNAL),
                ));
                self.end_with(link, code).await
            }
            Err(_) => self.end_with(link, codes::EOD_NOT_POSSIBLE).await,
        }
    }

    fn eod_fields(&self, s: &SettlementResult) -> Vec<Bmp> {
        let (date, time) = codes::date_time(self.local_time(s.closed));
        // The batch's net: sales, captures and pre-auth less refunds and voids.
        let net = s.totals.iter().fold(0i128, |acc, t| match t.kind {
            TransactionKind::Refund | TransactionKind::Void => acc - i128::from(t.amount),
            TransactionKind::PreAuth
            | TransactionKind::IncrementalAuth
            | TransactionKind::PreAuthCancel
            | TransactionKind::BalanceInquiry => acc,
            _ => acc + i128::from(t.amount),
        });
        vec![
            Bmp::Result(codes::SUCCESS),
            Bmp::Amount(net.max(0) as u64),
            Bmp::Trace(s.batch_number % 1_000_000),
            Bmp::Time(time),
            Bmp::Date(date),
        ]
    }
}

/// The terminal id field (`29`, 8 BCD digits).
fn tid_field(config: &ServerConfig) -> Bmp {
    Bmp::Other(
        0x29,
        bmp::bcd(u64::from(config.terminal_id % 100_000_000), 4).expect("8 digits fit 4 BCD bytes"),
    )
}

/// The terminal's local time (its clock, [`ServerConfig::clock_offset_secs`] off UTC) at `t`.
fn local_time(config: &ServerConfig, t: Timestamp) -> Timestamp {
    let local = t.0 as i64 + config.clock_offset_secs * 1000;
    Timestamp(local.max(0) as u64)
}

/// The status information of a finished transaction.
pub fn status_fields(config: &ServerConfig, done: &Done) -> Vec<Bmp> {
    let r = &done.result;
    let (date, time) = codes::date_time(local_time(config, r.time));
    let mut f = config.status_prefix.clone();
    f.extend([
        Bmp::Result(codes::result_code(r.outcome)),
        Bmp::Amount(if r.outcome.is_approved() {
            r.approved_minor
        } else {
            r.amount.minor
        }),
        Bmp::Currency(r.amount.currency.code()),
        Bmp::Trace(done.trace),
        Bmp::Time(time),
        Bmp::Date(date),
    ]);
    if let Some(p) = &r.pan {
        f.push(Bmp::Pan(p.to_string()));
    }
    f.push(tid_field(config));
    if let Some(a) = &r.auth_code {
        let mut v: Vec<u8> = a.bytes().take(8).collect();
        v.resize(8, 0);
        f.push(Bmp::Other(0x3B, v));
    }
    f.push(Bmp::Receipt(done.receipt));
    if let Some(s) = &r.card_scheme {
        f.push(Bmp::CardName(s.clone()));
    }
    f
}

/// The messages that report `done` to a register, in order: its status information, its
/// receipts as print lines (when the register prints them), and the end — a completion when
/// money moved (or [`ServerConfig::decline_with_completion`]), else an abort with the result
/// code.
pub fn report(config: &ServerConfig, done: &Done, prints: bool) -> Vec<Command> {
    let mut out = vec![Command::StatusInformation(status_fields(config, done))];
    if prints {
        for receipt in &done.result.receipts {
            out.extend(print_lines(&(config.render)(receipt)));
        }
    }
    out.push(match done.result.outcome {
        Outcome::Approved | Outcome::PartiallyApproved => {
            Command::Completion(vec![tid_field(config)])
        }
        _ if config.decline_with_completion => Command::Completion(vec![tid_field(config)]),
        o => Command::AbortFromTerminal {
            result: codes::result_code(o),
            extra: Vec::new(),
        },
    });
    out
}

/// `text` as print lines (`06 D1`), the last one ending the receipt.
pub fn print_lines(text: &str) -> Vec<Command> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| Command::PrintLine {
            attribute: if i + 1 == lines.len() { 0x80 } else { 0x00 },
            text: cp437(line),
        })
        .collect()
}

fn eod_text(s: &SettlementResult) -> String {
    let mut out = format!("END OF DAY\nBatch {}\n", s.batch_number);
    for t in &s.totals {
        out.push_str(&format!(
            "{:?} x{} {}\n",
            t.kind,
            t.count,
            Money::new(t.amount, t.currency)
        ));
    }
    let (date, time) = codes::date_time(Timestamp(s.closed.0));
    out.push_str(&format!(
        "Closed {:02}/{:02} {:02}:{:02}:{:02} UTC\n",
        date / 100,
        date % 100,
        time / 10_000,
        time / 100 % 100,
        time % 100
    ));
    out
}
