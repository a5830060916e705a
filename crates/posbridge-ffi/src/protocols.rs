//! ZVT and nexo terminals through the same [`Terminal`] object as native ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::SqliteJournal;
use posbridge_api::Either;

use crate::{PosError, Terminal, failed, invalid, on_runtime};

fn journal(data_dir: &str) -> Result<SqliteJournal, PosError> {
    let dir = PathBuf::from(data_dir);
    posbridge_crypto::owner_only::create_dir(&dir)
        .map_err(|e| invalid(format!("data_dir: {e}")))?;
    SqliteJournal::open(dir.join("journal.db")).map_err(|e| PosError::Journal {
        detail: e.to_string(),
    })
}

/// Registers with the ZVT terminal at `address` (`host:port`, ZVT's 20007 or 22000) with its
/// `password` (six digits; 0 by default), journaling in `data_dir`. ZVT terminals are not
/// paired.
#[uniffi::export]
pub async fn connect_zvt(
    address: String,
    password: u32,
    data_dir: String,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(async move {
        let journal = journal(&data_dir)?;
        let link = posbridge_tcp::connect(&address, &Default::default())
            .await
            .map_err(|e| PosError::ConnectFailed {
                detail: e.to_string(),
            })?;
        let config = posbridge_zvt::client::ZvtConfig {
            password,
            ..Default::default()
        };
        let terminal = posbridge_zvt::client::connect(
            link,
            posbridge_zvt::transport::Framing::Tcp,
            config,
            journal,
        )
        .await
        .map_err(|e| PosError::ConnectFailed {
            detail: e.to_string(),
        })?;
        Ok(Terminal::over(Either::Right(Either::Left(terminal))))
    })
    .await
}

/// How a till trusts a nexo terminal's HTTPS certificate.
#[derive(Clone, Debug, uniffi::Enum)]
pub enum NexoTrust {
    /// The certificate chains to this root (PEM; Adyen's terminal root) and names
    /// `<POIID>.test.terminal.adyen.com` (or `.live.` with `live`).
    Root {
        /// The root certificate(s), PEM.
        pem: String,
        /// A live terminal.
        live: bool,
    },
    /// The certificate's SHA-256 fingerprint (64 hex digits, colons optional).
    Pinned {
        /// The fingerprint.
        fingerprint: String,
    },
    /// Plain HTTP (test terminals only).
    PlainHttp,
}

/// How to reach a nexo terminal (Adyen's Terminal API).
#[derive(Clone, Debug, uniffi::Record)]
pub struct NexoOptions {
    /// `host:port` (Adyen terminals: 8443).
    pub address: String,
    /// The terminal's POIID (`<model>-<serial>`).
    pub poi_id: String,
    /// This till's SaleID.
    pub sale_id: String,
    /// The shared key's identifier, version and passphrase; `None`: messages in the clear (test
    /// terminals only).
    pub key_identifier: Option<String>,
    /// The shared key's version.
    pub key_version: u32,
    /// The shared key's passphrase. Never journaled or logged.
    pub passphrase: Option<String>,
    /// How to trust its certificate.
    pub trust: NexoTrust,
    /// Where the journal lives.
    pub data_dir: String,
}

/// Connects to the nexo terminal `options` describe (checked with a diagnosis request, which
/// also proves the shared key).
#[uniffi::export]
pub async fn connect_nexo(options: NexoOptions) -> Result<Arc<Terminal>, PosError> {
    use posbridge_nexo::https::{TerminalTrust, pem_certificates, transport_to};
    on_runtime(async move {
        let addr: std::net::SocketAddr = tokio::net::lookup_host(&options.address)
            .await
            .map_err(|e| invalid(format!("{}: {e}", options.address)))?
            .next()
            .ok_or_else(|| invalid(format!("{}: no address", options.address)))?;
        let (trust, live) = match options.trust {
            NexoTrust::Root { pem, live } => (
                TerminalTrust::Roots(pem_certificates(&pem).map_err(invalid)?),
                live,
            ),
            NexoTrust::Pinned { fingerprint } => (
                TerminalTrust::Pinned(vec![
                    fingerprint
                        .parse()
                        .map_err(|e| invalid(format!("fingerprint: {e}")))?,
                ]),
                false,
            ),
            NexoTrust::PlainHttp => (TerminalTrust::PlainHttp, false),
        };
        let key = match (options.key_identifier, options.passphrase) {
            (Some(id), Some(p)) => Some(posbridge_nexo::security::SecurityKey::derive(
                id,
                options.key_version,
                p.as_bytes(),
            )),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "give both the key identifier and the passphrase, or neither",
                ));
            }
        };
        let transport = transport_to(addr, &options.poi_id, live, trust).map_err(failed)?;
        let client = posbridge_nexo::NexoClient::new(
            transport,
            posbridge_nexo::NexoConfig::new(options.sale_id, options.poi_id, key),
        );
        client
            .diagnose(Duration::from_secs(15))
            .await
            .map_err(|e| PosError::ConnectFailed {
                detail: e.to_string(),
            })?;
        let journal = journal(&options.data_dir)?;
        Ok(Terminal::over(Either::Right(Either::Right(
            posbridge_api::Engine::new(client, journal),
        ))))
    })
    .await
}
