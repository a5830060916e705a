//! The ZVT client (the cash register's side, "ECR"): [`ZvtTerminal`] implements
//! `posbridge::PaymentTerminal` over TCP, TLS or serial links, with the journal.
//!
//! One background task owns the link and runs one exchange at a time, the way ZVT works: the
//! register sends a command and waits up to [`ZvtConfig::ack_timeout`] (the specification's T3,
//! 5 s) for `80 00`; from then on the terminal is master and sends intermediate states, the
//! status information, print lines and text blocks, and ends with a completion (`06 0F`) or an
//! abort (`06 1E`) — each answered `80 00` by the register. Abort (`06 B0`) is sent into a
//! running exchange by [`cancel`](posbridge::PaymentTerminal::cancel).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use posbridge::journal::{EntryState, Journal};
use posbridge::{Call, ClientError, PaymentError, PaymentTerminal, ProgressEvents, driver};
use posbridge_link::Link;
use posbridge_session::{ClientEvent, RequestError};
use posbridge_wire::{
    Amount, Capabilities, Currency, ErrorCode, ErrorMessage, FeatureSet, IdempotencyKey, KindSet,
    MaskedPan, MethodSet, Outcome, PaymentMethod, Progress, Receipt, ReceiptCopy, RequestId,
    SettlementResult, TerminalId, Timestamp, Totals, TransactionCommand, TransactionKind,
    TransactionRef, TransactionRequest, TransactionResult, TransactionStatus,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::bmp::Bmp;
use crate::codes::{self, ZvtRef};
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
    /// How far a terminal's clock may be behind ours when recovery compares the time of its last
    /// transaction with when a command was journaled.
    pub clock_tolerance: Duration,
}

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
        }
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
        }
    }
}

impl std::error::Error for ExchangeError {}

/// What the terminal sent during one exchange, in order (its intermediate states excepted).
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// Status informations (`04 0F`).
    pub status: Vec<Vec<Bmp>>,
    /// Print lines (`06 D1`) as text, with the index of the receipt they belong to.
    pub lines: Vec<(usize, String)>,
    /// The completion's fields (`06 0F`), or `None` if the terminal aborted.
    pub completion: Option<Vec<Bmp>>,
    /// The abort's result code (`06 1E`).
    pub aborted: Option<u8>,
    /// Anything else, as it came.
    pub other: Vec<Apdu>,
}

impl Exchange {
    /// The receipts printed, one per block of lines (a line whose attribute has its top bit set
    /// ends a receipt, as does a text block).
    pub fn receipts(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for (i, line) in &self.lines {
            while out.len() <= *i {
                out.push(Vec::new());
            }
            out[*i].push(line.clone());
        }
        out.retain(|r| !r.is_empty());
        out
    }
}

enum Job {
    Exchange {
        apdu: Apdu,
        request: RequestId,
        deadline: Instant,
        reply: oneshot::Sender<Result<Exchange, ExchangeError>>,
    },
}

/// Decodes the text of a print line (code page 437; its ASCII part is the same, the rest is
/// shown as `?` except the German letters terminals print).
fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x20..=0x7E => b as char,
            0x81 => 'ü',
            0x84 => 'ä',
            0x8E => 'Ä',
            0x94 => 'ö',
            0x99 => 'Ö',
            0x9A => 'Ü',
            0xE1 => 'ß',
            _ => '?',
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The text lines of a print text block: the primitive tag-`07` values of its TLV container.
fn block_lines(tlv: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = tlv;
    while let Some((&tag, after)) = rest.split_first() {
        // Two-byte tags (`1F xx`).
        let (tag, after) = if tag & 0x1F == 0x1F {
            match after.split_first() {
                Some((&t2, a)) => (u16::from(tag) << 8 | u16::from(t2), a),
                None => break,
            }
        } else {
            (u16::from(tag), after)
        };
        let Some((&l0, after)) = after.split_first() else {
            break;
        };
        let (len, after) = match l0 {
            0..=0x7F => (usize::from(l0), after),
            0x81 => match after.split_first() {
                Some((&l, a)) => (usize::from(l), a),
                None => break,
            },
            0x82 if after.len() >= 2 => (
                usize::from(u16::from_be_bytes([after[0], after[1]])),
                &after[2..],
            ),
            _ => break,
        };
        let Some(value) = after.get(..len) else {
            break;
        };
        if tag == 0x07 {
            out.push(text(value));
        } else if tag & 0x20 != 0 && tag <= 0xFF {
            // Constructed: look inside.
            out.extend(block_lines(value));
        }
        rest = &after[len..];
    }
    out
}

async fn run<L: Link>(
    mut link: ZvtLink<L>,
    mut jobs: mpsc::Receiver<Job>,
    mut aborts: mpsc::Receiver<()>,
    events: broadcast::Sender<ClientEvent>,
    ack_timeout: Duration,
) {
    while let Some(job) = jobs.recv().await {
        let Job::Exchange {
            apdu,
            request,
            deadline,
            reply,
        } = job;
        // Aborts asked for before this exchange began are for the one before.
        while aborts.try_recv().is_ok() {}
        let result = exchange(
            &mut link,
            &apdu,
            request,
            deadline,
            &mut aborts,
            &events,
            ack_timeout,
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

async fn exchange<L: Link>(
    link: &mut ZvtLink<L>,
    apdu: &Apdu,
    request: RequestId,
    deadline: Instant,
    aborts: &mut mpsc::Receiver<()>,
    events: &broadcast::Sender<ClientEvent>,
    ack_timeout: Duration,
) -> Result<Exchange, ExchangeError> {
    let t = |e| ExchangeError::Transport(e);
    link.send(apdu).await.map_err(t)?;
    // The acknowledgement (some terminals send data with it: still an acknowledgement).
    let ack = tokio::time::timeout(ack_timeout.min(deadline - Instant::now()), link.recv())
        .await
        .map_err(|_| ExchangeError::NoAcknowledgement)?
        .map_err(t)?;
    let mut out = Exchange::default();
    match ack.code() {
        [0x80, 0x00] => {}
        [0x84, code] => return Err(ExchangeError::Refused(code)),
        // A terminal that skips the acknowledgement and starts at once.
        _ => out.other.push(ack.clone()),
    }
    // Commands the terminal only acknowledges.
    if matches!(apdu.code(), [0x06, 0x02] | [0x06, 0xB0]) && out.other.is_empty() {
        return Ok(out);
    }
    let mut receipt = 0usize;
    let mut pending: VecDeque<Apdu> = out.other.drain(..).collect();
    loop {
        let msg = match pending.pop_front() {
            Some(m) => m,
            None => tokio::select! {
                m = link.recv() => m.map_err(t)?,
                Some(()) = aborts.recv() => {
                    link.send(&Command::Abort.to_apdu().expect("abort encodes")).await.map_err(t)?;
                    continue;
                }
                () = tokio::time::sleep_until(deadline) => return Err(ExchangeError::Deadline),
            },
        };
        // Answers to our abort, not messages to answer.
        if matches!(msg.code(), [0x80, 0x00] | [0x84, _]) {
            continue;
        }
        link.send(&Apdu::ack()).await.map_err(t)?;
        match Command::from_apdu(&msg) {
            Ok(Command::IntermediateStatus { status, .. }) => {
                let (stage, message) = codes::stage(status);
                let _ = events.send(ClientEvent::Progress {
                    request_id: request,
                    progress: Progress {
                        request_id: request,
                        stage,
                        method: None,
                        message: Some(message.into()),
                    },
                });
            }
            Ok(Command::StatusInformation(f)) => out.status.push(f),
            Ok(Command::PrintLine { attribute, text: t }) => {
                out.lines.push((receipt, text(&t)));
                if attribute & 0x80 != 0 {
                    receipt += 1;
                }
            }
            Ok(Command::PrintTextBlock(tlv)) => {
                for line in block_lines(&tlv) {
                    out.lines.push((receipt, line));
                }
                receipt += 1;
            }
            Ok(Command::Completion(f)) => {
                out.completion = Some(f);
                return Ok(out);
            }
            Ok(Command::AbortFromTerminal { result, .. }) => {
                out.aborted = Some(result);
                return Ok(out);
            }
            _ => out.other.push(msg),
        }
    }
}

/// Where a [`ZvtTerminal`] is connected: the link's task.
struct Connection {
    jobs: mpsc::Sender<Job>,
    aborts: mpsc::Sender<()>,
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

/// Why [`ZvtTerminal::connect`] failed.
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

/// A ZVT terminal behind `posbridge::PaymentTerminal`, with a journal: every money command is
/// journaled before it is sent and its result recorded; a lost result is resolved by
/// [`recover`](Self::recover) from the terminal's last transaction (repeat receipt), checked
/// against the journal.
pub struct ZvtTerminal<J> {
    connection: Connection,
    config: ZvtConfig,
    capabilities: Capabilities,
    registered: Registered,
    events: broadcast::Sender<ClientEvent>,
    journal: Mutex<J>,
    running: Mutex<Option<RequestId>>,
    requests: std::sync::atomic::AtomicU64,
}

impl<J> fmt::Debug for ZvtTerminal<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZvtTerminal")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

fn first<T>(fields: &[Bmp], pick: impl Fn(&Bmp) -> Option<T>) -> Option<T> {
    fields.iter().find_map(pick)
}

fn result_code_of(fields: &[Bmp]) -> Option<u8> {
    first(fields, |f| match f {
        Bmp::Result(r) => Some(*r),
        _ => None,
    })
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

impl<J: Journal + Send> ZvtTerminal<J> {
    /// Registers with the terminal on `link` (`06 00` with the password, configuration byte
    /// and currency) and starts the connection's task.
    pub async fn connect<L: Link + 'static>(
        link: L,
        framing: Framing,
        config: ZvtConfig,
        journal: J,
    ) -> Result<Self, ConnectError> {
        let (jobs_tx, jobs_rx) = mpsc::channel(4);
        let (abort_tx, abort_rx) = mpsc::channel(4);
        let (events, _) = broadcast::channel(64);
        tokio::spawn(run(
            ZvtLink::new(link, framing),
            jobs_rx,
            abort_rx,
            events.clone(),
            config.ack_timeout,
        ));
        let connection = Connection {
            jobs: jobs_tx,
            aborts: abort_tx,
        };
        let registration = Command::Registration {
            password: config.password,
            config: config.config_byte,
            currency: Some(config.currency.code()),
            // Service byte 03: the register prints no "registration" receipt, the terminal
            // keeps its menu.
            extra: vec![Bmp::Other(0x03, vec![0x03])],
        };
        let ex = Self::run_on(
            &connection,
            &registration,
            RequestId::default(),
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
        };
        Ok(Self {
            connection,
            config,
            capabilities,
            registered,
            events,
            journal: Mutex::new(journal),
            running: Mutex::new(None),
            requests: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// What the terminal said at registration.
    pub fn registered(&self) -> &Registered {
        &self.registered
    }

    /// Ends the connection and gives back the journal (to connect again with it).
    pub fn into_journal(self) -> J {
        self.journal.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// The journal.
    pub fn journal(&self) -> MutexGuard<'_, J> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run_on(
        connection: &Connection,
        command: &Command,
        request: RequestId,
        deadline: Duration,
    ) -> Result<Exchange, ExchangeError> {
        let apdu = command
            .to_apdu()
            .map_err(|e| ExchangeError::Transport(TransportError::Codec(e)))?;
        let (reply, answer) = oneshot::channel();
        connection
            .jobs
            .send(Job::Exchange {
                apdu,
                request,
                deadline: Instant::now() + deadline,
                reply,
            })
            .await
            .map_err(|_| ExchangeError::Closed)?;
        answer.await.map_err(|_| ExchangeError::Closed)?
    }

    /// Runs one command to the end of its exchange (for commands `PaymentTerminal` has no name
    /// for: log-off, diagnosis, vendor commands).
    pub async fn run_command(
        &self,
        command: &Command,
        deadline: Duration,
    ) -> Result<Exchange, ExchangeError> {
        Self::run_on(&self.connection, command, self.next_request(), deadline).await
    }

    fn next_request(&self) -> RequestId {
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RequestId::from_u128(u128::from(n))
    }

    fn terminal_ref(&self) -> u32 {
        self.registered.terminal_id.unwrap_or(0)
    }

    /// The receipt number of the journaled transaction `target` refers to.
    fn receipt_number(&self, target: &TransactionRef) -> Result<u16, PaymentError> {
        let id = match target {
            TransactionRef::Id(id) => *id,
            TransactionRef::Key(k) => match self.journal().get(k)? {
                Some(e) => match e.result {
                    Some(r) => r.transaction_id,
                    None => return Err(original_unknown("it has no result in the journal")),
                },
                None => return Err(original_unknown("no journal entry has that key")),
            },
            _ => return Err(original_unknown("unsupported reference")),
        };
        Ok(ZvtRef::from_id(&id).receipt)
    }

    /// The ZVT command for a money command.
    fn zvt_command(&self, command: &TransactionCommand) -> Result<Command, PaymentError> {
        let pw = self.config.password;
        let cc = Some(self.config.currency.code());
        let check = |a: &Amount| {
            if a.currency == self.config.currency {
                Ok(a.minor)
            } else {
                Err(PaymentError::Request(RequestError::CurrencyNotSupported {
                    currency: a.currency,
                    accepted: vec![self.config.currency],
                }))
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
                receipt: Some(self.receipt_number(original)?),
                extra: Vec::new(),
            },
            TransactionCommand::Capture {
                original,
                amount,
                tip: None,
            } => Command::BookTotal(vec![
                Bmp::Receipt(self.receipt_number(original)?),
                Bmp::Amount(check(amount)?),
                Bmp::Currency(self.config.currency.code()),
            ]),
            TransactionCommand::PreAuthCancel { original } => Command::PreAuthReversal(vec![
                Bmp::Currency(self.config.currency.code()),
                Bmp::Receipt(self.receipt_number(original)?),
            ]),
            other => {
                return Err(PaymentError::Request(RequestError::KindNotSupported(
                    other.kind(),
                )));
            }
        })
    }

    /// The result an exchange reports for `request` (made at `now`).
    fn result_of(
        &self,
        request: &TransactionRequest,
        ex: &Exchange,
        now: Timestamp,
    ) -> TransactionResult {
        let fields: Vec<Bmp> = ex.status.last().cloned().unwrap_or_default();
        let code = result_code_of(&fields)
            .or(ex.aborted)
            .unwrap_or(if ex.completion.is_some() {
                codes::SUCCESS
            } else {
                codes::SYSTEM_ERROR
            });
        let outcome = codes::outcome(code);
        result_from(
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
        )
    }

    fn in_doubt(&self, key: &IdempotencyKey, why: &str) -> PaymentError {
        let _ = self.journal().mark_in_doubt(key, why, driver::wall_clock());
        PaymentError::InDoubt(why.into())
    }

    /// The terminal's last transaction, read with a repeat receipt (`06 20`), as a result under
    /// `key` — `None` when the terminal has none to repeat.
    async fn repeat(
        &self,
        key: IdempotencyKey,
        request: &TransactionRequest,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, PaymentError> {
        let ex = self
            .run_command(
                &Command::RepeatReceipt {
                    password: self.config.password,
                    extra: Vec::new(),
                },
                deadline,
            )
            .await
            .map_err(exchange_error)?;
        let Some(fields) = ex.status.last() else {
            return Ok(None);
        };
        let code = result_code_of(fields).unwrap_or(codes::SUCCESS);
        let mut r = result_from(
            key,
            request.request_id,
            request.command.kind(),
            first(fields, |f| match f {
                Bmp::Amount(a) => Some(Amount::new(*a, self.config.currency)),
                _ => None,
            }),
            self.config.currency,
            self.terminal_ref(),
            self.capabilities.terminal_id,
            fields,
            codes::outcome(code),
            &ex.receipts(),
            driver::wall_clock(),
        );
        r.receipts.iter_mut().for_each(|rc| rc.kind = r.kind);
        Ok(Some(r))
    }

    /// Resolves every command of this terminal the journal holds in doubt: the terminal's last
    /// transaction (repeat receipt) is the command's result when its amount matches, it is not
    /// already recorded under another key, and it is not older than the command (within
    /// [`ZvtConfig::clock_tolerance`]); otherwise the command did not complete — nothing was
    /// charged — and it is marked refused with that note. ZVT keeps only the last transaction,
    /// so recovery must run before anything new is sent (as [`execute`] does).
    ///
    /// [`execute`]: PaymentTerminal::execute
    pub async fn recover(&self, deadline: Duration) -> Result<ZvtRecovery, PaymentError> {
        let terminal = self.capabilities.terminal_id;
        let pending: Vec<_> = self
            .journal()
            .unresolved()?
            .into_iter()
            .filter(|e| e.terminal == terminal)
            .collect();
        let mut report = ZvtRecovery::default();
        for entry in pending {
            let key = entry.key();
            match self.resolve(&entry.request, entry.created, deadline).await {
                Ok(TransactionStatus::Done(r)) => {
                    self.journal().record_result(&r, driver::wall_clock())?;
                    report.recorded.push(key);
                }
                Ok(_) => {
                    self.journal().mark_rejected(
                        &key,
                        "recovery: not the terminal's last transaction — it did not complete, nothing was charged",
                        driver::wall_clock(),
                    )?;
                    report.not_charged.push(key);
                }
                Err(e) => {
                    report.unresolved.push((key, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// What became of `request` (journaled at `created`), from the terminal's last transaction.
    async fn resolve(
        &self,
        request: &TransactionRequest,
        created: Timestamp,
        deadline: Duration,
    ) -> Result<TransactionStatus, PaymentError> {
        let key = request.idempotency_key;
        let Some(last) = self.repeat(key, request, deadline).await? else {
            return Ok(TransactionStatus::NotFound);
        };
        let amount_matches = request
            .command
            .amount()
            .is_none_or(|a| a.minor == last.amount.minor);
        let recorded_elsewhere = self
            .journal()
            .query(&Default::default())?
            .into_iter()
            .any(|e| {
                e.key() != key
                    && e.result
                        .as_ref()
                        .is_some_and(|r| r.transaction_id == last.transaction_id)
            });
        let tolerance = self.config.clock_tolerance.as_millis() as u64;
        let recent = last.time.0 + tolerance >= created.0;
        Ok(if amount_matches && !recorded_elsewhere && recent {
            TransactionStatus::Done(Box::new(last))
        } else {
            TransactionStatus::NotFound
        })
    }
}

/// What [`ZvtTerminal::recover`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZvtRecovery {
    /// Commands whose result was the terminal's last transaction: recorded.
    pub recorded: Vec<IdempotencyKey>,
    /// Commands that did not complete on the terminal (nothing charged): marked refused.
    pub not_charged: Vec<IdempotencyKey>,
    /// Commands that could not be resolved now, and why: still in doubt.
    pub unresolved: Vec<(IdempotencyKey, String)>,
}

fn original_unknown(why: &str) -> PaymentError {
    PaymentError::Refused(ErrorMessage {
        request_id: None,
        code: ErrorCode::ORIGINAL_NOT_FOUND,
        detail: Some(format!("ZVT needs the original's receipt number: {why}")),
        retry_after_ms: None,
    })
}

fn exchange_error(e: ExchangeError) -> PaymentError {
    match e {
        ExchangeError::Refused(code) => PaymentError::Refused(ErrorMessage {
            request_id: None,
            code: match codes::outcome(code) {
                Outcome::Failed(c) => c,
                _ => ErrorCode::INTERNAL,
            },
            detail: Some(format!("ZVT 84 {code:02X}")),
            retry_after_ms: None,
        }),
        ExchangeError::Closed => PaymentError::Client(ClientError::Closed(None)),
        other => PaymentError::Protocol(other.to_string()),
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
    let pan = first(fields, |f| match f {
        Bmp::Pan(p) => MaskedPan::parse(p).ok(),
        _ => None,
    });
    let scheme = first(fields, |f| match f {
        Bmp::CardName(n) => Some(n.trim().to_string()),
        _ => None,
    });
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
        transaction_id: zref.id(),
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
    let (header, footer) = fit(lines);
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

/// The receipt's printed lines as a receipt holds them: up to [`RECEIPT_LINES`] lines of up to
/// 64 characters in the header, the rest in the footer (a terminal's receipt is 20 to 40 lines
/// of at most 40 characters; longer ones are cut, and say so in their last line).
fn fit(lines: &[String]) -> (Vec<String>, Vec<String>) {
    let cut = |l: &String| l.chars().take(64).collect::<String>();
    let mut all: Vec<String> = lines.iter().map(cut).collect();
    if all.len() > 2 * RECEIPT_LINES {
        all.truncate(2 * RECEIPT_LINES - 1);
        all.push(format!("[{} more lines]", lines.len() - all.len()));
    }
    let footer = all.split_off(all.len().min(RECEIPT_LINES));
    (all, footer)
}

/// How many printed lines a receipt's header (and again its footer) holds.
pub const RECEIPT_LINES: usize = 32;

impl<J: Journal + Send> PaymentTerminal for ZvtTerminal<J> {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn progress(&self) -> ProgressEvents {
        ProgressEvents::new(self.events.subscribe())
    }

    async fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> Result<TransactionResult, PaymentError> {
        // A key used before: its recorded result, or its refusal, never a second payment.
        if let Some(e) = self.journal().get(&key)? {
            match e.state {
                EntryState::Done => {
                    if let Some(r) = e.result
                        && e.request.command == command
                    {
                        return Ok(r);
                    }
                }
                EntryState::Rejected if e.request.command == command => {
                    return Err(PaymentError::AlreadyRefused(
                        e.note.unwrap_or_else(|| "refused".into()),
                    ));
                }
                _ => {}
            }
        }
        // Whatever is in doubt is resolved first: ZVT keeps only the last transaction.
        let report = self.recover(call.deadline).await?;
        if let Some((k, why)) = report.unresolved.first() {
            return Err(PaymentError::InDoubt(format!(
                "command {k} is still in doubt ({why}); recover before new payments"
            )));
        }
        if let Some(e) = self.journal().get(&key)? {
            if let Some(r) = e.result
                && e.request.command == command
            {
                return Ok(r);
            }
            if e.state == EntryState::Rejected && e.request.command == command {
                return Err(PaymentError::AlreadyRefused(
                    e.note.unwrap_or_else(|| "refused".into()),
                ));
            }
        }
        let request_id = self.next_request();
        let request = TransactionRequest::new(request_id, key, command);
        let zvt = match self.zvt_command(&request.command) {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let now = driver::wall_clock();
        self.journal()
            .record_intent(self.capabilities.terminal_id, &request, None, now)?;
        self.journal().mark_sent(&key, driver::wall_clock())?;
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(request_id);
        let outcome = Self::run_on(&self.connection, &zvt, request_id, call.deadline).await;
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match outcome {
            Ok(ex) => {
                let result = self.result_of(&request, &ex, driver::wall_clock());
                self.journal()
                    .record_result(&result, driver::wall_clock())?;
                Ok(result)
            }
            Err(ExchangeError::Refused(code)) => {
                let why = format!("the terminal refused the command (84 {code:02X})");
                self.journal()
                    .mark_rejected(&key, &why, driver::wall_clock())?;
                Err(exchange_error(ExchangeError::Refused(code)))
            }
            Err(e) => Err(self.in_doubt(&key, &e.to_string())),
        }
    }

    async fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> Result<TransactionStatus, PaymentError> {
        let Some(entry) = self.journal().get(&key)? else {
            return Ok(TransactionStatus::NotFound);
        };
        if let Some(r) = entry.result {
            return Ok(TransactionStatus::Done(Box::new(r)));
        }
        if entry.state == EntryState::Rejected {
            return Ok(TransactionStatus::NotFound);
        }
        if self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return Ok(TransactionStatus::InProgress { stage: entry.stage });
        }
        self.resolve(&entry.request, entry.created, deadline).await
    }

    async fn last_transaction(
        &self,
        deadline: Duration,
    ) -> Result<Option<TransactionResult>, PaymentError> {
        let probe = TransactionRequest::new(
            self.next_request(),
            IdempotencyKey::default(),
            TransactionCommand::Sale {
                amount: Amount::new(0, self.config.currency),
                tip: None,
                cashback: None,
            },
        );
        let Some(mut last) = self
            .repeat(IdempotencyKey::default(), &probe, deadline)
            .await?
        else {
            return Ok(None);
        };
        // Known to the journal: its key and kind.
        let known = self
            .journal()
            .query(&Default::default())?
            .into_iter()
            .find_map(|e| e.result.filter(|r| r.transaction_id == last.transaction_id));
        if let Some(r) = known {
            last.idempotency_key = r.idempotency_key;
            last.kind = r.kind;
            last.amount = r.amount;
        } else {
            // Not this register's: a key made from the transaction id.
            last.idempotency_key = IdempotencyKey::from_bytes(*last.transaction_id.as_bytes());
        }
        Ok(Some(last))
    }

    async fn cancel(&self) -> Result<(), PaymentError> {
        if self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            self.connection
                .aborts
                .send(())
                .await
                .map_err(|_| PaymentError::Client(ClientError::Closed(None)))?;
        }
        Ok(())
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        call: Call,
    ) -> Result<SettlementResult, PaymentError> {
        let ex = self
            .run_command(
                &Command::EndOfDay {
                    password: self.config.password,
                    extra: Vec::new(),
                },
                call.deadline,
            )
            .await
            .map_err(exchange_error)?;
        let fields = ex.status.last().cloned().unwrap_or_default();
        let code = result_code_of(&fields)
            .or(ex.aborted)
            .unwrap_or(codes::SUCCESS);
        let total = first(&fields, |f| match f {
            Bmp::Amount(a) => Some(*a),
            _ => None,
        });
        let now = driver::wall_clock();
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
            header: fit(lines).0,
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
            closed: now,
            totals,
            receipt,
            signature: None,
        })
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> Result<Receipt, PaymentError> {
        // The journal keeps every receipt the terminal printed; the terminal repeats only its
        // last one.
        let recorded = match &target {
            TransactionRef::Key(k) => self.journal().get(k)?.and_then(|e| e.result),
            TransactionRef::Id(id) => self
                .journal()
                .query(&Default::default())?
                .into_iter()
                .find_map(|e| e.result.filter(|r| r.transaction_id == *id)),
            _ => None,
        };
        let result = match recorded {
            Some(r) => Some(r),
            None => self
                .last_transaction(deadline)
                .await?
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
                PaymentError::Refused(ErrorMessage {
                    request_id: None,
                    code: ErrorCode::NOT_FOUND,
                    detail: Some("no such receipt: the terminal repeats only its last one".into()),
                    retry_after_ms: None,
                })
            })
    }
}
