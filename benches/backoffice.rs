//! The back office on a PostgreSQL cluster of its own (started here; skipped with the reason
//! without PostgreSQL), in the same run:
//!
//! * ingest: one upload of 500 journal changes through the service (HTTP, signature checks,
//!   decoding, terminal signatures verified, the insert) — against a bare `COPY` of the same 500
//!   rows, prepared beforehand, into the same table. Every iteration writes new rows (another
//!   journal identity), so neither side meets duplicates.
//! * the chain's page for one day of a 500-till chain (150,000 sales, in a database of its own)
//!   — against the bare SQL of its main aggregation (each entry's latest change of the day).
//!
//! Run: `cargo bench -p posbridge-benches --bench backoffice -- --warm-up-time 2 --measurement-time 5`

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::SinkExt;
use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{Db, add_admin, add_store, register_till, schema, server};
use posbridge_crypto::{LocalIdentity, PeerId, SigningIdentity};
use posbridge_journal::{Journal, OutboxItem, SqliteJournal};
use posbridge_sync::{HttpSink, Sink, Upload, hex, sign};
use posbridge_wire::{
    IdempotencyKey, Message, TerminalId, Timestamp, TransactionId, TransactionRequest, samples,
};

const T0: u64 = 1_764_000_000_000;

/// A journal of `sales` signed sales; its outbox.
fn journal(dir: &std::path::Path, sales: u128) -> Vec<posbridge_journal::OutboxRecord> {
    let terminal = SigningIdentity::from_secret(&[3; 32]);
    let tid = TerminalId([3; 16]);
    let path = dir.join("bench.db");
    let _ = std::fs::remove_file(&path);
    let mut j = SqliteJournal::open(&path).unwrap();
    for k in 1..=sales {
        let mut r: TransactionRequest = samples::sale_request();
        r.idempotency_key = IdempotencyKey::from_u128(k);
        j.record_intent(
            tid,
            &r,
            Some(terminal.public_key()),
            Timestamp(T0 + k as u64),
        )
        .unwrap();
        j.mark_sent(&r.idempotency_key, Timestamp(T0 + k as u64))
            .unwrap();
        let mut x = samples::approved_result();
        x.idempotency_key = r.idempotency_key;
        x.terminal_id = tid;
        x.transaction_id = TransactionId(k.to_be_bytes());
        terminal.sign_result(&mut x);
        j.record_result(&x, Timestamp(T0 + k as u64)).unwrap();
    }
    j.outbox(usize::MAX).unwrap()
}

fn ts(ms: u64) -> String {
    let (y, m, d) = posbridge_wire::civil::civil_from_days((ms / 86_400_000) as i64);
    let s = (ms / 1000) % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}+00",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

fn bytea(b: &[u8]) -> String {
    format!("\\\\x{}", hex(b))
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "\\N".into())
}

/// The COPY text of `records` as the service would store them, with `JOURNAL` where the
/// journal id goes.
fn copy_text(till: &[u8; 16], records: &[posbridge_journal::OutboxRecord]) -> String {
    let mut out = String::new();
    for r in records {
        let OutboxItem::Entry {
            key,
            terminal,
            state,
            request,
            result,
            terminal_key,
            created,
            updated,
            ..
        } = &r.item
        else {
            continue;
        };
        let Ok(Message::Transaction(req)) = Message::decode(request) else {
            panic!("a request")
        };
        let amount = req.command.amount().unwrap();
        let res = result.as_ref().map(|b| match Message::decode(b) {
            Ok(Message::TransactionResult(x)) => x,
            _ => panic!("a result"),
        });
        let fields = [
            bytea(till),
            "JOURNAL".into(),
            r.seq.to_string(),
            {
                let (y, m, d) =
                    posbridge_wire::civil::civil_from_days((created / 86_400_000) as i64);
                format!("{y:04}-{m:02}-{d:02}")
            },
            bytea(key),
            bytea(terminal),
            state.clone(),
            "sale".into(),
            amount.minor.to_string(),
            "EUR".into(),
            opt(res.as_ref().map(|x| posbridge_wire::snake_name(&x.outcome))),
            opt(res.as_ref().map(|x| x.approved_minor.to_string())),
            opt(res.as_ref().and_then(|x| x.tip).map(|t| t.to_string())),
            opt(res.as_ref().and_then(|x| x.cashback).map(|t| t.to_string())),
            opt(res.as_ref().map(|x| bytea(x.transaction_id.as_bytes()))),
            opt(res.as_ref().map(|x| ts(x.time.0))),
            res.is_some().to_string(),
            ts(*created),
            ts(*updated),
            bytea(request),
            opt(result.as_deref().map(bytea)),
            opt(terminal_key.as_deref().map(bytea)),
            "\\N".into(),
        ];
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

fn backoffice(c: &mut Criterion) {
    let pg = match PgCluster::start() {
        Ok(pg) => pg,
        Err(why) => {
            eprintln!("backoffice benchmarks skipped: {why}");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = pg.dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let records = journal(&dir, 300);
    let template_all = records.clone();
    let records: Vec<_> = records.into_iter().take(500).collect();
    let till = LocalIdentity::generate(PeerId::random().unwrap(), "bench").unwrap();
    let (db, addr) = rt.block_on(async {
        let db = Db::new(&pg.create_database("bench").await.unwrap(), 8).unwrap();
        schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
        let store = add_store(&db, "bench", "Bench").await.unwrap();
        register_till(
            &db,
            &store,
            till.id().0,
            "bench",
            till.signing().public_key(),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, None, db.clone()));
        (db, addr)
    });
    let sink = HttpSink::plain_http(addr);
    let signing = SigningIdentity::from_secret(&till.signing().to_secret());
    let till_hex = hex(&till.id().0);
    let template = copy_text(&till.id().0, &records);
    let day_rows = copy_text(&till.id().0, &template_all);
    let mut journal_id = 0u128;
    let mut next_journal = move || {
        journal_id += 1;
        journal_id.to_be_bytes()
    };

    // One upload first: it makes the day's partition, which the COPYs need too.
    rt.block_on(async {
        let body = Upload {
            till: till.id().0,
            journal: [0xff; 16],
            records: records.clone(),
        }
        .to_json();
        let sig = sign(&signing, &body);
        sink.send(&till_hex, body, sig).await.unwrap();
    });
    let mut g = c.benchmark_group("backoffice_ingest");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("service_upload_500", |b| {
        b.iter_custom(|iters| {
            let uploads: Vec<(Vec<u8>, String)> = (0..iters)
                .map(|_| {
                    let body = Upload {
                        till: till.id().0,
                        journal: next_journal(),
                        records: records.clone(),
                    }
                    .to_json();
                    let sig = sign(&signing, &body);
                    (body, sig)
                })
                .collect();
            rt.block_on(async {
                let start = Instant::now();
                for (body, sig) in uploads {
                    let ack = sink.send(&till_hex, body, sig).await.unwrap();
                    assert_eq!(ack.accepted, 500);
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("bare_copy_500", |b| {
        b.iter_custom(|iters| {
            let texts: Vec<String> = (0..iters)
                .map(|_| template.replace("JOURNAL", &bytea(&next_journal())))
                .collect();
            rt.block_on(async {
                let conn = db.get().await.unwrap();
                let start = Instant::now();
                for text in texts {
                    let sink = conn
                        .copy_in(
                            "COPY changes (till, journal, seq, day, entry_key, terminal, state,
                                kind, amount_minor, currency, outcome, approved_minor, tip_minor,
                                cashback_minor, transaction_id, result_time, signed, created,
                                updated, request, result, terminal_key, note) FROM STDIN",
                        )
                        .await
                        .unwrap();
                    let mut sink = std::pin::pin!(sink);
                    sink.send(Bytes::from(text)).await.unwrap();
                    let n = sink.finish().await.unwrap();
                    assert_eq!(n, 500);
                }
                start.elapsed()
            })
        })
    });
    g.finish();

    // A day of a 500-till chain: 150,000 sales (their final changes), loaded by COPY into a
    // database of its own, so that the ingest rows above (same day) do not swell it.
    let tills: Vec<[u8; 16]> = (0..500u32)
        .map(|i| {
            let mut id = [0x20; 16];
            id[12..].copy_from_slice(&i.to_be_bytes());
            id
        })
        .collect();
    let (pages_db, pages_addr, pages_admin) = rt.block_on(async {
        let db = Db::new(&pg.create_database("pages").await.unwrap(), 8).unwrap();
        schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
        let conn = db.get().await.unwrap();
        conn.batch_execute(
            "CREATE TABLE changes_2025_11_24 PARTITION OF changes
                 FOR VALUES FROM (DATE '2025-11-24') TO (DATE '2025-11-25');
             INSERT INTO stores (id, name, token_sha256)
             SELECT 'store ' || n, 'Store ' || n, sha256(('s' || n)::bytea)
             FROM generate_series(0, 49) n",
        )
        .await
        .unwrap();
        for (i, t) in tills.iter().enumerate() {
            conn.execute(
                "INSERT INTO tills (id, store, name, public_key) VALUES ($1, $2, $3, $4)",
                &[
                    &t.to_vec(),
                    &format!("store {}", i / 10),
                    &format!("till {i}"),
                    &vec![0u8; 32],
                ],
            )
            .await
            .unwrap();
        }
        for t in &tills {
            let done: String = day_rows
                .lines()
                .filter(|l| l.contains("\tdone\t"))
                .take(300)
                .map(|l| l.replacen(&bytea(&till.id().0), &bytea(t), 1) + "\n")
                .collect();
            let text = done.replace("JOURNAL", &bytea(&[1; 16]));
            let sink = conn
                .copy_in(
                    "COPY changes (till, journal, seq, day, entry_key, terminal, state, kind,
                        amount_minor, currency, outcome, approved_minor, tip_minor,
                        cashback_minor, transaction_id, result_time, signed, created, updated,
                        request, result, terminal_key, note) FROM STDIN",
                )
                .await
                .unwrap();
            let mut sink = std::pin::pin!(sink);
            sink.send(Bytes::from(text)).await.unwrap();
            assert_eq!(sink.finish().await.unwrap(), 300);
        }
        conn.batch_execute("ANALYZE changes").await.unwrap();
        drop(conn);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server::serve(listener, None, db.clone()));
        let admin = add_admin(&db, "bench").await.unwrap();
        (db, addr, admin)
    });
    let client = posbridge_tcp::http::HttpClient::new(pages_addr, None);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("bench:{pages_admin}"))
    );
    let mut g = c.benchmark_group("backoffice_page");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("chain_day_500_tills", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (status, body) = client
                    .get(
                        "/?day=2025-11-24",
                        &[("authorization", basic.as_str())],
                        1 << 24,
                    )
                    .await
                    .unwrap();
                assert_eq!(status, 200);
                body.len()
            })
        })
    });
    g.bench_function("bare_day_aggregate", |b| {
        b.iter(|| {
            rt.block_on(async {
                let conn = pages_db.get().await.unwrap();
                conn.query(
                    "SELECT t.store, count(*), sum(e.approved_minor)
                     FROM (SELECT DISTINCT ON (c.till, c.entry_key) * FROM changes c
                        WHERE c.day = DATE '2025-11-24'
                        ORDER BY c.till, c.entry_key, c.seq DESC) e
                     JOIN tills t ON t.id = e.till WHERE e.state = 'done' GROUP BY 1",
                    &[],
                )
                .await
                .unwrap()
                .len()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, backoffice);
criterion_main!(benches);
