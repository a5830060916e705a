//! What `--json` prints: one JSON object per line, on standard output, from these types (the
//! schema is docs/cli.md). Money is given twice: as an integer of the currency's minor unit and
//! as the decimal string people read; currencies by their ISO 4217 letters and number.

use std::sync::atomic::{AtomicBool, Ordering};

use posbridge::RecoveryReport;
use posbridge::money::{Money, alpha_code};
use posbridge_wire::{
    AcquirerLink, Capabilities, CardholderVerification, CryptogramType, Currency, EmvData,
    IdempotencyKey, Outcome, PaperState, PowerSource, Telemetry, TransactionResult,
};
use serde::Serialize;

static ON: AtomicBool = AtomicBool::new(false);

/// Turns `--json` on for this process (errors then print a JSON object too).
pub(crate) fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Whether `--json` is on.
pub(crate) fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Prints `value` as one line of JSON.
pub(crate) fn print(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => outln!("{line}"),
        Err(e) => errln!("posctl: cannot write JSON: {e}"),
    }
}

/// An amount of money.
#[derive(Serialize)]
pub(crate) struct Amount {
    /// Integer of the currency's minor unit (cents for EUR, yen for JPY).
    pub(crate) minor: u64,
    /// The amount as people read it (`12.50`, `500`, `1.250`).
    pub(crate) decimal: String,
    /// ISO 4217 letters (`EUR`), or the number when it has none.
    pub(crate) currency: String,
    /// ISO 4217 number (978).
    pub(crate) currency_number: u16,
}

impl Amount {
    pub(crate) fn new(minor: u64, currency: Currency) -> Self {
        Self {
            minor,
            decimal: Money::new(minor, currency).number(),
            currency: alpha_code(currency)
                .map_or_else(|| format!("{:03}", currency.code()), str::to_string),
            currency_number: currency.code(),
        }
    }
}

/// A payment's result.
#[derive(Serialize)]
pub(crate) struct Payment {
    pub(crate) idempotency_key: String,
    pub(crate) transaction_id: String,
    pub(crate) terminal_id: String,
    /// `sale`, `refund`, `void`, `pre_auth`, `capture`, …
    pub(crate) kind: String,
    /// `approved`, `partially_approved`, `declined`, `cancelled`, `failed` (or `unknown`, for
    /// an outcome newer than this posctl).
    pub(crate) outcome: &'static str,
    /// For a decline or a failure: the issuer's or the terminal's code.
    pub(crate) reason_code: Option<u16>,
    pub(crate) amount: Amount,
    pub(crate) approved: Amount,
    pub(crate) tip: Option<Amount>,
    pub(crate) masked_pan: Option<String>,
    pub(crate) auth_code: Option<String>,
    /// The terminal's time of the result, ms since 1970.
    pub(crate) time_ms: u64,
    /// Whether the terminal signed it (it is journaled only once its signature verifies).
    pub(crate) signed: bool,
    /// Approved offline (its acquirer was unreachable): counted, its final outcome comes later
    /// (`posctl recover`).
    pub(crate) offline: bool,
    /// The EMV data of a chip or contactless payment (native protocol 1.1), covered by the
    /// signature.
    pub(crate) emv: Option<Emv>,
}

/// EMV data as printed on a receipt: byte strings in upper-case hex.
#[derive(Serialize)]
pub(crate) struct Emv {
    pub(crate) aid: String,
    pub(crate) label: Option<String>,
    pub(crate) tvr: String,
    pub(crate) tsi: String,
    pub(crate) arc: Option<String>,
    /// `none`, `offline_pin`, `online_pin`, `signature`, `consumer_device`.
    pub(crate) cvm: &'static str,
    /// `aac`, `tc`, `arqc`.
    pub(crate) cryptogram_type: &'static str,
    pub(crate) cryptogram: String,
}

impl Emv {
    fn of(e: &EmvData) -> Self {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
        Self {
            aid: e.aid.clone(),
            label: e.label.clone(),
            tvr: hex(&e.tvr),
            tsi: hex(&e.tsi),
            arc: e.arc.clone(),
            cvm: match e.cvm {
                CardholderVerification::NoCvm => "none",
                CardholderVerification::OfflinePin => "offline_pin",
                CardholderVerification::OnlinePin => "online_pin",
                CardholderVerification::Signature => "signature",
                CardholderVerification::ConsumerDevice => "consumer_device",
                _ => "other",
            },
            cryptogram_type: match e.cryptogram_type {
                CryptogramType::Aac => "aac",
                CryptogramType::Tc => "tc",
                CryptogramType::Arqc => "arqc",
                _ => "other",
            },
            cryptogram: hex(&e.cryptogram),
        }
    }
}

impl Payment {
    pub(crate) fn of(r: &TransactionResult) -> Self {
        let (outcome, reason_code) = match r.outcome {
            Outcome::Approved => ("approved", None),
            Outcome::PartiallyApproved => ("partially_approved", None),
            Outcome::Declined(d) => ("declined", Some(d.0)),
            Outcome::Cancelled => ("cancelled", None),
            Outcome::Failed(e) => ("failed", Some(e.0)),
            // A kind of outcome this version does not know: no money is taken to have moved.
            _ => ("unknown", None),
        };
        let currency = r.amount.currency;
        Self {
            idempotency_key: r.idempotency_key.to_string(),
            transaction_id: r.transaction_id.to_string(),
            terminal_id: r.terminal_id.to_string(),
            kind: posbridge_wire::snake_name(&r.kind),
            outcome,
            reason_code,
            amount: Amount::new(r.amount.minor, currency),
            approved: Amount::new(r.approved_minor, currency),
            tip: r.tip.map(|t| Amount::new(t, currency)),
            masked_pan: r.pan.map(|p| p.to_string()),
            auth_code: r.auth_code.clone(),
            time_ms: r.time.0,
            signed: r.signature.is_some(),
            offline: r.offline,
            emv: r.emv.as_ref().map(Emv::of),
        }
    }
}

/// `posctl status`: what the terminal says about a key.
#[derive(Serialize)]
pub(crate) struct Status {
    /// `done`, `in_progress` or `not_found`.
    pub(crate) status: &'static str,
    pub(crate) result: Option<Payment>,
}

/// One payment recovery dealt with.
#[derive(Serialize)]
pub(crate) struct Recovered {
    pub(crate) idempotency_key: String,
    /// `recorded`, `joined`, `resent`, `not_taken`, `reversed`, `running`, `unresolved`; for
    /// payments approved offline, `confirmed_offline`, `declined_after` (not charged) or
    /// `pending_offline`.
    pub(crate) ended: &'static str,
    /// Why it is still unresolved.
    pub(crate) reason: Option<String>,
}

/// `posctl recover`, and what a payment command recovered before it ran.
#[derive(Serialize)]
pub(crate) struct Recovery {
    pub(crate) recovery: Vec<Recovered>,
    /// Nothing is left in doubt.
    pub(crate) clean: bool,
}

impl Recovery {
    pub(crate) fn of(report: &RecoveryReport) -> Self {
        let mut recovery = Vec::new();
        let mut add = |keys: &[IdempotencyKey], ended| {
            for k in keys {
                recovery.push(Recovered {
                    idempotency_key: k.to_string(),
                    ended,
                    reason: None,
                });
            }
        };
        add(&report.recorded, "recorded");
        add(&report.awaited, "joined");
        add(&report.resent, "resent");
        add(&report.not_taken, "not_taken");
        add(&report.reversed, "reversed");
        add(&report.running, "running");
        add(&report.confirmed_offline, "confirmed_offline");
        add(&report.declined_after, "declined_after");
        add(&report.pending_offline, "pending_offline");
        for u in &report.unresolved {
            recovery.push(Recovered {
                idempotency_key: u.key.to_string(),
                ended: "unresolved",
                reason: Some(u.reason.clone()),
            });
        }
        Self {
            recovery,
            clean: report.is_clean(),
        }
    }
}

/// A failed command: printed on standard output with `--json` (the message also goes to standard
/// error).
#[derive(Serialize)]
pub(crate) struct Failed {
    pub(crate) error: ErrorBody,
}

#[derive(Serialize)]
pub(crate) struct ErrorBody {
    /// The exit code.
    pub(crate) exit_code: u8,
    /// `failed`, `usage`, `connect`, `declined` or `in_doubt` (by the exit code).
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    /// The payment it is about, when there is one (what `status`, `recover` and `cancel` take).
    pub(crate) idempotency_key: Option<String>,
}

/// A device `posctl discover` found.
#[derive(Serialize)]
pub(crate) struct Device {
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) rssi_dbm: Option<i16>,
    /// `vid:pid` in hex.
    pub(crate) usb: Option<String>,
}

/// A terminal this till is paired with.
#[derive(Serialize)]
pub(crate) struct Pairing {
    pub(crate) terminal_id: String,
    pub(crate) name: String,
    pub(crate) paired_at_ms: u64,
    pub(crate) profiles: Vec<String>,
}

/// One step of `posctl doctor`.
#[derive(Serialize)]
pub(crate) struct DoctorStep<'a> {
    pub(crate) step: &'a str,
    /// `ok`, `warn` or `FAIL`.
    pub(crate) result: &'a str,
    pub(crate) detail: &'a str,
    pub(crate) fix: Option<&'a str>,
}

/// `posctl status --terminal`.
#[derive(Serialize)]
pub(crate) struct TerminalStatus {
    pub(crate) terminal_id: String,
    pub(crate) model: Option<String>,
    /// `native 1.1`, `native 1.0`, `zvt` or `nexo`.
    pub(crate) protocol: &'static str,
    /// Absent when the terminal reports none.
    pub(crate) telemetry: Option<TelemetryJson>,
}

/// A terminal's telemetry.
#[derive(Serialize)]
pub(crate) struct TelemetryJson {
    pub(crate) battery_percent: Option<u8>,
    pub(crate) charging: bool,
    /// `battery`, `mains`, `usb` or `dock`.
    pub(crate) power: Option<&'static str>,
    pub(crate) firmware: Option<String>,
    pub(crate) app_version: Option<String>,
    /// `ok`, `low` or `out`; absent without a printer.
    pub(crate) paper: Option<&'static str>,
    /// `online` or `offline`.
    pub(crate) acquirer: &'static str,
    pub(crate) stored_offline: u32,
}

fn power_name(p: PowerSource) -> &'static str {
    match p {
        PowerSource::Battery => "battery",
        PowerSource::Mains => "mains",
        PowerSource::Usb => "usb",
        PowerSource::Dock => "dock",
        _ => "other",
    }
}

fn paper_name(p: PaperState) -> &'static str {
    match p {
        PaperState::Ok => "ok",
        PaperState::Low => "low",
        PaperState::Out => "out",
        _ => "other",
    }
}

fn acquirer_name(a: AcquirerLink) -> &'static str {
    match a {
        AcquirerLink::Online => "online",
        AcquirerLink::Offline => "offline",
        _ => "other",
    }
}

impl TerminalStatus {
    pub(crate) fn of(
        protocol: &'static str,
        caps: &Capabilities,
        telemetry: Option<&Telemetry>,
    ) -> Self {
        Self {
            terminal_id: caps.terminal_id.to_string(),
            model: caps.model.clone(),
            protocol,
            telemetry: telemetry.map(|t| TelemetryJson {
                battery_percent: t.battery_percent,
                charging: t.charging,
                power: t.power.map(power_name),
                firmware: t.firmware.clone(),
                app_version: t.app_version.clone(),
                paper: t.paper.map(paper_name),
                acquirer: acquirer_name(t.acquirer),
                stored_offline: t.stored_offline,
            }),
        }
    }
}

/// A terminal's telemetry as a person reads it.
pub(crate) struct TelemetryText {
    pub(crate) battery: String,
    pub(crate) power: String,
    pub(crate) software: String,
    pub(crate) paper: String,
    pub(crate) acquirer: String,
}

impl TelemetryText {
    pub(crate) fn of(t: &Telemetry) -> Self {
        let battery = match t.battery_percent {
            Some(p) if p <= Telemetry::BATTERY_LOW_PERCENT => format!("{p} % (low)"),
            Some(p) => format!("{p} %"),
            None => "none (mains only)".into(),
        };
        let power = match t.power {
            Some(p) if t.charging => format!("{}, charging", power_name(p)),
            Some(p) => power_name(p).to_string(),
            None => "not reported".into(),
        };
        let software = format!(
            "firmware {}, app {}",
            t.firmware.as_deref().unwrap_or("?"),
            t.app_version.as_deref().unwrap_or("?")
        );
        let paper = match t.paper {
            Some(PaperState::Out) => "out: receipts cannot be printed".into(),
            Some(p) => paper_name(p).to_string(),
            None => "no printer".into(),
        };
        let acquirer = match t.acquirer {
            AcquirerLink::Offline => {
                "offline: payments declined or approved offline within limits".into()
            }
            a => acquirer_name(a).to_string(),
        };
        Self {
            battery,
            power,
            software,
            paper,
            acquirer,
        }
    }
}
