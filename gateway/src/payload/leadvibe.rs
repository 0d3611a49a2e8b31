//! Seed 000 (LeadVibe), `POST /ingest`: `lead_id`, or `alias_kind` + `alias`; `event_type`;
//! optional RFC 3339 `timestamp` (default: receipt time) and `metadata` object.
//!
//! The OU never comes from the body ("do not send unit_id in the request body"): a `unit_id`
//! field is ignored, the active OU of the authenticated request is used. The same item format,
//! plus an optional producer `event_id`, is what the bulk import accepts ([`import_item`]).
//!
//! [`parse_bytes`] and [`import_item_bytes`] read the common case, a well-formed body of strings
//! without escapes, straight into a draft without building a `Value` tree of the whole body
//! ([`Plain`]); anything else (a wrong type, an escape, a duplicate key, a rule broken) takes the
//! field-by-field path, which alone decides errors. A property test checks that the two agree
//! whenever the direct read succeeds.

use serde::Deserialize;
use serde_json::{Map, Value};

use leadstream_domain::event::Origin;
use leadstream_shared::ids;

use super::{alias_from, lead_or_alias, parse_object, Draft, Fields, PayloadError, MAX_ID_LEN};

/// Parse one `/ingest` body from its bytes.
pub fn parse_bytes(bytes: &[u8]) -> Result<Draft, PayloadError> {
    match Plain::read(bytes, Origin::Ingest) {
        Some(draft) => Ok(draft),
        None => parse(parse_object(bytes)?),
    }
}

/// Parse one bulk-import item from its JSON text.
pub fn import_item_bytes(text: &str) -> Result<Draft, PayloadError> {
    match Plain::read(text.as_bytes(), Origin::Import) {
        Some(draft) => Ok(draft),
        None => import_item(parse_object(text.as_bytes())?),
    }
}

/// The fields of a seed-000 body, borrowed from the request bytes (`&str` fields fail on an
/// escaped string, which sends the body to the field-by-field path). Other fields are skipped,
/// as that path ignores them too.
#[derive(Deserialize)]
struct Plain<'a> {
    #[serde(borrow, default)]
    lead_id: Option<&'a str>,
    #[serde(borrow, default)]
    alias_kind: Option<&'a str>,
    #[serde(borrow, default)]
    alias: Option<&'a str>,
    #[serde(borrow, default)]
    event_type: Option<&'a str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(borrow, default)]
    event_id: Option<&'a str>,
    #[serde(borrow, default)]
    source: Option<&'a str>,
}

impl Plain<'_> {
    /// The draft when the body is plain and valid; `None` sends it to the field-by-field path.
    fn read(bytes: &[u8], origin: Origin) -> Option<Draft> {
        let p: Plain<'_> = serde_json::from_slice(bytes).ok()?;
        // `Fields::opt_str`'s rules: absent, null or blank is absent; too long is an error.
        let field = |v: Option<&str>| -> Result<Option<String>, ()> {
            match v {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) if s.chars().count() > MAX_ID_LEN => Err(()),
                Some(s) => Ok(Some(s.to_string())),
            }
        };
        let event_type = field(p.event_type).ok()??.trim().to_string();
        let lead_id = field(p.lead_id).ok()?.map(|s| s.trim().to_string());
        let aliases = match (field(p.alias_kind).ok()?, field(p.alias).ok()?) {
            (Some(k), Some(v)) => vec![alias_from(&k, &v).ok()?],
            (None, None) => vec![],
            _ => return None,
        };
        if lead_id.is_none() && aliases.is_empty() {
            return None;
        }
        let event_time_ms = match field(p.timestamp).ok()? {
            Some(t) => Some(ids::parse_rfc3339_ms(t.trim())?),
            None => None,
        };
        let (producer_event_id, source) = match origin {
            Origin::Import => (field(p.event_id).ok()?, field(p.source).ok()?),
            _ => (None, None),
        };
        Some(Draft {
            lead_id,
            aliases,
            source,
            producer_event_id,
            event_type,
            event_time_ms,
            metadata: p.metadata.unwrap_or_default(),
            origin,
            environment: None,
            severity: None,
        })
    }
}

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
    use leadstream_domain::event::AliasKind;
    use proptest::prelude::*;

    /// Field values that exercise every rule: blank, padded, escaped, too long, wrong types,
    /// null, timestamps good and bad, alias kinds known and not.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            Just("5".to_string()),
            Just("true".to_string()),
            Just("[1]".to_string()),
            Just("{}".to_string()),
            Just(r#"{"path":"/p","n":1}"#.to_string()),
            Just(r#""""#.to_string()),
            Just(r#""  ""#.to_string()),
            Just(r#"" ld_1 ""#.to_string()),
            Just(r#""ld_\u0031""#.to_string()),
            Just(r#""a\nb""#.to_string()),
            Just(r#""email""#.to_string()),
            Just(r#""fax""#.to_string()),
            Just(r#""User@Example.com""#.to_string()),
            Just(r#""not an email""#.to_string()),
            Just(r#""2025-09-15T14:30:00Z""#.to_string()),
            Just(r#""2025-09-15T16:30:00.250+02:00""#.to_string()),
            Just(r#""yesterday""#.to_string()),
            Just(format!(r#""{}""#, "x".repeat(513))),
            Just(format!(r#""{}""#, "é".repeat(512))),
            "[a-z_]{1,12}".prop_map(|s| format!("\"{s}\"")),
        ]
    }

    proptest! {
        /// Whenever the direct read accepts a body, the field-by-field path accepts it too and
        /// makes the same draft (so every error and every edge case stays that path's).
        #[test]
        fn direct_read_agrees_with_the_field_path(
            fields in proptest::collection::vec(
                (prop::sample::select(vec!["lead_id", "alias_kind", "alias", "event_type",
                    "timestamp", "metadata", "event_id", "source", "unit_id"]), value()),
                0..9),
            import in any::<bool>(),
            base in any::<bool>(),
        ) {
            // Half the bodies start from a valid event, so the direct read is exercised often.
            let mut fields = fields;
            if base {
                fields.retain(|(k, _)| *k != "event_type" && *k != "lead_id");
                fields.insert(0, ("event_type", r#""page_view""#.to_string()));
                fields.insert(0, ("lead_id", r#""ld_1""#.to_string()));
            }
            let body = format!("{{{}}}", fields.iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect::<Vec<_>>()
                .join(","));
            let origin = if import { Origin::Import } else { Origin::Ingest };
            if let Some(direct) = Plain::read(body.as_bytes(), origin) {
                let obj = parse_object(body.as_bytes()).unwrap();
                let slow = if import { import_item(obj) } else { parse(obj) };
                prop_assert_eq!(slow, Ok(direct));
            }
        }
    }

    #[test]
    fn the_seed_example_takes_the_direct_read() {
        let body = br#"{"lead_id":"ld_abc123","event_type":"demo_request","timestamp":"2025-09-15T14:30:00Z",
                        "metadata":{"product":"enterprise","source":"website"}}"#;
        let d = Plain::read(body, Origin::Ingest).expect("plain body");
        assert_eq!(Ok(d.clone()), parse_bytes(body));
        assert_eq!(d.lead_id.as_deref(), Some("ld_abc123"));
        assert_eq!(d.event_time_ms, Some(1_757_946_600_000));
        // An escaped string is left to the field path, which reads it.
        let escaped = br#"{"lead_id":"ld_\u0031","event_type":"a"}"#;
        assert!(Plain::read(escaped, Origin::Ingest).is_none());
        assert_eq!(
            parse_bytes(escaped).unwrap().lead_id.as_deref(),
            Some("ld_1")
        );
    }

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
