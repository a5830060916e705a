//! The ZVT exchange, sans-IO: [`Register`] (the cash register's side) and [`Terminal`] (the
//! terminal's side) as state machines, in the quinn style — the caller hands in what arrived
//! (`handle_apdu`) and the time (`now`), takes out what to send (`poll_transmit`) and what
//! happened (`poll_event`), and runs the timers (`poll_timeout`, `handle_timeout`).
//!
//! One exchange at a time, as ZVT works: the register sends a command and waits up to T3
//! ([`T3`], 5 s) for `80 00`; from then on the terminal is master and sends intermediate
//! states, status informations, print lines and text blocks, and ends with a completion
//! (`06 0F`) or an abort (`06 1E`), each answered `80 00` by the register within T3. The register
//! may send abort (`06 B0`) into a running payment.
//!
//! Under these, a [`Line`](crate::line::Line) frames the APDUs (and on serial lines answers and
//! resends frames). The tokio drivers are the client and the server (feature `io`); the ZVT
//! schedules drive both sides under simulated time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bmp::Bmp;
use crate::{Apdu, Command};

/// The specification's T3: how long a side waits for `80 00` after a message.
pub const T3: Duration = Duration::from_secs(5);

/// What the terminal sent during one exchange, in order (its intermediate states excepted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// Status informations (`04 0F`).
    pub status: Vec<Vec<Bmp>>,
    /// Print lines (`06 D1`) as text, with the index of the receipt they belong to.
    pub lines: Vec<(usize, String)>,
    /// The completion's fields (`06 0F`), or `None` if the terminal aborted.
    pub completion: Option<Vec<Bmp>>,
    /// The completion's data as it came (a status enquiry's completion is no BMP fields:
    /// `TerminalStatus` reads it).
    pub completion_data: Option<Vec<u8>>,
    /// The abort's result code (`06 1E`).
    pub aborted: Option<u8>,
    /// Anything else, as it came.
    pub other: Vec<Apdu>,
}

impl Exchange {
    /// The receipts printed, one per block of lines (a line whose attribute has its top bit set
    /// ends a receipt, as does a text block).
    pub fn receipts(&self) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for (i, line) in &self.lines {
            while out.len() <= *i {
                out.push(Vec::new());
            }
            out[*i].push(line.clone());
        }
        out.retain(|r| !r.is_empty());
        out
    }
}

/// Decodes the text of a print line (code page 437; its ASCII part is the same, the rest is
/// shown as `?` except the German letters terminals print).
pub fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x20..=0x7E => b as char,
            0x81 => 'ü',
            0x84 => 'ä',
            0x8E => 'Ä',
            0x94 => 'ö',
            0x99 => 'Ö',
            0x9A => 'Ü',
            0xE1 => 'ß',
            _ => '?',
        })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The text lines of a print text block: the primitive tag-`07` values of its TLV container.
fn block_lines(tlv: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = tlv;
    while let Some((&tag, after)) = rest.split_first() {
        // Two-byte tags (`1F xx`).
        let (tag, after) = if tag & 0x1F == 0x1F {
            match after.split_first() {
                Some((&t2, a)) => (u16::from(tag) << 8 | u16::from(t2), a),
                None => break,
            }
        } else {
            (u16::from(tag), after)
        };
        let Some((&l0, after)) = after.split_first() else {
            break;
        };
        let (len, after) = match l0 {
            0..=0x7F => (usize::from(l0), after),
            0x81 => match after.split_first() {
                Some((&l, a)) => (usize::from(l), a),
                None => break,
            },
            0x82 if after.len() >= 2 => (
                usize::from(u16::from_be_bytes([after[0], after[1]])),
                &after[2..],
            ),
            _ => break,
        };
        let Some(value) = after.get(..len) else {
            break;
        };
        if tag == 0x07 {
            out.push(text(value));
        } else if tag & 0x20 != 0 && tag <= 0xFF {
            // Constructed: look inside.
            out.extend(block_lines(value));
        }
        rest = &after[len..];
    }
    out
}

/// How an exchange ended, as the register saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The terminal ended it with a completion or an abort: what it sent.
    Done(Exchange),
    /// The terminal refused the command (`84 xx`): it did not start.
    Refused(u8),
    /// No `80 00` within T3: the terminal may or may not have taken the command.
    NoAcknowledgement,
    /// The deadline passed while the terminal was working.
    Deadline,
}

/// What a [`Register`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterEvent {
    /// The terminal showed intermediate status `status` during exchange `tag`.
    Status {
        /// The exchange's tag (given to [`Register::start`]).
        tag: u64,
        /// The ZVT intermediate status code.
        status: u8,
    },
    /// Exchange `tag` ended.
    Ended {
        /// The exchange's tag.
        tag: u64,
        /// How.
        how: Ended,
    },
}

/// Why [`Register::start`] did not start a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

#[derive(Debug)]
enum Phase {
    /// Waiting for the terminal's `80 00` until then.
    AwaitAck(Instant),
    /// The terminal is master.
    Working,
}

#[derive(Debug)]
struct Running {
    tag: u64,
    /// Commands the terminal only acknowledges (log-off, abort).
    ack_only: bool,
    phase: Phase,
    deadline: Instant,
    out: Exchange,
    receipt: usize,
    abort_asked: bool,
}

/// The cash register's side of a ZVT connection, sans-IO: one exchange at a time.
#[derive(Debug)]
pub struct Register {
    ack_timeout: Duration,
    running: Option<Running>,
    transmit: VecDeque<Apdu>,
    events: VecDeque<RegisterEvent>,
    /// Messages that came while no exchange ran (a late answer to an exchange given up).
    strays: u64,
    /// The message that ended the exchange before (see [`handle_apdu`](Self::handle_apdu)).
    last_end: Option<Apdu>,
}

impl Register {
    /// A register that waits `ack_timeout` (T3) for the terminal's `80 00`.
    pub fn new(ack_timeout: Duration) -> Self {
        Self {
            ack_timeout,
            running: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            strays: 0,
            last_end: None,
        }
    }

    /// Whether an exchange is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Messages that came while no exchange ran (ignored; each terminal message of a running
    /// exchange is answered `80 00`, these are not).
    pub fn strays(&self) -> u64 {
        self.strays
    }

    /// Starts the exchange of `command` (encoded), tagged `tag`, to end by `deadline`.
    pub fn start(
        &mut self,
        command: Apdu,
        tag: u64,
        now: Instant,
        deadline: Instant,
    ) -> Result<(), Busy> {
        if self.running.is_some() {
            return Err(Busy);
        }
        let ack_only = matches!(command.code(), [0x06, 0x02] | [0x06, 0xB0]);
        self.transmit.push_back(command);
        self.running = Some(Running {
            tag,
            ack_only,
            phase: Phase::AwaitAck(self.ack_until(now, deadline)),
            deadline,
            out: Exchange::default(),
            receipt: 0,
            abort_asked: false,
        });
        Ok(())
    }

    fn ack_until(&self, now: Instant, deadline: Instant) -> Instant {
        (now + self.ack_timeout).min(deadline)
    }

    /// The command reached the terminal (a serial line acknowledged its frame) at `now`: T3
    /// counts from here.
    pub fn delivered(&mut self, now: Instant) {
        let ack_timeout = self.ack_timeout;
        if let Some(r) = self.running.as_mut()
            && let Phase::AwaitAck(_) = r.phase
        {
            r.phase = Phase::AwaitAck((now + ack_timeout).min(r.deadline));
        }
    }

    /// Asks the terminal to abort the running command (`06 B0`), once it has taken it.
    pub fn abort(&mut self) {
        let Some(r) = self.running.as_mut() else {
            return;
        };
        if r.abort_asked || r.ack_only {
            return;
        }
        r.abort_asked = true;
        if let Phase::Working = r.phase {
            self.transmit
                .push_back(Command::Abort.to_apdu().expect("abort encodes"));
        }
    }

    fn end(&mut self, how: Ended) {
        if let Some(r) = self.running.take() {
            self.events
                .push_back(RegisterEvent::Ended { tag: r.tag, how });
        }
    }

    /// Takes in an APDU from the terminal.
    ///
    /// On a serial line a frame whose `ACK` was lost is sent again and arrives twice, and the
    /// copy of the message that ended an exchange can arrive after the next command left —
    /// always before the terminal's answer to it, since the terminal's line sends one frame at
    /// a time. So while the register waits for that answer, a message equal to the one that
    /// ended the exchange before is that copy, not the answer: it is ignored. (Were it a real
    /// answer — the same refusal twice in a row — the command is left without an
    /// acknowledgement, in doubt, never misread.)
    pub fn handle_apdu(&mut self, apdu: Apdu, now: Instant) {
        let _ = now;
        let awaiting_ack = matches!(
            self.running.as_ref().map(|r| &r.phase),
            Some(Phase::AwaitAck(_))
        );
        if self.running.is_none() || awaiting_ack {
            match apdu.code() {
                // A copy of the message that ended the exchange before (answered already).
                _ if self.last_end.as_ref() == Some(&apdu) => {
                    self.strays += 1;
                    return;
                }
                [0x80, 0x00] | [0x84, _] if awaiting_ack => {}
                // A late acknowledgement of an exchange given up.
                [0x80, 0x00] | [0x84, _] => {
                    self.strays += 1;
                    return;
                }
                // Anything else while no command of ours has been taken is a message of an
                // earlier command the terminal is still reporting (one we gave up waiting for):
                // answered, so the terminal finishes, and never read as this command's answer.
                _ => {
                    self.strays += 1;
                    self.transmit.push_back(Apdu::ack());
                    if matches!(apdu.code(), [0x06, 0x0F] | [0x06, 0x1E]) {
                        self.last_end = Some(apdu);
                    }
                    return;
                }
            }
        }
        let r = self.running.as_mut().expect("checked above");
        if let Phase::AwaitAck(_) = r.phase {
            match apdu.code() {
                [0x84, code] => {
                    self.last_end = Some(apdu);
                    return self.end(Ended::Refused(code));
                }
                _ => {
                    r.phase = Phase::Working;
                    if r.abort_asked {
                        self.transmit
                            .push_back(Command::Abort.to_apdu().expect("abort encodes"));
                    }
                    if r.ack_only {
                        let out = std::mem::take(&mut r.out);
                        self.last_end = Some(apdu);
                        self.end(Ended::Done(out));
                    }
                    return;
                }
            }
        }
        // Answers to our abort, not messages to answer.
        if matches!(apdu.code(), [0x80, 0x00] | [0x84, _]) {
            return;
        }
        self.transmit.push_back(Apdu::ack());
        match Command::from_apdu(&apdu) {
            Ok(Command::IntermediateStatus { status, .. }) => {
                let tag = r.tag;
                self.events.push_back(RegisterEvent::Status { tag, status });
            }
            Ok(Command::StatusInformation(f)) => r.out.status.push(f),
            Ok(Command::PrintLine { attribute, text: t }) => {
                r.out.lines.push((r.receipt, text(&t)));
                if attribute & 0x80 != 0 {
                    r.receipt += 1;
                }
            }
            Ok(Command::PrintTextBlock(tlv)) => {
                for line in block_lines(&tlv) {
                    r.out.lines.push((r.receipt, line));
                }
                r.receipt += 1;
            }
            Ok(Command::Completion(f)) => {
                let mut out = std::mem::take(&mut r.out);
                out.completion = Some(f);
                out.completion_data = Some(apdu.data.clone());
                self.last_end = Some(apdu);
                self.end(Ended::Done(out));
            }
            Ok(Command::AbortFromTerminal { result, .. }) => {
                let mut out = std::mem::take(&mut r.out);
                out.aborted = Some(result);
                self.last_end = Some(apdu);
                self.end(Ended::Done(out));
            }
            _ => r.out.other.push(apdu),
        }
    }

    /// The next APDU to send.
    pub fn poll_transmit(&mut self) -> Option<Apdu> {
        self.transmit.pop_front()
    }

    /// What happened.
    pub fn poll_event(&mut self) -> Option<RegisterEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = self.running.as_ref()?;
        Some(match r.phase {
            Phase::AwaitAck(until) => until.min(r.deadline),
            Phase::Working => r.deadline,
        })
    }

    /// Runs the timers: no `80 00` within T3 (or the deadline first), or the deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.poll_timeout() else {
            return;
        };
        if now < due {
            return;
        }
        let awaiting = matches!(
            self.running.as_ref().map(|r| &r.phase),
            Some(Phase::AwaitAck(_))
        );
        self.end(if awaiting {
            Ended::NoAcknowledgement
        } else {
            Ended::Deadline
        });
    }

    /// Gives the running exchange up (the connection is gone): nothing more is reported for it.
    pub fn reset(&mut self) {
        self.running = None;
        self.transmit.clear();
    }
}

/// What a [`Terminal`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalEvent {
    /// A command from the register, while none runs: answer it with [`Terminal::accept`],
    /// [`Terminal::refuse`] or [`Terminal::reject`].
    Command(Apdu),
    /// The register acknowledged the message sent last; the next may go.
    Acknowledged,
    /// The register asked to abort the running command (already answered `80 00`).
    AbortRequested,
    /// The register did not acknowledge a message within T3: the exchange is given up (the
    /// command it belongs to goes on without the register).
    NoAcknowledgement,
}

/// The terminal's side of a ZVT connection, sans-IO: commands in, each message of the running
/// command out one at a time, each waiting for the register's `80 00` within T3.
#[derive(Debug)]
pub struct Terminal {
    ack_timeout: Duration,
    /// A command is running (accepted and not finished).
    busy: bool,
    /// The message out waits for `80 00` until then (armed when handed out).
    awaiting: Option<Instant>,
    /// Handed out, waiting for `80 00`, not yet given a deadline.
    armed: bool,
    /// The last message of the running command is queued: once it is acknowledged the command
    /// is over.
    ending: bool,
    outbox: VecDeque<Apdu>,
    transmit: VecDeque<Apdu>,
    events: VecDeque<TerminalEvent>,
    /// Commands that came while one ran (a register that sent it again): ignored.
    ignored: u64,
}

impl Terminal {
    /// A terminal that waits `ack_timeout` (T3) for the register's `80 00`.
    pub fn new(ack_timeout: Duration) -> Self {
        Self {
            ack_timeout,
            busy: false,
            awaiting: None,
            armed: false,
            ending: false,
            outbox: VecDeque::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            ignored: 0,
        }
    }

    /// Whether a command is running.
    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Whether a message waits for the register's `80 00` or its turn.
    pub fn is_sending(&self) -> bool {
        self.awaiting.is_some() || self.armed || !self.outbox.is_empty()
    }

    /// Commands that came while one ran and were ignored.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Takes in an APDU from the register.
    pub fn handle_apdu(&mut self, apdu: Apdu, _now: Instant) {
        match apdu.code() {
            [0x80, 0x00] => {
                // Only while a message waits for it: a late or repeated one is not for the
                // message queued next.
                if self.awaiting.take().is_some() {
                    self.events.push_back(TerminalEvent::Acknowledged);
                    self.next();
                    if self.ending && !self.armed {
                        // The last message is acknowledged: the next command may come.
                        self.ending = false;
                        self.busy = false;
                    }
                }
            }
            // A register's refusal of our message is no acknowledgement: T3 runs on.
            [0x84, _] => {}
            [0x06, 0xB0] if self.busy => {
                self.transmit.push_back(Apdu::ack());
                self.events.push_back(TerminalEvent::AbortRequested);
            }
            _ if self.busy => self.ignored += 1,
            _ => {
                self.busy = true;
                self.events.push_back(TerminalEvent::Command(apdu));
            }
        }
    }

    /// Takes the command on (`80 00`); its messages follow with [`send`](Self::send).
    pub fn accept(&mut self) {
        self.transmit.push_back(Apdu::ack());
    }

    /// Refuses the command before it starts (`84 code`).
    pub fn refuse(&mut self, code: u8) {
        self.transmit.push_back(Apdu::nak(code));
        self.busy = false;
    }

    /// Answers a command that needs only an acknowledgement (`80 00`) and ends it.
    pub fn acknowledge_only(&mut self) {
        self.transmit.push_back(Apdu::ack());
        self.busy = false;
    }

    /// Sends `message` of the running command once the ones before are acknowledged.
    pub fn send(&mut self, message: Apdu, _now: Instant) {
        self.outbox.push_back(message);
        if self.awaiting.is_none() && !self.armed {
            self.next();
        }
    }

    /// Sends `message` as the last of the running command: once the register acknowledges it,
    /// the command is over and the next may come (no [`finish`](Self::finish) needed).
    pub fn end(&mut self, message: Apdu, now: Instant) {
        self.ending = true;
        self.send(message, now);
    }

    fn next(&mut self) {
        if let Some(m) = self.outbox.pop_front() {
            self.transmit.push_back(m);
            self.armed = true;
        }
    }

    /// The running command is over (its last message acknowledged, or given up): the next
    /// command may come.
    pub fn finish(&mut self) {
        self.busy = false;
        self.ending = false;
    }

    /// The message sent last reached the register (a serial line acknowledged its frame) at
    /// `now`: T3 counts from here.
    pub fn delivered(&mut self, now: Instant) {
        if self.awaiting.is_some() {
            self.awaiting = Some(now + self.ack_timeout);
        }
    }

    /// The next APDU to send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Apdu> {
        let m = self.transmit.pop_front()?;
        // The one message that waits for the register's answer (replies do not).
        if self.armed && !matches!(m.code(), [0x80, 0x00] | [0x84, _]) {
            self.armed = false;
            self.awaiting = Some(now + self.ack_timeout);
        }
        Some(m)
    }

    /// What happened.
    pub fn poll_event(&mut self) -> Option<TerminalEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.awaiting
    }

    /// No `80 00` within T3: the messages of the running command are given up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.awaiting.is_some_and(|u| now >= u) {
            self.awaiting = None;
            self.outbox.clear();
            self.busy = false;
            self.ending = false;
            self.events.push_back(TerminalEvent::NoAcknowledgement);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale() -> Apdu {
        Command::Authorization {
            amount: 1250,
            currency: Some(978),
            extra: Vec::new(),
        }
        .to_apdu()
        .unwrap()
    }

    /// Moves everything one side has to send to the other until both are quiet.
    fn settle(reg: &mut Register, term: &mut Terminal, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(a) = reg.poll_transmit() {
                term.handle_apdu(a, now);
                moved = true;
            }
            while let Some(a) = term.poll_transmit(now) {
                reg.handle_apdu(a, now);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    #[test]
    fn a_sale_runs_from_command_to_completion() {
        let now = Instant::now();
        let mut reg = Register::new(T3);
        let mut term = Terminal::new(T3);
        reg.start(sale(), 7, now, now + Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            reg.start(sale(), 8, now, now + Duration::from_secs(60)),
            Err(Busy)
        );
        settle(&mut reg, &mut term, now);
        assert_eq!(term.poll_event(), Some(TerminalEvent::Command(sale())));
        term.accept();
        let status = Command::StatusInformation(vec![Bmp::Result(0), Bmp::Amount(1250)]);
        term.send(status.to_apdu().unwrap(), now);
        term.send(
            Command::PrintLine {
                attribute: 0x80,
                text: b"KUNDENBELEG".to_vec(),
            }
            .to_apdu()
            .unwrap(),
            now,
        );
        term.send(Command::Completion(Vec::new()).to_apdu().unwrap(), now);
        settle(&mut reg, &mut term, now);
        let Some(RegisterEvent::Ended {
            tag: 7,
            how: Ended::Done(ex),
        }) = reg.poll_event()
        else {
            panic!("the exchange ended");
        };
        assert_eq!(ex.status, vec![vec![Bmp::Result(0), Bmp::Amount(1250)]]);
        assert_eq!(ex.receipts(), vec![vec!["KUNDENBELEG".to_string()]]);
        assert_eq!(ex.completion, Some(Vec::new()));
        assert_eq!(
            std::iter::from_fn(|| term.poll_event()).collect::<Vec<_>>(),
            vec![TerminalEvent::Acknowledged; 3]
        );
        assert!(!term.is_sending());
    }

    #[test]
    fn no_acknowledgement_within_t3_and_a_deadline_while_working() {
        let now = Instant::now();
        let mut reg = Register::new(T3);
        reg.start(sale(), 1, now, now + Duration::from_secs(60))
            .unwrap();
        assert_eq!(reg.poll_transmit(), Some(sale()));
        assert_eq!(reg.poll_timeout(), Some(now + T3));
        reg.handle_timeout(now + T3 - Duration::from_millis(1));
        assert_eq!(reg.poll_event(), None);
        reg.handle_timeout(now + T3);
        assert_eq!(
            reg.poll_event(),
            Some(RegisterEvent::Ended {
                tag: 1,
                how: Ended::NoAcknowledgement
            })
        );
        reg.start(sale(), 2, now, now + Duration::from_secs(60))
            .unwrap();
        reg.handle_apdu(Apdu::ack(), now);
        assert_eq!(reg.poll_timeout(), Some(now + Duration::from_secs(60)));
        reg.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(
            reg.poll_event(),
            Some(RegisterEvent::Ended {
                tag: 2,
                how: Ended::Deadline
            })
        );
    }

    #[test]
    fn an_abort_waits_for_the_acknowledgement_and_its_answer_is_not_answered() {
        let now = Instant::now();
        let mut reg = Register::new(T3);
        reg.start(sale(), 1, now, now + Duration::from_secs(60))
            .unwrap();
        reg.poll_transmit();
        reg.abort();
        assert_eq!(reg.poll_transmit(), None, "not before the terminal took it");
        reg.handle_apdu(Apdu::ack(), now);
        assert_eq!(reg.poll_transmit(), Some(Command::Abort.to_apdu().unwrap()));
        reg.handle_apdu(Apdu::ack(), now);
        assert_eq!(reg.poll_transmit(), None, "the answer to the abort");
        reg.handle_apdu(
            Command::AbortFromTerminal {
                result: 0x6C,
                extra: Vec::new(),
            }
            .to_apdu()
            .unwrap(),
            now,
        );
        assert_eq!(reg.poll_transmit(), Some(Apdu::ack()));
        assert!(matches!(
            reg.poll_event(),
            Some(RegisterEvent::Ended { how: Ended::Done(ex), .. }) if ex.aborted == Some(0x6C)
        ));
    }

    /// Found by the ZVT schedules: on a serial line the terminal sent its abort (`06 1E`) of a
    /// declined payment again (the register's `ACK` was lost), and the copy arrived after the
    /// next sale left; it was read as that sale's decline, and the sale — which the terminal
    /// then ran and approved — was journaled declined, its approval booked to the sale after.
    #[test]
    fn a_repeated_end_of_the_exchange_before_is_not_the_answer_to_the_next_command() {
        let now = Instant::now();
        let mut reg = Register::new(T3);
        let declined = Command::AbortFromTerminal {
            result: 0x33,
            extra: Vec::new(),
        }
        .to_apdu()
        .unwrap();
        reg.start(sale(), 1, now, now + Duration::from_secs(60))
            .unwrap();
        reg.handle_apdu(Apdu::ack(), now);
        reg.handle_apdu(declined.clone(), now);
        assert!(matches!(
            reg.poll_event(),
            Some(RegisterEvent::Ended { tag: 1, how: Ended::Done(ex) }) if ex.aborted == Some(0x33)
        ));
        reg.start(sale(), 2, now, now + Duration::from_secs(60))
            .unwrap();
        reg.handle_apdu(declined, now);
        assert_eq!(reg.poll_event(), None, "the copy is not the answer");
        assert_eq!(reg.strays(), 1);
        reg.handle_apdu(Apdu::ack(), now);
        reg.handle_apdu(Command::Completion(Vec::new()).to_apdu().unwrap(), now);
        assert!(matches!(
            reg.poll_event(),
            Some(RegisterEvent::Ended { tag: 2, how: Ended::Done(ex) }) if ex.completion.is_some()
        ));
    }

    /// Found by the ZVT schedules: a register that gave up waiting for a payment's report sent a
    /// repeat receipt while the terminal was still reporting the payment; the payment's status
    /// information and completion were read as the repeat receipt's answer (a terminal "that
    /// skips the acknowledgement"), and recovery, finding a completion with no status
    /// information, took the payment for never done and sent it again — charged twice.
    #[test]
    fn messages_before_the_acknowledgement_belong_to_an_earlier_command() {
        let now = Instant::now();
        let mut reg = Register::new(T3);
        let repeat = Command::RepeatReceipt {
            password: 0,
            extra: Vec::new(),
        }
        .to_apdu()
        .unwrap();
        reg.start(repeat.clone(), 1, now, now + Duration::from_secs(60))
            .unwrap();
        assert_eq!(reg.poll_transmit(), Some(repeat));
        let earlier = Command::StatusInformation(vec![Bmp::Result(0), Bmp::Trace(9)])
            .to_apdu()
            .unwrap();
        reg.handle_apdu(earlier, now);
        reg.handle_apdu(Command::Completion(Vec::new()).to_apdu().unwrap(), now);
        assert_eq!(reg.poll_event(), None, "not this command's answer");
        assert_eq!(reg.strays(), 2);
        // Answered, so the terminal finishes its report.
        assert_eq!(reg.poll_transmit(), Some(Apdu::ack()));
        assert_eq!(reg.poll_transmit(), Some(Apdu::ack()));
        // The terminal then ignored the repeat receipt (it was busy): no acknowledgement in T3.
        reg.handle_timeout(now + T3);
        assert_eq!(
            reg.poll_event(),
            Some(RegisterEvent::Ended {
                tag: 1,
                how: Ended::NoAcknowledgement
            })
        );
    }

    #[test]
    fn a_command_sent_again_while_one_runs_is_ignored_by_the_terminal() {
        let now = Instant::now();
        let mut term = Terminal::new(T3);
        term.handle_apdu(sale(), now);
        assert_eq!(term.poll_event(), Some(TerminalEvent::Command(sale())));
        term.accept();
        term.handle_apdu(sale(), now);
        assert_eq!(term.poll_event(), None);
        assert_eq!(term.ignored(), 1);
        term.handle_apdu(Command::Abort.to_apdu().unwrap(), now);
        assert_eq!(term.poll_event(), Some(TerminalEvent::AbortRequested));
    }

    #[test]
    fn the_terminal_gives_up_a_message_not_acknowledged_within_t3() {
        let now = Instant::now();
        let mut term = Terminal::new(T3);
        term.handle_apdu(sale(), now);
        term.poll_event();
        term.accept();
        term.send(Command::Completion(Vec::new()).to_apdu().unwrap(), now);
        assert_eq!(term.poll_transmit(now), Some(Apdu::ack()));
        assert!(term.poll_transmit(now).is_some());
        assert_eq!(term.poll_timeout(), Some(now + T3));
        term.handle_timeout(now + T3);
        assert_eq!(term.poll_event(), Some(TerminalEvent::NoAcknowledgement));
        assert!(!term.is_busy());
    }
}
