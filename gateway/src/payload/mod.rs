//! Request payloads: one module per wire format, each turning bytes into a [`Draft`].
//!
//! - [`leadvibe`]: seed 000, `POST /ingest` (and the items of the bulk import);
//! - [`lariba`]: seed 001, `POST /v1/events/ingest`;
//! - [`cdp`]: seed 002, `POST /v1/cdp/events[/batch]`, and its event-type contract;
//! - [`import`]: splitting a bulk import body (JSON array or NDJSON) into items.
//!
//! Bodies are parsed to a `serde_json::Value` first and then read field by field, so every
//! message names the field and what was wrong with it ("`timestamp` is not an RFC 3339
//! timestamp: \"yesterday\"") instead of a serde position. Nothing here panics on input: every
//! shape of JSON is either a draft or a [`PayloadError`].

pub mod cdp;
pub mod import;
pub mod lariba;
pub mod leadvibe;

use serde_json::{Map, Value};

use leadstream_domain::event::{Alias, AliasKind, EngagementEvent, Origin};
use leadstream_shared::ids;

/// Longest string field (lead_id, event_id, source, event type, alias …) accepted; aliases
/// have their own, shorter limit after normalisation.
pub const MAX_ID_LEN: usize = 512;

/// Why a payload was refused. The route decides the status: `Malformed` is always 400,
/// `Invalid` is 400 on seed 000 (its document lists only 400) and 422 elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
}

/// An event as the producer described it, before the gateway gives it an id, an OU and a lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub lead_id: Option<String>,
    pub aliases: Vec<Alias>,
    pub source: Option<String>,
    pub producer_event_id: Option<String>,
    pub event_type: String,
    pub event_time_ms: Option<i64>,
    pub metadata: Map<String, Value>,
    pub origin: Origin,
    pub environment: Option<String>,
    pub severity: Option<String>,
}

/// Who the event belongs to, from the authenticated request.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org_id: String,
    pub ou_id: String,
}

impl Draft {
    /// Stamp the gateway's part: a new `evt_…` id, the tenant, and the receive time (also the
    /// event time when the producer gave none).
    pub fn into_event(self, tenant: &Tenant, received_at_ms: i64) -> EngagementEvent {
        EngagementEvent {
            event_id: ids::new_id("evt"),
            org_id: tenant.org_id.clone(),
            ou_id: tenant.ou_id.clone(),
            lead_id: self.lead_id,
            aliases: self.aliases,
            source: self.source,
            producer_event_id: self.producer_event_id,
            event_type: self.event_type,
            event_time_ms: self.event_time_ms.unwrap_or(received_at_ms),
            received_at_ms,
            metadata: self.metadata,
            origin: self.origin,
            environment: self.environment,
            severity: self.severity,
        }
    }
}

/// Parse bytes into a JSON object, or say why not.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, PayloadError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    into_object(value)
}

/// A parsed JSON value that must be an object.
pub fn into_object(value: Value) -> Result<Map<String, Value>, PayloadError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(PayloadError::Invalid(format!(
            "the body must be a JSON object, got {}",
            type_name(&other)
        ))),
    }
}

/// The JSON type of a value, as a person says it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Read helpers over one JSON object; `path` prefixes field names in messages (`identity.`).
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'static str,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields { obj, path: "" }
    }

    pub fn nested(obj: &'a Map<String, Value>, path: &'static str) -> Self {
        Fields { obj, path }
    }

    fn invalid(&self, name: &str, what: impl std::fmt::Display) -> PayloadError {
        PayloadError::Invalid(format!("`{}{name}` {what}", self.path))
    }

    /// A string field that may be absent or null. Empty strings count as absent.
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, PayloadError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s.chars().count() > MAX_ID_LEN => {
                Err(self.invalid(name, format!("is longer than {MAX_ID_LEN} characters")))
            }
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => {
                Err(self.invalid(name, format!("must be a string, got {}", type_name(other))))
            }
        }
    }

    /// A string field that must be present and not empty.
    pub fn req_str(&self, name: &str) -> Result<&'a str, PayloadError> {
        match self.opt_str(name)? {
            Some(s) => Ok(s),
            None if matches!(self.obj.get(name), Some(Value::String(_))) => {
                Err(self.invalid(name, "must not be empty"))
            }
            None => Err(self.invalid(name, "is required")),
        }
    }

    /// An object field that may be absent or null (then empty).
    pub fn opt_object(&self, name: &str) -> Result<Map<String, Value>, PayloadError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(self.invalid(
                name,
                format!("must be a JSON object, got {}", type_name(other)),
            )),
        }
    }

    /// [`Fields::opt_object`]'s check without the copy (the caller moves the object out).
    pub fn opt_object_ref(
        &self,
        name: &str,
    ) -> Result<Option<&'a Map<String, Value>>, PayloadError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.invalid(
                name,
                format!("must be a JSON object, got {}", type_name(other)),
            )),
        }
    }

    /// An object field that must be present.
    pub fn req_object(&self, name: &str) -> Result<&'a Map<String, Value>, PayloadError> {
        match self.obj.get(name) {
            Some(Value::Object(m)) => Ok(m),
            None | Some(Value::Null) => Err(self.invalid(name, "is required")),
            Some(other) => Err(self.invalid(
                name,
                format!("must be a JSON object, got {}", type_name(other)),
            )),
        }
    }

    /// An RFC 3339 timestamp field that may be absent, as Unix milliseconds.
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<i64>, PayloadError> {
        let Some(text) = self.opt_str(name)? else {
            return Ok(None);
        };
        match ids::parse_rfc3339_ms(text.trim()) {
            Some(ms) => Ok(Some(ms)),
            None => Err(self.invalid(
                name,
                format!(
                    "is not an RFC 3339 timestamp with an offset (e.g. 2025-09-15T14:30:00Z \
                     or 2025-09-15T16:30:00.250+02:00): {text:?}"
                ),
            )),
        }
    }
}

/// Parse and normalise one alias given by kind name (seed 000's `alias_kind`).
pub fn alias_from(kind: &str, value: &str) -> Result<Alias, PayloadError> {
    let Some(kind) = AliasKind::parse(kind.trim()) else {
        let known: Vec<&str> = AliasKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(PayloadError::Invalid(format!(
            "unknown alias_kind {kind:?}; expected one of {}",
            known.join(", ")
        )));
    };
    Alias::normalise(kind, value).map_err(|e| PayloadError::Invalid(e.to_string()))
}

/// Seed 000's identity pair: `lead_id`, and/or `alias_kind` + `alias`.
pub fn lead_or_alias(f: &Fields<'_>) -> Result<(Option<String>, Vec<Alias>), PayloadError> {
    let lead_id = f.opt_str("lead_id")?.map(|s| s.trim().to_string());
    let kind = f.opt_str("alias_kind")?;
    let value = f.opt_str("alias")?;
    let aliases = match (kind, value) {
        (Some(k), Some(v)) => vec![alias_from(k, v)?],
        (None, None) => vec![],
        (Some(_), None) => {
            return Err(PayloadError::Invalid(
                "`alias` is required when `alias_kind` is given".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(PayloadError::Invalid(
                "`alias_kind` is required when `alias` is given".into(),
            ))
        }
    };
    Ok((lead_id, aliases))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_messages_name_the_field() {
        let obj = json!({"a": 5, "b": "", "t": "yesterday", "m": [1]});
        let obj = obj.as_object().unwrap();
        let f = Fields::new(obj);
        assert_eq!(
            f.req_str("a").unwrap_err().to_string(),
            "`a` must be a string, got number"
        );
        assert_eq!(
            f.req_str("b").unwrap_err().to_string(),
            "`b` must not be empty"
        );
        assert_eq!(f.req_str("c").unwrap_err().to_string(), "`c` is required");
        assert!(f
            .opt_timestamp("t")
            .unwrap_err()
            .to_string()
            .contains("RFC 3339"));
        assert_eq!(
            f.opt_object("m").unwrap_err().to_string(),
            "`m` must be a JSON object, got array"
        );
    }

    #[test]
    fn unknown_alias_kind_lists_the_known_ones() {
        let err = alias_from("fax", "1").unwrap_err().to_string();
        assert!(err.contains("unknown alias_kind \"fax\""), "{err}");
        assert!(err.contains("email, external_id, phone, cookie, social"));
    }

    #[test]
    fn non_objects_are_invalid_and_garbage_is_malformed() {
        assert!(matches!(
            parse_object(b"[1]"),
            Err(PayloadError::Invalid(_))
        ));
        assert!(matches!(
            parse_object(b"{"),
            Err(PayloadError::Malformed(_))
        ));
    }
}
