//! Exports: CSV for spreadsheets and accountants, JSON Lines for programs.

use std::fmt::Write as _;
use std::io::{self, Write};

use posbridge_crypto::verify_result;
use posbridge_wire::Outcome;

use crate::Entry;

const COLUMNS: &[&str] = &[
    "created_ms",
    "updated_ms",
    "idempotency_key",
    "terminal",
    "kind",
    "state",
    "amount_minor",
    "currency",
    "outcome",
    "decline_or_error_code",
    "approved_minor",
    "tip_minor",
    "cashback_minor",
    "method",
    "masked_pan",
    "card_scheme",
    "auth_code",
    "transaction_id",
    "reference",
    "order_ref",
    "offline",
    "signature",
    "note",
];

/// The values of one entry, in `COLUMNS` order (`None`: empty / null).
fn values(e: &Entry) -> Vec<Option<String>> {
    let r = e.result.as_ref();
    let amount = e.amount();
    let (outcome, code) = match r.map(|r| r.outcome) {
        None => (None, None),
        Some(Outcome::Approved) => (Some("approved"), None),
        Some(Outcome::PartiallyApproved) => (Some("partially_approved"), None),
        Some(Outcome::Declined(d)) => (Some("declined"), Some(d.0)),
        Some(Outcome::Cancelled) => (Some("cancelled"), None),
        Some(Outcome::Failed(c)) => (Some("failed"), Some(c.0)),
        Some(_) => (Some("other"), None),
    };
    // Checked offline against the key journalled with the entry.
    let signature = r.map(|r| match (&e.terminal_key, r.signature) {
        (_, None) => "unsigned",
        (None, Some(_)) => "no_key",
        (Some(k), Some(_)) => {
            if verify_result(k, r).is_ok() {
                "valid"
            } else {
                "INVALID"
            }
        }
    });
    let s = |v: &dyn std::fmt::Display| Some(v.to_string());
    vec![
        s(&e.created.0),
        s(&e.updated.0),
        s(&e.key()),
        s(&e.terminal),
        Some(format!("{:?}", e.kind())),
        Some(e.state.as_str().to_string()),
        amount.map(|a| a.minor.to_string()),
        amount.map(|a| a.currency.code().to_string()),
        outcome.map(str::to_string),
        code.map(|c| c.to_string()),
        r.map(|r| r.approved_minor.to_string()),
        r.and_then(|r| r.tip).map(|v| v.to_string()),
        r.and_then(|r| r.cashback).map(|v| v.to_string()),
        r.and_then(|r| r.method).map(|m| format!("{m:?}")),
        r.and_then(|r| r.pan).map(|p| p.to_string()),
        r.and_then(|r| r.card_scheme.clone()),
        r.and_then(|r| r.auth_code.clone()),
        r.map(|r| r.transaction_id.to_string()),
        r.and_then(|r| r.reference.clone()),
        e.request.order_ref.clone(),
        r.map(|r| r.offline.to_string()),
        signature.map(str::to_string),
        e.note.clone(),
    ]
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Writes `entries` as CSV (RFC 4180, a header line, one line per entry).
pub fn export_csv<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    mut out: impl Write,
) -> io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for e in entries {
        let line: Vec<String> = values(e)
            .iter()
            .map(|v| v.as_deref().map(csv_field).unwrap_or_default())
            .collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

fn json_string(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Writes `entries` as JSON Lines: one object per line, the CSV's columns as keys (absent values
/// as `null`; amounts and times as strings of digits, so no reader rounds them).
pub fn export_jsonl<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    mut out: impl Write,
) -> io::Result<()> {
    for e in entries {
        let fields: Vec<String> = COLUMNS
            .iter()
            .zip(values(e))
            .map(|(k, v)| {
                format!(
                    "{}:{}",
                    json_string(k),
                    v.as_deref().map_or("null".to_string(), json_string)
                )
            })
            .collect();
        writeln!(out, "{{{}}}", fields.join(","))?;
    }
    Ok(())
}
