//! posbridge's one API over every terminal protocol, and the one engine that keeps every payment
//! safe whatever the protocol.
//!
//! * [`PaymentTerminal`]: what an app does with a terminal — capabilities, sale, refund, void,
//!   pre-authorisation and its capture or release, balance, status, recovery, last transaction,
//!   cancel, settlement, receipts — each call with a deadline ([`Call`]), progress as a stream of
//!   protocol-neutral [`ProgressEvent`]s, errors typed ([`PaymentError`]) with the protocol's own
//!   error kept as their source.
//! * [`Adapter`]: what a protocol supplies — send a command and report its progress and outcome
//!   ([`Answer`]), resolve a journaled command whose answer was lost ([`Resolution`]), cancel,
//!   and the calls that move no money. The native protocol (`posbridge::NativeAdapter`) and ZVT
//!   (`posbridge_zvt::ZvtClient`) are adapters; a new protocol is one more.
//! * [`Engine`]: an adapter with a journal, implementing [`PaymentTerminal`]. It journals the
//!   intent before the first byte, marks it sent, verifies and records results, records
//!   refusals, marks lost answers in doubt, resolves what is in doubt before anything new is sent
//!   under one [`RecoveryPolicy`] (with an optional [`ReversalPolicy`]), and returns journal
//!   failures as errors.
//!
//! This crate sits under the protocol crates: it depends only on `posbridge-wire` for the
//! vocabulary (amounts, kinds, results, receipts, capabilities) and on `posbridge-journal` for
//! the record it writes — neither does IO — and on tokio's channels, not its runtime. It reads
//! the wall clock for the journal's times (replaceable: [`Engine::with_clock`]); deadlines are
//! kept by the adapter, which does the IO.
//!
//! ```
//! # #[cfg(feature = "testing")] mod example {
//! use std::time::Duration;
//! use posbridge_api::{Call, Engine, PaymentTerminal};
//! use posbridge_journal::{EntryState, Journal, MemoryJournal};
//! use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome};
//! use posbridge_api::testing::ScriptedTerminal;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An adapter whose terminal approves everything (any protocol's adapter goes here).
//! let adapter = ScriptedTerminal::approving();
//! let terminal = Engine::new(adapter, MemoryJournal::new());
//! let key = IdempotencyKey::from_u128(1);
//! let result = terminal
//!     .sale(key, Amount::new(1250, Currency::EUR), Call::within(Duration::from_secs(60)))
//!     .await?;
//! assert_eq!(result.outcome, Outcome::Approved);
//! assert_eq!(terminal.journal().get(&key)?.unwrap().state, EntryState::Done);
//! # Ok(()) } }
//! # #[cfg(feature = "testing")] fn main() { example::main().unwrap() }
//! # #[cfg(not(feature = "testing"))] fn main() {}
//! ```

mod adapter;
mod connect;
mod either;
mod engine;
mod error;
mod fault;
pub mod money;
#[cfg(feature = "mutations")]
pub mod mutations;
#[cfg(not(feature = "mutations"))]
mod mutations;
mod progress;
mod recovery;
mod terminal;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use adapter::{Adapter, Answer, CallError, Exchange, Records, Resolution};
pub use connect::{Connect, ConnectStage};
pub use either::{Either, EitherError};
pub use engine::{Engine, wall_clock};
pub use error::{DoubtReason, InDoubt, PaymentError, Refusal};
pub use fault::{FaultPoint, UnknownFaultPoint};
pub use money::plain_receipt;
pub use progress::{
    Events, ProgressEvent, ProgressEvents, TelemetryChanged, TelemetryEvents, forward_while,
};
pub use recovery::{
    RecoveryPolicy, RecoveryReport, ReversalPolicy, Step, Unresolved, decide, older_than,
    reversal_key, reversal_of,
};
pub use terminal::{Call, Cart, CustomerPrompt, PaymentTerminal};
