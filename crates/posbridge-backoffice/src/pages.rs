//! The web pages: server-rendered HTML, no script. The chain's day at a glance (per store:
//! tills, approved sales, payments in doubt, settlements that do not match — highlighted — and
//! sales per hour as an inline SVG chart), then a store's tills and settlements, then a till's
//! payments. Signed in with HTTP Basic authentication, the token as the password: an
//! administrator sees every store, a store only itself.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use posbridge_sync::hex;
use posbridge_tcp::http::{HttpRequest, HttpResponse};

use crate::reports::{self, Scope};
use crate::{BackofficeError, Db};

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Minor units as a decimal amount (two decimals: the page shows what the chain's currencies
/// mostly use; exact values are in the reports).
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02} {}", m / 100, m % 100, esc(currency))
}

fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::html(
        200,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{t} — posbridge back office</title><style>\
             body{{font:15px system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse;margin:1em 0}}\
             th,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
             td.n{{text-align:right}}tr.mismatch{{background:#fdd}}tr.mismatch td{{color:#900}}\
             .bar{{fill:#4a7}}a{{color:#036}}</style></head><body>\
             <h1>{t}</h1>{body}</body></html>",
            t = esc(title)
        ),
    )
    .with_header("cache-control", "no-store")
}

/// Who signs in: the token from HTTP Basic authentication (the password), or a 401 that asks.
pub(crate) async fn sign_in(db: &Db, request: &HttpRequest) -> Result<Scope, HttpResponse> {
    let ask = || {
        HttpResponse::text(401, "sign in with your token as the password")
            .with_header("www-authenticate", "Basic realm=\"posbridge back office\"")
    };
    let Some(basic) = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    else {
        return Err(ask());
    };
    let Some(token) = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(_, p)| p.to_owned()))
    else {
        return Err(ask());
    };
    match reports::scope_of(db, &token).await {
        Ok(scope) => Ok(scope),
        Err(BackofficeError::Unauthorized(_)) => Err(ask()),
        Err(e) => Err(crate::server::failure(&e)),
    }
}

fn today() -> i32 {
    (SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)) as i32
}

fn day_text(day: i32) -> String {
    let (y, m, d) = posbridge_wire::civil::civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Serves a page: `/` (the chain's day), `/stores/<id>`, `/tills/<hex>`.
pub(crate) async fn serve(db: &Db, request: &HttpRequest) -> Result<HttpResponse, BackofficeError> {
    let scope = match sign_in(db, request).await {
        Ok(s) => s,
        Err(answer) => return Ok(answer),
    };
    let day = match request.param("day") {
        Some(d) => reports::parse_day(&d)?,
        None => today(),
    };
    let path = request.path.as_str();
    if path == "/" {
        overview(db, &scope, day).await
    } else if let Some(store) = path.strip_prefix("/stores/") {
        if scope != Scope::Chain && scope != Scope::Store(store.to_owned()) {
            return Err(BackofficeError::Forbidden("another store's page".into()));
        }
        store_page(db, store, day).await
    } else if let Some(till) = path.strip_prefix("/tills/") {
        let till = posbridge_sync::unhex(till)
            .filter(|t| t.len() == 16)
            .ok_or_else(|| BackofficeError::BadRequest("a till is 32 hex digits".into()))?;
        till_page(db, &scope, &till, day).await
    } else {
        Ok(HttpResponse::text(404, format!("no page {path}")))
    }
}

async fn overview(db: &Db, scope: &Scope, day: i32) -> Result<HttpResponse, BackofficeError> {
    let conn = db.get().await?;
    let store = match scope {
        Scope::Chain => None,
        Scope::Store(s) => Some(s.as_str()),
    };
    let stores = conn
        .query(
            // One pass over the day's partition (an entry's changes all carry the day it was
            // made), summed per till before the join to the tills (a few hundred rows, however
            // the planner guesses the day's), and one pass over the open entries.
            "WITH per_till AS MATERIALIZED (
                SELECT d.till, d.currency, count(*) AS n, sum(d.value) AS amount
                FROM (SELECT DISTINCT ON (c.till, c.entry_key) c.till, c.state, c.outcome,
                        c.currency, c.approved_minor + coalesce(c.tip_minor, 0)
                            + coalesce(c.cashback_minor, 0) AS value
                    FROM changes c WHERE c.day = DATE '1970-01-01' + $1::int
                      AND ($2::text IS NULL OR c.till IN (SELECT id FROM tills WHERE store = $2))
                    ORDER BY c.till, c.entry_key, c.seq DESC) d
                WHERE d.state IN ('done', 'offline_pending') AND d.outcome IN ('approved', 'partially_approved')
                GROUP BY 1, 2
             ), approved AS MATERIALIZED (
                SELECT t.store, p.currency, sum(p.n) AS n, sum(p.amount) AS amount
                FROM per_till p JOIN tills t ON t.id = p.till
                GROUP BY 1, 2
             ), open AS MATERIALIZED (
                SELECT t.store, count(*) AS n
                FROM open_entries e JOIN tills t ON t.id = e.till GROUP BY 1
             )
             SELECT s.id, s.name,
                (SELECT count(*) FROM tills t WHERE t.store = s.id)::bigint,
                coalesce((SELECT sum(n) FROM approved a WHERE a.store = s.id), 0)::bigint,
                (SELECT string_agg(a.currency || ':' || a.amount, ' ' ORDER BY a.currency)
                    FROM approved a WHERE a.store = s.id),
                coalesce((SELECT n FROM open o WHERE o.store = s.id), 0)::bigint
             FROM stores s WHERE ($2::text IS NULL OR s.id = $2) ORDER BY s.id",
            &[&day, &store],
        )
        .await?;
    drop(conn);
    let settlements = reports::settlements(db, scope, day, day + 1).await?;
    let store_col = settlements.column("store").expect("a column");
    let matches_col = settlements.column("matches").expect("a column");
    let mismatched = |id: &str| {
        settlements
            .rows
            .iter()
            .filter(|r| r[store_col] == id && r[matches_col] == false)
            .count()
    };
    let mut body = format!(
        "<p>{} · <a href=\"?day={}\">previous day</a> · <a href=\"?day={}\">next day</a></p>\
         <table id=\"stores\"><tr><th>store</th><th>tills</th><th>approved sales</th>\
         <th>amount</th><th>in doubt</th><th>settlements not matching</th></tr>",
        day_text(day),
        day_text(day - 1),
        day_text(day + 1)
    );
    for r in &stores {
        let id: String = r.get(0);
        let name: String = r.get(1);
        let in_doubt: i64 = r.get(5);
        let bad = mismatched(&id);
        let amounts: Option<String> = r.get(4);
        let amounts = amounts
            .unwrap_or_default()
            .split(' ')
            .filter_map(|c| c.split_once(':'))
            .map(|(cur, v)| money(v.parse().unwrap_or(0), cur))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            body,
            "<tr class=\"{cls}\" data-store=\"{id}\"><td><a href=\"/stores/{id}?day={d}\">{name}</a></td>\
             <td class=\"n\">{tills}</td><td class=\"n\">{sales}</td><td class=\"n\">{amounts}</td>\
             <td class=\"n\">{in_doubt}</td><td class=\"n\">{bad}</td></tr>",
            cls = if bad > 0 || in_doubt > 0 {
                "mismatch"
            } else {
                "ok"
            },
            id = esc(&id),
            d = day_text(day),
            name = esc(&name),
            tills = r.get::<_, i64>(2),
            sales = r.get::<_, i64>(3),
        );
    }
    body.push_str("</table>");
    body.push_str(&hourly_chart(db, store, day).await?);
    Ok(page("The chain's day", &body))
}

/// Approved sales per hour of `day` (UTC) as an inline SVG bar chart.
async fn hourly_chart(db: &Db, store: Option<&str>, day: i32) -> Result<String, BackofficeError> {
    let conn = db.get().await?;
    let rows = conn
        .query(
            // Counted per till and hour before the join to the tills (see the overview).
            "WITH per_till AS MATERIALIZED (
                SELECT d.till, extract(hour FROM d.result_time AT TIME ZONE 'UTC')::int AS hour,
                    count(*) AS n
                FROM (SELECT DISTINCT ON (c.till, c.entry_key) c.till, c.state, c.outcome,
                        c.kind, c.result_time
                    FROM changes c WHERE c.day = DATE '1970-01-01' + $1::int
                      AND ($2::text IS NULL OR c.till IN (SELECT id FROM tills WHERE store = $2))
                    ORDER BY c.till, c.entry_key, c.seq DESC) d
                WHERE d.state IN ('done', 'offline_pending') AND d.outcome IN ('approved', 'partially_approved')
                  AND d.kind = 'sale'
                GROUP BY 1, 2
             )
             SELECT p.hour, sum(p.n)::bigint
             FROM per_till p JOIN tills t ON t.id = p.till
             WHERE ($2::text IS NULL OR t.store = $2)
             GROUP BY 1 ORDER BY 1",
            &[&day, &store],
        )
        .await?;
    let mut per_hour = [0i64; 24];
    for r in &rows {
        let h: i32 = r.get(0);
        if let Some(slot) = usize::try_from(h).ok().and_then(|h| per_hour.get_mut(h)) {
            *slot = r.get(1);
        }
    }
    let top = per_hour.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = String::from(
        "<h2>Sales per hour (UTC)</h2><svg id=\"hourly\" width=\"520\" height=\"170\" \
         viewBox=\"0 0 520 170\" role=\"img\" aria-label=\"approved sales per hour\">",
    );
    for (h, n) in per_hour.iter().enumerate() {
        let height = (*n as f64 / top as f64 * 130.0).round();
        let _ = write!(
            svg,
            "<rect class=\"bar\" data-hour=\"{h}\" data-sales=\"{n}\" x=\"{x}\" y=\"{y}\" width=\"18\" height=\"{height}\"><title>{h:02}:00 {n} sales</title></rect>",
            x = 10 + h * 21,
            y = 140.0 - height,
        );
        if h % 3 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"158\" font-size=\"10\">{h:02}</text>",
                10 + h * 21
            );
        }
    }
    svg.push_str("</svg>");
    Ok(svg)
}

async fn store_page(db: &Db, store: &str, day: i32) -> Result<HttpResponse, BackofficeError> {
    let conn = db.get().await?;
    let Some(name) = conn
        .query_opt("SELECT name FROM stores WHERE id = $1", &[&store])
        .await?
        .map(|r| r.get::<_, String>(0))
    else {
        return Ok(HttpResponse::text(404, format!("no store {store}")));
    };
    let tills = conn
        .query(
            "SELECT t.id, t.name, t.last_upload,
                (SELECT count(*) FROM (
                    SELECT DISTINCT ON (c.entry_key) c.state, c.outcome FROM changes c
                    WHERE c.till = t.id AND c.day = DATE '1970-01-01' + $2::int
                    ORDER BY c.entry_key, c.seq DESC) e
                 WHERE e.state IN ('done', 'offline_pending')
                    AND e.outcome IN ('approved', 'partially_approved'))::bigint,
                (SELECT count(*) FROM open_entries e WHERE e.till = t.id)::bigint
             FROM tills t WHERE t.store = $1 ORDER BY t.name",
            &[&store, &day],
        )
        .await?;
    drop(conn);
    let mut body = format!(
        "<p><a href=\"/?day={d}\">the chain</a> · {d}</p><table id=\"tills\"><tr><th>till</th>\
         <th>approved sales</th><th>in doubt</th><th>last upload</th></tr>",
        d = day_text(day)
    );
    for r in &tills {
        let id: Vec<u8> = r.get(0);
        let in_doubt: i64 = r.get(4);
        let last: Option<SystemTime> = r.get(2);
        let last = last.map_or_else(
            || "never".to_owned(),
            |t| {
                let ago = SystemTime::now()
                    .duration_since(t)
                    .unwrap_or(Duration::ZERO);
                format!("{} min ago", ago.as_secs() / 60)
            },
        );
        let _ = write!(
            body,
            "<tr class=\"{cls}\"><td><a href=\"/tills/{id}?day={d}\">{name}</a></td>\
             <td class=\"n\">{sales}</td><td class=\"n\">{in_doubt}</td><td>{last}</td></tr>",
            cls = if in_doubt > 0 { "mismatch" } else { "ok" },
            id = hex(&id),
            d = day_text(day),
            name = esc(&r.get::<_, String>(1)),
            sales = r.get::<_, i64>(3),
        );
    }
    body.push_str("</table><h2>Settlements</h2><table id=\"settlements\"><tr><th>terminal</th><th>batch</th><th>kind</th><th>currency</th><th>terminal says</th><th>journals say</th></tr>");
    let report = reports::settlements(db, &Scope::Store(store.to_owned()), day, day + 1).await?;
    let col = |n: &str| report.column(n).expect("a column");
    for r in &report.rows {
        let num = |c: &str| r[col(c)].as_i64();
        let terminal = r[col("terminal")].as_str().unwrap_or("");
        let side = |n: Option<i64>, a: Option<i64>| match (n, a) {
            (Some(n), Some(a)) => format!(
                "{n} · {}",
                money(a, r[col("currency")].as_str().unwrap_or(""))
            ),
            _ => "—".to_owned(),
        };
        let _ = write!(
            body,
            "<tr class=\"{cls}\"><td>{terminal}</td><td class=\"n\">{batch}</td><td>{kind}</td><td>{cur}</td><td class=\"n\">{t}</td><td class=\"n\">{j}</td></tr>",
            cls = if r[col("matches")] == true {
                "ok"
            } else {
                "mismatch"
            },
            terminal = esc(terminal.get(..8).unwrap_or(terminal)),
            batch = num("batch").unwrap_or(0),
            kind = esc(r[col("kind")].as_str().unwrap_or("")),
            cur = esc(r[col("currency")].as_str().unwrap_or("")),
            t = side(num("terminal_count"), num("terminal_amount_minor")),
            j = side(num("journal_count"), num("journal_amount_minor")),
        );
    }
    body.push_str("</table>");
    body.push_str(&hourly_chart(db, Some(store), day).await?);
    Ok(page(&format!("Store {name}"), &body))
}

async fn till_page(
    db: &Db,
    scope: &Scope,
    till: &[u8],
    day: i32,
) -> Result<HttpResponse, BackofficeError> {
    let conn = db.get().await?;
    let Some(row) = conn
        .query_opt("SELECT store, name FROM tills WHERE id = $1", &[&till])
        .await?
    else {
        return Ok(HttpResponse::text(404, "no such till"));
    };
    let (store, name): (String, String) = (row.get(0), row.get(1));
    if *scope != Scope::Chain && *scope != Scope::Store(store.clone()) {
        return Err(BackofficeError::Forbidden("another store's till".into()));
    }
    let entries = conn
        .query(
            "SELECT entry_key, kind, state, amount_minor, currency, outcome, created
             FROM (SELECT DISTINCT ON (entry_key) * FROM changes
                WHERE till = $1 AND day = DATE '1970-01-01' + $2::int
                ORDER BY entry_key, seq DESC) e
             ORDER BY created",
            &[&till, &day],
        )
        .await?;
    let mut body = format!(
        "<p><a href=\"/stores/{s}?day={d}\">store {s}</a> · {d}</p><table id=\"payments\"><tr><th>key</th><th>kind</th><th>state</th><th>amount</th><th>outcome</th></tr>",
        s = esc(&store),
        d = day_text(day)
    );
    for r in &entries {
        let state: String = r.get(2);
        let open = matches!(state.as_str(), "intent" | "sent" | "in_doubt");
        let amount = match (r.get::<_, Option<i64>>(3), r.get::<_, Option<String>>(4)) {
            (Some(a), Some(c)) => money(a, &c),
            _ => String::new(),
        };
        let _ = write!(
            body,
            "<tr class=\"{cls}\"><td><code>{key}</code></td><td>{kind}</td><td>{state}</td><td class=\"n\">{amount}</td><td>{outcome}</td></tr>",
            cls = if open { "mismatch" } else { "ok" },
            key = hex(&r.get::<_, Vec<u8>>(0)),
            kind = esc(&r.get::<_, String>(1)),
            state = esc(&state),
            outcome = esc(&r.get::<_, Option<String>>(5).unwrap_or_default()),
        );
    }
    body.push_str("</table>");
    Ok(page(&format!("Till {name}"), &body))
}
