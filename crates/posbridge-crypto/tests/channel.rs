//! The secure channel: handshake between paired keys, refusal of strangers, and frames that
//! cannot be altered, replayed or reordered.

use posbridge_crypto::*;
use proptest::prelude::*;

struct Peers {
    client: StaticKeypair,
    terminal: StaticKeypair,
}

fn peers() -> Peers {
    Peers {
        client: StaticKeypair::generate().unwrap(),
        terminal: StaticKeypair::generate().unwrap(),
    }
}

fn connect(p: &Peers, config: ChannelConfig) -> (SecureChannel, SecureChannel) {
    let (hs, request) =
        InitiatorHandshake::start(&p.client, &p.terminal.public(), b"hello", config).unwrap();
    // The handshake fits well inside the default 4 KiB frame.
    assert!(request.len() < 200, "{}", request.len());
    let client_key = p.client.public();
    let accepted = respond(
        &p.terminal,
        &request,
        |k| *k == client_key,
        b"welcome",
        config,
    )
    .unwrap();
    assert_eq!(accepted.peer_static, client_key);
    assert_eq!(accepted.payload, b"hello");
    let (client, payload) = hs.finish(&accepted.response).unwrap();
    assert_eq!(payload, b"welcome");
    assert_eq!(client.handshake_hash(), accepted.channel.handshake_hash());
    (client, accepted.channel)
}

/// A client's first handshake message towards `terminal`, with default settings.
fn start(client: &StaticKeypair, terminal: &StaticKeypair) -> (InitiatorHandshake, Vec<u8>) {
    InitiatorHandshake::start(client, &terminal.public(), b"", ChannelConfig::default()).unwrap()
}

const HEADER: &[u8] = b"\xa5\xc3\x01\x01\x01\x00\x00\x00\x07\x00\x20\x12\x34";

fn seal(ch: &mut SecureChannel, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ch.seal(HEADER, msg, &mut out).unwrap();
    assert_eq!(out.len(), msg.len() + SEAL_OVERHEAD);
    out
}

#[test]
fn paired_peers_talk_both_ways() {
    let p = peers();
    let (mut client, mut terminal) = connect(&p, ChannelConfig::default());
    for i in 0..20u8 {
        let mut sealed = seal(&mut client, &[i; 100]);
        assert!(
            !sealed.windows(100).any(|w| w == [i; 100]),
            "ciphertext hides the plaintext"
        );
        assert_eq!(terminal.open(HEADER, &mut sealed).unwrap(), &[i; 100]);
        let mut back = seal(&mut terminal, b"ack");
        assert_eq!(client.open(HEADER, &mut back).unwrap(), b"ack");
    }
}

#[test]
fn an_unpaired_client_is_refused() {
    let p = peers();
    let (_, request) = start(&p.client, &p.terminal);
    let err = respond(
        &p.terminal,
        &request,
        |_| false,
        b"",
        ChannelConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ChannelError::NotPaired {
            peer_static: p.client.public()
        }
    );
}

#[test]
fn a_man_in_the_middle_without_the_keys_fails() {
    let p = peers();
    let mallory = StaticKeypair::generate().unwrap();
    // The client believes it talks to the terminal, but Mallory answers: she cannot read the
    // first message, which is encrypted to the terminal's static key.
    let (_, request) = start(&p.client, &p.terminal);
    assert_eq!(
        respond(&mallory, &request, |_| true, b"", ChannelConfig::default()).unwrap_err(),
        ChannelError::Handshake
    );
    // Mallory starts her own handshake to the client's expected terminal key and relays the
    // terminal's answer: the client's handshake state does not accept it.
    let (hs, _) = start(&p.client, &p.terminal);
    let (_, mallory_request) = start(&mallory, &p.terminal);
    let for_mallory = respond(
        &p.terminal,
        &mallory_request,
        |_| true,
        b"",
        ChannelConfig::default(),
    )
    .unwrap();
    assert_eq!(
        hs.finish(&for_mallory.response).unwrap_err(),
        ChannelError::Handshake
    );
    // An altered handshake message fails too.
    let (_, mut request) = start(&p.client, &p.terminal);
    let last = request.len() - 1;
    request[last] ^= 1;
    assert!(
        respond(
            &p.terminal,
            &request,
            |_| true,
            b"",
            ChannelConfig::default()
        )
        .is_err()
    );
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let p = peers();
    let (mut client, mut terminal) = connect(&p, ChannelConfig::default());
    let sealed = seal(&mut client, b"sale 12.50 EUR, key 0202..02");
    for bit in 0..sealed.len() * 8 {
        let mut damaged = sealed.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(terminal.open(HEADER, &mut damaged).is_err(), "bit {bit}");
    }
    // ... and of the header bound as associated data.
    for bit in 0..HEADER.len() * 8 {
        let mut header = HEADER.to_vec();
        header[bit / 8] ^= 1 << (bit % 8);
        let mut copy = sealed.clone();
        assert_eq!(
            terminal.open(&header, &mut copy),
            Err(ChannelError::Decrypt),
            "header bit {bit}"
        );
    }
    // The intact frame still opens: failures changed nothing.
    let mut intact = sealed.clone();
    assert!(terminal.open(HEADER, &mut intact).is_ok());
}

#[test]
fn replayed_and_reordered_frames_are_rejected() {
    let p = peers();
    let (mut client, mut terminal) = connect(&p, ChannelConfig::default());
    let first = seal(&mut client, b"one");
    let second = seal(&mut client, b"two");
    let third = seal(&mut client, b"three");
    assert!(terminal.open(HEADER, &mut second.clone()).is_ok());
    assert_eq!(
        terminal.open(HEADER, &mut second.clone()),
        Err(ChannelError::Replay { counter: 1 })
    );
    assert_eq!(
        terminal.open(HEADER, &mut first.clone()),
        Err(ChannelError::Replay { counter: 0 })
    );
    assert_eq!(terminal.open(HEADER, &mut third.clone()).unwrap(), b"three");
    assert!(terminal.open(HEADER, &mut [0u8; 10]).is_err());
}

#[test]
fn keys_roll_over_and_far_future_counters_are_refused() {
    let p = peers();
    let mut config = ChannelConfig::default();
    config.set_rekey_after(3);
    let (mut client, mut terminal) = connect(&p, config);
    let mut sealed_all = Vec::new();
    for i in 0..20u8 {
        let mut s = seal(&mut client, &[i]);
        sealed_all.push(s.clone());
        assert_eq!(terminal.open(HEADER, &mut s).unwrap(), &[i]);
    }
    // A frame sealed under a later epoch's key than the receiver can reach is refused cheaply.
    let mut far = seal(&mut client, b"x");
    far[..8].copy_from_slice(&1000u64.to_be_bytes());
    assert_eq!(
        terminal.open(HEADER, &mut far),
        Err(ChannelError::TooFarAhead { counter: 1000 })
    );
    // Epoch keys differ: frame 0 re-labelled as counter 21 (same epoch as 20) does not open.
    let mut relabelled = sealed_all[0].clone();
    relabelled[..8].copy_from_slice(&21u64.to_be_bytes());
    assert_eq!(
        terminal.open(HEADER, &mut relabelled),
        Err(ChannelError::Decrypt)
    );
}

#[derive(Clone, Debug)]
enum Delivery {
    Deliver(usize),
    Duplicate(usize),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the network does — drop, duplicate, reorder — the receiver accepts only what
    /// was sent, each message at most once, in the order it was sent.
    #[test]
    fn random_schedules_never_yield_anything_unsent(
        count in 1usize..30,
        schedule in prop::collection::vec(
            prop_oneof![
                any::<prop::sample::Index>().prop_map(|i| Delivery::Deliver(i.index(1 << 16))),
                any::<prop::sample::Index>().prop_map(|i| Delivery::Duplicate(i.index(1 << 16))),
            ],
            0..80,
        ),
        rekey in 1u64..8,
    ) {
        let p = peers();
        let mut config = ChannelConfig::default();
        config.set_rekey_after(rekey);
        let (mut client, mut terminal) = connect(&p, config);
        let sent: Vec<Vec<u8>> = (0..count).map(|i| format!("message {i}").into_bytes()).collect();
        let sealed: Vec<Vec<u8>> = sent.iter().map(|m| seal(&mut client, m)).collect();
        let mut accepted = Vec::new();
        for step in schedule {
            let (Delivery::Deliver(i) | Delivery::Duplicate(i)) = step;
            let mut frame = sealed[i % count].clone();
            if let Ok(plain) = terminal.open(HEADER, &mut frame) {
                accepted.push(plain.to_vec());
            }
        }
        let mut last = None;
        for m in &accepted {
            let index = sent.iter().position(|s| s == m);
            prop_assert!(index.is_some(), "accepted something never sent");
            prop_assert!(last < index, "out of order or twice");
            last = index;
        }
    }
}
