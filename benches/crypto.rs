//! Signed results: signatures made and checked per second, next to raw Ed25519 over the same
//! canonical bytes (the baseline: what the canonical encoding adds).
//!
//! Run: `cargo bench -p posbridge-benches --bench crypto`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use posbridge_crypto::{SigningIdentity, Verifier, result_signing_bytes, verify_result};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, MaskedPan, Outcome, PaymentMethod, RequestId, TerminalId,
    Timestamp, TransactionId, TransactionKind, TransactionResult,
};

fn result() -> TransactionResult {
    TransactionResult {
        request_id: RequestId::from_u128(1),
        idempotency_key: IdempotencyKey::from_u128(2),
        transaction_id: TransactionId::from_u128(3),
        terminal_id: TerminalId::from_u128(4),
        kind: TransactionKind::Sale,
        outcome: Outcome::Approved,
        amount: Amount::new(1250, Currency::EUR),
        approved_minor: 1250,
        tip: Some(100),
        cashback: None,
        method: Some(PaymentMethod::Contactless),
        pan: Some(MaskedPan::parse("411111******1111").unwrap()),
        card_scheme: Some("VISA".into()),
        auth_code: Some("A1B2C3".into()),
        reference: Some("123456789012".into()),
        time: Timestamp(1_764_000_000_000),
        offline: false,
        balance: None,
        receipts: vec![],
        signature: None,
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

criterion_group!(benches, signatures);
criterion_main!(benches);
