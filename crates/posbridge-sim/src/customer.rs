//! The simulated customer at the terminal's screen (protocol 1.1): what the customer display
//! shows, and how the customer answers questions (scenario section `[customer]`).

use std::time::{Duration, Instant};

use posbridge_session::TerminalSession;
use posbridge_wire::{
    CancelResponse, CancelState, CustomerDisplay, CustomerInput, CustomerQuestion, CustomerReply,
    CustomerResponse, Message, RequestId,
};

/// How the simulated customer answers questions on the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerProfile {
    /// How long the customer takes to answer.
    pub delay: Duration,
    /// The tip chosen.
    pub tip: TipChoice,
    /// The answer to a yes/no question.
    pub confirm: bool,
    /// The number typed (clamped into the question's range).
    pub number: u64,
    /// Whether the customer signs when asked (otherwise the question times out).
    pub signs: bool,
    /// The customer walks away: no question is answered; each times out.
    pub absent: bool,
}

impl Default for CustomerProfile {
    /// Answers after 1.5 s: the second tip preset (or none without presets), yes, 1, signs.
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(1500),
            tip: TipChoice::Preset(1),
            confirm: true,
            number: 1,
            signs: true,
            absent: false,
        }
    }
}

/// What the simulated customer tips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipChoice {
    /// No tip.
    None,
    /// The preset at this index (0 = the first); no tip when there is no such preset.
    Preset(usize),
    /// This amount typed, in minor units (no tip when custom amounts are not offered).
    Custom(u64),
}

/// A question on the screen.
struct Open {
    session: u64,
    input: CustomerInput,
    answer_at: Option<Instant>,
    times_out_at: Instant,
}

/// The customer side of the simulated terminal.
pub(crate) struct Customer {
    profile: CustomerProfile,
    open: Vec<Open>,
    shown: Option<CustomerDisplay>,
}

/// A small valid PNG (1×1, white): the simulated customer's signature.
const SIGNATURE_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A, 0x7E, 0x9B,
    0x55, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0x0F, 0x00, 0x01,
    0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

impl Customer {
    pub(crate) fn new(profile: CustomerProfile) -> Self {
        Self {
            profile,
            open: Vec::new(),
            shown: None,
        }
    }

    /// What the customer display shows now.
    pub(crate) fn shown(&self) -> Option<&CustomerDisplay> {
        self.shown.as_ref()
    }

    pub(crate) fn display(
        &mut self,
        session: &mut TerminalSession,
        d: &CustomerDisplay,
        now: Instant,
    ) {
        self.shown = Some(d.clone());
        let _ = session.respond(
            &Message::CustomerResponse(CustomerResponse {
                request_id: d.request_id,
                reply: CustomerReply::Shown,
            }),
            now,
        );
    }

    pub(crate) fn ask(&mut self, session: &TerminalSession, input: &CustomerInput, now: Instant) {
        let answers = !self.profile.absent
            && (input.question != CustomerQuestion::Signature || self.profile.signs);
        self.open.push(Open {
            session: session.id(),
            input: input.clone(),
            answer_at: answers.then_some(now + self.profile.delay),
            times_out_at: now + Duration::from_millis(input.timeout_ms.into()),
        });
    }

    fn reply(&self, question: &CustomerQuestion) -> CustomerReply {
        match question {
            CustomerQuestion::Tip {
                base,
                presets,
                custom,
                ..
            } => CustomerReply::Tip(match self.profile.tip {
                TipChoice::None => 0,
                TipChoice::Preset(i) => presets
                    .get(i)
                    .map_or(0, |p| base.saturating_mul(u64::from(*p)) / 100),
                TipChoice::Custom(v) if *custom => v,
                TipChoice::Custom(_) => 0,
            }),
            CustomerQuestion::YesNo => CustomerReply::Confirmed(self.profile.confirm),
            CustomerQuestion::Number { min, max } => {
                CustomerReply::Number(self.profile.number.clamp(*min, *max))
            }
            _ => CustomerReply::Signature(SIGNATURE_PNG.to_vec()),
        }
    }

    /// A cancel of `target`: whether it named an open question (then answered as cancelled).
    pub(crate) fn cancel(
        &mut self,
        session: &mut TerminalSession,
        request_id: RequestId,
        target: RequestId,
        now: Instant,
    ) -> bool {
        let Some(i) = self
            .open
            .iter()
            .position(|o| o.session == session.id() && o.input.request_id == target)
        else {
            return false;
        };
        self.open.remove(i);
        let _ = session.respond(
            &Message::CancelResponse(CancelResponse {
                request_id,
                target,
                state: CancelState::Accepted,
            }),
            now,
        );
        let _ = session.respond(
            &Message::CustomerResponse(CustomerResponse {
                request_id: target,
                reply: CustomerReply::Cancelled,
            }),
            now,
        );
        true
    }

    /// The session's connection ended: its questions leave the screen.
    pub(crate) fn closed(&mut self, session: u64) {
        self.open.retain(|o| o.session != session);
    }

    pub(crate) fn poll_timeout(&self, session: &TerminalSession) -> Option<Instant> {
        self.open
            .iter()
            .filter(|o| o.session == session.id())
            .map(|o| {
                o.answer_at
                    .map_or(o.times_out_at, |a| a.min(o.times_out_at))
            })
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, session: &mut TerminalSession, now: Instant) {
        let mine = |o: &Open| o.session == session.id();
        let (due, rest): (Vec<Open>, Vec<Open>) =
            std::mem::take(&mut self.open).into_iter().partition(|o| {
                mine(o) && (o.times_out_at <= now || o.answer_at.is_some_and(|a| a <= now))
            });
        self.open = rest;
        for o in due {
            let reply = match o.answer_at {
                Some(a) if a <= now && a <= o.times_out_at => self.reply(&o.input.question),
                _ => CustomerReply::TimedOut,
            };
            let _ = session.respond(
                &Message::CustomerResponse(CustomerResponse {
                    request_id: o.input.request_id,
                    reply,
                }),
                now,
            );
        }
    }
}
