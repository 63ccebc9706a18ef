//! Argument text into values: the `value_parser`s of `args.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// `30d`, `12h`, `15m`, `45s`, `2w`, `500ms`, or `0`. Any other number needs its unit:
/// `--idle 90` meant days to one reader and deleted sessions idle for 90 seconds. Months
/// and years are refused, since their length varies.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is not a duration such as 500ms"));
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None if text.parse() == Ok(0u64) => (text, "s"),
        None => {
            return Err(format!(
                "{text:?} has no unit: write {text}s, {text}m, {text}h, {text}d or {text}w"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30d, 12h, 15m or 0"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "mo" | "M" | "y" | "yr" => {
            return Err(format!(
                "{text:?}: months and years vary in length; write days instead (30d, 365d)"
            ))
        }
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h, d or w"
            ))
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A date (`2025-01-31`, midnight UTC) or an RFC 3339 time.
pub fn parse_time_arg(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is not a date (2025-01-31) or an RFC 3339 time"))
}

pub fn positive(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A duration as the shortest text [`parse_duration`] reads back: `90d`, `36h`, `15m`, `45s`.
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match s {
        0 => "0".into(),
        _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
        _ if s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}
