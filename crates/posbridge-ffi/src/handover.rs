//! Pairing without typing: the `posbridge://` URI a terminal shows as a QR code or writes to an
//! NFC tag (posbridge-handover) carries its id, its addresses and a pairing secret.

use std::sync::Arc;

use posbridge_handover::Handover;

use crate::{PosError, Terminal, connect_link_paired, invalid, on_runtime};

/// What a handover URI says about a terminal.
#[derive(Clone, Debug, uniffi::Record)]
pub struct HandoverInfo {
    /// The terminal's id (32 hex digits).
    pub terminal_id: String,
    /// Its display name.
    pub name: Option<String>,
    /// Its TCP addresses (`host:port`), most preferred first.
    pub tcp: Vec<String>,
    /// Its Bluetooth LE address, as printed (`AA:BB:…`).
    pub ble_address: Option<String>,
    /// It carries a pairing secret (a tag or screen shown for pairing).
    pub can_pair: bool,
}

fn parse(uri: &str) -> Result<Handover, PosError> {
    Handover::from_uri(uri.trim()).map_err(|e| invalid(format!("handover URI: {e}")))
}

fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Reads a handover URI (scanned from a QR code or an NFC tag).
#[uniffi::export]
pub fn read_handover(uri: String) -> Result<HandoverInfo, PosError> {
    let h = parse(&uri)?;
    Ok(HandoverInfo {
        terminal_id: h.terminal_id.iter().map(|b| format!("{b:02x}")).collect(),
        name: h.name.clone(),
        tcp: h.tcp.iter().map(|t| endpoint(&t.host, t.port)).collect(),
        ble_address: h.ble_address.map(|a| {
            a.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
        can_pair: h.pairing_secret.is_some(),
    })
}

/// Pairs with the terminal a handover URI names, over its first TCP address (TLS pinned to its
/// certificate when the URI gives a pin), keeping the pairing and the journal in `data_dir`.
#[uniffi::export]
pub async fn connect_handover(
    uri: String,
    data_dir: String,
    till_name: String,
) -> Result<Arc<Terminal>, PosError> {
    let h = parse(&uri)?;
    let secret = h
        .pairing_secret
        .as_ref()
        .map(|s| *s.expose())
        .ok_or_else(|| {
            invalid("the handover carries no pairing secret: it is not shown for pairing")
        })?;
    let tcp = h
        .tcp
        .first()
        .ok_or_else(|| invalid("the handover names no TCP address"))?;
    let address = endpoint(&tcp.host, tcp.port);
    let mut config = posbridge::tcp::TcpConfig::default();
    if let Some(pin) = h.tls_pin {
        config.set_tls(Some(
            posbridge_tcp::TlsClientConfig::new(
                "posbridge-terminal",
                posbridge_tcp::ServerVerification::Pinned(vec![posbridge_tcp::Fingerprint(pin)]),
                posbridge_tcp::TlsVersions::Tls12AndTls13,
            )
            .map_err(|e| invalid(e.to_string()))?,
        ));
    }
    on_runtime(async move {
        let link = posbridge::tcp::connect(&address, &config)
            .await
            .map_err(|e| PosError::ConnectFailed {
                detail: e.to_string(),
            })?;
        connect_link_paired(
            link,
            data_dir,
            Some(posbridge_crypto::PairingSecret::handover(secret)),
            till_name,
        )
        .await
    })
    .await
}
