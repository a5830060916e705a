//! Both roles against each other through the `Pair` harness: pairing, the secure handshake,
//! refusals, messages over faulty links, heartbeats, dead peers, orderly close, and frames an
//! attacker injects.

mod common;
use common::*;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posbridge_crypto::{PairingConfig, PairingError, PairingSecret, PairingWindow};
use posbridge_session::harness::{Faults, Pair, capabilities, hello};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, CloseReason, PairingRegistry, SessionConfig,
    SessionError, TerminalEvent, TerminalSession,
};
use posbridge_wire::{Heartbeat, Message, samples};

fn paired_pair(config: SessionConfig, faults: Faults, seed: u64) -> Pair {
    let start = Instant::now();
    let client = paired_client(config, start);
    let terminal = TerminalSession::new(config, context(), start);
    let mut pair = Pair::new(client, terminal, start, seed);
    pair.faults = faults;
    pair
}

fn client_closed(pair: &Pair) -> Option<&CloseReason> {
    pair.client_events().iter().find_map(|e| match e {
        ClientEvent::Closed(r) => Some(r),
        _ => None,
    })
}

fn terminal_closed(pair: &Pair) -> Option<&CloseReason> {
    pair.terminal_events().iter().find_map(|e| match e {
        TerminalEvent::Closed(r) => Some(r),
        _ => None,
    })
}

#[test]
fn a_paired_client_connects_in_one_round_trip() {
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 1);
    pair.drive();
    assert!(pair.client.is_ready() && pair.terminal.is_ready());
    let caps = pair.client.capabilities().expect("capabilities");
    assert_eq!(caps.selected_version, posbridge_wire::VERSION_1_1);
    assert_eq!(caps.terminal_id, capabilities().terminal_id);
    // Handshake out, handshake back, and one ack each way.
    assert_eq!(pair.client.stats().reliability.sent, 1);
    assert_eq!(pair.terminal.stats().reliability.sent, 1);
    // The terminal announces the client once its first sealed frame arrives (here its first
    // heartbeat): the answered handshake alone proves nothing — it could be a replay.
    assert!(
        pair.terminal_events().is_empty(),
        "{:?}",
        pair.terminal_events()
    );
    let later = pair.now + Duration::from_secs(6);
    pair.run_until(later);
    // The hello arrives as sent, with the client's frame size filled in.
    let mut sent = hello();
    sent.max_frame_size = Some(4096);
    assert!(matches!(
        pair.terminal_events(),
        [TerminalEvent::Connected { hello: h, client }] if *h == sent && client.peer == ids().client.public_keys()
    ));
    assert!(pair.terminal.is_ready());
}

/// A replayed first handshake message (captured from the paired client) is answered — the
/// terminal cannot tell it from a new one — but its sender cannot seal a frame: the terminal
/// never announces it as connected, plain acknowledgements do not keep it alive, and it is cut
/// off at the handshake deadline.
#[test]
fn a_replayed_handshake_is_never_connected_and_is_cut_off() {
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 5);
    let start = pair.now;
    let first = pair.client.poll_transmit(start).expect("the handshake");
    // The attacker's terminal session: only the replayed bytes, then plain acks every second.
    let mut replayed = TerminalSession::new(SessionConfig::default(), context(), start);
    replayed.handle_input(&first, start);
    assert!(replayed.poll_transmit(start).is_some(), "answered");
    let codec = posbridge_wire::FrameCodec::new();
    let mut ended = None;
    for s in 1..=30 {
        let now = start + Duration::from_secs(s);
        let mut ack = bytes::BytesMut::new();
        codec
            .encode_parts(
                posbridge_wire::FrameType::Ack,
                posbridge_wire::FrameFlags::NONE,
                1,
                &[],
                &mut ack,
            )
            .unwrap();
        replayed.handle_input(&ack, now);
        replayed.handle_timeout(now);
        while replayed.poll_transmit(now).is_some() {}
        while let Some(e) = replayed.poll_event() {
            assert!(!matches!(e, TerminalEvent::Connected { .. }), "{e:?}");
            if let TerminalEvent::Closed(r) = e {
                ended = Some((s, r));
            }
        }
        if ended.is_some() {
            break;
        }
    }
    let (after, reason) = ended.expect("the replayed session ends");
    assert_eq!(reason, CloseReason::Failed(SessionError::HandshakeTimeout));
    // The handshake deadline (15 s from the link's start; a heartbeat interval at least after
    // the answer), not three heartbeat intervals of acks.
    assert_eq!(after, 15, "closed after {after} s");
}

#[test]
fn pairing_then_connecting_over_one_link() {
    let start = Instant::now();
    let registry = Arc::new(Mutex::new(PairingRegistry::new()));
    let code = registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), start)
        .unwrap()
        .to_string();
    let client = ClientSession::new(
        SessionConfig::default(),
        ids().client.clone(),
        ClientSecurity::Pair(PairingSecret::code(&code).unwrap()),
        hello(),
        start,
    );
    let terminal = TerminalSession::new(
        SessionConfig::default(),
        context_with(registry.clone(), capabilities()),
        start,
    );
    let mut pair = Pair::new(client, terminal, start, 2);
    pair.faults.loss = 0.1;
    pair.drive();
    assert!(pair.client.is_ready() && pair.terminal.is_ready());
    let ClientEvent::Paired(on_client) = &pair.client_events()[0] else {
        panic!("{:?}", pair.client_events());
    };
    assert_eq!(on_client.peer, ids().terminal.public_keys());
    let TerminalEvent::Paired(on_terminal) = &pair.terminal_events()[0] else {
        panic!("{:?}", pair.terminal_events());
    };
    assert_eq!(on_terminal.peer, ids().client.public_keys());
    let registry = registry.lock().unwrap();
    assert!(registry.is_paired(&ids().client.channel().public()));
    assert!(
        registry.window().unwrap().code().is_none(),
        "the window closed"
    );
}

#[test]
fn a_wrong_code_fails_on_both_sides_and_counts() {
    let start = Instant::now();
    let registry = Arc::new(Mutex::new(PairingRegistry::new()));
    registry.lock().unwrap().set_window(
        PairingWindow::open_with(
            PairingConfig::default(),
            start,
            PairingSecret::code("111111").unwrap(),
            PairingSecret::handover([1; 16]),
        )
        .unwrap(),
    );
    let client = ClientSession::new(
        SessionConfig::default(),
        ids().client.clone(),
        ClientSecurity::Pair(PairingSecret::code("222222").unwrap()),
        hello(),
        start,
    );
    let terminal = TerminalSession::new(
        SessionConfig::default(),
        context_with(registry.clone(), capabilities()),
        start,
    );
    let mut pair = Pair::new(client, terminal, start, 3);
    pair.drive();
    assert_eq!(
        client_closed(&pair),
        Some(&CloseReason::Failed(SessionError::Pairing(
            PairingError::WrongCode {
                attempts_left: None
            }
        )))
    );
    assert_eq!(
        terminal_closed(&pair),
        Some(&CloseReason::Failed(SessionError::Pairing(
            PairingError::WrongCode {
                attempts_left: Some(2)
            }
        )))
    );
    assert_eq!(
        registry.lock().unwrap().window().unwrap().attempts_left(),
        2
    );
    assert_eq!(registry.lock().unwrap().records().count(), 0);
}

#[test]
fn an_unpaired_client_is_refused_with_a_typed_error() {
    let start = Instant::now();
    let client = client_as(
        ids().stranger.clone(),
        ids().terminal.channel().public(),
        SessionConfig::default(),
        start,
    );
    let terminal = TerminalSession::new(SessionConfig::default(), context(), start);
    let mut pair = Pair::new(client, terminal, start, 4);
    pair.drive();
    assert_eq!(
        client_closed(&pair),
        Some(&CloseReason::Failed(SessionError::NotPaired))
    );
    assert_eq!(
        terminal_closed(&pair),
        Some(&CloseReason::Failed(SessionError::NotPaired))
    );
    assert!(!pair.client.is_ready() && !pair.terminal.is_ready());
}

#[test]
fn a_client_with_the_wrong_terminal_key_cannot_connect() {
    let start = Instant::now();
    let client = client_as(
        ids().client.clone(),
        ids().stranger.channel().public(),
        SessionConfig::default(),
        start,
    );
    let terminal = TerminalSession::new(SessionConfig::default(), context(), start);
    let mut pair = Pair::new(client, terminal, start, 5);
    pair.drive();
    assert!(matches!(
        terminal_closed(&pair),
        Some(CloseReason::Failed(SessionError::Channel(_)))
    ));
    assert!(client_closed(&pair).is_some());
    assert!(!pair.client.is_ready());
}

fn numbered(n: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        nonce: 1_000_000 + n,
    })
}

/// Messages the app sees (heartbeats the sessions answer themselves are not among them; the
/// numbered ones are sent as `StatusQuery` stand-ins below).
fn terminal_messages(pair: &Pair) -> Vec<Message> {
    pair.terminal_events()
        .iter()
        .filter_map(|e| match e {
            TerminalEvent::Message(m) | TerminalEvent::Request(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn client_messages(pair: &Pair) -> Vec<Message> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// A request sent raw (outside the request bookkeeping), numbered through its request id.
fn request(n: u64) -> Message {
    Message::LastTransaction(posbridge_wire::LastTransactionQuery {
        request_id: posbridge_wire::RequestId::from_u128(n.into()),
    })
}

fn result(n: u64) -> Message {
    let mut r = samples::approved_result();
    r.request_id = posbridge_wire::RequestId::from_u128(n.into());
    Message::TransactionResult(r)
}

/// Every message arrives exactly once and in order over links that lose, damage, duplicate and
/// reorder 64-byte packets, for many seeds. About 3 in 4 frames are damaged on the reordering
/// link: recovery rests on the receiver nakking a gap again while frames keep arriving ahead of
/// it (with a single nak per gap, seed 107 lost the same frame 30 times in a row and gave up).
#[test]
fn messages_arrive_once_and_in_order_over_faulty_links() {
    exactly_once_in_order(0.0, 0..100);
    exactly_once_in_order(0.2, 0..200);
}

fn exactly_once_in_order(reorder: f64, seeds: std::ops::Range<u64>) {
    let _ = numbered;
    let faults = Faults {
        loss: 0.15,
        corrupt: 0.05,
        duplicate: 0.1,
        reorder,
        reorder_by: Duration::from_millis(30),
        mtu: 64,
        latency: Duration::from_millis(5),
    };
    for seed in seeds {
        let mut config = SessionConfig::default();
        if seed % 3 == 0 {
            config.reliability_mut().set_window(1);
        }
        // A link this bad loses about half of all frames (3 packets each): give the handshake
        // time, and retransmissions room, to get through.
        config.reliability_mut().set_max_retransmits(30);
        config.set_handshake_timeout(Duration::from_secs(120));
        // Silence of 3 intervals is a real possibility on this link; liveness is tested elsewhere.
        config.set_heartbeat(Duration::from_secs(60));
        let mut pair = paired_pair(config, faults, seed);
        pair.drive();
        assert!(
            pair.client.is_ready(),
            "seed {seed}: {:?}",
            pair.client_events()
        );
        for n in 0..10 {
            pair.client.send(&request(n), pair.now).unwrap();
            pair.terminal.send(&result(n), pair.now).unwrap();
        }
        pair.drive();
        let want_t: Vec<Message> = (0..10).map(request).collect();
        let want_c: Vec<Message> = (0..10).map(result).collect();
        assert_eq!(
            terminal_messages(&pair).len(),
            10,
            "seed {seed}: {:?} {:?} {:?} {:?}",
            client_closed(&pair),
            terminal_closed(&pair),
            pair.client.stats(),
            pair.terminal.stats()
        );
        assert_eq!(terminal_messages(&pair), want_t, "seed {seed}");
        assert_eq!(
            client_messages(&pair),
            want_c,
            "seed {seed}: {:?} {:?} {:?}",
            client_closed(&pair),
            terminal_closed(&pair),
            pair.client.stats()
        );
        let stats = pair.client.stats();
        assert!(
            stats.reliability.retransmitted > 0 || stats.damaged_frames > 0 || seed > 0,
            "seed {seed}: the faults did something"
        );
    }
}

#[test]
fn heartbeats_keep_an_idle_session_alive_and_a_dead_peer_is_noticed() {
    let mut config = SessionConfig::default();
    config.set_heartbeat(Duration::from_secs(5));
    let mut pair = paired_pair(config, Faults::default(), 7);
    pair.drive();
    let start = pair.now;
    pair.run_until(start + Duration::from_secs(60));
    assert!(pair.client.is_ready() && pair.terminal.is_ready());
    let beats = pair
        .client_events()
        .iter()
        .filter(|e| matches!(e, ClientEvent::Heartbeat { .. }))
        .count();
    assert!((10..=13).contains(&beats), "{beats} heartbeats in 60 s");

    // The link goes dead silently (a terminal switched off, out of range).
    pair.faults.loss = 1.0;
    let cut = pair.now;
    pair.run_until(cut + Duration::from_secs(30));
    let reason = client_closed(&pair).expect("the client noticed");
    assert!(
        matches!(
            reason,
            CloseReason::Failed(SessionError::PeerDead | SessionError::Unreachable)
        ),
        "{reason:?}"
    );
    assert!(terminal_closed(&pair).is_some(), "the terminal noticed too");
}

#[test]
fn the_dead_peer_is_declared_within_three_intervals() {
    let mut config = SessionConfig::default();
    config.set_heartbeat(Duration::from_secs(2));
    // Retransmissions alone would take longer than 3 intervals to give up.
    config.reliability_mut().set_max_retransmits(50).set_rto(
        Duration::from_millis(500),
        Duration::from_millis(100),
        Duration::from_secs(4),
    );
    let mut pair = paired_pair(config, Faults::default(), 8);
    pair.drive();
    pair.faults.loss = 1.0;
    let cut = pair.now;
    let mut closed_at = None;
    while closed_at.is_none() && pair.now < cut + Duration::from_secs(20) {
        pair.step();
        if client_closed(&pair).is_some() {
            closed_at = Some(pair.now);
        }
    }
    let closed_at = closed_at.expect("closed");
    assert_eq!(
        client_closed(&pair),
        Some(&CloseReason::Failed(SessionError::PeerDead))
    );
    assert!(
        closed_at <= cut + Duration::from_secs(6),
        "{:?}",
        closed_at - cut
    );
}

#[test]
fn an_orderly_close_delivers_what_was_queued_first() {
    let mut pair = paired_pair(
        SessionConfig::default(),
        Faults {
            loss: 0.2,
            ..Faults::default()
        },
        9,
    );
    pair.drive();
    for n in 0..5 {
        pair.client.send(&request(n), pair.now).unwrap();
    }
    pair.client.close(pair.now);
    assert_eq!(
        pair.client.send(&request(9), pair.now),
        Err(SessionError::Closed)
    );
    pair.drive();
    assert_eq!(
        terminal_messages(&pair),
        (0..5).map(request).collect::<Vec<_>>()
    );
    assert_eq!(client_closed(&pair), Some(&CloseReason::Local));
    // The close frame itself may be lost on this link; then the terminal notices the silence.
    let t = terminal_closed(&pair);
    assert!(
        matches!(
            t,
            Some(CloseReason::Peer | CloseReason::Failed(SessionError::PeerDead))
        ) || t.is_none(),
        "{t:?}"
    );
}

#[test]
fn the_close_reaches_the_peer_on_a_clean_link() {
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 10);
    pair.drive();
    pair.terminal.close(pair.now);
    pair.drive();
    assert_eq!(terminal_closed(&pair), Some(&CloseReason::Local));
    assert_eq!(client_closed(&pair), Some(&CloseReason::Peer));
}

/// An attacker on the link replays a captured frame, injects plaintext frames and a plaintext
/// close: none of it reaches the app or ends the session.
#[test]
fn replayed_injected_and_forged_frames_are_refused() {
    use bytes::BytesMut;
    use posbridge_wire::{FrameCodec, FrameFlags, FrameType};

    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 11);
    pair.drive();
    let now = pair.now;
    pair.client.send(&request(1), now).unwrap();
    let captured = pair.client.poll_transmit(now).expect("the data frame");
    pair.terminal.handle_input(&captured, now);
    // The same bytes again: a duplicate, dropped and re-acknowledged.
    pair.terminal.handle_input(&captured, now);
    let codec = FrameCodec::new();
    let mut forged = BytesMut::new();
    let plain = request(2).to_bytes().unwrap();
    // A plaintext data frame with the next sequence number.
    codec
        .encode_parts(FrameType::Data, FrameFlags::NONE, 2, &plain, &mut forged)
        .unwrap();
    // A plaintext close.
    codec
        .encode_parts(FrameType::Close, FrameFlags::NONE, 0, &[], &mut forged)
        .unwrap();
    pair.terminal.handle_input(&forged, now);
    pair.drive();
    assert_eq!(terminal_messages(&pair), vec![request(1)]);
    assert!(pair.terminal.is_ready(), "still up");
    let stats = pair.terminal.stats();
    assert_eq!(stats.rejected_frames, 2);
    assert_eq!(stats.reliability.duplicates, 1);
}

#[test]
fn sending_before_ready_or_after_close_is_a_typed_error() {
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 12);
    assert_eq!(
        pair.client.send(&request(1), pair.now),
        Err(SessionError::Closed)
    );
    pair.drive();
    pair.client.close(pair.now);
    assert_eq!(
        pair.client.send(&request(2), pair.now),
        Err(SessionError::Closed)
    );
}

/// Pairs `who` over a fresh window of `registry`; returns how it ended on each side.
fn pair_in_new_window(
    registry: &Arc<Mutex<PairingRegistry>>,
    who: Arc<posbridge_crypto::LocalIdentity>,
    seed: u64,
) -> (Option<CloseReason>, Option<CloseReason>, bool) {
    let start = Instant::now();
    let code = registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), start)
        .unwrap()
        .to_string();
    let client = ClientSession::new(
        SessionConfig::default(),
        who,
        ClientSecurity::Pair(PairingSecret::code(&code).unwrap()),
        hello(),
        start,
    );
    let terminal = TerminalSession::new(
        SessionConfig::default(),
        context_with(registry.clone(), capabilities()),
        start,
    );
    let mut pair = Pair::new(client, terminal, start, seed);
    pair.drive();
    (
        client_closed(&pair).cloned(),
        terminal_closed(&pair).cloned(),
        pair.client.is_ready(),
    )
}

#[test]
fn a_pairing_that_claims_a_paired_device_s_id_is_refused_unless_replacing_is_allowed() {
    let registry = Arc::new(Mutex::new(paired_registry()));
    // Someone who learnt a later pairing code, with keys of its own under the paired till's id.
    let impostor =
        Arc::new(posbridge_crypto::LocalIdentity::generate(ids().client.id(), "Till 1").unwrap());
    let (client, terminal, ready) = pair_in_new_window(&registry, impostor.clone(), 11);
    assert!(!ready);
    let refused = CloseReason::Failed(SessionError::Pairing(PairingError::AlreadyPaired));
    assert_eq!(client, Some(refused.clone()), "the client is told why");
    assert_eq!(terminal, Some(refused));
    let kept = registry
        .lock()
        .unwrap()
        .records()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].peer,
        ids().client.public_keys(),
        "the real till's keys stay"
    );
    assert!(
        !registry
            .lock()
            .unwrap()
            .is_paired(&impostor.channel().public())
    );
    // The till itself pairing again (same keys) is fine.
    let (_, _, ready) = pair_in_new_window(&registry, ids().client.clone(), 12);
    assert!(ready);
    // With the operator's leave, a device whose keys were reset replaces its old pairing.
    registry.lock().unwrap().allow_replacing(ids().client.id());
    let (_, _, ready) = pair_in_new_window(&registry, impostor.clone(), 13);
    assert!(ready);
    assert!(
        registry
            .lock()
            .unwrap()
            .is_paired(&impostor.channel().public())
    );
    assert!(
        !registry
            .lock()
            .unwrap()
            .is_paired(&ids().client.channel().public())
    );
}

#[test]
fn a_new_code_made_after_junk_attempts_is_announced_to_show() {
    let start = Instant::now();
    let registry = Arc::new(Mutex::new(PairingRegistry::new()));
    registry.lock().unwrap().set_window(
        PairingWindow::open_with(
            PairingConfig::default(),
            start,
            PairingSecret::code("111111").unwrap(),
            PairingSecret::handover([1; 16]),
        )
        .unwrap(),
    );
    let mut announced = Vec::new();
    for seed in 0..3 {
        let client = ClientSession::new(
            SessionConfig::default(),
            ids().stranger.clone(),
            ClientSecurity::Pair(PairingSecret::code("222222").unwrap()),
            hello(),
            start,
        );
        let terminal = TerminalSession::new(
            SessionConfig::default(),
            context_with(registry.clone(), capabilities()),
            start,
        );
        let mut pair = Pair::new(client, terminal, start, 20 + seed);
        pair.drive();
        announced.extend(pair.terminal_events().iter().filter_map(|e| match e {
            TerminalEvent::PairingCode(c) => Some(c.clone()),
            _ => None,
        }));
    }
    let shown = registry
        .lock()
        .unwrap()
        .window()
        .unwrap()
        .code()
        .unwrap()
        .to_string();
    assert_eq!(
        announced,
        vec![shown.clone()],
        "the third junk attempt made a new code"
    );
    assert_ne!(shown, "111111");
    // The tag still pairs at once, lockout or not.
    let client = ClientSession::new(
        SessionConfig::default(),
        ids().client.clone(),
        ClientSecurity::Pair(PairingSecret::handover([1; 16])),
        hello(),
        start,
    );
    let terminal = TerminalSession::new(
        SessionConfig::default(),
        context_with(registry.clone(), capabilities()),
        start,
    );
    let mut pair = Pair::new(client, terminal, start, 30);
    pair.drive();
    assert!(pair.client.is_ready(), "{:?}", pair.client_events());
}

/// A paired device's hello that names another device (its id) is refused: the terminal's log and
/// app would otherwise believe it.
#[test]
fn a_hello_that_names_another_device_is_refused() {
    use bytes::BytesMut;
    use posbridge_crypto::{ChannelConfig, InitiatorHandshake};
    use posbridge_wire::{ClientId, FrameCodec, FrameFlags, FrameType, Handshake};

    let start = Instant::now();
    let mut claims = hello();
    claims.client_id = ClientId([0x99; 16]);
    claims.client_name = Some("Till 9".into());
    let (_, first) = InitiatorHandshake::start(
        ids().client.channel(),
        &ids().terminal.channel().public(),
        &Message::Hello(claims).to_bytes().unwrap(),
        ChannelConfig::default(),
    )
    .unwrap();
    let mut frame = BytesMut::new();
    FrameCodec::new()
        .encode_parts(
            FrameType::Handshake,
            FrameFlags::NONE,
            0,
            &Message::Handshake(Handshake {
                step: 0,
                body: first,
            })
            .to_bytes()
            .unwrap(),
            &mut frame,
        )
        .unwrap();
    let mut terminal = TerminalSession::new(SessionConfig::default(), context(), start);
    terminal.handle_input(&frame, start);
    let mut events = Vec::new();
    while let Some(e) = terminal.poll_event() {
        events.push(e);
    }
    assert!(
        matches!(
            &events[..],
            [TerminalEvent::Closed(CloseReason::Failed(SessionError::Protocol(why)))]
                if why.contains("another device")
        ),
        "{events:?}"
    );
    assert!(!terminal.is_ready());
    // The SDK's own client always names itself by its identity, whatever the app's hello said.
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 40);
    pair.drive();
    assert!(pair.terminal.is_ready());
}

/// A pairing revoked while its client is connected: the open session closes — before the
/// client's next sale is acted on, and within a second when the client is idle — and the client
/// is told why.
#[test]
fn a_live_revocation_closes_the_open_session_before_its_next_sale() {
    for idle in [false, true] {
        let start = Instant::now();
        let registry = Arc::new(Mutex::new(paired_registry()));
        let client = paired_client(SessionConfig::default(), start);
        let terminal = TerminalSession::new(
            SessionConfig::default(),
            context_with(registry.clone(), capabilities()),
            start,
        );
        let mut pair = Pair::new(client, terminal, start, 50);
        pair.drive();
        assert!(pair.terminal.is_ready());
        assert!(registry.lock().unwrap().revoke(&ids().client.id()));
        let revoked_at = pair.now;
        if idle {
            pair.run_until(revoked_at + Duration::from_millis(1500));
        } else {
            let sale = Message::Transaction(samples::sale_request());
            pair.client.send(&sale, pair.now).unwrap();
            pair.drive();
        }
        assert!(
            !pair
                .terminal_events()
                .iter()
                .any(|e| matches!(e, TerminalEvent::Transaction { .. })),
            "idle {idle}: {:?}",
            pair.terminal_events()
        );
        assert_eq!(
            terminal_closed(&pair),
            Some(&CloseReason::Failed(SessionError::NotPaired)),
            "idle {idle}"
        );
        assert!(
            !pair.client.is_ready(),
            "idle {idle}: {:?}",
            pair.client_events()
        );
    }
}

/// What the terminal does with an authentic message it cannot decode: a type this version does
/// not know (a newer client) is answered with `UNSUPPORTED_MESSAGE` and the session goes on; a
/// malformed message is answered with `INVALID_REQUEST`, then the session closes.
#[test]
fn an_undecodable_message_is_answered_with_an_error_code() {
    use posbridge_session::harness::send_message_bytes;
    use posbridge_wire::ErrorCode;
    let error_codes = |pair: &Pair| {
        client_messages(pair)
            .into_iter()
            .filter_map(|m| match m {
                Message::Error(e) => Some(e.code),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut pair = paired_pair(SessionConfig::default(), Faults::default(), 60);
    pair.drive();
    // A message type from a newer version.
    send_message_bytes(&mut pair.client, &[0x7E, 0x00], pair.now).unwrap();
    pair.drive();
    assert_eq!(error_codes(&pair), vec![ErrorCode::UNSUPPORTED_MESSAGE]);
    assert!(pair.terminal.is_ready(), "the session goes on");
    pair.client.send(&request(1), pair.now).unwrap();
    pair.drive();
    assert_eq!(terminal_messages(&pair), vec![request(1)]);
    // A malformed one: a known type cut short.
    let whole = Message::Transaction(samples::sale_request())
        .to_bytes()
        .unwrap();
    send_message_bytes(&mut pair.client, &whole[..whole.len() / 2], pair.now).unwrap();
    pair.drive();
    assert_eq!(
        error_codes(&pair),
        vec![ErrorCode::UNSUPPORTED_MESSAGE, ErrorCode::INVALID_REQUEST]
    );
    assert_eq!(
        terminal_closed(&pair),
        Some(&CloseReason::Failed(SessionError::Protocol(
            "a message that does not decode"
        )))
    );
}
