//! Bulk historical import: `POST /import` (seed 000 names an "Import Events endpoint").
//!
//! The body is a JSON array of seed-000 events, `{"events": [...]}`, or NDJSON
//! (`Content-Type: application/x-ndjson`), gzip welcome; up to `LEADSTREAM_MAX_IMPORT_ITEMS`
//! events and `LEADSTREAM_MAX_DECOMPRESSED_BYTES` per request. Each event keeps its own
//! `timestamp` (the default is receipt time) and may carry `event_id` (the producer's id: the
//! processor drops a re-imported event with the same `event_id` and `source`, so re-sending a
//! partly failed import is safe when ids are given) and `source`.
//!
//! Every valid event is published concurrently and acknowledged before the answer:
//! 200 `{"accepted": n, "rejected": m, "errors": [{"index", "error_code", "message"}]}`.
//! If no valid event could be stored because the broker is unavailable, the answer is 503.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use leadstream_shared::ids;
use leadstream_shared::metric;

use super::{batch_error, batch_limits, charge_events, ingest_ctx};
use crate::auth::KeyChecks;
use crate::body::{read_batch_body, Accept};
use crate::error::ApiError;
use crate::metrics::GatewayCounter;
use crate::payload::import::split_import;
use crate::payload::leadvibe;
use crate::publish::traceparent;
use crate::state::AppState;

/// At most this many per-item errors are listed (the counts are always complete).
const MAX_LISTED_ERRORS: usize = 1000;

pub async fn import(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ingest_ctx(&st, &headers).await?;
    let (max, max_event) = (st.cfg.max_import_items, st.cfg.max_event_bytes);
    let (format, bytes) =
        read_batch_body(&headers, body, Accept::JsonOrNdjson, batch_limits(&st), max).await?;
    // Splitting and parsing up to `max` events is CPU work: off the async workers.
    let drafts = tokio::task::spawn_blocking(move || {
        split_import(format, &bytes, max, max_event).map(|items| {
            items
                .into_iter()
                .map(|raw| raw.and_then(leadvibe::import_item_bytes))
                .collect::<Vec<_>>()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("import parsing task failed: {e}")))?
    .map_err(batch_error)?;
    let received = ids::now_ms();
    let mut errors: Vec<Value> = Vec::new();
    let mut rejected = 0usize;
    let mut events = Vec::with_capacity(drafts.len());
    let mut index = Vec::with_capacity(drafts.len());
    for (i, parsed) in drafts.into_iter().enumerate() {
        match parsed {
            Ok(draft) => {
                if let Some(src) = &draft.source {
                    if let Err(e) = ctx.key.require_source(src) {
                        rejected += 1;
                        push_error(&mut errors, i, "forbidden", e.public_message());
                        continue;
                    }
                }
                events.push(draft.into_event(&ctx.tenant, received));
                index.push(i);
            }
            Err(e) => {
                rejected += 1;
                push_error(&mut errors, i, "validation_failed", e.to_string());
            }
        }
    }
    if rejected > 0 {
        metric::counter!(GatewayCounter::ItemsRejected, "import").increment(rejected as u64);
    }
    let attempted = events.len();
    charge_events(&st, &ctx, attempted)?;
    let tp = traceparent(&headers);
    let published = st.pipeline.accept(&mut events, &tp).await?;
    let mut accepted = 0usize;
    let mut unavailable = 0usize;
    for (i, res) in index.into_iter().zip(published) {
        match res {
            Ok(_) => accepted += 1,
            Err(e) => {
                if e.is_retryable() {
                    unavailable += 1;
                }
                rejected += 1;
                push_error(&mut errors, i, e.code(), e.to_string());
            }
        }
    }
    if attempted > 0 && unavailable == attempted {
        return Err(ApiError::unavailable(
            "no event of the import could be stored; retry later",
            st.cfg.retry_after_secs(),
        ));
    }
    let body = json!({"accepted": accepted, "rejected": rejected, "errors": errors});
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    if unavailable > 0 {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(st.cfg.retry_after_secs()),
        );
    }
    Ok(resp)
}

fn push_error(errors: &mut Vec<Value>, index: usize, code: &str, message: String) {
    if errors.len() < MAX_LISTED_ERRORS {
        errors.push(json!({"index": index, "error_code": code, "message": message}));
    }
}
