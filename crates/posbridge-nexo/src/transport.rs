//! How a request body reaches the terminal and its response comes back: one exchange per
//! message (nexo's local integration is one HTTPS `POST` per request). [`Transport`] is what
//! the client needs; `https::HttpsTransport` is the real one, [`Loopback`] hands bodies to a
//! server in the same process (tests, the simulator, benchmarks).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why an exchange failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection could be made (refused, unreachable, TLS or certificate failure): the
    /// request certainly did not leave.
    Connect(String),
    /// The terminal answered with an HTTP status that says it did not take the request (4xx:
    /// malformed, not decryptable, wrong path); the text is its body.
    Rejected {
        /// The status.
        status: u16,
        /// The body, as text.
        text: String,
    },
    /// The request may have left, and no (whole) answer came: a timeout, a broken connection,
    /// a server error.
    Lost(String),
    /// No answer within the deadline.
    Timeout,
}

impl TransportError {
    /// Whether the request certainly did not reach the terminal (so nothing happened).
    pub fn sent_nothing(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Rejected { .. })
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(t) => write!(f, "cannot connect to the terminal: {t}"),
            Self::Rejected { status, text } => {
                write!(
                    f,
                    "the terminal rejected the request (HTTP {status}): {text}"
                )
            }
            Self::Lost(t) => write!(f, "the exchange with the terminal broke: {t}"),
            Self::Timeout => f.write_str("the terminal did not answer in time"),
        }
    }
}

impl std::error::Error for TransportError {}

/// One request body for one response body (empty for messages the terminal does not answer,
/// such as an abort).
pub trait Transport: Send + Sync {
    /// Makes sure a connection is open (connecting if needed), so that a failure to reach the
    /// terminal is told apart from a request lost on the way.
    fn ready(&self, deadline: Duration) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Sends `body` and waits for the answer, within `deadline`.
    fn exchange(
        &self,
        body: Vec<u8>,
        deadline: Duration,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// What answers request bodies on the terminal side (the `NexoServer` implements it).
pub trait Handler: Send + Sync + 'static {
    /// The response body to `body`, or an HTTP status and text for a request it does not take.
    fn handle(&self, body: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, (u16, String)>> + Send;
}

/// A transport to a handler in the same process.
pub struct Loopback<H> {
    handler: Arc<H>,
}

impl<H> fmt::Debug for Loopback<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Loopback")
    }
}

impl<H> Loopback<H> {
    /// Exchanges with `handler`.
    pub fn new(handler: Arc<H>) -> Self {
        Self { handler }
    }
}

impl<H: Handler> Transport for Loopback<H> {
    async fn ready(&self, _deadline: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    async fn exchange(&self, body: Vec<u8>, deadline: Duration) -> Result<Vec<u8>, TransportError> {
        // The handler runs to its end even if the caller stops waiting (as a terminal would).
        let handler = self.handler.clone();
        let task = tokio::spawn(async move { handler.handle(body).await });
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err((status, text)))) if (400..500).contains(&status) => {
                Err(TransportError::Rejected { status, text })
            }
            Ok(Ok(Err((status, text)))) => {
                Err(TransportError::Lost(format!("HTTP {status}: {text}")))
            }
            Ok(Err(join)) => Err(TransportError::Lost(join.to_string())),
            Err(_) => Err(TransportError::Timeout),
        }
    }
}
