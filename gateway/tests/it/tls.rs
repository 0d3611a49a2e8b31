//! Managed Kafka and Redis (issue 18, part 3): the gateway against a broker reachable only
//! through TLS and a `redis-server --tls-port` with a password, both with certificates of a CA
//! the test made ([`TlsEndpoints`]). A wrong CA (Kafka, Redis) and a wrong Redis password stop
//! the start with a sentence naming the variable to fix. An event ingested over that path and
//! applied by the processor: `e2e/tests/pipeline/tls.rs`.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use leadstream_gateway::GatewayConfig;
use leadstream_testkit::tls::{kafka_config, TlsEndpoints, REDIS_PASSWORD};
use leadstream_testkit::unique;

/// The gateway's configuration for the TLS endpoints, with `changes` applied on top.
fn config(e: &TlsEndpoints, prefix: &str, changes: &[(&str, String)]) -> GatewayConfig {
    GatewayConfig::from_source(&e.env(prefix, changes)).expect("config")
}

/// The start's error, in full (every context), or a panic if it started.
async fn start_error(cfg: GatewayConfig) -> String {
    match leadstream_gateway::spawn(cfg, CancellationToken::new()).await {
        Ok(_) => panic!("the gateway started with a configuration that must fail"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_password_fails_the_start_naming_the_variable() {
    let e = TlsEndpoints::start();
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
