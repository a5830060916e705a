//! posbridge: connect an app to a card-payment terminal and run payments without losing one or
//! taking one twice.
//!
//! This crate is what apps depend on. Today it holds:
//!
//! * [`NativeClient`]: the native protocol's client under tokio. It runs a
//!   `posbridge_session::ClientSession` over any `posbridge_link::Link` (TCP, TLS, serial, BLE,
//!   USB, in memory) in a background task: pairing or the secure handshake on connect, heartbeats
//!   and retransmissions while idle, and calls that send a request and wait for its answer.
//! * [`Payments`]: the native protocol behind the one engine ([`Engine`] over a
//!   [`NativeAdapter`], with a journal from [`journal`]): every money command is written as an
//!   intent before it is sent, its signed result verified against the paired terminal's key and
//!   recorded; [`Engine::recover`] resolves whatever is in doubt after a crash, a disconnect or a
//!   timeout — by status query, recording what the terminal did and, under the one
//!   [`RecoveryPolicy`], recording as not taken what it never saw (sent again only when the app
//!   asks with the same key, or within a window it sets).
//! * [`ManagedPayments`]: a till that stays connected, whatever its terminal's protocol
//!   ([`Connect`]: [`NativeConnect`], or the ZVT adapter's) — reconnection with capped
//!   exponential back-off and jitter ([`Backoff`]), recovery before any new command after every
//!   reconnect, a [`ConnectionState`] stream, and `pause` for apps going to the background.
//! * Observability through `tracing`: a `connection` span per connection and a `transaction`
//!   span per money command (idempotency key, kind, amount, currency), events for each step and
//!   state change — never card numbers, PINs or keys (tested).
//! * [`reconcile`]: a settlement's totals against the journal, listing every difference
//!   (totals per kind and currency, results or a report whose signature fails, commands still
//!   in doubt).
//! * [`driver`]: the loop that runs a sans-IO session over a link, for both roles —
//!   [`driver::serve_terminal`] serves one connection on a terminal's side with a
//!   `TerminalApp` (the simulator, or a real terminal's logic) behind it.
//!
//! * Transports, re-exported by cargo feature: `tcp` (default; TCP, mDNS discovery, and TLS
//!   with feature `tls`), `serial` (RS-232, USB CDC-ACM), `ble` (Bluetooth LE through btleplug)
//!   and `usb` (raw bulk endpoints through nusb). Any other `Link` works too. [`discover`] lists
//!   every terminal in reach over all of them at once (mDNS, serial ports, USB, BLE scan).
//!
//! * [`PaymentTerminal`]: one API over every terminal protocol (from `posbridge-api`, re-exported
//!   here) — capabilities, sale, refund, void, pre-authorisation, incremental authorisation,
//!   capture, release, balance inquiry, status, recovery, last transaction, cancel, settlement,
//!   receipt — each with a deadline ([`Call`]), progress as a `Stream` of neutral
//!   [`ProgressEvent`]s, errors typed ([`PaymentError`]). [`Engine`] implements it over any
//!   [`Adapter`]: [`NativeAdapter`] here, the ZVT adapter with feature `zvt` (`posbridge::zvt`),
//!   the nexo adapter with feature `nexo` (`posbridge::nexo`).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use posbridge::{ConnectOptions, NativeClient, driver};
//! use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId};
//! use posbridge_link::{Delivery, memory_pair};
//! use posbridge_session::harness::hello;
//! use posbridge_session::*;
//! use posbridge_sim::{Simulator, TerminalProfile};
//! use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated terminal in pairing mode, on one end of an in-memory link.
//! let profile = TerminalProfile::default();
//! let terminal_id = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim")?);
//! let mut sim = Simulator::new(profile, terminal_id, driver::now(), Timestamp(1_764_000_000_000));
//! let context = sim.context(PairingRegistry::new(), 1000);
//! let code = context.registry.lock().unwrap().open_window(PairingConfig::default(), driver::now())?.to_string();
//! let (ours, theirs) = memory_pair(Delivery::Stream, 4096, 64);
//! let session = TerminalSession::new(SessionConfig::default(), context, driver::now());
//! tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
//!
//! // The app pairs with the code on the terminal's screen, then sells.
//! let options = ConnectOptions {
//!     session: SessionConfig::default(),
//!     identity: Arc::new(LocalIdentity::generate(PeerId::random()?, "Till 1")?),
//!     security: ClientSecurity::Pair(PairingSecret::code(&code)?),
//!     hello: hello(),
//!     timeout: Duration::from_secs(30),
//! };
//! let terminal = NativeClient::connect(ours, options).await?;
//! assert!(terminal.paired().is_some());
//! let sale = terminal
//!     .sale(IdempotencyKey::from_u128(1), Amount::new(1250, Currency::EUR), Duration::from_secs(90))
//!     .await?;
//! assert_eq!(sale.outcome, Outcome::Approved);
//! terminal.close().await;
//! # Ok(()) }
//! ```

mod client;
mod discover;
pub mod driver;
mod managed;
mod native;
mod reconcile;

pub use client::{ClientError, ConnectOptions, NativeClient, PendingRequest};
pub use discover::{DiscoverOptions, Discovered, DiscoveryProblem, discover};
pub use managed::{
    Backoff, ConnectionState, ManagedError, ManagedPayments, NativeConnect, NativeConnectError,
};
pub use native::{NativeAdapter, Payments};
pub use posbridge_api::money;
pub use posbridge_api::{
    Adapter, Answer, Call, CallError, Cart, Connect, ConnectStage, CustomerPrompt, DoubtReason,
    Either, EitherError, Engine, Events, Exchange, InDoubt, PaymentError, PaymentTerminal,
    ProgressEvent, ProgressEvents, Records, RecoveryPolicy, RecoveryReport, Refusal, Resolution,
    ReversalPolicy, TelemetryChanged, TelemetryEvents, Unresolved, reversal_key,
};
pub use posbridge_journal as journal;
pub use posbridge_link::Connector;
pub use reconcile::{Difference, Reconciliation, in_batch, net_total, reconcile};

/// Bluetooth LE links (feature `ble`): `posbridge-ble` with its btleplug central.
#[cfg(feature = "ble")]
pub use posbridge_ble as ble;
/// Serial links (feature `serial`): `posbridge-serial`.
#[cfg(feature = "serial")]
pub use posbridge_serial as serial;
/// TCP and TLS links and mDNS discovery (feature `tcp`, TLS with `tls`): `posbridge-tcp`.
#[cfg(feature = "tcp")]
pub use posbridge_tcp as tcp;
/// Raw USB bulk links (feature `usb`): `posbridge-usb` with its nusb backend.
#[cfg(feature = "usb")]
pub use posbridge_usb as usb;
/// ZVT terminals (feature `zvt`): `posbridge-zvt` — `zvt::client::ZvtTerminal` is the engine
/// over the ZVT adapter.
#[cfg(feature = "zvt")]
pub use posbridge_zvt as zvt;

/// nexo terminals, Adyen's Terminal API among them (feature `nexo`, with HTTPS):
/// `posbridge-nexo` — `nexo::NexoTerminal` is the engine over the nexo adapter.
#[cfg(feature = "nexo")]
pub use posbridge_nexo as nexo;
/// Uploading the journal to a back office: the outbox's uploader (feature `sync`).
#[cfg(feature = "sync")]
pub use posbridge_sync as sync;
