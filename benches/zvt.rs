//! ZVT codec rates next to the `zvt` crate's on the same real terminal capture: the 93-byte
//! Status information (`04 0F`) of a MasterCard payment that the `zvt` crate ships as
//! `data/1680728165.675509000_pt_ecr.blob`.
//!
//! * decode: our `Apdu::decode` + `Command::from_apdu` (every BMP typed or kept) against
//!   `zvt::packets::StatusInformation::zvt_deserialize`;
//! * encode: our `Command::to_apdu` + `Apdu::to_bytes` against `zvt_serialize` of the value it
//!   decoded.
//!
//! And a whole ZVT sale: `posbridge_zvt::client::ZvtTerminal` (journal in memory) over an
//! in-memory link to the simulator's ZVT mode (`ZvtServer` in front of a native `Payments`
//! client of the simulator), against the native `Payments` sale it wraps; the bytes one ZVT sale
//! puts on the wire, with and without printed receipts, are printed.
//!
//! Run: `cargo bench -p posbridge-benches --bench zvt -- --warm-up-time 2 --measurement-time 5`

use std::hint::black_box;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use posbridge::journal::MemoryJournal;
use posbridge::{Call, PaymentTerminal};
use posbridge_link::{Delivery, Link, LinkError, LinkInfo, memory_pair};
use posbridge_sim::{Latency, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey};
use posbridge_zvt::client::{ZvtConfig, ZvtTerminal};
use posbridge_zvt::server::ServerConfig;
use posbridge_zvt::transport::{Framing, ZvtLink};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge_zvt::{Apdu, Command};
use zvt::ZvtSerializer;

fn capture(name: &str) -> Vec<u8> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = home.join("registry/src");
    std::fs::read_dir(&registry)
        .expect("cargo's registry")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("zvt-0.1.0/data").join(name))
        .find(|p| p.is_file())
        .map(|p| std::fs::read(p).unwrap())
        .expect("the zvt crate's capture")
}

fn codec(c: &mut Criterion) {
    let bytes = capture("1680728165.675509000_pt_ecr.blob");
    assert_eq!(bytes.len(), 93);
    let ours = Command::from_apdu(&Apdu::decode(&bytes).unwrap()).unwrap();
    let (theirs, _) = zvt::packets::StatusInformation::zvt_deserialize(&bytes).unwrap();

    let mut g = c.benchmark_group("zvt_status_information_93b");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_posbridge", |b| {
        b.iter(|| {
            let apdu = Apdu::decode(black_box(&bytes)).unwrap();
            black_box(Command::from_apdu(&apdu).unwrap())
        })
    });
    g.bench_function("decode_zvt_crate", |b| {
        b.iter(|| {
            black_box(zvt::packets::StatusInformation::zvt_deserialize(black_box(&bytes)).unwrap())
        })
    });
    g.bench_function("encode_posbridge", |b| {
        b.iter(|| black_box(black_box(&ours).to_apdu().unwrap().to_bytes().unwrap()))
    });
    g.bench_function("encode_zvt_crate", |b| {
        b.iter(|| black_box(black_box(&theirs).zvt_serialize()))
    });
    g.finish();
}

/// Counts the bytes a link carries, both ways.
struct Counting<L> {
    inner: L,
    bytes: Arc<AtomicU64>,
}

impl<L: Link> Link for Counting<L> {
    fn info(&self) -> &LinkInfo {
        self.inner.info()
    }
    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        let r = Pin::new(&mut self.inner).get_mut().poll_send(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.inner.poll_flush(cx)
    }
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        let r = self.inner.poll_recv(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.inner.poll_close(cx)
    }
}

async fn simulator() -> posbridge_sim::zvt::Backend {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    };
    posbridge_sim::zvt::simulated(profile).await.unwrap()
}

/// A ZVT register registered with `config_byte` at the simulator's ZVT mode; the counter of
/// the bytes its link carries.
async fn register(config_byte: u8) -> (ZvtTerminal<MemoryJournal>, Arc<AtomicU64>) {
    let server = Arc::new(
        posbridge_sim::zvt::server(
            simulator().await,
            10_000_001,
            Vec::new(),
            ServerConfig {
                render: posbridge_sim::render,
                ..ServerConfig::default()
            },
        )
        .unwrap(),
    );
    let (ours, theirs) = memory_pair(Delivery::Stream, 64 * 1024, 256);
    tokio::spawn(async move { server.serve(ZvtLink::new(theirs, Framing::Tcp)).await });
    let bytes = Arc::new(AtomicU64::new(0));
    let link = Counting {
        inner: ours,
        bytes: bytes.clone(),
    };
    let config = ZvtConfig {
        config_byte,
        ..ZvtConfig::default()
    };
    let t = posbridge_zvt::client::connect(link, Framing::Tcp, config, MemoryJournal::new())
        .await
        .unwrap();
    (t, bytes)
}

fn sale(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let eur = Amount::new(1000, Currency::EUR);
    let call = || Call::within(Duration::from_secs(30));
    let next = std::cell::Cell::new(0u128);
    let key = || {
        next.set(next.get() + 1);
        IdempotencyKey::from_u128(next.get())
    };
    // Bytes on the wire for one sale, both ways, after registration.
    for (what, config) in [("with printed receipts", 0xBE), ("without receipts", 0xB8)] {
        rt.block_on(async {
            let (t, bytes) = register(config).await;
            let before = bytes.load(Ordering::Relaxed);
            t.sale(IdempotencyKey::from_u128(u128::MAX), eur, call())
                .await
                .unwrap();
            eprintln!(
                "ZVT sale {what}: {} bytes on the wire (registration before it: {before})",
                bytes.load(Ordering::Relaxed) - before
            );
        });
    }
    let (zvt, _) = rt.block_on(register(0xB8));
    let native = rt.block_on(simulator());
    let mut g = c.benchmark_group("zvt_sale_memory");
    g.throughput(Throughput::Elements(1));
    g.bench_function("zvt_client_via_zvt_mode", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    zvt.sale(key(), eur, call()).await.unwrap();
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
                    native.sale(key(), eur, call()).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, codec, sale);
criterion_main!(benches);
