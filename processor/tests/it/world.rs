//! A test's world: broker, isolated topic and key prefixes, store, catalog, producer, and ways
//! to run the processor in-process or as a real process.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use leadstream_domain::event::{EngagementEvent, Origin};
use leadstream_domain::ids::{LeadId, OuId};
use leadstream_domain::lead::LeadRecord;
use leadstream_domain::model::ruleset::Ruleset;
use leadstream_domain::model::trigger::MilestoneTrigger;
use leadstream_processor::ProcessorConfig;
use leadstream_shared::avro::encode_event;
use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher, Topics};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::leads::LeadStates;
use leadstream_shared::store::Store;
use leadstream_testkit::{redis_url, unique, Broker, ChildGuard};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const OU: &str = "unit_default";
pub const PARTITIONS: i32 = 4;

pub struct World {
    pub broker: Broker,
    pub env: BTreeMap<String, String>,
    pub topics: Topics,
    pub keys: Keys,
    pub kv: Store,
    pub catalog: Catalog,
    pub publisher: Publisher,
}

impl World {
    pub async fn new(name: &str) -> World {
        World::with_redis(name, &redis_url()).await
    }

    /// A world whose services use the Redis at `redis` (one URL, or a Redis Cluster's node
    /// list).
    pub async fn with_redis(name: &str, redis: &str) -> World {
        let broker = Broker::start();
        let prefix = unique(name);
        let mut env = leadstream_testkit::vars::service(&broker.addr(), redis, &prefix, PARTITIONS);
        env.insert(
            "LEADSTREAM_PROCESSOR_GROUP".into(),
            format!("{prefix}-processor"),
        );
        let topics = Topics::from_prefix(&prefix);
        let mut settings = KafkaSettings::new(broker.addr());
        // The tansu broker answers a fetch at an offset inside a record batch with the batch
        // after it (Apache Kafka returns the containing batch), so a consumer resuming in the
        // middle of a batch would never see the rest of it. One record per batch gives every
        // offset a batch boundary; the processor's own gap guard is what detects the tansu
        // behaviour otherwise (see `Processor::contiguous`).
        settings
            .overrides
            .insert("batch.num.messages".into(), "1".into());
        ensure_topics(
            &settings,
            &[&topics.events, &topics.fired, &topics.events_dlq],
            PARTITIONS,
            1,
        )
        .await
        .expect("topics");
        // The store and the key layout as the services derive them (hash-tagged on a cluster).
        let common = ProcessorConfig::from_source(&env).expect("config").common;
        let kv: Store = common.open_store().await.expect("redis-server must run");
        let keys = common.keys();
        World {
            catalog: Catalog::new(kv.clone(), keys.clone()),
            publisher: Publisher::new(&settings, Duration::from_secs(10)).expect("producer"),
            broker,
            env,
            topics,
            keys,
            kv,
        }
    }

    pub fn config(&self) -> ProcessorConfig {
        ProcessorConfig::from_source(&self.env).expect("config")
    }

    pub async fn put_ruleset(&self, rs: serde_json::Value) {
        self.put_ruleset_in(OU, rs).await
    }

    pub async fn put_ruleset_in(&self, ou: &str, rs: serde_json::Value) {
        let r: Ruleset = serde_json::from_value(rs).expect("ruleset");
        self.catalog
            .put_doc(ou, collections::RULESETS, &r.id, &r)
            .await
            .expect("put");
    }

    pub async fn put_trigger(&self, t: serde_json::Value) {
        self.put_trigger_in(OU, t).await
    }

    pub async fn put_trigger_in(&self, ou: &str, t: serde_json::Value) {
        let t: MilestoneTrigger = serde_json::from_value(t).expect("trigger");
        self.catalog
            .put_doc(ou, collections::TRIGGERS, &t.id, &t)
            .await
            .expect("put");
    }

    pub async fn produce(&self, e: &EngagementEvent) {
        let bytes = encode_event(e).expect("avro");
        self.publisher
            .send(&self.topics.events, &e.kafka_key(), &bytes, &[])
            .await
            .expect("produce");
    }

    pub async fn produce_raw(&self, key: &str, bytes: &[u8], headers: &[(&str, &[u8])]) {
        self.publisher
            .send(&self.topics.events, key, bytes, headers)
            .await
            .expect("produce");
    }

    pub fn spawn_inprocess(&self) -> (JoinHandle<()>, CancellationToken) {
        let token = CancellationToken::new();
        let cfg = self.config();
        let t = token.clone();
        let h = tokio::spawn(async move {
            leadstream_processor::run(cfg, t)
                .await
                .expect("processor run");
        });
        (h, token)
    }

    pub fn spawn_process(&self, extra: &[(&str, &str)]) -> ChildGuard {
        let mut cmd = self.command(extra);
        ChildGuard::spawn(&mut cmd).expect("spawn leadstream processor")
    }

    /// [`World::spawn_process`] with the processor's info log (JSON lines) written to `log`,
    /// for tests that read what a process did.
    pub fn spawn_process_logged(&self, extra: &[(&str, &str)], log: &Path) -> ChildGuard {
        let mut cmd = self.command(extra);
        // The service's own default filter.
        cmd.env("RUST_LOG", "info,rdkafka=warn")
            .stdout(File::create(log).expect("log file"));
        ChildGuard::spawn(&mut cmd).expect("spawn leadstream processor")
    }

    fn command(&self, extra: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(leadstream_testkit::leadstream_bin());
        cmd.arg("processor")
            .envs(&self.env)
            .envs(extra.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("LEADSTREAM_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            // Services log to stdout (JSON lines).
            .stdout(match std::env::var("LEADSTREAM_TEST_CHILD_LOG_DIR") {
                // Debugging aid: each child's log in its own file.
                Ok(dir) => {
                    let path = format!("{dir}/processor-{}.log", leadstream_testkit::unique("p"));
                    File::create(path)
                        .map(Stdio::from)
                        .unwrap_or_else(|_| Stdio::inherit())
                }
                Err(_) => Stdio::null(),
            });
        cmd
    }

    /// Where the processor keeps lead states (the reader the gateway uses).
    pub fn lead_states(&self) -> LeadStates {
        LeadStates::new(
            self.kv.clone(),
            self.keys.clone(),
            self.topics.events.clone(),
            PARTITIONS,
        )
    }

    /// Events applied so far over leads `ld_0 … ld_{leads-1}` of [`OU`].
    pub async fn applied(&self, leads: usize) -> u64 {
        self.applied_in(&[OU], leads).await
    }

    /// Events applied so far over leads `ld_0 … ld_{leads-1}` of each of `ous`.
    /// Reads retry while the store is briefly unavailable (a Redis Cluster failover).
    pub async fn applied_in(&self, ous: &[&str], leads: usize) -> u64 {
        let states = self.lead_states();
        for attempt in 0.. {
            let reads = ous.iter().flat_map(|ou| {
                let states = states.clone();
                (0..leads).map(move |i| {
                    let states = states.clone();
                    async move { states.get(OuId(ou), LeadId(&format!("ld_{i}"))).await }
                })
            });
            let got: Result<Vec<_>, _> =
                futures::future::join_all(reads).await.into_iter().collect();
            match got {
                Ok(records) => return records.into_iter().flatten().map(|r| r.events).sum(),
                Err(e) if attempt < 150 => {
                    eprintln!("reading lead states: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("lead states unreadable for 30 s: {e}"),
            }
        }
        unreachable!()
    }

    pub async fn lead(&self, lead: &str) -> Option<LeadRecord> {
        self.lead_in(OU, lead).await
    }

    pub async fn lead_in(&self, ou: &str, lead: &str) -> Option<LeadRecord> {
        let states = self.lead_states();
        for attempt in 0.. {
            match states.get(OuId(ou), LeadId(lead)).await {
                Ok(r) => return r,
                Err(e) if attempt < 150 => {
                    eprintln!("reading lead {lead}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("lead {lead} unreadable for 30 s: {e}"),
            }
        }
        unreachable!()
    }
}

pub fn event(lead: &str, event_type: &str, id: &str, time_ms: i64) -> EngagementEvent {
    EngagementEvent {
        event_id: format!("evt_{id}"),
        org_id: "org_default".into(),
        ou_id: OU.into(),
        lead_id: Some(lead.into()),
        aliases: vec![],
        source: Some("test".into()),
        producer_event_id: Some(id.into()),
        event_type: event_type.into(),
        event_time_ms: time_ms,
        received_at_ms: time_ms,
        metadata: Default::default(),
        origin: Origin::Kafka,
        environment: None,
        severity: None,
    }
}
