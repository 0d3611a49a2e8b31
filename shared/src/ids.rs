//! Identifiers: prefixed, sortable, random (ULID) ids and the clock. The pure ones (derived
//! ids, RFC 3339 text) live in `leadstream_domain::ids` and are re-exported here, so the many
//! callers that also need `new_id` / `now_ms` keep one import.

pub use leadstream_domain::ids::{derived_id, parse_rfc3339_ms, rfc3339_ms};

/// A new random id with a readable prefix, e.g. `evt_01J…`. ULIDs sort by creation time.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
