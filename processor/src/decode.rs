//! Turning a Kafka record into an [`EngagementEvent`].
//!
//! The gateway writes Avro (single-object encoding). Internal systems may also write Avro, or
//! JSON with the header `content-type: application/json`:
//!
//! ```json
//! {"ou_id": "unit_default", "lead_id": "ld_1", "event_type": "page_view",
//!  "event_time": "2026-01-01T10:00:00Z", "metadata": {"path": "/pricing"},
//!  "source": "crm", "producer_event_id": "crm-42"}
//! ```
//!
//! `lead_id` may be replaced by `aliases: [{"kind": "email", "value": "a@b.co"}]`; the
//! processor resolves it. A record without an `event_id` gets one derived from its topic,
//! partition and offset, so a replay of the same record has the same id.
//!
//! A record value larger than [`MAX_RECORD_BYTES`] is refused before it is decoded: its
//! metadata would be copied into lead state, history and fired payloads. A valid event with
//! neither `lead_id` nor aliases (the gateway stores seed 001 envelopes without identity that
//! way) is [`DecodeError::NoLead`]: nothing to score, skipped, not dead-lettered.

use leadstream_shared::avro::{decode_event, AvroError};
use leadstream_shared::event::{Alias, AliasKind, EngagementEvent, Origin};
use leadstream_shared::ids::{derived_id, now_ms, parse_rfc3339_ms};
use serde::Deserialize;

/// Largest record value accepted; the gateway's `LEADSTREAM_MAX_EVENT_BYTES` cannot be set above
/// what fits in it.
pub use leadstream_shared::event::MAX_RECORD_BYTES;

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
#[serde(deny_unknown_fields)]
struct JsonEvent {
    event_id: Option<String>,
    org_id: Option<String>,
    ou_id: String,
    lead_id: Option<String>,
    #[serde(default)]
    aliases: Vec<JsonAlias>,
    source: Option<String>,
    producer_event_id: Option<String>,
    event_type: String,
    event_time: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    environment: Option<String>,
    severity: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAlias {
    kind: String,
    value: String,
}

fn decode_json(bytes: &[u8], pos: &Position<'_>) -> Result<EngagementEvent, DecodeError> {
    let j: JsonEvent =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    let received = now_ms();
    let event_time_ms = match &j.event_time {
        None => received,
        Some(serde_json::Value::String(s)) => parse_rfc3339_ms(s)
            .ok_or_else(|| DecodeError::Invalid(format!("event_time {s:?} is not RFC 3339")))?,
        Some(serde_json::Value::Number(n)) => n.as_i64().ok_or_else(|| {
            DecodeError::Invalid("event_time must be integer milliseconds".into())
        })?,
        Some(_) => {
            return Err(DecodeError::Invalid(
                "event_time must be an RFC 3339 string or Unix milliseconds".into(),
            ))
        }
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
        lead_id: j.lead_id,
        aliases,
        source: j.source,
        producer_event_id: j.producer_event_id,
        event_type: j.event_type,
        event_time_ms,
        received_at_ms: received,
        metadata: j.metadata.unwrap_or_default(),
        origin: Origin::Kafka,
        environment: j.environment,
        severity: j.severity,
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
