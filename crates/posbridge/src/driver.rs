//! Running a sans-IO session over a link under tokio: the thin loop that moves bytes between the
//! link and the session, fires its timers and hands out its events.

use std::time::Instant;

use bytes::BytesMut;
use posbridge_link::{Link, LinkError, LinkExt};
use posbridge_session::{ClientEvent, ClientSession, TerminalApp, TerminalEvent, TerminalSession};

/// What the driver needs of a session; both roles have it.
pub trait Session {
    /// The session's events.
    type Event;
    /// Bytes from the link.
    fn handle_input(&mut self, bytes: &[u8], now: Instant);
    /// Bytes for the link.
    fn poll_transmit(&mut self, now: Instant) -> Option<bytes::Bytes>;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// The next timer.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires timers.
    fn handle_timeout(&mut self, now: Instant);
    /// The link is gone.
    fn link_lost(&mut self, now: Instant);
    /// Whether the session has ended.
    fn is_closed(&self) -> bool;
}

macro_rules! session_impl {
    ($t:ty, $e:ty) => {
        impl Session for $t {
            type Event = $e;
            fn handle_input(&mut self, bytes: &[u8], now: Instant) {
                <$t>::handle_input(self, bytes, now)
            }
            fn poll_transmit(&mut self, now: Instant) -> Option<bytes::Bytes> {
                <$t>::poll_transmit(self, now)
            }
            fn poll_event(&mut self) -> Option<$e> {
                <$t>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn link_lost(&mut self, now: Instant) {
                <$t>::link_lost(self, now)
            }
            fn is_closed(&self) -> bool {
                <$t>::is_closed(self)
            }
        }
    };
}

session_impl!(ClientSession, ClientEvent);
session_impl!(TerminalSession, TerminalEvent);

/// The current time, from tokio's clock (so tests with a paused clock stay deterministic).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Writes everything the session has for the link; a failed write ends the session.
pub async fn flush<S: Session, L: Link>(session: &mut S, link: &mut L) {
    while let Some(bytes) = session.poll_transmit(now()) {
        if link.send_all(&bytes).await.is_err() {
            session.link_lost(now());
            // Whatever the session still wants to write (its close frame) has nowhere to go.
            while session.poll_transmit(now()).is_some() {}
            return;
        }
    }
}

/// Waits for the next thing to do: bytes from the link (fed to the session) or the session's
/// timer (fired). Returns `false` once the link is gone.
pub async fn step<S: Session, L: Link>(session: &mut S, link: &mut L, buf: &mut BytesMut) -> bool {
    let timer = session.poll_timeout();
    let sleep = async {
        match timer {
            Some(t) => tokio::time::sleep_until(t.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        received = link.recv(buf) => match received {
            Ok(_) => {
                session.handle_input(buf, now());
                buf.clear();
                true
            }
            Err(LinkError::Closed) | Err(_) => {
                session.link_lost(now());
                false
            }
        },
        () = sleep => {
            session.handle_timeout(now());
            true
        }
    }
}

/// Serves one connection on the terminal's side until it ends: the session's events go to
/// `app`, which answers through the session; its timer runs next to the session's. The session's
/// clock is the system's wall clock, set before every input: heartbeat answers carry it (clients
/// detect clock skew with it) and time-based operator codes are checked against it.
pub async fn serve_terminal<L: Link, A: TerminalApp + ?Sized>(
    mut session: TerminalSession,
    mut link: L,
    app: &mut A,
) -> TerminalSession {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        flush(&mut session, &mut link).await;
        while let Some(event) = session.poll_event() {
            app.on_event(&mut session, &event, now());
        }
        flush(&mut session, &mut link).await;
        if session.is_closed() {
            break;
        }
        let app_timer = app.poll_timeout(&session);
        let session_timer = session.poll_timeout();
        let wake = match (app_timer, session_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Due already (a step with no delay): no trip through the timer wheel, whose 1 ms ticks
        // would be most of a fast terminal's answer time.
        let t = now();
        if wake.is_some_and(|w| w <= t) {
            // Input already here goes first: it may be the acknowledgement that makes the timer
            // moot (on a slow link a flush can outlast the retransmission timer, and handling
            // the timer first every time would retransmit forever without reading an ack).
            let ready =
                std::future::poll_fn(|cx| std::task::Poll::Ready(link.poll_recv(cx, &mut buf)))
                    .await;
            match ready {
                std::task::Poll::Ready(Ok(_)) => {
                    session.set_clock(wall_clock());
                    session.handle_input(&buf, now());
                    buf.clear();
                }
                std::task::Poll::Ready(Err(_)) => session.link_lost(now()),
                std::task::Poll::Pending => {
                    session.set_clock(wall_clock());
                    session.handle_timeout(t);
                    if app.poll_timeout(&session).is_some_and(|due| due <= t) {
                        app.handle_timeout(&mut session, t);
                    }
                }
            }
            continue;
        }
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = link.recv(&mut buf) => match received {
                Ok(_) => {
                    session.set_clock(wall_clock());
                    session.handle_input(&buf, now());
                    buf.clear();
                }
                Err(_) => session.link_lost(now()),
            },
            () = sleep => {
                let t = now();
                session.set_clock(wall_clock());
                session.handle_timeout(t);
                if app.poll_timeout(&session).is_some_and(|due| due <= t) {
                    app.handle_timeout(&mut session, t);
                }
            }
        }
    }
    let _ = link.close().await;
    session
}

/// The system's wall clock as a protocol timestamp.
pub fn wall_clock() -> posbridge_wire::Timestamp {
    posbridge_wire::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// Serves session after session on one long-lived link — a serial line, where tills come and go
/// but the cable stays: when a session ends (the till closed it, or its heartbeat stopped), the
/// next one starts on the same link. `new_session` makes each session. Returns the link's error
/// when the line itself fails (the port went away).
pub async fn serve_terminal_line<L: Link, A: TerminalApp + ?Sized>(
    mut link: L,
    mut new_session: impl FnMut() -> TerminalSession,
    app: &mut A,
) -> LinkError {
    loop {
        let mut failed = None;
        let line = KeepOpen {
            link: &mut link,
            failed: &mut failed,
        };
        serve_terminal(new_session(), line, app).await;
        if let Some(e) = failed {
            return e;
        }
    }
}

/// A borrowed link whose close only flushes (the line outlives each session on it), and which
/// remembers a receive error (the line itself failed).
struct KeepOpen<'a, L> {
    link: &'a mut L,
    failed: &'a mut Option<LinkError>,
}

impl<L: Link> Link for KeepOpen<'_, L> {
    fn info(&self) -> &posbridge_link::LinkInfo {
        self.link.info()
    }
    fn poll_send(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<Result<usize, LinkError>> {
        self.link.poll_send(cx, buf)
    }
    fn poll_flush(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), LinkError>> {
        self.link.poll_flush(cx)
    }
    fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut BytesMut,
    ) -> std::task::Poll<Result<usize, LinkError>> {
        match self.link.poll_recv(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.is_fatal() => {
                let text = e.to_string();
                *self.failed = Some(e);
                std::task::Poll::Ready(Err(LinkError::Io(std::io::Error::other(text))))
            }
            other => other,
        }
    }
    fn poll_close(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), LinkError>> {
        self.link.poll_flush(cx)
    }
}
