//! nexo's times: ISO 8601 (`2026-12-04T09:30:00.000Z`, or with an offset such as `+01:00`).

use posbridge_wire::Timestamp;
use posbridge_wire::civil::{civil_from_days, days_from_civil, days_in_month};

/// `t` in ISO 8601, UTC, with milliseconds.
pub fn format(t: Timestamp) -> String {
    let ms = t.0 % 1000;
    let secs = (t.0 / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Reads an ISO 8601 date and time: `YYYY-MM-DDThh:mm:ss`, optional fraction of a second,
/// then `Z`, an offset `±hh:mm` (or `±hhmm`), or nothing (read as UTC). `None` for anything else
/// or a time before 1970.
pub fn parse(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    let mut i = 19;
    let mut ms = 0u64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &text[start..i.min(start + 3)];
        ms = frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32);
    }
    let offset_min: i64 = match &text[i..] {
        "" | "Z" | "z" => 0,
        rest => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = digits[..2].parse().ok()?;
            let om: i64 = digits[2..].parse().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s.min(59))
        - offset_min * 60;
    let ms_total = secs.checked_mul(1000)?.checked_add(ms as i64)?;
    u64::try_from(ms_total).ok().map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_offsets_count() {
        let t = Timestamp(1_764_840_600_123);
        assert_eq!(format(t), "2025-12-04T09:30:00.123Z");
        assert_eq!(parse(&format(t)), Some(t));
        assert_eq!(parse("2025-12-04T10:30:00.123+01:00"), Some(t));
        assert_eq!(parse("2025-12-04T10:30:00.123+0100"), Some(t));
        assert_eq!(parse("2025-12-04T09:30:00.1234567Z"), Some(t));
        assert_eq!(
            parse("2025-12-04T09:30:00"),
            Some(Timestamp(1_764_840_600_000))
        );
        for bad in [
            "",
            "2025-13-04T09:30:00Z",
            "2025-02-30T09:30:00Z",
            "2025-12-04 09:30",
            "2025-12-04T09:30:00.Z",
            "2025-12-04T09:30:00+1:00",
            "1969-12-31T23:59:59Z",
            "2025-12-04T09:30:00Zjunk",
            "２025-12-04T09:30:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
