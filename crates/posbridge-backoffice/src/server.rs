//! The HTTP(S) service: hyper 1 over posbridge-tcp's rustls. Stateless: every request reads
//! and writes PostgreSQL only, so several instances serve side by side.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use posbridge_sync::{SIGNATURE_HEADER, TILL_HEADER, UPLOAD_PATH, Upload};
use posbridge_tcp::TlsServerConfig;
use posbridge_wire::PublicKey;
use tokio::net::TcpListener;

use crate::{BackofficeError, Db, ingest};

/// The largest upload taken (a batch of 500 changes is about 400 KB).
pub const MAX_UPLOAD: usize = 8 << 20;

/// The path tills are registered on (by their store, with its token).
pub const TILLS_PATH: &str = "/v1/tills";

/// Serves the back office on `listener` (TLS when `tls` is given) until the listener fails.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsServerConfig>,
    db: Db,
) -> std::io::Result<()> {
    let acceptor = match &tls {
        Some(t) => Some(t.acceptor().map_err(std::io::Error::other)?),
        None => None,
    };
    let db = Arc::new(db);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let db = db.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let db = db.clone();
                async move { Ok::<_, Infallible>(route(&db, request).await) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    reply(
        status,
        "text/plain; charset=utf-8",
        body.into().into_bytes(),
    )
}

fn failure(e: &BackofficeError) -> Response<Full<Bytes>> {
    let status = match e {
        BackofficeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        BackofficeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        BackofficeError::Forbidden(_) => StatusCode::FORBIDDEN,
        BackofficeError::Conflict(_) => StatusCode::CONFLICT,
        // The database is down or failing over: the uploader tries again.
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(error = %e, "request failed");
    }
    text(status, e.to_string())
}

async fn route(db: &Db, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let outcome = match (request.method(), path.as_str()) {
        (&Method::POST, UPLOAD_PATH) => upload(db, request).await,
        (&Method::POST, TILLS_PATH) => register(db, request).await,
        (&Method::GET, "/healthz") => match db.get().await {
            Ok(c) => match c.query_one("SELECT 1", &[]).await {
                Ok(_) => Ok(text(StatusCode::OK, "ok")),
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        },
        _ => Ok(text(StatusCode::NOT_FOUND, format!("no {path} here"))),
    };
    outcome.unwrap_or_else(|e| failure(&e))
}

async fn body(request: Request<Incoming>) -> Result<(hyper::HeaderMap, Bytes), BackofficeError> {
    let (parts, body) = request.into_parts();
    let bytes = Limited::new(body, MAX_UPLOAD)
        .collect()
        .await
        .map_err(|e| BackofficeError::BadRequest(format!("reading the body: {e}")))?
        .to_bytes();
    Ok((parts.headers, bytes))
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Result<&'a str, BackofficeError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| BackofficeError::BadRequest(format!("header {name} is missing")))
}

async fn upload(
    db: &Db,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BackofficeError> {
    let (headers, bytes) = body(request).await?;
    let till = posbridge_sync::till_of(header(&headers, TILL_HEADER)?)
        .map_err(|e| BackofficeError::BadRequest(e.to_string()))?;
    let key = ingest::till_key(db, till).await?.ok_or_else(|| {
        BackofficeError::Forbidden(format!(
            "till {} is not registered: its store registers it first",
            posbridge_sync::hex(&till)
        ))
    })?;
    posbridge_sync::verify(&key, &bytes, header(&headers, SIGNATURE_HEADER)?)
        .map_err(|e| BackofficeError::Unauthorized(e.to_string()))?;
    let upload =
        Upload::from_json(&bytes).map_err(|e| BackofficeError::BadRequest(e.to_string()))?;
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
    let ack = ingest::store(db, &upload).await?;
    Ok(reply(StatusCode::OK, "application/json", ack.to_json()))
}

async fn register(
    db: &Db,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, BackofficeError> {
    let (headers, bytes) = body(request).await?;
    let token = header(&headers, "authorization")?
        .strip_prefix("Bearer ")
        .ok_or_else(|| BackofficeError::Unauthorized("Authorization: Bearer <store token>".into()))?
        .to_owned();
    let v: serde_json::Value = serde_json::from_slice(&bytes)
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
    Ok(reply(
        StatusCode::OK,
        "application/json",
        serde_json::json!({ "till": posbridge_sync::hex(&till), "store": store })
            .to_string()
            .into_bytes(),
    ))
}
