//! The `zvt` crate's cash-register client (its own sequences, its own parsers) against the
//! simulator's ZVT mode over TCP on 127.0.0.1: Registration, Reservation (pre-authorisation)
//! (pre-authorisation), Partial reversal (booking the rest) and End-of-day complete, and every
//! packet our terminal role sends parses with its parsers.

use std::sync::Arc;

use futures_util::StreamExt;
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_zvt::server::ServerConfig;
use posbridge_zvt::transport::{Framing, ZvtLink};
use zvt::packets;
use zvt::sequences::{
    AuthorizationResponse, EndOfDay, EndOfDayResponse, PartialReversal, PartialReversalResponse,
    Registration, RegistrationResponse, Reservation, Sequence,
};

async fn terminal() -> std::net::SocketAddr {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let backend = posbridge_sim::zvt::simulated(profile).await.unwrap();
    let server = Arc::new(
        posbridge_sim::zvt::server(backend, 29_001_006, Vec::new(), ServerConfig::default())
            .unwrap(),
    );
    let listener = posbridge_tcp::Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok(link) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let _ = server.serve(ZvtLink::new(link, Framing::Tcp)).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_zvt_crates_client_registers_reserves_and_closes_the_day() {
    let addr = terminal().await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();

    // Registration: the completion names the terminal and the currency.
    let registration = packets::Registration {
        password: 0,
        config_byte: 0xDE,
        currency: Some(978),
        tlv: None,
    };
    let mut completion = None;
    {
        let mut s = Registration::into_stream(&registration, &mut stream);
        while let Some(answer) = s.next().await {
            match answer.expect("our packets parse with its parsers") {
                RegistrationResponse::CompletionData(c) => completion = Some(c),
            }
        }
    }
    let completion = completion.expect("a completion");
    assert_eq!(completion.terminal_id, Some(29_001_006), "{completion:?}");
    assert_eq!(completion.currency, Some(978));

    // Reservation (pre-authorisation) of EUR 25.00: intermediate states, the status
    // information with the amount and a receipt number, print lines, the completion.
    let reservation = packets::Reservation {
        amount: Some(2500),
        currency: Some(978),
        ..packets::Reservation::default()
    };
    let (mut status, mut lines, mut intermediate, mut done) = (None, 0, 0, false);
    {
        let mut s = Reservation::into_stream(&reservation, &mut stream);
        while let Some(answer) = s.next().await {
            match answer.expect("our packets parse with its parsers") {
                AuthorizationResponse::IntermediateStatusInformation(_) => intermediate += 1,
                AuthorizationResponse::StatusInformation(i) => status = Some(i),
                AuthorizationResponse::PrintLine(_) => lines += 1,
                AuthorizationResponse::PrintTextBlock(_) => lines += 1,
                AuthorizationResponse::CompletionData(_) => done = true,
                AuthorizationResponse::Abort(a) => panic!("aborted: {a:?}"),
            }
        }
    }
    assert!(done, "the reservation completed");
    assert!(intermediate >= 2, "{intermediate} intermediate states");
    assert!(lines > 10, "{lines} print lines");
    let status = status.expect("a status information");
    assert_eq!(status.result_code, Some(0), "{status:?}");
    assert_eq!(status.amount, Some(2500));
    assert!(status.receipt_no.is_some(), "{status:?}");
    assert_eq!(status.terminal_id, Some(29_001_006));

    // Partial reversal of EUR 10.00 of the reservation: EUR 15.00 is booked.
    let partial = packets::PartialReversal {
        receipt_no: status.receipt_no,
        amount: Some(1000),
        currency: Some(978),
        ..packets::PartialReversal::default()
    };
    let mut booked = None;
    {
        let mut s = PartialReversal::into_stream(&partial, &mut stream);
        while let Some(answer) = s.next().await {
            match answer.expect("our packets parse with its parsers") {
                PartialReversalResponse::StatusInformation(i) => booked = Some(i),
                PartialReversalResponse::PartialReversalAbort(a) => panic!("aborted: {a:?}"),
                _ => {}
            }
        }
    }
    let booked = booked.expect("a status information");
    assert_eq!(booked.result_code, Some(0), "{booked:?}");
    assert_eq!(booked.amount, Some(1500), "{booked:?}");

    // End-of-day: the status information carries the total, the day closes.
    let eod = packets::EndOfDay { password: 0 };
    let (mut total, mut closed) = (None, false);
    {
        let mut s = EndOfDay::into_stream(&eod, &mut stream);
        while let Some(answer) = s.next().await {
            match answer.expect("our packets parse with its parsers") {
                EndOfDayResponse::StatusInformation(i) => total = Some(i),
                EndOfDayResponse::CompletionData(_) => closed = true,
                EndOfDayResponse::Abort(a) => panic!("aborted: {a:?}"),
                _ => {}
            }
        }
    }
    assert!(closed, "the day closed");
    let total = total.expect("a status information");
    assert_eq!(total.result_code, Some(0));
    // A reservation moves no money until it is booked: the day's net is what was booked.
    assert_eq!(total.amount, Some(1500), "{total:?}");
}
