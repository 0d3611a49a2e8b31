//! Seed 001 (Lariba), `POST /v1/events/ingest`: the operational envelope `event_id`,
//! `event_type` (required), `source_id` (required), `environment`, `severity`, `timestamp`,
//! `payload` (required object).
//!
//! The seed names no lead. Leadstream accepts seed 000's identity fields as an optional
//! extension (`lead_id`, or `alias_kind` + `alias`); an envelope without them is published
//! without a lead and keyed `{ou}:{event_id}` (see `EngagementEvent::kafka_key`). The
//! producer's `event_id` — or, without one, the `Idempotency-Key` — is the producer id the
//! processor dedupes on.

use serde_json::{Map, Value};

use leadstream_domain::event::Origin;

use super::{lead_or_alias, Draft, Fields, PayloadError};

/// Parse one envelope. `idempotency_key` is the request's `Idempotency-Key` header, if any.
pub fn parse(
    obj: &Map<String, Value>,
    idempotency_key: Option<&str>,
) -> Result<Draft, PayloadError> {
    let f = Fields::new(obj);
    let event_type = f.req_str("event_type")?.trim().to_string();
    let source = f.req_str("source_id")?.trim().to_string();
    let producer_event_id = f
        .opt_str("event_id")?
        .or(idempotency_key)
        .map(str::to_string);
    let environment = f.opt_str("environment")?.map(str::to_string);
    let severity = f.opt_str("severity")?.map(str::to_string);
    let event_time_ms = f.opt_timestamp("timestamp")?;
    let metadata = f.req_object("payload")?.clone();
    let (lead_id, aliases) = lead_or_alias(&f)?;
    Ok(Draft {
        lead_id,
        aliases,
        source: Some(source),
        producer_event_id,
        event_type,
        event_time_ms,
        metadata,
        origin: Origin::Events,
        environment,
        severity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::parse_object;

    const SEED: &str = r#"{
        "event_id": "evt_demo_001",
        "event_type": "payment.failed",
        "source_id": "src_demo",
        "environment": "production",
        "severity": "critical",
        "timestamp": "2026-06-01T10:00:00Z",
        "payload": {"amount": 49.99, "currency": "EUR", "reason": "card_declined"}
    }"#;

    #[test]
    fn seed_example_parses() {
        let d = parse(
            &parse_object(SEED.as_bytes()).unwrap(),
            Some("demo-request-001"),
        )
        .unwrap();
        assert_eq!(d.source.as_deref(), Some("src_demo"));
        assert_eq!(d.producer_event_id.as_deref(), Some("evt_demo_001"));
        assert_eq!(d.environment.as_deref(), Some("production"));
        assert_eq!(d.severity.as_deref(), Some("critical"));
        assert_eq!(d.metadata["currency"], "EUR");
        assert!(d.event_time_ms.is_some());
        assert!(d.lead_id.is_none() && d.aliases.is_empty());
    }

    #[test]
    fn idempotency_key_is_the_fallback_producer_id() {
        let obj = parse_object(br#"{"event_type":"a","source_id":"s","payload":{}}"#).unwrap();
        let d = parse(&obj, Some("k1")).unwrap();
        assert_eq!(d.producer_event_id.as_deref(), Some("k1"));
    }

    #[test]
    fn required_fields() {
        let msg = |s: &str| {
            parse(&parse_object(s.as_bytes()).unwrap(), None)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(r#"{"source_id":"s","payload":{}}"#),
            "`event_type` is required"
        );
        assert_eq!(
            msg(r#"{"event_type":"a","payload":{}}"#),
            "`source_id` is required"
        );
        assert_eq!(
            msg(r#"{"event_type":"a","source_id":"s"}"#),
            "`payload` is required"
        );
        assert_eq!(
            msg(r#"{"event_type":"a","source_id":"s","payload":[]}"#),
            "`payload` must be a JSON object, got array"
        );
    }
}
