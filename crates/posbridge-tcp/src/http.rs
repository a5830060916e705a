//! HTTP/1.1 over TCP or TLS for posbridge's request–response protocols (nexo's local API, the
//! back office's uploads): a client that keeps connections for reuse, and a server loop. hyper 1
//! underneath; TLS is this crate's (a configured root or pinned certificate fingerprints).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
pub use hyper::Method;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::{TlsClientConfig, TlsServerConfig};

/// Why an exchange failed, and whether the request may have been acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No connection could be made (or TLS failed): the request was certainly not sent.
    Connect(String),
    /// The connection broke after the request was written, or the answer could not be read:
    /// the peer may have acted on it.
    Lost(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Lost(e) => write!(f, "the exchange broke: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// An HTTP client to one server, keeping up to four idle connections for reuse and opening
/// another when all are busy.
pub struct HttpClient {
    addr: SocketAddr,
    authority: String,
    tls: Option<TlsClientConfig>,
    connect_timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// To the server at `addr`: HTTPS verified by `tls`, or plain HTTP without.
    pub fn new(addr: SocketAddr, tls: Option<TlsClientConfig>) -> Self {
        Self {
            addr,
            authority: addr.to_string(),
            tls,
            connect_timeout: Duration::from_secs(5),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the exchanges are protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
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

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let connect = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| HttpError::Connect(format!("{}: {e}", self.addr)))?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                Some(tls) => {
                    let stream = tls
                        .handshake(tcp)
                        .await
                        .map_err(|e| HttpError::Connect(format!("TLS with {}: {e}", self.addr)))?;
                    handshake(TokioIo::new(stream)).await
                }
                None => handshake(TokioIo::new(tcp)).await,
            }
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| {
                HttpError::Connect(format!(
                    "{}: no connection within {:?}",
                    self.addr, self.connect_timeout
                ))
            })?
    }

    /// Makes sure a connection is open (connecting now if none is idle).
    pub async fn ready(&self) -> Result<(), HttpError> {
        let sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        self.put_idle(sender);
        Ok(())
    }

    /// `POST path` with `headers` and `body`; the status and at most `max_answer` bytes of the
    /// answer. A request never written on a kept connection (the server had closed it) goes
    /// once more on a new one.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        self.send(Method::POST, path, headers, body, max_answer)
            .await
    }

    /// `GET path` (with its query) and `headers`, as [`post`](Self::post).
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        max_answer: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        self.send(Method::GET, path, headers, Vec::new(), max_answer)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        max_answer: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::Connect(format!("request: {e}")))?;
        let response = match sender.try_send_request(request).await {
            Ok(r) => r,
            Err(mut e) => match e.take_message() {
                Some(request) => {
                    sender = self.connect().await?;
                    sender
                        .send_request(request)
                        .await
                        .map_err(|e| HttpError::Lost(e.to_string()))?
                }
                None => return Err(HttpError::Lost(e.into_error().to_string())),
            },
        };
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), max_answer)
            .collect()
            .await
            .map_err(|e| HttpError::Lost(format!("reading the answer: {e}")))?
            .to_bytes();
        self.put_idle(sender);
        Ok((status, bytes.to_vec()))
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::Connect(format!("HTTP: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// A request the server took, its body read whole.
#[derive(Debug)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: Method,
    /// The path (no query).
    pub path: String,
    /// The query (after `?`; empty without one).
    pub query: String,
    headers: hyper::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter's value (`%XX` and `+` decoded), if given.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status.
    pub status: u16,
    /// The content type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// More headers (`WWW-Authenticate`, `Cache-Control`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl HttpResponse {
    /// `status` with a body of `content_type`.
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// This response with the header `name: value` too.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `status` with a JSON body.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// `status` with a text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// `status` with an HTML page.
    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/html; charset=utf-8", body.into().into_bytes())
    }
}

/// Serves HTTP (HTTPS with `tls`) on `listener`: every request whose body fits in `max_body`
/// bytes goes to `handle` (a larger one is answered 413), one task per connection. Runs until
/// the listener fails.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsServerConfig>,
    max_body: usize,
    handle: F,
) -> std::io::Result<()>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let acceptor = match &tls {
        Some(t) => Some(t.acceptor().map_err(std::io::Error::other)?),
        None => None,
    };
    let handle = Arc::new(handle);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let handle = handle.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(respond(&*handle, request, max_body).await) }
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

async fn respond<F, Fut>(
    handle: &F,
    request: Request<Incoming>,
    max_body: usize,
) -> Response<Full<Bytes>>
where
    F: Fn(HttpRequest) -> Fut,
    Fut: Future<Output = HttpResponse>,
{
    let (parts, body) = request.into_parts();
    let answer = match Limited::new(body, max_body).collect().await {
        Ok(b) => {
            handle(HttpRequest {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                headers: parts.headers,
                body: b.to_bytes().to_vec(),
            })
            .await
        }
        Err(e) => HttpResponse::text(413, e.to_string()),
    };
    let mut response = Response::builder()
        .status(answer.status)
        .header(hyper::header::CONTENT_TYPE, answer.content_type);
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    response
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| {
            let mut r = Response::new(Full::new(Bytes::from_static(b"bad status")));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}
