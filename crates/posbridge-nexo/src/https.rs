//! nexo's local transport: one HTTP `POST` per message to `https://<terminal>:8443/nexo`, for
//! both roles, with hyper 1 over rustls (posbridge-tcp's TLS: a configured root or pinned
//! certificate fingerprints). Plain HTTP only when asked for explicitly (test terminals).
//!
//! The client keeps idle connections for reuse and opens another when one is busy (an abort
//! goes out while the payment it aborts still waits for its answer).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use posbridge_tcp::{TlsClientConfig, TlsServerConfig};
use tokio::net::{TcpListener, TcpStream};

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
    addr: SocketAddr,
    authority: String,
    path: String,
    tls: Option<TlsClientConfig>,
    connect_timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl fmt::Debug for HttpsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsTransport")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
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
            addr,
            authority: addr.to_string(),
            path: "/nexo".into(),
            tls,
            connect_timeout: Duration::from_secs(5),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Posts to `path` instead of `/nexo`.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 4 {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let connect = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| TransportError::Connect(format!("{}: {e}", self.addr)))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                Some(tls) => {
                    let stream = tls.handshake(tcp).await.map_err(|e| {
                        TransportError::Connect(format!("TLS with {}: {e}", self.addr))
                    })?;
                    handshake(TokioIo::new(stream)).await
                }
                None => handshake(TokioIo::new(tcp)).await,
            }
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                TransportError::Connect(format!(
                    "{}: no connection within {:?}",
                    self.addr, self.connect_timeout
                ))
            })?
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, TransportError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| TransportError::Connect(format!("HTTP: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

impl Transport for HttpsTransport {
    async fn ready(&self, deadline: Duration) -> Result<(), TransportError> {
        if let Some(sender) = self.take_idle() {
            self.put_idle(sender);
            return Ok(());
        }
        let sender = tokio::time::timeout(deadline, self.connect())
            .await
            .map_err(|_| TransportError::Connect("no connection within the deadline".into()))??;
        self.put_idle(sender);
        Ok(())
    }

    async fn exchange(&self, body: Vec<u8>, deadline: Duration) -> Result<Vec<u8>, TransportError> {
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Connect(format!("request: {e}")))?;
        let exchange = async {
            let response = match sender.try_send_request(request).await {
                Ok(r) => r,
                Err(mut e) => match e.take_message() {
                    // Never written (a reused connection the terminal had closed): once more on
                    // a new connection. Failing to connect then is certain: nothing left.
                    Some(request) => {
                        sender = self.connect().await?;
                        sender
                            .send_request(request)
                            .await
                            .map_err(|e| TransportError::Lost(e.to_string()))?
                    }
                    None => return Err(TransportError::Lost(e.into_error().to_string())),
                },
            };
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| TransportError::Lost(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, TransportError>((status, bytes, sender))
        };
        let (status, bytes, sender) = tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| TransportError::Timeout)??;
        self.put_idle(sender);
        if status.is_success() {
            Ok(bytes.to_vec())
        } else if status.is_client_error() {
            Err(TransportError::Rejected {
                status: status.as_u16(),
                text: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            })
        } else {
            Err(TransportError::Lost(format!(
                "HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )))
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
    let acceptor = match &tls {
        Some(t) => Some(t.acceptor().map_err(std::io::Error::other)?),
        None => None,
    };
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(respond(handler, request).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

async fn respond<H: Handler>(
    handler: Arc<H>,
    request: Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Vec<u8>, json: bool| {
        hyper::Response::builder()
            .status(status)
            .header(
                hyper::header::CONTENT_TYPE,
                if json {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                },
            )
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if request.method() != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            b"nexo takes POST".to_vec(),
            false,
        );
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                e.to_string().into_bytes(),
                false,
            );
        }
    };
    match handler.handle(body).await {
        Ok(answer) => reply(StatusCode::OK, answer, true),
        Err((status, text)) => reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            text.into_bytes(),
            false,
        ),
    }
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
