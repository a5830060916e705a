//! Keeping a till connected: reconnection with capped exponential back-off and jitter, recovery
//! of whatever is in doubt before any new command, and a stream of connection states.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use posbridge_journal::Journal;
use posbridge_link::Link;
use posbridge_wire::{IdempotencyKey, TransactionCommand, TransactionRequest, TransactionResult};
use tokio::sync::watch;

use crate::{ClientError, ConnectOptions, NativeClient, PaymentError, Payments, RecoveryReport};

/// How long to wait between connection attempts: `initial`, doubling per failed attempt up to
/// `max`, each wait shortened by a random share of up to `jitter` so that many tills do not
/// reconnect in step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait (default 250 ms).
    pub initial: Duration,
    /// The longest wait (default 30 s).
    pub max: Duration,
    /// The share (0 to 1) by which a wait may be shortened at random (default 0.2).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1 = the first retry), with `random` uniform in 0..1.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        let full = self.initial.saturating_mul(factor).min(self.max);
        let cut = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        full.mul_f64(1.0 - cut)
    }
}

/// Where the connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Looking for the terminal (a BLE scan, LAN discovery) before opening the link, for
    /// connectors that do ([`Connector::discovers`]).
    Discovering {
        /// The attempt.
        attempt: u32,
    },
    /// Opening the link (attempt number, from 1).
    Connecting {
        /// The attempt.
        attempt: u32,
    },
    /// The link is open; pairing or the secure handshake runs.
    Handshaking {
        /// The attempt.
        attempt: u32,
    },
    /// Connected; resolving commands in doubt before anything new goes out.
    Recovering,
    /// Ready for commands.
    Ready,
    /// The last attempt failed; the next one starts after `after`.
    Reconnecting {
        /// The next attempt.
        attempt: u32,
        /// The wait before it.
        after: Duration,
        /// Why the last one failed.
        reason: String,
    },
    /// The connection is down and nothing is being done about it (the app paused it, or gave
    /// up after its attempts).
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// Opens links to the terminal: the app's transport (TCP, serial, BLE...).
pub trait Connector {
    /// The link.
    type Link: Link + 'static;
    /// Opens one.
    fn open(
        &mut self,
    ) -> impl Future<Output = Result<Self::Link, Box<dyn std::error::Error + Send + Sync>>> + Send;

    /// Whether [`open`](Self::open) looks for the terminal first (a BLE scan, mDNS): the state
    /// stream then says [`ConnectionState::Discovering`] while it runs.
    fn discovers(&self) -> bool {
        false
    }
}

impl<F, Fut, L> Connector for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<L, Box<dyn std::error::Error + Send + Sync>>> + Send,
    L: Link + 'static,
{
    type Link = L;
    fn open(
        &mut self,
    ) -> impl Future<Output = Result<L, Box<dyn std::error::Error + Send + Sync>>> + Send {
        self()
    }
}

// One per till, replaced on (re)connects only: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Conn<J: Journal> {
    Up(Payments<J>),
    Down(J),
    Moving,
}

/// A till that stays connected: every command first makes sure the connection is up (with
/// back-off) and that nothing is in doubt (recovery), then runs journaled.
pub struct ManagedPayments<C: Connector, J: Journal> {
    connector: C,
    options: ConnectOptions,
    terminal_key: Option<posbridge_crypto::PublicKey>,
    backoff: Backoff,
    max_attempts: u32,
    call_timeout: Duration,
    conn: Conn<J>,
    state: watch::Sender<ConnectionState>,
    seed: u64,
    needs_recovery: bool,
}

impl<C: Connector, J: Journal> fmt::Debug for ManagedPayments<C, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedPayments")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// Why a managed command failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagedError {
    /// Every connection attempt failed.
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Commands are still in doubt after recovery: nothing new is sent until they are resolved.
    StillInDoubt(RecoveryReport),
    /// The payment itself failed.
    Payment(PaymentError),
}

impl fmt::Display for ManagedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { attempts, last } => write!(
                f,
                "the terminal is unreachable after {attempts} attempts (last: {last}): check power, cable, network or Bluetooth"
            ),
            Self::StillInDoubt(r) => write!(
                f,
                "earlier commands are still in doubt ({r:?}); nothing new is sent until they are resolved"
            ),
            Self::Payment(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ManagedError {}

impl<C: Connector, J: Journal> ManagedPayments<C, J> {
    /// A till that connects through `connector` with `options`, journals in `journal`, and
    /// checks results against `terminal_key`. Nothing happens until the first command (or
    /// [`connect`](Self::connect)).
    pub fn new(
        connector: C,
        options: ConnectOptions,
        journal: J,
        terminal_key: Option<posbridge_crypto::PublicKey>,
    ) -> Self {
        let (state, _) = watch::channel(ConnectionState::Disconnected {
            reason: "not connected yet".into(),
        });
        Self {
            connector,
            options,
            terminal_key,
            backoff: Backoff::default(),
            max_attempts: 10,
            call_timeout: Duration::from_secs(120),
            conn: Conn::Down(journal),
            state,
            seed: 0x5EED,
            needs_recovery: true,
        }
    }

    /// Sets the back-off and how many attempts a command makes before giving up (default 10).
    pub fn set_backoff(&mut self, backoff: Backoff, max_attempts: u32) -> &mut Self {
        self.backoff = backoff;
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// The connection's states as they change.
    pub fn states(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    fn set(&self, state: ConnectionState) {
        tracing::info!(state = ?state, "connection state");
        self.state.send_replace(state);
    }

    fn random(&mut self) -> f64 {
        // SplitMix64: jitter needs spread, not secrecy.
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Makes sure the connection is up and nothing is in doubt.
    pub async fn connect(&mut self) -> Result<&Payments<J>, ManagedError> {
        if let Conn::Up(p) = &self.conn
            && !p.client().is_closed()
        {
            if self.needs_recovery {
                self.set(ConnectionState::Recovering);
                let report = p
                    .recover(self.call_timeout)
                    .await
                    .map_err(ManagedError::Payment)?;
                if !report.running.is_empty() || !report.unresolved.is_empty() {
                    return Err(ManagedError::StillInDoubt(report));
                }
                self.needs_recovery = false;
                self.set(ConnectionState::Ready);
            }
            return match &self.conn {
                Conn::Up(p) => Ok(p),
                _ => unreachable!("checked above"),
            };
        }
        let journal = match std::mem::replace(&mut self.conn, Conn::Moving) {
            Conn::Up(p) => p.into_parts().1,
            Conn::Down(j) => j,
            Conn::Moving => unreachable!("never left moving"),
        };
        let mut last = String::new();
        let mut journal = Some(journal);
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                let random = self.random();
                let after = self.backoff.delay(attempt - 1, random);
                self.set(ConnectionState::Reconnecting {
                    attempt,
                    after,
                    reason: last.clone(),
                });
                tokio::time::sleep(after).await;
            }
            self.set(if self.connector.discovers() {
                ConnectionState::Discovering { attempt }
            } else {
                ConnectionState::Connecting { attempt }
            });
            let link = match self.connector.open().await {
                Ok(l) => l,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            self.set(ConnectionState::Handshaking { attempt });
            let client = match NativeClient::connect(link, self.options.clone()).await {
                Ok(c) => c,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            self.set(ConnectionState::Recovering);
            let payments = Payments::new(
                client,
                journal.take().expect("kept until used"),
                self.terminal_key,
            );
            match payments.recover(self.call_timeout).await {
                Ok(report) if report.running.is_empty() && report.unresolved.is_empty() => {
                    self.needs_recovery = false;
                    self.set(ConnectionState::Ready);
                    self.conn = Conn::Up(payments);
                    return match &self.conn {
                        Conn::Up(p) => Ok(p),
                        _ => unreachable!("just set"),
                    };
                }
                Ok(report) => {
                    self.set(ConnectionState::Disconnected {
                        reason: "commands still in doubt".into(),
                    });
                    self.conn = Conn::Up(payments);
                    return Err(ManagedError::StillInDoubt(report));
                }
                Err(e) => {
                    last = e.to_string();
                    journal = Some(payments.into_parts().1);
                }
            }
        }
        self.set(ConnectionState::Disconnected {
            reason: last.clone(),
        });
        self.conn = Conn::Down(journal.expect("returned on every failed attempt"));
        Err(ManagedError::Unreachable {
            attempts: self.max_attempts,
            last,
        })
    }

    /// Runs a money command: connected and recovered first, then journaled and verified. If the
    /// connection breaks, the command is in doubt and the next call recovers it first.
    pub async fn transaction(
        &mut self,
        key: IdempotencyKey,
        command: TransactionCommand,
    ) -> Result<TransactionResult, ManagedError> {
        let timeout = self.call_timeout;
        let payments = self.connect().await?;
        let result = payments
            .run(
                TransactionRequest::new(Default::default(), key, command),
                timeout,
            )
            .await;
        if let Err(PaymentError::InDoubt(_) | PaymentError::Client(ClientError::Closed(_))) =
            &result
        {
            // Whatever happened, the next command resolves this one first.
            self.needs_recovery = true;
        }
        result.map_err(ManagedError::Payment)
    }

    /// Drops the connection (an app going to the background); the journal stays. The next
    /// command reconnects and recovers.
    pub async fn pause(&mut self) {
        match std::mem::replace(&mut self.conn, Conn::Moving) {
            Conn::Up(p) => {
                let (client, journal) = p.into_parts();
                client.close().await;
                self.conn = Conn::Down(journal);
            }
            other => self.conn = other,
        }
        self.needs_recovery = true;
        self.set(ConnectionState::Disconnected {
            reason: "paused".into(),
        });
    }

    /// The journal (do not hold the guard across an `.await`).
    pub fn with_journal<R>(&self, f: impl FnOnce(&J) -> R) -> R {
        match &self.conn {
            Conn::Up(p) => f(&p.journal()),
            Conn::Down(j) => f(j),
            Conn::Moving => unreachable!("never left moving"),
        }
    }
}
