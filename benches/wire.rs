//! Frame and message codec throughput, each measured next to a baseline in the same run:
//! `tokio_util::codec::LengthDelimitedCodec` (a 4-byte length and nothing else: no sync marker,
//! no checksums) on the same payloads; and for decoding, the same codec followed by a CRC-32C of
//! each payload with the kernel posbridge uses (`crc-fast`), so that the ratio against it says
//! what our framing costs beyond reading the bytes once.
//!
//! Run: `cargo bench -p posbridge-benches --bench wire`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use posbridge_wire::{
    Frame, FrameCodec, FrameConfig, FrameFlags, FrameType, Message, TransactionResult, samples,
};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

const SIZES: [usize; 4] = [32, 256, 1024, 4096];
/// Bytes of payload per measured batch, so that small and large frames do comparable work.
const BATCH_BYTES: usize = 256 * 1024;
/// How a socket hands data over in the "read path" benchmarks.
const READ_SIZE: usize = 16 * 1024;

fn config() -> FrameConfig {
    // 4096-byte payloads need more than the default 4 KiB frame.
    let mut c = FrameConfig::new();
    c.set_max_frame_size(8192).unwrap();
    c
}

fn ldc() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(8192)
        .new_codec()
}

fn payload(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i * 31 + 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The same payloads framed by both codecs.
fn streams(size: usize) -> (usize, BytesMut, BytesMut) {
    let count = (BATCH_BYTES / size).max(1);
    let p = payload(size);
    let ours = FrameCodec::with_config(config());
    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
    let mut base = ldc();
    for seq in 0..count {
        ours.encode_parts(FrameType::Data, FrameFlags::NONE, seq as u32, &p, &mut a)
            .unwrap();
        base.encode(p.clone(), &mut b).unwrap();
    }
    (count, a, b)
}

fn frame_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_decode");
    for size in SIZES {
        let (count, ours, theirs) = streams(size);
        g.throughput(Throughput::Bytes((count * size) as u64));
        g.bench_with_input(BenchmarkId::new("posbridge", size), &ours, |b, stream| {
            b.iter_batched(
                || stream.clone(),
                |mut buf| {
                    let mut codec = FrameCodec::with_config(config());
                    while let Some(f) = codec.decode(&mut buf).unwrap() {
                        black_box(f);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("length_delimited", size),
            &theirs,
            |b, stream| {
                b.iter_batched(
                    || stream.clone(),
                    |mut buf| {
                        let mut codec = ldc();
                        while let Some(f) = codec.decode(&mut buf).unwrap() {
                            black_box(f);
                        }
                    },
                    BatchSize::LargeInput,
                )
            },
        );
        g.bench_with_input(
            BenchmarkId::new("length_delimited_crc32c", size),
            &theirs,
            |b, stream| {
                b.iter_batched(
                    || stream.clone(),
                    |mut buf| {
                        let mut codec = ldc();
                        while let Some(f) = codec.decode(&mut buf).unwrap() {
                            black_box(crc32c(&f));
                            black_box(f);
                        }
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

/// CRC-32C of `data` with the kernel posbridge-wire uses.
fn crc32c(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// The decoder as a driver uses it: bytes arrive in socket-sized reads and are appended to the
/// receive buffer before decoding. Both codecs pay for the copy.
fn frame_read_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_read_path");
    for size in SIZES {
        let (count, ours, theirs) = streams(size);
        g.throughput(Throughput::Bytes((count * size) as u64));
        g.bench_with_input(
            BenchmarkId::new("posbridge", size),
            &ours[..],
            |b, stream| {
                let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
                b.iter(|| {
                    let mut codec = FrameCodec::with_config(config());
                    for read in stream.chunks(READ_SIZE) {
                        buf.extend_from_slice(read);
                        while let Some(f) = codec.decode(&mut buf).unwrap() {
                            black_box(f);
                        }
                    }
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("length_delimited", size),
            &theirs[..],
            |b, stream| {
                let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
                b.iter(|| {
                    let mut codec = ldc();
                    for read in stream.chunks(READ_SIZE) {
                        buf.extend_from_slice(read);
                        while let Some(f) = codec.decode(&mut buf).unwrap() {
                            black_box(f);
                        }
                    }
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("length_delimited_crc32c", size),
            &theirs[..],
            |b, stream| {
                let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
                b.iter(|| {
                    let mut codec = ldc();
                    for read in stream.chunks(READ_SIZE) {
                        buf.extend_from_slice(read);
                        while let Some(f) = codec.decode(&mut buf).unwrap() {
                            black_box(crc32c(&f));
                            black_box(f);
                        }
                    }
                })
            },
        );
    }
    g.finish();
}

fn frame_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_encode");
    for size in SIZES {
        let count = (BATCH_BYTES / size).max(1);
        let p = payload(size);
        g.throughput(Throughput::Bytes((count * size) as u64));
        let mut out = BytesMut::with_capacity(count * (size + 32));
        let codec = FrameCodec::with_config(config());
        g.bench_function(BenchmarkId::new("posbridge", size), |b| {
            b.iter(|| {
                out.clear();
                for seq in 0..count {
                    codec
                        .encode_parts(
                            FrameType::Data,
                            FrameFlags::NONE,
                            seq as u32,
                            black_box(&p),
                            &mut out,
                        )
                        .unwrap();
                }
                black_box(&out);
            })
        });
        let frame = Frame::data(0, p.clone());
        g.bench_function(BenchmarkId::new("posbridge_frame", size), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..count {
                    codec.encode(black_box(&frame), &mut out).unwrap();
                }
                black_box(&out);
            })
        });
        let mut base = ldc();
        g.bench_function(BenchmarkId::new("length_delimited", size), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..count {
                    base.encode(black_box(p.clone()), &mut out).unwrap();
                }
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn sale() -> Message {
    Message::Transaction(samples::sale_request())
}

fn approved() -> Message {
    Message::TransactionResult(TransactionResult {
        reference: Some("123456789012".into()),
        signature: Some([0x5a; 64]),
        ..samples::approved_result()
    })
}

fn message_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("message_round_trip");
    g.throughput(Throughput::Elements(1));
    for (name, msg) in [("sale_request", sale()), ("approved_result", approved())] {
        let mut buf = BytesMut::with_capacity(512);
        g.bench_function(BenchmarkId::new("posbridge", name), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&msg).encode(&mut buf).unwrap();
                black_box(Message::decode(&buf).unwrap())
            })
        });
        // Baseline: the same bytes through a frame round trip (copy, checksums, split), to show
        // what the typed encoding costs next to just moving the bytes.
        let bytes = msg.to_bytes().unwrap();
        let codec = FrameCodec::new();
        g.bench_function(BenchmarkId::new("frame_only", name), |b| {
            let mut decoder = FrameCodec::new();
            b.iter(|| {
                buf.clear();
                codec
                    .encode_parts(
                        FrameType::Data,
                        FrameFlags::NONE,
                        0,
                        black_box(&bytes),
                        &mut buf,
                    )
                    .unwrap();
                black_box(decoder.decode(&mut buf).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    frame_decode,
    frame_read_path,
    frame_encode,
    message_round_trip
);
criterion_main!(benches);
