//! nexo Retailer Sale-to-POI (ISO 20022) in the JSON dialect of Adyen's local Terminal API, for
//! posbridge.
//!
//! * [`message`] and [`codec`]: the messages of every category posbridge speaks (payment,
//!   reversal, abort, transaction status, reconciliation, totals, diagnosis, login and logout,
//!   display, input, event notification), decoded strictly where money depends on it and
//!   tolerantly elsewhere, with errors that name the JSON path. Sans-IO.
//! * [`security`]: Adyen's message encryption (`NexoBlob` with a `SecurityTrailer`). Sans-IO.

pub mod amount;
pub mod codec;
pub mod message;
pub mod security;
pub mod time;

pub use amount::{AmountError, Decimal};
pub use codec::{
    DecodeError, DecodeErrorKind, Direction, Envelope, Message, Sealed, decode, encode,
};
#[cfg(feature = "io")]
pub mod client;
#[cfg(feature = "io")]
pub mod server;
#[cfg(feature = "io")]
pub mod transport;

#[cfg(feature = "io")]
pub use client::{Dialect, NexoClient, NexoConfig, NexoError, NexoTerminal};
#[cfg(feature = "io")]
pub use server::{NexoServer, ServerConfig};
#[cfg(feature = "io")]
pub use transport::{Handler, Loopback, Transport, TransportError};
#[cfg(feature = "https")]
pub mod https;
