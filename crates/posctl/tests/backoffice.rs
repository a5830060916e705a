//! `posctl backoffice`: reports from a real back office on a real PostgreSQL, the token from
//! the environment or a private file, refusals with posctl's exit codes.

use std::process::Command;

use posbridge_backoffice::testing::PgCluster;
use posbridge_backoffice::{Db, add_admin, add_store, register_till, schema, server};
use posbridge_crypto::{LocalIdentity, PeerId};

fn posctl(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_posctl"));
    cmd.args(args).env_remove("POSBRIDGE_BACKOFFICE_TOKEN");
    if let Some(t) = token {
        cmd.env("POSBRIDGE_BACKOFFICE_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_as_csv_and_json_with_the_token_kept_off_the_command_line() {
    let Some(pg) = PgCluster::start_or_skip() else {
        return;
    };
    let db = Db::new(&pg.create_database("posctl").await.unwrap(), 2).unwrap();
    schema::migrate(&mut db.get().await.unwrap()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server::serve(listener, None, db.clone()));
    let admin = add_admin(&db, "head office").await.unwrap();
    let store = add_store(&db, "east", "East").await.unwrap();
    let till = LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap();
    register_till(
        &db,
        &store,
        till.id().0,
        "east 1",
        till.signing().public_key(),
    )
    .await
    .unwrap();

    let run = |args: Vec<String>, token: Option<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            posctl(&args, token.as_deref())
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        ["backoffice", "silent-tills", "--backoffice", &addr]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    let (code, out, err) = run(args(&["--csv"]), Some(admin.clone())).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "store,till,till_name,last_upload_ms");
    assert!(
        lines[1].starts_with("east,") && lines[1].contains(",east 1,"),
        "{out}"
    );

    // JSON by default; the store's own token sees its own till.
    let (code, out, err) = run(args(&[]), Some(store.clone())).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["till_name"], "east 1");

    // The token from a private file.
    let file = pg.dir().join("token");
    std::fs::write(&file, format!("{admin}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = file.display().to_string();
    let (code, _, err) = run(args(&["--token-file", &path]), None).await.unwrap();
    assert_eq!(code, 0, "{err}");

    // No token: a usage error; a wrong one: refused; an unknown report: a usage error.
    let (code, _, err) = run(args(&[]), None).await.unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("POSBRIDGE_BACKOFFICE_TOKEN"), "{err}");
    let (code, _, err) = run(args(&[]), Some("pba_wrong".into())).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    let mut unknown = args(&[]);
    unknown[1] = "nothing".into();
    let (code, _, err) = run(unknown, Some(admin.clone())).await.unwrap();
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(args(&["--from", "1 OR 1"]), Some(admin)).await.unwrap();
    assert_eq!(code, 2, "{err}");
}
