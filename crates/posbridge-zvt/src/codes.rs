//! What ZVT's numbers mean in posbridge's terms: result codes, intermediate states, dates, and
//! the transaction ids a ZVT client gives the results it reads.

use posbridge_wire::civil::{civil_from_days, days_from_civil};
use posbridge_wire::{DeclineReason, ErrorCode, Outcome, ProgressStage, Timestamp, TransactionId};

/// Result code `00`: success.
pub const SUCCESS: u8 = 0x00;
/// `6C`: aborted by the abort key or a timeout.
pub const ABORTED: u8 = 0x6C;
/// `64`: card not readable.
pub const CARD_NOT_READABLE: u8 = 0x64;
/// `66`: processing error.
pub const PROCESSING_ERROR: u8 = 0x66;
/// `6F`: wrong currency.
pub const WRONG_CURRENCY: u8 = 0x6F;
/// `78`: card expired.
pub const CARD_EXPIRED: u8 = 0x78;
/// `7D`: communication error (the host could not be reached).
pub const COMMUNICATION_ERROR: u8 = 0x7D;
/// `77`: end-of-day batch not possible.
pub const EOD_NOT_POSSIBLE: u8 = 0x77;
/// `83`: function not possible.
pub const FUNCTION_NOT_POSSIBLE: u8 = 0x83;
/// `9A`: ZVT protocol error.
pub const PROTOCOL_ERROR: u8 = 0x9A;
/// `A0`: receiver not ready (busy).
pub const NOT_READY: u8 = 0xA0;
/// `B4`: already reversed.
pub const ALREADY_REVERSED: u8 = 0xB4;
/// `B5`: reversal not possible.
pub const REVERSAL_NOT_POSSIBLE: u8 = 0xB5;
/// `B7`: pre-authorisation incorrect (amount or receipt).
pub const PREAUTH_INCORRECT: u8 = 0xB7;
/// `C5`: payment method not supported.
pub const METHOD_NOT_SUPPORTED: u8 = 0xC5;
/// `C6`: currency not applicable.
pub const CURRENCY_NOT_APPLICABLE: u8 = 0xC6;
/// `DC`: card inserted (removed too early / still inserted).
pub const CARD_INSERTED: u8 = 0xDC;
/// `FF`: system error.
pub const SYSTEM_ERROR: u8 = 0xFF;

/// How the payment host's own result codes (`01`–`63`) are read. They come from the network
/// operator or acquirer, and mean different things at different ones (`33` is "insufficient
/// funds" read as a decimal ISO 8583 code, "PIN entry required" in another acquirer's table):
/// without a table chosen for the acquirer, none is read into them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCodes {
    /// Kept raw: `DeclineReason::host(code)`, "declined by the payment host, code 0x33" (the
    /// default).
    Raw,
    /// Read with a table for the acquirer; a code the table lacks stays raw.
    Table(&'static HostCodeTable),
}

/// A table of an acquirer's host result codes, with where it comes from.
#[derive(Debug, PartialEq, Eq)]
pub struct HostCodeTable {
    /// Where the table comes from (the acquirer's documentation, say), for a person checking it.
    pub source: &'static str,
    /// Each code with the reason it stands for.
    pub reasons: &'static [(u8, DeclineReason)],
}

impl HostCodes {
    /// The decline reason for host code `code`.
    pub fn reason(self, code: u8) -> DeclineReason {
        match self {
            Self::Table(t) => t
                .reasons
                .iter()
                .find(|(c, _)| *c == code)
                .map_or(DeclineReason::host(code), |(_, r)| *r),
            Self::Raw => DeclineReason::host(code),
        }
    }
}

/// The host answers of a terminal (ours, the simulator's ZVT role) that passes the ISO 8583
/// response code through as its binary value (`51` insufficient funds as `0x33`).
pub static ISO_8583_AS_BINARY: HostCodeTable = HostCodeTable {
    source: "ISO 8583 response codes sent as their binary value (posbridge's own ZVT terminal role)",
    reasons: &[
        (1, DeclineReason::REFER_TO_ISSUER),
        (5, DeclineReason::DO_NOT_HONOUR),
        (14, DeclineReason::INVALID_CARD),
        (51, DeclineReason::INSUFFICIENT_FUNDS),
        (54, DeclineReason::EXPIRED_CARD),
        (55, DeclineReason::WRONG_PIN),
        (57, DeclineReason::NOT_PERMITTED),
        (59, DeclineReason::SUSPECTED_FRAUD),
        (61, DeclineReason::LIMIT_EXCEEDED),
        (62, DeclineReason::RESTRICTED_CARD),
    ],
};

/// The outcome a ZVT result code stands for, the host's own codes (`01`–`63`) kept raw.
pub fn outcome(code: u8) -> Outcome {
    outcome_with(code, HostCodes::Raw)
}

/// The outcome a ZVT result code stands for, the host's own codes (`01`–`63`) read by `host`.
pub fn outcome_with(code: u8, host: HostCodes) -> Outcome {
    match code {
        SUCCESS => Outcome::Approved,
        0x01..=0x63 => Outcome::Declined(host.reason(code)),
        ABORTED => Outcome::Cancelled,
        CARD_EXPIRED => Outcome::Declined(DeclineReason::EXPIRED_CARD),
        0x6E | 0x7A | 0x73 => Outcome::Declined(DeclineReason::INVALID_CARD),
        0x71 => Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
        0xC3 => Outcome::Declined(DeclineReason::LIMIT_EXCEEDED),
        CARD_NOT_READABLE | 0x65 | 0x72 => Outcome::Failed(ErrorCode::CARD_READ_ERROR),
        WRONG_CURRENCY | CURRENCY_NOT_APPLICABLE => {
            Outcome::Failed(ErrorCode::CURRENCY_NOT_SUPPORTED)
        }
        COMMUNICATION_ERROR | 0x9B | 0xA1 | 0xA3 => Outcome::Failed(ErrorCode::HOST_UNREACHABLE),
        FUNCTION_NOT_POSSIBLE | 0x6B | 0xEB => Outcome::Failed(ErrorCode::KIND_NOT_SUPPORTED),
        METHOD_NOT_SUPPORTED => Outcome::Failed(ErrorCode::METHOD_NOT_SUPPORTED),
        ALREADY_REVERSED | REVERSAL_NOT_POSSIBLE | PREAUTH_INCORRECT | 0xB8 => {
            Outcome::Failed(ErrorCode::ORIGINAL_NOT_ELIGIBLE)
        }
        NOT_READY | 0x9C | EOD_NOT_POSSIBLE => Outcome::Failed(ErrorCode::BUSY),
        CARD_INSERTED => Outcome::Failed(ErrorCode::CARD_REMOVED),
        0xC8 | 0xC9 => Outcome::Failed(ErrorCode::AMOUNT_OUT_OF_RANGE),
        0xCC => Outcome::Failed(ErrorCode::PRINTER_ERROR),
        PROTOCOL_ERROR => Outcome::Failed(ErrorCode::INVALID_REQUEST),
        _ => Outcome::Failed(ErrorCode::INTERNAL),
    }
}

/// The ZVT result code for an outcome (what a ZVT terminal role sends).
pub fn result_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Approved | Outcome::PartiallyApproved => SUCCESS,
        Outcome::Declined(r) if r.host_code().is_some_and(|c| (1..=0x63).contains(&c)) => {
            r.host_code().unwrap_or(0x05)
        }
        Outcome::Declined(r) if (1..=0x63).contains(&r.0) => r.0 as u8,
        Outcome::Declined(DeclineReason::EXPIRED_CARD) => CARD_EXPIRED,
        Outcome::Declined(_) => 0x05,
        Outcome::Cancelled => ABORTED,
        Outcome::Failed(e) => match e {
            ErrorCode::CARD_READ_ERROR => CARD_NOT_READABLE,
            ErrorCode::CURRENCY_NOT_SUPPORTED => WRONG_CURRENCY,
            ErrorCode::HOST_UNREACHABLE => COMMUNICATION_ERROR,
            ErrorCode::KIND_NOT_SUPPORTED => FUNCTION_NOT_POSSIBLE,
            ErrorCode::METHOD_NOT_SUPPORTED => METHOD_NOT_SUPPORTED,
            ErrorCode::ORIGINAL_NOT_ELIGIBLE | ErrorCode::ORIGINAL_NOT_FOUND => {
                REVERSAL_NOT_POSSIBLE
            }
            ErrorCode::BUSY => NOT_READY,
            ErrorCode::CARD_REMOVED => CARD_INSERTED,
            ErrorCode::TIMEOUT => ABORTED,
            ErrorCode::AMOUNT_OUT_OF_RANGE => 0xC8,
            ErrorCode::PRINTER_ERROR => 0xCC,
            ErrorCode::INVALID_REQUEST => PROTOCOL_ERROR,
            _ => SYSTEM_ERROR,
        },
        _ => SYSTEM_ERROR,
    }
}

/// Intermediate status `0A`: insert card.
pub const STATUS_INSERT_CARD: u8 = 0x0A;
/// `0B`: please remove card.
pub const STATUS_REMOVE_CARD: u8 = 0x0B;
/// `0E`: please wait (the card is being read).
pub const STATUS_PLEASE_WAIT: u8 = 0x0E;
/// `01`: please watch the PIN pad.
pub const STATUS_WATCH_PIN_PAD: u8 = 0x01;
/// `04`: waiting for the host (FEP).
pub const STATUS_WAITING_FOR_HOST: u8 = 0x04;
/// `2B`: signature required (customer signs the receipt).
pub const STATUS_SIGNATURE: u8 = 0x2B;

/// The stage an intermediate status reports, with the terminal's text for it.
pub fn stage(status: u8) -> (ProgressStage, &'static str) {
    match status {
        STATUS_INSERT_CARD => (ProgressStage::WaitingForCard, "Insert card"),
        0x17 | STATUS_PLEASE_WAIT => (ProgressStage::CardRead, "Please wait"),
        STATUS_WATCH_PIN_PAD | 0x02 => (ProgressStage::PinEntry, "Please watch PIN pad"),
        0x15 => (ProgressStage::PinEntry, "Incorrect PIN"),
        STATUS_WAITING_FOR_HOST => (ProgressStage::ProcessingOnline, "Waiting for the host"),
        STATUS_REMOVE_CARD => (ProgressStage::RemoveCard, "Please remove card"),
        STATUS_SIGNATURE => (ProgressStage::SignatureRequired, "Signature required"),
        // Codes without a stage of their own keep their number (outside 1–6, which name
        // stages).
        other if (1..=6).contains(&other) => {
            (ProgressStage::Other(0x80 | other), "Terminal status")
        }
        other => (ProgressStage::Other(other), "Terminal status"),
    }
}

/// The intermediate status a ZVT terminal role shows for `stage`.
pub fn status_for(stage: ProgressStage) -> u8 {
    match stage {
        ProgressStage::WaitingForCard => STATUS_INSERT_CARD,
        ProgressStage::CardRead => STATUS_PLEASE_WAIT,
        ProgressStage::PinEntry => STATUS_WATCH_PIN_PAD,
        ProgressStage::ProcessingOnline => STATUS_WAITING_FOR_HOST,
        ProgressStage::SignatureRequired => STATUS_SIGNATURE,
        ProgressStage::RemoveCard => STATUS_REMOVE_CARD,
        _ => STATUS_PLEASE_WAIT,
    }
}

/// ZVT's date (`MMDD`) and time (`hhmmss`, as the decimal number its BCD digits read) of a
/// timestamp, in UTC.
pub fn date_time(t: Timestamp) -> (u16, u32) {
    let secs = (t.0 / 1000) as i64;
    let (_, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400) as u32;
    (
        (m * 100 + d) as u16,
        (s / 3600) * 10_000 + (s / 60 % 60) * 100 + s % 60,
    )
}

/// The timestamp of a ZVT date and time (UTC), in the year that puts it nearest to `near`
/// (ZVT dates carry no year: a result read on 1 January may be from 31 December).
pub fn timestamp(date: u16, time: u32, near: Timestamp) -> Option<Timestamp> {
    let (m, d) = (u32::from(date / 100), u32::from(date % 100));
    let (h, mi, s) = (time / 10_000, time / 100 % 100, time % 100);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let (year, _, _) = civil_from_days((near.0 / 1000 / 86_400) as i64);
    let at = |y: i64| {
        let secs = days_from_civil(y, m, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
        secs.max(0) as u64 * 1000
    };
    [year - 1, year, year + 1]
        .into_iter()
        .map(at)
        .min_by_key(|t| t.abs_diff(near.0))
        .map(Timestamp)
}

/// The timestamp of a civil date and a time of day (`hhmmss` as the decimal number its BCD
/// digits read), as if it were UTC.
pub fn timestamp_of(year: i64, month: u32, day: u32, time: u32) -> Option<Timestamp> {
    let (h, mi, s) = (time / 10_000, time / 100 % 100, time % 100);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    u64::try_from(secs).ok().map(|s| Timestamp(s * 1000))
}

/// The civil date (year, month, day) and time of day (`hhmmss`) of a timestamp, as UTC.
pub fn civil_of(t: Timestamp) -> (i64, u32, u32, u32) {
    let secs = (t.0 / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400) as u32;
    (y, m, d, (s / 3600) * 10_000 + (s / 60 % 60) * 100 + s % 60)
}

/// The parts of a ZVT transaction that identify it: the terminal id (`29`), trace number
/// (`0B`), receipt number (`87`) and the date and time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ZvtRef {
    /// The terminal id (8 digits).
    pub terminal: u32,
    /// The trace number (6 digits).
    pub trace: u32,
    /// The receipt number (4 digits).
    pub receipt: u16,
    /// `MMDDhhmmss`.
    pub stamp: u64,
}

impl ZvtRef {
    /// The transaction id posbridge gives it (the same for the same transaction every time it
    /// is read: its result, its repeat receipt). The receipt number can be read back.
    pub fn id(self) -> TransactionId {
        TransactionId::from_u128(
            u128::from(self.terminal) << 96
                | u128::from(self.trace & 0xFF_FFFF) << 72
                | u128::from(self.receipt) << 56
                | u128::from(self.stamp & ((1 << 56) - 1)),
        )
    }

    /// The parts of a transaction id made by [`id`](Self::id).
    pub fn from_id(id: &TransactionId) -> Self {
        let v = u128::from_be_bytes(*id.as_bytes());
        Self {
            terminal: (v >> 96) as u32,
            trace: (v >> 72) as u32 & 0xFF_FFFF,
            receipt: (v >> 56) as u16,
            stamp: (v & ((1 << 56) - 1)) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_find_their_year() {
        let t = Timestamp(1_764_000_000_000); // 2025-11-24 16:00:00 UTC
        assert_eq!(date_time(t), (1124, 160_000));
        assert_eq!(timestamp(1124, 160_000, t), Some(t));
        // Read on 1 January: 31 December is last year's.
        let new_year = Timestamp(1_767_225_600_000); // 2026-01-01 00:00:00 UTC
        assert_eq!(
            timestamp(1231, 235_959, new_year),
            Some(Timestamp(1_767_225_599_000))
        );
        assert_eq!(timestamp(1331, 0, t), None);
        assert_eq!(timestamp(1124, 246_000, t), None);
    }

    #[test]
    fn ids_carry_the_receipt_number() {
        let r = ZvtRef {
            terminal: 52_500_038,
            trace: 123_456,
            receipt: 42,
            stamp: 1_124_160_000,
        };
        assert_eq!(ZvtRef::from_id(&r.id()), r);
    }

    #[test]
    fn result_codes_map_both_ways() {
        for o in [
            Outcome::Approved,
            Outcome::Cancelled,
            Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
            Outcome::Declined(DeclineReason::WRONG_PIN),
            Outcome::Failed(ErrorCode::CARD_READ_ERROR),
            Outcome::Failed(ErrorCode::HOST_UNREACHABLE),
        ] {
            let iso = HostCodes::Table(&ISO_8583_AS_BINARY);
            assert_eq!(outcome_with(result_code(o), iso), o, "{o:?}");
        }
        // A host's code means nothing without the acquirer's table: kept raw, and said so.
        let raw = outcome(0x33);
        assert_eq!(raw, Outcome::Declined(DeclineReason::host(0x33)));
        let Outcome::Declined(reason) = raw else {
            unreachable!()
        };
        assert_eq!(
            reason.to_string(),
            "declined by the payment host, code 0x33"
        );
        assert_eq!(
            result_code(raw),
            0x33,
            "a terminal role passes it on as it came"
        );
        assert_eq!(
            outcome_with(0x33, HostCodes::Table(&ISO_8583_AS_BINARY)),
            Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS)
        );
        assert_eq!(
            outcome_with(0x3F, HostCodes::Table(&ISO_8583_AS_BINARY)),
            Outcome::Declined(DeclineReason::host(0x3F)),
            "a code the table lacks stays raw"
        );
        for s in [
            ProgressStage::WaitingForCard,
            ProgressStage::CardRead,
            ProgressStage::PinEntry,
            ProgressStage::ProcessingOnline,
            ProgressStage::RemoveCard,
            ProgressStage::SignatureRequired,
        ] {
            assert_eq!(stage(status_for(s)).0, s);
        }
    }
}
