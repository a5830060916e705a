//! Chain reconciliation: what the journals say against what the terminals reported, and what
//! needs someone's attention — as rows, JSON or CSV.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use posbridge_sync::hex;
use serde_json::{Value, json};

use crate::{BackofficeError, Db};

/// Whose data a reader may see: the whole chain (an administrator's token) or one store (the
/// store's own token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every store.
    Chain,
    /// One store.
    Store(String),
}

impl Scope {
    fn store(&self) -> Option<&str> {
        match self {
            Self::Chain => None,
            Self::Store(s) => Some(s),
        }
    }
}

/// A report: column names and rows of JSON values (numbers, text, `null`).
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The columns.
    pub columns: Vec<&'static str>,
    /// The rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Report {
    /// As a JSON array of objects.
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.columns
                        .iter()
                        .zip(r)
                        .map(|(c, v)| ((*c).to_owned(), v.clone()))
                        .collect(),
                )
            })
            .collect();
        Value::Array(rows).to_string()
    }

    /// As CSV (RFC 4180: a header line, fields quoted where needed).
    pub fn to_csv(&self) -> String {
        let field = |v: &Value| -> String {
            let s = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        };
        let mut out = self.columns.join(",");
        out.push_str("\r\n");
        for r in &self.rows {
            out.push_str(&r.iter().map(field).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == name)
    }
}

fn ms(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_millis() as u64))
}

/// Days (since 1970) of `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<i32, BackofficeError> {
    let bad = || BackofficeError::BadRequest(format!("{text:?}: a date YYYY-MM-DD"));
    let mut parts = text.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || d == 0 || d > posbridge_wire::civil::days_in_month(y, m) {
        return Err(bad());
    }
    i32::try_from(posbridge_wire::civil::days_from_civil(y, m, d)).map_err(|_| bad())
}

/// Journal totals per store, till, terminal, day, currency and kind over `[from, to)` (days since
/// 1970): approved payments (in full or in part), each counting its approved amount plus tip and
/// cashback — the way a terminal's settlement counts them.
pub async fn totals(db: &Db, scope: &Scope, from: i32, to: i32) -> Result<Report, BackofficeError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            "SELECT t.store, e.till, e.terminal, to_char(e.day, 'YYYY-MM-DD'), e.currency, e.kind,
                count(*)::bigint,
                sum(e.approved_minor + coalesce(e.tip_minor, 0) + coalesce(e.cashback_minor, 0))::bigint
             FROM (SELECT DISTINCT ON (c.till, c.entry_key) * FROM changes c
                WHERE c.day >= DATE '1970-01-01' + $1::int AND c.day < DATE '1970-01-01' + $2::int
                ORDER BY c.till, c.entry_key, c.seq DESC) e
             JOIN tills t ON t.id = e.till
             WHERE e.state IN ('done', 'offline_pending') AND e.outcome IN ('approved', 'partially_approved')
               AND ($3::text IS NULL OR t.store = $3)
             GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6",
            &[&from, &to, &scope.store()],
        )
        .await?;
    Ok(Report {
        columns: vec![
            "store",
            "till",
            "terminal",
            "day",
            "currency",
            "kind",
            "count",
            "amount_minor",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    json!(r.get::<_, String>(0)),
                    json!(hex(&r.get::<_, Vec<u8>>(1))),
                    json!(hex(&r.get::<_, Vec<u8>>(2))),
                    json!(r.get::<_, String>(3)),
                    json!(r.get::<_, Option<String>>(4)),
                    json!(r.get::<_, String>(5)),
                    json!(r.get::<_, i64>(6)),
                    json!(r.get::<_, Option<i64>>(7)),
                ]
            })
            .collect(),
    })
}

/// Every settlement closed in `[from, to)` against the journals: per batch, kind and currency,
/// the terminal's count and amount and the journals' (payments of that terminal, from every till,
/// that the terminal timed within the batch); `matches` is false where they differ.
pub async fn settlements(
    db: &Db,
    scope: &Scope,
    from: i32,
    to: i32,
) -> Result<Report, BackofficeError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            "WITH s AS (
                SELECT st.*, t.store FROM settlements st JOIN tills t ON t.id = st.till
                WHERE st.closed >= TIMESTAMPTZ 'epoch' + $1::int * INTERVAL '1 day'
                  AND st.closed < TIMESTAMPTZ 'epoch' + $2::int * INTERVAL '1 day'
                  AND ($3::text IS NULL OR t.store = $3)
             ), terminal AS (
                SELECT s.store, s.terminal, s.batch_number, s.closed, x->>'kind' AS kind,
                    x->>'currency' AS currency, (x->>'count')::bigint AS n,
                    (x->>'amount_minor')::bigint AS amount
                FROM s, jsonb_array_elements(s.totals) x
             ), journal AS (
                SELECT s.store, s.terminal, s.batch_number, s.closed, e.kind, e.currency,
                    count(*)::bigint AS n,
                    sum(e.approved_minor + coalesce(e.tip_minor, 0)
                        + coalesce(e.cashback_minor, 0))::bigint AS amount
                FROM s JOIN entries_latest e ON e.terminal = s.terminal
                    AND e.result_time >= coalesce(s.opened, TIMESTAMPTZ 'epoch')
                    AND e.result_time <= s.closed
                WHERE e.state IN ('done', 'offline_pending') AND e.outcome IN ('approved', 'partially_approved')
                GROUP BY 1, 2, 3, 4, 5, 6
             )
             SELECT coalesce(t.store, j.store), coalesce(t.terminal, j.terminal),
                coalesce(t.batch_number, j.batch_number), coalesce(t.closed, j.closed),
                coalesce(t.kind, j.kind), coalesce(t.currency, j.currency),
                t.n, t.amount, j.n, j.amount
             FROM terminal t FULL JOIN journal j
                ON t.terminal = j.terminal AND t.batch_number = j.batch_number
                AND t.kind = j.kind AND t.currency = j.currency
             ORDER BY 1, 2, 4, 5, 6",
            &[&from, &to, &scope.store()],
        )
        .await?;
    Ok(Report {
        columns: vec![
            "store",
            "terminal",
            "batch",
            "closed_ms",
            "kind",
            "currency",
            "terminal_count",
            "terminal_amount_minor",
            "journal_count",
            "journal_amount_minor",
            "matches",
        ],
        rows: rows
            .iter()
            .map(|r| {
                let tc: Option<i64> = r.get(6);
                let ta: Option<i64> = r.get(7);
                let jc: Option<i64> = r.get(8);
                let ja: Option<i64> = r.get(9);
                vec![
                    json!(r.get::<_, String>(0)),
                    json!(hex(&r.get::<_, Vec<u8>>(1))),
                    json!(r.get::<_, i64>(2)),
                    ms(Some(r.get(3))),
                    json!(r.get::<_, Option<String>>(4)),
                    json!(r.get::<_, Option<String>>(5)),
                    json!(tc),
                    json!(ta),
                    json!(jc),
                    json!(ja),
                    json!(tc == jc && ta == ja),
                ]
            })
            .collect(),
    })
}

/// Payments still in doubt (or never sent, or sent without an answer) whose latest change is
/// older than `older_than`: someone must recover them at the till.
pub async fn in_doubt(
    db: &Db,
    scope: &Scope,
    older_than: Duration,
) -> Result<Report, BackofficeError> {
    let before = SystemTime::now() - older_than;
    let conn = db.get().await?;
    let rows = conn
        .query(
            "SELECT t.store, e.till, t.name, e.entry_key, e.state, e.kind, e.amount_minor,
                e.currency, e.created, e.updated, e.note
             FROM open_entries e JOIN tills t ON t.id = e.till
             WHERE e.updated < $1
               AND ($2::text IS NULL OR t.store = $2)
             ORDER BY e.updated",
            &[&before, &scope.store()],
        )
        .await?;
    Ok(Report {
        columns: vec![
            "store",
            "till",
            "till_name",
            "key",
            "state",
            "kind",
            "amount_minor",
            "currency",
            "created_ms",
            "updated_ms",
            "note",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    json!(r.get::<_, String>(0)),
                    json!(hex(&r.get::<_, Vec<u8>>(1))),
                    json!(r.get::<_, String>(2)),
                    json!(hex(&r.get::<_, Vec<u8>>(3))),
                    json!(r.get::<_, String>(4)),
                    json!(r.get::<_, String>(5)),
                    json!(r.get::<_, Option<i64>>(6)),
                    json!(r.get::<_, Option<String>>(7)),
                    ms(Some(r.get(8))),
                    ms(Some(r.get(9))),
                    json!(r.get::<_, Option<String>>(10)),
                ]
            })
            .collect(),
    })
}

/// Approved payments whose terminal transaction id appears under more than one journal entry:
/// one charge booked twice, or two charges the terminal numbered alike.
pub async fn duplicate_transactions(db: &Db, scope: &Scope) -> Result<Report, BackofficeError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            "SELECT e.transaction_id, count(*)::bigint,
                string_agg(t.store || '/' || encode(e.till, 'hex') || '/' || encode(e.entry_key, 'hex'), ' ' ORDER BY e.till, e.entry_key)
             FROM entries_latest e JOIN tills t ON t.id = e.till
             WHERE e.state IN ('done', 'offline_pending') AND e.outcome IN ('approved', 'partially_approved')
               AND e.transaction_id IS NOT NULL AND ($1::text IS NULL OR t.store = $1)
             GROUP BY e.transaction_id HAVING count(*) > 1 ORDER BY 1",
            &[&scope.store()],
        )
        .await?;
    Ok(Report {
        columns: vec!["transaction_id", "entries", "where"],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    json!(hex(&r.get::<_, Vec<u8>>(0))),
                    json!(r.get::<_, i64>(1)),
                    json!(r.get::<_, String>(2)),
                ]
            })
            .collect(),
    })
}

/// Tills that have not uploaded for `quiet_for` (or never did).
pub async fn silent_tills(
    db: &Db,
    scope: &Scope,
    quiet_for: Duration,
) -> Result<Report, BackofficeError> {
    let before = SystemTime::now() - quiet_for;
    let conn = db.get().await?;
    let rows = conn
        .query(
            "SELECT store, id, name, last_upload FROM tills
             WHERE (last_upload IS NULL OR last_upload < $1) AND ($2::text IS NULL OR store = $2)
             ORDER BY last_upload NULLS FIRST, store, name",
            &[&before, &scope.store()],
        )
        .await?;
    Ok(Report {
        columns: vec!["store", "till", "till_name", "last_upload_ms"],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    json!(r.get::<_, String>(0)),
                    json!(hex(&r.get::<_, Vec<u8>>(1))),
                    json!(r.get::<_, String>(2)),
                    ms(r.get::<_, Option<SystemTime>>(3)),
                ]
            })
            .collect(),
    })
}

/// Whose token `token` is: an administrator's (the chain) or a store's.
pub async fn scope_of(db: &Db, token: &str) -> Result<Scope, BackofficeError> {
    let hash = crate::ingest::token_hash(token);
    let conn = db.get().await?;
    if conn
        .query_opt(
            "SELECT 1 FROM admin_tokens WHERE token_sha256 = $1",
            &[&hash],
        )
        .await?
        .is_some()
    {
        return Ok(Scope::Chain);
    }
    conn.query_opt("SELECT id FROM stores WHERE token_sha256 = $1", &[&hash])
        .await?
        .map(|r| Scope::Store(r.get(0)))
        .ok_or_else(|| {
            BackofficeError::Unauthorized("no administrator or store has this token".into())
        })
}
