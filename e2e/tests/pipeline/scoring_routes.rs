//! Leads, sequence and trigger simulate through the real gateway on port 0 over the real Redis
//! (own key prefix), with lead state and history written by the processor's own batch engine over
//! the same Redis, so the routes read exactly what the processor writes. No broker is needed:
//! these routes never publish. (The routes that need no processor state are tested in
//! `gateway/tests/it/scoring_routes.rs`.)

use std::ops::Deref;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_processor::engine::{Engine, EngineSettings, Input};
use leadstream_shared::ids::parse_rfc3339_ms;
use leadstream_shared::store::Cmd;

use crate::common::{seed_003, seed_004, spawn_on_store, RoutesApp, ADMIN};

mod leads;
mod sequences;
mod triggers;

/// The gateway on the real Redis ([`RoutesApp`]) and the processor's engine over the same store.
struct Gw {
    app: RoutesApp,
    engine: Engine,
    offset: AtomicI64,
}

impl Deref for Gw {
    type Target = RoutesApp;

    fn deref(&self) -> &RoutesApp {
        &self.app
    }
}

impl Gw {
    async fn start() -> Gw {
        let app = RoutesApp::start(spawn_on_store).await;
        let settings = EngineSettings {
            topic: app.common.topics.events.clone(),
            dedupe_ttl: Duration::from_secs(3600),
            sequence_cap: 256,
            history_cap: 1000,
            cached_leads: 1000,
        };
        Gw {
            engine: Engine::new(app.store.clone(), app.keys.clone(), settings),
            app,
            offset: AtomicI64::new(0),
        }
    }

    /// Apply events through the processor's engine, as the processor would: each on its lead's
    /// partition, firings recorded in the history once "published".
    async fn process(&self, events: Vec<EngagementEvent>) {
        let partitions = self.common.partitions;
        let mut inputs: Vec<Input> = events
            .into_iter()
            .map(|event| Input {
                partition: leadstream_shared::kafka::murmur2_partition(
                    event.kafka_key().as_bytes(),
                    partitions,
                ),
                offset: self.offset.fetch_add(1, Ordering::SeqCst),
                event,
            })
            .collect();
        inputs.sort_by_key(|i| (i.partition, i.offset));
        let out = self.engine.apply(&inputs).await.expect("engine applies");
        self.engine
            .published(&out.fired)
            .await
            .expect("history written");
    }
}

fn ev(id: &str, lead: &str, ty: &str, at: &str, metadata: Value) -> EngagementEvent {
    let Value::Object(metadata) = metadata else {
        panic!("metadata is an object")
    };
    let t = parse_rfc3339_ms(at).unwrap();
    EngagementEvent {
        event_id: id.into(),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: Some(lead.into()),
        aliases: Vec::new(),
        source: None,
        producer_event_id: None,
        event_type: ty.into(),
        event_time_ms: t,
        received_at_ms: t,
        metadata,
        origin: Origin::Ingest,
        environment: None,
        severity: None,
    }
}

/// Lead `ld_1` views the pricing page (10 points under [`engagement_ruleset`]) at 10:00 and
/// requests a demo (50) at 10:05 on 2025-01-15.
fn pricing_then_demo() -> Vec<EngagementEvent> {
    vec![
        ev(
            "e1",
            "ld_1",
            "page_view",
            "2025-01-15T10:00:00Z",
            json!({"path": "/pricing"}),
        ),
        ev(
            "e2",
            "ld_1",
            "demo_request",
            "2025-01-15T10:05:00Z",
            json!({}),
        ),
    ]
}

fn engagement_ruleset() -> Value {
    json!({"name": "Engagement", "rules": [
        {"event_type": "page_view", "points": 10,
         "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]},
        {"event_type": "demo_request", "points": 50}]})
}
