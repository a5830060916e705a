//! A seeded fault injector that wraps any [`Link`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::{Instant, Sleep};

use crate::{Delivery, Link, LinkError, LinkInfo};

/// Faults applied to one direction of a link. All probabilities are in `0.0..=1.0`; the default
/// injects nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Packet links: probability that a packet is lost. Stream links: probability that a byte
    /// is lost.
    pub drop: f64,
    /// Probability that a byte has one bit flipped.
    pub flip: f64,
    /// Probability that a packet (or a stream write) arrives twice.
    pub duplicate: f64,
    /// Packet links only: probability that a packet is held back by [`reorder_delay`]
    /// so that packets sent after it overtake it.
    ///
    /// [`reorder_delay`]: Self::reorder_delay
    pub reorder: f64,
    /// How long a reordered packet is held back (default when zero: 20 ms).
    pub reorder_delay: Duration,
    /// Fixed latency added to everything.
    pub delay: Duration,
    /// Random extra latency, uniform in `0..jitter` (never reorders a stream).
    pub jitter: Duration,
    /// Emulated line speed in bits per second, 10 bits per byte as on an 8N1 serial line
    /// (9600 baud = 960 bytes/s). Bytes then arrive no faster than the line could carry them,
    /// in pieces of at most 16 bytes on stream links.
    pub bits_per_second: Option<u64>,
}

impl Faults {
    /// Whether these faults change nothing (the injector then passes data straight through).
    pub fn is_none(&self) -> bool {
        self.drop == 0.0
            && self.flip == 0.0
            && self.duplicate == 0.0
            && self.reorder == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.bits_per_second.is_none()
    }

    /// A serial line of `baud` bits per second (8N1) with nothing else wrong with it.
    pub fn serial_line(baud: u64) -> Self {
        Self {
            bits_per_second: Some(baud),
            ..Self::default()
        }
    }
}

/// What to inject, and the seed that makes a run repeatable. Print the seed of a failing test so
/// that it can be replayed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Seeds the random choices.
    pub seed: u64,
    /// Faults on data this side sends.
    pub send: Faults,
    /// Faults on data this side receives.
    pub recv: Faults,
    /// Cut the link once this many bytes have passed (both directions together).
    pub cut_after_bytes: Option<u64>,
    /// Cut the link this long after the injector was made.
    pub cut_after: Option<Duration>,
}

/// Counters of what the injector did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Bytes passed on, both directions.
    pub bytes: u64,
    /// Packets or bytes dropped.
    pub dropped: u64,
    /// Bits flipped.
    pub flipped: u64,
    /// Packets or writes duplicated.
    pub duplicated: u64,
    /// Packets held back to be reordered.
    pub reordered: u64,
    /// Whether the link has been cut.
    pub cut: bool,
}

/// A small seeded generator (SplitMix64): small, fast, and the same sequence on every platform
/// and version — what the fault injector, the session harness and the ZVT schedules draw their
/// schedules from, so a seed repeats a run.
#[derive(Clone, Debug)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A number in `0..n` (0 when `n` is 0, drawing nothing).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// One direction: faults, the queue of data waiting for its time, and the line's state.
#[derive(Debug)]
struct Pipe {
    faults: Faults,
    rng: SeededRng,
    packet: bool,
    queue: BTreeMap<(Instant, u64), Bytes>,
    /// Bytes in `queue`, kept as items come and go (not summed on every send).
    queued: usize,
    order: u64,
    busy_until: Instant,
    last_due: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Pipe {
    fn new(faults: Faults, seed: u64, packet: bool) -> Self {
        let now = Instant::now();
        Self {
            faults,
            rng: SeededRng(seed),
            packet,
            queue: BTreeMap::new(),
            queued: 0,
            order: 0,
            busy_until: now,
            last_due: now,
            timer: None,
        }
    }

    fn passthrough(&self) -> bool {
        self.faults.is_none()
    }

    /// Applies the faults to `data` and queues what survives.
    fn schedule(&mut self, data: &[u8], stats: &mut FaultStats) {
        let f = &self.faults;
        let mut bytes = BytesMut::with_capacity(data.len());
        if self.packet {
            if self.rng.chance(f.drop) {
                stats.dropped += 1;
                return;
            }
            bytes.extend_from_slice(data);
        } else {
            for &b in data {
                if self.rng.chance(f.drop) {
                    stats.dropped += 1;
                } else {
                    bytes.extend_from_slice(&[b]);
                }
            }
        }
        if f.flip > 0.0 {
            for b in bytes.iter_mut() {
                if self.rng.chance(f.flip) {
                    *b ^= 1 << self.rng.below(8);
                    stats.flipped += 1;
                }
            }
        }
        let bytes = bytes.freeze();
        let copies = if self.rng.chance(f.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.enqueue(bytes.clone(), stats);
        }
    }

    fn enqueue(&mut self, bytes: Bytes, stats: &mut FaultStats) {
        if bytes.is_empty() && !self.packet {
            return;
        }
        let now = Instant::now();
        let jitter = Duration::from_nanos(self.rng.below(self.faults.jitter.as_nanos() as u64));
        let mut ready = now + self.faults.delay + jitter;
        if !self.packet {
            // A stream never reorders: nothing arrives before what was sent earlier.
            ready = ready.max(self.last_due);
        }
        let reorder = self.packet && self.rng.chance(self.faults.reorder);
        if reorder {
            stats.reordered += 1;
            let hold = if self.faults.reorder_delay.is_zero() {
                Duration::from_millis(20)
            } else {
                self.faults.reorder_delay
            };
            ready += hold;
        }
        let pieces: Vec<Bytes> = match (self.faults.bits_per_second, self.packet) {
            (Some(_), false) => bytes.chunks(16).map(|c| bytes.slice_ref(c)).collect(),
            _ => vec![bytes],
        };
        for piece in pieces {
            let mut due = ready;
            if let Some(bps) = self.faults.bits_per_second {
                let start = ready.max(self.busy_until);
                let nanos = piece.len() as u128 * 10 * 1_000_000_000 / u128::from(bps.max(1));
                due = start + Duration::from_nanos(nanos as u64);
                self.busy_until = due;
            }
            if !reorder {
                self.last_due = self.last_due.max(due);
            }
            self.order += 1;
            self.queued += piece.len();
            self.queue.insert((due, self.order), piece);
        }
    }

    /// The first queued item if it is due; otherwise arms the timer for it.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some((&(due, order), _)) = self.queue.first_key_value() else {
            return Poll::Ready(None);
        };
        if due <= Instant::now() {
            self.timer = None;
            return Poll::Ready(self.take(due, order));
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(self.take(due, order))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn requeue_front(&mut self, bytes: Bytes) {
        // Put back the unsent rest of an item, ahead of everything else.
        let key = self
            .queue
            .first_key_value()
            .map(|(&(due, _), _)| (due.min(Instant::now()), 0))
            .unwrap_or((Instant::now(), 0));
        self.queued += bytes.len();
        self.queue.insert(key, bytes);
    }

    fn take(&mut self, due: Instant, order: u64) -> Option<Bytes> {
        let item = self.queue.remove(&(due, order));
        self.queued -= item.as_ref().map_or(0, Bytes::len);
        item
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.queued = 0;
    }
}

/// How much a sender may have queued in the injector before `poll_send` waits.
const SEND_QUEUE_LIMIT: usize = 256 * 1024;

/// Wraps a [`Link`] and damages its traffic as [`FaultConfig`] says, reproducibly from the
/// seed: drops, bit flips, duplicates, delays and jitter, reordering (packet links), a line-speed
/// limit that emulates a serial port, and a cut after so many bytes or so much time.
///
/// Time is tokio's clock, so tests under `tokio::time::pause()` run a slow serial line or a long
/// delay in no real time.
#[derive(Debug)]
pub struct FaultInjector<L> {
    inner: L,
    send: Pipe,
    recv: Pipe,
    scratch: BytesMut,
    stats: FaultStats,
    cut_after_bytes: Option<u64>,
    cut_timer: Option<Pin<Box<Sleep>>>,
    inner_closed: bool,
}

impl<L: Link> FaultInjector<L> {
    /// Wraps `inner`.
    pub fn new(inner: L, config: FaultConfig) -> Self {
        let packet = inner.info().delivery == Delivery::Packet;
        let seed = config.seed;
        Self {
            send: Pipe::new(config.send, seed ^ 0x5E4D_0000_0000_0001, packet),
            recv: Pipe::new(config.recv, seed ^ 0x2EC7_0000_0000_0002, packet),
            inner,
            scratch: BytesMut::new(),
            stats: FaultStats::default(),
            cut_after_bytes: config.cut_after_bytes,
            cut_timer: config
                .cut_after
                .map(|d| Box::pin(tokio::time::sleep_until(Instant::now() + d))),
            inner_closed: false,
        }
    }

    /// What the injector has done so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped link.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// Cuts the link now: queued data is lost, the inner link is closed, and every later call
    /// fails with [`LinkError::Cut`].
    pub fn cut(&mut self) {
        if !self.stats.cut {
            self.stats.cut = true;
            self.send.clear();
            self.recv.clear();
            // Best effort: let the peer of an in-memory or TCP link notice.
            let waker = std::task::Waker::noop();
            let _ = self.inner.poll_close(&mut Context::from_waker(waker));
        }
    }

    fn check_cut(&mut self, cx: &mut Context<'_>) -> Result<(), LinkError> {
        if let Some(t) = self.cut_timer.as_mut()
            && t.as_mut().poll(cx).is_ready()
        {
            self.cut_timer = None;
            self.cut();
        }
        if self.stats.cut {
            Err(LinkError::Cut)
        } else {
            Ok(())
        }
    }

    /// Counts `n` bytes through; returns how many may pass before the cut.
    fn admit(&mut self, n: usize) -> usize {
        match self.cut_after_bytes {
            Some(limit) => {
                let room = limit.saturating_sub(self.stats.bytes);
                let pass = (n as u64).min(room) as usize;
                self.stats.bytes += pass as u64;
                pass
            }
            None => {
                self.stats.bytes += n as u64;
                n
            }
        }
    }

    fn cut_if_exhausted(&mut self) {
        if self
            .cut_after_bytes
            .is_some_and(|limit| self.stats.bytes >= limit)
        {
            self.cut();
        }
    }

    /// Moves due data from the send queue into the inner link.
    fn poll_drive_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        loop {
            let item = match self.send.poll_due(cx) {
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            };
            match self.inner.poll_send(cx, &item) {
                Poll::Ready(Ok(n)) if n < item.len() => self.send.requeue_front(item.slice(n..)),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.send.requeue_front(item);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<L: Link> Link for FaultInjector<L> {
    fn info(&self) -> &LinkInfo {
        self.inner.info()
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        self.check_cut(cx)?;
        if self.send.passthrough() && self.send.queue.is_empty() {
            let pass = self.admit(buf.len());
            let result = match self.inner.poll_send(cx, &buf[..pass]) {
                Poll::Ready(Ok(n)) => {
                    // Give back what the inner link did not take.
                    self.stats.bytes -= (pass - n) as u64;
                    Poll::Ready(Ok(n))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.stats.bytes -= pass as u64;
                    Poll::Pending
                }
            };
            self.cut_if_exhausted();
            return result;
        }
        if let Poll::Ready(Err(e)) = self.poll_drive_send(cx) {
            return Poll::Ready(Err(e));
        }
        if self.send.queued >= SEND_QUEUE_LIMIT {
            return Poll::Pending;
        }
        let take = if self.send.packet {
            buf.len()
        } else {
            buf.len().min(self.inner.info().mtu.max(1))
        };
        let pass = self.admit(take);
        self.send.schedule(&buf[..pass], &mut self.stats);
        self.cut_if_exhausted();
        if let Poll::Ready(Err(e)) = self.poll_drive_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.check_cut(cx)?;
        match self.poll_drive_send(cx) {
            Poll::Ready(Ok(())) => self.inner.poll_flush(cx),
            other => other,
        }
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        self.check_cut(cx)?;
        // Keep queued sends moving while the caller waits to receive.
        if let Poll::Ready(Err(e)) = self.poll_drive_send(cx) {
            return Poll::Ready(Err(e));
        }
        if self.recv.passthrough() && self.recv.queue.is_empty() && self.cut_after_bytes.is_none() {
            // Nothing to inject on this side: straight through, without a copy.
            let r = self.inner.poll_recv(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                self.stats.bytes += n as u64;
            }
            return r;
        }
        loop {
            match self.recv.poll_due(cx) {
                Poll::Ready(Some(item)) => {
                    buf.extend_from_slice(&item);
                    return Poll::Ready(Ok(item.len()));
                }
                Poll::Ready(None) if self.inner_closed => {
                    return Poll::Ready(Err(LinkError::Closed));
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
            if self.inner_closed {
                return Poll::Pending;
            }
            self.scratch.clear();
            match self.inner.poll_recv(cx, &mut self.scratch) {
                Poll::Ready(Ok(_)) => {
                    let pass = self.admit(self.scratch.len());
                    let data = self.scratch.split_to(pass);
                    if self.recv.passthrough() && self.recv.queue.is_empty() {
                        buf.extend_from_slice(&data);
                        self.cut_if_exhausted();
                        if data.is_empty() && self.stats.cut {
                            return Poll::Ready(Err(LinkError::Cut));
                        }
                        return Poll::Ready(Ok(data.len()));
                    }
                    self.recv.schedule(&data, &mut self.stats);
                    self.cut_if_exhausted();
                    self.check_cut(cx)?;
                }
                Poll::Ready(Err(LinkError::Closed)) => self.inner_closed = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.check_cut(cx)?;
        match self.poll_drive_send(cx) {
            Poll::Ready(Ok(())) => self.inner.poll_close(cx),
            other => other,
        }
    }
}
