//! Scoring, milestones, dedupe, alias re-keying and poison records through the real broker and
//! Redis, with the processor running in-process.

use std::time::Duration;

use leadstream_domain::fired::TriggerKind;
use leadstream_shared::avro::{decode_dead_letter, decode_fired};
use leadstream_testkit::{consume, key_of, wait_until};
use rdkafka::Message;
use serde_json::json;

use crate::world::{event, World, OU};

const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_fire_once_per_crossing_and_ignore_duplicates() {
    let w = World::new("pipeline").await;
    w.put_ruleset(json!({
        "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [
            {"id": "r1", "event_type": "page_view", "points": 10,
             "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]},
            {"id": "r2", "event_type": "demo_request", "points": 50},
            {"id": "r3", "event_type": "unsubscribe", "points": -60}
        ]
    }))
    .await;
    w.put_trigger(json!({
        "id": "trg_1", "name": "Hot Lead Alert", "event_type": "demo_request", "score_threshold": 75,
        "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"],
        "active": true, "created_at": "2025-01-15T10:00:00Z"
    }))
    .await;
    let (handle, token) = w.spawn_inprocess();

    let mut pricing = event("ld_123", "page_view", "p1", T0);
    pricing.metadata.insert("path".into(), json!("/pricing"));
    let mut pricing2 = pricing.clone();
    pricing2.event_id = "evt_p2".into();
    pricing2.producer_event_id = Some("p2".into());
    pricing2.event_time_ms = T0 + 1000;
    let mut other_page = event("ld_123", "page_view", "p3", T0 + 2000);
    other_page.metadata.insert("path".into(), json!("/blog"));
    let demo = event("ld_123", "demo_request", "d1", T0 + 3000);
    // A retry of the demo request with the same producer id: changes nothing, fires nothing.
    let mut demo_retry = demo.clone();
    demo_retry.event_id = "evt_d1_retry".into();
    let demo2 = event("ld_123", "demo_request", "d2", T0 + 4000);
    let unsub = event("ld_123", "unsubscribe", "u1", T0 + 5000);
    let demo3 = event("ld_123", "demo_request", "d3", T0 + 6000);
    for e in [
        &pricing,
        &pricing2,
        &other_page,
        &demo,
        &demo_retry,
        &demo2,
        &unsub,
        &demo3,
    ] {
        w.produce(e).await;
    }
    // Scores: 10, 20, 20, 70 (no cross), 70 (dup), 120 (cross: fire #1), 60 (re-arm), 110 (fire #2).
    let rec = wait_until(Duration::from_secs(30), "all events applied", || async {
        w.lead("ld_123").await.filter(|r| r.events == 7)
    })
    .await;
    assert_eq!(rec.score.score_at(T0 + 6000), 110);
    let fired = consume(
        &w.broker.addr(),
        &w.topics.fired,
        2,
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    let fired: Vec<_> = fired
        .iter()
        .map(|m| (key_of(m), decode_fired(m.payload().unwrap()).unwrap()))
        .collect();
    assert_eq!(fired.len(), 2, "one firing per crossing: {fired:?}");
    let (key, first) = &fired[0];
    assert_eq!(key, "unit_default:ld_123");
    assert_eq!(first.kind, TriggerKind::Milestone);
    assert_eq!(first.event_id, "evt_d2");
    assert_eq!(
        first.targets.webhook_url.as_deref(),
        Some("https://hooks.example.com/leadvibe")
    );
    assert_eq!(
        first.payload,
        json!({
            "trigger": {"id": "trg_1", "name": "Hot Lead Alert", "type": "milestone"},
            "event": {"id": "evt_d2", "lead_id": "ld_123", "event_type": "demo_request",
                      "metadata": {}, "created_at": "2025-01-15T10:00:04Z"},
            "score": 120
        })
    );
    assert_eq!(fired[1].1.event_id, "evt_d3");
    assert_eq!(fired[1].1.payload["score"], 110);
    assert_ne!(fired[0].1.fired_id, fired[1].1.fired_id);
    // History records both firings, newest first.
    let history = leadstream_shared::store::exec_one(
        &*w.kv,
        leadstream_shared::store::Cmd::ZRevRange {
            key: w.keys.history(OU, "milestone"),
            start: 0,
            stop: -1,
        },
    )
    .await
    .unwrap()
    .into_array();
    assert_eq!(history.len(), 2);
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_only_json_records_are_resolved_and_rekeyed() {
    let w = World::new("alias").await;
    w.put_ruleset(json!({
        "id": "rs_1", "name": "All", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [{"id": "r1", "event_type": "page_view", "points": 7}]
    }))
    .await;
    let (handle, token) = w.spawn_inprocess();
    // Twenty alias-only records from an internal system, all keyed by the alias (so most land on
    // a partition that is not their lead's).
    for i in 0..20 {
        let body = json!({
            "ou_id": OU, "event_type": "page_view", "producer_event_id": format!("crm-{i}"), "source": "crm",
            "aliases": [{"kind": "email", "value": format!(" User{}@Example.com ", i % 4)}],
            "event_time": "2026-01-01T00:00:00Z"
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        w.produce_raw(
            &format!("alias-{i}"),
            &bytes,
            &[("content-type", b"application/json")],
        )
        .await;
    }
    let alias = leadstream_domain::event::Alias::normalise(
        leadstream_domain::event::AliasKind::Email,
        "user0@example.com",
    )
    .unwrap();
    let lead = wait_until(Duration::from_secs(30), "alias resolved", || async {
        w.catalog.lead_for_alias(OU, &alias).await.unwrap()
    })
    .await;
    let rec = wait_until(
        Duration::from_secs(30),
        "5 events of user0 applied",
        || async { w.lead(&lead).await.filter(|r| r.events == 5) },
    )
    .await;
    assert_eq!(rec.score.score_at(0), 35);
    token.cancel();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dlq_and_do_not_stall_the_partition() {
    let w = World::new("poison").await;
    w.put_ruleset(json!({
        "id": "rs_1", "name": "All", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [{"id": "r1", "event_type": "page_view", "points": 1}]
    }))
    .await;
    let (handle, token) = w.spawn_inprocess();
    let key = "unit_default:ld_p";
    w.produce_raw(key, b"\xC3\x01truncated", &[]).await;
    w.produce_raw(key, b"{not json", &[("content-type", b"application/json")])
        .await;
    w.produce_raw(key, &[0xff, 0xfe, 0x00], &[]).await;
    w.produce(&event("ld_p", "page_view", "ok1", T0)).await;
    let dead = consume(
        &w.broker.addr(),
        &w.topics.events_dlq,
        3,
        Duration::from_secs(30),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(dead.len(), 3);
    for m in &dead {
        let d = decode_dead_letter(m.payload().unwrap()).unwrap();
        assert!(!d.reason.is_empty());
        assert_eq!(d.source_topic, w.topics.events);
    }
    let rec = wait_until(
        Duration::from_secs(30),
        "good record after poison applied",
        || async { w.lead("ld_p").await.filter(|r| r.events == 1) },
    )
    .await;
    assert_eq!(rec.score.score_at(T0), 1);
    token.cancel();
    handle.await.unwrap();
}
