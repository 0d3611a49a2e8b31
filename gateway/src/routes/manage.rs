//! Management routes whose shape DESIGN.md gives (the seeds do not):
//!
//! - `POST /org-units/active` `{"ouId"}` (any valid key) → 200 `{"ouId", "name"}`; the OU
//!   becomes the key's active OU, remembered server-side (so seed 000's next curl call, which
//!   has no cookie jar, acts in it) and in the `leadstream_ou` cookie (a browser session);
//!   precedence: see [`crate::auth`];
//! - `POST /org-units` `{"name"}` (admin) → 201 `{"id", "name"}`; `GET /org-units` (read);
//! - `POST /api-keys` `{"name", "scopes", "ou_ids", "source_id", "org_wide"}` (admin) → 201 with
//!   the secret under `key`, shown this once. Without `ou_ids` the key is bound to the OU the
//!   creating call acts in (the bootstrap key's `unit_default`, or the creator's active OU); only
//!   `"org_wide": true` makes a key that names its OU per request; `GET /api-keys` (admin, no secrets);
//!   `DELETE /api-keys/{id}` (admin) → 204;
//! - `GET /webhook-secret` → `{"secret": "whsec_…"}` for the active OU and
//!   `POST /webhook-secret/rotate` → the new one (admin; the old one keeps signing for a grace
//!   period).
//!
//! Everything is scoped to the calling key's organisation. A key bound to OUs can only mint keys
//! for (a subset of) its own OUs, so no key can create a key stronger than itself; likewise it
//! lists and revokes only keys bound to (a subset of) its own OUs ([`manages`]): another OU's
//! keys are 404 to it. A key bound to a source can only mint keys bound to that source (a key
//! created without `source_id` inherits it), and a key bound to OUs cannot create org units. At
//! most `LEADSTREAM_MAX_KEYS_PER_OU` keys are bound to one OU (org-wide keys: per organisation);
//! one more is a 409 `too_many_keys` (approximate under concurrent creation).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::single_limits;
use leadstream_shared::catalog::NewApiKey;

use crate::auth::{KeyChecks, KeyInfo, Scope, OU_COOKIE};
use crate::body::{read_body, Accept};
use crate::error::ApiError;
use crate::publish::store_unavailable;
use crate::state::AppState;

async fn caller(
    st: &AppState,
    headers: &HeaderMap,
    scope: Option<Scope>,
) -> Result<Arc<KeyInfo>, ApiError> {
    let key = st.auth.authenticate(headers).await?;
    if let Some(scope) = scope {
        key.require(scope)?;
    }
    st.limiter.check(&key.id)?;
    Ok(key)
}

async fn json_body<T: serde::de::DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let (_, bytes) = read_body(headers, body, Accept::Json, single_limits(st)).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)?;
    serde_json::from_value(value).map_err(|e| ApiError::Validation(e.to_string()))
}

fn unavailable(st: &AppState) -> impl Fn(leadstream_shared::store::StoreError) -> ApiError + '_ {
    move |e| store_unavailable(e, st.cfg.retry_after_secs())
}

#[derive(Deserialize)]
struct ActiveOu {
    #[serde(rename = "ouId")]
    ou_id: String,
}

pub async fn set_active_ou(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, None).await?;
    let req: ActiveOu = json_body(&st, &headers, body).await?;
    let ou_id = req.ou_id.trim();
    let valid = !ou_id.is_empty()
        && ou_id.len() <= 128
        && ou_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        return Err(ApiError::Validation("`ouId` is not a valid OU id".into()));
    }
    let tenant = st.auth.check_ou(&key, ou_id).await?;
    st.auth
        .catalog
        .remember_active_ou(&key.id, &tenant.ou_id)
        .await
        .map_err(unavailable(&st))?;
    let name = st
        .auth
        .org_unit(&tenant.ou_id)
        .await?
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let cookie = format!(
        "{OU_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        tenant.ou_id
    );
    let mut resp = Json(json!({"ouId": tenant.ou_id, "name": name})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOu {
    name: String,
}

pub async fn create_org_unit(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, Some(Scope::Admin)).await?;
    if !key.ou_ids.is_empty() {
        return Err(ApiError::Forbidden(
            "this API key is bound to OUs and may not create org units".into(),
        ));
    }
    let req: NewOu = json_body(&st, &headers, body).await?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::Validation(
            "`name` must be 1 to 200 characters".into(),
        ));
    }
    let existing = st
        .auth
        .catalog
        .list_org_units(&key.org_id)
        .await
        .map_err(unavailable(&st))?;
    if existing.iter().any(|o| o.name == name) {
        return Err(ApiError::conflict(
            "already_exists",
            format!("an org unit named {name:?} already exists"),
        ));
    }
    let ou = st
        .auth
        .catalog
        .create_org_unit(&key.org_id, name)
        .await
        .map_err(unavailable(&st))?;
    st.auth.forget_ou(&ou.id);
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": ou.id, "name": ou.name})),
    )
        .into_response())
}

pub async fn list_org_units(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, Some(Scope::Read)).await?;
    let units = st
        .auth
        .catalog
        .list_org_units(&key.org_id)
        .await
        .map_err(unavailable(&st))?;
    let units: Vec<Value> = units
        .into_iter()
        .filter(|o| key.ou_ids.is_empty() || key.ou_ids.contains(&o.id))
        .map(|o| json!({"id": o.id, "name": o.name}))
        .collect();
    Ok(Json(json!({ "org_units": units })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default)]
    ou_ids: Vec<String>,
    #[serde(default)]
    source_id: Option<String>,
    /// Bound to no OU: every request names its OU (header, cookie). Without it and without
    /// `ou_ids`, the key belongs to the OU the creating call acts in.
    #[serde(default)]
    org_wide: bool,
}

/// Whether `caller` may see and revoke `other` (same organisation assumed): an unbound key
/// manages every key of its organisation, a key bound to OUs only keys bound within them.
fn manages(caller: &KeyInfo, other: &KeyInfo) -> bool {
    caller.ou_ids.is_empty()
        || (!other.ou_ids.is_empty() && other.ou_ids.iter().all(|o| caller.ou_ids.contains(o)))
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "scopes": k.scopes,
        "ou_ids": k.ou_ids,
        "source_id": k.source_id,
        "org_wide": k.ou_ids.is_empty(),
        "key_prefix": (!k.secret_prefix.is_empty()).then_some(&k.secret_prefix),
        "created_at": k.created_at,
    })
}

pub async fn create_api_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, Some(Scope::Admin)).await?;
    let req: CreateKey = json_body(&st, &headers, body).await?;
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::Validation(
            "`name` must be 1 to 200 characters".into(),
        ));
    }
    if req.scopes.is_empty() {
        return Err(ApiError::Validation(
            "`scopes` must name at least one of ingest, read, admin".into(),
        ));
    }
    let mut ou_ids = req.ou_ids.clone();
    ou_ids.sort();
    ou_ids.dedup();
    if req.org_wide && !ou_ids.is_empty() {
        return Err(ApiError::Validation(
            "give `ou_ids` or `\"org_wide\": true`, not both".into(),
        ));
    }
    if req.org_wide && !key.ou_ids.is_empty() {
        return Err(ApiError::Forbidden(
            "this API key is bound to OUs and may not create an org-wide key".into(),
        ));
    }
    if ou_ids.is_empty() && !req.org_wide {
        // The key belongs to the OU this call acts in (seeds 001/002 know no OUs: a source key
        // created by the bootstrap admin key ingests into `unit_default` as it is).
        match st.auth.active_ou(&headers, &key).await {
            Ok(t) => ou_ids = vec![t.ou_id],
            // A bound creator without an active OU: the new key gets the creator's OUs.
            Err(ApiError::ActiveOuNotSet) if !key.ou_ids.is_empty() => {}
            Err(ApiError::ActiveOuNotSet) => {
                return Err(ApiError::Validation(
                    "no active OU to bind the key to: give `ou_ids`, set an active OU \
                     (X-Leadstream-OU or POST /org-units/active), or create an org-wide key \
                     with `\"org_wide\": true`"
                        .into(),
                ))
            }
            Err(e) => return Err(e),
        }
    }
    if !key.ou_ids.is_empty() {
        if ou_ids.is_empty() {
            ou_ids = key.ou_ids.clone();
        } else if let Some(o) = ou_ids.iter().find(|o| !key.ou_ids.contains(o)) {
            return Err(ApiError::Forbidden(format!(
                "this API key may not grant OU {o:?}"
            )));
        }
    }
    for o in &ou_ids {
        match st.auth.org_unit(o).await? {
            Some(ou) if ou.org_id == key.org_id => {}
            _ => return Err(ApiError::Validation(format!("OU {o:?} does not exist"))),
        }
    }
    let mut source_id = req
        .source_id
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(bound) = &key.source_id {
        match &source_id {
            None => source_id = Some(bound.clone()),
            Some(s) if s == bound => {}
            Some(s) => {
                return Err(ApiError::Forbidden(format!(
                    "this API key is bound to source {bound:?} and may not create a key for {s:?}"
                )))
            }
        }
    }
    let existing = st
        .auth
        .catalog
        .list_api_keys(&key.org_id)
        .await
        .map_err(unavailable(&st))?;
    let cap = st.cfg.max_keys_per_ou;
    let full = if ou_ids.is_empty() {
        (existing.iter().filter(|k| k.ou_ids.is_empty()).count() >= cap)
            .then(|| "the organisation (org-wide keys)".to_string())
    } else {
        ou_ids.iter().find_map(|o| {
            (existing.iter().filter(|k| k.ou_ids.contains(o)).count() >= cap)
                .then(|| format!("OU {o:?}"))
        })
    };
    if let Some(whom) = full {
        return Err(ApiError::conflict(
            "too_many_keys",
            format!(
                "{whom} already has {cap} API keys (LEADSTREAM_MAX_KEYS_PER_OU); revoke one first"
            ),
        ));
    }
    let (record, secret) = st
        .auth
        .catalog
        .create_api_key(
            &key.org_id,
            NewApiKey {
                name,
                scopes: req.scopes,
                ou_ids,
                source_id,
            },
        )
        .await
        .map_err(unavailable(&st))?;
    let mut body = key_json(&record);
    body["key"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list_api_keys(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, Some(Scope::Admin)).await?;
    let keys = st
        .auth
        .catalog
        .list_api_keys(&key.org_id)
        .await
        .map_err(unavailable(&st))?;
    let keys: Vec<Value> = keys
        .iter()
        .filter(|k| manages(&key, k))
        .map(key_json)
        .collect();
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

pub async fn delete_api_key(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = caller(&st, &headers, Some(Scope::Admin)).await?;
    let target = st
        .auth
        .catalog
        .api_key(&id)
        .await
        .map_err(unavailable(&st))?;
    if !target.is_some_and(|t| t.org_id == key.org_id && manages(&key, &t)) {
        return Err(ApiError::NotFound(format!("API key {id:?} does not exist")));
    }
    match st
        .auth
        .catalog
        .delete_api_key(&key.org_id, &id)
        .await
        .map_err(unavailable(&st))?
    {
        true => {
            st.auth.forget_key(&id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        false => Err(ApiError::NotFound(format!("API key {id:?} does not exist"))),
    }
}

/// `GET /webhook-secret` (admin): the active OU's current signing secret.
pub async fn webhook_secret(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = super::ctx_for(&st, &headers, Scope::Admin).await?;
    let secret = st
        .auth
        .catalog
        .webhook_secret(&ctx.tenant.ou_id)
        .await
        .map_err(unavailable(&st))?;
    Ok(Json(json!({ "secret": secret })).into_response())
}

/// `POST /webhook-secret/rotate` (admin): a new secret; the old one keeps signing for
/// `LEADSTREAM_WEBHOOK_SECRET_GRACE`.
pub async fn rotate_webhook_secret(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = super::ctx_for(&st, &headers, Scope::Admin).await?;
    let grace_ms = st.cfg.webhook_secret_grace.as_millis() as i64;
    let secret = st
        .auth
        .catalog
        .rotate_webhook_secret(&ctx.tenant.ou_id, grace_ms)
        .await
        .map_err(unavailable(&st))?;
    Ok(Json(json!({ "secret": secret })).into_response())
}
