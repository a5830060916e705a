//! TCP links for posbridge: a client ([`connect`]) and a [`Listener`] on tokio, with TCP
//! keepalive and `TCP_NODELAY`, a connect timeout, and — with the `tls` feature (default) — TLS
//! 1.2 and 1.3 through rustls, verifying the terminal either against certificate authorities or
//! by the SHA-256 fingerprint of its certificate (pinning).
//!
//! Every connection is a [`posbridge_link::Link`] ([`TcpLink`]), so the layers above do not care
//! whether the terminal sits on the shop's Wi-Fi or on a serial cable.
//!
//! ```no_run
//! use posbridge_link::LinkExt;
//! use posbridge_tcp::{TcpConfig, connect};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut link = connect("192.0.2.10:20007", &TcpConfig::default()).await?;
//! link.send_all(b"...").await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use posbridge_link::{Delivery, IoLink, LinkInfo, LinkKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// HTTP/1.1 over TCP or TLS (feature `http`).
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "mdns")]
mod mdns;
#[cfg(feature = "mdns")]
pub use mdns::{Announcer, MDNS_PORT, MdnsConfig, MdnsDiscovery, SERVICE_TYPE};
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
pub use tls::{
    Fingerprint, ParseFingerprintError, ServerVerification, TlsClientConfig, TlsServerConfig,
    TlsVersions,
};

/// A TCP connection, plain or TLS, as a [`posbridge_link::Link`].
pub type TcpLink = IoLink<TcpStreamKind>;

/// Settings for TCP connections. The defaults suit a terminal on a shop LAN.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    connect_timeout: Duration,
    nodelay: bool,
    keepalive: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<TlsClientConfig>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            nodelay: true,
            keepalive: Some(Duration::from_secs(30)),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl TcpConfig {
    /// How long to wait for the TCP (and TLS) handshake. Default 10 s.
    pub fn set_connect_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether to disable Nagle's algorithm, so small frames leave at once. Default on.
    pub fn set_nodelay(&mut self, nodelay: bool) -> &mut Self {
        self.nodelay = nodelay;
        self
    }

    /// TCP keepalive idle time, or `None` for no keepalive. Default 30 s. (The protocol's own
    /// heartbeat detects a dead terminal sooner; keepalive cleans up half-open sockets.)
    pub fn set_keepalive(&mut self, idle: Option<Duration>) -> &mut Self {
        self.keepalive = idle;
        self
    }

    /// Speak TLS on the connection. Default: plain TCP.
    #[cfg(feature = "tls")]
    pub fn set_tls(&mut self, tls: Option<TlsClientConfig>) -> &mut Self {
        self.tls = tls;
        self
    }
}

/// Why a TCP link could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum TcpError {
    /// The host name did not resolve.
    Resolve {
        /// What was looked up.
        host: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The connection was refused or failed.
    Connect {
        /// Where to.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// No answer within the connect timeout.
    Timeout {
        /// Where to.
        addr: String,
        /// The timeout.
        after: Duration,
    },
    /// Binding a listener failed.
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// Accepting a connection failed.
    Accept(io::Error),
    /// The TLS handshake failed (wrong certificate, no common version or cipher, not TLS).
    #[cfg(feature = "tls")]
    Tls(io::Error),
    /// The terminal's certificate does not match any pinned fingerprint.
    #[cfg(feature = "tls")]
    PinMismatch {
        /// The fingerprint the terminal presented.
        presented: Fingerprint,
    },
    /// A TLS configuration could not be built (bad certificate or key).
    #[cfg(feature = "tls")]
    Config(rustls::Error),
    /// mDNS could not start (no multicast-capable interface, port in use).
    #[cfg(feature = "mdns")]
    Mdns(mdns_sd::Error),
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve { host, source } => write!(
                f,
                "cannot resolve {host}: {source}; check the host name, or use the terminal's IP address"
            ),
            Self::Connect { addr, source } if source.kind() == io::ErrorKind::ConnectionRefused => {
                write!(
                    f,
                    "{addr} refused the connection: the terminal is on, but not listening on that port; check the port (ZVT uses 20007, TLS 22001) and that the terminal's ECR interface is enabled"
                )
            }
            Self::Connect { addr, source } => write!(
                f,
                "cannot connect to {addr}: {source}; check that phone and terminal are on the same network and no firewall or client isolation blocks it"
            ),
            Self::Timeout { addr, after } => write!(
                f,
                "no answer from {addr} within {after:?}: the terminal is off, asleep, on another network, or the address changed (use discovery)"
            ),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Accept(e) => write!(f, "accepting a connection failed: {e}"),
            #[cfg(feature = "tls")]
            Self::Tls(e) => write!(
                f,
                "TLS handshake failed: {e}; check the terminal's certificate, the CA or pin configured, and that the port speaks TLS"
            ),
            #[cfg(feature = "tls")]
            Self::PinMismatch { presented } => write!(
                f,
                "the terminal presented a certificate with SHA-256 fingerprint {presented}, which is not pinned: either the terminal was replaced or re-keyed (re-pair and pin the new fingerprint) or someone is intercepting the connection (do not proceed)"
            ),
            #[cfg(feature = "tls")]
            Self::Config(e) => write!(f, "invalid TLS configuration: {e}"),
            #[cfg(feature = "mdns")]
            Self::Mdns(e) => write!(
                f,
                "LAN discovery failed: {e}; enter the terminal's address by hand, or check that the network allows multicast (guest Wi-Fi often does not)"
            ),
        }
    }
}

impl std::error::Error for TcpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Resolve { source, .. }
            | Self::Connect { source, .. }
            | Self::Bind { source, .. } => Some(source),
            Self::Accept(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::Tls(e) => Some(e),
            #[cfg(feature = "tls")]
            Self::Config(e) => Some(e),
            #[cfg(feature = "mdns")]
            Self::Mdns(e) => Some(e),
            _ => None,
        }
    }
}

/// The stream under a [`TcpLink`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TcpStreamKind {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, this side the client.
    #[cfg(feature = "tls")]
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS, this side the server.
    #[cfg(feature = "tls")]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl TcpStreamKind {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            #[cfg(feature = "tls")]
            Self::TlsClient(s) => s.get_ref().0,
            #[cfg(feature = "tls")]
            Self::TlsServer(s) => s.get_ref().0,
        }
    }
}

macro_rules! each_stream {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            TcpStreamKind::Plain($s) => $e,
            #[cfg(feature = "tls")]
            TcpStreamKind::TlsClient($s) => $e,
            #[cfg(feature = "tls")]
            TcpStreamKind::TlsServer($s) => $e,
        }
    };
}

impl AsyncRead for TcpStreamKind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for TcpStreamKind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

fn tune(stream: &TcpStream, nodelay: bool, keepalive: Option<Duration>) -> io::Result<()> {
    stream.set_nodelay(nodelay)?;
    if let Some(idle) = keepalive {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(5));
        socket2::SockRef::from(stream).set_tcp_keepalive(&ka)?;
    }
    Ok(())
}

fn info(kind: LinkKind, peer: SocketAddr) -> LinkInfo {
    LinkInfo::new(kind, Delivery::Stream, 16 * 1024).with_address(peer.to_string())
}

/// Connects to `addr` (`host:port`), within the configured timeout, and (if configured) runs
/// the TLS handshake.
pub async fn connect(addr: &str, config: &TcpConfig) -> Result<TcpLink, TcpError> {
    let deadline = tokio::time::Instant::now() + config.connect_timeout;
    let timeout = || TcpError::Timeout {
        addr: addr.to_string(),
        after: config.connect_timeout,
    };
    let addrs: Vec<SocketAddr> = tokio::time::timeout_at(deadline, tokio::net::lookup_host(addr))
        .await
        .map_err(|_| timeout())?
        .map_err(|source| TcpError::Resolve {
            host: addr.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => return Err(timeout()),
        }
    }
    let stream = stream.ok_or_else(|| TcpError::Connect {
        addr: addr.to_string(),
        source: last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
    })?;
    tune(&stream, config.nodelay, config.keepalive).map_err(|source| TcpError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    let peer = stream.peer_addr().map_err(|source| TcpError::Connect {
        addr: addr.to_string(),
        source,
    })?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        let s = tokio::time::timeout_at(deadline, tls.handshake(stream))
            .await
            .map_err(|_| timeout())??;
        return Ok(IoLink::new(
            TcpStreamKind::TlsClient(Box::new(s)),
            info(LinkKind::Tls, peer),
        ));
    }
    Ok(IoLink::new(
        TcpStreamKind::Plain(stream),
        info(LinkKind::Tcp, peer),
    ))
}

/// Accepts connections (the terminal side, a simulator, or a relay).
pub struct Listener {
    inner: tokio::net::TcpListener,
    nodelay: bool,
    keepalive: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Listener");
        d.field("local_addr", &self.inner.local_addr().ok());
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

impl Listener {
    /// Listens on `addr` (`127.0.0.1:0` for a free port), plain TCP.
    pub async fn bind(addr: &str) -> Result<Self, TcpError> {
        let inner = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TcpError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(Self {
            inner,
            nodelay: true,
            keepalive: Some(Duration::from_secs(30)),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Listens on `addr` and speaks TLS with the given certificate and key.
    #[cfg(feature = "tls")]
    pub async fn bind_tls(addr: &str, tls: &TlsServerConfig) -> Result<Self, TcpError> {
        let mut l = Self::bind(addr).await?;
        l.tls = Some(tls.acceptor()?);
        Ok(l)
    }

    /// The address actually bound (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Waits for the next connection (and its TLS handshake).
    pub async fn accept(&self) -> Result<TcpLink, TcpError> {
        let (stream, peer) = self.inner.accept().await.map_err(TcpError::Accept)?;
        tune(&stream, self.nodelay, self.keepalive).map_err(TcpError::Accept)?;
        #[cfg(feature = "tls")]
        if let Some(acceptor) = &self.tls {
            let s = acceptor.accept(stream).await.map_err(TcpError::Tls)?;
            return Ok(IoLink::new(
                TcpStreamKind::TlsServer(Box::new(s)),
                info(LinkKind::Tls, peer),
            ));
        }
        Ok(IoLink::new(
            TcpStreamKind::Plain(stream),
            info(LinkKind::Tcp, peer),
        ))
    }
}
