//! Sale round trips through the `Pair` harness (both sessions, the secure channel, reliable
//! delivery, an app that answers at once), with result signatures on and off, next to the bare
//! cost of one Ed25519 sign + verify of the same result — the bound a signed sale cannot beat —
//! and the parts of the cost: message codec and AEAD for the same messages.
//!
//! Run: `cargo bench -p posbridge-benches --bench session`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posbridge_crypto::{
    ChannelConfig, InitiatorHandshake, LocalIdentity, PairingRecord, PeerId, Role, SigningIdentity,
    Verifier, respond,
};
use posbridge_session::harness::{Pair, capabilities, hello};
use posbridge_session::{
    ClientEvent, ClientSecurity, ClientSession, PairingRegistry, SessionConfig, TerminalApp,
    TerminalContext, TerminalEvent, TerminalSession,
};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Message, Progress, ProgressStage, RequestId, Timestamp,
    TransactionCommand, TransactionId, TransactionRequest, TransactionResult, samples,
};

/// Answers every sale at once: one progress report, then the (optionally signed) result.
struct InstantApp {
    signer: Option<Arc<LocalIdentity>>,
}

fn result_for(request: &TransactionRequest) -> TransactionResult {
    let mut r = samples::approved_result();
    r.idempotency_key = request.idempotency_key;
    r.transaction_id = TransactionId(request.idempotency_key.0);
    r
}

impl TerminalApp for InstantApp {
    fn on_event(&mut self, session: &mut TerminalSession, event: &TerminalEvent, now: Instant) {
        if let TerminalEvent::Transaction { request, .. } = event {
            session
                .progress(ProgressStage::ProcessingOnline, None, now)
                .unwrap();
            let mut r = result_for(request);
            if let Some(id) = &self.signer {
                id.signing().sign_result(&mut r);
            }
            session.complete(r, now).unwrap();
        }
    }
}

fn pair(signed: bool) -> (Pair, Arc<LocalIdentity>) {
    let terminal = Arc::new(LocalIdentity::generate(PeerId([1; 16]), "terminal").unwrap());
    let client = Arc::new(LocalIdentity::generate(PeerId([2; 16]), "client").unwrap());
    let ctx = TerminalContext::new(
        terminal.clone(),
        PairingRegistry::with_records([PairingRecord {
            peer: client.public_keys(),
            peer_role: Role::Client,
            paired_at: Timestamp(0),
        }]),
        capabilities(),
        1024,
    );
    let start = Instant::now();
    let mut config = SessionConfig::default();
    // Simulated time runs fast in a benchmark; keep heartbeats out of the measurement.
    config.set_heartbeat(Duration::from_secs(1_000_000));
    let c = ClientSession::new(
        config,
        client,
        ClientSecurity::Paired {
            terminal_key: terminal.channel().public(),
        },
        hello(),
        start,
    );
    let t = TerminalSession::new(config, ctx, start);
    let mut pair = Pair::new(c, t, start, 1);
    pair.faults.latency = Duration::ZERO;
    pair.set_app(InstantApp {
        signer: signed.then(|| terminal.clone()),
    });
    pair.drive();
    assert!(pair.client.is_ready());
    (pair, terminal)
}

fn sale(n: u128) -> Message {
    Message::Transaction(TransactionRequest::new(
        RequestId::default(),
        IdempotencyKey::from_u128(n),
        TransactionCommand::Sale {
            amount: Amount::new(1250, Currency::EUR),
            tip: None,
            cashback: None,
        },
    ))
}

/// One sale: request, drive to the answer, (verify), return the result.
fn one_sale(pair: &mut Pair, n: u128, verifier: Option<&Verifier>) -> TransactionResult {
    let now = pair.now;
    pair.client
        .request(sale(n), now + Duration::from_secs(60), now)
        .unwrap();
    pair.drive();
    for e in pair.take_client_events() {
        if let ClientEvent::Response {
            message: Message::TransactionResult(r),
            ..
        } = e
        {
            if let Some(v) = verifier {
                v.verify_result(&r).unwrap();
            }
            return r;
        }
    }
    panic!("no result");
}

fn sales(c: &mut Criterion) {
    let mut g = c.benchmark_group("sale_round_trip");
    g.throughput(Throughput::Elements(1));

    let (mut signed, terminal) = pair(true);
    let verifier = Verifier::new(&terminal.signing().public_key()).unwrap();
    // Bytes on the wire for one sale, both directions (request, progress, result, acks).
    let before = signed.client.stats().bytes_sent + signed.terminal.stats().bytes_sent;
    one_sale(&mut signed, 0, Some(&verifier));
    let after = signed.client.stats().bytes_sent + signed.terminal.stats().bytes_sent;
    eprintln!(
        "bytes on the wire per signed sale: {} (client {} + terminal {})",
        after - before,
        signed.client.stats().bytes_sent,
        signed.terminal.stats().bytes_sent
    );
    let mut n = 1u128;
    g.bench_function("signed_encrypted", |b| {
        b.iter(|| {
            n += 1;
            black_box(one_sale(&mut signed, n, Some(&verifier)))
        })
    });

    let (mut unsigned, _) = pair(false);
    let mut n = 1u128;
    g.bench_function("unsigned_encrypted", |b| {
        b.iter(|| {
            n += 1;
            black_box(one_sale(&mut unsigned, n, None))
        })
    });

    // The bound: one Ed25519 signature and one verification of the same result.
    let signer = SigningIdentity::from_secret(&[7; 32]);
    let v = Verifier::new(&signer.public_key()).unwrap();
    let mut r = samples::approved_result();
    g.bench_function("baseline_ed25519_sign_verify", |b| {
        b.iter(|| {
            signer.sign_result(&mut r);
            v.verify_result(black_box(&r)).unwrap();
        })
    });

    // Parts: encoding and decoding the sale's messages, and sealing and opening them.
    let request = sale(1);
    let progress = Message::Progress(Progress {
        request_id: RequestId::from_u128(1),
        stage: ProgressStage::ProcessingOnline,
        method: None,
        message: None,
    });
    let mut result = samples::approved_result();
    signer.sign_result(&mut result);
    let result = Message::TransactionResult(result);
    let messages = [request, progress, result];
    g.bench_function("part_codec", |b| {
        let mut buf = BytesMut::with_capacity(1024);
        b.iter(|| {
            for m in &messages {
                buf.clear();
                m.encode(&mut buf).unwrap();
                black_box(Message::decode(&buf).unwrap());
            }
        })
    });
    let a = posbridge_crypto::StaticKeypair::generate().unwrap();
    let t = posbridge_crypto::StaticKeypair::generate().unwrap();
    let (hs, first) =
        InitiatorHandshake::start(&a, &t.public(), b"", ChannelConfig::default()).unwrap();
    let accepted = respond(&t, &first, |_| true, b"", ChannelConfig::default()).unwrap();
    let (mut tx, _) = hs.finish(&accepted.response).unwrap();
    let mut rx = accepted.channel;
    let encoded: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| m.to_bytes().unwrap().to_vec())
        .collect();
    g.bench_function("part_aead", |b| {
        let header = [0u8; 13];
        let mut sealed = Vec::with_capacity(1024);
        b.iter(|| {
            for m in &encoded {
                sealed.clear();
                tx.seal(&header, m, &mut sealed).unwrap();
                black_box(rx.open(&header, &mut sealed).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, sales);
criterion_main!(benches);
