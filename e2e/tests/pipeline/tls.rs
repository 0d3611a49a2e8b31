//! Managed Kafka and Redis (issue 18, part 3): the gateway against a broker reachable only
//! through TLS (tansu behind `socat OPENSSL-LISTEN`, advertising the TLS port) and a
//! `redis-server --tls-port` with a password, both with certificates of a CA the test made with
//! `openssl` ([`TlsEndpoints`]). An event ingested over that path is read back over TLS and
//! applied by the processor (same variables, consumer and store over TLS). That a wrong CA or
//! password stops the gateway's start naming the variable: `gateway/tests/it/tls.rs`.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::*;
use leadstream_gateway::GatewayConfig;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_testkit::tls::TlsEndpoints;
use leadstream_testkit::{consume_with, unique, wait_until};

/// The gateway's configuration for the TLS endpoints, with `changes` applied on top.
fn config(e: &TlsEndpoints, prefix: &str, changes: &[(&str, String)]) -> GatewayConfig {
    GatewayConfig::from_source(&e.env(prefix, changes)).expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_through_tls_kafka_and_tls_redis() {
    let e = TlsEndpoints::start();
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
    let processor_cfg = leadstream_processor::ProcessorConfig::from_source(&e.env(
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
