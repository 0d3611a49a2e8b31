//! One pattern for every management resource that is a catalog document of the active OU —
//! rulesets, milestone triggers (seed 003), sequence triggers (seed 004) and CDP event types
//! (seed 002's registry): a [`Resource`] says what differs (the document type, its collection,
//! how a request becomes a document, how it is named in answers), and one set of generic
//! handlers does the rest:
//!
//! - [`list`]: `GET /{things}` → 200 `{"{things}": […]}` (read scope);
//! - [`create`]: `POST /{things}` → 201 with the stored document (admin scope);
//! - [`get_one`]: `GET /{things}/{id}` → 200, or 404 (read scope);
//! - [`replace`]: `PUT /{things}/{id}` and [`patch`]: `PATCH /{things}/{id}` → 200 with the new
//!   version, or 404 (admin scope; only for an [`Editable`] resource);
//! - [`delete`]: `DELETE /{things}/{id}` → 204, or 404 (admin scope).
//!
//! Every handler takes the same steps: authenticate → scope → rate limit → active OU
//! ([`ctx_for`]); a document is then read and written under that OU's keys only (through the
//! catalog's typed [`Documents`] store), so a key of one OU gets 404 for another OU's ids.
//! Every write bumps the OU's config version atomically with the document — how the processor
//! notices a change — and then calls [`Resource::changed`] for what the gateway itself caches.
//! Invalid bodies are [`ApiError::InvalidFields`] (400, as the seeds' trigger routes answer)
//! unless a resource's own validation says otherwise (event types: 422, as seed 002).

use std::future::Future;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use leadstream_shared::catalog::Documents;

use super::request::{decode_object, json_value, not_found, now_rfc3339, store_err};
use super::{ctx_for, redact};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// How `POST` stores a new document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCreate {
    /// The server gave it a fresh id: store it.
    Put,
    /// The client named it: 409 ([`Resource::taken`]) when the name is in use.
    InsertNew,
}

/// A kind of catalog document served by the generic handlers.
pub trait Resource: Send + Sync + 'static {
    /// The stored document, as answered.
    type Doc: Serialize + DeserializeOwned + Send + Sync;
    /// The `POST` body.
    type Create: DeserializeOwned + Send;

    /// The catalog collection (its key layout lives in `Keys::docs`).
    const COLLECTION: &'static str;
    /// The name of the list in `GET` answers (`rulesets`).
    const LIST: &'static str;
    /// One of them, in messages (`ruleset`).
    const WHAT: &'static str;
    /// Whether keys without the admin scope see endpoint URLs redacted ([`redact::documents`]).
    const REDACT: bool = false;
    /// How `POST` stores the new document.
    const ON_CREATE: OnCreate = OnCreate::Put;

    /// The document's id (its field in the collection).
    fn id(doc: &Self::Doc) -> &str;

    /// A new document from a validated `POST` body, created at `now`.
    fn create(req: Self::Create, now: &str) -> Result<Self::Doc, ApiError>;

    /// A request body (any JSON value) into a request type. By default it must be an object
    /// and serde's complaint is a 400 on `body`.
    fn decode<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
        decode_object(body)
    }

    /// The 404 of an id that does not exist in the active OU.
    fn not_found(id: &str) -> ApiError {
        not_found(Self::WHAT, id)
    }

    /// The 409 of [`OnCreate::InsertNew`] when the id is in use.
    fn taken(id: &str) -> ApiError {
        ApiError::conflict(
            "already_exists",
            format!("{} {id:?} already exists", Self::WHAT),
        )
    }

    /// After every write of the OU's documents of this kind (for the gateway's own caches).
    fn changed(_st: &AppState, _ou: &str) {}

    /// The documents `GET` lists, in id order.
    fn list(
        st: &AppState,
        ou: &str,
    ) -> impl Future<Output = Result<Vec<Self::Doc>, ApiError>> + Send {
        async move { store::<Self>(st).list(ou).await.map_err(store_err(st)) }
    }
}

/// A resource whose documents can be replaced (`PUT`) and merged into (`PATCH`).
pub trait Editable: Resource {
    type Replace: DeserializeOwned + Send;
    type Patch: DeserializeOwned + Send;

    /// The new version of `existing` from a `PUT` body, at `now`.
    fn replace(req: Self::Replace, existing: &Self::Doc, now: &str) -> Result<Self::Doc, ApiError>;

    /// The new version of `existing` from a `PATCH` body, at `now`.
    fn patch(req: Self::Patch, existing: &Self::Doc, now: &str) -> Result<Self::Doc, ApiError>;
}

/// The catalog's typed store of `R`'s documents.
pub fn store<R: Resource + ?Sized>(st: &AppState) -> Documents<R::Doc> {
    st.auth.catalog.documents(R::COLLECTION)
}

/// A document of the OU, or `R`'s 404.
pub async fn load<R: Resource>(st: &AppState, ou: &str, id: &str) -> Result<R::Doc, ApiError> {
    store::<R>(st)
        .get(ou, id)
        .await
        .map_err(store_err(st))?
        .ok_or_else(|| R::not_found(id))
}

/// Store a document, announce the change and answer the document with `status`.
async fn save<R: Resource>(
    st: &AppState,
    ou: &str,
    doc: &R::Doc,
    status: StatusCode,
) -> Result<Response, ApiError> {
    store::<R>(st)
        .put(ou, R::id(doc), doc)
        .await
        .map_err(store_err(st))?;
    R::changed(st, ou);
    Ok((status, Json(doc)).into_response())
}

/// `GET /{things}`.
pub async fn list<R: Resource>(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let items = R::list(&st, &c.tenant.ou_id).await?;
    let items = serde_json::to_value(items).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut v = Value::Object(Map::from_iter([(R::LIST.to_string(), items)]));
    if R::REDACT {
        redact::documents(&c.key, &mut v);
    }
    Ok(Json(v).into_response())
}

/// `POST /{things}`.
pub async fn create<R: Resource>(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let req: R::Create = R::decode(json_value(&st, &headers, body).await?)?;
    let doc = R::create(req, &now_rfc3339())?;
    let ou = &c.tenant.ou_id;
    match R::ON_CREATE {
        OnCreate::Put => save::<R>(&st, ou, &doc, StatusCode::CREATED).await,
        OnCreate::InsertNew => {
            let id = R::id(&doc);
            let inserted = store::<R>(&st)
                .insert(ou, id, &doc)
                .await
                .map_err(store_err(&st))?;
            if !inserted {
                return Err(R::taken(id));
            }
            R::changed(&st, ou);
            Ok((StatusCode::CREATED, Json(doc)).into_response())
        }
    }
}

/// `GET /{things}/{id}`.
pub async fn get_one<R: Resource>(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let doc = load::<R>(&st, &c.tenant.ou_id, &id).await?;
    if !R::REDACT {
        return Ok(Json(doc).into_response());
    }
    let mut v = serde_json::to_value(doc).unwrap_or_default();
    redact::documents(&c.key, &mut v);
    Ok(Json(v).into_response())
}

/// `PUT /{things}/{id}`.
pub async fn replace<R: Editable>(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    update::<R, R::Replace>(st, headers, id, body, R::replace).await
}

/// `PATCH /{things}/{id}`.
pub async fn patch<R: Editable>(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    update::<R, R::Patch>(st, headers, id, body, R::patch).await
}

/// [`Editable::replace`] or [`Editable::patch`].
type Edit<R, Req> = fn(Req, &<R as Resource>::Doc, &str) -> Result<<R as Resource>::Doc, ApiError>;

/// `PUT` / `PATCH`: decode the body, load the OU's document (or 404), make its next version
/// with `edit` (the request's validation), store it and answer it with 200.
async fn update<R: Editable, Req: DeserializeOwned>(
    st: AppState,
    headers: HeaderMap,
    id: String,
    body: Body,
    edit: Edit<R, Req>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let req: Req = R::decode(json_value(&st, &headers, body).await?)?;
    let ou = &c.tenant.ou_id;
    let existing = load::<R>(&st, ou, &id).await?;
    let doc = edit(req, &existing, &now_rfc3339())?;
    save::<R>(&st, ou, &doc, StatusCode::OK).await
}

/// `DELETE /{things}/{id}`.
pub async fn delete<R: Resource>(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let ou = &c.tenant.ou_id;
    let existed = store::<R>(&st)
        .delete(ou, &id)
        .await
        .map_err(store_err(&st))?;
    R::changed(&st, ou);
    if !existed {
        return Err(R::not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
