//! ZVT over real and damaged links: serial frames survive bit flips through NAK and resend, a
//! sale runs over a pseudo-terminal pair (the kernel's tty layer, 8N2 framing of ZVT) and over
//! TLS on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{Call, PaymentTerminal};
use posbridge_link::{Delivery, FaultConfig, FaultInjector, Faults, Link, memory_pair};
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome};
use posbridge_zvt::Apdu;
use posbridge_zvt::client::ZvtConfig;
use posbridge_zvt::server::{ServerConfig, ZvtServer};
use posbridge_zvt::transport::{Framing, ZvtLink};

async fn server() -> Arc<ZvtServer<posbridge_sim::zvt::Backend>> {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    let backend = posbridge_sim::zvt::simulated(profile).await.unwrap();
    Arc::new(
        posbridge_sim::zvt::server(
            backend,
            10_000_001,
            Vec::new(),
            ServerConfig {
                render: posbridge_sim::render,
                ..ServerConfig::default()
            },
        )
        .unwrap(),
    )
}

async fn sell(link: impl Link + 'static, framing: Framing) {
    let t =
        posbridge_zvt::client::connect(link, framing, ZvtConfig::default(), MemoryJournal::new())
            .await
            .unwrap();
    assert_eq!(t.adapter().registered().terminal_id, Some(10_000_001));
    let r = t
        .sale(
            IdempotencyKey::from_u128(1),
            Amount::new(1999, Currency::EUR),
            Call::within(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Approved);
    assert_eq!(r.receipts.len(), 2);
}

/// Every frame arrives once and whole although bytes are flipped both ways: damaged frames are
/// answered NAK and sent again (the seed is fixed, so the same bytes are hit every run). The
/// rate is one a serial line survives: ZVT sends a frame three times at most, and a flipped
/// `ACK` makes the sender repeat a frame the receiver already took (ZVT's serial framing has no
/// sequence numbers), so at 0.2 % per byte 250-byte frames fail within 40 exchanges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_frames_survive_bit_flips_by_nak_and_resend() {
    let (a, b) = memory_pair(Delivery::Stream, 4096, 1024);
    let damage = Faults {
        flip: 0.0005,
        ..Faults::default()
    };
    let a = FaultInjector::new(
        a,
        FaultConfig {
            seed: 11,
            send: damage.clone(),
            recv: damage,
            ..FaultConfig::default()
        },
    );
    let mut register = ZvtLink::new(a, Framing::Serial);
    let mut terminal = ZvtLink::new(b, Framing::Serial);
    const N: usize = 60;
    let echo = tokio::spawn(async move {
        for _ in 0..N {
            let apdu = terminal.recv().await.unwrap();
            terminal.send(&apdu).await.unwrap();
        }
        terminal.damaged_frames()
    });
    for i in 0..N {
        // Data with DLE bytes, so stuffing is exercised too.
        let data: Vec<u8> = (0..60 + i).map(|j| (j * 7 + i) as u8).collect();
        let apdu = Apdu::new(0x06, 0xD1, data);
        register.send(&apdu).await.unwrap();
        assert_eq!(register.recv().await.unwrap(), apdu, "frame {i}");
    }
    let damaged = echo.await.unwrap() + register.damaged_frames();
    let flipped = register.link().stats().flipped;
    eprintln!("{flipped} bytes flipped, {damaged} damaged frames sent again");
    assert!(
        flipped > 0 && damaged > 0,
        "{flipped} flipped, {damaged} damaged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_over_a_serial_line() {
    let (register, terminal) = posbridge_serial::pty_pair().unwrap();
    let server = server().await;
    tokio::spawn(async move { server.serve(ZvtLink::new(terminal, Framing::Serial)).await });
    sell(register, Framing::Serial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = cert.cert.der().to_vec();
    let tls = posbridge_tcp::TlsServerConfig::new(
        vec![der.clone()],
        cert.signing_key.serialize_der(),
        posbridge_tcp::TlsVersions::Tls12AndTls13,
    );
    let listener = posbridge_tcp::Listener::bind_tls("127.0.0.1:0", &tls)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = server().await;
    tokio::spawn(async move {
        let link = listener.accept().await.unwrap();
        server.serve(ZvtLink::new(link, Framing::Tcp)).await
    });
    let mut config = posbridge_tcp::TcpConfig::default();
    config.set_tls(Some(
        posbridge_tcp::TlsClientConfig::new(
            "localhost",
            posbridge_tcp::ServerVerification::Pinned(vec![posbridge_tcp::Fingerprint::of_der(
                &der,
            )]),
            posbridge_tcp::TlsVersions::Tls12AndTls13,
        )
        .unwrap(),
    ));
    let link = posbridge_tcp::connect(&addr, &config).await.unwrap();
    sell(link, Framing::Tcp).await;
}
