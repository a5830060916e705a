//! The HTTP(S) service, on posbridge-tcp's HTTP (hyper 1 over rustls). Stateless: every request
//! reads and writes PostgreSQL only, so several instances serve side by side.

use std::sync::Arc;
use std::time::Duration;

use posbridge_sync::{SIGNATURE_HEADER, TILL_HEADER, UPLOAD_PATH, Upload};
use posbridge_tcp::TlsServerConfig;
use posbridge_tcp::http::{HttpRequest, HttpResponse, Method};
use posbridge_wire::PublicKey;
use tokio::net::TcpListener;

use crate::{BackofficeError, Db, ingest, reports};

/// The largest upload taken (a batch of 500 changes is about 400 KB).
pub const MAX_UPLOAD: usize = 8 << 20;

/// The path tills are registered on (by their store, with its token).
pub const TILLS_PATH: &str = "/v1/tills";

/// Reports are at `/v1/reports/<name>`: `totals`, `settlements`, `in-doubt`, `duplicates`,
/// `silent-tills`.
pub const REPORTS_PATH: &str = "/v1/reports/";

fn bearer(request: &HttpRequest) -> Result<&str, BackofficeError> {
    header(request, "authorization")?
        .strip_prefix("Bearer ")
        .ok_or_else(|| BackofficeError::Unauthorized("Authorization: Bearer <token>".into()))
}

fn today() -> i32 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)) as i32
}

fn minutes(request: &HttpRequest, name: &str, default: u64) -> Result<Duration, BackofficeError> {
    match request.param(name) {
        None => Ok(Duration::from_secs(default * 60)),
        Some(v) => v
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|_| BackofficeError::BadRequest(format!("{name}: minutes, a whole number"))),
    }
}

async fn report(db: &Db, request: &HttpRequest) -> Result<HttpResponse, BackofficeError> {
    let scope = reports::scope_of(db, bearer(request)?).await?;
    // `to` is exclusive; by default the last seven days up to and including today.
    let to = match request.param("to") {
        Some(d) => reports::parse_day(&d)?,
        None => today() + 1,
    };
    let from = match request.param("from") {
        Some(d) => reports::parse_day(&d)?,
        None => to - 7,
    };
    let name = &request.path[REPORTS_PATH.len()..];
    let report = match name {
        "totals" => reports::totals(db, &scope, from, to).await?,
        "settlements" => reports::settlements(db, &scope, from, to).await?,
        "in-doubt" => {
            reports::in_doubt(db, &scope, minutes(request, "older_than_minutes", 60)?).await?
        }
        "duplicates" => reports::duplicate_transactions(db, &scope).await?,
        "silent-tills" => {
            reports::silent_tills(db, &scope, minutes(request, "quiet_minutes", 60)?).await?
        }
        other => {
            return Ok(HttpResponse::text(
                404,
                format!(
                    "no report {other:?}: totals, settlements, in-doubt, duplicates, silent-tills"
                ),
            ));
        }
    };
    Ok(match request.param("format").as_deref() {
        Some("csv") => {
            HttpResponse::new(200, "text/csv; charset=utf-8", report.to_csv().into_bytes())
        }
        None | Some("json") => HttpResponse::json(200, report.to_json().into_bytes()),
        Some(other) => {
            return Err(BackofficeError::BadRequest(format!(
                "format {other:?}: csv or json"
            )));
        }
    })
}

/// Serves the back office on `listener` (TLS when `tls` is given) until the listener fails.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsServerConfig>,
    db: Db,
) -> std::io::Result<()> {
    let db = Arc::new(db);
    posbridge_tcp::http::serve(listener, tls, MAX_UPLOAD, move |request| {
        let db = db.clone();
        async move { route(&db, request).await }
    })
    .await
}

pub(crate) fn failure(e: &BackofficeError) -> HttpResponse {
    let status = match e {
        BackofficeError::BadRequest(_) => 400,
        BackofficeError::Unauthorized(_) => 401,
        BackofficeError::Forbidden(_) => 403,
        BackofficeError::Conflict(_) => 409,
        // The database is down or failing over: the uploader tries again.
        _ => 503,
    };
    if status == 503 {
        tracing::warn!(error = %e, "request failed");
    }
    HttpResponse::text(status, e.to_string())
}

async fn route(db: &Db, request: HttpRequest) -> HttpResponse {
    let outcome = match (&request.method, request.path.as_str()) {
        (&Method::POST, UPLOAD_PATH) => upload(db, request).await,
        (&Method::POST, TILLS_PATH) => register(db, &request).await,
        (&Method::GET, path) if path.starts_with(REPORTS_PATH) => report(db, &request).await,
        (&Method::GET, path)
            if path == "/" || path.starts_with("/stores/") || path.starts_with("/tills/") =>
        {
            crate::pages::serve(db, &request).await
        }
        (&Method::GET, "/healthz") => match db.get().await {
            Ok(c) => match c.query_one("SELECT 1", &[]).await {
                Ok(_) => Ok(HttpResponse::text(200, "ok")),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        },
        _ => Ok(HttpResponse::text(404, format!("no {} here", request.path))),
    };
    outcome.unwrap_or_else(|e| failure(&e))
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Result<&'a str, BackofficeError> {
    request
        .header(name)
        .ok_or_else(|| BackofficeError::BadRequest(format!("header {name} is missing")))
}

async fn upload(db: &Db, mut request: HttpRequest) -> Result<HttpResponse, BackofficeError> {
    let till = posbridge_sync::till_of(header(&request, TILL_HEADER)?)
        .map_err(|e| BackofficeError::BadRequest(e.to_string()))?;
    let signature = header(&request, SIGNATURE_HEADER)?.to_owned();
    let body = Arc::new(std::mem::take(&mut request.body));
    // Reading the body (hundreds of kilobytes of JSON) overlaps looking up the till's key and
    // checking the upload's signature; both run off the runtime's threads. Nothing read is used
    // before the signature checked out.
    let parsing = {
        let body = body.clone();
        tokio::task::spawn_blocking(move || Upload::from_json(&body))
    };
    let key = ingest::till_key(db, till).await?.ok_or_else(|| {
        BackofficeError::Forbidden(format!(
            "till {} is not registered: its store registers it first",
            posbridge_sync::hex(&till)
        ))
    })?;
    tokio::task::spawn_blocking(move || posbridge_sync::verify(&key, &body, &signature))
        .await
        .expect("verifying does not panic")
        .map_err(|e| BackofficeError::Unauthorized(e.to_string()))?;
    let upload = parsing
        .await
        .expect("reading JSON does not panic")
        .map_err(|e| BackofficeError::BadRequest(e.to_string()))?;
    if upload.till != till {
        return Err(BackofficeError::Forbidden(
            "the upload names another till than its header".into(),
        ));
    }
    if upload.records.is_empty() {
        return Err(BackofficeError::BadRequest(
            "an upload without records".into(),
        ));
    }
    let ack = ingest::store(db, upload).await?;
    Ok(HttpResponse::json(200, ack.to_json()))
}

async fn register(db: &Db, request: &HttpRequest) -> Result<HttpResponse, BackofficeError> {
    let token = bearer(request)?.to_owned();
    let v: serde_json::Value = serde_json::from_slice(&request.body)
        .map_err(|e| BackofficeError::BadRequest(format!("not JSON: {e}")))?;
    let field = |name: &str| {
        v.get(name)
            .and_then(|x| x.as_str())
            .ok_or_else(|| BackofficeError::BadRequest(format!("{name}: a string is required")))
    };
    let till = posbridge_sync::till_of(field("till")?)
        .map_err(|_| BackofficeError::BadRequest("till: 32 hex digits".into()))?;
    let key: [u8; 32] = posbridge_sync::unhex(field("public_key")?)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| BackofficeError::BadRequest("public_key: 64 hex digits".into()))?;
    let name = field("name")?;
    let store = ingest::register_till(db, &token, till, name, PublicKey(key)).await?;
    Ok(HttpResponse::json(
        200,
        serde_json::json!({ "till": posbridge_sync::hex(&till), "store": store })
            .to_string()
            .into_bytes(),
    ))
}
