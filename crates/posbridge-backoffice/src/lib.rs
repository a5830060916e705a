//! A chain's back office: every till's journal in one PostgreSQL.
//!
//! Tills ship their journal's outbox (`posbridge-sync`'s uploader) to this service; it checks
//! each upload's signature against the till's registered key, each result's and settlement's
//! terminal signature, and writes every change once — keyed by (till, journal, sequence number),
//! so that a resend after any crash is recognised and ignored. A damaged or forged record is
//! kept in quarantine, never dropped. The service holds no state of its own: run as many
//! instances as the load needs against one database.
//!
//! * [`schema::migrate`] brings a database to this build's schema (under an advisory lock).
//! * [`add_store`] makes a store and its token; the store registers its tills
//!   ([`register_till`], or `POST /v1/tills` with the token) and can register only its own.
//! * [`reports`]: chain reconciliation — journal totals per store, till, terminal, day,
//!   currency and kind; every settlement against the journals; payments in doubt too long;
//!   transaction ids booked twice; tills that stopped uploading — for the whole chain (an
//!   administrator's token, [`add_admin`]) or one store (its own token).
//! * Web pages for people (`/`, `/stores/<id>`, `/tills/<hex>`; HTTP Basic, the token as the
//!   password): the chain's day per store with mismatches highlighted and sales per hour as
//!   an inline SVG chart, a store's tills and settlements, a till's payments.
//! * [`server::serve`] runs the HTTP(S) service (`POST /v1/upload`, `POST /v1/tills`,
//!   `GET /v1/reports/<name>`, `GET /healthz`).

mod db;
mod ingest;
mod pages;
pub mod reports;
pub mod schema;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;

pub use db::{Conn, Db};
pub use ingest::{add_admin, add_store, register_till};
pub use reports::{Report, Scope};

/// What went wrong.
#[derive(Debug)]
pub enum BackofficeError {
    /// The request cannot be used: fix it.
    BadRequest(String),
    /// Not authenticated: a wrong token or signature.
    Unauthorized(String),
    /// Authenticated, but not allowed (another store's till, a till not registered).
    Forbidden(String),
    /// It exists already, differently.
    Conflict(String),
    /// The configuration cannot be used.
    Config(String),
    /// The database's schema is newer than this build.
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// This build's.
        supported: i64,
    },
    /// PostgreSQL failed (unreachable, failing over, a constraint).
    Database(tokio_postgres::Error),
}

impl fmt::Display for BackofficeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(e) => write!(f, "bad request: {e}"),
            Self::Unauthorized(e) => write!(f, "not authenticated: {e}"),
            Self::Forbidden(e) => write!(f, "not allowed: {e}"),
            Self::Conflict(e) => write!(f, "conflict: {e}"),
            Self::Config(e) => write!(f, "configuration: {e}"),
            Self::SchemaTooNew { found, supported } => write!(
                f,
                "the database's schema version {found} is newer than this build reads ({supported})"
            ),
            Self::Database(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for BackofficeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for BackofficeError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e)
    }
}
