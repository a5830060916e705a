//! The pairing window's counters under attempts from many peers at once, interleaved at random
//! (seeded): whatever outsiders do, no wrong code ever pairs, a code never serves more attempts
//! than its budget, the code changes only when its budget is used up, the handover secret never
//! changes and always pairs while the window lasts, and a right code the window accepted always
//! pairs.

use std::time::{Duration, Instant};

use posbridge_crypto::{
    ClientPairing, LocalIdentity, PairingConfig, PairingError, PairingSecret, PairingWindow,
    PeerId, TerminalPairing, WindowState, abort,
};
use posbridge_wire::{Pairing, Timestamp};

const AT: Timestamp = Timestamp(1_764_000_000_000);

/// xorshift64*: enough to choose among actions, seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An attempt an outsider started: the terminal's half, and the message it answered with.
struct Pending {
    attempt: TerminalPairing,
    client: ClientPairing,
    reply: Pairing,
}

/// What one run saw: new codes made, and the merchant's tag accepted during a lockout.
#[derive(Default)]
struct Seen {
    new_codes: u32,
    tag_in_lockout: u32,
}

fn run(seed: u64, seen: &mut Seen) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let terminal = LocalIdentity::generate(PeerId([0x7e; 16]), "terminal").unwrap();
    let outsiders: Vec<LocalIdentity> = (0..6u8)
        .map(|i| LocalIdentity::generate(PeerId([i + 1; 16]), "outsider").unwrap())
        .collect();
    let merchant = LocalIdentity::generate(PeerId([0xAA; 16]), "merchant").unwrap();
    let config = PairingConfig::default();
    let start = Instant::now();
    let mut now = start;
    let mut window = PairingWindow::open(config, now).unwrap();
    let handover = *window.handover_secret().unwrap();
    let mut pending: Vec<Pending> = Vec::new();
    // Code attempts the window accepted, per code generation.
    let mut accepted_per_generation = vec![0u32];
    let mut generation = window.generation();
    for step in 0..400 {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(40) {
            // An outsider starts an attempt with a guessed code (never the one on the screen).
            0..=15 => {
                let shown: u32 = window.code().map_or(0, |c| c.parse().unwrap());
                let guess = (shown + 1 + rng.below(999_998) as u32) % 1_000_000;
                let secret = PairingSecret::code(&format!("{guess:06}")).unwrap();
                let who = &outsiders[rng.below(outsiders.len() as u64) as usize];
                let (client, first) = ClientPairing::start(who, &secret).unwrap();
                let state = window.state(now);
                match window.accept(&terminal, &first, now) {
                    Ok((attempt, reply)) => {
                        assert_eq!(state, WindowState::Open, "{ctx}: accepted while {state:?}");
                        *accepted_per_generation
                            .last_mut()
                            .expect("one per generation") += 1;
                        pending.push(Pending {
                            attempt,
                            client,
                            reply,
                        });
                    }
                    Err(PairingError::LockedOut { .. }) => {
                        assert!(
                            matches!(window.state(now), WindowState::LockedOut { .. }),
                            "{ctx}"
                        );
                    }
                    Err(PairingError::WindowClosed) => {
                        assert!(!matches!(state, WindowState::Open), "{ctx}");
                    }
                    Err(e) => panic!("{ctx}: {e}"),
                }
            }
            // An outsider carries on with one of its attempts: the codes differ, so it fails.
            16..=23 if !pending.is_empty() => {
                let p = pending.swap_remove(rng.below(pending.len() as u64) as usize);
                let told = match p.client.confirm(&p.reply) {
                    Err(e) => e.abort_message().expect("a wrong code is reported"),
                    Ok(_) => panic!("{ctx}: a wrong code confirmed"),
                };
                let finished = p.attempt.finish(&mut window, &told, now, AT);
                assert!(finished.is_err(), "{ctx}: a wrong code paired");
            }
            // An outsider sends junk instead of its confirmation, or just goes away.
            24..=27 if !pending.is_empty() => {
                let p = pending.swap_remove(rng.below(pending.len() as u64) as usize);
                if rng.below(2) == 0 {
                    let junk = abort(posbridge_crypto::AbortReason::Protocol, 0);
                    assert!(p.attempt.finish(&mut window, &junk, now, AT).is_err());
                }
            }
            // Time passes.
            28..=38 => now += Duration::from_millis(rng.below(4000)),
            16..=27 => {}
            // The merchant types the code on the screen, or scans the tag.
            _ => {
                let by_tag = rng.below(2) == 0;
                let secret = if by_tag {
                    PairingSecret::handover(handover)
                } else {
                    match window.code() {
                        Some(c) => PairingSecret::code(c).unwrap(),
                        None => continue,
                    }
                };
                let state = window.state(now);
                let (client, first) = ClientPairing::start(&merchant, &secret).unwrap();
                match window.accept(&terminal, &first, now) {
                    Ok((attempt, reply)) => {
                        if !by_tag {
                            *accepted_per_generation.last_mut().unwrap() += 1;
                        }
                        if by_tag && matches!(state, WindowState::LockedOut { .. }) {
                            seen.tag_in_lockout += 1;
                        }
                        let (client, third) = client.confirm(&reply).unwrap();
                        let (record, fourth) = attempt
                            .finish(&mut window, &third, now, AT)
                            .unwrap_or_else(|e| {
                                panic!("{ctx}: an accepted right code failed: {e}")
                            });
                        assert_eq!(record.peer, merchant.public_keys());
                        client.finish(&fourth, AT).unwrap();
                        assert_eq!(window.state(now), WindowState::Paired);
                        return;
                    }
                    Err(e) => {
                        // The tag is refused only once the window is over; never for lockouts
                        // that outsiders caused.
                        if by_tag {
                            assert!(
                                matches!(
                                    state,
                                    WindowState::Expired
                                        | WindowState::Closed
                                        | WindowState::Paired
                                ),
                                "{ctx}: the tag was refused ({e}) while {state:?}"
                            );
                            return;
                        }
                        assert!(
                            matches!(
                                e,
                                PairingError::LockedOut { .. } | PairingError::WindowClosed
                            ),
                            "{ctx}: {e}"
                        );
                    }
                }
            }
        }
        // The handover secret never changes while the window lasts.
        if let Some(h) = window.handover_secret() {
            assert_eq!(*h, handover, "{ctx}");
        }
        if window.generation() != generation {
            // A new code only after the old one's budget was used up (attempts started count).
            assert_eq!(
                *accepted_per_generation.last().unwrap(),
                3,
                "{ctx}: the code changed before its budget was used"
            );
            generation = window.generation();
            accepted_per_generation.push(0);
            seen.new_codes += 1;
        }
        assert!(
            *accepted_per_generation.last().unwrap() <= 3,
            "{ctx}: more attempts than the budget"
        );
        if now >= start + Duration::from_secs(180) {
            assert_eq!(window.state(now), WindowState::Expired);
            return;
        }
    }
}

#[test]
fn the_window_s_counters_hold_under_interleaved_attempts_from_many_peers() {
    let mut seen = Seen::default();
    for seed in 0..150 {
        run(seed, &mut seen);
    }
    // The runs did reach what they are about: codes used up by outsiders, and the tag pairing
    // during the lockouts they caused.
    assert!(seen.new_codes > 100, "{} new codes", seen.new_codes);
    assert!(
        seen.tag_in_lockout > 5,
        "{} tag pairings in a lockout",
        seen.tag_in_lockout
    );
}
