//! Link throughput with 1 KiB writes, each next to a baseline in the same run.
//!
//! * `memory_pair` against `tokio::io::duplex` (raw `AsyncWrite`/`AsyncRead`, no `Link` layer);
//! * `fault_injector_idle`: a `FaultInjector` that injects nothing, against the bare link it
//!   wraps;
//! * `tcp_loopback` and `tls_loopback` (TLS 1.3, pinned certificate) on 127.0.0.1, against
//!   a plain `tokio::net::TcpStream` pair with the same writes.
//!
//! Run: `cargo bench -p posbridge-benches --bench link`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge_link::{Delivery, FaultConfig, FaultInjector, Link, LinkExt, memory_pair};
use posbridge_tcp::{
    Fingerprint, Listener, ServerVerification, TcpConfig, TcpLink, TlsClientConfig,
    TlsServerConfig, TlsVersions, connect,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITE: usize = 1024;
const WRITES: usize = 256;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build()
        .unwrap()
}

/// Sends `WRITES` writes of 1 KiB from `a` and receives them at `b`, one at a time.
async fn ping_through(a: &mut impl Link, b: &mut impl Link, buf: &mut BytesMut, data: &[u8]) {
    for _ in 0..WRITES {
        a.send_all(data).await.unwrap();
        buf.clear();
        while buf.len() < WRITE {
            b.recv(buf).await.unwrap();
        }
        black_box(&buf);
    }
}

fn links(c: &mut Criterion) {
    let rt = runtime();
    let data = vec![0x5au8; WRITE];
    let mut g = c.benchmark_group("link_1k_writes");
    g.throughput(Throughput::Bytes((WRITE * WRITES) as u64));

    g.bench_function("memory_pair", |b| {
        let (mut x, mut y) = memory_pair(Delivery::Stream, 4096, 64);
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| rt.block_on(ping_through(&mut x, &mut y, &mut buf, &data)));
    });

    g.bench_function("tokio_duplex_baseline", |b| {
        let (mut x, mut y) = tokio::io::duplex(64 * 1024);
        let mut buf = vec![0u8; 4096];
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..WRITES {
                    x.write_all(&data).await.unwrap();
                    let mut got = 0;
                    while got < WRITE {
                        got += y.read(&mut buf[got..]).await.unwrap();
                    }
                    black_box(&buf);
                }
            })
        });
    });

    g.bench_function("fault_injector_idle", |b| {
        let (x, y) = memory_pair(Delivery::Stream, 4096, 64);
        let mut x = FaultInjector::new(x, FaultConfig::default());
        let mut y = FaultInjector::new(y, FaultConfig::default());
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| rt.block_on(ping_through(&mut x, &mut y, &mut buf, &data)));
    });

    let (mut tcp_a, mut tcp_b) = rt.block_on(tcp_pair(None));
    g.bench_function("tcp_loopback", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| rt.block_on(ping_through(&mut tcp_a, &mut tcp_b, &mut buf, &data)));
    });

    let (mut raw_a, mut raw_b) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        let a = a.unwrap();
        let b = b.unwrap().0;
        a.set_nodelay(true).unwrap();
        b.set_nodelay(true).unwrap();
        (a, b)
    });
    g.bench_function("tcp_raw_baseline", |b| {
        let mut buf = vec![0u8; 4096];
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..WRITES {
                    raw_a.write_all(&data).await.unwrap();
                    let mut got = 0;
                    while got < WRITE {
                        got += raw_b.read(&mut buf[got..]).await.unwrap();
                    }
                    black_box(&buf);
                }
            })
        });
    });

    let (mut tls_a, mut tls_b) = rt.block_on(tcp_pair(Some(())));
    g.bench_function("tls_loopback", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| rt.block_on(ping_through(&mut tls_a, &mut tls_b, &mut buf, &data)));
    });
    g.finish();
}

/// A connected pair of posbridge TCP links on 127.0.0.1, with TLS 1.3 when asked.
async fn tcp_pair(tls: Option<()>) -> (TcpLink, TcpLink) {
    let mut config = TcpConfig::default();
    let listener = match tls {
        None => Listener::bind("127.0.0.1:0").await.unwrap(),
        Some(()) => {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let der = cert.cert.der().to_vec();
            let server = TlsServerConfig::new(
                vec![der.clone()],
                cert.signing_key.serialize_der(),
                TlsVersions::Tls13Only,
            );
            let pin = Fingerprint::of_der(&der);
            config.set_tls(Some(
                TlsClientConfig::new(
                    "localhost",
                    ServerVerification::Pinned(vec![pin]),
                    TlsVersions::Tls13Only,
                )
                .unwrap(),
            ));
            Listener::bind_tls("127.0.0.1:0", &server).await.unwrap()
        }
    };
    let addr = listener.local_addr().unwrap().to_string();
    let (a, b) = tokio::join!(connect(&addr, &config), listener.accept());
    (a.unwrap(), b.unwrap())
}

criterion_group!(benches, links);
criterion_main!(benches);
