//! `BleLink`: a byte-stream [`Link`] over a GATT connection.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use posbridge_link::{Delivery, Link, LinkError, LinkInfo, LinkKind};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::{BleConfig, BleError, GattConnection, GattErrorKind, GattEvent, GattWriter, WriteMode};

/// A link over a UART-style GATT service: bytes written are cut into characteristic writes of at
/// most `ATT MTU − 3` bytes; notifications are appended to one receive stream.
///
/// The link is a [`Delivery::Stream`] link: notification boundaries are not write boundaries (a
/// peripheral may merge or split what its other side sent), so the frame decoder above
/// reassembles. [`LinkInfo::mtu`] is the chunk size at connect time. A disconnect of the
/// peripheral is [`LinkError::Disconnected`] on the next send or receive.
///
/// Two tokio tasks do the GATT work: a writer (one write at a time, paced) and a reader that
/// moves notifications into the receive buffer. Dropping the link disconnects.
#[derive(Debug)]
pub struct BleLink {
    info: LinkInfo,
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    send_buffer: usize,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer task: bytes to send, or a close.
    work: Notify,
}

#[derive(Debug, Default)]
struct State {
    out: BytesMut,
    writing: bool,
    inbound: BytesMut,
    /// Why the link broke, once it did.
    failure: Option<(GattErrorKind, String)>,
    closing: bool,
    closed: bool,
    send_waker: Option<Waker>,
    flush_waker: Option<Waker>,
    recv_waker: Option<Waker>,
    close_waker: Option<Waker>,
    stats: BleStats,
}

/// Counters of a BLE link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BleStats {
    /// Characteristic writes made, with and without response.
    pub writes: u64,
    /// Of those, write requests (with response).
    pub confirmed_writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// The largest write made.
    pub largest_write: usize,
}

impl State {
    fn wake_all(&mut self) {
        for w in [
            self.send_waker.take(),
            self.flush_waker.take(),
            self.recv_waker.take(),
            self.close_waker.take(),
        ]
        .into_iter()
        .flatten()
        {
            w.wake();
        }
    }

    fn fail(&mut self, kind: GattErrorKind, message: String) {
        if self.failure.is_none() && !self.closed {
            self.failure = Some((kind, message));
        }
        self.wake_all();
    }

    fn error(&self) -> Option<LinkError> {
        if let Some((kind, message)) = &self.failure {
            let kind = match kind {
                GattErrorKind::Disconnected => io::ErrorKind::ConnectionAborted,
                GattErrorKind::Timeout => io::ErrorKind::TimedOut,
                _ => io::ErrorKind::Other,
            };
            return Some(LinkError::Disconnected(io::Error::new(
                kind,
                message.clone(),
            )));
        }
        self.closed.then_some(LinkError::Closed)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only plain data behind; go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BleLink {
    /// Turns a connected peripheral into a link and starts its two tasks on the current tokio
    /// runtime.
    pub fn new<W: GattWriter>(
        connection: GattConnection<W>,
        config: BleConfig,
    ) -> Result<Self, BleError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| BleError::NoRuntime)?;
        let GattConnection {
            writer,
            events,
            write_without_response,
            write_with_response,
            address,
            name,
        } = connection;
        let without = match config.write_mode {
            WriteMode::Auto => write_without_response,
            WriteMode::WithoutResponse if !write_without_response => {
                return Err(BleError::CharacteristicMissing {
                    uuid: config.uuids.write,
                    problem: "does not accept write without response (WriteMode::WithoutResponse)",
                });
            }
            WriteMode::WithoutResponse => true,
            WriteMode::WithResponse => false,
        };
        if !without && !write_with_response {
            return Err(BleError::CharacteristicMissing {
                uuid: config.uuids.write,
                problem: "accepts neither write requests nor write commands",
            });
        }
        let plan = WritePlan {
            without_response: without,
            // A request every n chunks only where the characteristic takes requests.
            confirm_every: config
                .confirm_every
                .filter(|&n| n > 0 && without && write_with_response),
            config: config.clone(),
        };
        let mut info = LinkInfo::new(
            LinkKind::Ble,
            Delivery::Stream,
            config.chunk_size(writer.att_mtu()),
        )
        .with_address(address.clone());
        info.peer_id = Some(address);
        info.peer_name = name;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Notify::new(),
        });
        handle.spawn(write_loop(writer, shared.clone(), plan));
        let reader = handle.spawn(read_loop(events, shared.clone(), config.receive_buffer));
        Ok(Self {
            info,
            shared,
            reader,
            send_buffer: config.send_buffer.max(1),
        })
    }

    /// The link's counters.
    pub fn stats(&self) -> BleStats {
        self.shared.lock().stats
    }
}

impl Drop for BleLink {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.closing = true;
        drop(s);
        self.shared.work.notify_one();
        self.reader.abort();
    }
}

#[derive(Debug)]
struct WritePlan {
    without_response: bool,
    confirm_every: Option<u32>,
    config: BleConfig,
}

enum Job {
    Data(Bytes),
    Close,
}

async fn write_loop<W: GattWriter>(mut writer: W, shared: Arc<Shared>, plan: WritePlan) {
    let mut since_confirm = 0u32;
    loop {
        let job = loop {
            {
                let mut s = shared.lock();
                if s.failure.is_some() {
                    break Job::Close;
                }
                if !s.out.is_empty() {
                    s.writing = true;
                    break Job::Data(s.out.split().freeze());
                }
                if s.closing {
                    break Job::Close;
                }
            }
            shared.work.notified().await;
        };
        let data = match job {
            Job::Close => {
                let _ = tokio::time::timeout(plan.config.write_timeout, writer.disconnect()).await;
                let mut s = shared.lock();
                s.closed = true;
                s.wake_all();
                return;
            }
            Job::Data(data) => data,
        };
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = rest.split_to(plan.config.chunk_size(writer.att_mtu()).min(rest.len()));
            let len = chunk.len();
            let with_response = !plan.without_response
                || plan.confirm_every.is_some_and(|n| since_confirm + 1 >= n);
            let result = tokio::time::timeout(
                plan.config.write_timeout,
                writer.write(chunk, with_response),
            )
            .await;
            let failure = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some((e.kind, e.to_string())),
                Err(_) => Some((
                    GattErrorKind::Timeout,
                    format!(
                        "a {len}-byte write took longer than {:?}",
                        plan.config.write_timeout
                    ),
                )),
            };
            if let Some((kind, message)) = failure {
                // Whatever the cause, a lost write leaves a hole in the stream: the link is over.
                shared.lock().fail(kind, message);
                let _ = tokio::time::timeout(plan.config.write_timeout, writer.disconnect()).await;
                return;
            }
            {
                let mut s = shared.lock();
                s.stats.writes += 1;
                s.stats.bytes_written += len as u64;
                s.stats.largest_write = s.stats.largest_write.max(len);
                if with_response {
                    s.stats.confirmed_writes += 1;
                }
            }
            if with_response {
                since_confirm = 0;
            } else {
                since_confirm += 1;
                if !plan.config.write_gap.is_zero() {
                    tokio::time::sleep(plan.config.write_gap).await;
                }
            }
        }
        let mut s = shared.lock();
        s.writing = false;
        if let Some(w) = s.send_waker.take() {
            w.wake();
        }
        if s.out.is_empty()
            && let Some(w) = s.flush_waker.take()
        {
            w.wake();
        }
    }
}

async fn read_loop(mut events: mpsc::Receiver<GattEvent>, shared: Arc<Shared>, limit: usize) {
    loop {
        match events.recv().await {
            Some(GattEvent::Notification(bytes)) => {
                let mut s = shared.lock();
                if s.inbound.len() + bytes.len() > limit {
                    s.fail(
                        GattErrorKind::Other,
                        format!("more than {limit} received bytes were not read; link dropped"),
                    );
                    return;
                }
                s.stats.notifications += 1;
                s.stats.bytes_received += bytes.len() as u64;
                s.inbound.extend_from_slice(&bytes);
                if let Some(w) = s.recv_waker.take() {
                    w.wake();
                }
            }
            Some(GattEvent::Disconnected(reason)) => {
                shared.lock().fail(GattErrorKind::Disconnected, reason);
                return;
            }
            None => {
                shared.lock().fail(
                    GattErrorKind::Disconnected,
                    "the Bluetooth stack ended the notification stream".into(),
                );
                return;
            }
        }
    }
}

impl Link for BleLink {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        let mut s = self.shared.lock();
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.closing {
            return Poll::Ready(Err(LinkError::Closed));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = self.send_buffer.saturating_sub(s.out.len());
        if room == 0 {
            s.send_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        s.out.extend_from_slice(&buf[..n]);
        drop(s);
        self.shared.work.notify_one();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        let mut s = self.shared.lock();
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.out.is_empty() && !s.writing {
            return Poll::Ready(Ok(()));
        }
        s.flush_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        let mut s = self.shared.lock();
        if !s.inbound.is_empty() {
            let n = s.inbound.len();
            buf.extend_from_slice(&s.inbound.split());
            return Poll::Ready(Ok(n));
        }
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.closing {
            return Poll::Ready(Err(LinkError::Closed));
        }
        s.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        let mut s = self.shared.lock();
        if s.closed || s.failure.is_some() {
            return Poll::Ready(Ok(()));
        }
        s.closing = true;
        s.close_waker = Some(cx.waker().clone());
        drop(s);
        self.shared.work.notify_one();
        Poll::Pending
    }
}
