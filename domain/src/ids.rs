//! Deterministic ids (a fired trigger's id from its parts) and RFC 3339 text for Unix
//! milliseconds. Random ids and the clock (`new_id`, `now_ms`) are not pure and live in
//! `leadstream_shared::ids`.

use sha2::{Digest, Sha256};

/// An OU's id where it travels beside a lead's: functions that take both (key layouts, the
/// Kafka key, lead state reads) take these, so the pair cannot be passed the wrong way round.
/// Borrowed: wrapping a field costs nothing (`OuId(&event.ou_id)`, or [`crate::event`]'s and
/// [`crate::fired`]'s accessors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OuId<'a>(pub &'a str);

/// A lead's id (unique within its OU), beside its [`OuId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeadId<'a>(pub &'a str);

impl<'a> OuId<'a> {
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

impl<'a> LeadId<'a> {
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

impl std::fmt::Display for OuId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Display for LeadId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A deterministic id derived from its parts, e.g. a fired trigger's id from (trigger, lead,
/// crossing). The same parts always give the same id, so a replay produces the same id and the
/// notifier can deliver idempotently.
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    format!("{prefix}_{}", hex::encode(&digest[..16]))
}

/// RFC 3339 text for Unix milliseconds (UTC, millisecond precision, `Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Whole seconds are written as the seeds write them (`2025-01-15T10:35:00Z`).
    if ms.rem_euclid(1000) == 0 {
        let fmt =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        t.format(&fmt).unwrap_or_default()
    } else {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.format(&fmt).unwrap_or_default()
    }
}

/// Parse RFC 3339 text into Unix milliseconds. Accepted beyond the strict grammar, as producers
/// write ISO 8601: a lowercase `t` / `z` or a space as separator, any number of fraction digits
/// (beyond nanoseconds truncated), and offsets without a colon or minutes (`+0000`, `+00`).
/// A time without an offset is refused: its instant is unknown.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let normal = normalise_rfc3339(s.trim())?;
    let t = time::OffsetDateTime::parse(&normal, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The strict RFC 3339 spelling of `s`: `T`, `Z`, `±HH:MM`, at most nine fraction digits.
fn normalise_rfc3339(s: &str) -> Option<String> {
    // `YYYY-MM-DD` then the separator at byte 10.
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // The offset: `Z`, or a sign after the seconds (the date's own `-`s are already split off).
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, "Z".to_string())
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, o) = rest.split_at(at);
        let (sign, digits) = o.split_at(1);
        let digits = digits.replace(':', "");
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hm = match digits.len() {
            2 => format!("{digits}:00"),
            4 => format!("{}:{}", &digits[..2], &digits[2..]),
            _ => return None,
        };
        (c, format!("{sign}{hm}"))
    };
    let clock = match clock.split_once('.') {
        Some((hms, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{hms}.{}", &frac[..frac.len().min(9)])
        }
        Some(_) => return None,
        None => clock.to_string(),
    };
    Some(format!("{date}T{clock}{offset}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_unambiguous() {
        assert_eq!(
            derived_id("fir", &["a", "b"]),
            derived_id("fir", &["a", "b"])
        );
        assert_ne!(
            derived_id("fir", &["ab", ""]),
            derived_id("fir", &["a", "b"])
        );
    }

    #[test]
    fn rfc3339_round_trips() {
        let ms = parse_rfc3339_ms("2025-09-15T14:30:00Z").unwrap();
        assert_eq!(rfc3339_ms(ms), "2025-09-15T14:30:00Z");
        assert_eq!(rfc3339_ms(ms + 5), "2025-09-15T14:30:00.005Z");
        assert!(parse_rfc3339_ms("yesterday").is_none());
    }

    #[test]
    fn every_rfc3339_spelling_and_common_iso_offsets_parse() {
        let ms = 1_757_946_600_000; // 2025-09-15T14:30:00Z
        for s in [
            "2025-09-15T14:30:00Z",
            "2025-09-15t14:30:00z",
            "2025-09-15 14:30:00Z",
            "2025-09-15T14:30:00+00:00",
            "2025-09-15T14:30:00-00:00",
            "2025-09-15T14:30:00+0000",
            "2025-09-15T14:30:00+00",
            "2025-09-15T16:30:00+02:00",
            "2025-09-15T16:30:00+0200",
            "2025-09-15T09:30:00-05",
            "2025-09-15T14:30:00.0Z",
            "2025-09-15T14:30:00.000000000000Z",
            " 2025-09-15T14:30:00.0001234567891+00:00 ",
        ] {
            assert_eq!(parse_rfc3339_ms(s), Some(ms), "{s}");
        }
        assert_eq!(parse_rfc3339_ms("2025-09-15T14:30:00.5Z"), Some(ms + 500));
        assert_eq!(
            parse_rfc3339_ms("2025-09-15T14:30:00.123456+00"),
            Some(ms + 123)
        );
        for s in [
            "2025-09-15T14:30:00",
            "2025-09-15T14:30:00.5",
            "2025-09-15",
            "2025-09-15T14:30:00+2",
            "2025-09-15T14:30:00+02:00:00",
            "2025-09-15T14:30:00.Z",
            "2025-09-15T14:30:00.5x+00",
            "2025-09-15X14:30:00Z",
            "2025-09-15T14:30:00Zé",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }
}
