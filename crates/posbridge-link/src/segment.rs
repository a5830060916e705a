//! Segmentation of messages into packets, for packet links (USB bulk, or any transport that
//! keeps packet boundaries).
//!
//! Each packet starts with one header byte:
//!
//! ```text
//! bit 7  START  first packet of a message
//! bit 6  END    last packet of a message
//! bits 0-5      packet counter, +1 (mod 64) for every packet sent on the link
//! ```
//!
//! followed by up to MTU − 1 bytes of the message. The counter lets the receiver notice a lost or
//! repeated packet at once and drop the damaged message instead of handing on a message with a
//! hole in it.

use std::fmt;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use crate::{Delivery, Link, LinkError, LinkInfo};

const START: u8 = 0x80;
const END: u8 = 0x40;
const COUNTER: u8 = 0x3F;

/// Splits messages into packets of at most `mtu` bytes.
#[derive(Clone, Debug)]
pub struct Segmenter {
    mtu: usize,
    counter: u8,
}

impl Segmenter {
    /// A segmenter for packets of at most `mtu` bytes (at least 2: the header and one byte).
    pub fn new(mtu: usize) -> Result<Self, SegmentError> {
        if mtu < 2 {
            return Err(SegmentError::MtuTooSmall(mtu));
        }
        Ok(Self { mtu, counter: 0 })
    }

    /// The packets of `message`, in order, each appended to `out`. An empty message is one
    /// packet with START and END set.
    pub fn segment(&mut self, message: &[u8], out: &mut Vec<Bytes>) {
        let room = self.mtu - 1;
        let count = message.len().div_ceil(room).max(1);
        let mut chunks = message.chunks(room);
        for i in 0..count {
            let chunk = chunks.next().unwrap_or(&[]);
            let mut header = self.counter & COUNTER;
            if i == 0 {
                header |= START;
            }
            if i + 1 == count {
                header |= END;
            }
            self.counter = self.counter.wrapping_add(1) & COUNTER;
            let mut packet = BytesMut::with_capacity(1 + chunk.len());
            packet.extend_from_slice(&[header]);
            packet.extend_from_slice(chunk);
            out.push(packet.freeze());
        }
    }
}

/// A packet the reassembler could not use, or a segmenter that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentError {
    /// An MTU below 2 leaves no room for data.
    MtuTooSmall(usize),
    /// A packet without even a header byte.
    EmptyPacket,
    /// A continuation packet arrived when no message had started (its start was lost); the
    /// packet is dropped.
    NoStart,
    /// A message grew past the reassembly limit; it is dropped.
    TooLong {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MtuTooSmall(m) => write!(f, "an MTU of {m} leaves no room for data"),
            Self::EmptyPacket => f.write_str("empty packet"),
            Self::NoStart => {
                f.write_str("continuation packet without a start (packets were lost); dropped")
            }
            Self::TooLong { max } => write!(f, "message longer than {max} bytes; dropped"),
        }
    }
}

impl std::error::Error for SegmentError {}

/// What a [`Reassembler`] has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Messages completed.
    pub messages: u64,
    /// Partial messages dropped because a packet counter jumped or a start came too early.
    pub lost_messages: u64,
    /// Packets dropped because they continued a message that had not started, or were empty.
    pub dropped_packets: u64,
}

/// Rebuilds messages from packets made by a [`Segmenter`]. A lost packet costs the message it
/// belonged to, never the next one.
#[derive(Clone, Debug)]
pub struct Reassembler {
    max_message: usize,
    buf: BytesMut,
    expected: Option<u8>,
    in_message: bool,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            buf: BytesMut::new(),
            expected: None,
            in_message: false,
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters of what it has seen.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Takes one packet. Returns a whole message when this packet completes one.
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<Bytes>, SegmentError> {
        let Some((&header, data)) = packet.split_first() else {
            self.stats.dropped_packets += 1;
            return Err(SegmentError::EmptyPacket);
        };
        let counter = header & COUNTER;
        if self.in_message && self.expected != Some(counter) {
            self.drop_partial();
        }
        self.expected = Some((counter + 1) & COUNTER);
        if header & START != 0 {
            if self.in_message {
                self.drop_partial();
            }
            self.in_message = true;
        } else if !self.in_message {
            self.stats.dropped_packets += 1;
            return Err(SegmentError::NoStart);
        }
        if self.buf.len() + data.len() > self.max_message {
            self.drop_partial();
            return Err(SegmentError::TooLong {
                max: self.max_message,
            });
        }
        self.buf.extend_from_slice(data);
        if header & END != 0 {
            self.in_message = false;
            self.stats.messages += 1;
            return Ok(Some(self.buf.split().freeze()));
        }
        Ok(None)
    }

    fn drop_partial(&mut self) {
        self.buf.clear();
        self.in_message = false;
        self.stats.lost_messages += 1;
    }
}

/// Makes a packet link take and deliver messages of any size: each send is segmented into
/// packets, and received packets are reassembled into the messages that were sent. The result
/// is a stream-like link ([`Delivery::Stream`]) whose receives hand over whole messages.
#[derive(Debug)]
pub struct Segmented<L> {
    inner: L,
    info: LinkInfo,
    segmenter: Segmenter,
    reassembler: Reassembler,
    outbox: std::collections::VecDeque<Bytes>,
    scratch: BytesMut,
}

impl<L: Link> Segmented<L> {
    /// Wraps a packet link; received messages longer than `max_message` are dropped.
    pub fn new(inner: L, max_message: usize) -> Result<Self, SegmentError> {
        let mtu = inner.info().mtu;
        let segmenter = Segmenter::new(mtu)?;
        let mut info = inner.info().clone();
        info.delivery = Delivery::Stream;
        info.mtu = max_message;
        Ok(Self {
            inner,
            info,
            segmenter,
            reassembler: Reassembler::new(max_message),
            outbox: std::collections::VecDeque::new(),
            scratch: BytesMut::new(),
        })
    }

    /// The reassembler's counters (lost messages show link trouble).
    pub fn stats(&self) -> ReassemblyStats {
        self.reassembler.stats()
    }

    /// The wrapped packet link.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        while let Some(packet) = self.outbox.front() {
            match self.inner.poll_send(cx, packet) {
                Poll::Ready(Ok(_)) => {
                    self.outbox.pop_front();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<L: Link> Link for Segmented<L> {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        // One message at a time: the previous one must be handed to the link first.
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let mut packets = Vec::new();
        self.segmenter.segment(buf, &mut packets);
        self.outbox.extend(packets);
        // Start sending at once; what does not go now goes on the next poll.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => self.inner.poll_flush(cx),
            other => other,
        }
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        loop {
            self.scratch.clear();
            match self.inner.poll_recv(cx, &mut self.scratch) {
                Poll::Ready(Ok(_)) => {
                    // Errors here are counted in the stats; the frame layer above resynchronises.
                    if let Ok(Some(message)) = self.reassembler.push(&self.scratch) {
                        buf.extend_from_slice(&message);
                        return Poll::Ready(Ok(message.len()));
                    }
                }
                other => return other,
            }
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => self.inner.poll_close(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(mtu: usize, messages: &[&[u8]]) -> Vec<Bytes> {
        let mut s = Segmenter::new(mtu).unwrap();
        let mut out = Vec::new();
        for m in messages {
            s.segment(m, &mut out);
        }
        out
    }

    #[test]
    fn round_trip_at_ble_mtus() {
        let message: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for mtu in [2usize, 20, 23, 244, 512] {
            let ps = packets(mtu, &[&message, b"", b"x"]);
            assert!(ps.iter().all(|p| p.len() <= mtu));
            let mut r = Reassembler::new(4096);
            let out: Vec<Bytes> = ps.iter().filter_map(|p| r.push(p).unwrap()).collect();
            assert_eq!(
                out,
                vec![
                    Bytes::from(message.clone()),
                    Bytes::new(),
                    Bytes::from_static(b"x")
                ]
            );
            assert_eq!(r.stats().lost_messages, 0);
        }
    }

    #[test]
    fn a_lost_packet_costs_only_its_message() {
        let ps = packets(10, &[&[1u8; 30], &[2u8; 30], &[3u8; 5]]);
        // Packets: message 1 = 0..4, message 2 = 4..8, message 3 = 8.
        for lost in 0..ps.len() {
            let mut r = Reassembler::new(4096);
            let mut out = Vec::new();
            for (i, p) in ps.iter().enumerate() {
                if i != lost
                    && let Ok(Some(m)) = r.push(p)
                {
                    out.push(m[0]);
                }
            }
            let hit = if lost < 4 {
                1
            } else if lost < 8 {
                2
            } else {
                3
            };
            let expect: Vec<u8> = [1u8, 2, 3].into_iter().filter(|&m| m != hit).collect();
            assert_eq!(out, expect, "lost packet {lost}");
        }
    }

    #[test]
    fn limits_and_bad_packets() {
        assert_eq!(Segmenter::new(1).unwrap_err(), SegmentError::MtuTooSmall(1));
        let mut r = Reassembler::new(8);
        assert_eq!(r.push(&[]), Err(SegmentError::EmptyPacket));
        assert_eq!(r.push(&[0x05, 1, 2]), Err(SegmentError::NoStart));
        let ps = packets(5, &[&[9u8; 12]]);
        let results: Vec<_> = ps.iter().map(|p| r.push(p)).collect();
        assert!(results.contains(&Err(SegmentError::TooLong { max: 8 })));
        // It recovers for the next message.
        let mut s = Segmenter::new(5).unwrap();
        let mut out = Vec::new();
        s.segment(b"ok", &mut out);
        assert_eq!(r.push(&out[0]).unwrap().unwrap(), Bytes::from_static(b"ok"));
    }
}
