//! A [`Link`] over any tokio byte stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Link, LinkError, LinkInfo};

/// Turns any `AsyncRead + AsyncWrite` (a `TcpStream`, a TLS stream, a serial port, a
/// `tokio::io::duplex` half) into a stream [`Link`].
#[derive(Debug)]
pub struct IoLink<T> {
    io: T,
    info: LinkInfo,
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> IoLink<T> {
    /// Wraps `io`, described by `info` (whose `delivery` should be
    /// [`Delivery::Stream`](crate::Delivery::Stream)).
    pub fn new(io: T, info: LinkInfo) -> Self {
        Self { io, info }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The wrapped stream, mutably (to set socket options, for example).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.io
    }
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Link for IoLink<T> {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(Ok(0)) if !buf.is_empty() => Poll::Ready(Err(LinkError::Disconnected(
                std::io::ErrorKind::WriteZero.into(),
            ))),
            Poll::Ready(r) => Poll::Ready(r.map_err(LinkError::from_io)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Pin::new(&mut self.io)
            .poll_flush(cx)
            .map_err(LinkError::from_io)
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        buf.reserve(self.info.mtu.max(512));
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf) {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(LinkError::Closed)),
            Poll::Ready(r) => Poll::Ready(r.map_err(LinkError::from_io)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Pin::new(&mut self.io)
            .poll_shutdown(cx)
            .map_err(LinkError::from_io)
    }
}
