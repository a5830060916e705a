//! Tills upload their journals through the real service into a real PostgreSQL (a cluster of
//! its own, started by the test): every change once, a resend after a lost answer recognised,
//! a forged result quarantined, a till of another store or with another key refused.

mod support;

use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{BackofficeError, Db, add_store, register_till, schema, server};
use posbridge_crypto::LocalIdentity;
use posbridge_sync::{Ack, HttpSink, Sink, SinkError, Uploader, UploaderConfig};
use support::{Day, count, http, registration, till_journal};

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
    let (path, till) = till_journal(&dir, Day::sales(1, 40));
    let (forged_path, forger) = till_journal(
        &dir,
        Day {
            forge_last: true,
            ..Day::sales(2, 3)
        },
    );

    // Stores and their tills.
    let north = add_store(&db, "north", "North").await.unwrap();
    let south = add_store(&db, "south", "South").await.unwrap();
    assert!(matches!(
        add_store(&db, "north", "again").await,
        Err(BackofficeError::Conflict(_))
    ));
    let body = |id: &LocalIdentity| registration(id, "till 1");
    let post_till = |token: String, body: String| async move {
        http(addr, "POST", "/v1/tills", &token, &body).await
    };
    let (status, answer) = post_till(north.clone(), body(&till)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"store\":\"north\""), "{answer}");
    assert_eq!(
        post_till(north.clone(), body(&till)).await.0,
        200,
        "again: no change"
    );
    assert_eq!(
        post_till(south.clone(), body(&till)).await.0,
        403,
        "another store's till"
    );
    assert_eq!(post_till("pbs_wrong".into(), body(&till)).await.0, 401);
    let other_key = LocalIdentity::generate(till.id(), "till").unwrap();
    assert_eq!(
        post_till(north.clone(), body(&other_key)).await.0,
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
    // The open entries kept on ingest are exactly those whose latest change is open: none of
    // the first till's (its entries crossed upload batches, and a resend came in between),
    // the forged result's entry at the forger's (its last accepted change is `sent`).
    let open = |sql: &'static str| {
        let db = db.clone();
        async move {
            let rows = db.get().await.unwrap().query(sql, &[]).await.unwrap();
            rows.iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1), r.get(2)))
                .collect::<Vec<(Vec<u8>, Vec<u8>, String)>>()
        }
    };
    let kept = open("SELECT till, entry_key, state FROM open_entries ORDER BY 1, 2").await;
    assert_eq!(
        kept,
        open(
            "SELECT till, entry_key, state FROM entries_latest
             WHERE state IN ('intent', 'sent', 'in_doubt') ORDER BY 1, 2"
        )
        .await
    );
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (kept[0].0.as_slice(), kept[0].2.as_str()),
        (&forger.id().0[..], "sent")
    );

    // A till nobody registered, and a till signing with a key not its own.
    let (stray_path, stray) = till_journal(&dir, Day::sales(3, 1));
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
    let partitions = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'changes'::regclass";
    assert_eq!(count(&db, partitions).await, 1);

    // Retention dropped the day while the service runs (it remembers the partitions it made):
    // a late upload of that day makes it again instead of failing.
    let name: String = db
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT inhrelid::regclass::text FROM pg_inherits
             WHERE inhparent = 'changes'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP TABLE {name}"))
        .await
        .unwrap();
    let (late_path, late) = till_journal(&dir, Day::sales(1, 2));
    register_till(
        &db,
        &north,
        late.id().0,
        "till 2",
        late.signing().public_key(),
    )
    .await
    .unwrap();
    let mut late_uploader = Uploader::open(
        &late_path,
        &late,
        HttpSink::plain_http(addr),
        UploaderConfig::default(),
    )
    .unwrap();
    let report = late_uploader.ship().await.unwrap();
    assert_eq!((report.accepted, report.quarantined), (2 * 3 + 1, 0));
    assert_eq!(count(&db, partitions).await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM changes").await, 2 * 3);
}
