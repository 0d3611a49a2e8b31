//! HTTP routes, by concern: [`ingest`] (seeds 000 and 001), [`cdp`] (seed 002), [`import`]
//! (bulk), [`manage`] (org units, API keys, webhook secrets), the catalog documents served by
//! the one pattern of [`documents`] — [`rulesets`], [`triggers`] (seed 003), [`sequences`]
//! (seed 004), [`event_types`] (the CDP registry) —, the [`rescore`] and preview jobs, the
//! reads [`leads`], [`history`] and [`deliveries`], and [`health`]. The router is assembled in `server.rs` only.
//!
//! The helpers below are the steps every route starts with — authenticate → scope → rate
//! limit → active OU ([`ctx_for`]) — and those the ingest routes share to read and validate a
//! body; [`request`] holds those of the JSON management routes.

pub mod cdp;
pub mod deliveries;
pub mod documents;
pub mod event_types;
pub mod health;
pub mod history;
pub mod import;
pub mod ingest;
pub mod leads;
pub mod manage;
pub mod openapi;
pub mod redact;
pub mod request;
pub mod rescore;
pub mod rulesets;
pub mod sequences;
pub mod triggers;

use std::sync::Arc;

use axum::http::HeaderMap;

use leadstream_domain::event::EngagementEvent;

use crate::auth::{KeyChecks, KeyInfo, Scope};
use crate::body::Limits;
use crate::error::ApiError;
use crate::payload::import::BatchError;
use crate::payload::{PayloadError, Tenant};
use crate::publish::traceparent;
use crate::state::AppState;

/// Who is calling and for which tenant.
pub struct Ctx {
    pub key: Arc<KeyInfo>,
    pub tenant: Tenant,
}

/// Authenticate, require `scope`, count against the key's rate, and settle the active OU.
pub async fn ctx_for(st: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Ctx, ApiError> {
    let key = st.auth.authenticate(headers).await?;
    key.require(scope)?;
    st.limiter.check(&key.id)?;
    let tenant = st.auth.active_ou(headers, &key).await?;
    Ok(Ctx { key, tenant })
}

/// [`ctx_for`] with the ingest scope.
pub async fn ingest_ctx(st: &AppState, headers: &HeaderMap) -> Result<Ctx, ApiError> {
    ctx_for(st, headers, Scope::Ingest).await
}

/// Charge `n` events to the OU's and the key's event rates (429 when over either).
pub fn charge_events(st: &AppState, ctx: &Ctx, n: usize) -> Result<(), ApiError> {
    st.events.charge(&ctx.tenant.ou_id, &ctx.key.id, n)
}

/// Seed 000 lists only 400 for bad bodies.
pub fn invalid_400(e: PayloadError) -> ApiError {
    match e {
        PayloadError::Malformed(m) => {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {m}"))
        }
        PayloadError::Invalid(m) => ApiError::bad_request("validation_failed", m),
    }
}

/// Seeds 001 and 002: malformed JSON is 400, failed validation 422.
pub fn invalid_422(e: PayloadError) -> ApiError {
    match e {
        PayloadError::Malformed(m) => {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {m}"))
        }
        PayloadError::Invalid(m) => ApiError::Validation(m),
    }
}

pub fn batch_error(e: BatchError) -> ApiError {
    match e {
        BatchError::Malformed(m) => {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {m}"))
        }
        BatchError::Shape(m) => ApiError::Validation(m),
        BatchError::TooMany { max } => ApiError::TooManyItems { max },
    }
}

/// Limits of a single-event body: one event, decompressed.
pub fn single_limits(st: &AppState) -> Limits {
    Limits {
        wire: st.cfg.max_request_bytes,
        decompressed: st.cfg.max_event_bytes,
        read_timeout: st.cfg.read_timeout,
    }
}

/// Limits of a batch or import body.
pub fn batch_limits(st: &AppState) -> Limits {
    Limits {
        wire: st.cfg.max_request_bytes,
        decompressed: st.cfg.max_decompressed_bytes,
        read_timeout: st.cfg.read_timeout,
    }
}

/// Resolve, publish and await the ack of one event; any failure is the route's error.
pub async fn publish_one(
    st: &AppState,
    headers: &HeaderMap,
    event: EngagementEvent,
) -> Result<EngagementEvent, ApiError> {
    let mut events = [event];
    let tp = traceparent(headers);
    let mut results = st.pipeline.accept(&mut events, &tp).await?;
    let [event] = events;
    match results.pop() {
        Some(Ok(_)) => Ok(event),
        Some(Err(e)) => Err(e.into_api(st.cfg.retry_after_secs())),
        None => Err(ApiError::Internal("no publish result".into())),
    }
}
