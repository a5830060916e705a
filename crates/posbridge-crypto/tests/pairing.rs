//! Pairing: the happy paths, wrong codes and the lockout, expiry, a man in the middle, tampering,
//! persistence, and the hand-over to the secure channel.

use std::time::{Duration, Instant};

use posbridge_crypto::{
    AbortReason, ChannelConfig, ChannelError, ClientPairing, FileKeyStore, InitiatorHandshake,
    LocalIdentity, MemoryKeyStore, PairingConfig, PairingError, PairingRecord, PairingSecret,
    PairingStore, PairingWindow, PeerId, RecordError, Role, WindowState, abort, respond,
};
use posbridge_wire::{Pairing, Timestamp};

const AT: Timestamp = Timestamp(1_764_000_000_000);

fn terminal() -> LocalIdentity {
    LocalIdentity::generate(PeerId([0x7e; 16]), "Till 2").unwrap()
}

fn phone() -> LocalIdentity {
    LocalIdentity::generate(PeerId::random().unwrap(), "Anna's phone").unwrap()
}

fn shown_code(window: &PairingWindow) -> PairingSecret {
    PairingSecret::code(window.code().expect("a code on screen")).unwrap()
}

/// A code that is not the one on the screen.
fn wrong_code(window: &PairingWindow) -> PairingSecret {
    let right: u32 = window.code().unwrap().parse().unwrap();
    PairingSecret::code(&format!("{:06}", (right + 1) % 1_000_000)).unwrap()
}

/// Runs a whole exchange; returns both records or the first error and which side saw it.
fn pair(
    window: &mut PairingWindow,
    terminal: &LocalIdentity,
    phone: &LocalIdentity,
    secret: &PairingSecret,
    now: Instant,
) -> Result<(PairingRecord, PairingRecord), (Role, PairingError, Option<PairingError>)> {
    let (client, m1) = ClientPairing::start(phone, secret).map_err(|e| (Role::Client, e, None))?;
    let (attempt, m2) = match window.accept(terminal, &m1, now) {
        Ok(x) => x,
        Err(e) => {
            // What the client makes of the terminal's abort.
            let seen = e
                .abort_message()
                .map(|abort| client.confirm(&abort).unwrap_err());
            return Err((Role::Terminal, e, seen));
        }
    };
    let (client, m3) = match client.confirm(&m2) {
        Ok(x) => x,
        Err(e) => {
            // The client tells the terminal; what the terminal makes of it.
            let abort = e.abort_message().expect("a wrong code is reported");
            let seen = attempt.finish(window, &abort, now, AT).unwrap_err();
            return Err((Role::Client, e, Some(seen)));
        }
    };
    let (on_terminal, m4) = attempt
        .finish(window, &m3, now, AT)
        .map_err(|e| (Role::Terminal, e, None))?;
    let on_phone = client
        .finish(&m4, AT)
        .map_err(|e| (Role::Client, e, None))?;
    Ok((on_terminal, on_phone))
}

#[test]
fn pairs_with_the_code_and_exchanges_keys() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let code = shown_code(&window);
    let (on_terminal, on_phone) = pair(&mut window, &t, &p, &code, now).unwrap();
    assert_eq!(on_terminal.peer, p.public_keys());
    assert_eq!(on_terminal.peer_role, Role::Client);
    assert_eq!(on_phone.peer, t.public_keys());
    assert_eq!(on_phone.peer_role, Role::Terminal);
    assert_eq!(on_phone.paired_at, AT);
    // One device per window.
    assert_eq!(window.state(now), WindowState::Paired);
    assert_eq!(window.code(), None);
    let err = pair(&mut window, &t, &phone(), &code, now).unwrap_err();
    assert_eq!(err.1, PairingError::WindowClosed);
    assert_eq!(
        err.2,
        Some(PairingError::WindowClosed),
        "the client is told"
    );
}

#[test]
fn pairs_with_the_handover_secret() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let secret = PairingSecret::handover(*window.handover_secret().unwrap());
    let (on_terminal, on_phone) = pair(&mut window, &t, &p, &secret, now).unwrap();
    assert_eq!(on_terminal.peer, p.public_keys());
    assert_eq!(on_phone.peer, t.public_keys());
    // The code does not open the handover path and vice versa.
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let code_bytes: Vec<u8> = window.code().unwrap().bytes().collect();
    let mut as_secret = [0u8; 16];
    as_secret[..6].copy_from_slice(&code_bytes);
    let err = pair(
        &mut window,
        &t,
        &p,
        &PairingSecret::handover(as_secret),
        now,
    )
    .unwrap_err();
    assert_eq!(err.0, Role::Client);
    assert!(matches!(err.1, PairingError::WrongCode { .. }));
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_counts_toward_the_lockout() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let generation = window.generation();

    let (side, on_client, on_terminal) = {
        let secret = wrong_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap_err();
    assert_eq!(side, Role::Client, "the client notices first");
    assert_eq!(
        on_client,
        PairingError::WrongCode {
            attempts_left: None
        }
    );
    assert_eq!(
        on_terminal,
        Some(PairingError::WrongCode {
            attempts_left: Some(2)
        })
    );
    let (_, _, on_terminal) = {
        let secret = wrong_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap_err();
    assert_eq!(
        on_terminal,
        Some(PairingError::WrongCode {
            attempts_left: Some(1)
        })
    );
    assert_eq!(window.generation(), generation);

    // The third wrong code uses the code up: a new one, and a 10 s back-off.
    let (_, _, on_terminal) = {
        let secret = wrong_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap_err();
    assert_eq!(
        on_terminal,
        Some(PairingError::WrongCode {
            attempts_left: Some(0)
        })
    );
    assert_eq!(window.generation(), generation + 1);
    let until = now + Duration::from_secs(10);
    assert_eq!(window.state(now), WindowState::LockedOut { until });
    assert_eq!(window.poll_timeout(now), Some(until));

    // Even the right code is refused during the back-off, and the client is told how long.
    let later = now + Duration::from_secs(4);
    let (side, on_terminal, on_client) = {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, later)
    }
    .unwrap_err();
    assert_eq!(side, Role::Terminal);
    let six = PairingError::LockedOut {
        retry_after: Duration::from_secs(6),
    };
    assert_eq!(on_terminal, six.clone());
    assert_eq!(on_client, Some(six.clone()));
    assert!(six.to_string().contains("6 s"));

    // After the back-off the new code works.
    let after = now + Duration::from_secs(10);
    assert_eq!(window.state(after), WindowState::Open);
    {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, after)
    }
    .unwrap();
}

#[test]
fn back_off_doubles_per_used_up_code_up_to_the_cap() {
    let mut now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut config = PairingConfig::default();
    config
        .set_window(Duration::from_secs(100_000))
        .set_attempts_per_code(1)
        .set_backoff(Duration::from_secs(5), Duration::from_secs(30));
    let mut window = PairingWindow::open(config, now).unwrap();
    let mut waits = Vec::new();
    for _ in 0..6 {
        {
            let secret = wrong_code(&window);
            pair(&mut window, &t, &p, &secret, now)
        }
        .unwrap_err();
        let WindowState::LockedOut { until } = window.state(now) else {
            panic!("locked out after a used-up code");
        };
        waits.push((until - now).as_secs());
        now = until;
    }
    assert_eq!(waits, [5, 10, 20, 30, 30, 30]);
    // A success resets the back-off for the next window's use.
    {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap();
}

#[test]
fn attempts_broken_off_still_count() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    for left in [2, 1, 0] {
        let (_, m1) = ClientPairing::start(&p, &wrong_code(&window)).unwrap();
        // The attacker learns whether its guess was right from step 2 and walks away.
        let _attempt = window.accept(&t, &m1, now).unwrap();
        assert_eq!(window.attempts_left(), left);
    }
    let generation = window.generation();
    let (_, m1) = ClientPairing::start(&p, &shown_code(&window)).unwrap();
    let err = window.accept(&t, &m1, now).unwrap_err();
    assert!(matches!(err, PairingError::LockedOut { .. }), "{err:?}");
    assert_eq!(window.generation(), generation + 1, "a new code is made");
}

#[test]
fn the_window_expires() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    assert_eq!(window.expires_at(), now + Duration::from_secs(180));
    assert_eq!(window.poll_timeout(now), Some(window.expires_at()));
    let late = now + Duration::from_secs(180);
    assert_eq!(window.state(late), WindowState::Expired);
    assert_eq!(window.poll_timeout(late), None);
    let err = {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, late)
    }
    .unwrap_err();
    assert_eq!(err.1, PairingError::WindowClosed);
    assert_eq!(err.2, Some(PairingError::WindowClosed));

    // An attempt started in time cannot finish after the window ended.
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let (client, m1) = ClientPairing::start(&p, &shown_code(&window)).unwrap();
    let (attempt, m2) = window.accept(&t, &m1, now).unwrap();
    let (_, m3) = client.confirm(&m2).unwrap();
    assert_eq!(
        attempt.finish(&mut window, &m3, late, AT).unwrap_err(),
        PairingError::WindowClosed
    );

    // The operator can close it too.
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    window.close();
    assert_eq!(window.state(now), WindowState::Closed);
    assert_eq!(window.handover_secret(), None);
}

/// Someone between phone and terminal who does not know the code. It plays the terminal to the
/// phone and the phone to the terminal, with its own keys and a guessed code; both sides refuse.
#[test]
fn a_man_in_the_middle_without_the_code_fails() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mallory = LocalIdentity::generate(PeerId([0x66; 16]), "Till 2").unwrap();
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let guess = wrong_code(&window);

    // Towards the phone: Mallory answers the phone's first message as a terminal.
    let (client, m1) = ClientPairing::start(&p, &shown_code(&window)).unwrap();
    let mut fake = PairingWindow::open_with(
        PairingConfig::default(),
        now,
        guess.clone(),
        PairingSecret::random_handover().unwrap(),
    )
    .unwrap();
    let (_, forged) = fake.accept(&mallory, &m1, now).unwrap();
    assert_eq!(
        client.confirm(&forged).unwrap_err(),
        PairingError::WrongCode {
            attempts_left: None
        }
    );

    // Towards the terminal: Mallory starts as a phone and answers with its own keys.
    let (mallory_client, m1) = ClientPairing::start(&mallory, &guess).unwrap();
    let (attempt, m2) = window.accept(&t, &m1, now).unwrap();
    assert!(matches!(
        mallory_client.confirm(&m2),
        Err(PairingError::WrongCode { .. })
    ));
    // It cannot make step 3 without the key; replaying or inventing one fails and counts.
    let invented = Pairing {
        step: 3,
        body: vec![0u8; 32 + 16 + 81 + 6],
    };
    assert_eq!(
        attempt.finish(&mut window, &invented, now, AT).unwrap_err(),
        PairingError::WrongCode {
            attempts_left: Some(2)
        }
    );
    assert_eq!(window.state(now), WindowState::Open);

    // Relaying honestly but swapping in its own keys: the sealed keys are bound to the PAKE key.
    let (client, m1) = ClientPairing::start(&p, &shown_code(&window)).unwrap();
    let (attempt, m2) = window.accept(&t, &m1, now).unwrap();
    let (_, honest_m2_from_mallory) = {
        let mut w = PairingWindow::open_with(
            PairingConfig::default(),
            now,
            shown_code(&window),
            PairingSecret::random_handover().unwrap(),
        )
        .unwrap();
        w.accept(&mallory, &m1, now).unwrap()
    };
    let mut spliced = m2.clone();
    let keys_at = 33 + 32;
    spliced.body.truncate(keys_at);
    spliced
        .body
        .extend_from_slice(&honest_m2_from_mallory.body[keys_at..]);
    assert!(client.confirm(&spliced).is_err());
    drop(attempt);
}

#[test]
fn every_bit_flip_of_every_message_is_refused() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut config = PairingConfig::default();
    config.set_attempts_per_code(u8::MAX);
    let open = || {
        PairingWindow::open_with(
            config,
            now,
            PairingSecret::code("246810").unwrap(),
            PairingSecret::handover([1; 16]),
        )
        .unwrap()
    };
    let code = PairingSecret::code("246810").unwrap();

    // Step 2, as the client sees it. Each state is used up by one message, so every flip gets
    // a fresh exchange.
    let exchange = || {
        let mut w = open();
        let (c, m1) = ClientPairing::start(&p, &code).unwrap();
        let (a, m2) = w.accept(&t, &m1, now).unwrap();
        (w, c, a, m2)
    };
    let (_, _, _, m2) = exchange();
    for bit in 0..m2.body.len() * 8 {
        let (_, c, _, mut m2) = exchange();
        m2.body[bit / 8] ^= 1 << (bit % 8);
        assert!(c.confirm(&m2).is_err(), "bit {bit} of step 2 accepted");
    }

    // Step 3, as the terminal sees it.
    let (_, c, _, m2) = exchange();
    let (_, m3) = c.confirm(&m2).unwrap();
    for bit in 0..m3.body.len() * 8 {
        let (mut w, c, a, m2) = exchange();
        let (_, mut m3) = c.confirm(&m2).unwrap();
        m3.body[bit / 8] ^= 1 << (bit % 8);
        assert!(
            a.finish(&mut w, &m3, now, AT).is_err(),
            "bit {bit} of step 3 accepted"
        );
        assert_eq!(w.state(now), WindowState::Open, "a failure does not pair");
    }

    // Step 4, as the client sees it.
    for bit in 0..32 * 8 {
        let (mut w, c, a, m2) = exchange();
        let (c, m3) = c.confirm(&m2).unwrap();
        let (_, mut m4) = a.finish(&mut w, &m3, now, AT).unwrap();
        m4.body[bit / 8] ^= 1 << (bit % 8);
        assert!(c.finish(&m4, AT).is_err(), "bit {bit} of step 4 accepted");
    }
}

#[test]
fn malformed_and_out_of_order_messages_get_typed_errors() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let (client, m1) = ClientPairing::start(&p, &shown_code(&window)).unwrap();

    let mut v2 = m1.clone();
    v2.body[0] = 2;
    let err = window.accept(&t, &v2, now).unwrap_err();
    assert_eq!(err, PairingError::UnsupportedVersion(2));
    let told = client.confirm(&err.abort_message().unwrap()).unwrap_err();
    assert_eq!(told, PairingError::UnsupportedVersion(1));

    for (msg, want) in [
        (
            Pairing {
                step: 3,
                body: m1.body.clone(),
            },
            PairingError::UnexpectedStep {
                expected: 1,
                got: 3,
            },
        ),
        (
            Pairing {
                step: 1,
                body: m1.body[..20].to_vec(),
            },
            PairingError::Malformed {
                step: 1,
                reason: "truncated",
            },
        ),
        (
            Pairing {
                step: 1,
                body: [&m1.body[..], &[0]].concat(),
            },
            PairingError::Malformed {
                step: 1,
                reason: "trailing bytes",
            },
        ),
        (
            Pairing {
                step: 1,
                body: [&[1, 9][..], &m1.body[2..]].concat(),
            },
            PairingError::Malformed {
                step: 1,
                reason: "unknown secret kind",
            },
        ),
    ] {
        assert_eq!(window.accept(&t, &msg, now).unwrap_err(), want);
    }
    // None of those counted as an attempt: they never reached SPAKE2.
    assert_eq!(window.attempts_left(), 3);

    // A SPAKE2 message from the wrong side.
    let mut reflected = m1.clone();
    reflected.body[2] = b'B';
    assert!(matches!(
        window.accept(&t, &reflected, now),
        Err(PairingError::Malformed { step: 1, .. })
    ));

    // Abort reasons this version does not know pass through as such.
    let (client, _) = ClientPairing::start(&p, &shown_code(&window)).unwrap();
    assert_eq!(
        client
            .confirm(&abort(AbortReason::Other(77), 0))
            .unwrap_err(),
        PairingError::Aborted(AbortReason::Other(77))
    );
}

#[test]
fn codes_parse_as_people_type_them_and_never_print() {
    for ok in ["123456", "123 456", "123-456", " 000000 "] {
        assert!(PairingSecret::code(ok).is_ok(), "{ok}");
    }
    for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
        assert_eq!(
            PairingSecret::code(bad).unwrap_err(),
            PairingError::InvalidCode,
            "{bad}"
        );
    }
    let code = PairingSecret::code("987654").unwrap();
    assert!(!format!("{code:?}").contains("987654"));
    let id = terminal();
    let shown = format!("{id:?}");
    let secret: String = id
        .channel()
        .secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&secret));
    for _ in 0..200 {
        let c = PairingSecret::random_code().unwrap();
        let d = c.digits().unwrap();
        assert!(d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()), "{d}");
    }
    assert!(LocalIdentity::generate(PeerId([0; 16]), &"x".repeat(65)).is_err());
    assert!(LocalIdentity::generate(PeerId([0; 16]), "bad\nname").is_err());
}

#[test]
fn identities_and_records_persist_and_revocation_refuses_the_channel() {
    let dir = std::env::temp_dir().join(format!("posbridge-pairing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let now = Instant::now();

    let (t_store, p_store) = (
        PairingStore::new(FileKeyStore::open(dir.join("terminal")).unwrap()),
        PairingStore::new(MemoryKeyStore::new()),
    );
    let t = t_store
        .identity_or_generate(PeerId([0x7e; 16]), "Till 2")
        .unwrap();
    let p = p_store
        .identity_or_generate(PeerId::random().unwrap(), "Anna's phone")
        .unwrap();
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let (on_terminal, on_phone) = {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap();
    t_store.save(&on_terminal).unwrap();
    p_store.save(&on_phone).unwrap();

    // A restart: the same identity and record come back from disk.
    let t_store = PairingStore::new(FileKeyStore::open(dir.join("terminal")).unwrap());
    let t = t_store.identity().unwrap().expect("stored");
    assert_eq!(t.public_keys(), on_phone.peer);
    assert_eq!(t_store.records().unwrap(), vec![on_terminal.clone()]);
    assert_eq!(t_store.get(&p.id()).unwrap().as_ref(), Some(&on_terminal));

    // The channel between the paired keys works, and is refused once revoked.
    let handshake = |t_store: &PairingStore<FileKeyStore>| {
        let peer = p_store.records().unwrap()[0].peer.channel_key;
        let (hs, first) =
            InitiatorHandshake::start(p.channel(), &peer, b"", ChannelConfig::default()).unwrap();
        let accepted = respond(
            t.channel(),
            &first,
            |k| t_store.find_by_channel_key(k).unwrap().is_some(),
            b"",
            ChannelConfig::default(),
        )?;
        hs.finish(&accepted.response).map(|_| ())
    };
    handshake(&t_store).unwrap();
    assert!(t_store.revoke(&p.id()).unwrap());
    assert!(matches!(
        handshake(&t_store),
        Err(ChannelError::NotPaired { peer_static }) if peer_static == p.channel().public()
    ));
    assert!(!t_store.revoke(&p.id()).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stored_records_are_versioned_and_checked() {
    let now = Instant::now();
    let (t, p) = (terminal(), phone());
    let mut window = PairingWindow::open(PairingConfig::default(), now).unwrap();
    let (record, _) = {
        let secret = shown_code(&window);
        pair(&mut window, &t, &p, &secret, now)
    }
    .unwrap();
    let bytes = record.to_bytes();
    assert_eq!(&bytes[..5], b"PBPR\x02");
    assert_eq!(PairingRecord::from_bytes(&bytes).unwrap(), record);

    let mut newer = bytes.clone();
    newer[4] = 3;
    assert_eq!(
        PairingRecord::from_bytes(&newer).unwrap_err(),
        RecordError::UnsupportedVersion(3)
    );
    // A version-1 record (no checksum) is still read.
    let mut v1 = bytes[..bytes.len() - 32].to_vec();
    v1[4] = 1;
    assert_eq!(PairingRecord::from_bytes(&v1).unwrap(), record);
    assert_eq!(
        PairingRecord::from_bytes(b"PBID\x01").unwrap_err(),
        RecordError::NotARecord
    );
    for cut in 5..bytes.len() {
        assert!(
            PairingRecord::from_bytes(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    assert!(PairingRecord::from_bytes(&[&bytes[..], &[0]].concat()).is_err());

    let stored = t.to_secret();
    assert!(!format!("{stored:?}").contains("PBID"));
    // Any bit flipped anywhere in either record (a damaged disk, a stray write) is refused, never
    // read as other keys.
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << bit;
            assert!(
                PairingRecord::from_bytes(&damaged).is_err(),
                "byte {i} bit {bit}"
            );
        }
    }
    let identity = stored.expose().to_vec();
    for i in 0..identity.len() {
        for bit in 0..8 {
            let mut damaged = identity.clone();
            damaged[i] ^= 1 << bit;
            let e = LocalIdentity::from_secret(&posbridge_crypto::Secret::new(damaged));
            assert!(e.is_err(), "byte {i} bit {bit}");
        }
    }
    let mut damaged = identity.clone();
    damaged[30] ^= 0x10; // inside the channel secret
    assert_eq!(
        LocalIdentity::from_secret(&posbridge_crypto::Secret::new(damaged))
            .unwrap_err()
            .to_string(),
        "key record is damaged: its checksum does not match (the file changed on disk)"
    );
    let back = LocalIdentity::from_secret(&stored).unwrap();
    assert_eq!(back.public_keys(), t.public_keys());
    assert_eq!(back.channel().secret(), t.channel().secret());
    assert_eq!(
        LocalIdentity::from_secret(&posbridge_crypto::Secret::new(bytes)).unwrap_err(),
        RecordError::NotARecord
    );

    // A damaged identity is an error, never silently replaced by a new one.
    let store = PairingStore::new(MemoryKeyStore::new());
    posbridge_crypto::KeyStore::store(
        store.store(),
        "identity",
        &posbridge_crypto::Secret::new(b"PBID\x01short".to_vec()),
    )
    .unwrap();
    assert!(store.identity_or_generate(PeerId([1; 16]), "x").is_err());
}
