//! Seed 002 (ResultFly CDP): `POST /v1/cdp/events` and `POST /v1/cdp/events/batch`.
//!
//! Each event is checked against the OU's event-type registry, then deduplicated on
//! `(OU, source, externalEventId)` through a two-phase claim ([`crate::dedupe`]):
//! a first sighting is published and answered `{"status":"accepted","event_id"}` (202 for the
//! single route), a repeat is answered `{"status":"duplicate","original_event_id"}` (200) and
//! publishes nothing. A repeat is recognised by its body: the same `externalEventId` with a
//! different body is a collision a retry will not fix — 409 `idempotency_conflict` (a batch
//! item: `error_code: "idempotency_conflict"`) — while a retry that meets the first request
//! still being stored is 503 `request_in_progress` with `Retry-After` (batch item:
//! `error_code: "request_in_progress"`, and the batch answer carries `Retry-After`).
//! The batch evaluates every item on its own and answers 200 with one result
//! per item in order; an item that failed carries `error_code` and `message`. When no item could
//! be stored because the broker (or store) is unavailable, the whole batch is a 503 and every
//! claim is released, so a retry is safe.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::future::join_all;
use serde_json::{json, Value};

use leadstream_domain::event::EngagementEvent;
use leadstream_shared::ids;
use leadstream_shared::metric;
use leadstream_shared::store::StoreError;

use super::{
    batch_error, batch_limits, charge_events, ingest_ctx, invalid_422, single_limits, Ctx,
};
use crate::auth::KeyChecks;
use crate::body::{read_batch_body, read_body, Accept};
use crate::dedupe::{fingerprint, Claim, Outcome};
use crate::error::ApiError;
use crate::metrics::GatewayCounter;
use crate::payload::cdp::{self, EventType};
use crate::payload::import::split_items;
use crate::payload::{parse_object, PayloadError};
use crate::publish::{store_unavailable, traceparent};
use crate::state::AppState;

/// `error_code` of an `externalEventId` reused for a different body (409 on the single route).
const CONFLICT: &str = "idempotency_conflict";
/// `error_code` of an item whose first request is still being stored (503 on the single route).
const IN_PROGRESS: &str = "request_in_progress";

/// The result of one CDP item, as the seed spells it.
#[derive(Debug, Clone)]
enum ItemResult {
    Accepted(String),
    Duplicate(String),
    Error { code: &'static str, message: String },
}

impl ItemResult {
    fn to_json(&self) -> Value {
        match self {
            ItemResult::Accepted(id) => json!({"status": "accepted", "event_id": id}),
            ItemResult::Duplicate(id) => json!({"status": "duplicate", "original_event_id": id}),
            ItemResult::Error { code, message } => {
                json!({"status": "error", "error_code": code, "message": message})
            }
        }
    }

    fn error(code: &'static str, message: impl Into<String>) -> ItemResult {
        ItemResult::Error {
            code,
            message: message.into(),
        }
    }
}

/// An accepted item: the event, and the fingerprint of the item as sent (a repeat of its
/// `externalEventId` with another fingerprint is a conflict, not a duplicate).
struct Checked {
    event: EngagementEvent,
    fp: String,
}

/// Validate one parsed item: payload, source binding, registered type and its properties.
fn validate_item(
    ctx: &Ctx,
    types: &HashMap<String, EventType>,
    obj: serde_json::Map<String, Value>,
) -> Result<Checked, ApiError> {
    let event = validate_fields(ctx, types, &obj)?;
    Ok(Checked {
        event,
        fp: fingerprint(&Value::Object(obj)),
    })
}

fn validate_fields(
    ctx: &Ctx,
    types: &HashMap<String, EventType>,
    obj: &serde_json::Map<String, Value>,
) -> Result<EngagementEvent, ApiError> {
    let draft = cdp::parse(obj).map_err(invalid_422)?;
    let source = draft.source.as_deref().unwrap_or("");
    ctx.key.require_source(source)?;
    let Some(t) = types.get(&draft.event_type) else {
        return Err(ApiError::Validation(format!(
            "eventType `{}` is not registered in the CDP contract (POST /v1/cdp/event-types)",
            draft.event_type
        )));
    };
    t.validate(&draft.metadata).map_err(invalid_422)?;
    Ok(draft.into_event(&ctx.tenant, ids::now_ms()))
}

/// `POST /v1/cdp/events`.
pub async fn event(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ingest_ctx(&st, &headers).await?;
    charge_events(&st, &ctx, 1)?;
    let (_, bytes) = read_body(&headers, body, Accept::Json, single_limits(&st)).await?;
    let obj = parse_object(&bytes).map_err(|e| match e {
        PayloadError::Malformed(m) => {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {m}"))
        }
        other => invalid_422(other),
    })?;
    let types = st.event_types(&ctx.tenant.ou_id).await?;
    let item = validate_item(&ctx, &types, obj)?;
    let results = process(&st, &headers, vec![item]).await?;
    match results.into_iter().next() {
        Some(ItemResult::Accepted(id)) => Ok((
            StatusCode::ACCEPTED,
            Json(ItemResult::Accepted(id).to_json()),
        )
            .into_response()),
        Some(r @ ItemResult::Duplicate(_)) => {
            Ok((StatusCode::OK, Json(r.to_json())).into_response())
        }
        Some(ItemResult::Error { code, message }) => Err(match code {
            CONFLICT => ApiError::conflict(code, message),
            IN_PROGRESS => ApiError::InProgress {
                message,
                retry_after_secs: st.cfg.retry_after_secs(),
            },
            "rejected" => ApiError::Validation(message),
            _ => ApiError::unavailable(message, st.cfg.retry_after_secs()),
        }),
        None => Err(ApiError::Internal("no result for the event".into())),
    }
}

/// `POST /v1/cdp/events/batch`.
pub async fn batch(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ctx = ingest_ctx(&st, &headers).await?;
    let max = st.cfg.max_batch_items;
    let (_, bytes) = read_batch_body(&headers, body, Accept::Json, batch_limits(&st), max).await?;
    let items = split_items(&bytes, max, st.cfg.max_event_bytes).map_err(batch_error)?;
    let types = st.event_types(&ctx.tenant.ou_id).await?;

    let mut results: Vec<Option<ItemResult>> = vec![None; items.len()];
    let mut events = Vec::new();
    let mut slots = Vec::new();
    for (i, raw) in items.into_iter().enumerate() {
        let checked = raw
            .and_then(|text| parse_object(text.as_bytes()))
            .map_err(invalid_422)
            .and_then(|obj| validate_item(&ctx, &types, obj));
        match checked {
            Ok(e) => {
                events.push(e);
                slots.push(i);
            }
            Err(e) => {
                metric::counter!(GatewayCounter::ItemsRejected, "cdp").increment(1);
                let (_, code, _) = e.parts();
                let code = if code == "forbidden" {
                    "forbidden"
                } else {
                    "validation_failed"
                };
                results[i] = Some(ItemResult::error(code, e.public_message()));
            }
        }
    }
    let attempted = events.len();
    charge_events(&st, &ctx, attempted)?;
    let processed = process(&st, &headers, events).await?;
    let unavailable = processed
        .iter()
        .filter(|r| {
            matches!(
                r,
                ItemResult::Error {
                    code: "unavailable",
                    ..
                }
            )
        })
        .count();
    let retry_later = unavailable
        + processed
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    ItemResult::Error {
                        code: IN_PROGRESS,
                        ..
                    }
                )
            })
            .count();
    if attempted > 0 && unavailable == attempted {
        return Err(ApiError::unavailable(
            "no event of the batch could be stored; retry later",
            st.cfg.retry_after_secs(),
        ));
    }
    for (slot, r) in slots.into_iter().zip(processed) {
        results[slot] = Some(r);
    }
    let out: Vec<Value> = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| ItemResult::error("internal", "no result"))
                .to_json()
        })
        .collect();
    let mut resp = (StatusCode::OK, Json(json!({ "results": out }))).into_response();
    if retry_later > 0 {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(st.cfg.retry_after_secs()),
        );
    }
    Ok(resp)
}

/// Dedupe, resolve, publish and record a list of validated events; one result each, in order.
async fn process(
    st: &AppState,
    headers: &HeaderMap,
    items: Vec<Checked>,
) -> Result<Vec<ItemResult>, ApiError> {
    let (events, fps): (Vec<EngagementEvent>, Vec<String>) =
        items.into_iter().map(|c| (c.event, c.fp)).unzip();
    let retry = st.cfg.retry_after_secs();
    let n = events.len();
    let mut results: Vec<Option<ItemResult>> = vec![None; n];
    // Repeats inside the same request answer like the first occurrence.
    let mut first_of: HashMap<(String, String), usize> = HashMap::new();
    let mut copy_of: Vec<Option<usize>> = vec![None; n];
    for (i, e) in events.iter().enumerate() {
        let id = (
            e.source.clone().unwrap_or_default(),
            e.producer_event_id.clone().unwrap_or_default(),
        );
        match first_of.get(&id) {
            Some(&first) => copy_of[i] = Some(first),
            None => {
                first_of.insert(id, i);
            }
        }
    }
    let claim_keys: Vec<Option<String>> = events
        .iter()
        .zip(&copy_of)
        .map(|(e, copy)| {
            copy.is_none().then(|| {
                let source = e.source.as_deref().unwrap_or("");
                let ext = e.producer_event_id.as_deref().unwrap_or("");
                st.claims.key(&e.ou_id, "cdp", &[source, ext])
            })
        })
        .collect();
    let conflict = || {
        ItemResult::error(
            CONFLICT,
            "this externalEventId was already used for a different event body; a new business \
             fact needs a new externalEventId",
        )
    };
    // One pipelined round trip claims every new producer id of the request.
    let wanted: Vec<(&str, &str)> = events
        .iter()
        .zip(&claim_keys)
        .filter_map(|(e, key)| Some((key.as_deref()?, e.event_id.as_str())))
        .collect();
    let mut claimed = st.claims.claim_many(&wanted).await.into_iter();
    let outcomes: Vec<Result<Option<Outcome>, _>> = claim_keys
        .iter()
        .map(|key| match key {
            Some(_) => claimed
                .next()
                .unwrap_or_else(|| Err(StoreError::Corrupt("missing claim result".into())))
                .map(Some),
            None => Ok(None),
        })
        .collect();
    let mut claims: Vec<Option<Claim>> = vec![None; n];
    let mut store_error = None;
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Ok(Some(Outcome::Claimed(c))) => claims[i] = Some(c),
            // Records written before fingerprints were kept have none: a plain duplicate.
            Ok(Some(Outcome::Done { fp, .. })) if !fp.is_empty() && fp != fps[i] => {
                results[i] = Some(conflict());
            }
            Ok(Some(Outcome::Done { event_id, .. })) => {
                metric::counter!(GatewayCounter::Duplicates, "cdp").increment(1);
                results[i] = Some(ItemResult::Duplicate(event_id));
            }
            Ok(Some(Outcome::InProgress)) => {
                results[i] = Some(ItemResult::error(
                    IN_PROGRESS,
                    "an event with this externalEventId is being stored right now; retry the \
                     same request after Retry-After seconds",
                ))
            }
            Ok(None) => {}
            Err(e) => store_error = Some(e),
        }
    }
    let release_all = |claims: Vec<Option<Claim>>| async move {
        join_all(claims.iter().flatten().map(|c| st.claims.release(c))).await;
    };
    if let Some(e) = store_error {
        release_all(claims).await;
        return Err(store_unavailable(e, retry));
    }

    let mut to_send: Vec<EngagementEvent> = Vec::new();
    let mut sent_idx = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        if claims[i].is_some() {
            to_send.push(e);
            sent_idx.push(i);
        }
    }
    let tp = traceparent(headers);
    let published = match st.pipeline.accept(&mut to_send, &tp).await {
        Ok(p) => p,
        Err(e) => {
            release_all(claims).await;
            return Err(e);
        }
    };
    // Published ones record their answer (one pipelined round trip for fresh claims); failed
    // ones give their id back so a retry publishes it.
    let mut done: Vec<(&Claim, &str, &str)> = Vec::new();
    let mut done_idx: Vec<usize> = Vec::new();
    let mut releases = Vec::new();
    for ((i, e), res) in sent_idx.iter().zip(&to_send).zip(published) {
        let Some(claim) = claims[*i].as_ref() else {
            results[*i] = Some(ItemResult::error("internal", "missing claim"));
            continue;
        };
        match res {
            Ok(_) => {
                done.push((claim, e.event_id.as_str(), fps[*i].as_str()));
                done_idx.push(*i);
                results[*i] = Some(ItemResult::Accepted(e.event_id.clone()));
            }
            Err(err) => {
                releases.push(claim);
                results[*i] = Some(ItemResult::error(err.code(), err.to_string()));
            }
        }
    }
    for ((i, r), (_, event_id, _)) in done_idx
        .iter()
        .zip(st.claims.finish_many(&done).await)
        .zip(&done)
    {
        if let Err(err) = r {
            tracing::warn!(error = %err, event_id = %event_id, item = i, "dedupe record not completed");
        }
    }
    join_all(releases.into_iter().map(|c| st.claims.release(c))).await;
    let results: Vec<ItemResult> = (0..n)
        .map(|i| {
            let own = results[i].clone();
            match (own, copy_of[i]) {
                (Some(r), _) => r,
                (None, Some(first)) if fps[i] != fps[first] => conflict(),
                (None, Some(first)) => match &results[first] {
                    Some(ItemResult::Accepted(id)) | Some(ItemResult::Duplicate(id)) => {
                        ItemResult::Duplicate(id.clone())
                    }
                    Some(other) => other.clone(),
                    None => ItemResult::error("internal", "no result"),
                },
                (None, None) => ItemResult::error("internal", "no result"),
            }
        })
        .collect();
    Ok(results)
}

/// The registry of an OU, as the state caches it.
pub type Registry = Arc<HashMap<String, EventType>>;
