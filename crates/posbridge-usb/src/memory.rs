//! In-memory bulk endpoints and the device behind them, for tests: packets, zero-length packets,
//! a stalled endpoint and an unplugged device behave as on a real bus.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use posbridge_link::{Delivery, Link, LinkError, LinkInfo, LinkKind};

use crate::{BulkEndpoints, TransferError};

#[derive(Debug, Default)]
struct Bus {
    to_device: VecDeque<Vec<u8>>,
    to_host: VecDeque<Vec<u8>>,
    unplugged: bool,
    in_stalled: bool,
    host_waker: Option<Waker>,
    device_waker: Option<Waker>,
    zlps_to_device: u64,
}

fn lock(bus: &Mutex<Bus>) -> MutexGuard<'_, Bus> {
    bus.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host side: [`BulkEndpoints`] for a [`UsbLink`](crate::UsbLink).
#[derive(Debug)]
pub struct MemoryEndpoints {
    bus: Arc<Mutex<Bus>>,
    max_packet: usize,
    out_done: VecDeque<Result<(), TransferError>>,
    in_pending: usize,
}

/// The device side: a packet [`Link`] (the terminal's end of the cable), plus controls that make
/// the bus misbehave.
#[derive(Debug)]
pub struct MemoryUsbDevice {
    bus: Arc<Mutex<Bus>>,
    info: LinkInfo,
}

/// A host and a device joined by an in-memory bus with bulk endpoints of `max_packet` bytes
/// (64 for full speed, 512 for high speed).
pub fn memory_usb(max_packet: usize) -> (MemoryEndpoints, MemoryUsbDevice) {
    let bus = Arc::new(Mutex::new(Bus::default()));
    (
        MemoryEndpoints {
            bus: bus.clone(),
            max_packet,
            out_done: VecDeque::new(),
            in_pending: 0,
        },
        MemoryUsbDevice {
            bus,
            info: LinkInfo::new(LinkKind::Usb, Delivery::Packet, max_packet)
                .with_address("memory usb device"),
        },
    )
}

impl MemoryUsbDevice {
    /// Unplugs the device: every pending and later transfer fails with
    /// [`TransferError::Disconnected`].
    pub fn unplug(&self) {
        let mut bus = lock(&self.bus);
        bus.unplugged = true;
        if let Some(w) = bus.host_waker.take() {
            w.wake();
        }
    }

    /// Stalls the IN endpoint: the host's next IN transfer fails with [`TransferError::Stall`].
    pub fn stall_in(&self) {
        let mut bus = lock(&self.bus);
        bus.in_stalled = true;
        if let Some(w) = bus.host_waker.take() {
            w.wake();
        }
    }

    /// Zero-length packets the host has sent.
    pub fn zlps_received(&self) -> u64 {
        lock(&self.bus).zlps_to_device
    }

    /// Sends a zero-length packet to the host.
    pub fn send_zlp(&self) {
        let mut bus = lock(&self.bus);
        bus.to_host.push_back(Vec::new());
        if let Some(w) = bus.host_waker.take() {
            w.wake();
        }
    }
}

impl BulkEndpoints for MemoryEndpoints {
    fn out_max_packet(&self) -> usize {
        self.max_packet
    }

    fn in_max_packet(&self) -> usize {
        self.max_packet
    }

    fn submit_out(&mut self, data: Vec<u8>) {
        let mut bus = lock(&self.bus);
        let result = if bus.unplugged {
            Err(TransferError::Disconnected)
        } else if data.len() > self.max_packet {
            // The memory bus carries one packet per transfer, like the links above it use it.
            Err(TransferError::Other(
                "transfer longer than one packet".into(),
            ))
        } else {
            if data.is_empty() {
                bus.zlps_to_device += 1;
            }
            bus.to_device.push_back(data);
            if let Some(w) = bus.device_waker.take() {
                w.wake();
            }
            Ok(())
        };
        self.out_done.push_back(result);
    }

    fn out_pending(&self) -> usize {
        self.out_done.len()
    }

    fn poll_out(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransferError>> {
        Poll::Ready(self.out_done.pop_front().unwrap_or(Ok(())))
    }

    fn submit_in(&mut self, _len: usize) {
        self.in_pending += 1;
    }

    fn in_pending(&self) -> usize {
        self.in_pending
    }

    fn poll_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransferError>> {
        let mut bus = lock(&self.bus);
        if bus.unplugged {
            self.in_pending = self.in_pending.saturating_sub(1);
            return Poll::Ready(Err(TransferError::Disconnected));
        }
        if bus.in_stalled {
            self.in_pending = self.in_pending.saturating_sub(1);
            return Poll::Ready(Err(TransferError::Stall));
        }
        match bus.to_host.pop_front() {
            Some(packet) => {
                self.in_pending = self.in_pending.saturating_sub(1);
                Poll::Ready(Ok(packet))
            }
            None => {
                bus.host_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn cancel_all(&mut self) {
        self.in_pending = 0;
    }
}

impl Link for MemoryUsbDevice {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        if buf.len() > self.info.mtu {
            return Poll::Ready(Err(LinkError::PacketTooLarge {
                len: buf.len(),
                mtu: self.info.mtu,
            }));
        }
        let mut bus = lock(&self.bus);
        if bus.unplugged {
            return Poll::Ready(Err(LinkError::Closed));
        }
        bus.to_host.push_back(buf.to_vec());
        if let Some(w) = bus.host_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        let mut bus = lock(&self.bus);
        // Zero-length packets end transfers; they carry no bytes for the device's reader.
        while let Some(packet) = bus.to_device.pop_front() {
            if !packet.is_empty() {
                buf.extend_from_slice(&packet);
                return Poll::Ready(Ok(packet.len()));
            }
        }
        if bus.unplugged {
            return Poll::Ready(Err(LinkError::Closed));
        }
        bus.device_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }
}
