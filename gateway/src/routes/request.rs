//! What the management and read routes (documents, simulate, leads, history, deliveries) do
//! with a request besides their own logic: read a JSON body, decode it into a request type
//! with the seeds' 400 answers, map a store failure, stamp the time. No routes here: the router
//! is assembled in `server.rs`.
//!
//! Bodies are JSON (`Content-Type: application/json`, size-limited like every route); an
//! invalid one is a 400 [`ApiError::InvalidFields`] naming the field (`body` for the whole).

use axum::body::Body;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;

use leadstream_shared::store::StoreError;

use super::single_limits;
use crate::body::{read_body, Accept};
use crate::error::ApiError;
use crate::publish::store_unavailable;
use crate::state::AppState;

/// The request body as a JSON value (415 / 413 / 408 / 400 as for every JSON route).
pub async fn json_value(st: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let (_, bytes) = read_body(headers, body, Accept::Json, single_limits(st)).await?;
    serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)
}

/// A JSON object into a request type: anything else is 400 on `body`, and so is serde's
/// complaint (e.g. an unknown field).
pub fn decode_object<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid("body", "body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// [`json_value`] then [`decode_object`].
pub async fn json_body<T: DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    decode_object(json_value(st, headers, body).await?)
}

/// A store failure: 503 with `Retry-After` (the request may be retried unchanged).
pub fn store_err(st: &AppState) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| store_unavailable(e, st.cfg.retry_after_secs())
}

/// 404 for a managed object or lead of the active OU.
pub fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("{what} {id:?} does not exist"))
}

/// The optional `lead_id` of a simulate body: absent or null is `None`, anything else must be
/// a non-empty string (trimmed).
pub fn lead_field(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ApiError::invalid(
            "lead_id",
            "lead_id must be a non-empty string",
        )),
    }
}

/// An optional text of a simulated event at `field` (`event.id`, `events[0].event_type`):
/// absent or null is `None`, anything else must be a non-empty string of at most 512 bytes
/// (trimmed).
pub fn text_field(v: Option<&Value>, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 512 => {
            Ok(Some(s.trim().to_string()))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a non-empty string of at most 512 bytes"),
        )),
    }
}

/// An RFC 3339 time of a simulated event at `field`, as Unix ms.
pub fn time_field(s: &str, field: &str) -> Result<i64, ApiError> {
    leadstream_shared::ids::parse_rfc3339_ms(s)
        .ok_or_else(|| ApiError::invalid(field, format!("{field} must be an RFC 3339 time")))
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    leadstream_shared::ids::rfc3339_ms(leadstream_shared::ids::now_ms())
}
