//! Protocol 1.1 through both roles: version negotiation with 1.0 peers, telemetry answered on
//! demand, changes pushed once to each 1.1 client and never to a 1.0 one, and a 1.1 message sent
//! to a 1.0 session refused like an unknown type.

mod common;
use common::*;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posbridge_session::harness::{Pair, capabilities, hello, send_message_bytes};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, RequestError, SessionConfig, SharedTelemetry,
    TerminalSession,
};
use posbridge_wire::{
    AcquirerLink, ErrorCode, Message, PaperState, RequestId, TelemetryChange, TelemetryQuery,
    VERSION_1_0, VERSION_1_1,
};

/// A connected pair: the client offers `client_versions`, the terminal speaks
/// `terminal_versions`.
fn pair_with(client_versions: &[u16], terminal_versions: &[u16]) -> (Pair, SharedTelemetry) {
    let start = Instant::now();
    let mut caps = capabilities();
    caps.protocol_versions = terminal_versions.to_vec();
    let context = context_with(Arc::new(Mutex::new(paired_registry())), caps);
    let board = context.telemetry.clone();
    let mut hello = hello();
    hello.protocol_versions = client_versions.to_vec();
    let client = ClientSession::new(
        SessionConfig::default(),
        ids().client.clone(),
        ClientSecurity::Paired {
            terminal_key: ids().terminal.channel().public(),
        },
        hello,
        start,
    );
    let terminal = TerminalSession::new(SessionConfig::default(), context, start);
    let mut pair = Pair::new(client, terminal, start, 7);
    pair.drive();
    assert!(pair.client.is_ready() && pair.terminal.is_ready());
    (pair, board)
}

fn query(pair: &mut Pair) -> Result<RequestId, RequestError> {
    let q = Message::TelemetryQuery(TelemetryQuery {
        request_id: RequestId::default(),
    });
    pair.client
        .request(q, pair.now + Duration::from_secs(5), pair.now)
}

fn pushes(pair: &Pair) -> Vec<posbridge_wire::TelemetryReport> {
    pair.client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Telemetry(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_first_common_version_of_the_clients_list_is_chosen() {
    for (client, terminal, agreed) in [
        (
            &[VERSION_1_1, VERSION_1_0][..],
            &[VERSION_1_1, VERSION_1_0][..],
            VERSION_1_1,
        ),
        (&[VERSION_1_0], &[VERSION_1_1, VERSION_1_0], VERSION_1_0),
        (&[VERSION_1_1, VERSION_1_0], &[VERSION_1_0], VERSION_1_0),
        // The client's order decides, not the terminal's.
        (
            &[VERSION_1_0, VERSION_1_1],
            &[VERSION_1_1, VERSION_1_0],
            VERSION_1_0,
        ),
    ] {
        let (pair, _) = pair_with(client, terminal);
        assert_eq!(
            pair.client.protocol_version(),
            Some(agreed),
            "{client:?} {terminal:?}"
        );
        assert_eq!(pair.terminal.protocol_version(), Some(agreed));
        let caps = pair.client.capabilities().unwrap();
        assert_eq!(
            caps.protocol_versions, terminal,
            "the terminal lists what it speaks"
        );
    }
}

#[test]
fn telemetry_is_answered_on_demand() {
    let (mut pair, board) = pair_with(&[VERSION_1_1, VERSION_1_0], &[VERSION_1_1, VERSION_1_0]);
    board.lock().unwrap().update(|t| {
        t.battery_percent = Some(64);
        t.paper = Some(PaperState::Low);
    });
    let id = query(&mut pair).unwrap();
    pair.drive();
    let answer = pair
        .client_events()
        .iter()
        .find_map(|e| match e {
            ClientEvent::Response {
                request_id,
                message: Message::TelemetryReport(r),
            } if *request_id == id => Some(r.clone()),
            _ => None,
        })
        .expect("an answer");
    assert_eq!(answer.request_id, Some(id));
    assert_eq!(answer.telemetry.battery_percent, Some(64));
    assert_eq!(answer.telemetry.paper, Some(PaperState::Low));
    assert!(
        answer.changes.iter().next().is_none(),
        "an answer reports no changes"
    );
}

#[test]
fn changes_are_pushed_once_within_a_second() {
    let (mut pair, board) = pair_with(&[VERSION_1_1], &[VERSION_1_1, VERSION_1_0]);
    // A level that crosses no threshold is not pushed.
    board
        .lock()
        .unwrap()
        .update(|t| t.battery_percent = Some(60));
    pair.run_until(pair.now + Duration::from_secs(2));
    assert!(pushes(&pair).is_empty(), "{:?}", pushes(&pair));
    board.lock().unwrap().update(|t| {
        t.battery_percent = Some(9);
        t.acquirer = AcquirerLink::Offline;
    });
    let changed_at = pair.now;
    pair.run_until(changed_at + Duration::from_millis(1100));
    let got = pushes(&pair);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].changes.contains(TelemetryChange::BatteryLow));
    assert!(got[0].changes.contains(TelemetryChange::Offline));
    assert_eq!(got[0].telemetry.battery_percent, Some(9));
    assert_eq!(got[0].request_id, None);
    // Nothing new: nothing more, however long the session runs.
    pair.run_until(pair.now + Duration::from_secs(5));
    assert_eq!(pushes(&pair).len(), 1);
    board
        .lock()
        .unwrap()
        .update(|t| t.acquirer = AcquirerLink::Online);
    pair.run_until(pair.now + Duration::from_secs(2));
    let got = pushes(&pair);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].changes.iter().collect::<Vec<_>>(),
        vec![TelemetryChange::Online]
    );
}

#[test]
fn a_one_zero_client_gets_no_pushes_and_cannot_ask() {
    let (mut pair, board) = pair_with(&[VERSION_1_0], &[VERSION_1_1, VERSION_1_0]);
    board
        .lock()
        .unwrap()
        .update(|t| t.paper = Some(PaperState::Out));
    pair.run_until(pair.now + Duration::from_secs(3));
    assert!(pushes(&pair).is_empty());
    assert!(
        !pair
            .client_events()
            .iter()
            .any(|e| matches!(e, ClientEvent::Message(Message::TelemetryReport(_)))),
        "nothing of 1.1 reaches a 1.0 client"
    );
    assert_eq!(
        query(&mut pair),
        Err(RequestError::NotInVersion {
            agreed: VERSION_1_0,
            needs: VERSION_1_1
        })
    );
}

#[test]
fn a_one_one_message_in_a_one_zero_session_is_refused_and_the_session_goes_on() {
    let (mut pair, _) = pair_with(&[VERSION_1_0], &[VERSION_1_1, VERSION_1_0]);
    let id = RequestId([9; 16]);
    let bytes = Message::TelemetryQuery(TelemetryQuery { request_id: id })
        .to_bytes()
        .unwrap();
    send_message_bytes(&mut pair.client, &bytes, pair.now).unwrap();
    pair.drive();
    let refused = pair.client_events().iter().any(|e| {
        matches!(e, ClientEvent::Message(Message::Error(err))
            if err.code == ErrorCode::UNSUPPORTED_MESSAGE && err.request_id == Some(id))
    });
    assert!(refused, "{:?}", pair.client_events());
    assert!(pair.terminal.is_ready() && pair.client.is_ready());
}
