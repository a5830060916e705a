//! A deterministic test harness: a [`ClientSession`] and a [`TerminalSession`] wired together
//! over simulated links with a simulated clock and seeded faults — loss, corruption,
//! duplication, reordering, an MTU that splits frames into packets, latency, and cuts. It steps
//! without sleeping: time jumps to the next delivery or timer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use posbridge_wire::{
    Capabilities, ClientId, Currency, FeatureSet, Hello, KindSet, MethodSet, TerminalId,
};

use crate::{ClientEvent, ClientSession, TerminalApp, TerminalEvent, TerminalSession};

/// A small seeded generator (SplitMix64): the same seed gives the same schedule.
pub use posbridge_link::SeededRng as Rng;

/// What the simulated link does to packets, in each direction alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that one bit of a packet is flipped.
    pub corrupt: f64,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by up to `reorder_by`, so later ones overtake it.
    pub reorder: f64,
    /// How far a reordered packet is held back.
    pub reorder_by: Duration,
    /// The largest packet: every chunk a session writes is split into packets of at most this
    /// many bytes (`usize::MAX`: whole chunks).
    pub mtu: usize,
    /// One-way delay of every packet.
    pub latency: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            corrupt: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_by: Duration::from_millis(20),
            mtu: usize::MAX,
            latency: Duration::from_millis(1),
        }
    }
}

struct Packet {
    at: Instant,
    bytes: Vec<u8>,
}

/// One direction of the simulated link.
#[derive(Default)]
struct Wire {
    queue: VecDeque<Packet>,
}

impl Wire {
    fn push(&mut self, p: Packet) {
        // Keep the queue ordered by delivery time; equal times keep their order.
        let idx = self.queue.partition_point(|q| q.at <= p.at);
        self.queue.insert(idx, p);
    }

    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|p| p.at <= now) {
            self.queue.pop_front().map(|p| p.bytes)
        } else {
            None
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.queue.front().map(|p| p.at)
    }
}

/// A client and a terminal over a simulated link.
pub struct Pair {
    /// The client.
    pub client: ClientSession,
    /// The terminal.
    pub terminal: TerminalSession,
    /// The simulated time.
    pub now: Instant,
    /// What the link does to packets.
    pub faults: Faults,
    rng: Rng,
    to_terminal: Wire,
    to_client: Wire,
    client_events: Vec<ClientEvent>,
    terminal_events: Vec<TerminalEvent>,
    app: Option<Box<dyn TerminalApp>>,
    /// Packets put on the wire (after splitting, before faults).
    pub packets: u64,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("client", &self.client)
            .field("terminal", &self.terminal)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// A step bound, so a broken state machine fails a test instead of hanging it.
const MAX_STEPS: usize = 1_000_000;

impl Pair {
    /// Wires `client` and `terminal` (both created at `start`) with a perfect link; set
    /// [`faults`](Self::faults) to break it. `seed` fixes every random choice.
    pub fn new(
        client: ClientSession,
        terminal: TerminalSession,
        start: Instant,
        seed: u64,
    ) -> Self {
        Self {
            client,
            terminal,
            now: start,
            faults: Faults::default(),
            rng: Rng::new(seed),
            to_terminal: Wire::default(),
            to_client: Wire::default(),
            client_events: Vec::new(),
            terminal_events: Vec::new(),
            app: None,
            packets: 0,
        }
    }

    /// Puts `app` behind the terminal: it sees every terminal event (they are still recorded)
    /// and its timer runs on the simulated clock.
    pub fn set_app(&mut self, app: impl TerminalApp + 'static) {
        self.app = Some(Box::new(app));
    }

    /// Replaces the client (a restarted app, or a reconnect over a new link): the wire is
    /// cleared, the old session dropped as if its process died.
    pub fn replace_client(&mut self, client: ClientSession) {
        self.cut();
        self.client = client;
    }

    /// Replaces the terminal's session (a reconnect, or a terminal restarted with its persisted
    /// state in the new session's context).
    pub fn replace_terminal(&mut self, terminal: TerminalSession) {
        self.cut();
        self.terminal = terminal;
    }

    /// Every event the client emitted so far.
    pub fn client_events(&self) -> &[ClientEvent] {
        &self.client_events
    }

    /// Takes the client's events recorded so far (long runs, benchmarks).
    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }

    /// Takes the terminal's events recorded so far.
    pub fn take_terminal_events(&mut self) -> Vec<TerminalEvent> {
        std::mem::take(&mut self.terminal_events)
    }

    /// Every event the terminal emitted so far.
    pub fn terminal_events(&self) -> &[TerminalEvent] {
        &self.terminal_events
    }

    /// Loses everything in flight in both directions (a cut cable, a dropped BLE link).
    pub fn cut(&mut self) {
        self.to_terminal.queue.clear();
        self.to_client.queue.clear();
    }

    fn send(
        faults: Faults,
        rng: &mut Rng,
        wire: &mut Wire,
        packets: &mut u64,
        now: Instant,
        chunk: &[u8],
    ) {
        for piece in chunk.chunks(faults.mtu.max(1)) {
            *packets += 1;
            if rng.chance(faults.loss) {
                continue;
            }
            let mut bytes = piece.to_vec();
            if rng.chance(faults.corrupt) {
                let bit = rng.below(bytes.len() as u64 * 8) as usize;
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            let mut at = now + faults.latency;
            if rng.chance(faults.reorder) {
                let by = faults.reorder_by.as_micros().max(1) as u64;
                at += Duration::from_micros(rng.below(by) + 1);
            }
            if rng.chance(faults.duplicate) {
                wire.push(Packet {
                    at: at + Duration::from_micros(rng.below(500)),
                    bytes: bytes.clone(),
                });
            }
            wire.push(Packet { at, bytes });
        }
    }

    fn flush(&mut self) -> bool {
        let mut any = false;
        while let Some(chunk) = self.client.poll_transmit(self.now) {
            any = true;
            Self::send(
                self.faults,
                &mut self.rng,
                &mut self.to_terminal,
                &mut self.packets,
                self.now,
                &chunk,
            );
        }
        while let Some(chunk) = self.terminal.poll_transmit(self.now) {
            any = true;
            Self::send(
                self.faults,
                &mut self.rng,
                &mut self.to_client,
                &mut self.packets,
                self.now,
                &chunk,
            );
        }
        while let Some(e) = self.client.poll_event() {
            any = true;
            self.client_events.push(e);
        }
        while let Some(e) = self.terminal.poll_event() {
            any = true;
            if let Some(app) = &mut self.app {
                app.on_event(&mut self.terminal, &e, self.now);
            }
            self.terminal_events.push(e);
        }
        any
    }

    fn deliver_due(&mut self) -> bool {
        let mut any = false;
        while let Some(bytes) = self.to_terminal.pop_due(self.now) {
            any = true;
            self.terminal.handle_input(&bytes, self.now);
        }
        while let Some(bytes) = self.to_client.pop_due(self.now) {
            any = true;
            self.client.handle_input(&bytes, self.now);
        }
        any
    }

    fn next_time(&self) -> Option<Instant> {
        [
            self.to_terminal.next_at(),
            self.to_client.next_at(),
            self.client.poll_timeout(),
            self.terminal.poll_timeout(),
            self.app
                .as_ref()
                .and_then(|a| a.poll_timeout(&self.terminal)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn fire_timers(&mut self) {
        self.client.handle_timeout(self.now);
        self.terminal.handle_timeout(self.now);
        if let Some(app) = &mut self.app
            && app
                .poll_timeout(&self.terminal)
                .is_some_and(|t| t <= self.now)
        {
            app.handle_timeout(&mut self.terminal, self.now);
        }
    }

    /// One step: write what both sides have, deliver what is due, and if nothing was, jump to
    /// the next delivery or timer and fire it. Returns the time afterwards, or `None` when
    /// nothing is left to happen.
    pub fn step(&mut self) -> Option<Instant> {
        self.flush();
        if self.deliver_due() {
            self.flush();
            return Some(self.now);
        }
        let next = self.next_time()?;
        self.now = self.now.max(next);
        self.fire_timers();
        self.deliver_due();
        self.flush();
        Some(self.now)
    }

    /// Steps until nothing is in flight on the wire or unacknowledged in either session and the
    /// client has no request waiting for an answer (or both sessions are closed). Panics after a million steps: a livelock is a bug.
    pub fn drive(&mut self) {
        for _ in 0..MAX_STEPS {
            self.flush();
            let idle = self.to_terminal.queue.is_empty()
                && self.to_client.queue.is_empty()
                && self.client.in_flight() == 0
                && self.terminal.in_flight() == 0
                && self.client.pending_requests() == 0;
            let closed = self.client.is_closed() && self.terminal.is_closed();
            if (idle && self.client.is_ready() && self.terminal.is_ready())
                || (closed && self.to_terminal.queue.is_empty() && self.to_client.queue.is_empty())
            {
                return;
            }
            if self.step().is_none() {
                return;
            }
        }
        panic!("the pair did not settle within {MAX_STEPS} steps");
    }

    /// Steps until the simulated clock reaches `until` (timers included).
    pub fn run_until(&mut self, until: Instant) {
        for _ in 0..MAX_STEPS {
            self.flush();
            if self.deliver_due() {
                continue;
            }
            match self.next_time() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.fire_timers();
                }
                _ => {
                    self.now = self.now.max(until);
                    self.flush();
                    return;
                }
            }
        }
        panic!("the pair did not reach the deadline within {MAX_STEPS} steps");
    }
}

/// A typical client hello, for tests and examples.
pub fn hello() -> Hello {
    Hello {
        client_id: ClientId([0xC1; 16]),
        client_name: Some("Till 1".into()),
        app_version: Some("posbridge-harness".into()),
        protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
        max_frame_size: None,
    }
}

/// Typical terminal capabilities, for tests and examples.
pub fn capabilities() -> Capabilities {
    Capabilities {
        terminal_id: TerminalId([0x7E; 16]),
        model: Some("posbridge harness terminal".into()),
        firmware: None,
        serial_number: None,
        merchant_name: Some("Harness Shop".into()),
        protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
        selected_version: posbridge_wire::VERSION_1_1,
        kinds: KindSet::all(),
        methods: MethodSet::all(),
        currencies: vec![Currency::EUR],
        limits: Vec::new(),
        max_frame_size: None,
        features: FeatureSet::default(),
        offline_limits: Vec::new(),
    }
}

/// Sends `bytes` from `client` as one message's bytes, sealed like any message once the channel
/// is up: how a test makes the terminal receive an authentic message it cannot decode (a type
/// from a newer version, or a malformed one).
pub fn send_message_bytes(
    client: &mut ClientSession,
    bytes: &[u8],
    now: Instant,
) -> Result<(), crate::SessionError> {
    client
        .core
        .send_bytes(posbridge_wire::FrameType::Data, bytes, now)
}
