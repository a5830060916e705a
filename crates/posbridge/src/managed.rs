//! Keeping a till connected: reconnection with capped exponential back-off and jitter, recovery
//! of whatever is in doubt before any new command, and a stream of connection states.

use std::fmt;
use std::time::Duration;

use posbridge_api::{
    Adapter, Connect, ConnectStage, Engine, PaymentError, RecoveryPolicy, RecoveryReport,
};
use posbridge_journal::Journal;
use posbridge_link::Connector;
use posbridge_wire::{IdempotencyKey, TransactionCommand, TransactionRequest, TransactionResult};
use tokio::sync::watch;

use crate::{ClientError, ConnectOptions, NativeAdapter, NativeClient};

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

/// Connects to a native terminal over the links `links` opens: the secure handshake (or pairing)
/// with `options`; results verified against `terminal_key`.
pub struct NativeConnect<C> {
    /// Opens the links.
    pub links: C,
    /// How to connect.
    pub options: ConnectOptions,
    /// The paired terminal's signing key, every result must verify against.
    pub terminal_key: Option<posbridge_crypto::PublicKey>,
}

impl<C> fmt::Debug for NativeConnect<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeConnect").finish_non_exhaustive()
    }
}

/// Why a native connection could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum NativeConnectError {
    /// The link could not be opened.
    Link(Box<dyn std::error::Error + Send + Sync>),
    /// Pairing or the secure handshake failed.
    Handshake(ClientError),
}

impl fmt::Display for NativeConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(e) => write!(f, "{e}"),
            Self::Handshake(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NativeConnectError {}

impl<C: Connector> Connect for NativeConnect<C> {
    type Adapter = NativeAdapter;
    type Error = NativeConnectError;

    async fn connect(
        &mut self,
        stage: &mut (dyn FnMut(ConnectStage) + Send),
    ) -> Result<NativeAdapter, NativeConnectError> {
        stage(if self.links.discovers() {
            ConnectStage::Discovering
        } else {
            ConnectStage::Connecting
        });
        let link = self.links.open().await.map_err(NativeConnectError::Link)?;
        stage(ConnectStage::Handshaking);
        let client = NativeClient::connect(link, self.options.clone())
            .await
            .map_err(NativeConnectError::Handshake)?;
        Ok(NativeAdapter::new(client, self.terminal_key))
    }
}

/// The adapter error of a connector's connections.
type AdapterError<C> = <<C as Connect>::Adapter as Adapter>::Error;

// One per till, replaced on (re)connects only: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Conn<A, J> {
    Up(Engine<A, J>),
    Down(J),
    Moving,
}

/// A till that stays connected, whatever its terminal's protocol: every command first makes
/// sure the connection is up (with back-off) and that nothing is in doubt (recovery), then
/// runs through the engine, journaled.
pub struct ManagedPayments<C: Connect, J> {
    connector: C,
    policy: RecoveryPolicy,
    backoff: Backoff,
    max_attempts: u32,
    call_timeout: Duration,
    conn: Conn<C::Adapter, J>,
    state: watch::Sender<ConnectionState>,
    seed: u64,
    needs_recovery: bool,
}

impl<C: Connect, J> fmt::Debug for ManagedPayments<C, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedPayments")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// Why a managed command failed.
#[non_exhaustive]
pub enum ManagedError<C: Connect> {
    /// Every connection attempt failed.
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: C::Error,
    },
    /// Commands are still in doubt after recovery: nothing new is sent until they are resolved.
    StillInDoubt(Box<RecoveryReport>),
    /// The payment itself failed.
    Payment(PaymentError<AdapterError<C>>),
}

impl<C: Connect> fmt::Debug for ManagedError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { attempts, last } => f
                .debug_struct("Unreachable")
                .field("attempts", attempts)
                .field("last", last)
                .finish(),
            Self::StillInDoubt(r) => f.debug_tuple("StillInDoubt").field(r).finish(),
            Self::Payment(e) => f.debug_tuple("Payment").field(e).finish(),
        }
    }
}

impl<C: Connect> fmt::Display for ManagedError<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { attempts, last } => write!(
                f,
                "the terminal is unreachable after {attempts} attempts (last: {last}): check power, cable, network or Bluetooth"
            ),
            Self::StillInDoubt(r) => write!(
                f,
                "earlier commands are still in doubt ({r}); nothing new is sent until they are resolved"
            ),
            Self::Payment(e) => write!(f, "{e}"),
        }
    }
}

impl<C: Connect> std::error::Error for ManagedError<C> {}

impl<C: Connect, J: Journal> ManagedPayments<C, J> {
    /// A till that connects through `connector` and journals in `journal`. Nothing happens until
    /// the first command (or [`connect`](Self::connect)).
    pub fn new(connector: C, journal: J) -> Self {
        let (state, _) = watch::channel(ConnectionState::Disconnected {
            reason: "not connected yet".into(),
        });
        Self {
            connector,
            policy: RecoveryPolicy::default(),
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

    /// Sets the recovery policy of every connection (default: [`RecoveryPolicy::default`]).
    pub fn set_policy(&mut self, policy: RecoveryPolicy) -> &mut Self {
        self.policy = policy;
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
    pub async fn connect(&mut self) -> Result<&Engine<C::Adapter, J>, ManagedError<C>> {
        self.connect_and_recover(true).await
    }

    /// The connection, up; recovered first if `recover` (a command that recovers on its own —
    /// every engine command does — skips it, so that its own key is not taken for an orphan).
    async fn connect_and_recover(
        &mut self,
        recover: bool,
    ) -> Result<&Engine<C::Adapter, J>, ManagedError<C>> {
        let up = matches!(&self.conn, Conn::Up(p) if !p.adapter().is_closed());
        if !up {
            self.reconnect().await?;
        }
        let Conn::Up(engine) = &self.conn else {
            unreachable!("connected above")
        };
        if recover && self.needs_recovery {
            self.set(ConnectionState::Recovering);
            let report = engine
                .recover(self.call_timeout)
                .await
                .map_err(ManagedError::Payment)?;
            if !report.is_clean() {
                self.set(ConnectionState::Disconnected {
                    reason: "commands still in doubt".into(),
                });
                return Err(ManagedError::StillInDoubt(Box::new(report)));
            }
            self.needs_recovery = false;
        }
        self.set(ConnectionState::Ready);
        Ok(engine)
    }

    async fn reconnect(&mut self) -> Result<(), ManagedError<C>> {
        let journal = match std::mem::replace(&mut self.conn, Conn::Moving) {
            Conn::Up(p) => p.into_parts().1,
            Conn::Down(j) => j,
            Conn::Moving => unreachable!("never left moving"),
        };
        self.needs_recovery = true;
        let mut last = None;
        for attempt in 1..=self.max_attempts {
            if let Some(reason) = &last
                && attempt > 1
            {
                let random = self.random();
                let after = self.backoff.delay(attempt - 1, random);
                let reason = format!("{reason}");
                self.set(ConnectionState::Reconnecting {
                    attempt,
                    after,
                    reason,
                });
                tokio::time::sleep(after).await;
            }
            let state = &self.state;
            let mut stage = |s: ConnectStage| {
                let next = match s {
                    ConnectStage::Discovering => ConnectionState::Discovering { attempt },
                    ConnectStage::Handshaking => ConnectionState::Handshaking { attempt },
                    _ => ConnectionState::Connecting { attempt },
                };
                tracing::info!(state = ?next, "connection state");
                state.send_replace(next);
            };
            match self.connector.connect(&mut stage).await {
                Ok(adapter) => {
                    self.conn =
                        Conn::Up(Engine::new(adapter, journal).with_policy(self.policy.clone()));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let last = last.expect("at least one attempt");
        self.set(ConnectionState::Disconnected {
            reason: last.to_string(),
        });
        self.conn = Conn::Down(journal);
        Err(ManagedError::Unreachable {
            attempts: self.max_attempts,
            last,
        })
    }

    /// Runs a money command: connected first, then through the engine, which resolves what is
    /// in doubt before it sends anything new. If the connection breaks, the command is in doubt
    /// (or not sent) and the next call recovers it first — or sends it, if the app asks again
    /// with the same key.
    pub async fn transaction(
        &mut self,
        key: IdempotencyKey,
        command: TransactionCommand,
    ) -> Result<TransactionResult, ManagedError<C>> {
        let timeout = self.call_timeout;
        let engine = self.connect_and_recover(false).await?;
        let result = engine
            .run(
                TransactionRequest::new(Default::default(), key, command),
                timeout,
            )
            .await;
        if let Err(e) = &result
            && (e.is_in_doubt() || matches!(e, PaymentError::NotSent { .. }))
        {
            // Whatever happened, the next connection resolves it first.
            self.needs_recovery = true;
        }
        result.map_err(ManagedError::Payment)
    }

    /// Drops the connection (an app going to the background); the journal stays. The next
    /// command reconnects and recovers.
    pub async fn pause(&mut self) {
        match std::mem::replace(&mut self.conn, Conn::Moving) {
            Conn::Up(p) => self.conn = Conn::Down(p.close().await),
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
