//! Single-event ingest routes of seeds 000 and 001.
//!
//! - `POST /ingest` (LeadVibe): 202 Accepted once the broker acknowledged the event, body
//!   `{"status":"accepted","event_id","lead_id"}` (the seed gives no body; these fields are
//!   extra). Body problems are 400, as the seed's error table lists.
//! - `POST /v1/events/ingest` (Lariba): 200 `{"accepted":true,"event_id","status":"stored"}`,
//!   where `event_id` is the gateway's id of the stored record. With `Idempotency-Key`, a retry
//!   (same key, same body) gets the first answer again and publishes nothing
//!   (`Idempotent-Replayed: true`); the same key with another body is 409 `idempotency_key_reused`;
//!   a retry while the first request is still being stored is 503 `request_in_progress` with
//!   `Retry-After`. A `source_id` that is not the key's bound source is 403. Validation
//!   failures are 422.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use leadstream_shared::ids;
use leadstream_shared::metric;

use super::{charge_events, ingest_ctx, invalid_400, invalid_422, publish_one, single_limits};
use crate::auth::KeyChecks;
use crate::body::{read_body, Accept};
use crate::dedupe::{fingerprint, Outcome};
use crate::error::ApiError;
use crate::metrics::GatewayCounter;
use crate::payload::{into_object, lariba, leadvibe};
use crate::publish::store_unavailable;
use crate::state::AppState;

/// `POST /ingest` (seed 000).
pub async fn ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ingest_ctx(&st, &headers).await?;
    charge_events(&st, &ctx, 1)?;
    let (_, bytes) = read_body(&headers, body, Accept::Json, single_limits(&st)).await?;
    let draft = leadvibe::parse_bytes(&bytes).map_err(invalid_400)?;
    let event = draft.into_event(&ctx.tenant, ids::now_ms());
    let event = publish_one(&st, &headers, event).await?;
    let body = json!({
        "status": "accepted",
        "event_id": event.event_id,
        "lead_id": event.lead_id,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| {
            ApiError::bad_request("invalid_header", "Idempotency-Key must be visible ASCII")
        })?
        .trim();
    if text.is_empty() || text.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(
            "invalid_header",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

fn stored(event_id: &str, replayed: bool) -> Response {
    let mut resp = (
        StatusCode::OK,
        Json(json!({"accepted": true, "event_id": event_id, "status": "stored"})),
    )
        .into_response();
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// `POST /v1/events/ingest` (seed 001).
pub async fn events_ingest(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ingest_ctx(&st, &headers).await?;
    charge_events(&st, &ctx, 1)?;
    let idem = idempotency_key(&headers)?;
    let (_, bytes) = read_body(&headers, body, Accept::Json, single_limits(&st)).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)?;
    let fp = fingerprint(&value);
    let obj = into_object(value).map_err(invalid_422)?;
    let draft = lariba::parse(&obj, idem.as_deref()).map_err(invalid_422)?;
    let source = draft.source.clone().unwrap_or_default();
    ctx.key.require_source(&source)?;
    let event = draft.into_event(&ctx.tenant, ids::now_ms());

    let Some(idem) = idem else {
        let event = publish_one(&st, &headers, event).await?;
        return Ok(stored(&event.event_id, false));
    };
    let retry = st.cfg.retry_after_secs();
    let claim_key = st.claims.key(&ctx.tenant.ou_id, "idem", &[&source, &idem]);
    let claim = match st
        .claims
        .claim(&claim_key, &event.event_id)
        .await
        .map_err(|e| store_unavailable(e, retry))?
    {
        Outcome::Claimed(c) => c,
        Outcome::Done {
            event_id,
            fp: first,
        } if first == fp => {
            metric::counter!(GatewayCounter::Duplicates, "events").increment(1);
            return Ok(stored(&event_id, true));
        }
        Outcome::Done { .. } => {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ))
        }
        Outcome::InProgress => {
            return Err(ApiError::InProgress {
                message: "a request with this Idempotency-Key is still being processed; retry \
                          after Retry-After seconds"
                    .into(),
                retry_after_secs: retry,
            })
        }
    };
    match publish_one(&st, &headers, event).await {
        Ok(event) => {
            if let Err(e) = st.claims.finish(&claim, &event.event_id, &fp).await {
                tracing::warn!(error = %e, event_id = %event.event_id, "idempotency record not completed");
            }
            Ok(stored(&event.event_id, false))
        }
        Err(err) => {
            if let Err(e) = st.claims.release(&claim).await {
                tracing::warn!(error = %e, "idempotency claim not released; it will expire");
            }
            Err(err)
        }
    }
}
