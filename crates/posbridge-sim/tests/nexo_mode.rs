//! posbridge's nexo client (`NexoTerminal`) against the simulator's nexo mode over HTTPS, through
//! `PaymentTerminal`: a sale cancelled while it waits for the card (nexo's `AbortRequest`, sent on
//! a second connection while the payment's own request waits), then a sale, its status, and a
//! refund of it by reference.

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{Call, Engine, PaymentTerminal};
use posbridge_nexo::https::{TerminalTrust, transport_to};
use posbridge_nexo::security::SecurityKey;
use posbridge_nexo::{NexoClient, NexoConfig};
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Outcome, TransactionRef, TransactionStatus,
};

const POI: &str = "P400Plus-000000042";

fn key() -> SecurityKey {
    SecurityKey::derive("sim", 1, b"nexo mode passphrase")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sale_status_and_refund_through_payment_terminal_over_https() {
    let profile = TerminalProfile {
        latency: Latency {
            card: Duration::from_secs(2),
            ..Latency::INSTANT
        },
        ..TerminalProfile::default()
    };
    let backend = posbridge_sim::backend::simulated(profile).await.unwrap();
    let server = posbridge_sim::nexo::server(backend, POI, Some(key()), &[]).unwrap();
    let certs = posbridge_sim::nexo::certificates(POI).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(posbridge_nexo::https::serve(
        listener,
        Some(certs.server_config()),
        server,
    ));
    let transport = transport_to(
        addr,
        POI,
        false,
        TerminalTrust::Roots(vec![certs.ca_der.clone()]),
    )
    .unwrap();
    let till = Arc::new(Engine::new(
        NexoClient::new(transport, NexoConfig::new("till-9", POI, Some(key()))),
        MemoryJournal::new(),
    ));
    let eur = |m| Amount::new(m, Currency::EUR);
    let call = || Call::within(Duration::from_secs(30));

    // Cancelled while the terminal waits for the card.
    let running = {
        let till = till.clone();
        tokio::spawn(async move {
            till.sale(IdempotencyKey::from_u128(1), eur(4000), call())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    till.cancel().await.unwrap();
    let cancelled = running.await.unwrap().unwrap();
    assert_eq!(cancelled.outcome, Outcome::Cancelled);
    assert_eq!(cancelled.approved_minor, 0);

    // A sale, its status from the journal, and a refund of it by reference.
    let sale = IdempotencyKey::from_u128(2);
    let r = till.sale(sale, eur(1234), call()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    match till.status(sale, Duration::from_secs(10)).await.unwrap() {
        TransactionStatus::Done(done) => assert_eq!(done.transaction_id, r.transaction_id),
        other => panic!("{other:?}"),
    }
    let refund = till
        .refund(
            IdempotencyKey::from_u128(3),
            eur(234),
            Some(TransactionRef::Key(sale)),
            call(),
        )
        .await
        .unwrap();
    assert_eq!(
        (refund.outcome, refund.approved_minor),
        (Outcome::Approved, 234)
    );
    // The receipts the simulator printed came back as printed lines.
    assert!(!r.receipts.is_empty());
    assert!(
        r.receipts[0].header.iter().any(|l| l.contains("12.34")),
        "{:?}",
        r.receipts[0].header
    );
}
