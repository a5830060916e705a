//! ZVT over a `posbridge_link::Link`: raw APDUs on TCP, `DLE STX` frames with `ACK`/`NAK` and
//! retransmission on serial lines. Used by both roles ([`crate::client`], [`crate::server`]).

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use posbridge_link::{Link, LinkError, LinkExt};

use crate::serial::{self, SerialDecoder, SerialEvent};
use crate::{Apdu, ApduStream, ZvtError};

/// How APDUs travel on the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// TCP (and TLS): APDUs back to back, delimited by their length.
    Tcp,
    /// Serial lines: `DLE STX` … `DLE ETX` CRC frames, each answered `ACK` or `NAK`.
    Serial,
}

/// How long a serial sender waits for the line's `ACK` before sending the frame again.
pub const SERIAL_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a serial frame is sent before the line is given up (the first send and the
/// retransmissions after a `NAK` or a missing `ACK`).
pub const SERIAL_ATTEMPTS: u32 = 3;

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

/// A link carrying ZVT APDUs. [`recv`](Self::recv) is cancel-safe: an APDU received is never
/// lost to a dropped future (bytes stay buffered; a serial frame's `ACK` owed is sent by the next
/// call).
pub struct ZvtLink<L> {
    link: L,
    framing: Framing,
    buf: BytesMut,
    apdus: ApduStream,
    serial: SerialDecoder,
    received: VecDeque<Apdu>,
    /// Serial: `ACK`s owed for frames already taken in.
    acks_owed: usize,
    /// Serial: `NAK`s owed for damaged frames.
    naks_owed: usize,
    /// Serial: line `ACK`/`NAK`s seen while no frame of ours was waiting for one.
    line_answers: VecDeque<bool>,
    /// Serial: damaged frames seen (answered `NAK`).
    damaged: u64,
}

impl<L> fmt::Debug for ZvtLink<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZvtLink")
            .field("framing", &self.framing)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<L: Link> ZvtLink<L> {
    /// ZVT over `link` with `framing`.
    pub fn new(link: L, framing: Framing) -> Self {
        Self {
            link,
            framing,
            buf: BytesMut::with_capacity(4096),
            apdus: ApduStream::new(),
            serial: SerialDecoder::new(),
            received: VecDeque::new(),
            acks_owed: 0,
            naks_owed: 0,
            line_answers: VecDeque::new(),
            damaged: 0,
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The link underneath.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Serial frames that arrived damaged (each answered `NAK`, so the peer sent it again).
    pub fn damaged_frames(&self) -> u64 {
        self.damaged
    }

    /// Sends `apdu`; on a serial line, until the line acknowledges it (frames the peer sends
    /// meanwhile are kept for [`recv`](Self::recv)).
    pub async fn send(&mut self, apdu: &Apdu) -> Result<(), TransportError> {
        match self.framing {
            Framing::Tcp => {
                let bytes = apdu.to_bytes()?;
                self.link.send_all(&bytes).await?;
                Ok(())
            }
            Framing::Serial => {
                let frame = serial::encode_frame(apdu)?;
                self.pay_acks().await?;
                for _ in 0..SERIAL_ATTEMPTS {
                    // Answers that came before this send are not to it.
                    self.line_answers.clear();
                    self.link.send_all(&frame).await?;
                    match tokio::time::timeout(SERIAL_ACK_TIMEOUT, self.line_answer()).await {
                        Ok(Ok(true)) => return Ok(()),
                        Ok(Ok(false)) | Err(_) => continue,
                        Ok(Err(e)) => return Err(e),
                    }
                }
                Err(TransportError::NotAcknowledged)
            }
        }
    }

    /// Waits for the line's answer to our frame: `true` for `ACK`.
    async fn line_answer(&mut self) -> Result<bool, TransportError> {
        loop {
            if let Some(a) = self.line_answers.pop_front() {
                return Ok(a);
            }
            self.pump().await?;
            self.pay_acks().await?;
        }
    }

    /// The next APDU from the peer.
    pub async fn recv(&mut self) -> Result<Apdu, TransportError> {
        loop {
            self.pay_acks().await?;
            if let Some(a) = self.received.pop_front() {
                return Ok(a);
            }
            self.pump().await?;
        }
    }

    /// Sends the `ACK`s owed for frames taken in and the `NAK`s for damaged ones.
    async fn pay_acks(&mut self) -> Result<(), TransportError> {
        while self.naks_owed > 0 {
            self.link.send_all(&[serial::NAK]).await?;
            self.naks_owed -= 1;
        }
        while self.acks_owed > 0 {
            self.link.send_all(&[serial::ACK]).await?;
            self.acks_owed -= 1;
        }
        Ok(())
    }

    /// Decodes what is buffered; reads more when nothing whole is there.
    async fn pump(&mut self) -> Result<(), TransportError> {
        let before = self.received.len() + self.line_answers.len();
        self.decode()?;
        if self.received.len() + self.line_answers.len() > before {
            return Ok(());
        }
        self.link.recv(&mut self.buf).await?;
        self.decode()
    }

    fn decode(&mut self) -> Result<(), TransportError> {
        match self.framing {
            Framing::Tcp => {
                while let Some(a) = self.apdus.decode(&mut self.buf)? {
                    self.received.push_back(a);
                }
            }
            Framing::Serial => {
                while let Some(ev) = self.serial.decode(&mut self.buf) {
                    match ev {
                        SerialEvent::Frame(a) => {
                            self.received.push_back(a);
                            self.acks_owed += 1;
                        }
                        SerialEvent::Ack => self.line_answers.push_back(true),
                        SerialEvent::Nak => self.line_answers.push_back(false),
                        SerialEvent::Damaged(_) => {
                            self.damaged += 1;
                            // Answered at once (the peer sends the frame again).
                            self.naks_owed += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes the link.
    pub async fn close(&mut self) -> Result<(), TransportError> {
        self.link.close().await?;
        Ok(())
    }
}
