//! What the gateway benches share: knobs from the environment, the `PERF {json}` result lines
//! `scripts/perf-report` collects, and the synthetic event of the producer ceilings.

use leadstream_domain::event::{EngagementEvent, Origin};
use serde_json::json;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A machine-readable result line for `scripts/perf-report`.
pub fn perf(v: serde_json::Value) {
    println!("PERF {v}");
}

/// The event of the benches' request bodies, as the gateway would publish it (what a bare
/// producer sends for the ceiling).
pub fn sample_event(i: usize) -> EngagementEvent {
    let metadata = json!({"path": "/pricing/enterprise", "utm_source": "google",
        "utm_campaign": "q3-launch", "referrer": "https://www.example.com/blog/post"});
    EngagementEvent {
        event_id: format!("evt_{i:026}"),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: Some(format!("ld_bench{}", i % 10_000)),
        aliases: vec![],
        source: None,
        producer_event_id: None,
        event_type: "page_view".into(),
        event_time_ms: 1_757_946_600_000,
        received_at_ms: 1_757_946_600_000,
        metadata: metadata.as_object().cloned().unwrap_or_default(),
        origin: Origin::Import,
        environment: None,
        severity: None,
    }
}
