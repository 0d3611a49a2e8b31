//! Sequence triggers of the active OU, exactly as seed 004 documents them (issue 4, item 1):
//!
//! - `GET /sequences` → 200 `{"sequences":[…]}` (read scope);
//! - `POST /sequences` → 201 with the created sequence (admin); 400 on a missing `name` /
//!   `event_types` / `window_seconds`, empty `event_types`, a non-positive window, a
//!   `max_gap_seconds` above the window, bad URLs or addresses — every faulty field listed;
//! - `GET /sequences/{id}`, `PUT /sequences/{id}` (replace; `active` kept when omitted),
//!   `PATCH /sequences/{id}` (merge, `null` clears; `{"active": false}` deactivates),
//!   `DELETE /sequences/{id}` → 204 — the generic handlers of [`super::documents`] for
//!   [`Sequences`]; read-scope keys see endpoint URLs redacted ([`super::redact`]);
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
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use leadstream_domain::model::sequence::{
    SequencePatch, SequenceRequest, SequenceTrigger, ID_PREFIX,
};
use leadstream_domain::sequence::{self, SeqEvent};
use leadstream_shared::catalog::collections::SEQUENCES;
use leadstream_shared::ids::{new_id, now_ms, rfc3339_ms};

use super::ctx_for;
use super::documents::{load, Editable, Resource};
use super::leads::load_lead;
use super::request::{decode_object, json_value, lead_field, text_field, time_field};
use crate::auth::Scope;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// Most events one simulate request may replay.
const MAX_SIM_EVENTS: usize = 1000;

/// `/sequences`: endpoint URLs redacted for keys without the admin scope.
pub struct Sequences;

impl Resource for Sequences {
    type Doc = SequenceTrigger;
    type Create = SequenceRequest;
    const COLLECTION: &'static str = SEQUENCES;
    const LIST: &'static str = "sequences";
    const WHAT: &'static str = "sequence";
    const REDACT: bool = true;

    fn id(doc: &SequenceTrigger) -> &str {
        &doc.id
    }

    /// Every field of the wrong JSON type is named before serde sees the body.
    fn decode<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
        check_field_types(&body)?;
        decode_object(body)
    }

    fn create(req: SequenceRequest, now: &str) -> Result<SequenceTrigger, ApiError> {
        Ok(req.into_trigger(new_id(ID_PREFIX), now.to_string())?)
    }
}

impl Editable for Sequences {
    type Replace = SequenceRequest;
    type Patch = SequencePatch;

    fn replace(req: SequenceRequest, old: &Self::Doc, _: &str) -> Result<Self::Doc, ApiError> {
        Ok(req.replace(old)?)
    }

    fn patch(req: SequencePatch, old: &Self::Doc, _: &str) -> Result<Self::Doc, ApiError> {
        Ok(req.apply(old)?)
    }
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

/// [`FIELD_TYPES`], checked on a body that is an object (anything else passes: it is refused
/// as a whole by [`decode_object`]).
fn check_field_types(v: &Value) -> Result<(), ApiError> {
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
        return Err(ApiError::InvalidFields(errors));
    }
    Ok(())
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
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let req: SimulateBody = decode_object(json_value(&st, &headers, body).await?)?;
    let ou = &c.tenant.ou_id;
    let seq = load::<Sequences>(&st, ou, &id).await?;
    let lead = lead_field(req.lead_id.as_ref())?;
    let given = match req.events {
        None | Some(Value::Null) => None,
        Some(v) => Some(sim_events(v)?),
    };
    if lead.is_none() && given.is_none() {
        return Err(ApiError::invalid(
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
fn sim_events(v: Value) -> Result<Vec<SeqEvent>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid("events", "events must be an array"));
    };
    if items.len() > MAX_SIM_EVENTS {
        let msg = format!("events must hold at most {MAX_SIM_EVENTS} items");
        return Err(ApiError::invalid("events", msg));
    }
    let now = now_ms();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("events[{i}]");
        let Value::Object(o) = item else {
            return Err(ApiError::invalid(&p, format!("{p} must be an object")));
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "event_type" | "created_at"))
        {
            let msg =
                format!("{p} has an unknown field `{k}`; expected id, event_type, created_at");
            return Err(ApiError::invalid(&format!("{p}.{k}"), msg));
        }
        let text = |k: &str| text_field(o.get(k), &format!("{p}.{k}"));
        let f = format!("{p}.event_type");
        let event_type =
            text("event_type")?.ok_or_else(|| ApiError::invalid(&f, format!("{f} is required")))?;
        let id = text("id")?.unwrap_or_else(|| format!("evt_sim_{}", i + 1));
        let time = match text("created_at")? {
            None => now,
            Some(s) => time_field(&s, &format!("{p}.created_at"))?,
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
