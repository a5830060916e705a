//! nexo's local transport: one HTTP `POST` per message to `https://<terminal>:8443/nexo`, for
//! both roles, over posbridge-tcp's HTTP (hyper 1 over rustls: a configured root or pinned
//! certificate fingerprints). Plain HTTP only when asked for explicitly (test terminals).
//!
//! The client keeps idle connections for reuse and opens another when one is busy (an abort
//! goes out while the payment it aborts still waits for its answer).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use posbridge_tcp::http::{HttpClient, HttpError, HttpResponse, Method};
use posbridge_tcp::{TlsClientConfig, TlsServerConfig};
use tokio::net::TcpListener;

use crate::transport::{Handler, Transport, TransportError};

/// The largest message either side reads (a payment with receipts is a few kilobytes).
pub const MAX_BODY: usize = 1 << 20;

/// The certificate name of an Adyen terminal: `<POIID>.<environment>.terminal.adyen.com`
/// (`V400m-346403161.test.terminal.adyen.com`), which is what its certificate names whatever
/// address it is reached at.
pub fn adyen_certificate_name(poi_id: &str, live: bool) -> String {
    format!(
        "{poi_id}.{}.terminal.adyen.com",
        if live { "live" } else { "test" }
    )
}

/// The client side: HTTPS (or plain HTTP) to one terminal.
pub struct HttpsTransport {
    client: HttpClient,
    path: String,
}

impl fmt::Debug for HttpsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsTransport")
            .field("addr", &self.client.addr())
            .field("path", &self.path)
            .field("tls", &self.client.is_tls())
            .finish_non_exhaustive()
    }
}

impl HttpsTransport {
    /// HTTPS to the terminal at `addr` (port 8443 on Adyen terminals), verified by `tls`.
    pub fn https(addr: SocketAddr, tls: TlsClientConfig) -> Self {
        Self::new(addr, Some(tls))
    }

    /// Plain HTTP to `addr`: messages travel unprotected by TLS (use a shared key), for test
    /// terminals only.
    pub fn plain_http(addr: SocketAddr) -> Self {
        Self::new(addr, None)
    }

    fn new(addr: SocketAddr, tls: Option<TlsClientConfig>) -> Self {
        Self {
            client: HttpClient::new(addr, tls),
            path: "/nexo".into(),
        }
    }

    /// Posts to `path` instead of `/nexo`.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }
}

fn transport_error(e: HttpError) -> TransportError {
    match e {
        HttpError::Connect(e) => TransportError::Connect(e),
        HttpError::Lost(e) => TransportError::Lost(e),
    }
}

impl Transport for HttpsTransport {
    async fn ready(&self, deadline: Duration) -> Result<(), TransportError> {
        tokio::time::timeout(deadline, self.client.ready())
            .await
            .map_err(|_| TransportError::Connect("no connection within the deadline".into()))?
            .map_err(transport_error)
    }

    async fn exchange(&self, body: Vec<u8>, deadline: Duration) -> Result<Vec<u8>, TransportError> {
        let (status, bytes) =
            tokio::time::timeout(deadline, self.client.post(&self.path, &[], body, MAX_BODY))
                .await
                .map_err(|_| TransportError::Timeout)?
                .map_err(transport_error)?;
        let text = || {
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        };
        match status {
            200..=299 => Ok(bytes),
            400..=499 => Err(TransportError::Rejected {
                status,
                text: text(),
            }),
            _ => Err(TransportError::Lost(format!("HTTP {status}: {}", text()))),
        }
    }
}

/// Serves nexo over HTTPS (or plain HTTP without `tls`) on `listener`: every `POST` body goes
/// to `handler`, whose answer (or status and text) goes back. Runs until the listener fails.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<TlsServerConfig>,
    handler: Arc<H>,
) -> std::io::Result<()> {
    posbridge_tcp::http::serve(listener, tls, MAX_BODY, move |request| {
        let handler = handler.clone();
        async move {
            if request.method != Method::POST {
                return HttpResponse::text(405, "nexo takes POST");
            }
            match handler.handle(request.body).await {
                Ok(answer) => HttpResponse::json(200, answer),
                Err((status, text)) => HttpResponse::text(status, text),
            }
        }
    })
    .await
}

/// The certificates (DER) of PEM text: each `-----BEGIN CERTIFICATE-----` block.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut inside, line) {
            (None, "-----BEGIN CERTIFICATE-----") => inside = Some(String::new()),
            (Some(body), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|e| format!("a certificate is not valid base64: {e}"))?;
                out.push(der);
                inside = None;
            }
            (Some(body), l) => body.push_str(l),
            (None, _) => {}
        }
    }
    if inside.is_some() {
        return Err("a certificate has no END line".into());
    }
    if out.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into());
    }
    Ok(out)
}

/// How a till checks the terminal it reaches over HTTPS.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TerminalTrust {
    /// The certificate chains to one of these roots (DER) and names
    /// `<POIID>.(test|live).terminal.adyen.com` (Adyen: its terminal root certificate).
    Roots(Vec<Vec<u8>>),
    /// The certificate's SHA-256 fingerprint is one of these (chain and name unchecked).
    Pinned(Vec<posbridge_tcp::Fingerprint>),
    /// No TLS: plain HTTP (test terminals only).
    PlainHttp,
}

/// The transport to the terminal `poi_id` at `addr`, trusted as `trust` says; `live` picks the
/// live certificate name over the test one.
pub fn transport_to(
    addr: SocketAddr,
    poi_id: &str,
    live: bool,
    trust: TerminalTrust,
) -> Result<HttpsTransport, posbridge_tcp::TcpError> {
    use posbridge_tcp::{ServerVerification, TlsVersions};
    let verification = match trust {
        TerminalTrust::PlainHttp => return Ok(HttpsTransport::plain_http(addr)),
        TerminalTrust::Roots(r) => ServerVerification::Roots(r),
        TerminalTrust::Pinned(p) => ServerVerification::Pinned(p),
    };
    let tls = TlsClientConfig::new(
        &adyen_certificate_name(poi_id, live),
        verification,
        TlsVersions::Tls12AndTls13,
    )?;
    Ok(HttpsTransport::https(addr, tls))
}
