//! Taking a till's upload: who sent it, whether its records hold what they claim, and into
//! PostgreSQL once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge_crypto::{SignatureError, Verifier};
use posbridge_journal::{OutboxItem, OutboxRecord};
use posbridge_sync::{Ack, Upload, hex};
use posbridge_wire::{Message, Outcome, PublicKey, TransactionKind};
use sha2::{Digest, Sha256};

use tokio_postgres::Statement;

use crate::db::Conn;
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

/// Terminal keys decoded once per batch of records (a decoding costs about a tenth of a
/// verification, and one terminal signs most of a till's records).
#[derive(Default)]
struct Verifiers(HashMap<[u8; 32], Result<Verifier, SignatureError>>);

impl Verifiers {
    fn get(&mut self, key: PublicKey) -> Result<&Verifier, SignatureError> {
        self.0
            .entry(key.0)
            .or_insert_with(|| Verifier::new(&key))
            .as_ref()
            .map_err(|e| *e)
    }
}

fn check(record: &OutboxRecord, verifiers: &mut Verifiers) -> Checked {
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
                let verified = tkey.map(|k| verifiers.get(k).and_then(|v| v.verify_result(&res)));
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
            let verified = tkey.map(|k| verifiers.get(k).and_then(|v| v.verify_settlement(&s)));
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

/// Whether checking `record` verifies a signature (the costly part of an upload).
fn signed(record: &OutboxRecord) -> bool {
    match &record.item {
        OutboxItem::Entry { result, .. } => result.is_some(),
        OutboxItem::Settlement { .. } => true,
    }
}

/// The records of an upload sorted by cost: those checked at once, and those whose terminal
/// signatures are being verified on blocking threads meanwhile, arriving in small batches so
/// that PostgreSQL inserts the first while the next are verified.
struct Checks {
    upload: Arc<Upload>,
    /// Checked at once, then the batches of signed records received so far.
    done: Vec<Sorted>,
    /// The signed records' batches still to come.
    coming: tokio::sync::mpsc::UnboundedReceiver<Vec<(usize, Checked)>>,
}

/// Checked records by what becomes of them.
#[derive(Default)]
struct Sorted {
    entries: Vec<Row>,
    settlements: Vec<SettlementRow>,
    quarantined: Vec<(i64, String, String)>,
}

impl Sorted {
    fn add(&mut self, upload: &Upload, record: &OutboxRecord, checked: Checked) {
        match checked {
            Checked::Entry(row) => self.entries.push(*row),
            Checked::Settlement(s) => self.settlements.push(*s),
            Checked::Quarantine { seq, reason } => {
                let json = record_json(upload.till, upload.journal, record);
                self.quarantined.push((seq, reason, json));
            }
        }
    }
}

impl Checks {
    /// Signed records verified per batch sent on.
    const BATCH: usize = 24;

    /// Starts verifying the signed records on blocking threads (one per core: a verification
    /// costs about 50 µs) and checks the others here.
    fn start(upload: Arc<Upload>) -> Self {
        let heavy: Vec<usize> = (0..upload.records.len())
            .filter(|&i| signed(&upload.records[i]))
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .clamp(1, heavy.len().div_ceil(Self::BATCH).max(1));
        let heavy: Arc<[usize]> = heavy.into();
        let (tx, coming) = tokio::sync::mpsc::unbounded_channel();
        for t in 0..threads {
            let (upload, heavy, tx) = (upload.clone(), heavy.clone(), tx.clone());
            // Thread t takes batches t, t + threads, …: the first batches are ready first.
            tokio::task::spawn_blocking(move || {
                let mut verifiers = Verifiers::default();
                for batch in heavy.chunks(Self::BATCH).skip(t).step_by(threads) {
                    let checked = batch
                        .iter()
                        .map(|&i| (i, check(&upload.records[i], &mut verifiers)))
                        .collect();
                    if tx.send(checked).is_err() {
                        return; // the upload failed meanwhile
                    }
                }
            });
        }
        let mut light = Sorted::default();
        let mut verifiers = Verifiers::default();
        for r in upload.records.iter().filter(|r| !signed(r)) {
            light.add(&upload, r, check(r, &mut verifiers));
        }
        Self {
            upload,
            done: vec![light],
            coming,
        }
    }

    /// Waits for the next batches of verified records (all that arrived, at least one) and
    /// keeps them; `false` once all have arrived.
    async fn next(&mut self) -> bool {
        let Some(first) = self.coming.recv().await else {
            return false;
        };
        let mut sorted = Sorted::default();
        let mut add = |batch: Vec<(usize, Checked)>| {
            for (i, c) in batch {
                sorted.add(&self.upload, &self.upload.records[i], c);
            }
        };
        add(first);
        while let Ok(more) = self.coming.try_recv() {
            add(more);
        }
        self.done.push(sorted);
        true
    }
}

/// The days (since 1970) the upload's entries were made on, each once.
fn days(upload: &Upload) -> Vec<i32> {
    let mut days: Vec<i32> = upload
        .records
        .iter()
        .filter_map(|r| match &r.item {
            OutboxItem::Entry { created, .. } => Some((created / DAY_MS) as i32),
            OutboxItem::Settlement { .. } => None,
        })
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

const INSERT_CHANGES: &str = "INSERT INTO changes (till, journal, seq, day, entry_key, terminal,
        state, kind, amount_minor, currency, outcome, approved_minor, tip_minor, cashback_minor,
        transaction_id, result_time, signed, created, updated, request, result, terminal_key,
        note)
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
     ON CONFLICT DO NOTHING";

/// `open_entries` moved on to each entry's newest change in an upload (once, after all its
/// changes are inserted): an entry whose newest change is open is added or moved on — unless
/// a newer change of it is stored already (a late resend never reopens an entry) — and one
/// whose newest change is final leaves.
const UPDATE_OPEN: &str = "WITH latest AS (
        SELECT * FROM unnest($2::bytea[], $3::bigint[], $4::int[], $5::text[], $6::text[],
            $7::bigint[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[])
            AS l(entry_key, seq, day, state, kind, amount_minor, currency, created, updated,
            note)
     ), opened AS (
        INSERT INTO open_entries AS o (till, entry_key, seq, day, state, kind, amount_minor,
            currency, created, updated, note)
        SELECT $1, l.entry_key, l.seq, DATE '1970-01-01' + l.day, l.state, l.kind,
            l.amount_minor, l.currency, l.created, l.updated, l.note
        FROM latest l
        WHERE l.state IN ('intent', 'sent', 'in_doubt')
          AND NOT EXISTS (SELECT 1 FROM changes c
                WHERE c.day = DATE '1970-01-01' + l.day AND c.till = $1
                AND c.entry_key = l.entry_key AND c.seq > l.seq)
        ON CONFLICT (till, entry_key) DO UPDATE SET seq = excluded.seq, state = excluded.state,
            updated = excluded.updated, note = excluded.note
        WHERE o.seq < excluded.seq
        RETURNING 1
     ), closed AS (
        DELETE FROM open_entries o USING latest l
        WHERE l.state NOT IN ('intent', 'sent', 'in_doubt') AND o.till = $1
          AND o.entry_key = l.entry_key AND o.seq < l.seq
        RETURNING 1
     )
     SELECT (SELECT count(*) FROM opened) + (SELECT count(*) FROM closed)";

const INSERT_SETTLEMENT: &str =
    "INSERT INTO settlements (till, journal, seq, key, terminal, batch_number, opened,
        closed, accepted, totals, signed, result, terminal_key, recorded)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11, $12, $13,
        $14)
     ON CONFLICT DO NOTHING";

const INSERT_QUARANTINE: &str = "INSERT INTO quarantine (till, journal, seq, reason, record)
     VALUES ($1, $2, $3, $4, $5::text::jsonb) ON CONFLICT DO NOTHING";

const TOUCH_TILL: &str = "UPDATE tills SET last_upload = now() WHERE id = $1";

/// The statements of an upload, prepared on its connection.
struct Statements {
    entries: Statement,
    open: Statement,
    settlement: Statement,
    quarantine: Statement,
    touch: Statement,
}

impl Statements {
    async fn prepare(conn: &mut Conn) -> Result<Self, BackofficeError> {
        Ok(Self {
            entries: conn.prepared(INSERT_CHANGES).await?,
            open: conn.prepared(UPDATE_OPEN).await?,
            settlement: conn.prepared(INSERT_SETTLEMENT).await?,
            quarantine: conn.prepared(INSERT_QUARANTINE).await?,
            touch: conn.prepared(TOUCH_TILL).await?,
        })
    }
}

/// Stores an upload whose signature was checked: every record once, a record that is damaged
/// or whose terminal signature does not verify in quarantine. All or nothing.
///
/// The records that need no signature verified (intents, sends, most of an upload) are
/// inserted while the others are verified on blocking threads: PostgreSQL's work and the
/// verifications overlap.
pub(crate) async fn store(db: &Db, upload: Upload) -> Result<Ack, BackofficeError> {
    let mut checks = Checks::start(Arc::new(upload));
    let days = days(&checks.upload);
    let mut conn = db.get().await?;
    crate::schema::ensure_partitions(db, &mut conn, &days).await?;
    let st = Statements::prepare(&mut conn).await?;
    match insert(&mut conn, &st, &mut checks).await {
        // A day's partition dropped (retention) since this instance saw it: make it again.
        Err(BackofficeError::Database(e))
            if e.code() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION) =>
        {
            db.forget_partitions();
            crate::schema::ensure_partitions(db, &mut conn, &days).await?;
            insert(&mut conn, &st, &mut checks).await
        }
        other => other,
    }
}

async fn insert(
    conn: &mut tokio_postgres::Client,
    st: &Statements,
    checks: &mut Checks,
) -> Result<Ack, BackofficeError> {
    let upload = checks.upload.clone();
    let till = upload.till.to_vec();
    let journal = upload.journal.to_vec();
    let tx = conn.transaction().await?;
    let touch: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&till];
    tx.execute(&st.touch, &touch).await?;
    let (mut accepted, mut stored_quarantine) = (0, 0);
    let mut inserted = 0;
    loop {
        // What was checked and not yet inserted (everything again after a retry), while the
        // next batches are verified.
        for sorted in &checks.done[inserted..] {
            // The statements go out together (tokio-postgres pipelines what is awaited at once
            // on one connection).
            let (entries, (others, quarantine)) = tokio::try_join!(
                insert_entries(&tx, st, &till, &journal, &sorted.entries),
                insert_others(&tx, st, &till, &journal, sorted),
            )?;
            accepted += entries + others;
            stored_quarantine += quarantine;
        }
        inserted = checks.done.len();
        if !checks.next().await {
            break;
        }
    }
    update_open(&tx, st, &till, checks).await?;
    tx.commit().await?;
    let total = upload.records.len() as u64;
    Ok(Ack {
        committed_through: upload.records.last().map_or(0, |r| r.seq),
        accepted,
        duplicates: total - accepted - stored_quarantine,
        quarantined: stored_quarantine,
    })
}

/// Inserts entry changes; how many were new.
async fn insert_entries(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statements,
    till: &Vec<u8>,
    journal: &Vec<u8>,
    entries: &[Row],
) -> Result<u64, BackofficeError> {
    if entries.is_empty() {
        return Ok(0);
    }
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
    Ok(tx
        .execute(
            &st.entries,
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
        .await?)
}

/// Moves `open_entries` on to each entry's newest change in the upload (quarantined changes
/// are not among them: an entry whose result was quarantined stays at its last accepted state).
async fn update_open(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statements,
    till: &Vec<u8>,
    checks: &Checks,
) -> Result<(), BackofficeError> {
    let mut newest: HashMap<&[u8], &Row> = HashMap::new();
    for row in checks.done.iter().flat_map(|s| &s.entries) {
        let slot = newest.entry(&row.entry_key).or_insert(row);
        if row.seq > slot.seq {
            *slot = row;
        }
    }
    if newest.is_empty() {
        return Ok(());
    }
    let rows: Vec<&Row> = newest.into_values().collect();
    let entry_key: Vec<&[u8]> = rows.iter().map(|r| r.entry_key.as_slice()).collect();
    let seq: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let day: Vec<i32> = rows.iter().map(|r| r.day).collect();
    let state: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let amount: Vec<Option<i64>> = rows.iter().map(|r| r.amount).collect();
    let currency: Vec<Option<&str>> = rows.iter().map(|r| r.currency.as_deref()).collect();
    let created: Vec<SystemTime> = rows.iter().map(|r| r.created).collect();
    let updated: Vec<SystemTime> = rows.iter().map(|r| r.updated).collect();
    let note: Vec<Option<&str>> = rows.iter().map(|r| r.note.as_deref()).collect();
    tx.query_one(
        &st.open,
        &[
            &till, &entry_key, &seq, &day, &state, &kind, &amount, &currency, &created, &updated,
            &note,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts settlements and quarantined records; how many of each were new.
async fn insert_others(
    tx: &tokio_postgres::Transaction<'_>,
    st: &Statements,
    till: &Vec<u8>,
    journal: &Vec<u8>,
    sorted: &Sorted,
) -> Result<(u64, u64), BackofficeError> {
    let mut accepted = 0;
    for s in &sorted.settlements {
        accepted += tx
            .execute(
                &st.settlement,
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
    for (seq, reason, json) in &sorted.quarantined {
        stored_quarantine += tx
            .execute(&st.quarantine, &[&till, &journal, seq, reason, json])
            .await?;
    }
    Ok((accepted, stored_quarantine))
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
