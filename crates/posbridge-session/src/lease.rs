//! One terminal, several tills (protocol 1.1): the lease a till takes for its payments, shared by
//! the terminal's sessions — who holds it, who waits in which order, and when it runs out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posbridge_wire::LeaseState;

/// The holder of the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    session: u64,
    name: String,
    duration: Duration,
    /// `None` until the next look at the clock: granted when a session ended, with no time to
    /// hand.
    expires: Option<Instant>,
}

/// A till waiting for the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Waiter {
    session: u64,
    name: String,
    duration: Duration,
}

/// The terminal's lease: at most one holding session, and a queue of sessions waiting for it.
/// Leases are opt-in: while nobody holds the terminal, any till's payments run as before; while
/// one does, new money commands of the others are refused (`BUSY`, with the holder's name), but
/// what they already started is answered as always.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseBoard {
    holder: Option<Holder>,
    queue: VecDeque<Waiter>,
}

/// A board shared by a terminal's sessions.
pub type SharedLeases = Arc<Mutex<LeaseBoard>>;

impl LeaseBoard {
    /// An empty board, shared.
    pub fn shared() -> SharedLeases {
        Arc::new(Mutex::new(Self::default()))
    }

    /// The name of the till holding the terminal, if one does (for the terminal's own screen).
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_ref().map(|h| h.name.as_str())
    }

    /// How many tills wait.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Ends a lease whose time ran out and hands the terminal to the next in the queue.
    /// Returns the session whose lease expired.
    pub(crate) fn expire(&mut self, now: Instant) -> Option<u64> {
        let holder = self.holder.as_mut()?;
        let expires = *holder.expires.get_or_insert(now + holder.duration);
        if expires > now {
            return None;
        }
        let gone = holder.session;
        self.promote(now);
        Some(gone)
    }

    fn promote(&mut self, now: Instant) {
        self.holder = self.queue.pop_front().map(|w| Holder {
            session: w.session,
            name: w.name,
            duration: w.duration,
            expires: Some(now + w.duration),
        });
    }

    /// `session` asks for the lease under `name` for `duration` after its last request (what a
    /// session does for its client's `LeaseRequest`; a terminal's own app may take the lease
    /// the same way, under an id no session has, to keep tills off while it is serviced).
    pub fn request(
        &mut self,
        session: u64,
        name: &str,
        duration: Duration,
        wait: bool,
        now: Instant,
    ) -> LeaseState {
        self.expire(now);
        match &mut self.holder {
            None => {
                self.queue.retain(|w| w.session != session);
                self.holder = Some(Holder {
                    session,
                    name: name.to_string(),
                    duration,
                    expires: Some(now + duration),
                });
            }
            Some(h) if h.session == session => {
                h.name = name.to_string();
                h.duration = duration;
                h.expires = Some(now + duration);
            }
            Some(h) => {
                let holder = h.name.clone();
                if !wait {
                    self.queue.retain(|w| w.session != session);
                    return LeaseState::Busy { holder };
                }
                match self.queue.iter_mut().find(|w| w.session == session) {
                    Some(w) => {
                        w.name = name.to_string();
                        w.duration = duration;
                    }
                    None => self.queue.push_back(Waiter {
                        session,
                        name: name.to_string(),
                        duration,
                    }),
                }
            }
        }
        self.standing(session, now)
    }

    /// `session` gives the terminal back or leaves the queue (or its connection ended).
    pub(crate) fn release(&mut self, session: u64, now: Option<Instant>) {
        self.queue.retain(|w| w.session != session);
        if self.holder.as_ref().is_some_and(|h| h.session == session) {
            self.holder = None;
            if let Some(now) = now {
                self.promote(now);
            } else {
                // No time to hand: the next holder's lease starts at the next look at the clock.
                self.holder = self.queue.pop_front().map(|w| Holder {
                    session: w.session,
                    name: w.name,
                    duration: w.duration,
                    expires: None,
                });
            }
        }
    }

    /// A request of `session`: renews its lease if it holds one.
    pub(crate) fn renew(&mut self, session: u64, now: Instant) {
        if let Some(h) = self.holder.as_mut().filter(|h| h.session == session) {
            h.expires = Some(now + h.duration);
        }
    }

    /// Whether `session` may start a new money command now: yes unless another holds the
    /// terminal (then its name and how long its lease lasts at most).
    pub(crate) fn allows(&mut self, session: u64, now: Instant) -> Result<(), (String, Duration)> {
        self.expire(now);
        match &self.holder {
            Some(h) if h.session != session => Err((
                h.name.clone(),
                h.expires
                    .map_or(h.duration, |e| e.saturating_duration_since(now)),
            )),
            _ => Ok(()),
        }
    }

    /// Where `session` stands.
    pub(crate) fn standing(&self, session: u64, now: Instant) -> LeaseState {
        match &self.holder {
            Some(h) if h.session == session => LeaseState::Granted {
                expires_in_ms: h
                    .expires
                    .map_or(h.duration, |e| e.saturating_duration_since(now))
                    .as_millis()
                    .min(u128::from(u32::MAX)) as u32,
            },
            Some(h) => match self.queue.iter().position(|w| w.session == session) {
                Some(i) => LeaseState::Queued {
                    position: i as u32 + 1,
                    holder: h.name.clone(),
                },
                None => LeaseState::Released,
            },
            None => LeaseState::Released,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn one_holder_a_queue_in_order_and_expiry_hands_over() {
        let t0 = Instant::now();
        let mut b = LeaseBoard::default();
        assert!(matches!(
            b.request(1, "Till 1", MIN, false, t0),
            LeaseState::Granted { .. }
        ));
        assert_eq!(
            b.request(2, "Till 2", MIN, false, t0),
            LeaseState::Busy {
                holder: "Till 1".into()
            }
        );
        assert_eq!(b.waiting(), 0, "not waiting unless asked");
        for (s, pos) in [(2, 1), (3, 2)] {
            assert_eq!(
                b.request(s, &format!("Till {s}"), MIN, true, t0),
                LeaseState::Queued {
                    position: pos,
                    holder: "Till 1".into()
                }
            );
        }
        assert_eq!(b.allows(2, t0), Err(("Till 1".into(), MIN)));
        assert_eq!(b.allows(1, t0), Ok(()));
        // The holder's activity renews the lease.
        b.renew(1, t0 + Duration::from_secs(50));
        assert_eq!(b.expire(t0 + Duration::from_secs(100)), None);
        // Silent for a minute: Till 2 takes over, Till 3 moves up.
        assert_eq!(b.expire(t0 + Duration::from_secs(110)), Some(1));
        assert_eq!(b.holder(), Some("Till 2"));
        let later = t0 + Duration::from_secs(110);
        assert!(matches!(
            b.standing(2, later),
            LeaseState::Granted {
                expires_in_ms: 60_000
            }
        ));
        assert_eq!(
            b.standing(3, later),
            LeaseState::Queued {
                position: 1,
                holder: "Till 2".into()
            }
        );
        assert_eq!(b.standing(1, later), LeaseState::Released);
        // Till 2's connection ends: Till 3 holds it from the next look at the clock.
        b.release(2, None);
        assert_eq!(b.holder(), Some("Till 3"));
        assert_eq!(b.expire(later + Duration::from_secs(5)), None);
        assert_eq!(b.allows(3, later), Ok(()));
        b.release(3, Some(later));
        assert_eq!(b.holder(), None);
        assert_eq!(b.allows(1, later), Ok(()), "nobody holds it: everyone pays");
    }
}
