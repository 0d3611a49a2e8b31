//! Milestone triggers of the active OU, exactly as seed 003 documents them (issue 3, item 2):
//!
//! - `GET /triggers` → 200 `{"triggers":[…]}` (read scope);
//! - `POST /triggers` → 201 with the created trigger (admin); 400 on a missing `name` /
//!   `score_threshold` or any invalid value, naming the field;
//! - `GET /triggers/{id}`, `PUT /triggers/{id}` (replace; `active` kept when omitted),
//!   `PATCH /triggers/{id}` (merge; `{"active": false}` / `{"active": true}` deactivates /
//!   activates), `DELETE /triggers/{id}` → 204 — the generic handlers of [`super::documents`]
//!   for [`Triggers`]; read-scope keys see endpoint URLs redacted ([`super::redact`]);
//! - `POST /triggers/{id}/simulate` (read scope; delivers nothing, changes nothing) with either
//!   `{"lead_id": "ld_1", "event": {…}}` — the event is scored with the OU's current rulesets
//!   against the lead's stored state and the trigger evaluated as the processor would — or
//!   `{"score_before": 70, "score_after": 80, "event": {…}}` — the trigger evaluated for that
//!   score change, as for a lead it never saw. `event` is `{"event_type"` (required)`, "id",
//!   "metadata", "created_at"` (RFC 3339, default now)`, "source", "lead_id"}`. The answer:
//!   `{"would_fire", "reason", "payload"` (the exact seed 003 webhook body)`, "targets",
//!   "trigger_active", "score_before", "score_after", "contributions"}`. Simulation ignores
//!   `active` (seed 003: test a trigger before activating it); `trigger_active` says whether it
//!   is live.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_domain::model::present;
use leadstream_domain::model::trigger::{
    CreateTrigger, MilestoneTrigger, PatchTrigger, ReplaceTrigger,
};
use leadstream_domain::scoring;
use leadstream_shared::catalog::collections::TRIGGERS;
use leadstream_shared::ids::{new_id, now_ms};

use super::ctx_for;
use super::documents::{load, store, Editable, Resource};
use super::leads::load_lead;
use super::request::{json_body, lead_field, store_err, text_field, time_field};
use super::rulesets::Rulesets;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// `/triggers`: endpoint URLs redacted for keys without the admin scope.
pub struct Triggers;

impl Resource for Triggers {
    type Doc = MilestoneTrigger;
    type Create = CreateTrigger;
    const COLLECTION: &'static str = TRIGGERS;
    const LIST: &'static str = "triggers";
    const WHAT: &'static str = "trigger";
    const REDACT: bool = true;

    fn id(doc: &MilestoneTrigger) -> &str {
        &doc.id
    }

    fn create(req: CreateTrigger, now: &str) -> Result<MilestoneTrigger, ApiError> {
        Ok(req.validate(new_id("trg"), now)?)
    }
}

impl Editable for Triggers {
    type Replace = ReplaceTrigger;
    type Patch = PatchTrigger;

    fn replace(req: ReplaceTrigger, old: &Self::Doc, _: &str) -> Result<Self::Doc, ApiError> {
        Ok(req.validate(old)?)
    }

    fn patch(req: PatchTrigger, old: &Self::Doc, _: &str) -> Result<Self::Doc, ApiError> {
        Ok(req.validate(old)?)
    }
}

/// `POST /triggers/{id}/simulate` body (raw, so every fault names its field).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    #[serde(default, deserialize_with = "present")]
    lead_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    score_before: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    score_after: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    event: Option<Value>,
}

pub async fn simulate(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let req: SimulateBody = json_body(&st, &headers, body).await?;
    let ou = &c.tenant.ou_id;
    let trigger = load::<Triggers>(&st, ou, &id).await?;
    let given = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let lead = lead_field(req.lead_id.as_ref())?;
    let Some(event) = req.event.filter(|v| !v.is_null()) else {
        return Err(ApiError::invalid("event", "event is required"));
    };
    let mut event = sim_event(event, &c.tenant.org_id, ou)?;
    let mut answer = if let Some(lead) = lead {
        if given(&req.score_before) || given(&req.score_after) {
            return Err(ApiError::invalid(
                "lead_id",
                "give either lead_id or score_before and score_after, not both",
            ));
        }
        event.lead_id = Some(lead.clone());
        let stored = load_lead(&st, ou, &lead).await?;
        let rulesets = store::<Rulesets>(&st)
            .list(ou)
            .await
            .map_err(store_err(&st))?;
        let result = scoring::simulate_for_lead(&stored.record.score, &rulesets, &trigger, &event);
        // The same scoring on another copy, for the numbers and the "why".
        let mut copy = stored.record.score.clone();
        let outcome = scoring::apply(&mut copy, &rulesets, &[], &event);
        let mut v = serde_json::to_value(&result).unwrap_or_default();
        v["score_before"] = json!(outcome.score_before);
        v["score_after"] = json!(outcome.score_after);
        v["contributions"] = json!(outcome
            .contributions
            .iter()
            .map(|c| json!({"ruleset_id": c.ruleset_id, "rule_id": c.rule_id, "points": c.points}))
            .collect::<Vec<_>>());
        v
    } else {
        let before = score_field("score_before", req.score_before)?;
        let after = score_field("score_after", req.score_after)?;
        let result = scoring::simulate(&trigger, before, after, &event);
        let mut v = serde_json::to_value(&result).unwrap_or_default();
        v["score_before"] = json!(before);
        v["score_after"] = json!(after);
        v["contributions"] = json!([]);
        v
    };
    answer["targets"] = serde_json::to_value(trigger.targets()).unwrap_or_default();
    super::redact::documents(&c.key, &mut answer["targets"]);
    Ok(Json(answer).into_response())
}

fn score_field(field: &str, v: Option<Value>) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Err(ApiError::invalid(
            field,
            format!("{field} is required (or give lead_id to use the lead's stored score)"),
        )),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::invalid(field, format!("{field} must be an integer"))),
    }
}

/// A hypothetical event from a simulate body: `event_type` required; `id`, `metadata`
/// (object), `created_at` / `timestamp` (RFC 3339, default now), `source`, `lead_id` optional.
fn sim_event(v: Value, org: &str, ou: &str) -> Result<EngagementEvent, ApiError> {
    let Value::Object(mut o) = v else {
        return Err(ApiError::invalid("event", "event must be an object"));
    };
    let text = |o: &mut Map<String, Value>, k: &str| {
        text_field(o.remove(k).as_ref(), &format!("event.{k}"))
    };
    let event_type = text(&mut o, "event_type")?
        .ok_or_else(|| ApiError::invalid("event.event_type", "event.event_type is required"))?;
    let id = text(&mut o, "id")?.unwrap_or_else(|| new_id("evt"));
    let source = text(&mut o, "source")?;
    let lead_id = text(&mut o, "lead_id")?;
    let mut time = None;
    for k in ["created_at", "timestamp"] {
        if let Some(s) = text(&mut o, k)? {
            time = Some(time_field(&s, &format!("event.{k}"))?);
        }
    }
    let metadata = match o.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::invalid(
                "event.metadata",
                "event.metadata must be an object",
            ))
        }
    };
    if let Some(k) = o.keys().next() {
        let msg = format!(
            "event has an unknown field `{k}`; expected id, event_type, metadata, created_at, \
             timestamp, source, lead_id"
        );
        return Err(ApiError::invalid(&format!("event.{k}"), msg));
    }
    let now = now_ms();
    Ok(EngagementEvent {
        event_id: id,
        org_id: org.to_string(),
        ou_id: ou.to_string(),
        lead_id,
        aliases: Vec::new(),
        source,
        producer_event_id: None,
        event_type,
        event_time_ms: time.unwrap_or(now),
        received_at_ms: now,
        metadata,
        origin: Origin::Ingest,
        environment: None,
        severity: None,
    })
}
