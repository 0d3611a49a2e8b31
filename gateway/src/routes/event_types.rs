//! The CDP event-type registry (seed 002: "eventType must be registered in the CDP contract"):
//! `POST /v1/cdp/event-types` `{"name", "required_properties": [...], "properties": {name:
//! type}, "strict"}` → 201 (409 if the name is taken), `GET /v1/cdp/event-types` →
//! `{"event_types": [...]}`, `DELETE /v1/cdp/event-types/{name}` → 204 (404 if unknown).
//! Types: string, number, integer, boolean, object, array, any. Per OU; admin scope to change,
//! read scope to list.
//!
//! Event types are catalog documents named by the client, served by the generic handlers of
//! [`super::documents`] (no get, replace or patch); an invalid definition is 422 as seed 002's
//! validation failures are. The gateway caches each OU's registry for the CDP routes: a change
//! drops the OU's entry, and a list reads it afresh.

use serde::de::DeserializeOwned;
use serde_json::Value;

use leadstream_shared::catalog::collections::EVENT_TYPES;

use super::documents::{OnCreate, Resource};
use super::invalid_422;
use crate::error::ApiError;
use crate::payload::cdp::EventType;
use crate::state::AppState;

/// `/v1/cdp/event-types`.
pub struct EventTypes;

impl Resource for EventTypes {
    type Doc = EventType;
    /// The definition is checked as a whole by [`EventType::from_request`].
    type Create = Value;
    const COLLECTION: &'static str = EVENT_TYPES;
    const LIST: &'static str = "event_types";
    const WHAT: &'static str = "event type";
    const ON_CREATE: OnCreate = OnCreate::InsertNew;

    fn id(doc: &EventType) -> &str {
        &doc.name
    }

    fn decode<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
        serde_json::from_value(body).map_err(|e| ApiError::Validation(e.to_string()))
    }

    fn create(req: Value, now: &str) -> Result<EventType, ApiError> {
        let mut def = EventType::from_request(req).map_err(invalid_422)?;
        def.created_at = Some(now.to_string());
        Ok(def)
    }

    fn not_found(name: &str) -> ApiError {
        ApiError::NotFound(format!("event type {name:?} is not registered"))
    }

    fn taken(name: &str) -> ApiError {
        ApiError::conflict(
            "already_exists",
            format!("event type {name:?} is already registered"),
        )
    }

    fn changed(st: &AppState, ou: &str) {
        st.event_type_cache.remove(&ou.to_string());
    }

    /// The registry the CDP routes check against, read afresh (and cached again), by name.
    async fn list(st: &AppState, ou: &str) -> Result<Vec<EventType>, ApiError> {
        st.event_type_cache.remove(&ou.to_string());
        let registry = st.event_types(ou).await?;
        let mut types: Vec<EventType> = registry.values().cloned().collect();
        types.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(types)
    }
}
