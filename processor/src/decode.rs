//! Turning a Kafka record into an [`EngagementEvent`].
//!
//! The gateway writes Avro (single-object encoding). Internal systems may also write Avro, or
//! JSON with the header `content-type: application/json`. The JSON contract is
//! `schemas/EngagementEvent.json` (a JSON Schema), explained with a complete example in
//! `schemas/README.md`:
//!
//! ```json
//! {"ou_id": "unit_default", "lead_id": "ld_1", "event_type": "page_view",
//!  "event_time": "2026-01-01T10:00:00Z", "metadata": {"path": "/pricing"},
//!  "source": "crm", "producer_event_id": "crm-42"}
//! ```
//!
//! The Avro schema's own field names are accepted too (`metadata_json` as a JSON text,
//! `received_at`, `origin`, times as Unix milliseconds, optional strings as Avro's JSON encoding
//! `{"string": "…"}`), so the JSON rendering of an `EngagementEvent.avsc` record is a valid
//! JSON event. Fields the processor does not know are ignored and counted
//! (`leadstream_processor_json_unknown_fields_total`), so a producer that adds a field in its
//! next version loses nothing.
//!
//! `lead_id` may be replaced by `aliases: [{"kind": "email", "value": "a@b.co"}]`; the
//! processor resolves it. A record without an `event_id` gets one derived from its topic,
//! partition and offset, so a replay of the same record has the same id.
//!
//! A record value larger than [`MAX_RECORD_BYTES`] is refused before it is decoded: its
//! metadata would be copied into lead state, history and fired payloads. A valid event with
//! neither `lead_id` nor aliases (the gateway stores seed 001 envelopes without identity that
//! way) is [`DecodeError::NoLead`]: nothing to score, skipped, not dead-lettered.

use leadstream_domain::event::{Alias, AliasKind, EngagementEvent, Origin};
use leadstream_shared::avro::{decode_event, AvroError};
use leadstream_shared::ids::{derived_id, now_ms, parse_rfc3339_ms};
use leadstream_shared::metric;
use serde::Deserialize;

use crate::metrics::ProcessorCounter;

/// Largest record value accepted; the gateway's `LEADSTREAM_MAX_EVENT_BYTES` cannot be set above
/// what fits in it.
pub use leadstream_domain::event::MAX_RECORD_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record has no value")]
    Empty,
    #[error("record value of {0} bytes is larger than the {MAX_RECORD_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("Avro: {0}")]
    Avro(#[from] AvroError),
    #[error("JSON: {0}")]
    Json(String),
    #[error("invalid event: {0}")]
    Invalid(String),
    /// Not an error of the record: a valid event that names no lead has nothing to score.
    #[error("event has neither lead_id nor aliases")]
    NoLead,
}

/// The record says its value is JSON (`content-type: application/json…` header); otherwise
/// a value starting with the single-object marker is read as Avro.
pub fn is_json<M: rdkafka::Message>(m: &M) -> bool {
    use rdkafka::message::Headers;
    m.headers().is_some_and(|h| {
        h.iter().any(|x| {
            x.key.eq_ignore_ascii_case("content-type")
                && x.value.is_some_and(|v| v.starts_with(b"application/json"))
        })
    })
}

/// Where a record came from, for derived ids.
pub struct Position<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

pub fn decode(
    value: Option<&[u8]>,
    json_header: bool,
    pos: &Position<'_>,
) -> Result<EngagementEvent, DecodeError> {
    let bytes = value.filter(|v| !v.is_empty()).ok_or(DecodeError::Empty)?;
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let event = if bytes.first() == Some(&0xC3) && !json_header {
        decode_event(bytes)?
    } else {
        decode_json(bytes, pos)?
    };
    validate(&event)?;
    Ok(event)
}

#[derive(Deserialize)]
struct JsonEvent {
    event_id: Option<String>,
    org_id: Option<String>,
    ou_id: String,
    lead_id: Option<AvroString>,
    #[serde(default)]
    aliases: Vec<JsonAlias>,
    source: Option<AvroString>,
    producer_event_id: Option<AvroString>,
    event_type: String,
    event_time: Option<serde_json::Value>,
    received_at: Option<serde_json::Value>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The Avro schema's name for `metadata`: the object as JSON text.
    metadata_json: Option<String>,
    origin: Option<String>,
    environment: Option<AvroString>,
    severity: Option<AvroString>,
    /// Fields this version does not know: ignored, counted.
    #[serde(flatten)]
    unknown: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct JsonAlias {
    kind: String,
    value: String,
    #[serde(flatten)]
    unknown: serde_json::Map<String, serde_json::Value>,
}

/// An optional string as plain JSON (`"x"`) or in Avro's JSON encoding of `["null","string"]`
/// (`{"string": "x"}`).
#[derive(Deserialize)]
#[serde(untagged)]
enum AvroString {
    Plain(String),
    Union { string: String },
}

fn plain(v: Option<AvroString>) -> Option<String> {
    v.map(|v| match v {
        AvroString::Plain(s) | AvroString::Union { string: s } => s,
    })
}

/// An RFC 3339 string (see [`parse_rfc3339_ms`] for the spellings) or Unix milliseconds.
fn millis(field: &str, v: &serde_json::Value) -> Result<i64, DecodeError> {
    match v {
        serde_json::Value::String(s) => parse_rfc3339_ms(s).ok_or_else(|| {
            DecodeError::Invalid(format!(
                "{field} {s:?} is not an RFC 3339 timestamp with an offset (e.g. 2026-01-01T10:00:00Z)"
            ))
        }),
        serde_json::Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| DecodeError::Invalid(format!("{field} must be integer milliseconds"))),
        _ => Err(DecodeError::Invalid(format!(
            "{field} must be an RFC 3339 string or Unix milliseconds"
        ))),
    }
}

fn decode_json(bytes: &[u8], pos: &Position<'_>) -> Result<EngagementEvent, DecodeError> {
    let j: JsonEvent =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let unknown = j.unknown.len() + j.aliases.iter().map(|a| a.unknown.len()).sum::<usize>();
    if unknown > 0 {
        metric::counter!(ProcessorCounter::JsonUnknownFields).increment(unknown as u64);
    }
    let now = now_ms();
    let received_at_ms = match &j.received_at {
        None | Some(serde_json::Value::Null) => now,
        Some(v) => millis("received_at", v)?,
    };
    let event_time_ms = match &j.event_time {
        None | Some(serde_json::Value::Null) => received_at_ms,
        Some(v) => millis("event_time", v)?,
    };
    let metadata = match (j.metadata, j.metadata_json) {
        (Some(_), Some(_)) => {
            return Err(DecodeError::Invalid(
                "give metadata or metadata_json, not both".into(),
            ))
        }
        (Some(m), None) => m,
        (None, Some(text)) => match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(DecodeError::Invalid(
                    "metadata_json must be the text of a JSON object".into(),
                ))
            }
        },
        (None, None) => Default::default(),
    };
    let origin = match j.origin.as_deref() {
        None => Origin::Kafka,
        Some(o) => Origin::parse(o).ok_or_else(|| {
            DecodeError::Invalid(format!(
                "origin {o:?} is not one of ingest, events, cdp, import, kafka"
            ))
        })?,
    };
    let aliases = j
        .aliases
        .iter()
        .map(|a| {
            let kind = AliasKind::parse(&a.kind)
                .ok_or_else(|| DecodeError::Invalid(format!("unknown alias kind {:?}", a.kind)))?;
            Alias::normalise(kind, &a.value).map_err(|e| DecodeError::Invalid(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let offset = pos.offset.to_string();
    let partition = pos.partition.to_string();
    Ok(EngagementEvent {
        event_id: j
            .event_id
            .unwrap_or_else(|| derived_id("evt", &[pos.topic, &partition, &offset])),
        org_id: j
            .org_id
            .unwrap_or_else(|| leadstream_shared::DEFAULT_ORG.into()),
        ou_id: j.ou_id,
        lead_id: plain(j.lead_id),
        aliases,
        source: plain(j.source),
        producer_event_id: plain(j.producer_event_id),
        event_type: j.event_type,
        event_time_ms,
        received_at_ms,
        metadata,
        origin,
        environment: plain(j.environment),
        severity: plain(j.severity),
    })
}

fn validate(e: &EngagementEvent) -> Result<(), DecodeError> {
    let bad = |m: &str| Err(DecodeError::Invalid(m.to_string()));
    if e.ou_id.is_empty() || e.ou_id.len() > 128 {
        return bad("ou_id must be 1 to 128 characters");
    }
    if e.event_type.is_empty() || e.event_type.len() > 256 {
        return bad("event_type must be 1 to 256 characters");
    }
    if e.event_id.is_empty() {
        return bad("event_id must not be empty");
    }
    match &e.lead_id {
        Some(l) if l.is_empty() || l.len() > 256 => bad("lead_id must be 1 to 256 characters"),
        None if e.aliases.is_empty() => Err(DecodeError::NoLead),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POS: Position<'static> = Position {
        topic: "t",
        partition: 1,
        offset: 7,
    };

    #[test]
    fn json_records_get_a_stable_id_and_time() {
        let body = br#"{"ou_id":"unit_default","aliases":[{"kind":"email","value":" A@B.co "}],"event_type":"page_view","event_time":"2026-01-01T00:00:00Z"}"#;
        let a = decode(Some(body), true, &POS).unwrap();
        let b = decode(Some(body), true, &POS).unwrap();
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(a.aliases[0].value, "a@b.co");
        assert_eq!(a.event_time_ms, 1_767_225_600_000);
    }

    #[test]
    fn the_avro_schemas_json_rendering_is_accepted_and_unknown_fields_ignored() {
        let body = serde_json::json!({
            "event_id": "evt_9", "org_id": "org_default", "ou_id": "unit_default",
            "lead_id": {"string": "ld_9"}, "aliases": [{"kind": "email", "value": "a@b.co", "note": 1}],
            "source": null, "producer_event_id": {"string": "p9"}, "event_type": "page_view",
            "event_time": 1_767_225_600_000_i64, "received_at": "2026-01-01T00:00:01.5+00:00",
            "metadata_json": "{\"path\":\"/pricing\"}", "origin": "cdp",
            "environment": null, "severity": "info", "added_in_v3": {"x": 1}
        });
        let e = decode(Some(&serde_json::to_vec(&body).unwrap()), true, &POS).unwrap();
        assert_eq!(e.lead_id.as_deref(), Some("ld_9"));
        assert_eq!(e.producer_event_id.as_deref(), Some("p9"));
        assert_eq!(e.source, None);
        assert_eq!(e.event_time_ms, 1_767_225_600_000);
        assert_eq!(e.received_at_ms, 1_767_225_601_500);
        assert_eq!(e.metadata["path"], "/pricing");
        assert_eq!(e.origin, Origin::Cdp);
        assert_eq!(e.severity.as_deref(), Some("info"));
    }

    #[test]
    fn contradictions_and_bad_values_are_clear_errors() {
        for (body, words) in [
            (
                r#"{"ou_id":"u","lead_id":"l","event_type":"x","metadata":{},"metadata_json":"{}"}"#,
                "not both",
            ),
            (
                r#"{"ou_id":"u","lead_id":"l","event_type":"x","metadata_json":"[1]"}"#,
                "metadata_json",
            ),
            (
                r#"{"ou_id":"u","lead_id":"l","event_type":"x","origin":"mars"}"#,
                "origin",
            ),
            (
                r#"{"ou_id":"u","lead_id":"l","event_type":"x","event_time":"2026-01-01T10:00:00"}"#,
                "event_time",
            ),
        ] {
            match decode(Some(body.as_bytes()), true, &POS) {
                Err(DecodeError::Invalid(m)) => assert!(m.contains(words), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(decode(None, false, &POS), Err(DecodeError::Empty)));
        assert!(matches!(
            decode(Some(b"{nope"), true, &POS),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode(
                Some(br#"{"ou_id":"u","event_type":"x","lead_id":""}"#),
                true,
                &POS
            ),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(Some(br#"{"ou_id":"u","event_type":"x"}"#), true, &POS),
            Err(DecodeError::NoLead)
        ));
        assert!(matches!(
            decode(Some(&[0xC3, 0x01, 0, 0]), false, &POS),
            Err(DecodeError::Avro(_))
        ));
        let huge = vec![b' '; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            decode(Some(&huge), true, &POS),
            Err(DecodeError::TooLarge(_))
        ));
    }
}
