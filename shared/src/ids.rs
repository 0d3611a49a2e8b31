//! Identifiers: prefixed, sortable, random (ULID) ids, and deterministic ids for fired triggers.

use sha2::{Digest, Sha256};

/// A new random id with a readable prefix, e.g. `evt_01J…`. ULIDs sort by creation time.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
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

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
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

/// Parse RFC 3339 / ISO 8601 text into Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
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
}
