//! Tills upload their journals through the real service into a real PostgreSQL (a cluster of
//! its own, started by the test): every change once, a resend after a lost answer recognised,
//! a forged result quarantined, a till of another store or with another key refused.

use std::net::SocketAddr;

use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{BackofficeError, Db, add_store, register_till, schema, server};
use posbridge_crypto::{LocalIdentity, PeerId, SigningIdentity};
use posbridge_journal::{Journal, SqliteJournal};
use posbridge_sync::{Ack, HttpSink, Sink, SinkError, Uploader, UploaderConfig, hex};
use posbridge_wire::{
    Currency, IdempotencyKey, RequestId, SettlementResult, TerminalId, Timestamp, Totals,
    TransactionKind, TransactionRequest, TransactionResult, samples,
};

const TERMINAL: TerminalId = TerminalId([4; 16]);

fn sale(key: u128) -> TransactionRequest {
    let mut r = samples::sale_request();
    r.idempotency_key = IdempotencyKey::from_u128(key);
    r
}

fn approved(r: &TransactionRequest, terminal: &SigningIdentity) -> TransactionResult {
    let mut x = samples::approved_result();
    x.idempotency_key = r.idempotency_key;
    x.terminal_id = TERMINAL;
    x.transaction_id = posbridge_wire::TransactionId(r.idempotency_key.0);
    terminal.sign_result(&mut x);
    x
}

/// A till's journal file with `n` signed sales (one of them a forgery when `forge`), a
/// settlement, and the till's identity.
fn till_journal(
    dir: &std::path::Path,
    n: u128,
    forge: bool,
) -> (std::path::PathBuf, LocalIdentity) {
    let terminal = SigningIdentity::from_secret(&[7; 32]);
    let path = dir.join(format!("till-{n}-{forge}.db"));
    let mut j = SqliteJournal::open(&path).unwrap();
    for k in 1..=n {
        let r = sale(k);
        j.record_intent(
            TERMINAL,
            &r,
            Some(terminal.public_key()),
            Timestamp(1_764_000_000_000 + k as u64),
        )
        .unwrap();
        j.mark_sent(&r.idempotency_key, Timestamp(1_764_000_000_100 + k as u64))
            .unwrap();
        let mut result = approved(&r, &terminal);
        if forge && k == n {
            // Changed after the terminal signed it.
            result.auth_code = Some("FORGED".into());
        }
        j.record_result(&result, Timestamp(1_764_000_000_200 + k as u64))
            .unwrap();
    }
    let mut s = SettlementResult {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(9_000 + n),
        terminal_id: TERMINAL,
        batch_number: 1,
        status: Ok(()),
        opened: Some(Timestamp(1_764_000_000_000)),
        closed: Timestamp(1_764_000_900_000),
        totals: vec![Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            count: n as u32,
            amount: 1350 * n as u64,
        }],
        receipt: None,
        signature: None,
    };
    terminal.sign_settlement(&mut s);
    j.record_settlement(
        &s,
        Some(terminal.public_key()),
        Timestamp(1_764_000_900_001),
    )
    .unwrap();
    let identity = LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap();
    (path, identity)
}

/// Forwards to the service, then loses the answer once: what a crash between the back office's
/// commit and the till's acknowledgement looks like.
struct LoseFirstAnswer {
    inner: HttpSink,
    lost: std::sync::atomic::AtomicBool,
}

impl Sink for LoseFirstAnswer {
    async fn send(&self, till: &str, body: Vec<u8>, signature: String) -> Result<Ack, SinkError> {
        let ack = self.inner.send(till, body, signature).await?;
        if !self.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(SinkError::Unreachable("the answer was lost".into()));
        }
        Ok(ack)
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    db.get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

async fn post_till(addr: SocketAddr, token: &str, body: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/tills HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_land_once_forgeries_are_quarantined_and_stores_keep_to_their_tills() {
    let Some(pg) = PgCluster::start_or_skip() else {
        return;
    };
    let url = pg.create_database("ingest").await.unwrap();
    let db = Db::new(&url, 4).unwrap();
    // Two instances starting at once migrate once.
    let (a, b) = tokio::join!(
        async { schema::migrate(&mut db.get().await.unwrap()).await },
        async { schema::migrate(&mut db.get().await.unwrap()).await }
    );
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (schema::SCHEMA_VERSION, schema::SCHEMA_VERSION)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, None, db.clone()));

    let dir = pg.dir().join("tills");
    std::fs::create_dir_all(&dir).unwrap();
    let (path, till) = till_journal(&dir, 40, false);
    let (forged_path, forger) = till_journal(&dir, 3, true);

    // Stores and their tills.
    let north = add_store(&db, "north", "North").await.unwrap();
    let south = add_store(&db, "south", "South").await.unwrap();
    assert!(matches!(
        add_store(&db, "north", "again").await,
        Err(BackofficeError::Conflict(_))
    ));
    let body = |id: &LocalIdentity| {
        format!(
            r#"{{"till":"{}","name":"till 1","public_key":"{}"}}"#,
            hex(&id.id().0),
            hex(&id.signing().public_key().0)
        )
    };
    let (status, answer) = post_till(addr, &north, body(&till)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"store\":\"north\""), "{answer}");
    assert_eq!(
        post_till(addr, &north, body(&till)).await.0,
        200,
        "again: no change"
    );
    assert_eq!(
        post_till(addr, &south, body(&till)).await.0,
        403,
        "another store's till"
    );
    assert_eq!(post_till(addr, "pbs_wrong", body(&till)).await.0, 401);
    let other_key = LocalIdentity::generate(till.id(), "till").unwrap();
    assert_eq!(
        post_till(addr, &north, body(&other_key)).await.0,
        409,
        "another key"
    );
    register_till(
        &db,
        &south,
        forger.id().0,
        "till 9",
        forger.signing().public_key(),
    )
    .await
    .unwrap();

    // An upload whose answer is lost, then the resend: every change once.
    let sink = LoseFirstAnswer {
        inner: HttpSink::plain_http(addr),
        lost: false.into(),
    };
    let config = UploaderConfig {
        batch: 25,
        ..UploaderConfig::default()
    };
    let mut uploader = Uploader::open(&path, &till, sink, config.clone()).unwrap();
    let before = uploader.status().unwrap();
    assert_eq!(
        before.unshipped,
        40 * 3 + 1,
        "intent, sent and done per sale, and the settlement"
    );
    assert!(before.oldest_unshipped_approved.is_some());
    assert!(matches!(
        uploader.ship().await,
        Err(SinkError::Unreachable(_))
    ));
    assert_eq!(
        uploader.status().unwrap().shipped,
        0,
        "nothing acknowledged"
    );
    let report = uploader.ship().await.unwrap();
    assert_eq!(
        report.duplicates, 25,
        "the first upload again: already there"
    );
    assert_eq!(report.accepted, 40 * 3 + 1 - 25);
    assert_eq!((report.uploads, report.quarantined), (5, 0));
    let after = uploader.status().unwrap();
    assert_eq!((after.unshipped, after.shipped), (0, 121));
    assert_eq!(count(&db, "SELECT count(*) FROM changes").await, 120);
    assert_eq!(
        count(&db, "SELECT count(*) FROM settlements WHERE signed").await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM changes WHERE state = 'done' AND signed AND outcome = 'approved'"
        )
        .await,
        40
    );
    assert_eq!(
        count(
            &db,
            "SELECT sum(approved_minor)::bigint FROM changes WHERE state = 'done'"
        )
        .await,
        40 * 1250
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM tills WHERE last_upload IS NOT NULL"
        )
        .await
            == 1
    );
    // Nothing more to ship.
    assert_eq!(uploader.ship().await.unwrap().uploads, 0);

    // A forged result: quarantined with its reason, the rest stored.
    let mut forged = Uploader::open(
        &forged_path,
        &forger,
        HttpSink::plain_http(addr),
        config.clone(),
    )
    .unwrap();
    let report = forged.ship().await.unwrap();
    assert_eq!((report.accepted, report.quarantined), (9, 1));
    let reason: String = db
        .get()
        .await
        .unwrap()
        .query_one("SELECT reason FROM quarantine", &[])
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("signature"), "{reason}");
    assert_eq!(
        forged.status().unwrap().unshipped,
        0,
        "quarantined is shipped, not lost"
    );

    // A till nobody registered, and a till signing with a key not its own.
    let (stray_path, stray) = till_journal(&dir, 1, false);
    let mut unknown = Uploader::open(
        &stray_path,
        &stray,
        HttpSink::plain_http(addr),
        config.clone(),
    )
    .unwrap();
    assert!(matches!(
        unknown.ship().await,
        Err(SinkError::Refused { status: 403, .. })
    ));
    let impostor = LocalIdentity::generate(forger.id(), "till").unwrap();
    let mut wrong_key =
        Uploader::open(&stray_path, &impostor, HttpSink::plain_http(addr), config).unwrap();
    assert!(matches!(
        wrong_key.ship().await,
        Err(SinkError::Refused { status: 401, .. })
    ));
    assert_eq!(wrong_key.status().unwrap().shipped, 0);
    // The day's partition was made on demand.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'changes'::regclass"
        )
        .await,
        1
    );
}
