//! Signed results: signatures made and checked per second, next to raw Ed25519 over the same
//! canonical bytes (the baseline: what the canonical encoding adds).
//!
//! The secure channel against raw AES-256-GCM, and pairing against a bare SPAKE2 exchange.
//!
//! Run: `cargo bench -p posbridge-benches --bench crypto`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use posbridge_crypto::{
    ChannelConfig, ClientPairing, InitiatorHandshake, LocalIdentity, PairingConfig, PairingSecret,
    PairingWindow, PeerId, SecureChannel, SigningIdentity, StaticKeypair, Verifier, respond,
    result_signing_bytes, verify_result,
};
use posbridge_wire::Timestamp;
use posbridge_wire::{TransactionResult, samples};
use spake2::{Ed25519Group, Identity, Password, Spake2};

fn result() -> TransactionResult {
    TransactionResult {
        reference: Some("123456789012".into()),
        ..samples::approved_result()
    }
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("result_signatures");
    g.throughput(Throughput::Elements(1));
    let id = SigningIdentity::from_secret(&[7; 32]);
    let raw = SigningKey::from_bytes(&[7; 32]);
    let mut r = result();
    g.bench_function("sign_result", |b| {
        b.iter(|| id.sign_result(black_box(&mut r)))
    });
    let bytes = result_signing_bytes(&r);
    g.bench_function("raw_ed25519_sign_baseline", |b| {
        b.iter(|| raw.sign(black_box(&bytes)))
    });
    id.sign_result(&mut r);
    let key = id.public_key();
    g.bench_function("verify_result", |b| {
        b.iter(|| verify_result(&key, black_box(&r)).unwrap())
    });
    let verifier = Verifier::new(&key).unwrap();
    g.bench_function("verifier_verify_result", |b| {
        b.iter(|| verifier.verify_result(black_box(&r)).unwrap())
    });
    let sig = ed25519_dalek::Signature::from_bytes(&r.signature.unwrap());
    let vk = raw.verifying_key();
    g.bench_function("raw_ed25519_verify_baseline", |b| {
        b.iter(|| vk.verify_strict(black_box(&bytes), &sig).unwrap())
    });
    g.finish();
}

/// One full IK handshake, both sides: the client's and the terminal's channels.
fn handshake(client: &StaticKeypair, terminal: &StaticKeypair) -> (SecureChannel, SecureChannel) {
    let config = ChannelConfig::default();
    let (hs, request) = InitiatorHandshake::start(client, &terminal.public(), b"", config).unwrap();
    let accepted = respond(terminal, &request, |_| true, b"", config).unwrap();
    (hs.finish(&accepted.response).unwrap().0, accepted.channel)
}

/// Seal + open of one frame payload through the channel, next to raw AES-256-GCM
/// (`aes-gcm`, encrypt + decrypt in place, same key schedule kept) on the same bytes.
fn channel(c: &mut Criterion) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let mut g = c.benchmark_group("channel_seal_open");
    let client_keys = StaticKeypair::generate().unwrap();
    let terminal_keys = StaticKeypair::generate().unwrap();
    let header = [0xa5u8, 0xc3, 1, 1, 1, 0, 0, 0, 7, 0, 0x20, 0x12, 0x34];
    for size in [256usize, 1024] {
        g.throughput(Throughput::Bytes(size as u64));
        let (mut client, mut terminal) = handshake(&client_keys, &terminal_keys);
        let payload = vec![0x42u8; size];
        let mut buf = Vec::with_capacity(size + 64);
        g.bench_function(format!("posbridge/{size}"), |b| {
            b.iter(|| {
                buf.clear();
                client.seal(&header, black_box(&payload), &mut buf).unwrap();
                black_box(terminal.open(&header, &mut buf).unwrap().len())
            })
        });
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        let mut counter = 0u64;
        let mut raw = vec![0u8; size];
        g.bench_function(format!("raw_aes_256_gcm/{size}"), |b| {
            b.iter(|| {
                counter += 1;
                let mut n = [0u8; 12];
                n[4..].copy_from_slice(&counter.to_be_bytes());
                let nonce = aes_gcm::Nonce::from(n);
                raw.copy_from_slice(black_box(&payload));
                let tag = cipher
                    .encrypt_in_place_detached(&nonce, &header, &mut raw)
                    .unwrap();
                cipher
                    .decrypt_in_place_detached(&nonce, &header, &mut raw, &tag)
                    .unwrap();
                black_box(raw.len())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("channel_handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ik_full_handshake", |b| {
        b.iter(|| black_box(handshake(&client_keys, &terminal_keys)))
    });
    g.finish();
}

/// A whole pairing (both sides, four messages, records out) against the bare SPAKE2 exchange it
/// is built on: the ratio is what key confirmation, the sealed key exchange and the checks of
/// the received keys add.
fn pairing(c: &mut Criterion) {
    let terminal = LocalIdentity::generate(PeerId([1; 16]), "Till 2").unwrap();
    let phone = LocalIdentity::generate(PeerId([2; 16]), "phone").unwrap();
    let code = PairingSecret::code("123456").unwrap();
    let now = std::time::Instant::now();
    let mut config = PairingConfig::default();
    config.set_attempts_per_code(u8::MAX);
    let mut g = c.benchmark_group("pairing");
    g.throughput(Throughput::Elements(1));
    g.bench_function("posbridge_pairing", |b| {
        b.iter(|| {
            let mut window = PairingWindow::open_with(
                config,
                now,
                code.clone(),
                PairingSecret::handover([0; 16]),
            )
            .unwrap();
            let (client, m1) = ClientPairing::start(&phone, &code).unwrap();
            let (attempt, m2) = window.accept(&terminal, &m1, now).unwrap();
            let (client, m3) = client.confirm(&m2).unwrap();
            let (record, m4) = attempt.finish(&mut window, &m3, now, Timestamp(0)).unwrap();
            black_box((record, client.finish(&m4, Timestamp(0)).unwrap()))
        })
    });
    g.bench_function("raw_spake2_exchange_baseline", |b| {
        let password = Password::new(b"code:123456");
        let (ida, idb) = (Identity::new(b"a"), Identity::new(b"b"));
        b.iter(|| {
            let (a, ma) = Spake2::<Ed25519Group>::start_a(&password, &ida, &idb);
            let (b_, mb) = Spake2::<Ed25519Group>::start_b(&password, &ida, &idb);
            black_box((a.finish(&mb).unwrap(), b_.finish(&ma).unwrap()))
        })
    });
    g.finish();
}

criterion_group!(benches, signatures, channel, pairing);
criterion_main!(benches);
