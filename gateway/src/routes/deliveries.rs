//! `GET /deliveries`: the notifier's delivery log for the active OU — every attempt with its
//! time, target, status code or error, latency and truncated response body — filtered by
//! `trigger_id`, `lead_id`, `fired_id` and `status` (`succeeded`, `retrying`, `failed`,
//! `disabled`, `skipped`), newest first, paged with `offset` (at most [`MAX_OFFSET`], so one
//! request reads a bounded number of records) and `limit` (default 50).
//! The notifier writes the log ([`leadstream_shared::delivery`]); this route only reads it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use leadstream_shared::delivery::{self, DeliveryQuery};

use super::ctx_for;
use super::request::store_err;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// The deepest `offset` one request may page to (it reads up to `offset + limit` records).
pub const MAX_OFFSET: usize = 10_000;

pub async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let q = parse(&raw)?;
    let page = delivery::query(st.store.as_ref(), &st.keys, &c.tenant.ou_id, &q)
        .await
        .map_err(store_err(&st))?;
    let mut v = serde_json::to_value(page).unwrap_or_default();
    super::redact::deliveries(&c.key, &mut v);
    Ok(Json(v).into_response())
}

fn parse(raw: &HashMap<String, String>) -> Result<DeliveryQuery, ApiError> {
    const KNOWN: [&str; 6] = [
        "trigger_id",
        "lead_id",
        "fired_id",
        "status",
        "offset",
        "limit",
    ];
    if let Some(unknown) = raw.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            unknown,
            format!("is not a filter; use one of {}", KNOWN.join(", ")),
        ));
    }
    let mut obj = serde_json::Map::new();
    for (k, v) in raw {
        let value = match k.as_str() {
            "offset" | "limit" => match v.parse::<usize>() {
                Ok(n)
                    if (k == "offset" && n <= MAX_OFFSET)
                        || (k == "limit" && (1..=delivery::PAGE_MAX).contains(&n)) =>
                {
                    serde_json::json!(n)
                }
                _ => {
                    return Err(ApiError::invalid(
                        k,
                        format!(
                            "must be a whole number (offset: 0 to {MAX_OFFSET}, limit: 1 to {}); \
                             narrow deeper searches with trigger_id, lead_id, fired_id or status",
                            delivery::PAGE_MAX
                        ),
                    ))
                }
            },
            _ => serde_json::json!(v),
        };
        obj.insert(k.clone(), value);
    }
    serde_json::from_value(serde_json::Value::Object(obj)).map_err(|_| {
        ApiError::invalid(
            "status",
            "must be one of succeeded, retrying, failed, disabled, skipped",
        )
    })
}
