//! Seed 002 (ResultFly CDP), `POST /v1/cdp/events` and each item of `/v1/cdp/events/batch`:
//! `source`, `externalEventId`, `eventType` (required), optional `occurredAt`, an `identity`
//! object with at least one of `externalUserId`, `email`, `phone`, `deviceKey`, and optional
//! `properties`. Identity fields map to aliases: externalUserId → external_id, email → email,
//! phone → phone, deviceKey → cookie.
//!
//! The event-type contract ([`EventType`]) lives here too: `eventType` must be registered, its
//! `required_properties` present, and properties with a declared type must have that type. A
//! type registered with `"strict": true` also rejects properties it does not declare (the seed:
//! "unknown or unsupported property shapes may be rejected").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use leadstream_domain::event::{Alias, AliasKind, Origin};

use super::{type_name, Draft, Fields, PayloadError};

/// The seed's exact message when `identity` has no supported field.
pub const IDENTITY_REQUIRED: &str =
    "identity.externalUserId, identity.email, identity.phone, or identity.deviceKey is required";

const IDENTITY_FIELDS: [(&str, AliasKind); 4] = [
    ("externalUserId", AliasKind::ExternalId),
    ("email", AliasKind::Email),
    ("phone", AliasKind::Phone),
    ("deviceKey", AliasKind::Cookie),
];

/// Parse one CDP event (the body of `/v1/cdp/events` or one batch item).
pub fn parse(obj: &Map<String, Value>) -> Result<Draft, PayloadError> {
    let f = Fields::new(obj);
    let source = f.req_str("source")?.trim().to_string();
    let external_id = f.req_str("externalEventId")?.to_string();
    let event_type = f.req_str("eventType")?.trim().to_string();
    let event_time_ms = f.opt_timestamp("occurredAt")?;
    let identity = f.req_object("identity")?;
    let idf = Fields::nested(identity, "identity.");
    let mut aliases = Vec::new();
    for (field, kind) in IDENTITY_FIELDS {
        if let Some(raw) = idf.opt_str(field)? {
            let alias = Alias::normalise(kind, raw)
                .map_err(|e| PayloadError::Invalid(format!("identity.{field}: {e}")))?;
            aliases.push(alias);
        }
    }
    if aliases.is_empty() {
        return Err(PayloadError::Invalid(IDENTITY_REQUIRED.into()));
    }
    let metadata = f.opt_object("properties")?;
    Ok(Draft {
        lead_id: None,
        aliases,
        source: Some(source),
        producer_event_id: Some(external_id),
        event_type,
        event_time_ms,
        metadata,
        origin: Origin::Cdp,
        environment: None,
        severity: None,
    })
}

/// The type a registered property must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Any,
}

impl PropType {
    fn accepts(self, v: &Value) -> bool {
        match self {
            PropType::String => v.is_string(),
            PropType::Number => v.is_number(),
            PropType::Integer => v.is_i64() || v.is_u64(),
            PropType::Boolean => v.is_boolean(),
            PropType::Object => v.is_object(),
            PropType::Array => v.is_array(),
            PropType::Any => true,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            PropType::String => "a string",
            PropType::Number => "a number",
            PropType::Integer => "an integer",
            PropType::Boolean => "a boolean",
            PropType::Object => "an object",
            PropType::Array => "an array",
            PropType::Any => "any value",
        }
    }
}

/// A registered CDP event type (`POST /v1/cdp/event-types`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    pub name: String,
    #[serde(default)]
    pub required_properties: Vec<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, PropType>,
    /// Reject properties that are not declared in `properties`.
    #[serde(default)]
    pub strict: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl EventType {
    /// Parse and check a definition sent by a user.
    pub fn from_request(body: Value) -> Result<EventType, PayloadError> {
        let def: EventType =
            serde_json::from_value(body).map_err(|e| PayloadError::Invalid(e.to_string()))?;
        let name = def.name.trim();
        if name.is_empty() || name.chars().count() > super::MAX_ID_LEN {
            return Err(PayloadError::Invalid(
                "`name` must be 1 to 512 characters".into(),
            ));
        }
        if def.required_properties.iter().any(|p| p.trim().is_empty()) {
            return Err(PayloadError::Invalid(
                "`required_properties` must not contain empty names".into(),
            ));
        }
        if def.strict {
            if let Some(p) = def
                .required_properties
                .iter()
                .find(|p| !def.properties.contains_key(*p))
            {
                return Err(PayloadError::Invalid(format!(
                    "required property `{p}` must be declared in `properties` of a strict type"
                )));
            }
        }
        Ok(EventType {
            name: name.to_string(),
            created_at: None,
            ..def
        })
    }

    /// Check an event's properties against this contract.
    pub fn validate(&self, props: &Map<String, Value>) -> Result<(), PayloadError> {
        for req in &self.required_properties {
            if props.get(req).is_none_or(Value::is_null) {
                return Err(PayloadError::Invalid(format!(
                    "property `{req}` is required for event type `{}`",
                    self.name
                )));
            }
        }
        for (name, value) in props {
            match self.properties.get(name) {
                Some(t) if value.is_null() || t.accepts(value) => {}
                Some(t) => {
                    return Err(PayloadError::Invalid(format!(
                        "property `{name}` must be {}, got {}",
                        t.as_str(),
                        type_name(value)
                    )))
                }
                None if self.strict => {
                    return Err(PayloadError::Invalid(format!(
                        "property `{name}` is not registered for event type `{}`",
                        self.name
                    )))
                }
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::parse_object;
    use serde_json::json;

    pub const SEED: &str = r#"{
        "source": "brand.pos",
        "externalEventId": "txn_987654321",
        "eventType": "purchase_completed",
        "occurredAt": "2026-05-20T12:45:00Z",
        "identity": {"externalUserId": "L-123456789", "email": "customer@example.com"},
        "properties": {"order_id": "order_42", "amount": 120.50, "currency": "USD",
                       "store_id": "store_42"}
    }"#;

    #[test]
    fn seed_example_parses() {
        let d = parse(&parse_object(SEED.as_bytes()).unwrap()).unwrap();
        assert_eq!(d.aliases.len(), 2);
        assert_eq!(d.aliases[0].kind, AliasKind::ExternalId);
        assert_eq!(d.aliases[1].value, "customer@example.com");
        assert_eq!(d.producer_event_id.as_deref(), Some("txn_987654321"));
        assert_eq!(d.source.as_deref(), Some("brand.pos"));
    }

    #[test]
    fn identity_is_required() {
        let obj =
            parse_object(br#"{"source":"s","externalEventId":"x","eventType":"t","identity":{}}"#)
                .unwrap();
        assert_eq!(parse(&obj).unwrap_err().to_string(), IDENTITY_REQUIRED);
    }

    #[test]
    fn contract_checks_required_and_types() {
        let t = EventType::from_request(json!({
            "name": "purchase_completed",
            "required_properties": ["order_id"],
            "properties": {"amount": "number", "order_id": "string"}
        }))
        .unwrap();
        let ok = json!({"order_id": "o", "amount": 1.5, "extra": true});
        assert!(t.validate(ok.as_object().unwrap()).is_ok());
        let missing = json!({"amount": 1});
        assert!(t.validate(missing.as_object().unwrap()).is_err());
        let wrong = json!({"order_id": "o", "amount": "x"});
        assert_eq!(
            t.validate(wrong.as_object().unwrap())
                .unwrap_err()
                .to_string(),
            "property `amount` must be a number, got string"
        );
        assert!(
            EventType::from_request(json!({"name": "x", "properties": {"a": "date"}})).is_err()
        );
        assert!(EventType::from_request(json!({"name": ""})).is_err());
    }
}
