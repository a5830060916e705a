//! Receipts: the merchant's and the customer's copy of a result, as data and as text.

use std::fmt::Write as _;

use posbridge_wire::{
    CardholderVerification, CryptogramType, Currency, Outcome, Receipt, ReceiptCopy, ReceiptLine,
    Timestamp, TransactionKind, TransactionResult,
};

use crate::TerminalProfile;
use crate::cards::TestCard;

/// Builds one copy of the receipt for `result`.
pub fn receipt(
    profile: &TerminalProfile,
    result: &TransactionResult,
    card: Option<&TestCard>,
    trace: u32,
    copy: ReceiptCopy,
) -> Receipt {
    let result_text = match result.outcome {
        Outcome::Approved => "APPROVED".to_string(),
        Outcome::PartiallyApproved => format!(
            "PARTIALLY APPROVED {}",
            money(result.approved_minor, result.amount.currency)
        ),
        Outcome::Declined(reason) => format!("DECLINED {:02}", reason.0),
        Outcome::Cancelled => "CANCELLED".to_string(),
        Outcome::Failed(code) => format!("FAILED ({})", code.description().unwrap_or("error")),
        _ => "UNKNOWN".to_string(),
    };
    let mut lines = Vec::new();
    if result.offline {
        lines.push(ReceiptLine {
            label: "Authorisation".into(),
            value: "offline".into(),
        });
    }
    if let Some(emv) = &result.emv {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
        let cvm = match emv.cvm {
            CardholderVerification::NoCvm => "no CVM",
            CardholderVerification::OfflinePin => "PIN (card)",
            CardholderVerification::OnlinePin => "PIN (online)",
            CardholderVerification::Signature => "signature",
            CardholderVerification::ConsumerDevice => "on device",
            _ => "other",
        };
        let kind = match emv.cryptogram_type {
            CryptogramType::Aac => "AAC",
            CryptogramType::Tc => "TC",
            CryptogramType::Arqc => "ARQC",
            _ => "AC",
        };
        for (label, value) in [
            ("TVR", hex(&emv.tvr)),
            ("TSI", hex(&emv.tsi)),
            ("ARC", emv.arc.clone().unwrap_or_else(|| "-".into())),
            ("CVM", cvm.to_string()),
            (kind, hex(&emv.cryptogram)),
        ] {
            lines.push(ReceiptLine {
                label: label.into(),
                value,
            });
        }
    }
    Receipt {
        copy,
        header: profile.receipt_header.clone(),
        merchant_name: Some(profile.merchant_name.clone()),
        merchant_id: Some(profile.merchant_id.clone()),
        terminal_label: Some(format!("{}", result.terminal_id)[..8].to_uppercase()),
        kind: result.kind,
        amount: result.amount.minor,
        currency: result.amount.currency,
        tip: result.tip,
        cashback: result.cashback,
        time: result.time,
        method: result.method,
        card_scheme: result.card_scheme.clone(),
        pan: result.pan,
        aid: card.map(|c| c.aid.to_string()),
        application_label: card.map(|c| c.label.to_string()),
        auth_code: result.auth_code.clone(),
        reference: result.reference.clone(),
        trace: Some(trace),
        result_text: Some(result_text),
        // A merchant copy of an approved chip/swipe payment without PIN carries a signature
        // line; the simulator never asks for signatures, so only the label shows the copy.
        signature_line: false,
        lines,
        footer: match copy {
            ReceiptCopy::Customer => vec!["Please keep this receipt".into()],
            _ => vec!["Merchant copy".into()],
        },
    }
}

/// An amount as people read it, by the currency's ISO 4217 minor unit: `12.50 EUR`, `500 JPY`,
/// `1.250 KWD`.
pub fn money(minor: u64, currency: Currency) -> String {
    posbridge_api::money::Money::new(minor, currency).to_string()
}

/// `2025-11-24 16:00:00 UTC` for a time in milliseconds since 1970.
pub(crate) fn utc(t: Timestamp) -> String {
    let secs = t.0 / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn kind_text(kind: TransactionKind) -> &'static str {
    match kind {
        TransactionKind::Sale => "SALE",
        TransactionKind::Refund => "REFUND",
        TransactionKind::Void => "VOID",
        TransactionKind::PreAuth => "PRE-AUTHORISATION",
        TransactionKind::IncrementalAuth => "INCREMENTAL AUTHORISATION",
        TransactionKind::Capture => "CAPTURE",
        TransactionKind::PreAuthCancel => "PRE-AUTH CANCELLATION",
        TransactionKind::BalanceInquiry => "BALANCE INQUIRY",
        _ => "TRANSACTION",
    }
}

/// The receipt laid out for a 32-column printer.
pub fn render(r: &Receipt) -> String {
    const W: usize = 32;
    let mut out = String::new();
    let center = |out: &mut String, s: &str| {
        let pad = W.saturating_sub(s.chars().count()) / 2;
        let _ = writeln!(out, "{:pad$}{s}", "");
    };
    let pair = |out: &mut String, l: &str, v: &str| {
        let gap = W
            .saturating_sub(l.chars().count() + v.chars().count())
            .max(1);
        let _ = writeln!(out, "{l}{:gap$}{v}", "");
    };
    if let Some(m) = &r.merchant_name {
        center(&mut out, m);
    }
    for h in &r.header {
        center(&mut out, h);
    }
    out.push('\n');
    center(&mut out, kind_text(r.kind));
    out.push('\n');
    pair(&mut out, "Amount", &money(r.amount, r.currency));
    if let Some(t) = r.tip {
        pair(&mut out, "Tip", &money(t, r.currency));
    }
    if let Some(c) = r.cashback {
        pair(&mut out, "Cashback", &money(c, r.currency));
    }
    if r.tip.is_some() || r.cashback.is_some() {
        let total = r.amount + r.tip.unwrap_or(0) + r.cashback.unwrap_or(0);
        pair(&mut out, "Total", &money(total, r.currency));
    }
    out.push('\n');
    if let Some(s) = &r.card_scheme {
        pair(&mut out, "Card", s);
    }
    if let Some(p) = &r.pan {
        pair(&mut out, "PAN", &p.to_string());
    }
    if let Some(m) = r.method {
        pair(&mut out, "Entry", &format!("{m:?}"));
    }
    if let Some(a) = &r.aid {
        pair(&mut out, "AID", a);
    }
    if let Some(t) = &r.terminal_label {
        pair(&mut out, "Terminal", t);
    }
    if let Some(m) = &r.merchant_id {
        pair(&mut out, "Merchant", m);
    }
    if let Some(t) = r.trace {
        pair(&mut out, "Trace", &t.to_string());
    }
    if let Some(a) = &r.auth_code {
        pair(&mut out, "Auth code", a);
    }
    if let Some(x) = &r.reference {
        pair(&mut out, "Reference", x);
    }
    for l in &r.lines {
        pair(&mut out, &l.label, &l.value);
    }
    pair(&mut out, "Time", &utc(r.time));
    out.push('\n');
    if let Some(t) = &r.result_text {
        center(&mut out, t);
    }
    out.push('\n');
    for f in &r.footer {
        center(&mut out, f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_in_utc() {
        assert_eq!(utc(Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(Timestamp(1_764_000_000_000)), "2025-11-24 16:00:00 UTC");
        assert_eq!(utc(Timestamp(951_782_400_000)), "2000-02-29 00:00:00 UTC");
        assert_eq!(money(1250, Currency::EUR), "12.50 EUR");
        assert_eq!(money(5, Currency::GBP), "0.05 GBP");
    }
}
