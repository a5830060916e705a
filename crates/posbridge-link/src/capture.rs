//! Recording link traffic to pcapng, and replaying it.
//!
//! The file is standard pcapng (readable by Wireshark and tshark): one Section Header Block, one
//! Interface Description Block with link type `LINKTYPE_USER0` (147) and the link's description
//! as its name, then one Enhanced Packet Block per send or receive, with a microsecond
//! timestamp and the direction in the `epb_flags` option (1 = received, 2 = sent). Everything
//! is little-endian. See docs/transports.md, "Capture files".

use std::future::Future;
use std::io::{self, Read, Write};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use crate::{Delivery, Link, LinkError, LinkInfo, LinkKind};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// `LINKTYPE_USER0`: a link type reserved for private use.
pub const LINKTYPE_USER0: u16 = 147;
const OPT_END: u16 = 0;
const OPT_IF_NAME: u16 = 2;
const OPT_EPB_FLAGS: u16 = 2;

/// Which way bytes went, seen from the side that recorded them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer.
    Inbound,
    /// Sent to the peer.
    Outbound,
}

/// One send or receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When, in microseconds since 1970-01-01T00:00:00Z.
    pub time_us: u64,
    /// Which way.
    pub direction: Direction,
    /// The bytes.
    pub data: Bytes,
}

/// Why a capture file could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaptureError {
    /// Reading failed.
    Io(io::Error),
    /// The file does not start with a pcapng section header.
    NotPcapng,
    /// A big-endian section; posbridge writes little-endian files only.
    BigEndian,
    /// A block is cut short or its lengths disagree, at this byte offset.
    Malformed(u64),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "reading the capture failed: {e}"),
            Self::NotPcapng => f.write_str("not a pcapng file"),
            Self::BigEndian => f.write_str("big-endian pcapng sections are not supported"),
            Self::Malformed(at) => write!(f, "malformed pcapng block at byte {at}"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().next_multiple_of(4);
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_le_bytes());
    body.extend_from_slice(&(value.len() as u16).to_le_bytes());
    body.extend_from_slice(value);
    body.resize(body.len().next_multiple_of(4), 0);
}

/// Writes records to a pcapng stream.
#[derive(Debug)]
pub struct CaptureWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture: writes the section header and one interface named `interface`.
    pub fn new(mut out: W, interface: &str) -> io::Result<Self> {
        let mut buf = Vec::with_capacity(256);
        let mut shb = Vec::new();
        shb.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut buf, SHB, &shb);
        let mut idb = Vec::new();
        idb.extend_from_slice(&LINKTYPE_USER0.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        option(&mut idb, OPT_IF_NAME, interface.as_bytes());
        option(&mut idb, OPT_END, &[]);
        block(&mut buf, IDB, &idb);
        out.write_all(&buf)?;
        buf.clear();
        Ok(Self { out, buf })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let mut epb = Vec::with_capacity(32 + record.data.len());
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((record.time_us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(record.time_us as u32).to_le_bytes());
        let len = record.data.len() as u32;
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&record.data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        let flags: u32 = match record.direction {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        };
        option(&mut epb, OPT_EPB_FLAGS, &flags.to_le_bytes());
        option(&mut epb, OPT_END, &[]);
        self.buf.clear();
        block(&mut self.buf, EPB, &epb);
        self.out.write_all(&self.buf)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Unwraps the writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads every record of a pcapng capture (blocks other than packets are skipped; packets without
/// a direction flag count as inbound).
pub fn read_capture(mut input: impl Read) -> Result<Vec<Record>, CaptureError> {
    let mut data = Vec::new();
    input.read_to_end(&mut data).map_err(CaptureError::Io)?;
    parse_capture(&data)
}

/// Parses a whole pcapng capture held in memory.
pub fn parse_capture(data: &[u8]) -> Result<Vec<Record>, CaptureError> {
    if data.len() < 12 || le32(data, 0) != SHB {
        return Err(CaptureError::NotPcapng);
    }
    let mut at = 0usize;
    let mut records = Vec::new();
    while at < data.len() {
        let bad = CaptureError::Malformed(at as u64);
        if data.len() - at < 12 {
            return Err(bad);
        }
        let kind = le32(data, at);
        if kind == SHB {
            match le32(data, at + 8) {
                BYTE_ORDER_MAGIC => {}
                0x4D3C_2B1A => return Err(CaptureError::BigEndian),
                _ => return Err(CaptureError::NotPcapng),
            }
        }
        let total = le32(data, at + 4) as usize;
        if total < 12
            || !total.is_multiple_of(4)
            || total > data.len() - at
            || le32(data, at + total - 4) as usize != total
        {
            return Err(bad);
        }
        let body = &data[at + 8..at + total - 4];
        if kind == EPB {
            if body.len() < 20 {
                return Err(bad);
            }
            let time_us = (u64::from(le32(body, 4)) << 32) | u64::from(le32(body, 8));
            let captured = le32(body, 12) as usize;
            let padded = captured.next_multiple_of(4);
            if 20 + padded > body.len() {
                return Err(bad);
            }
            let packet = Bytes::copy_from_slice(&body[20..20 + captured]);
            let mut direction = Direction::Inbound;
            let mut opt = 20 + padded;
            while opt + 4 <= body.len() {
                let code = u16::from_le_bytes([body[opt], body[opt + 1]]);
                let len = usize::from(u16::from_le_bytes([body[opt + 2], body[opt + 3]]));
                if code == OPT_END || opt + 4 + len > body.len() {
                    break;
                }
                if code == OPT_EPB_FLAGS && len == 4 && le32(body, opt + 4) & 0b11 == 2 {
                    direction = Direction::Outbound;
                }
                opt += 4 + len.next_multiple_of(4);
            }
            records.push(Record {
                time_us,
                direction,
                data: packet,
            });
        }
        at += total;
    }
    Ok(records)
}

/// Wraps a [`Link`] and records every send and receive to a [`CaptureWriter`].
///
/// Writing is synchronous; point it at a file or a `Vec<u8>`, not at something slow. A write
/// error stops the capture (see [`Capture::error`]) but never the link.
#[derive(Debug)]
pub struct Capture<L, W: Write> {
    inner: L,
    writer: Option<CaptureWriter<W>>,
    error: Option<io::Error>,
    wall_start: u64,
    start: Instant,
}

impl<L: Link, W: Write + Send> Capture<L, W> {
    /// Starts recording `inner` into `out`.
    pub fn new(inner: L, out: W) -> io::Result<Self> {
        let writer = CaptureWriter::new(out, &inner.info().to_string())?;
        let wall_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_micros() as u64;
        Ok(Self {
            inner,
            writer: Some(writer),
            error: None,
            wall_start,
            start: Instant::now(),
        })
    }

    /// The error that stopped the capture, if one did.
    pub fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Stops recording and returns the link and the writer (flushed).
    pub fn into_parts(mut self) -> (L, Option<W>) {
        let out = self
            .writer
            .take()
            .and_then(|mut w| w.flush().ok().map(|()| w.into_inner()));
        (self.inner, out)
    }

    fn record(&mut self, direction: Direction, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        let record = Record {
            time_us: self.wall_start + self.start.elapsed().as_micros() as u64,
            direction,
            data: Bytes::copy_from_slice(data),
        };
        if let Err(e) = w.write(&record) {
            self.error = Some(e);
            self.writer = None;
        }
    }
}

impl<L: Link, W: Write + Send + Unpin> Link for Capture<L, W> {
    fn info(&self) -> &LinkInfo {
        self.inner.info()
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        let r = self.inner.poll_send(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.record(Direction::Outbound, &buf[..n]);
        }
        r
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if let Some(w) = self.writer.as_mut()
            && let Err(e) = w.flush()
        {
            self.error = Some(e);
            self.writer = None;
        }
        self.inner.poll_flush(cx)
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        let before = buf.len();
        let r = self.inner.poll_recv(cx, buf);
        if let Poll::Ready(Ok(_)) = r {
            let data = buf[before..].to_vec();
            self.record(Direction::Inbound, &data);
        }
        r
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        let r = self.inner.poll_close(cx);
        if r.is_ready()
            && let Some(w) = self.writer.as_mut()
        {
            let _ = w.flush();
        }
        r
    }
}

/// A link that plays back the inbound side of a capture: each receive yields the next inbound
/// record (at its recorded pace when [`ReplayLink::paced`] is used), and sends are kept so a
/// test can compare them with the recorded outbound traffic.
#[derive(Debug)]
pub struct ReplayLink {
    info: LinkInfo,
    inbound: std::collections::VecDeque<(Duration, Bytes)>,
    start: Instant,
    paced: bool,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    sent: Vec<u8>,
}

impl ReplayLink {
    /// Replays `records` as fast as the receiver asks.
    pub fn new(records: &[Record], delivery: Delivery) -> Self {
        let first = records.first().map_or(0, |r| r.time_us);
        Self {
            info: LinkInfo::new(LinkKind::Memory, delivery, 65536).with_address("replay"),
            inbound: records
                .iter()
                .filter(|r| r.direction == Direction::Inbound)
                .map(|r| (Duration::from_micros(r.time_us - first), r.data.clone()))
                .collect(),
            start: Instant::now(),
            paced: false,
            timer: None,
            sent: Vec::new(),
        }
    }

    /// Replays at the recorded pace: each record becomes available as long after the replay
    /// started as it came after the capture's first record.
    #[must_use]
    pub fn paced(mut self) -> Self {
        self.paced = true;
        self.start = Instant::now();
        self
    }

    /// Everything sent to the replay so far.
    pub fn sent(&self) -> &[u8] {
        &self.sent
    }
}

impl Link for ReplayLink {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, _: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        self.sent.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        let Some((at, _)) = self.inbound.front() else {
            return Poll::Ready(Err(LinkError::Closed));
        };
        if self.paced {
            let due = self.start + *at;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            if Future::poll(timer.as_mut(), cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
        }
        let (_, data) = self.inbound.pop_front().expect("checked above");
        buf.extend_from_slice(&data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }
}
