//! The `Link` trait and its async helpers.

use std::future::{Future, poll_fn};
use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::{Delivery, LinkError, LinkInfo};

/// A connection to one peer that carries bytes: the one abstraction every transport provides.
///
/// The methods are poll-based, like `AsyncRead`/`AsyncWrite`, so that a link can be used as
/// `Box<dyn Link>` and driven without allocation; [`LinkExt`] adds the async forms.
///
/// * **Stream links** ([`Delivery::Stream`]: TCP, serial, BLE over a UART-style service) may
///   accept part of a send and may split or merge what was sent; the frame decoder above copes
///   with any split.
/// * **Packet links** ([`Delivery::Packet`]: USB bulk) take one packet of at most
///   [`LinkInfo::mtu`] bytes per send and deliver it whole. Wrap one in
///   [`Segmented`](crate::Segmented) to send messages of any size.
pub trait Link: Send + Unpin {
    /// What the link is and where it goes.
    fn info(&self) -> &LinkInfo;

    /// Sends from `buf`, returning how many bytes were taken (for packet links: all of them,
    /// as one packet). Bytes taken may still sit in a buffer until [`poll_flush`](Self::poll_flush).
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>>;

    /// Pushes buffered bytes towards the peer.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>>;

    /// Appends received bytes to `buf` (for packet links: exactly one packet) and returns how
    /// many. After the peer closes, returns [`LinkError::Closed`].
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>>;

    /// Flushes and closes the sending side; the peer then sees [`LinkError::Closed`].
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>>;
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn info(&self) -> &LinkInfo {
        (**self).info()
    }
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        (**self).poll_send(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        (**self).poll_flush(cx)
    }
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        (**self).poll_recv(cx, buf)
    }
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        (**self).poll_close(cx)
    }
}

impl<L: Link + ?Sized> Link for &mut L {
    fn info(&self) -> &LinkInfo {
        (**self).info()
    }
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        (**self).poll_send(cx, buf)
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        (**self).poll_flush(cx)
    }
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        (**self).poll_recv(cx, buf)
    }
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        (**self).poll_close(cx)
    }
}

/// Async helpers for every [`Link`].
pub trait LinkExt: Link {
    /// Sends all of `buf` and flushes. On a packet link `buf` must fit in one packet.
    fn send_all<'a>(
        &'a mut self,
        buf: &'a [u8],
    ) -> impl Future<Output = Result<(), LinkError>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            if self.info().delivery == Delivery::Packet && buf.len() > self.info().mtu {
                return Err(LinkError::PacketTooLarge {
                    len: buf.len(),
                    mtu: self.info().mtu,
                });
            }
            let mut sent = 0;
            while sent < buf.len() {
                sent += poll_fn(|cx| self.poll_send(cx, &buf[sent..])).await?;
            }
            poll_fn(|cx| self.poll_flush(cx)).await
        }
    }

    /// Waits for bytes and appends them to `buf`; returns how many.
    fn recv<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = Result<usize, LinkError>> + Send + 'a
    where
        Self: Sized,
    {
        poll_fn(move |cx| self.poll_recv(cx, buf))
    }

    /// Flushes and closes the sending side.
    fn close(&mut self) -> impl Future<Output = Result<(), LinkError>> + Send + '_
    where
        Self: Sized,
    {
        poll_fn(move |cx| self.poll_close(cx))
    }
}

impl<L: Link + ?Sized> LinkExt for L {}

/// Finds devices a transport can connect to: serial ports, BLE peripherals, terminals that
/// announce themselves on the LAN.
pub trait Discovery {
    /// The transport's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Looks for devices for at most `timeout` and returns what it found (an empty list is not an
    /// error). Transports that can list at once (serial ports) return without waiting.
    fn discover(
        &mut self,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<Vec<crate::DeviceInfo>, Self::Error>> + Send;
}

/// Opens links to one terminal, again and again: what a till that reconnects on its own uses
/// (a TCP address, a serial port, a BLE peripheral found by name). Any
/// `FnMut() -> impl Future<Output = Result<L, _>>` is one.
pub trait Connector: Send {
    /// The link.
    type Link: Link + 'static;

    /// Opens one.
    fn open(
        &mut self,
    ) -> impl Future<Output = Result<Self::Link, Box<dyn std::error::Error + Send + Sync>>> + Send;

    /// Whether [`open`](Self::open) looks for the terminal first (a BLE scan, mDNS), so that a
    /// state stream can say so while it runs.
    fn discovers(&self) -> bool {
        false
    }
}

impl<F, Fut, L> Connector for F
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<L, Box<dyn std::error::Error + Send + Sync>>> + Send,
    L: Link + 'static,
{
    type Link = L;

    fn open(
        &mut self,
    ) -> impl Future<Output = Result<L, Box<dyn std::error::Error + Send + Sync>>> + Send {
        self()
    }
}
