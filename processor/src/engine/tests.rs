//! The engine against a store whose answer to an applied write is lost ([`Faulty`]).

use std::sync::Arc;
use std::time::Duration;

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_domain::fired::TriggerKind;
use leadstream_domain::model::sequence::SequenceTrigger;
use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{MemoryKv, Store};
use leadstream_testkit::store::Faulty;
use serde_json::json;

use super::{Engine, EngineError, EngineSettings, Input};

const OU: &str = "unit_default";

fn input(offset: i64, event_type: &str) -> Input {
    Input {
        partition: 1,
        offset,
        event: EngagementEvent {
            event_id: format!("evt_{offset}"),
            org_id: "org_default".into(),
            ou_id: OU.into(),
            lead_id: Some("ld_1".into()),
            aliases: vec![],
            source: Some("test".into()),
            producer_event_id: Some(format!("p{offset}")),
            event_type: event_type.into(),
            event_time_ms: 1_700_000_000_000 + offset * 10,
            received_at_ms: 1_700_000_000_000 + offset * 10,
            metadata: serde_json::Map::new(),
            origin: Origin::Kafka,
            environment: None,
            severity: None,
        },
    }
}

#[tokio::test]
async fn a_firing_whose_write_landed_but_whose_answer_was_lost_is_reported_on_the_retry() {
    let store = Faulty::new(Arc::new(MemoryKv::new()));
    let kv: Store = store.clone();
    let keys = Keys::new("t");
    let seq: SequenceTrigger = serde_json::from_value(json!({
        "id": "seq_1", "name": "Buying intent", "event_types": ["pricing", "demo_request"],
        "window_seconds": 604800, "ordered": true, "active": true,
        "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
    }))
    .expect("sequence");
    Catalog::new(kv.clone(), keys.clone())
        .put_doc(OU, collections::SEQUENCES, &seq.id, &seq)
        .await
        .expect("put");
    let engine = Engine::new(
        kv,
        keys,
        EngineSettings {
            topic: "events".into(),
            dedupe_ttl: Duration::from_secs(600),
            sequence_cap: 16,
            history_cap: 1000,
            cached_leads: 1000,
        },
    );
    // A batch that applied before, so the partition is in memory as it is mid-stream.
    let warm = engine.apply(&[input(0, "page_view")]).await.expect("apply");
    assert!(warm.fired.is_empty());

    // The write of the batch that fires lands, but its answer is lost.
    let batch = [input(1, "pricing"), input(2, "demo_request")];
    store.lose_next_reply();
    let lost = engine.apply(&batch).await;
    assert!(
        matches!(lost, Err(EngineError::Store(_))),
        "the lost answer is an error"
    );
    let outbox = engine.outbox(1).await.expect("outbox");
    assert_eq!(outbox.len(), 1, "the firing was written with the state");

    // The processor retries the same batch: its records are now replays, but the firing they
    // made must still be reported, or it never reaches the fired topic nor the history.
    let retried = engine.apply(&batch).await.expect("retry");
    assert_eq!(retried.replayed, 2);
    let ids: Vec<_> = retried
        .fired
        .iter()
        .map(|(p, f)| (*p, f.kind, f.fired_id.clone()))
        .collect();
    assert_eq!(
        ids,
        vec![(1, TriggerKind::Sequence, outbox[0].1.fired_id.clone())],
        "the retry reports the firing its lost write recorded"
    );
    engine.published(&retried.fired).await.expect("published");
    assert!(engine.outbox(1).await.expect("outbox").is_empty());
}
