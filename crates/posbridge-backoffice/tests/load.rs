//! The load and fault test (bounded, 127.0.0.1 only, stops by itself): 500 tills in one process,
//! each with its own SQLite journal, 100,000 sales in all (300,000 journal changes and 500
//! settlements), uploading through two service instances into one PostgreSQL — while the test
//! SIGKILLs service instances and the tills' process at least 50 times and crashes and restarts
//! PostgreSQL twice. Afterwards PostgreSQL holds the union of the journals: every change of every
//! till once, none missing, nothing quarantined.
#![cfg(feature = "testing")]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use posbridge_backoffice::testing::{PgCluster, load_till_identity};
use posbridge_backoffice::{Db, add_store, schema};
use support::{Day, count, till_journal};

const TILLS: u32 = 500;
const SALES_PER_TILL: u128 = 200;
const CHANGES_PER_TILL: i64 = SALES_PER_TILL as i64 * 3 + 1;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn service(url: &str, port: u16, logs: &std::path::Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("service-{port}.log")))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_posbridge-backoffice"))
        .args([
            "--db",
            url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--pool",
            "6",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Proc)
        .unwrap()
}

fn tills(dir: &std::path::Path, addrs: &str) -> Proc {
    Command::new(env!("CARGO_BIN_EXE_posbridge-load-tills"))
        .arg(dir)
        .arg(TILLS.to_string())
        .arg(addrs)
        .arg("200")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Proc)
        .unwrap()
}

/// A child process, SIGKILLed when dropped (also when the test fails).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        sigkill(&mut self.0);
    }
}

fn sigkill(child: &mut Child) {
    // Child::kill is SIGKILL on Unix: no clean-up, as a crash.
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_tills_upload_through_kills_and_database_restarts_exactly_once() {
    let Some(pg) = PgCluster::start_or_skip() else {
        return;
    };
    let url = pg.create_database("load").await.unwrap();
    let db = Db::new(&url, 2).unwrap();
    schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
    let store = add_store(&db, "load", "Load").await.unwrap();

    // The tills: one journal of 200 signed sales and a settlement, copied 500 times, each copy
    // made a journal of its own (a new identity), each till registered with its own key.
    let started = Instant::now();
    let dir = pg.dir().join("load-tills");
    std::fs::create_dir_all(&dir).unwrap();
    let (template, _) = till_journal(&dir, Day::sales(9, SALES_PER_TILL));
    let conn = db.get().await.unwrap();
    for i in 0..TILLS {
        let path = dir.join(format!("till-{i}.db"));
        std::fs::copy(&template, &path).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE meta SET value = randomblob(16) WHERE name = 'identity'",
                [],
            )
            .unwrap();
        let id = load_till_identity(i);
        let store_id: String = conn
            .query_one("SELECT id FROM stores WHERE id = 'load'", &[])
            .await
            .unwrap()
            .get(0);
        conn.execute(
            "INSERT INTO tills (id, store, name, public_key) VALUES ($1, $2, $3, $4)",
            &[
                &id.id().0.to_vec(),
                &store_id,
                &id.name(),
                &id.signing().public_key().0.to_vec(),
            ],
        )
        .await
        .unwrap();
    }
    drop(conn);
    let _ = store;
    let prepared = started.elapsed();
    let total = i64::from(TILLS) * CHANGES_PER_TILL;

    // Two service instances, the tills' process, and the faults.
    let ports = [free_port(), free_port()];
    let addrs = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let mut services = [service(&url, ports[0], &dir), service(&url, ports[1], &dir)];
    let mut till_process = tills(&dir, &addrs);
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut service_kills, mut till_kills, mut pg_restarts, mut step) = (0u32, 0u32, 0u32, 0u32);
    let upload_started = Instant::now();
    let stored = |db: Db| async move {
        match db.get().await {
            Ok(c) => c
                .query_one(
                    "SELECT (SELECT count(*) FROM changes) + (SELECT count(*) FROM settlements)",
                    &[],
                )
                .await
                .map(|r| r.get::<_, i64>(0))
                .unwrap_or(-1),
            Err(_) => -1,
        }
    };
    let uploaded = loop {
        assert!(
            Instant::now() < deadline,
            "the load test did not finish within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(status) = till_process.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = till_process.0.stderr.take() {
                use std::io::Read as _;
                let _ = e.read_to_string(&mut err);
            }
            assert!(
                status.success(),
                "the tills' process failed: {status} {err}"
            );
            break upload_started.elapsed();
        }
        step += 1;
        let progress = stored(db.clone()).await;
        if step % 25 == 0 {
            eprintln!(
                "load: {:.0?} {progress}/{total} stored; {service_kills} service and {till_kills} tills kills, {pg_restarts} restarts",
                upload_started.elapsed()
            );
        }
        if std::env::var_os("POSBRIDGE_LOAD_CALM").is_some() || progress < 0 {
            continue;
        }
        // Faults paced by progress, not by the clock, so that however fast this machine is they
        // fall during the uploads: a SIGKILL each time another 1/64 of the changes is stored
        // (one per look), the two PostgreSQL crashes at a third and two thirds.
        let kills = service_kills + till_kills;
        if pg_restarts < 2 && progress > total * i64::from(pg_restarts + 1) / 3 {
            pg.crash().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            pg.restart().unwrap();
            pg_restarts += 1;
        } else if progress >= total * i64::from(kills + 1) / 64 {
            if kills % 10 == 9 {
                sigkill(&mut till_process.0);
                till_process = tills(&dir, &addrs);
                till_kills += 1;
            } else {
                let k = (kills % 2) as usize;
                sigkill(&mut services[k].0);
                services[k] = service(&url, ports[k], &dir);
                service_kills += 1;
            }
        }
    };
    drop(services);

    // PostgreSQL equals the union of the journals.
    let db = Db::new(&url, 2).unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM quarantine").await, 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM changes").await
            + count(&db, "SELECT count(*) FROM settlements").await,
        total,
        "every change once"
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) FROM (SELECT till FROM changes GROUP BY till
                 HAVING count(*) = {}) x",
                CHANGES_PER_TILL - 1
            )
        )
        .await,
        i64::from(TILLS),
        "each till's changes, all of them"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM open_entries").await,
        0,
        "every sale ended, and the open entries kept on ingest say so"
    );
    assert_eq!(
        count(&db, "SELECT count(DISTINCT till) FROM settlements").await,
        i64::from(TILLS)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM changes WHERE state = 'done' AND signed AND outcome = 'approved'"
        )
        .await,
        i64::from(TILLS) * SALES_PER_TILL as i64
    );
    for i in [0, TILLS / 2, TILLS - 1] {
        let j = posbridge_journal::SqliteJournal::open(dir.join(format!("till-{i}.db"))).unwrap();
        assert_eq!(j.outbox_status().unwrap().unshipped, 0);
    }
    let bytes = count(
        &db,
        "SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits
         WHERE inhparent = 'changes'::regclass",
    )
    .await;
    let kills = service_kills + till_kills;
    println!(
        "load: {TILLS} tills, {} sales, {total} changes in {uploaded:.1?} (prepared in {prepared:.1?}) through 2 instances; {service_kills} service and {till_kills} tills-process SIGKILLs, {pg_restarts} PostgreSQL crashes and restarts; every change once; {} bytes per change stored with its indexes",
        u128::from(TILLS) * SALES_PER_TILL,
        bytes / (total - i64::from(TILLS))
    );
    assert!(
        kills >= 50,
        "only {kills} SIGKILLs happened during the uploads"
    );
    assert_eq!(pg_restarts, 2, "PostgreSQL was restarted twice");
}
