//! Seed 000 (LeadVibe), `POST /ingest`: `lead_id`, or `alias_kind` + `alias`; `event_type`;
//! optional RFC 3339 `timestamp` (default: receipt time) and `metadata` object.
//!
//! The OU never comes from the body ("do not send unit_id in the request body"): a `unit_id`
//! field is ignored, the active OU of the authenticated request is used. The same item format,
//! plus an optional producer `event_id`, is what the bulk import accepts ([`import_item`]).

use serde_json::{Map, Value};

use leadstream_domain::event::Origin;

use super::{lead_or_alias, Draft, Fields, PayloadError};

/// Parse one `/ingest` body.
pub fn parse(obj: Map<String, Value>) -> Result<Draft, PayloadError> {
    parse_with(obj, Origin::Ingest)
}

/// Parse one bulk-import item: seed 000's fields plus an optional `event_id` (the producer's
/// id, used for dedupe downstream). Historical events keep their `timestamp`.
pub fn import_item(obj: Map<String, Value>) -> Result<Draft, PayloadError> {
    parse_with(obj, Origin::Import)
}

/// The body is taken by value so that `metadata`, often most of an event, is moved into the
/// draft instead of copied.
fn parse_with(mut obj: Map<String, Value>, origin: Origin) -> Result<Draft, PayloadError> {
    let f = Fields::new(&obj);
    let event_type = f.req_str("event_type")?.trim().to_string();
    let (lead_id, aliases) = lead_or_alias(&f)?;
    if lead_id.is_none() && aliases.is_empty() {
        return Err(PayloadError::Invalid(
            "either `lead_id` or both `alias_kind` and `alias` are required".into(),
        ));
    }
    let event_time_ms = f.opt_timestamp("timestamp")?;
    f.opt_object_ref("metadata")?;
    let (producer_event_id, source) = match origin {
        Origin::Import => (
            f.opt_str("event_id")?.map(str::to_string),
            f.opt_str("source")?.map(str::to_string),
        ),
        _ => (None, None),
    };
    let metadata = match obj.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Draft {
        lead_id,
        aliases,
        source,
        producer_event_id,
        event_type,
        event_time_ms,
        metadata,
        origin,
        environment: None,
        severity: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::parse_object;
    use leadstream_domain::event::AliasKind;

    fn parse_str(s: &str) -> Result<Draft, PayloadError> {
        parse(parse_object(s.as_bytes())?)
    }

    #[test]
    fn seed_examples_parse() {
        let d = parse_str(
            r#"{"alias_kind":"email","alias":"User@Example.com","event_type":"page_view",
                "metadata":{"path":"/pricing","utm_source":"google"}}"#,
        )
        .unwrap();
        assert_eq!(d.aliases[0].kind, AliasKind::Email);
        assert_eq!(d.aliases[0].value, "user@example.com");
        assert_eq!(d.metadata["path"], "/pricing");
        assert_eq!(d.event_time_ms, None);

        let d = parse_str(
            r#"{"lead_id":"ld_abc123","event_type":"demo_request",
                "metadata":{"product":"enterprise","source":"website"}}"#,
        )
        .unwrap();
        assert_eq!(d.lead_id.as_deref(), Some("ld_abc123"));
        assert!(d.aliases.is_empty());

        let d = parse_str(
            r#"{"alias_kind":"email","alias":"user@example.com","event_type":"email_open",
                "timestamp":"2025-09-15T14:30:00Z"}"#,
        )
        .unwrap();
        assert_eq!(d.event_time_ms, Some(1_757_946_600_000));
    }

    #[test]
    fn precise_errors() {
        let msg = |s: &str| parse_str(s).unwrap_err().to_string();
        assert_eq!(msg(r#"{"lead_id":"x"}"#), "`event_type` is required");
        assert_eq!(
            msg(r#"{"event_type":"a"}"#),
            "either `lead_id` or both `alias_kind` and `alias` are required"
        );
        assert!(msg(r#"{"event_type":"a","alias_kind":"fax","alias":"1"}"#)
            .contains("unknown alias_kind"));
        assert!(msg(r#"{"event_type":"a","lead_id":"x","timestamp":"soon"}"#).contains("RFC 3339"));
        assert_eq!(
            msg(r#"{"event_type":"a","lead_id":"x","metadata":"hi"}"#),
            "`metadata` must be a JSON object, got string"
        );
        assert_eq!(
            msg(r#"{"event_type":7,"lead_id":"x"}"#),
            "`event_type` must be a string, got number"
        );
        assert!(msg("{nope").starts_with("malformed JSON"));
    }
}
