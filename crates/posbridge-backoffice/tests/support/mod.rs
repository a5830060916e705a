//! Till journals for the back office's tests, and a small HTTP client.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use posbridge_backoffice::Db;
use posbridge_crypto::{LocalIdentity, PeerId, SigningIdentity};
use posbridge_journal::{Journal, SqliteJournal};
use posbridge_wire::{
    Currency, IdempotencyKey, RequestId, SettlementResult, TerminalId, Timestamp, Totals,
    TransactionId, TransactionKind, TransactionRequest, TransactionResult, samples,
};

/// When the sales are made (2025-11-24T16:00Z, the samples' time).
pub const T0: u64 = 1_764_000_000_000;

/// How a till's journal is made.
#[derive(Clone, Copy, Debug)]
pub struct Day {
    /// The terminal's id is 16 times this byte.
    pub terminal: u8,
    /// Sales, each 12.50 EUR with a 1.00 tip, approved and signed.
    pub sales: u128,
    /// The last sale's result changed after the terminal signed it.
    pub forge_last: bool,
    /// The last two sales carry the same terminal transaction id.
    pub same_transaction_id: bool,
    /// What the settlement claims beyond the sales (0: it matches).
    pub settlement_extra: u32,
}

impl Day {
    pub fn sales(terminal: u8, sales: u128) -> Self {
        Self {
            terminal,
            sales,
            forge_last: false,
            same_transaction_id: false,
            settlement_extra: 0,
        }
    }
}

fn sale(key: u128) -> TransactionRequest {
    let mut r = samples::sale_request();
    r.idempotency_key = IdempotencyKey::from_u128(key);
    r
}

fn approved(
    r: &TransactionRequest,
    terminal: TerminalId,
    signer: &SigningIdentity,
    tid: u128,
) -> TransactionResult {
    let mut x = samples::approved_result();
    x.idempotency_key = r.idempotency_key;
    x.terminal_id = terminal;
    x.transaction_id = TransactionId(tid.to_be_bytes());
    signer.sign_result(&mut x);
    x
}

/// A till's journal file for `day` under `dir`, and the till's identity.
pub fn till_journal(dir: &Path, day: Day) -> (PathBuf, LocalIdentity) {
    let signer = SigningIdentity::from_secret(&[day.terminal; 32]);
    let terminal = TerminalId([day.terminal; 16]);
    let identity = LocalIdentity::generate(PeerId::random().unwrap(), "till").unwrap();
    let path = dir.join(format!("till-{}.db", posbridge_sync::hex(&identity.id().0)));
    let mut j = SqliteJournal::open(&path).unwrap();
    let n = day.sales;
    for k in 1..=n {
        let r = sale(k);
        j.record_intent(
            terminal,
            &r,
            Some(signer.public_key()),
            Timestamp(T0 + k as u64),
        )
        .unwrap();
        j.mark_sent(&r.idempotency_key, Timestamp(T0 + 100 + k as u64))
            .unwrap();
        let tid = if day.same_transaction_id && k == n {
            (u128::from(day.terminal) << 64) | (k - 1)
        } else {
            (u128::from(day.terminal) << 64) | k
        };
        let mut result = approved(&r, terminal, &signer, tid);
        if day.forge_last && k == n {
            result.auth_code = Some("FORGED".into());
        }
        j.record_result(&result, Timestamp(T0 + 200 + k as u64))
            .unwrap();
    }
    let mut s = SettlementResult {
        request_id: RequestId::default(),
        idempotency_key: IdempotencyKey::from_u128(9_000 + u128::from(day.terminal)),
        terminal_id: terminal,
        batch_number: 1,
        status: Ok(()),
        opened: Some(Timestamp(T0)),
        closed: Timestamp(T0 + 900_000),
        totals: vec![Totals {
            kind: TransactionKind::Sale,
            currency: Currency::EUR,
            count: n as u32 + day.settlement_extra,
            amount: 1350 * (n as u64 + u64::from(day.settlement_extra)),
        }],
        receipt: None,
        signature: None,
    };
    signer.sign_settlement(&mut s);
    j.record_settlement(&s, Some(signer.public_key()), Timestamp(T0 + 900_001))
        .unwrap();
    (path, identity)
}

/// A request to the service: the status and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    http_with(addr, method, path, &format!("Bearer {token}"), body).await
}

/// A request to the service with this `Authorization`: the status and body.
pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    authorization: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// The till's registration body.
pub fn registration(id: &LocalIdentity, name: &str) -> String {
    format!(
        r#"{{"till":"{}","name":"{name}","public_key":"{}"}}"#,
        posbridge_sync::hex(&id.id().0),
        posbridge_sync::hex(&id.signing().public_key().0)
    )
}

/// One number from the database.
pub async fn count(db: &Db, sql: &str) -> i64 {
    db.get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}
