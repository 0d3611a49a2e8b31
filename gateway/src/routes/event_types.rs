//! The CDP event-type registry (seed 002: "eventType must be registered in the CDP contract"):
//! `POST /v1/cdp/event-types` `{"name", "required_properties": [...], "properties": {name:
//! type}, "strict"}` → 201 (409 if the name is taken), `GET /v1/cdp/event-types` →
//! `{"event_types": [...]}`, `DELETE /v1/cdp/event-types/{name}` → 204 (404 if unknown).
//! Types: string, number, integer, boolean, object, array, any. Per OU; admin scope to change,
//! read scope to list.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use leadstream_shared::ids;
use leadstream_shared::store::Cmd;

use super::{ctx_for, invalid_422, single_limits};
use crate::auth::Scope;
use crate::body::{read_body, Accept};
use crate::error::ApiError;
use crate::payload::cdp::EventType;
use crate::publish::store_unavailable;
use crate::state::{AppState, EVENT_TYPES};

pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ctx_for(&st, &headers, Scope::Admin).await?;
    let (_, bytes) = read_body(&headers, body, Accept::Json, single_limits(&st)).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)?;
    let mut def = EventType::from_request(value).map_err(invalid_422)?;
    def.created_at = Some(ids::rfc3339_ms(ids::now_ms()));
    let ou = &ctx.tenant.ou_id;
    let replies = st
        .store
        .exec(vec![
            Cmd::HSetNx {
                key: st.keys.docs(ou, EVENT_TYPES),
                field: def.name.clone(),
                value: serde_json::to_vec(&def).unwrap_or_default(),
            },
            Cmd::IncrBy {
                key: st.keys.config_version(ou),
                by: 1,
            },
        ])
        .await
        .map_err(|e| store_unavailable(e, st.cfg.retry_after_secs()))?;
    if replies.first().map(|r| r.as_int()) != Some(1) {
        return Err(ApiError::conflict(
            "already_exists",
            format!("event type {:?} is already registered", def.name),
        ));
    }
    st.event_type_cache.remove(ou);
    Ok((StatusCode::CREATED, Json(def)).into_response())
}

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let ctx = ctx_for(&st, &headers, Scope::Read).await?;
    st.event_type_cache.remove(&ctx.tenant.ou_id);
    let registry = st.event_types(&ctx.tenant.ou_id).await?;
    let mut types: Vec<&EventType> = registry.values().collect();
    types.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(json!({ "event_types": types })).into_response())
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let ctx = ctx_for(&st, &headers, Scope::Admin).await?;
    let ou = &ctx.tenant.ou_id;
    let replies = st
        .store
        .exec(vec![
            Cmd::HDel {
                key: st.keys.docs(ou, EVENT_TYPES),
                field: name.clone(),
            },
            Cmd::IncrBy {
                key: st.keys.config_version(ou),
                by: 1,
            },
        ])
        .await
        .map_err(|e| store_unavailable(e, st.cfg.retry_after_secs()))?;
    st.event_type_cache.remove(ou);
    if replies.first().map(|r| r.as_int()) != Some(1) {
        return Err(ApiError::NotFound(format!(
            "event type {name:?} is not registered"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
