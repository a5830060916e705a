//! The HTTPS transport against `https::serve`: the terminal's certificate checked against a root
//! and its Adyen-style name or a pin, failures to connect told apart from lost answers (nothing
//! left in the first case), rejected requests with their status, connections reused.

#![cfg(feature = "https")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use posbridge_nexo::https::{TerminalTrust, adyen_certificate_name, serve, transport_to};
use posbridge_nexo::{Handler, Transport, TransportError};
use posbridge_tcp::{Fingerprint, TlsServerConfig, TlsVersions};

const POI: &str = "V400m-346403161";

/// Echoes bodies; answers `reject` with 401 and `fail` with 500; counts requests.
struct Echo(AtomicU32);

impl Handler for Echo {
    async fn handle(&self, body: Vec<u8>) -> Result<Vec<u8>, (u16, String)> {
        self.0.fetch_add(1, Ordering::SeqCst);
        match body.as_slice() {
            b"reject" => Err((401, "no such key".into())),
            b"fail" => Err((500, "broken".into())),
            _ => Ok(body),
        }
    }
}

struct Certs {
    root: Vec<u8>,
    leaf: Vec<u8>,
    key: Vec<u8>,
}

fn certs(name: &str) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test root");
    let ca_key = KeyPair::generate().unwrap();
    let root = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(vec![name.to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Certs {
        root: root.der().to_vec(),
        leaf: cert.der().to_vec(),
        key: key.serialize_der(),
    }
}

async fn terminal(tls: Option<&Certs>) -> (std::net::SocketAddr, Arc<Echo>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = Arc::new(Echo(AtomicU32::new(0)));
    let config = tls.map(|c| {
        TlsServerConfig::new(
            vec![c.leaf.clone()],
            c.key.clone(),
            TlsVersions::Tls12AndTls13,
        )
    });
    tokio::spawn(serve(listener, config, echo.clone()));
    (addr, echo)
}

const SECOND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn https_checks_the_root_and_the_adyen_name_and_reuses_its_connection() {
    let good = certs(&adyen_certificate_name(POI, false));
    let (addr, echo) = terminal(Some(&good)).await;
    let t = transport_to(
        addr,
        POI,
        false,
        TerminalTrust::Roots(vec![good.root.clone()]),
    )
    .unwrap();
    t.ready(SECOND).await.unwrap();
    assert_eq!(t.exchange(b"one".to_vec(), SECOND).await.unwrap(), b"one");
    assert_eq!(t.exchange(b"two".to_vec(), SECOND).await.unwrap(), b"two");
    assert_eq!(echo.0.load(Ordering::SeqCst), 2);

    // A terminal answering 4xx did not take the request; 5xx leaves it in doubt.
    let e = t.exchange(b"reject".to_vec(), SECOND).await.unwrap_err();
    assert!(
        matches!(e, TransportError::Rejected { status: 401, ref text } if text == "no such key"),
        "{e}"
    );
    assert!(e.sent_nothing());
    let e = t.exchange(b"fail".to_vec(), SECOND).await.unwrap_err();
    assert!(
        matches!(e, TransportError::Lost(_)) && !e.sent_nothing(),
        "{e}"
    );

    // The live name, another POIID, another root, a wrong pin: refused before anything leaves.
    for trust in [
        (true, POI, TerminalTrust::Roots(vec![good.root.clone()])),
        (
            false,
            "V400m-000000000",
            TerminalTrust::Roots(vec![good.root.clone()]),
        ),
        (false, POI, TerminalTrust::Roots(vec![certs("other").root])),
        (
            false,
            POI,
            TerminalTrust::Pinned(vec![Fingerprint([7; 32])]),
        ),
    ] {
        let (live, poi, trust) = trust;
        let t = transport_to(addr, poi, live, trust).unwrap();
        let e = t.exchange(b"x".to_vec(), SECOND).await.unwrap_err();
        assert!(
            matches!(e, TransportError::Connect(_)) && e.sent_nothing(),
            "{e}"
        );
    }
    assert_eq!(
        echo.0.load(Ordering::SeqCst),
        4,
        "nothing reached the terminal"
    );

    // The right pin is trusted without a root.
    let pin = Fingerprint::of_der(&good.leaf);
    let t = transport_to(addr, POI, false, TerminalTrust::Pinned(vec![pin])).unwrap();
    assert_eq!(
        t.exchange(b"pinned".to_vec(), SECOND).await.unwrap(),
        b"pinned"
    );
}

#[tokio::test]
async fn plain_http_and_a_terminal_that_is_not_there() {
    let (addr, _) = terminal(None).await;
    let t = transport_to(addr, POI, false, TerminalTrust::PlainHttp).unwrap();
    assert_eq!(
        t.exchange(b"clear".to_vec(), SECOND).await.unwrap(),
        b"clear"
    );

    let nobody = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = nobody.local_addr().unwrap();
    drop(nobody);
    let t = transport_to(gone, POI, false, TerminalTrust::PlainHttp).unwrap();
    let e = t.ready(SECOND).await.unwrap_err();
    assert!(e.sent_nothing(), "{e}");
}
