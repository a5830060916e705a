//! ZVT codec rates next to the `zvt` crate's on the same real terminal capture: the 93-byte
//! Status information (`04 0F`) of a MasterCard payment that the `zvt` crate ships as
//! `data/1680728165.675509000_pt_ecr.blob`.
//!
//! * decode: our `Apdu::decode` + `Command::from_apdu` (every BMP typed or kept) against
//!   `zvt::packets::StatusInformation::zvt_deserialize`;
//! * encode: our `Command::to_apdu` + `Apdu::to_bytes` against `zvt_serialize` of the value it
//!   decoded.
//!
//! Run: `cargo bench -p posbridge-benches --bench zvt -- --warm-up-time 2 --measurement-time 5`

use std::hint::black_box;
use std::path::PathBuf;

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

criterion_group!(benches, codec);
criterion_main!(benches);
