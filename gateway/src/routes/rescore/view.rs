//! The one JSON shape of a rescore or preview job, answered by every route of
//! [`super`]: the job as requested, where it stands, its partitions' progress added up
//! (`progress`), each partition's own report (`partitions`) and, for a preview whose every
//! partition is done, the result (`preview`). Times are RFC 3339 with milliseconds.

use serde_json::{json, Value};

use leadstream_domain::ids::rfc3339_ms;
use leadstream_shared::store::rescore::{
    JobKind, JobView, PartitionProgress, PreviewPart, CHANGE_BUCKETS,
};

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339_ms(ms)))
}

/// `job` as the routes answer it.
pub fn render(v: &JobView) -> Value {
    let t = &v.progress;
    let mut out = json!({
        "id": v.job.id,
        "kind": v.job.kind,
        "ou_id": v.job.ou_id,
        "state": v.status.state,
        "since": time(v.job.since_ms),
        "fire_triggers": v.job.fire_triggers,
        "created_at": rfc3339_ms(v.job.created_at_ms),
        "finished_at": time(v.status.finished_at_ms),
        "error": v.status.error,
        "progress": {
            "partitions_total": v.partitions_total,
            "partitions_done": v.partitions_done,
            "records_read": t.records_read,
            "events_applied": t.events_applied,
            "leads_updated": t.leads,
            "scores_changed": t.scores_changed,
            "fired": t.fired,
            "event_time_reached": time(t.event_time_reached_ms),
            "covered": {
                "from": time(t.covered_from_ms),
                "to": time(t.covered_to_ms),
                "retention_gap": t.retention_gap,
            },
        },
        "partitions": v.partitions.iter().map(partition).collect::<Vec<_>>(),
    });
    if let (JobKind::Preview, Some(p), Value::Object(o)) = (v.job.kind, &v.preview, &mut out) {
        o.insert("preview".into(), preview(p));
    }
    out
}

fn partition(p: &PartitionProgress) -> Value {
    json!({
        "partition": p.partition,
        "phase": p.phase,
        "records_read": p.records_read,
        "events_applied": p.events_applied,
        "leads": p.leads,
        "scores_changed": p.scores_changed,
        "fired": p.fired,
        "first_offset": p.first_offset,
        "last_offset": p.last_offset,
        "covered_from": time(p.covered_from_ms),
        "covered_to": time(p.covered_to_ms),
        "event_time_reached": time(p.event_time_reached_ms),
        "retention_gap": p.retention_gap,
        "switched_at_offset": p.switched_at_offset,
        "error": p.error,
    })
}

/// Every change bucket in order (0 when no lead fell in it), the largest changes, and the
/// milestone shifts by trigger id.
fn preview(p: &PreviewPart) -> Value {
    let changes: Vec<Value> = CHANGE_BUCKETS
        .iter()
        .map(|b| json!({"bucket": b, "leads": p.changes.get(*b).copied().unwrap_or(0)}))
        .collect();
    // Largest change first, then by lead id (the parts keep their top lists unsorted until
    // they overflow).
    let mut top: Vec<_> = p.top.iter().collect();
    top.sort_by(|a, b| {
        b.change
            .unsigned_abs()
            .cmp(&a.change.unsigned_abs())
            .then_with(|| a.lead_id.cmp(&b.lead_id))
    });
    let top: Vec<Value> = top
        .into_iter()
        .map(|c| {
            json!({"lead_id": c.lead_id, "before": c.before, "after": c.after, "change": c.change})
        })
        .collect();
    let milestones: Vec<Value> = p
        .milestones
        .iter()
        .map(|(id, m)| {
            json!({"trigger_id": id, "name": m.name, "threshold": m.threshold,
                   "newly_reached": m.newly_reached, "fell_below": m.fell_below})
        })
        .collect();
    json!({"leads": p.leads, "changes": changes, "top": top, "milestones": milestones})
}
