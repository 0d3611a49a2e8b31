//! The management and read routes of scoring and triggers, in one [`router`]:
//!
//! - [`rulesets`]: `GET/POST /rulesets`, `GET/PUT/PATCH/DELETE /rulesets/{id}`;
//! - [`triggers`]: milestone triggers exactly as seed 003, plus `POST /triggers/{id}/simulate`;
//! - [`sequences`]: sequence triggers exactly as seed 004, plus `POST /sequences/{id}/simulate`;
//! - [`leads`]: `GET /leads/{lead_id}` and `GET /leads?alias_kind=…&alias=…` (score, score per
//!   ruleset, aliases, recent contributions);
//! - [`history`]: `GET /milestone-events` and `GET /sequence-events` (newest first, paged).
//!
//! Every handler takes the same steps: authenticate → scope (reads need `read`, writes `admin`)
//! → rate limit → active OU ([`super::ctx_for`]); every document and every piece of lead state
//! is then read and written under that OU's keys only, so a key of one OU gets 404 for another
//! OU's ids. Bodies are JSON (`Content-Type: application/json`, size-limited like every route).
//!
//! The seeds answer invalid management bodies with **400 Bad Request**; [`RouteError`] renders
//! the models' field-level validation errors that way, in the gateway's error shape plus the
//! list of faulty fields: `{"error":{"code":"validation_failed","message":"…",
//! "fields":[{"field":"score_threshold","message":"score_threshold must be an integer"}]}}`.
//!
//! [`rulesets`]: super::rulesets
//! [`triggers`]: super::triggers
//! [`sequences`]: super::sequences
//! [`leads`]: super::leads
//! [`history`]: super::history

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use leadstream_domain::model::ValidationError;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::store::StoreError;

use super::{history, leads, rulesets, sequences, single_limits, triggers, Ctx};
use crate::auth::Scope;
use crate::body::{read_body, Accept};
use crate::error::ApiError;
use crate::publish::store_unavailable;
use crate::state::AppState;

/// Every route of this family; merged into the gateway's router by `server::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rulesets", get(rulesets::list).post(rulesets::create))
        .route(
            "/rulesets/{id}",
            get(rulesets::get_one)
                .put(rulesets::replace)
                .patch(rulesets::patch)
                .delete(rulesets::delete),
        )
        .route("/triggers", get(triggers::list).post(triggers::create))
        .route(
            "/triggers/{id}",
            get(triggers::get_one)
                .put(triggers::replace)
                .patch(triggers::patch)
                .delete(triggers::delete),
        )
        .route("/triggers/{id}/simulate", post(triggers::simulate))
        .route("/sequences", get(sequences::list).post(sequences::create))
        .route(
            "/sequences/{id}",
            get(sequences::get_one)
                .put(sequences::replace)
                .patch(sequences::patch)
                .delete(sequences::delete),
        )
        .route("/sequences/{id}/simulate", post(sequences::simulate))
        .route("/leads", get(leads::by_alias))
        .route("/leads/{lead_id}", get(leads::by_id))
        .route("/milestone-events", get(history::milestone_events))
        .route("/sequence-events", get(history::sequence_events))
        .route("/deliveries", get(super::deliveries::list))
}

/// One faulty request field; `message` is the whole sentence (`name is required`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for FieldError {
    fn from(e: ValidationError) -> Self {
        FieldError::new(e.field.clone(), e.to_string())
    }
}

/// What the handlers of this family fail with: the gateway's [`ApiError`], or a request body
/// that fails validation (400 with the faulty fields, as seeds 003 and 004 prescribe).
#[derive(Debug)]
pub enum RouteError {
    Api(ApiError),
    Invalid(Vec<FieldError>),
}

impl From<ApiError> for RouteError {
    fn from(e: ApiError) -> Self {
        RouteError::Api(e)
    }
}

impl From<ValidationError> for RouteError {
    fn from(e: ValidationError) -> Self {
        RouteError::Invalid(vec![e.into()])
    }
}

impl From<Vec<ValidationError>> for RouteError {
    fn from(e: Vec<ValidationError>) -> Self {
        RouteError::Invalid(e.into_iter().map(FieldError::from).collect())
    }
}

impl IntoResponse for RouteError {
    fn into_response(self) -> Response {
        match self {
            RouteError::Api(e) => e.into_response(),
            RouteError::Invalid(fields) => {
                let message: Vec<&str> = fields.iter().map(|f| f.message.as_str()).collect();
                let body = json!({"error": {
                    "code": "validation_failed",
                    "message": message.join("; "),
                    "fields": fields,
                }});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
        }
    }
}

/// A 400 for one field.
pub fn invalid(field: &str, message: impl Into<String>) -> RouteError {
    RouteError::Invalid(vec![FieldError::new(field, message)])
}

/// 404 for a managed object or lead of the active OU.
pub fn not_found(what: &str, id: &str) -> RouteError {
    RouteError::Api(ApiError::NotFound(format!("{what} {id:?} does not exist")))
}

/// The result type of every handler here.
pub type Reply = Result<Response, RouteError>;

/// Authenticate, check `scope`, rate-limit and settle the active OU.
pub async fn ctx(st: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Ctx, RouteError> {
    Ok(super::ctx_for(st, headers, scope).await?)
}

/// A store failure: 503 with `Retry-After` (the request may be retried unchanged).
pub fn store_err(st: &AppState) -> impl Fn(StoreError) -> RouteError + '_ {
    move |e| RouteError::Api(store_unavailable(e, st.cfg.retry_after_secs()))
}

pub fn catalog(st: &AppState) -> &Catalog {
    &st.auth.catalog
}

/// The JSON object body of a request (415 / 413 / 400 as for every JSON route), as a value.
pub async fn json_object(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, RouteError> {
    let (_, bytes) = read_body(headers, body, Accept::Json, single_limits(st)).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)?;
    if !value.is_object() {
        return Err(invalid("body", "body must be a JSON object"));
    }
    Ok(value)
}

/// [`json_object`] into a request type; serde's message (e.g. an unknown field) is the 400.
pub async fn json_body<T: DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, RouteError> {
    let value = json_object(st, headers, body).await?;
    serde_json::from_value(value).map_err(|e| invalid("body", e.to_string()))
}

/// A document of the active OU, or 404.
pub async fn load_doc<T: DeserializeOwned>(
    st: &AppState,
    ou: &str,
    collection: &str,
    what: &str,
    id: &str,
) -> Result<T, RouteError> {
    catalog(st)
        .get_doc(ou, collection, id)
        .await
        .map_err(store_err(st))?
        .ok_or_else(|| not_found(what, id))
}

/// Store a document and answer it with `status`.
pub async fn save_doc<T: Serialize>(
    st: &AppState,
    ou: &str,
    collection: &str,
    id: &str,
    doc: &T,
    status: StatusCode,
) -> Reply {
    catalog(st)
        .put_doc(ou, collection, id, doc)
        .await
        .map_err(store_err(st))?;
    Ok((status, Json(doc)).into_response())
}

/// PUT / PATCH: load the active OU's document (or 404), turn it into its new version with
/// `next` (the request's validation), store it and answer it with 200.
pub async fn update_doc<T, E, F>(
    st: &AppState,
    ou: &str,
    collection: &str,
    what: &str,
    id: &str,
    next: F,
) -> Reply
where
    T: Serialize + DeserializeOwned,
    E: Into<RouteError>,
    F: FnOnce(&T) -> Result<T, E>,
{
    let existing: T = load_doc(st, ou, collection, what, id).await?;
    let doc = next(&existing).map_err(Into::into)?;
    save_doc(st, ou, collection, id, &doc, StatusCode::OK).await
}

/// Delete a document: 204, or 404 when there was none.
pub async fn delete_doc(st: &AppState, ou: &str, collection: &str, what: &str, id: &str) -> Reply {
    let existed = catalog(st)
        .delete_doc(ou, collection, id)
        .await
        .map_err(store_err(st))?;
    if existed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(what, id))
    }
}

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    leadstream_shared::ids::rfc3339_ms(leadstream_shared::ids::now_ms())
}
