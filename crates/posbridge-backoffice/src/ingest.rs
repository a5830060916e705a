//! Taking a till's upload: who sent it, whether its records hold what they claim, and into
//! PostgreSQL once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge_crypto::{SignatureError, Verifier};
use posbridge_journal::{OutboxItem, OutboxRecord};
use posbridge_sync::{Ack, Upload, hex};
use posbridge_wire::{Message, Outcome, PublicKey, TransactionKind};
use sha2::{Digest, Sha256};

use crate::{BackofficeError, Db};

const DAY_MS: u64 = 86_400_000;

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn kind_name(k: TransactionKind) -> String {
    posbridge_wire::snake_name(&k)
}

fn outcome_name(o: Outcome) -> String {
    posbridge_wire::snake_name(&o)
}

/// An entry change that checked out, as stored.
struct Row {
    seq: i64,
    day: i32,
    entry_key: Vec<u8>,
    terminal: Vec<u8>,
    state: String,
    kind: String,
    amount: Option<i64>,
    currency: Option<String>,
    outcome: Option<String>,
    approved: Option<i64>,
    tip: Option<i64>,
    cashback: Option<i64>,
    transaction_id: Option<Vec<u8>>,
    result_time: Option<SystemTime>,
    signed: bool,
    created: SystemTime,
    updated: SystemTime,
    request: Vec<u8>,
    result: Option<Vec<u8>>,
    terminal_key: Option<Vec<u8>>,
    note: Option<String>,
}

/// A settlement that checked out.
struct SettlementRow {
    seq: i64,
    key: Vec<u8>,
    terminal: Vec<u8>,
    batch: i64,
    opened: Option<SystemTime>,
    closed: SystemTime,
    accepted: bool,
    totals: String,
    signed: bool,
    result: Vec<u8>,
    terminal_key: Option<Vec<u8>>,
    recorded: SystemTime,
}

enum Checked {
    Entry(Box<Row>),
    Settlement(Box<SettlementRow>),
    Quarantine { seq: i64, reason: String },
}

fn key32(k: &Option<Vec<u8>>) -> Result<Option<PublicKey>, String> {
    k.as_ref()
        .map(|k| {
            <[u8; 32]>::try_from(k.as_slice())
                .map(PublicKey)
                .map_err(|_| "the terminal key is not 32 bytes".to_string())
        })
        .transpose()
}

/// A signature is required where the journal kept the terminal's key (the native protocol
/// signs every result); protocols without signatures (ZVT, nexo) journal no key.
fn signature_check(r: Result<(), SignatureError>, key: Option<PublicKey>) -> Result<bool, String> {
    match (key, r) {
        (None, _) => Ok(false),
        (Some(_), Ok(())) => Ok(true),
        (Some(_), Err(e)) => Err(format!("the terminal's signature: {e}")),
    }
}

fn check(record: &OutboxRecord) -> Checked {
    let seq = record.seq as i64;
    let quarantine = |reason: String| Checked::Quarantine { seq, reason };
    match &record.item {
        OutboxItem::Entry {
            key,
            terminal,
            state,
            request,
            result,
            terminal_key,
            note,
            created,
            updated,
        } => {
            let Ok(Message::Transaction(req)) = Message::decode(request) else {
                return quarantine("the request cannot be read".into());
            };
            if req.idempotency_key.as_bytes().as_slice() != key.as_slice() {
                return quarantine("the request's key differs from the entry's".into());
            }
            if posbridge_journal::EntryState::parse(state).is_none() {
                return quarantine(format!("unknown state {state:?}"));
            }
            let tkey = match key32(terminal_key) {
                Ok(k) => k,
                Err(e) => return quarantine(e),
            };
            let amount = req.command.amount();
            let mut row = Row {
                seq,
                day: (created / DAY_MS) as i32,
                entry_key: key.clone(),
                terminal: terminal.clone(),
                state: state.clone(),
                kind: kind_name(req.command.kind()),
                amount: amount.map(|a| a.minor as i64),
                currency: amount.map(|a| currency_name(a.currency)),
                outcome: None,
                approved: None,
                tip: None,
                cashback: None,
                transaction_id: None,
                result_time: None,
                signed: false,
                created: time(*created),
                updated: time(*updated),
                request: request.clone(),
                result: result.clone(),
                terminal_key: terminal_key.clone(),
                note: note.clone(),
            };
            if let Some(bytes) = result {
                let Ok(Message::TransactionResult(res)) = Message::decode(bytes) else {
                    return quarantine("the result cannot be read".into());
                };
                if res.idempotency_key != req.idempotency_key {
                    return quarantine("the result's key differs from the request's".into());
                }
                let verified = tkey.map(|k| Verifier::new(&k).and_then(|v| v.verify_result(&res)));
                row.signed = match signature_check(verified.unwrap_or(Ok(())), tkey) {
                    Ok(s) => s,
                    Err(e) => return quarantine(e),
                };
                row.outcome = Some(outcome_name(res.outcome));
                row.approved = Some(res.approved_minor as i64);
                row.tip = res.tip.map(|t| t as i64);
                row.cashback = res.cashback.map(|c| c as i64);
                row.transaction_id = Some(res.transaction_id.as_bytes().to_vec());
                row.result_time = Some(time(res.time.0));
            }
            Checked::Entry(Box::new(row))
        }
        OutboxItem::Settlement {
            key,
            terminal,
            result,
            terminal_key,
            recorded,
        } => {
            let Ok(Message::SettlementResult(s)) = Message::decode(result) else {
                return quarantine("the settlement cannot be read".into());
            };
            if s.idempotency_key.as_bytes().as_slice() != key.as_slice()
                || s.terminal_id.as_bytes().as_slice() != terminal.as_slice()
            {
                return quarantine(
                    "the settlement's key or terminal differs from its record's".into(),
                );
            }
            let tkey = match key32(terminal_key) {
                Ok(k) => k,
                Err(e) => return quarantine(e),
            };
            let verified = tkey.map(|k| Verifier::new(&k).and_then(|v| v.verify_settlement(&s)));
            let signed = match signature_check(verified.unwrap_or(Ok(())), tkey) {
                Ok(x) => x,
                Err(e) => return quarantine(e),
            };
            let totals: Vec<serde_json::Value> = s
                .totals
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "kind": kind_name(t.kind),
                        "currency": currency_name(t.currency),
                        "count": t.count,
                        "amount_minor": t.amount,
                    })
                })
                .collect();
            Checked::Settlement(Box::new(SettlementRow {
                seq,
                key: key.clone(),
                terminal: terminal.clone(),
                batch: i64::from(s.batch_number),
                opened: s.opened.map(|t| time(t.0)),
                closed: time(s.closed.0),
                accepted: s.status.is_ok(),
                totals: serde_json::Value::Array(totals).to_string(),
                signed,
                result: result.clone(),
                terminal_key: terminal_key.clone(),
                recorded: time(*recorded),
            }))
        }
    }
}

pub(crate) fn currency_name(c: posbridge_wire::Currency) -> String {
    posbridge_api::money::alpha_code(c).map_or_else(|| c.code().to_string(), str::to_owned)
}

/// The JSON of one record, for the quarantine (kept exactly as received, bytes in base64).
fn record_json(till: [u8; 16], journal: [u8; 16], record: &OutboxRecord) -> String {
    let one = Upload {
        till,
        journal,
        records: vec![record.clone()],
    }
    .to_json();
    let v: serde_json::Value = serde_json::from_slice(&one).expect("our own JSON");
    v["records"][0].to_string()
}

/// Stores an upload whose signature was checked: every record once, a record that is damaged
/// or whose terminal signature does not verify in quarantine. All or nothing.
pub(crate) async fn store(db: &Db, upload: &Upload) -> Result<Ack, BackofficeError> {
    let last = upload.records.last().map_or(0, |r| r.seq);
    let mut entries = Vec::new();
    let mut settlements = Vec::new();
    let mut quarantined = Vec::new();
    for r in &upload.records {
        match check(r) {
            Checked::Entry(row) => entries.push(*row),
            Checked::Settlement(s) => settlements.push(*s),
            Checked::Quarantine { seq, reason } => {
                quarantined.push((seq, reason, record_json(upload.till, upload.journal, r)));
            }
        }
    }
    let mut days: Vec<i32> = entries.iter().map(|e| e.day).collect();
    days.sort_unstable();
    days.dedup();
    let mut conn = db.get().await?;
    crate::schema::ensure_partitions(&mut conn, &days).await?;
    let till = upload.till.to_vec();
    let journal = upload.journal.to_vec();
    let tx = conn.transaction().await?;
    let mut accepted = 0u64;
    if !entries.is_empty() {
        let seq: Vec<i64> = entries.iter().map(|r| r.seq).collect();
        let day: Vec<i32> = entries.iter().map(|r| r.day).collect();
        let entry_key: Vec<Vec<u8>> = entries.iter().map(|r| r.entry_key.clone()).collect();
        let terminal: Vec<Vec<u8>> = entries.iter().map(|r| r.terminal.clone()).collect();
        let state: Vec<String> = entries.iter().map(|r| r.state.clone()).collect();
        let kind: Vec<String> = entries.iter().map(|r| r.kind.clone()).collect();
        let amount: Vec<Option<i64>> = entries.iter().map(|r| r.amount).collect();
        let currency: Vec<Option<String>> = entries.iter().map(|r| r.currency.clone()).collect();
        let outcome: Vec<Option<String>> = entries.iter().map(|r| r.outcome.clone()).collect();
        let approved: Vec<Option<i64>> = entries.iter().map(|r| r.approved).collect();
        let tip: Vec<Option<i64>> = entries.iter().map(|r| r.tip).collect();
        let cashback: Vec<Option<i64>> = entries.iter().map(|r| r.cashback).collect();
        let transaction_id: Vec<Option<Vec<u8>>> =
            entries.iter().map(|r| r.transaction_id.clone()).collect();
        let result_time: Vec<Option<SystemTime>> = entries.iter().map(|r| r.result_time).collect();
        let signed: Vec<bool> = entries.iter().map(|r| r.signed).collect();
        let created: Vec<SystemTime> = entries.iter().map(|r| r.created).collect();
        let updated: Vec<SystemTime> = entries.iter().map(|r| r.updated).collect();
        let request: Vec<Vec<u8>> = entries.iter().map(|r| r.request.clone()).collect();
        let result: Vec<Option<Vec<u8>>> = entries.iter().map(|r| r.result.clone()).collect();
        let terminal_key: Vec<Option<Vec<u8>>> =
            entries.iter().map(|r| r.terminal_key.clone()).collect();
        let note: Vec<Option<String>> = entries.iter().map(|r| r.note.clone()).collect();
        accepted = tx
            .execute(
                "INSERT INTO changes (till, journal, seq, day, entry_key, terminal, state, kind,
                    amount_minor, currency, outcome, approved_minor, tip_minor, cashback_minor,
                    transaction_id, result_time, signed, created, updated, request, result,
                    terminal_key, note)
                 SELECT $1, $2, u.seq, DATE '1970-01-01' + u.day, u.entry_key, u.terminal,
                    u.state, u.kind, u.amount, u.currency, u.outcome, u.approved, u.tip,
                    u.cashback, u.transaction_id, u.result_time, u.signed, u.created, u.updated,
                    u.request, u.result, u.terminal_key, u.note
                 FROM unnest($3::bigint[], $4::int[], $5::bytea[], $6::bytea[], $7::text[],
                    $8::text[], $9::bigint[], $10::text[], $11::text[], $12::bigint[],
                    $13::bigint[], $14::bigint[], $15::bytea[], $16::timestamptz[], $17::bool[],
                    $18::timestamptz[], $19::timestamptz[], $20::bytea[], $21::bytea[],
                    $22::bytea[], $23::text[])
                    AS u(seq, day, entry_key, terminal, state, kind, amount, currency, outcome,
                    approved, tip, cashback, transaction_id, result_time, signed, created,
                    updated, request, result, terminal_key, note)
                 ON CONFLICT DO NOTHING",
                &[
                    &till,
                    &journal,
                    &seq,
                    &day,
                    &entry_key,
                    &terminal,
                    &state,
                    &kind,
                    &amount,
                    &currency,
                    &outcome,
                    &approved,
                    &tip,
                    &cashback,
                    &transaction_id,
                    &result_time,
                    &signed,
                    &created,
                    &updated,
                    &request,
                    &result,
                    &terminal_key,
                    &note,
                ],
            )
            .await?;
    }
    for s in &settlements {
        accepted += tx
            .execute(
                "INSERT INTO settlements (till, journal, seq, key, terminal, batch_number, opened,
                    closed, accepted, totals, signed, result, terminal_key, recorded)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11, $12, $13,
                    $14)
                 ON CONFLICT DO NOTHING",
                &[
                    &till,
                    &journal,
                    &s.seq,
                    &s.key,
                    &s.terminal,
                    &s.batch,
                    &s.opened,
                    &s.closed,
                    &s.accepted,
                    &s.totals,
                    &s.signed,
                    &s.result,
                    &s.terminal_key,
                    &s.recorded,
                ],
            )
            .await?;
    }
    let mut stored_quarantine = 0;
    for (seq, reason, json) in &quarantined {
        stored_quarantine += tx
            .execute(
                "INSERT INTO quarantine (till, journal, seq, reason, record)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb) ON CONFLICT DO NOTHING",
                &[&till, &journal, seq, reason, json],
            )
            .await?;
    }
    tx.execute(
        "UPDATE tills SET last_upload = now() WHERE id = $1",
        &[&till],
    )
    .await?;
    tx.commit().await?;
    let total = upload.records.len() as u64;
    Ok(Ack {
        committed_through: last,
        accepted,
        duplicates: total - accepted - stored_quarantine,
        quarantined: stored_quarantine,
    })
}

/// The SHA-256 of a store's token, as kept.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token(prefix: &str) -> Result<String, BackofficeError> {
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| BackofficeError::Config(e.to_string()))?;
    Ok(format!("{prefix}_{}", hex(&secret)))
}

/// Adds an administrator of the whole chain (reports and pages of every store) and returns
/// their token (shown once; only its hash is kept).
pub async fn add_admin(db: &Db, name: &str) -> Result<String, BackofficeError> {
    let token = new_token("pba")?;
    db.get()
        .await?
        .execute(
            "INSERT INTO admin_tokens (token_sha256, name) VALUES ($1, $2)",
            &[&token_hash(&token), &name],
        )
        .await?;
    Ok(token)
}

/// Adds a store and returns its token (shown once; only its hash is kept).
pub async fn add_store(db: &Db, id: &str, name: &str) -> Result<String, BackofficeError> {
    let token = new_token("pbs")?;
    let conn = db.get().await?;
    let n = conn
        .execute(
            "INSERT INTO stores (id, name, token_sha256) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
            &[&id, &name, &token_hash(&token)],
        )
        .await?;
    if n == 0 {
        return Err(BackofficeError::Conflict(format!("store {id:?} exists")));
    }
    Ok(token)
}

/// Registers a till under the store whose `token` is given. The same till with the same key
/// again changes nothing; a till of another store, or with another key, is refused.
pub async fn register_till(
    db: &Db,
    token: &str,
    till: [u8; 16],
    name: &str,
    public_key: PublicKey,
) -> Result<String, BackofficeError> {
    let conn = db.get().await?;
    let store: String = conn
        .query_opt(
            "SELECT id FROM stores WHERE token_sha256 = $1",
            &[&token_hash(token)],
        )
        .await?
        .ok_or(BackofficeError::Unauthorized(
            "no store has this token".into(),
        ))?
        .get(0);
    let inserted = conn
        .execute(
            "INSERT INTO tills (id, store, name, public_key) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&till.to_vec(), &store, &name, &public_key.0.to_vec()],
        )
        .await?;
    if inserted == 0 {
        let row = conn
            .query_one(
                "SELECT store, public_key FROM tills WHERE id = $1",
                &[&till.to_vec()],
            )
            .await?;
        let (owner, key): (String, Vec<u8>) = (row.get(0), row.get(1));
        if owner != store {
            return Err(BackofficeError::Forbidden(format!(
                "till {} belongs to another store",
                hex(&till)
            )));
        }
        if key != public_key.0 {
            return Err(BackofficeError::Conflict(format!(
                "till {} is registered with another key",
                hex(&till)
            )));
        }
    }
    Ok(store)
}

/// The till's public key, if it is registered.
pub(crate) async fn till_key(
    db: &Db,
    till: [u8; 16],
) -> Result<Option<PublicKey>, BackofficeError> {
    let conn = db.get().await?;
    Ok(conn
        .query_opt(
            "SELECT public_key FROM tills WHERE id = $1",
            &[&till.to_vec()],
        )
        .await?
        .and_then(|r| <[u8; 32]>::try_from(r.get::<_, Vec<u8>>(0)).ok())
        .map(PublicKey))
}
