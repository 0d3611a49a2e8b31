//! Managed Kafka and Redis (issue 18, part 3): the gateway against a broker reachable only
//! through TLS (tansu behind `socat OPENSSL-LISTEN`, advertising the TLS port) and a
//! `redis-server --tls-port` with a password, both with certificates of a CA the test made with
//! `openssl`. An event ingested over that path is read back over TLS and applied by the
//! processor (same variables, consumer and store over TLS); a wrong CA (Kafka, Redis)
//! and a wrong Redis password stop the start with a sentence naming the variable to fix.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use leadstream_gateway::GatewayConfig;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_testkit::tls::{TestPki, TlsKafka, TlsRedis};
use leadstream_testkit::{consume_with, unique, wait_until};

const REDIS_PASSWORD: &str = "tls-test-password";

struct Endpoints {
    pki: TestPki,
    kafka: TlsKafka,
    redis: TlsRedis,
    _dir: TempDir,
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn endpoints() -> Endpoints {
    let dir = std::env::temp_dir().join(unique("tls"));
    let pki = TestPki::create(&dir.join("pki"));
    let kafka = TlsKafka::start(&pki);
    let redis = TlsRedis::start(&pki, &dir.join("redis"), REDIS_PASSWORD);
    Endpoints {
        pki,
        kafka,
        redis,
        _dir: TempDir(dir),
    }
}

fn kafka_config(ca: &Path) -> String {
    format!("security.protocol=SSL,ssl.ca.location={}", ca.display())
}

/// The gateway's configuration for the TLS endpoints, with `changes` applied on top.
fn config(e: &Endpoints, prefix: &str, changes: &[(&str, String)]) -> GatewayConfig {
    GatewayConfig::from_source(&env(e, prefix, changes)).expect("config")
}

/// The services' variables for the TLS endpoints, with `changes` applied on top.
fn env(e: &Endpoints, prefix: &str, changes: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", e.kafka.addr()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_KAFKA_CONFIG", kafka_config(&e.pki.ca())),
        ("LEADSTREAM_REDIS_URL", e.redis.url()),
        ("LEADSTREAM_REDIS_CA_FILE", e.pki.ca().display().to_string()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.to_string()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.to_string()),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_PARTITIONS", PARTITIONS.to_string()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
        ("LEADSTREAM_SHUTDOWN_GRACE", "2s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in changes {
        env.insert(k.to_string(), v.clone());
    }
    env
}

/// The start's error, in full (every context), or a panic if it started.
async fn start_error(cfg: GatewayConfig) -> String {
    match leadstream_gateway::spawn(cfg, CancellationToken::new()).await {
        Ok(_) => panic!("the gateway started with a configuration that must fail"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_through_tls_kafka_and_tls_redis() {
    let e = endpoints();
    let prefix = unique("tls");
    let cfg = config(&e, &prefix, &[]);
    let topic = cfg.common.topics.events.clone();
    let shutdown = CancellationToken::new();
    let running = leadstream_gateway::spawn(cfg, shutdown.clone())
        .await
        .expect("the gateway starts against TLS Kafka and TLS Redis");
    // The bootstrap admin key lives in the TLS Redis; the event goes to the TLS broker.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/ingest", running.addr))
        .bearer_auth(ADMIN)
        .json(
            &json!({"alias_kind": "email", "alias": "tls@example.com", "event_type": "page_view"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);

    let mut reader = KafkaSettings::new(e.kafka.addr());
    reader
        .overrides
        .insert("security.protocol".into(), "SSL".into());
    reader
        .overrides
        .insert("ssl.ca.location".into(), e.pki.ca().display().to_string());
    let recs = consume_with(&reader, &topic, 1, Duration::from_secs(30), Duration::ZERO).await;
    assert_eq!(recs.len(), 1);
    let event = leadstream_shared::avro::decode_event(rdkafka::Message::payload(&recs[0]).unwrap())
        .unwrap();
    assert_eq!(event.event_type, "page_view");
    assert_eq!(event.ou_id, "unit_default");

    // The processor, with the same variables, consumes over TLS and keeps state in TLS Redis.
    let processor_cfg = leadstream_processor::ProcessorConfig::from_source(&env(
        &e,
        &prefix,
        &[("LEADSTREAM_PROCESSOR_GROUP", format!("{prefix}-processor"))],
    ))
    .expect("processor config");
    let processor = tokio::spawn(leadstream_processor::run(processor_cfg, shutdown.clone()));
    let http = reqwest::Client::new();
    let lead_url = format!(
        "http://{}/leads?alias_kind=email&alias=tls@example.com",
        running.addr
    );
    wait_until(
        Duration::from_secs(60),
        "the processor applied the event",
        || async {
            let resp = http.get(&lead_url).bearer_auth(ADMIN).send().await.ok()?;
            let lead: serde_json::Value = resp.json().await.ok()?;
            (lead["event_count"] == 1).then_some(())
        },
    )
    .await;

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), processor).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), running.handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_password_fails_the_start_naming_the_variable() {
    let e = endpoints();
    let other = e.pki.other_ca().display().to_string();

    let msg = start_error(config(
        &e,
        &unique("tls"),
        &[("LEADSTREAM_REDIS_CA_FILE", other.clone())],
    ))
    .await;
    assert!(
        msg.contains("TLS certificate is not trusted") && msg.contains("LEADSTREAM_REDIS_CA_FILE"),
        "{msg}"
    );

    let msg = start_error(config(
        &e,
        &unique("tls"),
        &[("LEADSTREAM_REDIS_URL", e.redis.url_with_password("wrong"))],
    ))
    .await;
    assert!(
        msg.contains("refused the credentials") && msg.contains("LEADSTREAM_REDIS_URL"),
        "{msg}"
    );
    assert!(
        !msg.contains(REDIS_PASSWORD) && !msg.contains(":wrong@"),
        "{msg}"
    );

    let msg = start_error(config(
        &e,
        &unique("tls"),
        &[("LEADSTREAM_KAFKA_CONFIG", kafka_config(Path::new(&other)))],
    ))
    .await;
    assert!(
        msg.contains("over TLS")
            && msg.contains("ssl.ca.location")
            && msg.contains("LEADSTREAM_KAFKA_CONFIG"),
        "{msg}"
    );
}
