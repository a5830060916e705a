//! Protocol 1.1: one terminal, several tills — a lease a till takes for its payments, with the
//! holder's name visible to the others and a queue with positions.

use alloc::string::String;

use super::common::limits;
use crate::error::MessageEncodeError;
use crate::tlv::{DecResult, EncResult, Reader, Slot, Tlv, Writer, key};
use crate::types::RequestId;

/// The shortest lease, in milliseconds (1 s).
pub const MIN_LEASE_MS: u32 = 1_000;
/// The longest lease, in milliseconds (1 hour). Every request of the holder renews it.
pub const MAX_LEASE_MS: u32 = 3_600_000;

const REQUEST_ID: u8 = key(1, true);

/// Client → terminal (1.1): take the terminal for this till's payments, for `duration_ms` after
/// its last request. Answered by a [`LeaseResponse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    /// This request's id.
    pub request_id: RequestId,
    /// The name other tills see while this one holds the terminal ("Till 3, bar").
    pub holder: String,
    /// How long the lease lasts after the holder's last request, in milliseconds
    /// ([`MIN_LEASE_MS`] to [`MAX_LEASE_MS`]).
    pub duration_ms: u32,
    /// Whether to queue behind the holder (otherwise the answer is [`LeaseState::Busy`]).
    pub wait: bool,
}

mod request {
    use super::key;
    pub(super) const HOLDER: u8 = key(2, false);
    pub(super) const DURATION: u8 = key(3, true);
    pub(super) const WAIT: u8 = key(4, false);
}

impl Tlv for LeaseRequest {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use request::*;
        if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&self.duration_ms) {
            return Err(MessageEncodeError::InvalidValue { key: DURATION });
        }
        w.id(REQUEST_ID, self.request_id.as_bytes());
        w.text(HOLDER, &self.holder, limits::NAME)?;
        w.uint(DURATION, self.duration_ms.into());
        w.flag(WAIT, self.wait);
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use request::*;
        let (mut id, mut holder, mut duration, mut wait) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                HOLDER => holder.set(&f, f.text(limits::NAME))?,
                DURATION => duration.set(&f, {
                    let v = f.u32()?;
                    f.check(v, |v| (MIN_LEASE_MS..=MAX_LEASE_MS).contains(v))
                })?,
                WAIT => wait.set(&f, f.flag())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            request_id: id.required(REQUEST_ID, r)?,
            holder: holder.required(HOLDER, r)?,
            duration_ms: duration.required(DURATION, r)?,
            wait: wait.get().unwrap_or(false),
        })
    }
}

/// Where a till stands with the terminal's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseState {
    /// This till holds the terminal; the lease ends `expires_in_ms` after now unless renewed
    /// (every request of the holder renews it).
    Granted {
        /// Milliseconds left.
        expires_in_ms: u32,
    },
    /// Queued behind `holder`, at `position` (1: next).
    Queued {
        /// The place in the queue.
        position: u32,
        /// Who holds the terminal.
        holder: String,
    },
    /// Another till holds it and this one did not ask to wait.
    Busy {
        /// Who holds the terminal.
        holder: String,
    },
    /// This till does not hold the terminal (it gave it back, or it never held it).
    Released,
    /// This till's lease ran out: it made no request for the lease's duration.
    Expired,
}

/// Terminal → client (1.1): where this till stands with the lease — the answer to a
/// [`LeaseRequest`] or [`LeaseRelease`](crate::LeaseRelease) (with its request id), or pushed when it changes for a
/// queued or holding till (no request id): a new position, granted, expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseResponse {
    /// The request answered; `None` for a push.
    pub request_id: Option<RequestId>,
    /// Where this till stands.
    pub state: LeaseState,
}

mod response {
    use super::key;
    pub(super) const STATE: u8 = key(2, true);
    pub(super) const EXPIRES: u8 = key(3, true);
    pub(super) const POSITION: u8 = key(4, true);
    pub(super) const HOLDER: u8 = key(5, false);
}

impl Tlv for LeaseResponse {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use response::*;
        if let Some(id) = &self.request_id {
            w.id(REQUEST_ID, id.as_bytes());
        }
        match &self.state {
            LeaseState::Granted { expires_in_ms } => {
                w.uint(STATE, 1);
                w.uint(EXPIRES, (*expires_in_ms).into());
            }
            LeaseState::Queued { position, holder } => {
                if *position == 0 {
                    return Err(MessageEncodeError::InvalidValue { key: POSITION });
                }
                w.uint(STATE, 2);
                w.uint(POSITION, (*position).into());
                w.text(HOLDER, holder, limits::NAME)?;
            }
            LeaseState::Busy { holder } => {
                w.uint(STATE, 3);
                w.text(HOLDER, holder, limits::NAME)?;
            }
            LeaseState::Released => w.uint(STATE, 4),
            LeaseState::Expired => w.uint(STATE, 5),
        }
        Ok(())
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use response::*;
        let (mut id, mut state, mut expires, mut position, mut holder) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                REQUEST_ID => id.set(&f, f.array().map(RequestId))?,
                STATE => state.set(&f, f.code(|c| (1..=5).contains(&c).then_some(c)))?,
                EXPIRES => expires.set(&f, f.u32())?,
                POSITION => position.set(&f, f.nonzero_u32())?,
                HOLDER => holder.set(&f, f.text(limits::NAME))?,
                _ => f.unknown()?,
            }
        }
        let stray = [
            (expires.is_some(), expires.invalid(EXPIRES)),
            (position.is_some(), position.invalid(POSITION)),
            (holder.is_some(), holder.invalid(HOLDER)),
        ];
        let code = state.required(STATE, r)?;
        // Which of expires, position, holder each state carries.
        let carries: [bool; 3] = match code {
            1 => [true, false, false],
            2 => [false, true, true],
            3 => [false, false, true],
            _ => [false, false, false],
        };
        for (i, (present, e)) in stray.into_iter().enumerate() {
            if present && !carries[i] {
                return Err(e);
            }
        }
        let state = match code {
            1 => LeaseState::Granted {
                expires_in_ms: expires.required(EXPIRES, r)?,
            },
            2 => LeaseState::Queued {
                position: position.required(POSITION, r)?,
                holder: holder.required(HOLDER, r)?,
            },
            3 => LeaseState::Busy {
                holder: holder.required(HOLDER, r)?,
            },
            4 => LeaseState::Released,
            _ => LeaseState::Expired,
        };
        Ok(Self {
            request_id: id.get(),
            state,
        })
    }
}
