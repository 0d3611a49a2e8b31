//! Rulesets, milestone triggers (seed 003), sequences (seed 004), leads and firing history
//! through the real gateway on port 0 over the real Redis (own key prefix). No broker is
//! needed: these routes never publish. Lead state and history are written by the processor's
//! own batch engine over the same Redis, so the routes read exactly what the processor writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_gateway::{AppState, GatewayConfig, MemorySink};
use leadstream_processor::engine::{Engine, EngineSettings, Input};
use leadstream_shared::ids::parse_rfc3339_ms;
use leadstream_shared::store::Cmd;
use leadstream_testkit::{redis_url, unique};

use crate::common::ADMIN;

mod deliveries;
mod leads;
mod sequences;
mod triggers;

struct Gw {
    base: String,
    http: reqwest::Client,
    state: AppState,
    engine: Engine,
    offset: AtomicI64,
    shutdown: CancellationToken,
}

impl Gw {
    async fn start() -> Gw {
        let prefix = unique("sr");
        let env: BTreeMap<String, String> = [
            ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:9".to_string()),
            ("LEADSTREAM_REDIS_URL", redis_url()),
            ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
            ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
            ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
            ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let cfg = GatewayConfig::from_source(&env).expect("config");
        let store = leadstream_shared::store::open(Some(&redis_url()))
            .await
            .expect("redis-server is running (.ci/run starts it)");
        let shutdown = CancellationToken::new();
        let running = leadstream_gateway::spawn_with(
            cfg,
            store.clone(),
            Arc::new(MemorySink::new()),
            shutdown.clone(),
        )
        .await
        .expect("gateway starts");
        let settings = EngineSettings {
            topic: running.state.cfg.common.topics.events.clone(),
            dedupe_ttl: Duration::from_secs(3600),
            sequence_cap: 256,
            history_cap: 1000,
            cached_leads: 1000,
        };
        Gw {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            engine: Engine::new(store, running.state.keys.clone(), settings),
            state: running.state,
            offset: AtomicI64::new(0),
            shutdown,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::GET, path, key, None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, key, Some(body)).await
    }

    /// Create with the admin key in `unit_default`; the created document.
    async fn create(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.post(path, ADMIN, body).await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// A key of `scopes` bound to `ous`.
    async fn key(&self, scopes: &[&str], ous: &[&str]) -> String {
        let (s, b) = self
            .post(
                "/api-keys",
                ADMIN,
                json!({"name": "t", "scopes": scopes, "ou_ids": ous}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b["key"].as_str().unwrap().to_string()
    }

    /// Apply events through the processor's engine, as the processor would: each on its lead's
    /// partition, firings recorded in the history once "published".
    async fn process(&self, events: Vec<EngagementEvent>) {
        let partitions = self.state.cfg.common.partitions;
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

impl Drop for Gw {
    fn drop(&mut self) {
        self.shutdown.cancel();
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

fn seed_003() -> Value {
    json!({"name": "Hot Lead Alert", "event_type": "demo_request", "score_threshold": 75,
        "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"],
        "email_subject": "Hot Lead Alert", "email_message": "A lead just crossed the 75-point threshold!"})
}

fn seed_004() -> Value {
    json!({"name": "Buying Intent Sequence",
        "event_types": ["pricing_page_view", "whitepaper_download", "demo_request"],
        "window_seconds": 604800, "window_unit": "7 days", "ordered": true,
        "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"]})
}

fn engagement_ruleset() -> Value {
    json!({"name": "Engagement", "rules": [
        {"event_type": "page_view", "points": 10,
         "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]},
        {"event_type": "demo_request", "points": 50}]})
}
