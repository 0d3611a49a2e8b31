//! Fired records for tests that start after the processor: what the notifier consumes, the CLI
//! replays, or a consumer of the events topic must refuse.

use serde_json::json;

use leadstream_domain::fired::{Targets, TriggerFired, TriggerKind};

/// The `n`th milestone firing of seed 003's "Hot Lead Alert" (`trg_hot`, score 82) for `lead` in
/// `unit_default`, now, with seed 003's payload; its id is derived from trigger, lead and `n`.
pub fn fired(n: usize, lead: &str, targets: Targets) -> TriggerFired {
    let fired_id = leadstream_shared::ids::derived_id("fir", &["trg_hot", lead, &n.to_string()]);
    TriggerFired {
        fired_id,
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: lead.into(),
        trigger_id: "trg_hot".into(),
        trigger_name: "Hot Lead Alert".into(),
        kind: TriggerKind::Milestone,
        event_id: format!("evt_{n}"),
        fired_at_ms: leadstream_shared::ids::now_ms(),
        score: 82,
        payload: json!({
            "trigger": {"id": "trg_hot", "name": "Hot Lead Alert", "type": "milestone"},
            "event": {"id": format!("evt_{n}"), "lead_id": lead, "event_type": "demo_request",
                      "metadata": {"source": "website", "page": "/pricing"},
                      "created_at": "2025-01-15T10:35:00Z"},
            "score": 82
        }),
        targets,
    }
}

/// Targets of a webhook to `url` only.
pub fn webhook(url: String) -> Targets {
    Targets {
        webhook_url: Some(url),
        ..Targets::default()
    }
}
