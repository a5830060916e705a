//! Link throughput with 1 KiB writes, each next to a baseline in the same run.
//!
//! * `memory_pair` against `tokio::io::duplex` (raw `AsyncWrite`/`AsyncRead`, no `Link` layer);
//! * `fault_injector_idle`: a `FaultInjector` that injects nothing, against the bare link it
//!   wraps.
//!
//! Run: `cargo bench -p posbridge-benches --bench link`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge_link::{Delivery, FaultConfig, FaultInjector, Link, LinkExt, memory_pair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITE: usize = 1024;
const WRITES: usize = 256;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
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
    g.finish();
}

criterion_group!(benches, links);
criterion_main!(benches);
