//! Links the app supplies: any byte stream the app opens itself (a socket, a serial port an
//! Android app reaches through its own USB stack, a Bluetooth socket), implemented in Kotlin,
//! Swift or Python. posbridge keeps the framing, pairing, encryption and journal in Rust; the
//! stream only carries bytes.

use std::sync::Arc;

use posbridge_link::{Delivery, IoLink, LinkInfo, LinkKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{PosError, Terminal, on_runtime};

/// Why the app's stream failed.
#[derive(Debug, uniffi::Error)]
pub enum LinkFailure {
    /// The stream is closed or broken.
    Closed {
        /// Why.
        detail: String,
    },
}

impl std::fmt::Display for LinkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed { detail } => write!(f, "the stream closed: {detail}"),
        }
    }
}

impl std::error::Error for LinkFailure {}

impl From<uniffi::UnexpectedUniFFICallbackError> for LinkFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Closed { detail: e.reason }
    }
}

/// A byte stream the app implements (a connected socket, say). posbridge calls `read` and
/// `write` from its own threads, one read and one write at a time.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait ByteStream: Send + Sync {
    /// Up to `max` bytes, as soon as any arrive; empty when the stream has ended.
    async fn read(&self, max: u32) -> Result<Vec<u8>, LinkFailure>;
    /// Writes all of `data`.
    async fn write(&self, data: Vec<u8>) -> Result<(), LinkFailure>;
    /// Closes the stream (named so because Kotlin objects already have `close()`).
    async fn shut(&self);
}

/// How to pair over an app's stream.
#[derive(Clone, Debug, uniffi::Record)]
pub struct StreamOptions {
    /// Where this till keeps its keys, the pairing and the journal (one directory per terminal).
    pub data_dir: String,
    /// The code the terminal shows, to pair now; `None` to use the pairing kept in `data_dir`.
    pub pairing_code: Option<String>,
    /// This till's name, as the terminal shows it.
    pub till_name: String,
    /// A name for the stream in logs (`"bluetooth socket"`, the address …).
    pub description: String,
}

/// Connects to a terminal over `stream`, which the app opened (pairing first when a code is
/// given); this till's identity and the pairing are kept in the app's `store` when given, else in
/// files under the data directory.
#[uniffi::export(default(store = None))]
pub async fn connect_stream(
    stream: Arc<dyn ByteStream>,
    options: StreamOptions,
    store: Option<Arc<dyn crate::SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(async move {
        // posbridge's side of an in-process pipe; two tasks pump the other side to and from the
        // app's stream.
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (mut from_pipe, mut to_pipe) = tokio::io::split(theirs);
        let writer = stream.clone();
        let to_app = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from_pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if writer.write(buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            }
            writer.shut().await;
        });
        let reader = stream.clone();
        let from_app = tokio::spawn(async move {
            loop {
                match reader.read(16 * 1024).await {
                    Ok(data) if !data.is_empty() => {
                        if to_pipe.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            let _ = to_pipe.shutdown().await;
        });
        let info = LinkInfo::new(LinkKind::Memory, Delivery::Stream, 16 * 1024)
            .with_address(options.description);
        let terminal = crate::connect_link_stored(
            IoLink::new(ours, info),
            options.data_dir,
            options.pairing_code,
            options.till_name,
            store,
        )
        .await;
        match &terminal {
            Ok(t) => t
                .pumps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend([to_app, from_app]),
            // posbridge's side of the pipe is gone: the pumps close the app's stream and end.
            Err(_) => {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), to_app).await;
                from_app.abort();
            }
        }
        terminal
    })
    .await
}
