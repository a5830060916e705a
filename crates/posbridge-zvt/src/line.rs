//! ZVT on the wire, sans-IO: [`Line`] turns APDUs into bytes and bytes into APDUs for either
//! framing — raw APDUs on TCP, `DLE STX` frames on serial lines, where every frame is answered
//! `ACK` or `NAK` and a frame without an `ACK` in [`SERIAL_ACK_TIMEOUT`] (or with a `NAK`) is sent
//! again, [`SERIAL_ATTEMPTS`] times in all.
//!
//! The caller moves the bytes and keeps the time, in the quinn style: [`Line::handle_input`] with
//! what arrived, [`Line::poll_transmit`] for what to write, [`Line::poll_timeout`] and
//! [`Line::handle_timeout`] for the resend timer, [`Line::poll_apdu`] for what the peer sent.
//! The tokio driver is `transport::ZvtLink` (feature `io`); the ZVT schedules drive it under
//! simulated time.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::BytesMut;

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

/// Why a [`Line`] can carry nothing more.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The bytes are not ZVT (on TCP a bad length cannot be skipped: the connection is lost).
    Codec(ZvtError),
    /// A serial frame was not acknowledged after [`SERIAL_ATTEMPTS`] sends.
    NotAcknowledged,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Codec(e) => write!(f, "not ZVT: {e}"),
            Self::NotAcknowledged => write!(
                f,
                "the serial line did not acknowledge a ZVT frame after {SERIAL_ATTEMPTS} sends (check cable, baud rate and 8N2)"
            ),
        }
    }
}

impl std::error::Error for LineError {}

/// Our serial frame waiting for the line's answer.
#[derive(Debug)]
struct InFlight {
    frame: Vec<u8>,
    /// Sends so far.
    sends: u32,
    /// When the current send is given up waiting for `ACK`; `None` until it is (re)sent.
    until: Option<Instant>,
}

/// One end of a ZVT link, sans-IO: framing, the serial line's `ACK`/`NAK` with resends, and the
/// APDUs received in order. Frames queued with [`send`](Self::send) leave one at a time on a
/// serial line (the next after the line acknowledged the one before), at once on TCP.
#[derive(Debug)]
pub struct Line {
    framing: Framing,
    ack_timeout: Duration,
    attempts: u32,
    buf: BytesMut,
    apdus: ApduStream,
    serial: SerialDecoder,
    received: VecDeque<Apdu>,
    /// Serial: `ACK`s and `NAK`s owed, in the order they are owed (sent before any frame).
    control: Vec<u8>,
    /// Encoded APDUs (TCP) or frames (serial) not yet handed out.
    queue: VecDeque<Vec<u8>>,
    in_flight: Option<InFlight>,
    /// How many of our APDUs are done: written (TCP) or acknowledged by the line (serial).
    delivered: u64,
    queued: u64,
    failed: Option<LineError>,
    damaged: u64,
    resent: u64,
}

impl Line {
    /// A line with `framing` and the specification's serial timing.
    pub fn new(framing: Framing) -> Self {
        Self::with_timing(framing, SERIAL_ACK_TIMEOUT, SERIAL_ATTEMPTS)
    }

    /// A line with `framing` that waits `ack_timeout` for a serial `ACK` and sends a frame at
    /// most `attempts` times (at least once).
    pub fn with_timing(framing: Framing, ack_timeout: Duration, attempts: u32) -> Self {
        Self {
            framing,
            ack_timeout,
            attempts: attempts.max(1),
            buf: BytesMut::with_capacity(1024),
            apdus: ApduStream::new(),
            serial: SerialDecoder::new(),
            received: VecDeque::new(),
            control: Vec::new(),
            queue: VecDeque::new(),
            in_flight: None,
            delivered: 0,
            queued: 0,
            failed: None,
            damaged: 0,
            resent: 0,
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Queues `apdu`; returns its number (the `n`th APDU sent on this line, from 1), which
    /// [`delivered`](Self::delivered) reaches once it is done.
    pub fn send(&mut self, apdu: &Apdu) -> Result<u64, ZvtError> {
        let bytes = match self.framing {
            Framing::Tcp => apdu.to_bytes()?,
            Framing::Serial => serial::encode_frame(apdu)?,
        };
        self.queue.push_back(bytes);
        self.queued += 1;
        Ok(self.queued)
    }

    /// How many of the APDUs queued are done: written (TCP) or acknowledged by the line
    /// (serial).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Takes in bytes that arrived.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.failed.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        match self.framing {
            Framing::Tcp => loop {
                match self.apdus.decode(&mut self.buf) {
                    Ok(Some(a)) => self.received.push_back(a),
                    Ok(None) => break,
                    Err(e) => {
                        self.failed = Some(LineError::Codec(e));
                        break;
                    }
                }
            },
            Framing::Serial => {
                while let Some(ev) = self.serial.decode(&mut self.buf) {
                    match ev {
                        SerialEvent::Frame(a) => {
                            self.received.push_back(a);
                            self.control.push(serial::ACK);
                        }
                        SerialEvent::Damaged(_) => {
                            self.damaged += 1;
                            // Answered at once: the peer sends the frame again.
                            self.control.push(serial::NAK);
                        }
                        SerialEvent::Ack => self.line_answer(true, now),
                        SerialEvent::Nak => self.line_answer(false, now),
                    }
                }
            }
        }
    }

    /// The line's `ACK` (`true`) or `NAK` to our frame. Answers while no frame of ours is
    /// waiting for one are not to anything and are ignored.
    fn line_answer(&mut self, ack: bool, _now: Instant) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.until.is_none() {
            // Not sent yet (its resend is due): this answer is to an earlier send.
            if ack {
                self.in_flight = None;
                self.delivered += 1;
            }
            return;
        }
        if ack {
            self.in_flight = None;
            self.delivered += 1;
        } else {
            self.resend();
        }
    }

    /// The frame in flight goes again, or the line is given up after the last attempt.
    fn resend(&mut self) {
        let attempts = self.attempts;
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.sends >= attempts {
            self.in_flight = None;
            self.failed = Some(LineError::NotAcknowledged);
        } else {
            f.until = None;
        }
    }

    /// The next bytes to write: `ACK`/`NAK`s owed first, then our next frame or APDU.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.control.is_empty() {
            return Some(std::mem::take(&mut self.control));
        }
        if self.failed.is_some() {
            return None;
        }
        match self.framing {
            Framing::Tcp => {
                let bytes = self.queue.pop_front()?;
                self.delivered += 1;
                Some(bytes)
            }
            Framing::Serial => {
                if self.in_flight.is_none() {
                    let frame = self.queue.pop_front()?;
                    self.in_flight = Some(InFlight {
                        frame,
                        sends: 0,
                        until: None,
                    });
                }
                let f = self.in_flight.as_mut().expect("set above");
                if f.until.is_some() {
                    return None;
                }
                if f.sends > 0 {
                    self.resent += 1;
                }
                f.sends += 1;
                f.until = Some(now + self.ack_timeout);
                Some(f.frame.clone())
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the end of the wait for the
    /// line's `ACK`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.as_ref().and_then(|f| f.until)
    }

    /// A frame not acknowledged by `now` goes again (or the line is given up).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .in_flight
            .as_ref()
            .and_then(|f| f.until)
            .is_some_and(|u| now >= u)
        {
            self.resend();
        }
    }

    /// The next APDU the peer sent.
    pub fn poll_apdu(&mut self) -> Option<Apdu> {
        self.received.pop_front()
    }

    /// Why the line can carry nothing more, once it cannot.
    pub fn error(&self) -> Option<&LineError> {
        self.failed.as_ref()
    }

    /// Serial frames that arrived damaged (each answered `NAK`, so the peer sent it again).
    pub fn damaged_frames(&self) -> u64 {
        self.damaged
    }

    /// Serial frames of ours sent again (after a `NAK` or a missing `ACK`).
    pub fn resent_frames(&self) -> u64 {
        self.resent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn tcp_apdus_go_out_at_once_and_come_in_by_length() {
        let now = t0();
        let mut a = Line::new(Framing::Tcp);
        let mut b = Line::new(Framing::Tcp);
        assert_eq!(a.send(&Apdu::ack()).unwrap(), 1);
        assert_eq!(a.send(&Apdu::new(0x06, 0x01, vec![1, 2, 3])).unwrap(), 2);
        let mut wire = Vec::new();
        while let Some(bytes) = a.poll_transmit(now) {
            wire.extend(bytes);
        }
        assert_eq!(a.delivered(), 2);
        for byte in wire {
            b.handle_input(&[byte], now);
        }
        assert_eq!(b.poll_apdu(), Some(Apdu::ack()));
        assert_eq!(b.poll_apdu(), Some(Apdu::new(0x06, 0x01, vec![1, 2, 3])));
        assert_eq!(b.poll_apdu(), None);
        assert_eq!(b.poll_transmit(now), None, "TCP owes no line answers");
    }

    #[test]
    fn a_serial_frame_waits_for_the_lines_ack_and_the_next_waits_for_it() {
        let now = t0();
        let mut a = Line::new(Framing::Serial);
        let mut b = Line::new(Framing::Serial);
        a.send(&Apdu::ack()).unwrap();
        a.send(&Apdu::nak(0x83)).unwrap();
        let first = a.poll_transmit(now).unwrap();
        assert_eq!(a.poll_transmit(now), None, "one frame in flight");
        b.handle_input(&first, now);
        assert_eq!(b.poll_apdu(), Some(Apdu::ack()));
        let answer = b.poll_transmit(now).unwrap();
        assert_eq!(answer, vec![serial::ACK]);
        a.handle_input(&answer, now);
        assert_eq!(a.delivered(), 1);
        let second = a.poll_transmit(now).unwrap();
        b.handle_input(&second, now);
        assert_eq!(b.poll_apdu(), Some(Apdu::nak(0x83)));
    }

    #[test]
    fn a_damaged_frame_is_naked_and_sent_again() {
        let now = t0();
        let mut a = Line::new(Framing::Serial);
        let mut b = Line::new(Framing::Serial);
        a.send(&Apdu::new(0x06, 0x0F, vec![0x27, 0x00])).unwrap();
        let mut frame = a.poll_transmit(now).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0x40;
        b.handle_input(&frame, now);
        assert_eq!(b.poll_apdu(), None);
        assert_eq!(b.damaged_frames(), 1);
        a.handle_input(&b.poll_transmit(now).unwrap(), now);
        let again = a.poll_transmit(now).expect("sent again after the NAK");
        assert_eq!(a.resent_frames(), 1);
        b.handle_input(&again, now);
        assert_eq!(b.poll_apdu(), Some(Apdu::new(0x06, 0x0F, vec![0x27, 0x00])));
    }

    #[test]
    fn a_frame_never_acknowledged_is_sent_three_times_then_the_line_fails() {
        let mut now = t0();
        let mut a = Line::new(Framing::Serial);
        a.send(&Apdu::ack()).unwrap();
        let mut sends = 0;
        while a.error().is_none() {
            if a.poll_transmit(now).is_some() {
                sends += 1;
            }
            now = a.poll_timeout().expect("waiting for ACK");
            a.handle_timeout(now);
        }
        assert_eq!(sends, SERIAL_ATTEMPTS);
        assert_eq!(a.error(), Some(&LineError::NotAcknowledged));
        assert_eq!(a.delivered(), 0);
    }

    #[test]
    fn a_stray_ack_acknowledges_nothing() {
        let now = t0();
        let mut a = Line::new(Framing::Serial);
        a.handle_input(&[serial::ACK, serial::NAK], now);
        assert_eq!(a.delivered(), 0);
        a.send(&Apdu::ack()).unwrap();
        assert!(a.poll_transmit(now).is_some());
        assert_eq!(a.delivered(), 0);
    }
}
