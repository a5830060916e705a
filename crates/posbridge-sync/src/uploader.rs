//! The uploader: ships a till's journal outbox to a back office, exactly once.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use posbridge_crypto::{LocalIdentity, SigningIdentity};
use posbridge_journal::{JournalError, OutboxStatus, SqliteJournal};
use posbridge_tcp::TlsClientConfig;
use posbridge_tcp::http::HttpClient;
use posbridge_wire::Timestamp;

use crate::{Ack, SIGNATURE_HEADER, TILL_HEADER, UPLOAD_PATH, Upload};

/// Why an upload did not go through. Nothing is lost either way: the changes stay in the
/// outbox and go with the next upload.
#[derive(Debug)]
pub enum SinkError {
    /// The back office could not be reached, or the connection broke (retry later).
    Unreachable(String),
    /// The back office refused the upload (HTTP status and its words): a till not registered,
    /// a signature that does not verify, a malformed body. Retrying does not help until it is
    /// fixed.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its words.
        detail: String,
    },
    /// The back office answered something that is not an [`Ack`], or acknowledged more than
    /// was sent.
    BadAnswer(String),
    /// The till's journal failed.
    Journal(JournalError),
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "the back office cannot be reached: {e}"),
            Self::Refused { status, detail } => {
                write!(f, "the back office refused the upload ({status}): {detail}")
            }
            Self::BadAnswer(e) => write!(f, "the back office's answer is not understood: {e}"),
            Self::Journal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SinkError {}

impl From<JournalError> for SinkError {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}

/// Where uploads go: the back office over HTTPS ([`HttpSink`]), or anything else that commits
/// them and says how far.
pub trait Sink: Send + Sync {
    /// Sends one upload (`body` with its till and signature headers) and returns the back
    /// office's answer.
    fn send(
        &self,
        till: &str,
        body: Vec<u8>,
        signature: String,
    ) -> impl Future<Output = Result<Ack, SinkError>> + Send;
}

/// The back office over HTTP(S): `POST /v1/upload`, connections kept and reused.
#[derive(Debug)]
pub struct HttpSink {
    client: HttpClient,
    timeout: Duration,
}

impl HttpSink {
    /// HTTPS to the back office at `addr`, its certificate checked by `tls` (a root or a pin).
    pub fn https(addr: SocketAddr, tls: TlsClientConfig) -> Self {
        Self::new(addr, Some(tls))
    }

    /// Plain HTTP, for a back office on the same machine or behind a TLS-terminating proxy on
    /// a private network. The uploads are signed either way; TLS keeps them confidential.
    pub fn plain_http(addr: SocketAddr) -> Self {
        Self::new(addr, None)
    }

    fn new(addr: SocketAddr, tls: Option<TlsClientConfig>) -> Self {
        Self {
            client: HttpClient::new(addr, tls),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Sink for HttpSink {
    async fn send(&self, till: &str, body: Vec<u8>, signature: String) -> Result<Ack, SinkError> {
        let headers = [(TILL_HEADER, till), (SIGNATURE_HEADER, signature.as_str())];
        let (status, bytes) = tokio::time::timeout(
            self.timeout,
            self.client.post(UPLOAD_PATH, &headers, body, 1 << 20),
        )
        .await
        .map_err(|_| SinkError::Unreachable(format!("no answer within {:?}", self.timeout)))?
        .map_err(|e| SinkError::Unreachable(format!("{}: {e}", self.client.addr())))?;
        if !(200..300).contains(&status) {
            let detail = String::from_utf8_lossy(&bytes).chars().take(500).collect();
            return Err(if status >= 500 {
                SinkError::Unreachable(format!("{status}: {detail}"))
            } else {
                SinkError::Refused { status, detail }
            });
        }
        Ack::from_json(&bytes).map_err(|e| SinkError::BadAnswer(e.to_string()))
    }
}

/// How the uploader paces itself.
#[derive(Clone, Debug)]
pub struct UploaderConfig {
    /// Changes per upload (at most).
    pub batch: usize,
    /// How long to wait between rounds when the outbox is empty.
    pub interval: Duration,
    /// The longest wait after failures (the wait doubles from `interval` up to this).
    pub max_backoff: Duration,
    /// Warn when an approved payment has waited longer than this to be shipped.
    pub warn_after: Duration,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            warn_after: Duration::from_secs(3600),
        }
    }
}

/// What one round shipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Uploads sent.
    pub uploads: u64,
    /// Changes the back office stored now.
    pub accepted: u64,
    /// Changes it had already.
    pub duplicates: u64,
    /// Changes it quarantined.
    pub quarantined: u64,
    /// The shipped mark afterwards.
    pub shipped: u64,
}

/// Ships a till's journal outbox to a back office through a [`Sink`]. It opens its own
/// connection to the journal file, so it runs beside the payments (SQLite serialises the
/// writes) and may run in a process of its own.
pub struct Uploader<S> {
    journal: SqliteJournal,
    till: [u8; 16],
    till_hex: String,
    journal_id: [u8; 16],
    signing: SigningIdentity,
    sink: S,
    config: UploaderConfig,
}

impl<S> fmt::Debug for Uploader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploader")
            .field("till", &self.till_hex)
            .finish_non_exhaustive()
    }
}

fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

impl<S: Sink> Uploader<S> {
    /// An uploader of the journal at `path` for the till `identity` (its id names the till, its
    /// signing key signs the uploads; the back office knows its public key).
    pub fn open(
        path: impl AsRef<Path>,
        identity: &LocalIdentity,
        sink: S,
        config: UploaderConfig,
    ) -> Result<Self, JournalError> {
        let journal = SqliteJournal::open(path)?;
        let till = identity.id().0;
        Ok(Self {
            journal_id: journal.identity()?,
            journal,
            till,
            till_hex: crate::hex(&till),
            signing: SigningIdentity::from_secret(&identity.signing().to_secret()),
            sink,
            config: UploaderConfig {
                batch: config.batch.max(1),
                ..config
            },
        })
    }

    /// What waits to be shipped.
    pub fn status(&self) -> Result<OutboxStatus, JournalError> {
        self.journal.outbox_status()
    }

    /// A warning for the app to show when an approved payment has waited longer than
    /// `warn_after` to reach the back office; `None` when all is well.
    pub fn warning(&self) -> Result<Option<String>, JournalError> {
        let status = self.status()?;
        let now = now().0;
        Ok(status.oldest_unshipped_approved.and_then(|t| {
            let waited = Duration::from_millis(now.saturating_sub(t.0));
            (waited > self.config.warn_after).then(|| {
                format!(
                    "{} journal changes not yet in the back office; an approved payment has waited {} min",
                    status.unshipped,
                    waited.as_secs() / 60
                )
            })
        }))
    }

    /// Ships everything waiting, one upload after another, and returns what went. The mark moves
    /// after each upload the back office acknowledged; a failure stops the round (what went
    /// before it stays shipped).
    pub async fn ship(&mut self) -> Result<UploadReport, SinkError> {
        let mut report = UploadReport {
            shipped: self.journal.shipped()?,
            ..UploadReport::default()
        };
        loop {
            let records = self.journal.outbox(self.config.batch)?;
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                return Ok(report);
            };
            let (first, last) = (first.seq, last.seq);
            let body = Upload {
                till: self.till,
                journal: self.journal_id,
                records,
            }
            .to_json();
            let signature = crate::sign(&self.signing, &body);
            let ack = self.sink.send(&self.till_hex, body, signature).await?;
            if ack.committed_through > last {
                return Err(SinkError::BadAnswer(format!(
                    "acknowledged up to {} of an upload that ends at {last}",
                    ack.committed_through
                )));
            }
            report.uploads += 1;
            report.accepted += ack.accepted;
            report.duplicates += ack.duplicates;
            report.quarantined += ack.quarantined;
            if ack.committed_through < first {
                // Nothing of this upload committed: try again later rather than loop.
                return Err(SinkError::BadAnswer(format!(
                    "the back office committed nothing of {first}..={last}"
                )));
            }
            self.journal.acknowledge(ack.committed_through)?;
            report.shipped = ack.committed_through;
        }
    }

    /// Ships in rounds until `stop` completes: every `interval` when all went, after a wait that
    /// doubles up to `max_backoff` when the back office could not be reached. Runs for days
    /// offline; the outbox (on disk) holds what waits.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut wait = self.config.interval;
        loop {
            match self.ship().await {
                Ok(r) => {
                    if r.uploads > 0 {
                        tracing::debug!(?r, "uploaded journal changes");
                    }
                    wait = self.config.interval;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "upload failed; will retry");
                    wait = (wait * 2).min(self.config.max_backoff);
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
