//! What the processor's benches share: their knobs, their event types, the synthetic event
//! they feed the engine, and the one configuration the engine and memory benches measure (6
//! rules, 3 milestone triggers, `sequences` sequences).

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_domain::model::ruleset::Ruleset;
use leadstream_domain::model::sequence::SequenceTrigger;
use leadstream_domain::model::trigger::MilestoneTrigger;
use leadstream_shared::catalog::{collections, Catalog};
use serde_json::json;

/// A `BENCH_*` size from the environment.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub const TYPES: [&str; 6] = [
    "page_view",
    "pricing_page_view",
    "whitepaper_download",
    "demo_request",
    "email_open",
    "unsubscribe",
];

/// Store the benches' ruleset, milestone triggers and `sequences` sequence triggers in `ou`.
pub async fn install_config(catalog: &Catalog, ou: &str, sequences: usize) {
    let rs: Ruleset = serde_json::from_value(json!({
        "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [
            {"id": "r1", "event_type": "page_view", "points": 2,
             "conditions": [{"field": "metadata.path", "op": "contains", "value": "/"}]},
            {"id": "r2", "event_type": "pricing_page_view", "points": 10},
            {"id": "r3", "event_type": "whitepaper_download", "points": 15, "max_points": 45},
            {"id": "r4", "event_type": "demo_request", "points": 40},
            {"id": "r5", "event_type": "email_open", "points": 1, "frequency": {"max": 3, "period_seconds": 86400}},
            {"id": "r6", "event_type": "unsubscribe", "points": -50}
        ]
    }))
    .expect("ruleset");
    catalog
        .put_doc(ou, collections::RULESETS, &rs.id, &rs)
        .await
        .expect("put");
    for (i, t) in [50, 100, 150].iter().enumerate() {
        let trg: MilestoneTrigger = serde_json::from_value(json!({
            "id": format!("trg_{i}"), "name": format!("T{t}"), "score_threshold": t, "active": true,
            "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
        }))
        .expect("trigger");
        catalog
            .put_doc(ou, collections::TRIGGERS, &trg.id, &trg)
            .await
            .expect("put");
    }
    for i in 0..sequences {
        let a = TYPES[i % 5];
        let b = TYPES[(i + 1) % 5];
        let c = TYPES[(i + 3) % 5];
        let seq: SequenceTrigger = serde_json::from_value(json!({
            "id": format!("seq_{i:03}"), "name": format!("S{i}"), "event_types": [a, b, c],
            "window_seconds": 604800, "ordered": i % 2 == 0, "active": true,
            "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
        }))
        .expect("sequence");
        catalog
            .put_doc(ou, collections::SEQUENCES, &seq.id, &seq)
            .await
            .expect("put");
    }
}

/// Event number `i` of a bench stream: `lead` of `ou` did `event_type` on `/pricing`, 10 ms
/// after event `i - 1`, as a Kafka producer would have sent it.
pub fn event(i: usize, ou: &str, lead: String, event_type: &str) -> EngagementEvent {
    let mut metadata = serde_json::Map::new();
    metadata.insert("path".into(), json!("/pricing"));
    EngagementEvent {
        event_id: format!("evt_{i}"),
        org_id: "org_default".into(),
        ou_id: ou.into(),
        lead_id: Some(lead),
        aliases: vec![],
        source: Some("bench".into()),
        producer_event_id: Some(format!("p{i}")),
        event_type: event_type.into(),
        event_time_ms: 1_700_000_000_000 + i as i64 * 10,
        received_at_ms: 1_700_000_000_000 + i as i64 * 10,
        metadata,
        origin: Origin::Kafka,
        environment: None,
        severity: None,
    }
}

/// A small deterministic generator (`rnd(n)` in `0..n`): every run feeds the same stream.
pub fn rng(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    }
}

/// A fresh set of topics on `broker` (prefix `name`, `partitions` partitions) holding a
/// backlog of `events` events of [`TYPES`] over `leads` leads, keyed as the gateway keys them.
/// Returns the topics, the average Avro record size and the seconds the produce took (encoding
/// excluded). (Used by the benches that go through Kafka: drain and rescore.)
#[allow(dead_code)]
pub async fn backlog(
    settings: &leadstream_shared::kafka::KafkaSettings,
    name: &str,
    ou: &str,
    partitions: i32,
    events: usize,
    leads: usize,
) -> (leadstream_shared::kafka::Topics, usize, f64) {
    use leadstream_shared::kafka::{ensure_topics, Publisher, Topics};
    let topics = Topics::from_prefix(name);
    ensure_topics(
        settings,
        &[&topics.events, &topics.fired, &topics.events_dlq],
        partitions,
        1,
    )
    .await
    .expect("topics");
    let publisher = Publisher::new(settings, std::time::Duration::from_secs(30)).expect("producer");
    let mut rnd = rng(42);
    let records: Vec<(String, Vec<u8>)> = (0..events)
        .map(|i| {
            let lead = format!("ld_{}", rnd(leads as u64));
            let e = event(i, ou, lead, TYPES[rnd(TYPES.len() as u64) as usize]);
            let bytes = leadstream_shared::avro::encode_event(&e).expect("avro");
            (e.kafka_key(), bytes)
        })
        .collect();
    let record_bytes = records.iter().map(|r| r.1.len()).sum::<usize>() / events.max(1);
    let started = std::time::Instant::now();
    for chunk in records.chunks(5000) {
        let sends = chunk
            .iter()
            .map(|(k, v)| publisher.send(&topics.events, k, v, &[]));
        for r in futures::future::join_all(sends).await {
            r.expect("produce");
        }
    }
    (topics, record_bytes, started.elapsed().as_secs_f64())
}
