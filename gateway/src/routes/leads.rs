//! Leads of the active OU and why they score (issue 3, item 3), read scope:
//!
//! - `GET /leads/{lead_id}`;
//! - `GET /leads?alias_kind=email&alias=ann@example.com` (the alias is normalised as at ingest;
//!   an unknown kind or a malformed alias is 400, an alias that resolves to no lead 404).
//!
//! Both answer
//!
//! ```json
//! {"lead_id": "ld_1", "score": 42,
//!  "rulesets": [{"id": "rs_…", "name": "Engagement", "active": true, "score": 42}],
//!  "aliases": [{"kind": "email", "value": "ann@example.com"}],
//!  "last_event_at": "2025-01-15T10:35:00Z", "event_count": 7,
//!  "contributions": [{"event_id": "evt_…", "ruleset_id": "rs_…", "ruleset_name": "Engagement",
//!                     "rule_id": "r1", "event_type": "page_view", "points": 5,
//!                     "at": "2025-01-15T10:35:00Z"}]}
//! ```
//!
//! `score` is decayed to now (the same lazy decay the processor applies at each event) with the
//! rulesets' current `active` flags and half-lives; `rulesets` lists every ruleset of the OU with
//! the lead's score in it (0 when it never scored there) and adds up to `score` over the active
//! ones; `contributions` are the lead's most recent awards (the processor keeps the last 50),
//! newest first, with the rule's event type when the rule still exists. The state is the
//! processor's [`LeadRecord`], read through [`LeadStates`] from the lead's events partition (the
//! topic's partition count comes from the broker, or `LEADSTREAM_PARTITIONS` when the broker
//! cannot say); a lead with neither state nor aliases is 404.

use leadstream_domain::ids::{LeadId, OuId};
use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use leadstream_domain::event::{Alias, AliasKind};
use leadstream_domain::lead::LeadRecord;
use leadstream_domain::model::ruleset::Ruleset;
use leadstream_shared::ids::{now_ms, rfc3339_ms};
use leadstream_shared::store::leads::LeadStates;

use super::ctx_for;
use super::documents::store;
use super::request::{not_found, store_err};
use super::rulesets::Rulesets;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest lead id looked up (longer ones cannot exist: ingest bounds them far below).
const MAX_LEAD_ID: usize = 512;

/// A lead's stored processing state, raw and decoded.
pub struct StoredLead {
    /// The JSON as the processor wrote it (`Value::Null` when the lead has no state yet).
    pub raw: Value,
    pub record: LeadRecord,
    /// `kind:value`, as the catalog records them.
    pub aliases: Vec<String>,
}

/// The lead's state and aliases in the OU, or 404 when the lead is unknown there.
pub async fn load_lead(st: &AppState, ou: &str, lead: &str) -> Result<StoredLead, ApiError> {
    if lead.is_empty() || lead.len() > MAX_LEAD_ID {
        return Err(not_found("lead", lead));
    }
    let partitions = match st.pipeline.sink.partitions().await {
        Some(n) => n,
        None => st.cfg.common.partitions,
    };
    let states = LeadStates::new(
        st.store.clone(),
        st.keys.clone(),
        st.cfg.common.topics.events.clone(),
        partitions,
    );
    let record = states
        .get(OuId(ou), LeadId(lead))
        .await
        .map_err(|e| match e {
            leadstream_shared::store::StoreError::Corrupt(msg) => ApiError::Internal(format!(
                "stored state of lead {lead:?} does not decode: {msg}"
            )),
            e => store_err(st)(e),
        })?;
    let raw = match &record {
        Some(r) => serde_json::to_value(r).map_err(|e| corrupt(lead, e))?,
        None => Value::Null,
    };
    let record = record.unwrap_or_default();
    let aliases = st
        .auth
        .catalog
        .aliases_of(OuId(ou), LeadId(lead))
        .await
        .map_err(store_err(st))?;
    if raw.is_null() && aliases.is_empty() {
        return Err(not_found("lead", lead));
    }
    Ok(StoredLead {
        raw,
        record,
        aliases,
    })
}

fn corrupt(lead: &str, e: serde_json::Error) -> ApiError {
    ApiError::Internal(format!(
        "stored state of lead {lead:?} does not decode: {e}"
    ))
}

/// `GET /leads/{lead_id}`.
pub async fn by_id(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(lead): Path<String>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    view(&st, &c.tenant.ou_id, &lead).await
}

/// `GET /leads?alias_kind=…&alias=…`.
pub async fn by_alias(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let (Some(kind), Some(raw)) = (q.get("alias_kind"), q.get("alias")) else {
        return Err(ApiError::invalid(
            "alias_kind",
            "alias_kind and alias query parameters are required (or use GET /leads/{lead_id})",
        ));
    };
    let Some(kind) = AliasKind::parse(kind.trim()) else {
        let kinds: Vec<&str> = AliasKind::ALL.iter().map(|k| k.as_str()).collect();
        let msg = format!("alias_kind must be one of {}", kinds.join(", "));
        return Err(ApiError::invalid("alias_kind", msg));
    };
    let alias =
        Alias::normalise(kind, raw).map_err(|e| ApiError::invalid("alias", e.to_string()))?;
    let ou = &c.tenant.ou_id;
    let lead = st
        .auth
        .catalog
        .lead_for_alias(ou, &alias)
        .await
        .map_err(store_err(&st))?
        .ok_or_else(|| {
            let shown = format!("{}:{}", alias.kind.as_str(), alias.value);
            ApiError::NotFound(format!("no lead has the alias {shown:?}"))
        })?;
    view(&st, ou, &lead).await
}

async fn view(st: &AppState, ou: &str, lead: &str) -> Result<Response, ApiError> {
    let stored = load_lead(st, ou, lead).await?;
    let rulesets = store::<Rulesets>(st)
        .list(ou)
        .await
        .map_err(store_err(st))?;
    Ok(Json(lead_json(lead, &stored, &rulesets, now_ms())).into_response())
}

/// The lead document described in the module header, at `now` (Unix ms).
pub fn lead_json(lead: &str, stored: &StoredLead, rulesets: &[Ruleset], now: i64) -> Value {
    let mut score = stored.record.score.clone();
    score.sync_rulesets(rulesets);
    let per: BTreeMap<String, i64> = score.ruleset_scores_at(now);
    let total: i64 = per.values().sum();
    let categories: Vec<Value> = rulesets
        .iter()
        .map(|r| {
            let s = if r.active {
                per.get(&r.id).copied().unwrap_or(0)
            } else {
                0
            };
            json!({"id": r.id, "name": r.name, "active": r.active, "score": s})
        })
        .collect();
    let aliases: Vec<Value> = stored
        .aliases
        .iter()
        .map(|a| match a.split_once(':') {
            Some((kind, value)) => json!({"kind": kind, "value": value}),
            None => json!({"kind": Value::Null, "value": a}),
        })
        .collect();
    let contributions: Vec<Value> = score
        .contributions
        .iter()
        .rev()
        .map(|c| {
            let rs = rulesets.iter().find(|r| r.id == c.ruleset_id);
            let rule = rs.and_then(|r| r.rules.iter().find(|x| x.id == c.rule_id));
            json!({
                "event_id": c.event_id,
                "ruleset_id": c.ruleset_id,
                "ruleset_name": rs.map(|r| r.name.as_str()),
                "rule_id": c.rule_id,
                "event_type": rule.map(|r| r.event_type.as_str()),
                "points": c.points,
                "at": rfc3339_ms(c.at_ms),
            })
        })
        .collect();
    json!({
        "lead_id": lead,
        "score": total,
        "rulesets": categories,
        "aliases": aliases,
        "last_event_at": stored.record.last_event_at_ms.map(rfc3339_ms),
        "event_count": stored.record.events,
        "contributions": contributions,
    })
}
