//! Beyond one machine: a primary with a synchronous streaming-replication standby (both started
//! here). Tills upload through the service; the primary is killed in the middle, the standby
//! promoted; the service (its connection string names both) and the uploaders carry on. In the
//! end the new primary holds every change of every till exactly once, and everything a till saw
//! acknowledged was there before the primary died.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{Db, add_store, register_till, schema, server};
use posbridge_journal::SqliteJournal;
use posbridge_sync::{Ack, HttpSink, Sink, SinkError, Uploader, UploaderConfig};
use support::{Day, count, till_journal};

/// A till on a slow line: every upload takes 30 ms more, so that the primary dies while the
/// uploads are still going. Counts the changes acknowledged.
struct SlowLine(HttpSink, Arc<AtomicU64>);

impl Sink for SlowLine {
    async fn send(&self, till: &str, body: Vec<u8>, signature: String) -> Result<Ack, SinkError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let ack = self.0.send(till, body, signature).await?;
        self.1.fetch_add(
            ack.accepted + ack.duplicates + ack.quarantined,
            Ordering::SeqCst,
        );
        Ok(ack)
    }
}

const TILLS: u8 = 6;
const SALES: u128 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_mid_upload_loses_and_doubles_nothing() {
    let Some(primary) = PgCluster::start_or_skip() else {
        return;
    };
    primary.create_database("chain").await.unwrap();
    let standby = primary.start_standby(true).unwrap();
    let url = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=posbridge dbname=chain connect_timeout=2 target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let db = Db::new(&url, 8).unwrap();
    schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
    let store = add_store(&db, "west", "West").await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, None, db.clone()));

    let dir = primary.dir().join("tills");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tills = Vec::new();
    for t in 1..=TILLS {
        let (path, id) = till_journal(&dir, Day::sales(t, SALES));
        register_till(
            &db,
            &store,
            id.id().0,
            &format!("west {t}"),
            id.signing().public_key(),
        )
        .await
        .unwrap();
        tills.push((path, id));
    }
    let total: u64 = (SALES as u64 * 3 + 1) * u64::from(TILLS);

    // Upload in small batches, retrying whatever fails, until every outbox is empty.
    let acked = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (path, id) in &tills {
        let mut up = Uploader::open(
            path,
            id,
            SlowLine(HttpSink::plain_http(addr), acked.clone()),
            UploaderConfig {
                batch: 4,
                ..UploaderConfig::default()
            },
        )
        .unwrap();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                match up.ship().await {
                    Ok(_) => return,
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                        assert!(Instant::now() < deadline, "uploads did not recover");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }

    // Mid-upload: kill the primary, promote the standby.
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < total / 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_crash = acked.load(Ordering::SeqCst);
    primary.crash().unwrap();
    let crashed = started.elapsed();
    standby.promote().unwrap();
    let promoted = started.elapsed();
    for t in tasks {
        t.await.unwrap();
    }
    let done = started.elapsed();
    assert!(
        at_crash < total,
        "the primary died mid-upload ({at_crash} of {total} acknowledged)"
    );
    assert!(
        failures.load(Ordering::SeqCst) > 0,
        "the uploaders saw the failover"
    );

    // On the new primary: every change of every till, once.
    let db = Db::new(&url, 2).unwrap();
    let stored = count(&db, "SELECT count(*) FROM changes").await
        + count(&db, "SELECT count(*) FROM settlements").await
        + count(&db, "SELECT count(*) FROM quarantine").await;
    assert_eq!(stored as u64, total);
    for (path, _) in &tills {
        let journal = SqliteJournal::open(path).unwrap();
        let status = journal.outbox_status().unwrap();
        assert_eq!(
            (status.unshipped, status.shipped),
            (0, SALES as u64 * 3 + 1)
        );
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM changes WHERE state = 'done' AND signed"
        )
        .await,
        (SALES as i64) * i64::from(TILLS)
    );
    println!(
        "failover: {at_crash} of {total} changes acknowledged when the primary died ({crashed:?} in), standby promoted {:?} later; {} failed uploads retried; all {total} on the promoted standby once, {done:?} after the first upload",
        promoted - crashed,
        failures.load(Ordering::SeqCst)
    );
}
