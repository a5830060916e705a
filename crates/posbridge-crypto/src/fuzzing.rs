//! Entry point of the `handshake_parse` fuzz target (compiled only with `--cfg fuzzing`).

use crate::{ChannelConfig, InitiatorHandshake, StaticKeypair, respond};

/// Feeds arbitrary bytes to both sides' handshake parsers: the terminal reading a first message,
/// and a client reading an answer. Nothing may panic, and garbage must never yield a channel.
pub fn handshake_parse(data: &[u8]) {
    let terminal = StaticKeypair::from_parts([0x11; 32], [0; 32]);
    assert!(
        respond(&terminal, data, |_| true, b"", ChannelConfig::default()).is_err(),
        "a channel from bytes nobody made"
    );
    let client = StaticKeypair::from_parts([0x22; 32], [0; 32]);
    let peer = [9u8; 32];
    if let Ok((hs, _)) = InitiatorHandshake::start(&client, &peer, b"", ChannelConfig::default()) {
        assert!(hs.finish(data).is_err(), "a channel from bytes nobody made");
    }
}

/// Entry point of the `pairing_parse` fuzz target: arbitrary bytes as each pairing step, on the
/// side that reads it. Nothing may panic, garbage never pairs, and every refusal is a typed error
/// whose abort message (if any) the peer can read.
pub fn pairing_parse(data: &[u8]) {
    use crate::{
        ClientPairing, LocalIdentity, PairingConfig, PairingSecret, PairingWindow, PeerId,
    };
    use posbridge_wire::{Pairing, Timestamp};
    use std::time::Instant;

    let Some((&step, body)) = data.split_first() else {
        return;
    };
    let msg = Pairing {
        step,
        body: body.to_vec(),
    };
    let now = Instant::now();
    let code = PairingSecret::code("135790").expect("a valid code");
    let open = || {
        PairingWindow::open_with(
            PairingConfig::default(),
            now,
            code.clone(),
            PairingSecret::handover([3; 16]),
        )
        .expect("a valid window")
    };
    let terminal = LocalIdentity::from_parts(
        PeerId([1; 16]),
        "terminal",
        StaticKeypair::from_parts([0x11; 32], [0x12; 32]),
        crate::SigningIdentity::from_secret(&[0x13; 32]),
    );
    let client = LocalIdentity::from_parts(
        PeerId([2; 16]),
        "client",
        StaticKeypair::from_parts([0x21; 32], [0x22; 32]),
        crate::SigningIdentity::from_secret(&[0x23; 32]),
    );
    let check_abort = |e: &crate::PairingError| {
        if let Some(abort) = e.abort_message() {
            let (c, _) = ClientPairing::start(&client, &code).expect("starts");
            assert!(c.confirm(&abort).is_err(), "an abort never confirms");
        }
    };

    // The terminal reading a first message.
    let mut window = open();
    match window.accept(&terminal, &msg, now) {
        Ok(_) => assert_eq!(msg.step, 1),
        Err(e) => check_abort(&e),
    }

    // The client reading an answer.
    let (c, _) = ClientPairing::start(&client, &code).expect("starts");
    if let Err(e) = c.confirm(&msg) {
        check_abort(&e);
    } else {
        panic!("a confirmation from bytes nobody made");
    }

    // The terminal reading a confirmation.
    let mut window = open();
    let (c, m1) = ClientPairing::start(&client, &code).expect("starts");
    let (attempt, m2) = window.accept(&terminal, &m1, now).expect("accepts");
    let (c, _) = c.confirm(&m2).expect("confirms");
    assert!(
        attempt
            .finish(&mut window, &msg, now, Timestamp(0))
            .is_err(),
        "a pairing from bytes nobody made"
    );

    // The client reading a completion.
    assert!(
        c.finish(&msg, Timestamp(0)).is_err(),
        "a completion from bytes nobody made"
    );
}

/// Entry point of the `key_record_parse` fuzz target: arbitrary bytes as a stored pairing record
/// and as a stored identity. Nothing may panic, and what reads back is stable: written again and
/// read once more, it is the same record (the same keys).
pub fn key_record_parse(data: &[u8]) {
    use crate::{LocalIdentity, PairingRecord, Secret};
    if let Ok(record) = PairingRecord::from_bytes(data) {
        assert_eq!(
            PairingRecord::from_bytes(&record.to_bytes()),
            Ok(record),
            "a record reads back as written"
        );
    }
    if let Ok(identity) = LocalIdentity::from_secret(&Secret::new(data.to_vec())) {
        let again = LocalIdentity::from_secret(&identity.to_secret()).expect("reads back");
        assert_eq!(again.public_keys(), identity.public_keys());
        assert_eq!(again.channel().secret(), identity.channel().secret());
    }
}
