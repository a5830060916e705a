//! Where a running command is at, in the same words for every protocol.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use posbridge_wire::{IdempotencyKey, PaymentMethod, ProgressStage, Telemetry, TelemetryChangeSet};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

/// A progress report of a running money command: card presented, PIN entry, online… What a
/// till shows while the customer pays. Every adapter maps its protocol's reports onto these
/// (native `Progress`, ZVT intermediate states, nexo event notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    /// The command it is about.
    pub key: IdempotencyKey,
    /// How far it has got.
    pub stage: ProgressStage,
    /// The payment method, once known.
    pub method: Option<PaymentMethod>,
    /// The terminal's own text for it, if it sent one ("Insert card").
    pub message: Option<String>,
}

impl ProgressEvent {
    /// A report of `stage` for `key`.
    pub fn new(key: IdempotencyKey, stage: ProgressStage) -> Self {
        Self {
            key,
            stage,
            method: None,
            message: None,
        }
    }
}

/// What a terminal pushed because something about it changed (protocol 1.1 telemetry: battery
/// low, power, paper, acquirer link, software, payments stored offline). Protocols that report
/// no telemetry (ZVT, nexo as posbridge speaks them) push none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryChanged {
    /// What changed since the terminal last pushed.
    pub changes: TelemetryChangeSet,
    /// The telemetry now.
    pub telemetry: Telemetry,
}

/// Events of a terminal as a [`Stream`]: [`ProgressEvents`] of running money commands,
/// [`TelemetryEvents`] of the terminal itself. Events that came faster than they were read are
/// skipped, never queued without bound.
pub struct Events<T> {
    inner: BroadcastStream<T>,
}

/// Progress reports of the commands running on a terminal.
pub type ProgressEvents = Events<ProgressEvent>;

/// Telemetry changes a terminal pushes.
pub type TelemetryEvents = Events<TelemetryChanged>;

impl<T: Clone + Send + 'static> Events<T> {
    /// The events sent on `events` from now on.
    pub fn new(events: broadcast::Receiver<T>) -> Self {
        Self {
            inner: BroadcastStream::new(events),
        }
    }

    /// A stream that has ended: for a terminal that sends no such events.
    pub fn ended() -> Self {
        let (_, receiver) = broadcast::channel(1);
        Self::new(receiver)
    }

    /// The next event; `None` once the terminal is gone.
    pub async fn next(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: Clone + Send + 'static> Stream for Events<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(event))) => return Poll::Ready(Some(event)),
                // Events skipped because the reader fell behind.
                Poll::Ready(Some(Err(_))) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T> std::fmt::Debug for Events<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

/// Waits for `answer` while handing every event that arrives on `events` to `each`, for an
/// adapter whose connection reports progress on a broadcast channel: events that came before
/// the answer are handed over before it is returned, and those still queued when it comes are
/// drained first. Events skipped because the reader fell behind are skipped here too.
pub async fn forward_while<T, E: Clone>(
    answer: impl Future<Output = T>,
    events: &mut broadcast::Receiver<E>,
    mut each: impl FnMut(E),
) -> T {
    let mut answer = std::pin::pin!(answer);
    let mut open = true;
    let out = loop {
        tokio::select! {
            // Progress that came before the answer is reported before it.
            biased;
            event = events.recv(), if open => match event {
                Ok(event) => each(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => open = false,
            },
            a = &mut answer => break a,
        }
    };
    while let Ok(event) = events.try_recv() {
        each(event);
    }
    out
}
