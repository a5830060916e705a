//! Bluetooth LE link logic at ATT MTU 23 and 247, each next to a baseline in the same run.
//!
//! * `segment_reassemble`: `Segmenter` + `Reassembler` (the packet framing posbridge puts on
//!   packet links) cutting a 1 KiB message into 20- or 244-byte packets and putting it back,
//!   against a plain split into chunks and concatenation (no header, no checks).
//! * `blelink_4k`: 4 KiB through `BleLink` over the in-memory NUS peripheral (writes cut to
//!   MTU − 3, the writer and reader tasks, pacing requests) to the peripheral's far side, against
//!   the same bytes written straight into the far side's stream in the same chunk sizes.
//!
//! Run: `cargo bench -p posbridge-benches --bench ble -- --warm-up-time 2 --measurement-time 5`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge_ble::{BleConfig, BleLink, MemoryPeripheralConfig, memory_peripheral};
use posbridge_link::{Delivery, LinkExt, Reassembler, Segmenter, memory_pair};

const MESSAGE: usize = 1024;
const BULK: usize = 4096;

fn segment(c: &mut Criterion) {
    let message: Vec<u8> = (0..MESSAGE).map(|i| i as u8).collect();
    let mut g = c.benchmark_group("ble_segment_reassemble_1k");
    g.throughput(Throughput::Bytes(MESSAGE as u64));
    for att_mtu in [23usize, 247] {
        let packet = att_mtu - 3;
        g.bench_function(format!("segmenter_mtu{att_mtu}"), |b| {
            let mut seg = Segmenter::new(packet).unwrap();
            let mut re = Reassembler::new(64 * 1024);
            let mut packets: Vec<Bytes> = Vec::with_capacity(64);
            b.iter(|| {
                packets.clear();
                seg.segment(black_box(&message), &mut packets);
                let mut out = None;
                for p in &packets {
                    out = re.push(p).unwrap();
                }
                black_box(out.unwrap());
            });
        });
        g.bench_function(format!("chunks_baseline_mtu{att_mtu}"), |b| {
            let mut packets: Vec<Bytes> = Vec::with_capacity(64);
            let mut whole = BytesMut::with_capacity(MESSAGE);
            b.iter(|| {
                packets.clear();
                for chunk in black_box(&message).chunks(packet) {
                    packets.push(Bytes::copy_from_slice(chunk));
                }
                whole.clear();
                for p in &packets {
                    whole.extend_from_slice(p);
                }
                black_box(whole.split().freeze());
            });
        });
    }
    g.finish();
}

fn blelink(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let data = vec![0xA5u8; BULK];
    let mut g = c.benchmark_group("ble_link_4k");
    g.throughput(Throughput::Bytes(BULK as u64));
    for att_mtu in [23u16, 247] {
        g.bench_function(format!("blelink_mtu{att_mtu}"), |b| {
            let (mut phone, mut far) = rt.block_on(async {
                let (gatt, far, _p) = memory_peripheral(MemoryPeripheralConfig {
                    att_mtu,
                    ..Default::default()
                });
                (BleLink::new(gatt, BleConfig::default()).unwrap(), far)
            });
            let mut buf = BytesMut::with_capacity(2 * BULK);
            b.iter(|| {
                rt.block_on(async {
                    let send = async {
                        phone.send_all(&data).await.unwrap();
                    };
                    let recv = async {
                        buf.clear();
                        while buf.len() < BULK {
                            far.recv(&mut buf).await.unwrap();
                        }
                    };
                    tokio::join!(send, recv);
                    black_box(&buf);
                })
            });
        });
        g.bench_function(format!("stream_chunks_baseline_mtu{att_mtu}"), |b| {
            let (mut near, mut far) = memory_pair(Delivery::Stream, 4096, 64);
            let chunk = usize::from(att_mtu) - 3;
            let mut buf = BytesMut::with_capacity(2 * BULK);
            b.iter(|| {
                rt.block_on(async {
                    let send = async {
                        for piece in data.chunks(chunk) {
                            near.send_all(piece).await.unwrap();
                        }
                    };
                    let recv = async {
                        buf.clear();
                        while buf.len() < BULK {
                            far.recv(&mut buf).await.unwrap();
                        }
                    };
                    tokio::join!(send, recv);
                    black_box(&buf);
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, segment, blelink);
criterion_main!(benches);
