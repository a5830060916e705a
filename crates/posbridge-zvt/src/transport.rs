//! ZVT over a `posbridge_link::Link`: raw APDUs on TCP, `DLE STX` frames with `ACK`/`NAK` and
//! retransmission on serial lines. Used by both roles ([`crate::client`], [`crate::server`]).

use std::fmt;

use bytes::BytesMut;
use posbridge_link::{Link, LinkError, LinkExt};

pub use crate::line::{Framing, SERIAL_ACK_TIMEOUT, SERIAL_ATTEMPTS};
use crate::line::{Line, LineError};
use crate::{Apdu, ZvtError};

/// Why ZVT could not be sent or received.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The link failed or closed.
    Link(LinkError),
    /// The bytes are not ZVT (on TCP a bad length cannot be skipped: the connection is lost).
    Codec(ZvtError),
    /// A serial frame was not acknowledged after [`SERIAL_ATTEMPTS`] sends.
    NotAcknowledged,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Link(e) => write!(f, "{e}"),
            Self::Codec(e) => write!(f, "not ZVT: {e}"),
            Self::NotAcknowledged => write!(
                f,
                "the serial line did not acknowledge a ZVT frame after {SERIAL_ATTEMPTS} sends (check cable, baud rate and 8N2)"
            ),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<LinkError> for TransportError {
    fn from(e: LinkError) -> Self {
        Self::Link(e)
    }
}

impl From<ZvtError> for TransportError {
    fn from(e: ZvtError) -> Self {
        Self::Codec(e)
    }
}

impl From<LineError> for TransportError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::Codec(c) => Self::Codec(c),
            LineError::NotAcknowledged => Self::NotAcknowledged,
        }
    }
}

/// A link carrying ZVT APDUs: the tokio driver of a sans-IO [`Line`]. [`recv`](Self::recv) is
/// cancel-safe: an APDU received is never lost to a dropped future (it stays in the line; a
/// serial frame's `ACK` owed is sent by the next call).
pub struct ZvtLink<L> {
    link: L,
    line: Line,
    buf: BytesMut,
}

impl<L> fmt::Debug for ZvtLink<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZvtLink")
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl<L: Link> ZvtLink<L> {
    /// ZVT over `link` with `framing`.
    pub fn new(link: L, framing: Framing) -> Self {
        Self::with_line(link, Line::new(framing))
    }

    /// ZVT over `link` through `line` (its framing and serial timing).
    pub fn with_line(link: L, line: Line) -> Self {
        Self {
            link,
            line,
            buf: BytesMut::with_capacity(4096),
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.line.framing()
    }

    /// The link underneath.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Serial frames that arrived damaged (each answered `NAK`, so the peer sent it again).
    pub fn damaged_frames(&self) -> u64 {
        self.line.damaged_frames()
    }

    /// Sends `apdu`; on a serial line, until the line acknowledges it (frames the peer sends
    /// meanwhile are kept for [`recv`](Self::recv)).
    pub async fn send(&mut self, apdu: &Apdu) -> Result<(), TransportError> {
        let n = self.line.send(apdu)?;
        loop {
            self.flush().await?;
            if self.line.delivered() >= n {
                return Ok(());
            }
            self.pump().await?;
        }
    }

    /// The next APDU from the peer.
    pub async fn recv(&mut self) -> Result<Apdu, TransportError> {
        loop {
            self.flush().await?;
            if let Some(a) = self.line.poll_apdu() {
                // Its ACK goes now, not with the next call.
                self.flush().await?;
                return Ok(a);
            }
            self.pump().await?;
        }
    }

    /// Writes what the line has to send; fails once the line has failed.
    async fn flush(&mut self) -> Result<(), TransportError> {
        while let Some(bytes) = self.line.poll_transmit(now()) {
            self.link.send_all(&bytes).await?;
        }
        match self.line.error() {
            Some(e) => Err(e.clone().into()),
            None => Ok(()),
        }
    }

    /// Reads once, or runs the line's timer when it is due first.
    async fn pump(&mut self) -> Result<(), TransportError> {
        match self.line.poll_timeout() {
            Some(due) => {
                let due = tokio::time::Instant::from_std(due);
                match tokio::time::timeout_at(due, self.link.recv(&mut self.buf)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        self.line.handle_timeout(now());
                        return Ok(());
                    }
                }
            }
            None => self.link.recv(&mut self.buf).await?,
        };
        self.line.handle_input(&self.buf, now());
        self.buf.clear();
        Ok(())
    }

    /// Closes the link.
    pub async fn close(&mut self) -> Result<(), TransportError> {
        self.link.close().await?;
        Ok(())
    }
}
