//! Sequence triggers of the active OU, exactly as seed 004 documents them (issue 4, item 1):
//!
//! - `GET /sequences` → 200 `{"sequences":[…]}` (read scope);
//! - `POST /sequences` → 201 with the created sequence (admin); 400 on a missing `name` /
//!   `event_types` / `window_seconds`, empty `event_types`, a non-positive window, a
//!   `max_gap_seconds` above the window, bad URLs or addresses — every faulty field listed;
//! - `GET /sequences/{id}`, `PUT /sequences/{id}` (replace; `active` kept when omitted),
//!   `PATCH /sequences/{id}` (merge, `null` clears; `{"active": false}` deactivates),
//!   `DELETE /sequences/{id}` → 204;
//! - `POST /sequences/{id}/simulate` (read scope; delivers nothing, changes nothing) with
//!   `{"events": [{"id", "event_type", "created_at"}, …]}` (replayed in the given order), or
//!   `{"lead_id": "ld_1"}` (the lead's buffered events that this sequence has not used yet,
//!   in arrival order), or both (the lead's events, then the given ones: "would this next event
//!   complete it?"). The answer: `{"would_fire", "reason", "events"` (of the first firing, in
//!   step order)`, "payload"` (the exact seed 004 webhook body)`, "firings"` (all of them)`,
//!   "considered_events", "sequence_active", "targets"}`. It is evaluated as if active (try a
//!   sequence before switching it on); without `lead_id` the payload's `lead_id` is `""`.
//!   An event without `id` is named `evt_sim_{n}`, one without `created_at` happens now.
//!
//! The lead's buffered events are read from the processor's stored `SequenceBuffer` JSON
//! (`seq.e[]`: `i` id, `t` type, `m` time, `s` arrival, `u` used by), see [`stored_events`].

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use leadstream_domain::model::sequence::{
    SequencePatch, SequenceRequest, SequenceTrigger, ID_PREFIX,
};
use leadstream_domain::sequence::{self, SeqEvent};
use leadstream_shared::catalog::collections::SEQUENCES;
use leadstream_shared::ids::{new_id, now_ms, parse_rfc3339_ms, rfc3339_ms};

use super::leads::load_lead;
use super::scoring_routes::{
    catalog, ctx, delete_doc, invalid, json_object, load_doc, now_rfc3339, save_doc, store_err,
    update_doc, FieldError, Reply, RouteError,
};
use crate::auth::Scope;
use crate::state::AppState;

const WHAT: &str = "sequence";
/// Most events one simulate request may replay.
const MAX_SIM_EVENTS: usize = 1000;

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Reply {
    let c = ctx(&st, &headers, Scope::Read).await?;
    let items: Vec<SequenceTrigger> = catalog(&st)
        .list_docs(&c.tenant.ou_id, SEQUENCES)
        .await
        .map_err(store_err(&st))?;
    let mut v = json!({ "sequences": items });
    super::redact::documents(&c.key, &mut v);
    Ok(Json(v).into_response())
}

pub async fn create(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: SequenceRequest = typed_body(&st, &headers, body).await?;
    let s = req.into_trigger(new_id(ID_PREFIX), now_rfc3339())?;
    save_doc(
        &st,
        &c.tenant.ou_id,
        SEQUENCES,
        &s.id,
        &s,
        StatusCode::CREATED,
    )
    .await
}

pub async fn get_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Read).await?;
    let s: SequenceTrigger = load_doc(&st, &c.tenant.ou_id, SEQUENCES, WHAT, &id).await?;
    let mut v = serde_json::to_value(s).unwrap_or_default();
    super::redact::documents(&c.key, &mut v);
    Ok(Json(v).into_response())
}

pub async fn replace(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: SequenceRequest = typed_body(&st, &headers, body).await?;
    update_doc(
        &st,
        &c.tenant.ou_id,
        SEQUENCES,
        WHAT,
        &id,
        |existing: &SequenceTrigger| req.replace(existing),
    )
    .await
}

pub async fn patch(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: SequencePatch = typed_body(&st, &headers, body).await?;
    update_doc(
        &st,
        &c.tenant.ou_id,
        SEQUENCES,
        WHAT,
        &id,
        |existing: &SequenceTrigger| req.apply(existing),
    )
    .await
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    delete_doc(&st, &c.tenant.ou_id, SEQUENCES, WHAT, &id).await
}

/// The JSON types of the request fields, checked before serde so a wrong type gets the
/// field's name (`window_seconds must be a number`) instead of serde's bare "invalid type".
const FIELD_TYPES: &[(&str, &str)] = &[
    ("name", "string"),
    ("event_types", "strings"),
    ("window_seconds", "number"),
    ("window_unit", "string"),
    ("ordered", "boolean"),
    ("max_gap_seconds", "number"),
    ("webhook_url", "string"),
    ("emails", "strings"),
    ("email_subject", "string"),
    ("email_preheader", "string"),
    ("email_message", "string"),
    ("slack_webhook_url", "string"),
    ("teams_webhook_url", "string"),
    ("active", "boolean"),
];

async fn typed_body<T: serde::de::DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, RouteError> {
    let v = json_object(st, headers, body).await?;
    let mut errors = Vec::new();
    for (field, ty) in FIELD_TYPES {
        let ok = match (v.get(*field), *ty) {
            (None | Some(Value::Null), _) => true,
            (Some(x), "string") => x.is_string(),
            (Some(x), "number") => x.is_number(),
            (Some(x), "boolean") => x.is_boolean(),
            (Some(Value::Array(items)), "strings") => items.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            let ty = if *ty == "strings" {
                "an array of strings"
            } else if *ty == "number" {
                "a number"
            } else if *ty == "boolean" {
                "a boolean"
            } else {
                "a string"
            };
            errors.push(FieldError::new(*field, format!("{field} must be {ty}")));
        }
    }
    if !errors.is_empty() {
        return Err(RouteError::Invalid(errors));
    }
    serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    lead_id: Option<Value>,
}

pub async fn simulate(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Read).await?;
    let v = json_object(&st, &headers, body).await?;
    let req: SimulateBody =
        serde_json::from_value(v).map_err(|e| invalid("body", e.to_string()))?;
    let ou = &c.tenant.ou_id;
    let seq: SequenceTrigger = load_doc(&st, ou, SEQUENCES, WHAT, &id).await?;
    let lead = match req.lead_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => return Err(invalid("lead_id", "lead_id must be a non-empty string")),
    };
    let given = match req.events {
        None | Some(Value::Null) => None,
        Some(v) => Some(sim_events(v)?),
    };
    if lead.is_none() && given.is_none() {
        return Err(invalid(
            "events",
            "give events (an array of {id, event_type, created_at}) or a lead_id",
        ));
    }
    let mut events = Vec::new();
    if let Some(lead) = &lead {
        let stored = load_lead(&st, ou, lead).await?;
        events.extend(stored_events(&stored.raw, &seq.id));
    }
    events.extend(given.unwrap_or_default());
    let lead_id = lead.unwrap_or_default();
    let result = sequence::simulate(&seq, &lead_id, &events);
    let shown = |evs: &[SeqEvent]| -> Vec<Value> {
        evs.iter()
            .map(|e| json!({"id": e.id, "event_type": e.event_type, "created_at": rfc3339_ms(e.time_ms)}))
            .collect()
    };
    let firings: Vec<Value> = result
        .firings
        .iter()
        .map(|f| json!({"fired_id": f.fired_id, "events": shown(&f.events), "payload": f.payload}))
        .collect();
    Ok(Json(json!({
        "would_fire": result.would_fire,
        "reason": reason(&seq, &events, &result.events),
        "events": shown(&result.events),
        "payload": result.payload,
        "firings": firings,
        "considered_events": events.len(),
        "sequence_active": seq.active,
        "targets": seq.targets(),
    }))
    .into_response())
}

/// The simulate body's `events`: at most [`MAX_SIM_EVENTS`] objects with `event_type`
/// (required), `id` (default `evt_sim_{n}`), `created_at` (RFC 3339, default now).
fn sim_events(v: Value) -> Result<Vec<SeqEvent>, RouteError> {
    let Value::Array(items) = v else {
        return Err(invalid("events", "events must be an array"));
    };
    if items.len() > MAX_SIM_EVENTS {
        let msg = format!("events must hold at most {MAX_SIM_EVENTS} items");
        return Err(invalid("events", msg));
    }
    let now = now_ms();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("events[{i}]");
        let Value::Object(o) = item else {
            return Err(invalid(&p, format!("{p} must be an object")));
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "event_type" | "created_at"))
        {
            let msg =
                format!("{p} has an unknown field `{k}`; expected id, event_type, created_at");
            return Err(invalid(&format!("{p}.{k}"), msg));
        }
        let text = |k: &str| -> Result<Option<String>, RouteError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 512 => {
                    Ok(Some(s.trim().to_string()))
                }
                Some(_) => Err(invalid(
                    &format!("{p}.{k}"),
                    format!("{p}.{k} must be a non-empty string of at most 512 bytes"),
                )),
            }
        };
        let f = format!("{p}.event_type");
        let event_type =
            text("event_type")?.ok_or_else(|| invalid(&f, format!("{f} is required")))?;
        let id = text("id")?.unwrap_or_else(|| format!("evt_sim_{}", i + 1));
        let time = match text("created_at")? {
            None => now,
            Some(s) => {
                let f = format!("{p}.created_at");
                parse_rfc3339_ms(&s)
                    .ok_or_else(|| invalid(&f, format!("{f} must be an RFC 3339 time")))?
            }
        };
        out.push(SeqEvent::new(id, event_type, time));
    }
    Ok(out)
}

/// One buffered event as the processor's `SequenceBuffer` stores it.
#[derive(Deserialize)]
struct Buffered {
    i: String,
    t: String,
    m: i64,
    #[serde(default)]
    s: u64,
    #[serde(default)]
    u: Vec<String>,
}

/// The lead's buffered events not yet used by sequence `seq_id`, in arrival order. Reads the
/// stored JSON directly: `SequenceBuffer` keeps its events private (see the report asking for
/// an accessor); an unreadable buffer counts as empty.
pub fn stored_events(raw: &Value, seq_id: &str) -> Vec<SeqEvent> {
    let Some(items) = raw.pointer("/seq/e").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut buf: Vec<Buffered> = items
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .filter(|b: &Buffered| !b.u.iter().any(|u| u == seq_id))
        .collect();
    buf.sort_by_key(|b| b.s);
    buf.into_iter()
        .map(|b| SeqEvent::new(b.i, b.t, b.m))
        .collect()
}

/// Why it would (not) fire, in a sentence.
fn reason(seq: &SequenceTrigger, considered: &[SeqEvent], matched: &[SeqEvent]) -> String {
    let window = seq.window_seconds;
    if !matched.is_empty() {
        let ids: Vec<&str> = matched.iter().map(|e| e.id.as_str()).collect();
        return format!(
            "events {} complete the sequence within {window} seconds",
            ids.join(", ")
        );
    }
    let mut need: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for t in &seq.event_types {
        need.entry(t.as_str()).or_default().0 += 1;
    }
    for e in considered {
        if let Some(n) = need.get_mut(e.event_type.as_str()) {
            n.1 += 1;
        }
    }
    let missing: Vec<String> = need
        .iter()
        .filter(|(_, (n, h))| h < n)
        .map(|(t, (n, h))| format!("{t} (needs {n}, has {h})"))
        .collect();
    if !missing.is_empty() {
        return format!("not enough events of: {}", missing.join(", "));
    }
    let mut why =
        format!("every listed type occurs, but no set of them fits within {window} seconds");
    if seq.ordered {
        why.push_str(" in the listed order");
    }
    if let Some(g) = seq.max_gap_seconds {
        why.push_str(&format!(" with at most {g} seconds between steps"));
    }
    why
}
