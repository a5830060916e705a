//! posbridge's terminal simulator: how every user, test and benchmark runs without hardware.
//!
//! [`Simulator`] is the payment logic of a terminal — it implements
//! [`posbridge_session::TerminalApp`], so it sits behind the native protocol's terminal role
//! exactly where a real terminal's firmware would. It presents test cards chosen by the amount's
//! last two digits ([`CardBehaviour::for_amount`], table in docs/simulator.md): approvals,
//! declines for every common reason, PIN entry right and wrong, a card pulled out, no card at
//! all, partial approval and offline approval under the floor limit; it takes the time a person
//! and an issuer take ([`Latency`]), reports each stage, honours cancels until the issuer is
//! asked, signs every result, keeps the batch with totals per kind and currency, settles it,
//! handles voids, refunds, pre-authorisations with increments, captures and releases, and prints
//! merchant and customer receipts ([`render`]). [`FileResultStore`] keeps a terminal's memory of
//! idempotency keys and results in a file, so a restarted terminal never charges a repeated key
//! again.
//!
//! [`Fault`]s strike payments at named steps ([`FaultPoint`]: after the request, after the card
//! read, before or after the result) with a [`FaultAction`] (drop the connection, go silent,
//! reboot); [`Simulator::with_batch_log`] keeps the batch across restarts; [`Scenario`] reads a
//! profile, cards and faults from TOML.
//!
//! The `posbridge-sim` binary (feature `cli`, on by default) serves the simulator over TCP or TLS
//! to any number of tills at once, or over a serial port or a pseudo-terminal; see
//! docs/simulator.md.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use posbridge_crypto::{LocalIdentity, PeerId};
//! use posbridge_session::harness::{Pair, hello};
//! use posbridge_session::*;
//! use posbridge_sim::{Latency, Simulator, TerminalProfile};
//! use posbridge_wire::*;
//!
//! # let client_id = Arc::new(LocalIdentity::generate(PeerId([2; 16]), "till")?);
//! let mut profile = TerminalProfile::default();
//! profile.latency = Latency::INSTANT;
//! let terminal_id = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "sim")?);
//! # let mut registry = PairingRegistry::new();
//! # registry.add(posbridge_crypto::PairingRecord {
//! #     peer: client_id.public_keys(), peer_role: posbridge_crypto::Role::Client, paired_at: Timestamp(0) });
//! let start = Instant::now();
//! let sim = Simulator::new(profile, terminal_id.clone(), start, Timestamp(1_764_000_000_000));
//! // Its keys, capabilities and telemetry board, for its sessions.
//! let context = sim.context(registry, 1000);
//! # let security = ClientSecurity::Paired { terminal_key: terminal_id.channel().public() };
//! let client = ClientSession::new(SessionConfig::default(), client_id, security, hello(), start);
//! let terminal = TerminalSession::new(SessionConfig::default(), context, start);
//! let mut pair = Pair::new(client, terminal, start, 1);
//! pair.set_app(sim);
//! pair.drive();
//!
//! let sale = TransactionRequest::new(RequestId::default(), IdempotencyKey::from_u128(1),
//!     TransactionCommand::Sale { amount: Amount::new(1251, Currency::EUR), tip: None, cashback: None });
//! let now = pair.now;
//! pair.client.request(Message::Transaction(sale), now + std::time::Duration::from_secs(60), now)?;
//! pair.drive();
//! // 12.51: the test card for "insufficient funds".
//! assert!(pair.client_events().iter().any(|e| matches!(e,
//!     ClientEvent::Response { message: Message::TransactionResult(r), .. }
//!         if r.outcome == Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "backend")]
pub mod backend;
mod batchlog;
mod cards;
mod customer;
mod device;
#[cfg(feature = "embedded")]
pub mod embedded;
mod faults;
#[cfg(feature = "nexo")]
pub mod nexo;
mod profile;
mod receipt;
mod scenario;
mod sim;
mod store;
#[cfg(feature = "zvt")]
pub mod zvt;

pub use cards::{CardBehaviour, TestCard};
pub use customer::{CustomerProfile, TipChoice};
pub use device::DeviceProfile;
pub use faults::{Fault, FaultAction, FaultParseError, FaultPoint};
pub use profile::{Latency, TerminalProfile};
pub use receipt::{money, receipt, render};
pub use scenario::{
    LinkFaults, Scenario, ScenarioError, parse_card, parse_currency, parse_method, parse_power,
    parse_tip,
};
pub use sim::{FaultHandler, Simulator};
pub use store::FileResultStore;
