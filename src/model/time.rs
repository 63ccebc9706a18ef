//! Times: stored as ISO-8601 UTC text with microseconds, which sorts as text, and printed
//! the same way everywhere.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// The time now, as [`time_text`] writes it.
pub(crate) fn now_text() -> String {
    time_text(&Utc::now())
}

/// `t` as it is stored: microseconds, the rest dropped.
pub(crate) fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// `t` as the file stores it and sessiondb prints it, `YYYY-MM-DDTHH:MM:SS.ffffffZ`: ISO-8601
/// UTC with microseconds, so stored times sort as text. Every time sessiondb writes as text
/// goes through here.
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    stored_time(*t).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Serializes times in the one form the file stores (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), for
/// `#[serde(serialize_with)]`: chrono's default drops zero fractions and would print
/// `…:05Z` for one message and `…:05.120Z` for the next. Reading accepts any RFC 3339.
pub(crate) mod timestamp {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(t))
    }

    pub fn serialize_option<S: serde::Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::time_text(t)),
            None => s.serialize_none(),
        }
    }
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Some(t) = parse_our_time(text.as_bytes()) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("timestamp {text:?} is not ISO-8601: {e}")))
}

/// The exact form [`now_text`] writes, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, parsed without the
/// general RFC 3339 machinery: reading a history parses one per message.
fn parse_our_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_micro_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?)?;
    Some(time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_time_reads_what_now_text_writes_and_other_rfc3339() {
        let now = now_text();
        let parsed = parse_time(&now).unwrap();
        assert_eq!(parsed.to_rfc3339_opts(SecondsFormat::Micros, true), now);
        let other = parse_time("2026-01-02T03:04:05+01:00").unwrap();
        assert_eq!(
            other.to_rfc3339_opts(SecondsFormat::Secs, true),
            "2026-01-02T02:04:05Z"
        );
        assert!(matches!(
            parse_time("2026-13-02T03:04:05.000000Z"),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(parse_time("yesterday"), Err(Error::Corrupt(_))));
    }

    #[test]
    fn time_text_is_rfc3339_with_microseconds_and_the_rest_dropped() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(time_text(&t), "2026-01-02T03:04:05.123456Z");
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(time_text(&whole), "2026-01-02T03:04:05.000000Z");
    }
}
