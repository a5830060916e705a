//! `UsbLink`: a packet [`Link`] over bulk endpoints.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use posbridge_link::{Delivery, Link, LinkError, LinkInfo, LinkKind};

use crate::{BulkEndpoints, TransferError};

/// Settings of a USB link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsbConfig {
    /// OUT transfers in flight before `poll_send` waits for one to complete. Default 4.
    pub out_in_flight: usize,
    /// IN transfers kept queued, so packets are taken off the bus while the app is busy.
    /// Default 4.
    pub in_queued: usize,
    /// Packets received while the app is sending (not reading) that the link keeps, so a
    /// device that answers before it has read everything does not stall both sides. Default 256.
    pub receive_packets: usize,
}

impl Default for UsbConfig {
    fn default() -> Self {
        Self {
            out_in_flight: 4,
            in_queued: 4,
            receive_packets: 256,
        }
    }
}

/// Counters of a USB link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsbStats {
    /// Packets sent.
    pub packets_out: u64,
    /// Zero-length packets sent after full-size packets.
    pub zlps_out: u64,
    /// Packets received (zero-length ones not counted).
    pub packets_in: u64,
    /// Zero-length packets received and skipped.
    pub zlps_in: u64,
}

/// A [`Delivery::Packet`] link over one bulk OUT and one bulk IN endpoint: each send is one
/// transfer of at most the endpoint's maximum packet size (the link's MTU), each receive one
/// packet. A full-size packet is followed by a zero-length packet, so a device that reads with a
/// larger buffer still sees where it ends; zero-length packets received are skipped. Wrap it in
/// [`Segmented`](posbridge_link::Segmented) to carry messages of any size.
#[derive(Debug)]
pub struct UsbLink<E: BulkEndpoints> {
    info: LinkInfo,
    endpoints: E,
    config: UsbConfig,
    failure: Option<TransferError>,
    closed: bool,
    stats: UsbStats,
    inbox: VecDeque<Vec<u8>>,
}

fn link_error(e: &TransferError) -> LinkError {
    match e {
        TransferError::Disconnected => LinkError::Disconnected(io::Error::new(
            io::ErrorKind::NotConnected,
            "USB device gone (unplugged or reset)",
        )),
        other => LinkError::Io(io::Error::other(other.to_string())),
    }
}

impl<E: BulkEndpoints> UsbLink<E> {
    /// A link over `endpoints`; `info` says which device it is (its MTU and delivery are set
    /// here).
    pub fn new(endpoints: E, mut info: LinkInfo, config: UsbConfig) -> Self {
        info.kind = LinkKind::Usb;
        info.delivery = Delivery::Packet;
        info.mtu = endpoints.out_max_packet();
        Self {
            info,
            endpoints,
            config: UsbConfig {
                out_in_flight: config.out_in_flight.max(1),
                in_queued: config.in_queued.max(1),
                receive_packets: config.receive_packets.max(1),
            },
            failure: None,
            closed: false,
            stats: UsbStats::default(),
            inbox: VecDeque::new(),
        }
    }

    /// The link's counters.
    pub fn stats(&self) -> UsbStats {
        self.stats
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &E {
        &self.endpoints
    }

    fn check(&self) -> Result<(), LinkError> {
        if let Some(e) = &self.failure {
            return Err(link_error(e));
        }
        if self.closed {
            return Err(LinkError::Closed);
        }
        Ok(())
    }

    fn fail(&mut self, e: TransferError) -> LinkError {
        let err = link_error(&e);
        self.failure = Some(e);
        self.endpoints.cancel_all();
        err
    }

    /// Completes one OUT transfer, taking in what the device sends meanwhile.
    fn poll_one_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        match self.endpoints.poll_out(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.fail(e))),
            Poll::Pending => {
                // A device that echoes or answers early blocks on its IN side until the host
                // reads; keep reading, or neither side moves.
                if self.failure.is_none() {
                    self.pump_in(cx);
                }
                Poll::Pending
            }
        }
    }

    /// Moves completed IN packets into the inbox until it is full or none is ready. A failure
    /// is kept for the next call.
    fn pump_in(&mut self, cx: &mut Context<'_>) {
        let mps = self.endpoints.in_max_packet();
        while self.inbox.len() < self.config.receive_packets {
            while self.endpoints.in_pending() < self.config.in_queued {
                // One packet per transfer: each completion is one packet of the device's.
                self.endpoints.submit_in(mps);
            }
            match self.endpoints.poll_in(cx) {
                Poll::Pending => return,
                Poll::Ready(Ok(packet)) if packet.is_empty() => self.stats.zlps_in += 1,
                Poll::Ready(Ok(packet)) => {
                    self.stats.packets_in += 1;
                    self.inbox.push_back(packet);
                }
                Poll::Ready(Err(e)) => {
                    self.failure = Some(e);
                    self.endpoints.cancel_all();
                    return;
                }
            }
        }
    }
}

impl<E: BulkEndpoints> Drop for UsbLink<E> {
    fn drop(&mut self) {
        self.endpoints.cancel_all();
    }
}

impl<E: BulkEndpoints> Link for UsbLink<E> {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        self.check()?;
        let mps = self.endpoints.out_max_packet();
        if buf.len() > mps {
            return Poll::Ready(Err(LinkError::PacketTooLarge {
                len: buf.len(),
                mtu: mps,
            }));
        }
        while self.endpoints.out_pending() >= self.config.out_in_flight {
            ready!(self.poll_one_out(cx))?;
        }
        self.endpoints.submit_out(buf.to_vec());
        self.stats.packets_out += 1;
        if buf.len() == mps || buf.is_empty() {
            // A full packet does not end a transfer on the device's side; a zero-length one does.
            if !buf.is_empty() {
                self.endpoints.submit_out(Vec::new());
            }
            self.stats.zlps_out += 1;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if let Some(e) = &self.failure {
            return Poll::Ready(Err(link_error(e)));
        }
        while self.endpoints.out_pending() > 0 {
            ready!(self.poll_one_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        if self.inbox.is_empty() && self.failure.is_none() && !self.closed {
            self.pump_in(cx);
        }
        // Packets that arrived before a failure are still delivered.
        if let Some(packet) = self.inbox.pop_front() {
            buf.extend_from_slice(&packet);
            return Poll::Ready(Ok(packet.len()));
        }
        self.check()?;
        Poll::Pending
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        if self.closed || self.failure.is_some() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_flush(cx))?;
        self.closed = true;
        self.endpoints.cancel_all();
        Poll::Ready(Ok(()))
    }
}
