//! The SDK's cost per sale over 127.0.0.1 TCP against the simulator answering at once
//! (`Latency::INSTANT`), with the secure channel on:
//!
//! * `sale_journal_sqlite`: `Payments` with the SQLite journal (WAL, `synchronous=FULL`: the
//!   intent, the sent mark and the result each committed before the app hears of them);
//! * `sale_no_journal`: `NativeClient` alone (the same round trip, no journal);
//! * `tcp_echo_baseline`: a 430-byte request answered by 430 bytes over a raw TCP pair — what the
//!   network part of a sale costs with no protocol at all.
//!
//! and the many-lanes case, `lanes_64`: one process serves 64 simulated terminals and 64 tills
//! sell at once, each journaled in its own SQLite file; throughput is journaled sales per second.
//!
//! Per-sale latencies are also collected for p50 and p99, printed as `SDK-LATENCY` lines.
//!
//! Run: `cargo bench -p posbridge-benches --bench sdk -- --warm-up-time 2 --measurement-time 10`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge::journal::{MemoryJournal, SqliteJournal};
use posbridge::{
    Call, ConnectOptions, NativeAdapter, NativeClient, PaymentTerminal, Payments, driver,
};
use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_session::harness::hello;
use posbridge_session::{
    ClientSecurity, PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Latency, Simulator, TerminalProfile};
use posbridge_wire::{Amount, Currency, IdempotencyKey, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(30);

struct Lane {
    address: String,
    terminal: Arc<LocalIdentity>,
}

/// A simulated terminal on 127.0.0.1 that knows `till`.
async fn terminal(till: &LocalIdentity, n: u128) -> Lane {
    let profile = TerminalProfile {
        latency: Latency::INSTANT,
        receipts_in_result: false,
        terminal_id: posbridge_wire::TerminalId::from_u128(0x5157_0000 + n),
        ..TerminalProfile::default()
    };
    let keys = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "bench").unwrap());
    let mut registry = PairingRegistry::new();
    registry.add(PairingRecord {
        peer: till.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    });
    let context = TerminalContext::new(keys.clone(), registry, profile.capabilities(), 1_000_000);
    let listener = posbridge::tcp::Listener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let app = SharedApp::new(Simulator::new(
        profile,
        keys.clone(),
        driver::now(),
        Timestamp(1_764_000_000_000),
    ));
    tokio::spawn(async move {
        while let Ok(link) = listener.accept().await {
            let session =
                TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
            let mut app = app.clone();
            tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
        }
    });
    Lane {
        address,
        terminal: keys,
    }
}

async fn client(lane: &Lane, till: Arc<LocalIdentity>) -> NativeClient {
    let link = posbridge::tcp::connect(&lane.address, &Default::default())
        .await
        .unwrap();
    NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: till,
            security: ClientSecurity::Paired {
                terminal_key: lane.terminal.channel().public(),
            },
            hello: hello(),
            timeout: T,
        },
    )
    .await
    .unwrap()
}

fn percentiles(name: &str, samples: &mut [Duration]) {
    if samples.is_empty() {
        return;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "SDK-LATENCY {name}: n={} p50={:.1?} p99={:.1?} max={:.1?}",
        samples.len(),
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

fn single(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let till = Arc::new(LocalIdentity::generate(PeerId([9; 16]), "bench till").unwrap());
    let dir = std::env::temp_dir().join(format!("posbridge-bench-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = c.benchmark_group("sdk_sale_tcp");
    g.throughput(Throughput::Elements(1));
    let next = Arc::new(Mutex::new(0u128));
    let key = move || {
        let mut n = next.lock().unwrap();
        *n += 1;
        IdempotencyKey::from_u128(*n)
    };

    let (lane, payments) = rt.block_on(async {
        let lane = terminal(&till, 1).await;
        let c = client(&lane, till.clone()).await;
        let journal = SqliteJournal::open(dir.join("single.db")).unwrap();
        let key = lane.terminal.signing().public_key();
        (
            lane,
            Payments::new(NativeAdapter::new(c, Some(key)), journal),
        )
    });
    let mut lat = Vec::new();
    g.bench_function("sale_journal_sqlite", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let t = Instant::now();
                    payments
                        .sale(key(), eur(1000), Call::within(T))
                        .await
                        .unwrap();
                    lat.push(t.elapsed());
                }
                start.elapsed()
            })
        })
    });
    percentiles("sale_journal_sqlite", &mut lat);
    let c = rt.block_on(client(&lane, till.clone()));
    let mut lat = Vec::new();
    g.bench_function("sale_no_journal", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let t = Instant::now();
                    c.sale(key(), eur(1000), T).await.unwrap();
                    lat.push(t.elapsed());
                }
                start.elapsed()
            })
        })
    });
    percentiles("sale_no_journal", &mut lat);
    let memory = rt.block_on(async {
        let c = client(&lane, till.clone()).await;
        Payments::new(
            NativeAdapter::new(c, Some(lane.terminal.signing().public_key())),
            MemoryJournal::new(),
        )
    });
    g.bench_function("sale_journal_memory", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    memory
                        .sale(key(), eur(1000), Call::within(T))
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    let (mut a, mut b2) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        let a = a.unwrap();
        a.set_nodelay(true).unwrap();
        let b = b.unwrap().0;
        b.set_nodelay(true).unwrap();
        (a, b)
    });
    g.bench_function("tcp_echo_baseline", |b| {
        let msg = vec![0x42u8; 430];
        let mut buf = vec![0u8; 430];
        let mut buf2 = vec![0u8; 430];
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    a.write_all(&msg).await.unwrap();
                    b2.read_exact(&mut buf2).await.unwrap();
                    b2.write_all(&buf2).await.unwrap();
                    a.read_exact(&mut buf).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn lanes(c: &mut Criterion) {
    const LANES: usize = 64;
    const SALES: usize = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("posbridge-bench-lanes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let till = Arc::new(LocalIdentity::generate(PeerId([8; 16]), "bench tills").unwrap());
    let tills: Vec<Arc<Payments<SqliteJournal>>> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..LANES {
            let lane = terminal(&till, 100 + i as u128).await;
            let c = client(&lane, till.clone()).await;
            let journal = SqliteJournal::open(dir.join(format!("lane-{i}.db"))).unwrap();
            v.push(Arc::new(Payments::new(
                NativeAdapter::new(c, Some(lane.terminal.signing().public_key())),
                journal,
            )));
        }
        v
    });
    let next = Arc::new(Mutex::new(1u128 << 64));
    let mut g = c.benchmark_group("sdk_lanes");
    g.throughput(Throughput::Elements((LANES * SALES) as u64));
    g.sample_size(10);
    g.bench_function("lanes_64_journal_sqlite", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut tasks = Vec::new();
                    for p in &tills {
                        let p = p.clone();
                        let next = next.clone();
                        tasks.push(tokio::spawn(async move {
                            for _ in 0..SALES {
                                let key = {
                                    let mut n = next.lock().unwrap();
                                    *n += 1;
                                    IdempotencyKey::from_u128(*n)
                                };
                                p.sale(key, eur(1000), Call::within(T)).await.unwrap();
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, single, lanes);
criterion_main!(benches);
