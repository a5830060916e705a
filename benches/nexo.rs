//! nexo (Adyen's Terminal API) next to the native and ZVT codecs, in the same run:
//!
//! * per sale request and per sale result: encode, encode + encrypt (Adyen's `NexoBlob`:
//!   AES-256-CBC and HMAC-SHA256), decrypt + decode, decode — against the native message codec
//!   (`posbridge-wire`, the same request and an approved result) and ZVT's (`06 01`
//!   Authorization, and the 93-byte status information the `zvt` crate ships);
//! * a whole sale: `NexoTerminal` (journal in memory) → `NexoServer` in front of the simulator's
//!   native client, encrypted, in memory — against the native `Payments` sale it wraps;
//! * the bytes one sale puts on the wire: the two bodies, and the same exchange over plain HTTP
//!   and over HTTPS (counted on the TCP connection by a relay), printed.
//!
//! Run: `cargo bench -p posbridge-benches --bench nexo -- --warm-up-time 2 --measurement-time 5`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge::journal::MemoryJournal;
use posbridge::{Call, Engine, PaymentTerminal};
use posbridge_nexo::codec::{self, Envelope};
use posbridge_nexo::security::SecurityKey;
use posbridge_nexo::transport::{Loopback, Transport, TransportError};
use posbridge_nexo::{NexoClient, NexoConfig, NexoServer};
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Message};
use posbridge_zvt::{Apdu, Command};

type Backend = posbridge_sim::backend::Backend;
const POI: &str = "V400m-346403161";

fn key() -> SecurityKey {
    SecurityKey::derive("bench", 1, b"a shared passphrase")
}

/// A transport that keeps the last request and answer bodies.
struct Recording<T> {
    inner: T,
    last: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl<T: Transport> Transport for Recording<T> {
    async fn ready(&self, deadline: Duration) -> Result<(), TransportError> {
        self.inner.ready(deadline).await
    }

    async fn exchange(&self, body: Vec<u8>, deadline: Duration) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.exchange(body.clone(), deadline).await?;
        *self.last.lock().unwrap() = (body, answer.clone());
        Ok(answer)
    }
}

async fn simulator() -> Backend {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    posbridge_sim::backend::simulated(profile).await.unwrap()
}

async fn server(key: Option<SecurityKey>) -> Arc<NexoServer<Backend>> {
    posbridge_sim::nexo::server(simulator().await, POI, key, &[]).unwrap()
}

fn codecs(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sealing = key();
    // One real sale through the nexo roles, to take its request and answer, clear and sealed.
    let (clear_req, clear_resp, sealed_req, sealed_resp) = rt.block_on(async {
        let mut bodies = Vec::new();
        for k in [None, Some(key())] {
            let server = server(k.clone()).await;
            let client = NexoClient::new(
                Recording {
                    inner: Loopback::new(server),
                    last: Mutex::new((Vec::new(), Vec::new())),
                },
                NexoConfig::new("till-1", POI, k),
            );
            let till = Engine::new(client, MemoryJournal::new());
            till.sale(
                IdempotencyKey::from_u128(1),
                Amount::new(1000, Currency::EUR),
                Call::within(Duration::from_secs(30)),
            )
            .await
            .unwrap();
            bodies.push(till.adapter().transport().last.lock().unwrap().clone());
        }
        (
            bodies[0].0.clone(),
            bodies[0].1.clone(),
            bodies[1].0.clone(),
            bodies[1].1.clone(),
        )
    });
    let Envelope::Clear(request) = codec::decode(&clear_req).unwrap() else {
        panic!()
    };
    let Envelope::Clear(response) = codec::decode(&clear_resp).unwrap() else {
        panic!()
    };
    eprintln!(
        "one sale: nexo request {} bytes (sealed {}), answer {} bytes (sealed {}, with both receipts)",
        clear_req.len(),
        sealed_req.len(),
        clear_resp.len(),
        sealed_resp.len()
    );

    let native_request = Message::Transaction(posbridge_wire::samples::sale_request());
    let native_result = Message::TransactionResult(posbridge_wire::samples::approved_result());
    let native_req_bytes = native_request.to_bytes().unwrap();
    let native_res_bytes = native_result.to_bytes().unwrap();
    let zvt_auth = Command::Authorization {
        amount: 1000,
        currency: Some(978),
        extra: Vec::new(),
    };
    let zvt_req_bytes = zvt_auth.to_apdu().unwrap().to_bytes().unwrap();
    let zvt_status = zvt_status_information();
    let zvt_status_cmd = Command::from_apdu(&Apdu::decode(&zvt_status).unwrap()).unwrap();
    eprintln!(
        "message sizes: native request {} / result {} bytes; ZVT authorisation {} / status information {} bytes",
        native_req_bytes.len(),
        native_res_bytes.len(),
        zvt_req_bytes.len(),
        zvt_status.len()
    );

    let mut g = c.benchmark_group("sale_request_codecs");
    g.throughput(Throughput::Elements(1));
    g.bench_function("native_encode", |b| {
        b.iter(|| black_box(black_box(&native_request).to_bytes().unwrap()))
    });
    g.bench_function("native_decode", |b| {
        b.iter(|| black_box(Message::decode(black_box(&native_req_bytes)).unwrap()))
    });
    g.bench_function("zvt_encode", |b| {
        b.iter(|| black_box(black_box(&zvt_auth).to_apdu().unwrap().to_bytes().unwrap()))
    });
    g.bench_function("zvt_decode", |b| {
        b.iter(|| {
            let apdu = Apdu::decode(black_box(&zvt_req_bytes)).unwrap();
            black_box(Command::from_apdu(&apdu).unwrap())
        })
    });
    let clear = Envelope::Clear(request.clone());
    g.bench_function("nexo_encode", |b| {
        b.iter(|| black_box(codec::encode(black_box(&clear))))
    });
    g.bench_function("nexo_encode_encrypt", |b| {
        b.iter(|| {
            black_box(codec::encode(&Envelope::Sealed(
                sealing.seal(black_box(&request)).unwrap(),
            )))
        })
    });
    g.bench_function("nexo_decode", |b| {
        b.iter(|| black_box(codec::decode(black_box(&clear_req)).unwrap()))
    });
    g.bench_function("nexo_decrypt_decode", |b| {
        b.iter(|| {
            let Envelope::Sealed(s) = codec::decode(black_box(&sealed_req)).unwrap() else {
                unreachable!()
            };
            black_box(sealing.open(&s).unwrap())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sale_result_codecs");
    g.throughput(Throughput::Elements(1));
    g.bench_function("native_encode", |b| {
        b.iter(|| black_box(black_box(&native_result).to_bytes().unwrap()))
    });
    g.bench_function("native_decode", |b| {
        b.iter(|| black_box(Message::decode(black_box(&native_res_bytes)).unwrap()))
    });
    g.bench_function("zvt_encode", |b| {
        b.iter(|| {
            black_box(
                black_box(&zvt_status_cmd)
                    .to_apdu()
                    .unwrap()
                    .to_bytes()
                    .unwrap(),
            )
        })
    });
    g.bench_function("zvt_decode", |b| {
        b.iter(|| {
            let apdu = Apdu::decode(black_box(&zvt_status)).unwrap();
            black_box(Command::from_apdu(&apdu).unwrap())
        })
    });
    let clear = Envelope::Clear(response.clone());
    g.bench_function("nexo_encode", |b| {
        b.iter(|| black_box(codec::encode(black_box(&clear))))
    });
    g.bench_function("nexo_encode_encrypt", |b| {
        b.iter(|| {
            black_box(codec::encode(&Envelope::Sealed(
                sealing.seal(black_box(&response)).unwrap(),
            )))
        })
    });
    g.bench_function("nexo_decode", |b| {
        b.iter(|| black_box(codec::decode(black_box(&clear_resp)).unwrap()))
    });
    g.bench_function("nexo_decrypt_decode", |b| {
        b.iter(|| {
            let Envelope::Sealed(s) = codec::decode(black_box(&sealed_resp)).unwrap() else {
                unreachable!()
            };
            black_box(sealing.open(&s).unwrap())
        })
    });
    g.finish();
}

/// The 93-byte status information of a MasterCard payment the `zvt` crate ships.
fn zvt_status_information() -> Vec<u8> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    std::fs::read_dir(home.join("registry/src"))
        .expect("cargo's registry")
        .filter_map(|e| e.ok())
        .map(|e| {
            e.path()
                .join("zvt-0.1.0/data/1680728165.675509000_pt_ecr.blob")
        })
        .find(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .expect("the zvt crate's capture")
}

/// A TCP relay on 127.0.0.1 to `target` that counts the bytes it carries both ways.
async fn relay(target: std::net::SocketAddr, bytes: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                if let Ok((up, down)) =
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                {
                    bytes.fetch_add(up + down, Ordering::Relaxed);
                }
            });
        }
    });
    addr
}

/// The bytes of one encrypted sale over HTTP and HTTPS, on a fresh connection (HTTPS: the TLS
/// handshake included).
fn wire(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        for https in [false, true] {
            let server = server(Some(key())).await;
            let certs = posbridge_sim::nexo::certificates(POI).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let target = listener.local_addr().unwrap();
            let tls = https.then(|| certs.server_config());
            tokio::spawn(posbridge_nexo::https::serve(listener, tls, server));
            let bytes = Arc::new(AtomicU64::new(0));
            let addr = relay(target, bytes.clone()).await;
            let trust = if https {
                posbridge_nexo::https::TerminalTrust::Roots(vec![certs.ca_der.clone()])
            } else {
                posbridge_nexo::https::TerminalTrust::PlainHttp
            };
            let transport = posbridge_nexo::https::transport_to(addr, POI, false, trust).unwrap();
            let client = NexoClient::new(transport, NexoConfig::new("till-1", POI, Some(key())));
            let till = Engine::new(client, MemoryJournal::new());
            till.sale(
                IdempotencyKey::from_u128(7),
                Amount::new(1000, Currency::EUR),
                Call::within(Duration::from_secs(30)),
            )
            .await
            .unwrap();
            drop(till);
            // The relay counts a connection once it closes.
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!(
                "one encrypted nexo sale over {}: {} bytes on the wire, both ways, one new connection",
                if https { "HTTPS (TLS 1.3 handshake included)" } else { "plain HTTP" },
                bytes.load(Ordering::Relaxed)
            );
        }
    });
}

fn sale(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    wire(&rt);
    let eur = Amount::new(1000, Currency::EUR);
    let call = || Call::within(Duration::from_secs(30));
    let next = std::cell::Cell::new(0u128);
    let fresh = || {
        next.set(next.get() + 1);
        IdempotencyKey::from_u128(next.get())
    };
    let nexo = rt.block_on(async {
        let client = NexoClient::new(
            Loopback::new(server(Some(key())).await),
            NexoConfig::new("till-1", POI, Some(key())),
        );
        Engine::new(client, MemoryJournal::new())
    });
    let native = rt.block_on(simulator());
    let mut g = c.benchmark_group("nexo_sale_memory");
    g.throughput(Throughput::Elements(1));
    g.bench_function("nexo_client_via_nexo_mode_encrypted", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    nexo.sale(fresh(), eur, call()).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("native_payments_it_wraps", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    native.sale(fresh(), eur, call()).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, codecs, sale);
criterion_main!(benches);
