//! Reliable, ordered delivery of data and handshake frames over a link that may lose, damage,
//! duplicate or reorder them: sequence numbers, cumulative acks, naks on gaps, retransmission on
//! an adaptive timeout with exponential back-off, and duplicate suppression.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use posbridge_wire::{Frame, FrameCodec, FrameFlags, FrameType};

/// Settings of reliable delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReliabilityConfig {
    pub(crate) window: u32,
    pub(crate) initial_rto: Duration,
    pub(crate) min_rto: Duration,
    pub(crate) max_rto: Duration,
    pub(crate) max_retransmits: u32,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        Self {
            window: 16,
            initial_rto: Duration::from_millis(500),
            min_rto: Duration::from_millis(100),
            max_rto: Duration::from_secs(4),
            max_retransmits: 8,
        }
    }
}

impl ReliabilityConfig {
    /// Frames in flight before the sender waits for an ack (default 16). 1 is stop-and-wait,
    /// right for slow serial links and terminals with small buffers.
    pub fn set_window(&mut self, frames: u32) -> &mut Self {
        self.window = frames.clamp(1, 1024);
        self
    }

    /// The retransmission timeout before the first round-trip measurement (default 500 ms), and
    /// the bounds the measured timeout stays within (default 100 ms to 4 s).
    pub fn set_rto(&mut self, initial: Duration, min: Duration, max: Duration) -> &mut Self {
        self.min_rto = min.max(Duration::from_millis(1));
        self.max_rto = max.max(self.min_rto);
        self.initial_rto = initial.clamp(self.min_rto, self.max_rto);
        self
    }

    /// Retransmissions of one frame before the link is declared dead (default 8).
    pub fn set_max_retransmits(&mut self, n: u32) -> &mut Self {
        self.max_retransmits = n.max(1);
        self
    }
}

struct Outgoing {
    seq: u32,
    bytes: Bytes,
    sent_at: Option<Instant>,
    retransmitted: bool,
    resend: bool,
}

/// What became of a received reliable frame.
#[derive(Debug)]
pub(crate) enum Offer {
    /// The next frame in order: process it, then call [`Reliable::delivered`] (or
    /// [`Reliable::rejected`] if it failed authentication).
    InOrder(Frame),
    /// Already delivered (a retransmission or a duplicate): dropped, re-acked.
    Duplicate,
    /// Ahead of a gap: kept until the gap fills (or dropped if too far ahead).
    Ahead,
}

/// Counters of reliable delivery, for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReliabilityStats {
    /// Reliable frames sent for the first time.
    pub sent: u64,
    /// Retransmissions.
    pub retransmitted: u64,
    /// Duplicates received and dropped.
    pub duplicates: u64,
    /// Frames received ahead of a gap.
    pub out_of_order: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Naks sent.
    pub naks_sent: u64,
}

/// Frames received ahead of a gap before the gap is nakked again.
const NAK_REPEAT: u32 = 4;

/// Reliable delivery, both directions of one session.
pub(crate) struct Reliable {
    config: ReliabilityConfig,
    codec: FrameCodec,
    // Sender.
    next_seq: u32,
    unacked: VecDeque<Outgoing>,
    queued: VecDeque<Outgoing>,
    rto: Duration,
    srtt: Option<Duration>,
    rttvar: Duration,
    timeouts: u32,
    deadline: Option<Instant>,
    // Receiver.
    expected: u32,
    ahead: BTreeMap<u32, Frame>,
    ack_due: bool,
    nak_due: bool,
    last_nak: Option<u32>,
    ahead_since_nak: u32,
    pub(crate) stats: ReliabilityStats,
}

/// The link failed: a frame went unacknowledged through every retransmission.
#[derive(Debug)]
pub(crate) struct Unreachable;

impl Reliable {
    pub(crate) fn new(config: ReliabilityConfig, codec: FrameCodec) -> Self {
        Self {
            config,
            codec,
            next_seq: 0,
            unacked: VecDeque::new(),
            queued: VecDeque::new(),
            rto: config.initial_rto,
            srtt: None,
            rttvar: Duration::ZERO,
            timeouts: 0,
            deadline: None,
            expected: 0,
            ahead: BTreeMap::new(),
            ack_due: false,
            nak_due: false,
            last_nak: None,
            ahead_since_nak: 0,
            stats: ReliabilityStats::default(),
        }
    }

    /// The sequence number the next reliable frame gets.
    pub(crate) fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Queues a whole encoded frame that was built with [`next_seq`](Self::next_seq).
    pub(crate) fn push(&mut self, bytes: Bytes) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.queued.push_back(Outgoing {
            seq,
            bytes,
            sent_at: None,
            retransmitted: false,
            resend: false,
        });
    }

    /// Whether everything queued has been acknowledged.
    pub(crate) fn is_idle(&self) -> bool {
        self.unacked.is_empty() && self.queued.is_empty()
    }

    /// Frames sent and not yet acknowledged, plus frames waiting for window space.
    pub(crate) fn in_flight(&self) -> usize {
        self.unacked.len() + self.queued.len()
    }

    fn control(&mut self, frame_type: FrameType, seq: u32) -> Bytes {
        let mut out = BytesMut::with_capacity(posbridge_wire::FRAME_OVERHEAD);
        self.codec
            .encode_parts(frame_type, FrameFlags::NONE, seq, &[], &mut out)
            .expect("an empty payload always fits");
        out.freeze()
    }

    /// The next bytes to write: an ack or nak first, then a retransmission, then new frames while
    /// the window allows.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.nak_due {
            self.nak_due = false;
            self.stats.naks_sent += 1;
            return Some(self.control(FrameType::Nak, self.expected));
        }
        if self.ack_due {
            self.ack_due = false;
            self.stats.acks_sent += 1;
            return Some(self.control(FrameType::Ack, self.expected.wrapping_sub(1)));
        }
        if let Some(o) = self.unacked.iter_mut().find(|o| o.resend) {
            o.resend = false;
            o.retransmitted = true;
            o.sent_at = Some(now);
            self.stats.retransmitted += 1;
            let bytes = o.bytes.clone();
            self.deadline.get_or_insert(now + self.rto);
            return Some(bytes);
        }
        if self.unacked.len() < self.config.window as usize
            && let Some(mut o) = self.queued.pop_front()
        {
            o.sent_at = Some(now);
            let bytes = o.bytes.clone();
            self.unacked.push_back(o);
            self.stats.sent += 1;
            self.deadline.get_or_insert(now + self.rto);
            return Some(bytes);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Retransmits what is unacknowledged if the timer ran out; fails once the configured number
    /// of timeouts passed in a row without progress.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), Unreachable> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        if self.unacked.is_empty() {
            self.deadline = None;
            return Ok(());
        }
        if self.timeouts >= self.config.max_retransmits {
            return Err(Unreachable);
        }
        self.timeouts += 1;
        // Everything in flight is resent: on a link that lost one frame it has often lost more,
        // and the receiver keeps frames that arrive ahead of a gap, so nothing is wasted twice.
        for o in &mut self.unacked {
            o.resend = true;
        }
        self.rto = (self.rto * 2).min(self.config.max_rto);
        self.deadline = Some(now + self.rto);
        Ok(())
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        // RFC 6298, with alpha 1/8 and beta 1/4.
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.rto = (srtt + self.rttvar * 4).clamp(self.config.min_rto, self.config.max_rto);
    }

    /// The peer acknowledged everything up to and including `seq`.
    pub(crate) fn on_ack(&mut self, seq: u32, now: Instant) {
        let Some(front) = self.unacked.front() else {
            return;
        };
        // Only acks for frames in flight count (serial arithmetic, so wrapping is harmless).
        let span = seq.wrapping_sub(front.seq);
        if span as usize >= self.unacked.len() {
            return;
        }
        let mut sample = None;
        for _ in 0..=span {
            let o = self.unacked.pop_front().expect("span within unacked");
            // Karn's rule: only frames sent once give a round-trip sample.
            if !o.retransmitted
                && let Some(at) = o.sent_at
            {
                sample = Some(now.saturating_duration_since(at));
            }
        }
        if let Some(rtt) = sample {
            self.sample_rtt(rtt);
        }
        self.timeouts = 0;
        self.deadline = (!self.unacked.is_empty()).then(|| now + self.rto);
    }

    /// The peer is missing `seq`: resend it now (once per timeout period).
    pub(crate) fn on_nak(&mut self, seq: u32, now: Instant) {
        // A nak for seq also acknowledges everything before it.
        self.on_ack(seq.wrapping_sub(1), now);
        if let Some(o) = self.unacked.iter_mut().find(|o| o.seq == seq)
            && o.sent_at
                .is_some_and(|at| now.saturating_duration_since(at) >= self.rto / 2)
        {
            o.resend = true;
        }
    }

    /// A reliable frame arrived.
    pub(crate) fn offer(&mut self, frame: Frame) -> Offer {
        let ahead_by = frame.seq.wrapping_sub(self.expected);
        if ahead_by == 0 {
            return Offer::InOrder(frame);
        }
        if ahead_by > u32::MAX / 2 {
            // Behind: already delivered.
            self.stats.duplicates += 1;
            self.ack_due = true;
            return Offer::Duplicate;
        }
        self.stats.out_of_order += 1;
        if ahead_by <= self.config.window.max(16) * 2 {
            self.ahead.entry(frame.seq).or_insert(frame);
        }
        // Nak a gap when it appears, and again while frames keep arriving ahead of it (the
        // retransmission was lost too); the sender ignores naks faster than half its timeout.
        self.ahead_since_nak += 1;
        if self.last_nak != Some(self.expected) || self.ahead_since_nak >= NAK_REPEAT {
            self.last_nak = Some(self.expected);
            self.ahead_since_nak = 0;
            self.nak_due = true;
        }
        Offer::Ahead
    }

    /// The in-order frame was processed: acknowledge it.
    pub(crate) fn delivered(&mut self) {
        self.expected = self.expected.wrapping_add(1);
        self.ack_due = true;
    }

    /// The in-order frame failed authentication: it is dropped and not acknowledged, so the
    /// sender's genuine frame (if there is one) is retransmitted.
    pub(crate) fn rejected(&mut self) {}

    /// A buffered frame that is now next in order, if any.
    pub(crate) fn next_buffered(&mut self) -> Option<Frame> {
        // Drop anything left behind (it can only be a duplicate now).
        while let Some((&seq, _)) = self.ahead.first_key_value() {
            if seq.wrapping_sub(self.expected) > u32::MAX / 2 {
                self.ahead.pop_first();
            } else {
                break;
            }
        }
        self.ahead.remove(&self.expected)
    }
}
