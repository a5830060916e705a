//! TCP and TLS links on 127.0.0.1: real sockets, real handshakes, certificates made here.

use bytes::BytesMut;
use posbridge_link::{Link, LinkError, LinkExt, LinkKind};
use posbridge_tcp::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Echoes everything back until the peer closes.
async fn echo(mut link: TcpLink) {
    let mut buf = BytesMut::new();
    loop {
        buf.clear();
        match link.recv(&mut buf).await {
            Ok(_) => link.send_all(&buf).await.unwrap(),
            Err(LinkError::Closed) => break,
            Err(e) => panic!("echo: {e}"),
        }
    }
    link.close().await.ok();
}

async fn round_trip(link: &mut TcpLink) {
    // Every byte value, then a write far larger than one segment.
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend((0..200_000u32).map(|i| (i * 13) as u8));
    let (mut got, want) = (BytesMut::new(), data.len());
    let sending = data.clone();
    link.send_all(&sending).await.unwrap();
    while got.len() < want {
        link.recv(&mut got).await.unwrap();
    }
    assert_eq!(&got[..], &data[..]);
}

#[tokio::test]
async fn plain_tcp_moves_bytes_both_ways() {
    let listener = Listener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move { echo(listener.accept().await.unwrap()).await });
    let mut link = connect(&addr, &TcpConfig::default()).await.unwrap();
    assert_eq!(link.info().kind, LinkKind::Tcp);
    assert_eq!(link.info().address.as_deref(), Some(addr.as_str()));
    assert!(link.get_ref().tcp().nodelay().unwrap());
    round_trip(&mut link).await;
    link.close().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn refused_connection_says_what_to_check() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = connect(&format!("127.0.0.1:{port}"), &TcpConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TcpError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn an_address_that_does_not_parse_is_a_resolve_error() {
    // No DNS query leaves the machine: the port is malformed before any lookup.
    let err = connect("127.0.0.1:port", &TcpConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TcpError::Resolve { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:port"));
}

struct Pki {
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_key: Vec<u8>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "posbridge test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "terminal 0042");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        leaf_key: leaf_key.serialize_der(),
    }
}

async fn tls_server(
    pki: &Pki,
    versions: TlsVersions,
) -> (String, tokio::task::JoinHandle<Result<(), TcpError>>) {
    let config = TlsServerConfig::new(vec![pki.leaf_der.clone()], pki.leaf_key.clone(), versions);
    let listener = Listener::bind_tls("127.0.0.1:0", &config).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let link = listener.accept().await?;
        echo(link).await;
        Ok(())
    });
    (addr, task)
}

fn client(tls: TlsClientConfig) -> TcpConfig {
    let mut c = TcpConfig::default();
    c.set_tls(Some(tls));
    c
}

#[tokio::test]
async fn tls_with_ca_verification_over_tls12_and_tls13() {
    let pki = pki();
    for versions in [
        TlsVersions::Tls13Only,
        TlsVersions::Tls12Only,
        TlsVersions::Tls12AndTls13,
    ] {
        let (addr, server) = tls_server(&pki, versions).await;
        let tls = TlsClientConfig::new(
            "localhost",
            ServerVerification::Roots(vec![pki.ca_der.clone()]),
            TlsVersions::Tls12AndTls13,
        )
        .unwrap();
        let mut link = connect(&addr, &client(tls)).await.unwrap();
        assert_eq!(link.info().kind, LinkKind::Tls);
        let version = match link.get_ref() {
            TcpStreamKind::TlsClient(s) => s.get_ref().1.protocol_version(),
            _ => panic!("not TLS"),
        };
        let expect = match versions {
            TlsVersions::Tls12Only => rustls::ProtocolVersion::TLSv1_2,
            _ => rustls::ProtocolVersion::TLSv1_3,
        };
        assert_eq!(version, Some(expect), "{versions:?}");
        round_trip(&mut link).await;
        link.close().await.unwrap();
        server.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn tls_with_an_unknown_ca_or_wrong_name_is_refused() {
    let pki = pki();
    let other = self::pki();
    for (name, roots) in [
        ("localhost", other.ca_der.clone()),
        ("terminal.example", pki.ca_der.clone()),
    ] {
        let (addr, server) = tls_server(&pki, TlsVersions::Tls12AndTls13).await;
        let tls = TlsClientConfig::new(
            name,
            ServerVerification::Roots(vec![roots]),
            TlsVersions::Tls12AndTls13,
        )
        .unwrap();
        let err = connect(&addr, &client(tls)).await.unwrap_err();
        assert!(matches!(err, TcpError::Tls(_)), "{name}: {err:?}");
        assert!(server.await.unwrap().is_err());
    }
}

#[tokio::test]
async fn pinned_certificate_is_accepted_and_a_mismatch_refused() {
    let pki = pki();
    let pin = Fingerprint::of_der(&pki.leaf_der);
    // The pin round-trips through its printed form.
    assert_eq!(pin.to_string().parse::<Fingerprint>().unwrap(), pin);

    let (addr, server) = tls_server(&pki, TlsVersions::Tls12AndTls13).await;
    // Pinning does not check the name: a terminal addressed by IP still matches its pin.
    let tls = TlsClientConfig::new(
        "127.0.0.1",
        ServerVerification::Pinned(vec![pin]),
        TlsVersions::Tls12AndTls13,
    )
    .unwrap();
    let mut link = connect(&addr, &client(tls)).await.unwrap();
    round_trip(&mut link).await;
    link.close().await.unwrap();
    server.await.unwrap().unwrap();

    for versions in [TlsVersions::Tls13Only, TlsVersions::Tls12Only] {
        let (addr, server) = tls_server(&pki, versions).await;
        let wrong = Fingerprint([0xAB; 32]);
        let tls = TlsClientConfig::new(
            "localhost",
            ServerVerification::Pinned(vec![wrong]),
            versions,
        )
        .unwrap();
        let err = connect(&addr, &client(tls)).await.unwrap_err();
        match &err {
            TcpError::PinMismatch { presented } => assert_eq!(*presented, pin),
            other => panic!("expected a pin mismatch, got {other:?}"),
        }
        assert!(err.to_string().contains(&pin.to_string()));
        assert!(server.await.unwrap().is_err());
    }
}

#[tokio::test]
async fn plain_client_against_tls_server_fails_cleanly() {
    let pki = pki();
    let (addr, server) = tls_server(&pki, TlsVersions::Tls12AndTls13).await;
    let mut link = connect(&addr, &TcpConfig::default()).await.unwrap();
    link.send_all(b"\xa5\xc3 not a TLS client hello")
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    // The server rejects the handshake and closes: the client sees the end, not a hang.
    let end = loop {
        match link.recv(&mut buf).await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(end, LinkError::Closed | LinkError::Disconnected(_)),
        "{end:?}"
    );
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn a_terminal_that_does_not_answer_times_out() {
    // A listener whose accept queue is full and never drained: Linux drops further SYNs, so a
    // connect hangs exactly as it does towards a terminal that is switched off.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let mut config = TcpConfig::default();
    config.set_connect_timeout(std::time::Duration::from_millis(300));
    let mut timed_out = None;
    // Fill the queue; the first connect that cannot complete must time out.
    for _ in 0..8 {
        match connect(&addr.to_string(), &config).await {
            Ok(link) => fillers.push(link),
            Err(e) => {
                timed_out = Some(e);
                break;
            }
        }
    }
    match timed_out {
        Some(TcpError::Timeout { after, .. }) => {
            assert_eq!(after, std::time::Duration::from_millis(300))
        }
        other => panic!(
            "expected a timeout once the queue was full, got {other:?} after {} connections",
            fillers.len()
        ),
    }
    let e = connect(&addr.to_string(), &config).await.unwrap_err();
    assert!(e.to_string().contains("no answer"), "{e}");
}
