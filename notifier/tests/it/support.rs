//! Test support: testkit's HTTP receiver and SMTP listener, fired-record producers and a
//! notifier per test (own topics, own Redis prefix).

use std::collections::BTreeMap;
use std::time::Duration;

use leadstream_domain::fired::TriggerFired;
use leadstream_notifier::NotifierConfig;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::Store;
use leadstream_testkit::{redis_url, unique, Broker};
use tokio_util::sync::CancellationToken;

// ---------- HTTP receiver and signature check ----------

pub use leadstream_testkit::receiver::{verify, Mode, Received, Receiver, Script};

// ---------- SMTP listener ----------

pub use leadstream_testkit::smtp_sink::SmtpSink;

// ---------- Notifier and records ----------

pub use leadstream_testkit::firing::{fired, webhook};

pub struct Env {
    pub broker: Broker,
    pub vars: BTreeMap<String, String>,
    pub store: Store,
    pub keys: Keys,
    pub publisher: Publisher,
    pub fired_topic: String,
    pub dlq_topic: String,
}

impl Env {
    /// A broker, an isolated prefix, topics created, and the variables a notifier needs.
    pub async fn new(name: &str, extra: &[(&str, &str)]) -> Env {
        let broker = Broker::start();
        let prefix = unique(name);
        let mut vars = leadstream_testkit::vars::notifier(&broker.addr(), &redis_url(), &prefix);
        for (k, v) in extra {
            if v.is_empty() {
                vars.remove(*k);
            } else {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        let cfg = NotifierConfig::from_source(&vars).expect("config");
        let kafka = KafkaSettings::new(broker.addr());
        ensure_topics(
            &kafka,
            &[&cfg.common.topics.fired, &cfg.common.topics.dlq],
            2,
            1,
        )
        .await
        .expect("topics");
        // The notifier's own way to the store (a Redis Cluster when `extra` says so).
        let store: Store = cfg.common.open_store().await.expect("redis-server");
        Env {
            publisher: Publisher::new(&kafka, Duration::from_secs(10)).unwrap(),
            fired_topic: cfg.common.topics.fired.clone(),
            dlq_topic: cfg.common.topics.dlq.clone(),
            keys: cfg.common.keys(),
            broker,
            vars,
            store,
        }
    }

    pub fn config(&self) -> NotifierConfig {
        NotifierConfig::from_source(&self.vars).expect("config")
    }

    /// Start a notifier in this process; cancel the token to stop it.
    pub fn spawn_notifier(
        &self,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let token = CancellationToken::new();
        let handle = tokio::spawn(leadstream_notifier::run(self.config(), token.clone()));
        (token, handle)
    }

    pub async fn produce(&self, f: &TriggerFired) {
        let bytes = leadstream_shared::avro::encode_fired(f).unwrap();
        self.publisher
            .send(&self.fired_topic, &f.kafka_key(), &bytes, &[])
            .await
            .expect("produce fired");
    }

    /// The delivery jobs, as the notifier this environment configures keeps them.
    pub fn jobs(&self) -> leadstream_notifier::jobs::JobStore {
        let retention = u64::try_from(self.config().retention.as_millis()).unwrap_or(u64::MAX);
        leadstream_notifier::jobs::JobStore::new(self.store.clone(), self.keys.clone(), retention)
    }

    pub fn catalog(&self) -> leadstream_shared::catalog::Catalog {
        leadstream_shared::catalog::Catalog::new(self.store.clone(), self.keys.clone())
    }

    pub async fn deliveries(
        &self,
        q: leadstream_shared::delivery::DeliveryQuery,
    ) -> Vec<leadstream_shared::delivery::DeliveryAttempt> {
        leadstream_shared::delivery::query(self.store.as_ref(), &self.keys, "unit_default", &q)
            .await
            .unwrap()
            .deliveries
    }
}
