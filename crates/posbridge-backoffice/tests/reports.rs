//! Chain reconciliation over a seeded chain (two stores, real uploads into a real PostgreSQL):
//! totals per till and day, a settlement that matches and one that does not, a payment left in
//! doubt, one transaction id booked twice, a till that never uploaded — each report for the
//! chain (an administrator) and for one store (its own token only), as JSON and CSV.

mod support;

use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{Db, add_admin, add_store, register_till, schema, server};
use posbridge_sync::{HttpSink, Uploader, UploaderConfig, hex};
use serde_json::Value;
use support::{Day, http, till_journal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_find_what_matches_and_what_does_not() {
    let Some(pg) = PgCluster::start_or_skip() else {
        return;
    };
    let db = Db::new(&pg.create_database("reports").await.unwrap(), 4).unwrap();
    schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(listener, None, db.clone()));
    let dir = pg.dir().join("tills");
    std::fs::create_dir_all(&dir).unwrap();

    let admin = add_admin(&db, "head office").await.unwrap();
    let north = add_store(&db, "north", "North").await.unwrap();
    let south = add_store(&db, "south", "South").await.unwrap();
    // North: a clean day of 20 sales, except that the last two carry one transaction id.
    let (clean, a) = till_journal(
        &dir,
        Day {
            same_transaction_id: true,
            ..Day::sales(1, 20)
        },
    );
    // South: 5 sales whose settlement claims one more; 3 sales whose last result is forged
    // (quarantined, so that payment stays "sent" in the back office: in doubt).
    let (short, b) = till_journal(
        &dir,
        Day {
            settlement_extra: 1,
            ..Day::sales(2, 5)
        },
    );
    let (forged, c) = till_journal(
        &dir,
        Day {
            forge_last: true,
            ..Day::sales(3, 3)
        },
    );
    register_till(&db, &north, a.id().0, "north 1", a.signing().public_key())
        .await
        .unwrap();
    register_till(&db, &south, b.id().0, "south 1", b.signing().public_key())
        .await
        .unwrap();
    register_till(&db, &south, c.id().0, "south 2", c.signing().public_key())
        .await
        .unwrap();
    // A till registered and never heard of again.
    let (_, d) = till_journal(&dir, Day::sales(4, 1));
    register_till(&db, &north, d.id().0, "north 2", d.signing().public_key())
        .await
        .unwrap();
    for (path, id) in [(&clean, &a), (&short, &b), (&forged, &c)] {
        let mut up = Uploader::open(
            path,
            id,
            HttpSink::plain_http(addr),
            UploaderConfig::default(),
        )
        .unwrap();
        up.ship().await.unwrap();
    }

    let get = |path: String, token: String| async move {
        let (status, body) = http(addr, "GET", &path, &token, "").await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let json = |body: String| -> Vec<Value> { serde_json::from_str(&body).unwrap() };
    let range = "from=2025-11-24&to=2025-11-25";

    // Totals per till and day: 20 + 5 + 2 approved sales of 13.50.
    let totals = json(get(format!("/v1/reports/totals?{range}"), admin.clone()).await);
    let mut by_till: Vec<(String, i64, i64)> = totals
        .iter()
        .map(|r| {
            (
                r["store"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
                r["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    // Tills are ordered by their (random) ids within a store.
    by_till.sort();
    assert_eq!(
        by_till,
        [
            ("north".into(), 20, 20 * 1350),
            ("south".into(), 2, 2 * 1350),
            ("south".into(), 5, 5 * 1350)
        ]
    );
    assert!(
        totals
            .iter()
            .all(|r| r["day"] == "2025-11-24" && r["kind"] == "sale")
    );

    // Settlements: north matches; south's terminal 2 claims 6 against 5; terminal 3 claims 3
    // against the 2 the back office holds.
    let settlements = json(get(format!("/v1/reports/settlements?{range}"), admin.clone()).await);
    let verdicts: Vec<(String, i64, i64, bool)> = settlements
        .iter()
        .map(|r| {
            (
                r["terminal"].as_str().unwrap()[..2].to_owned(),
                r["terminal_count"].as_i64().unwrap(),
                r["journal_count"].as_i64().unwrap(),
                r["matches"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("01".into(), 20, 20, true),
            ("02".into(), 6, 5, false),
            ("03".into(), 3, 2, false)
        ]
    );

    // The forged payment is "sent" in the back office: in doubt, and an hour old by now.
    let in_doubt = json(get("/v1/reports/in-doubt".into(), admin.clone()).await);
    assert_eq!(in_doubt.len(), 1, "{in_doubt:?}");
    assert_eq!(in_doubt[0]["till"], hex(&c.id().0));
    assert_eq!(in_doubt[0]["state"], "sent");
    let fresh = json(
        get(
            "/v1/reports/in-doubt?older_than_minutes=999999999".into(),
            admin.clone(),
        )
        .await,
    );
    assert!(fresh.is_empty(), "a limit beyond its age hides it");

    // One transaction id under two entries of north's till.
    let duplicates = json(get("/v1/reports/duplicates".into(), admin.clone()).await);
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert_eq!(duplicates[0]["entries"], 2);
    assert!(
        duplicates[0]["where"]
            .as_str()
            .unwrap()
            .starts_with("north/")
    );

    // The till that never uploaded.
    let silent = json(get("/v1/reports/silent-tills".into(), admin.clone()).await);
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0]["till_name"], "north 2");
    assert_eq!(silent[0]["last_upload_ms"], Value::Null);

    // A store sees itself only.
    let south_totals = json(get(format!("/v1/reports/totals?{range}"), south.clone()).await);
    assert_eq!(south_totals.len(), 2);
    assert!(south_totals.iter().all(|r| r["store"] == "south"));
    assert!(json(get("/v1/reports/duplicates".into(), south.clone()).await).is_empty());
    let north_settlements =
        json(get(format!("/v1/reports/settlements?{range}"), north.clone()).await);
    assert_eq!(north_settlements.len(), 1);

    // CSV for a spreadsheet.
    let csv = get(
        format!("/v1/reports/settlements?{range}&format=csv"),
        admin.clone(),
    )
    .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "store,terminal,batch,closed_ms,kind,currency,terminal_count,terminal_amount_minor,journal_count,journal_amount_minor,matches"
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[2].ends_with(",6,8100,5,6750,false"), "{}", lines[2]);

    // The pages: the chain's day with south's mismatches highlighted, sales per hour.
    let basic = |token: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("head office:{token}"))
    };
    let page = |path: &str, token: &str| {
        let (path, auth) = (path.to_owned(), basic(token));
        async move { support::http_with(addr, "GET", &path, &format!("Basic {auth}"), "").await }
    };
    let (status, html) = page("/?day=2025-11-24", &admin).await;
    assert_eq!(status, 200, "{html}");
    let row = |store: &str| {
        let start = html.find(&format!("data-store=\"{store}\"")).unwrap();
        let end = html[start..].find("</tr>").unwrap() + start;
        let open = html[..start].rfind("<tr").unwrap();
        html[open..end].to_owned()
    };
    assert!(row("north").contains("class=\"ok\""), "{}", row("north"));
    assert!(row("north").contains("270.00 EUR"), "{}", row("north"));
    assert!(
        row("south").contains("class=\"mismatch\""),
        "{}",
        row("south")
    );
    assert!(row("south").contains("94.50 EUR"), "{}", row("south"));
    assert!(
        html.contains("data-hour=\"16\" data-sales=\"27\""),
        "the 16:00 bar"
    );
    let (status, html) = page("/stores/south?day=2025-11-24", &south).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        html.matches("class=\"mismatch\"").count(),
        3,
        "a till in doubt and two settlements: {html}"
    );
    let (status, _) = page("/stores/south", &north).await;
    assert_eq!(status, 403, "another store's page");
    let (status, html) = page(&format!("/tills/{}?day=2025-11-24", hex(&c.id().0)), &south).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(">sent<"), "{html}");
    let (status, _) = http(addr, "GET", "/", "", "").await;
    assert_eq!(status, 401);
    let (status, _) = page("/", "pba_wrong").await;
    assert_eq!(status, 401);

    // The same pages in a real browser.
    browser(&format!("http://{addr}"), &admin).await;

    // Refusals, each typed.
    for (path, token, status) in [
        ("/v1/reports/totals", "pbs_nobody", 401),
        ("/v1/reports/nothing", admin.as_str(), 404),
        ("/v1/reports/totals?from=2025-13-01", admin.as_str(), 400),
        (
            "/v1/reports/in-doubt?older_than_minutes=soon",
            admin.as_str(),
            400,
        ),
        ("/v1/reports/totals?format=xml", admin.as_str(), 400),
    ] {
        let (got, body) = http(addr, "GET", path, token, "").await;
        assert_eq!(got, status, "{path}: {body}");
    }
}

/// Runs `tests/browser/pages.cjs` (playwright-core driving headless chromium) against the
/// service; its screenshots are kept in `target/backoffice-pages/`. Skipped with the reason when
/// node, playwright-core or chromium is missing, except under `CI=true`.
async fn browser(url: &str, token: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let modules = target.join("npm/node_modules");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        Some("node is not installed".to_owned())
    } else if !modules.join("playwright-core/package.json").is_file() {
        Some(format!(
            "playwright-core is not in {} (npm install --prefix target/npm playwright-core)",
            modules.display()
        ))
    } else if !std::path::Path::new(&chromium).is_file() {
        Some(format!("{chromium} is missing (apt-get install chromium)"))
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the browser test is required under CI: {why}"
        );
        println!("browser check skipped: {why}");
        return;
    }
    let shots = target.join("backoffice-pages");
    std::fs::create_dir_all(&shots).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/pages.cjs");
    let (url, token) = (url.to_owned(), token.to_owned());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args([&url, &token])
            .arg(&shots)
            .env("NODE_PATH", &modules)
            .env("CHROMIUM", &chromium)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "the browser check failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
