//! An in-memory pair of connected links.

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::{Delivery, Link, LinkError, LinkInfo, LinkKind};

/// One end of an in-memory link pair (see [`memory_pair`]).
#[derive(Debug)]
pub struct MemoryLink {
    info: LinkInfo,
    tx: Option<PollSender<Bytes>>,
    rx: mpsc::Receiver<Bytes>,
}

/// Two connected in-memory links. `delivery` and `mtu` are those of the transport being
/// stood in for (a packet pair with MTU 64 behaves like full-speed USB bulk; a stream pair with MTU 20 like a
/// BLE link at the minimum ATT MTU);
/// `capacity` is how many sends may be in flight before a sender waits.
///
/// ```
/// use bytes::BytesMut;
/// use posbridge_link::{Delivery, LinkExt, memory_pair};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (mut phone, mut terminal) = memory_pair(Delivery::Stream, 1024, 8);
/// phone.send_all(b"hello").await?;
/// let mut buf = BytesMut::new();
/// terminal.recv(&mut buf).await?;
/// assert_eq!(&buf[..], b"hello");
/// # Ok::<(), posbridge_link::LinkError>(())
/// # }).unwrap();
/// ```
pub fn memory_pair(delivery: Delivery, mtu: usize, capacity: usize) -> (MemoryLink, MemoryLink) {
    let (a_tx, b_rx) = mpsc::channel(capacity.max(1));
    let (b_tx, a_rx) = mpsc::channel(capacity.max(1));
    let info = |side: &str| LinkInfo::new(LinkKind::Memory, delivery, mtu).with_address(side);
    (
        MemoryLink {
            info: info("memory:a"),
            tx: Some(PollSender::new(a_tx)),
            rx: a_rx,
        },
        MemoryLink {
            info: info("memory:b"),
            tx: Some(PollSender::new(b_tx)),
            rx: b_rx,
        },
    )
}

impl Link for MemoryLink {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        let packet = self.info.delivery == Delivery::Packet;
        if packet && buf.len() > self.info.mtu {
            return Poll::Ready(Err(LinkError::PacketTooLarge {
                len: buf.len(),
                mtu: self.info.mtu,
            }));
        }
        let Some(tx) = self.tx.as_mut() else {
            return Poll::Ready(Err(LinkError::Closed));
        };
        match tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(peer_gone())),
            Poll::Ready(Ok(())) => {}
        }
        let n = if packet {
            buf.len()
        } else {
            buf.len().min(self.info.mtu)
        };
        match tx.send_item(Bytes::copy_from_slice(&buf[..n])) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(peer_gone())),
        }
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                buf.extend_from_slice(&chunk);
                Poll::Ready(Ok(chunk.len()))
            }
            Poll::Ready(None) => Poll::Ready(Err(LinkError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        // Dropping the sender lets the peer drain what is in flight, then see `Closed`.
        self.tx = None;
        Poll::Ready(Ok(()))
    }
}

fn peer_gone() -> LinkError {
    LinkError::Disconnected(std::io::ErrorKind::BrokenPipe.into())
}
