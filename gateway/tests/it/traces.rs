//! The real `leadstream gateway` process, with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local
//! receiver, exports its spans over OTLP/HTTP (protobuf) by the time it exits on SIGTERM.
//!
//! The trace from the HTTP request through the processor and notifier to the webhook, and the
//! metrics of each hop, are checked with the whole pipeline in one process:
//! `e2e/tests/pipeline/traces.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::json;

use crate::common::*;
use leadstream_testkit::wait_until;

const WAIT: Duration = Duration::from_secs(90);
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// What the OTLP receiver got: (content type, body) of each `POST /v1/traces`.
type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn otlp_receiver() -> (String, Exports) {
    let got: Exports = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                sink.lock().unwrap().push((ct, body.to_vec()));
                "" // an empty ExportTraceServiceResponse
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_process_exports_its_spans_over_otlp_before_it_exits() {
    use leadstream_testkit::{free_port, leadstream_bin, ChildGuard};
    use std::process::{Command, Stdio};

    let (endpoint, exports) = otlp_receiver().await;
    let broker = leadstream_testkit::Broker::start();
    let prefix = leadstream_testkit::unique("otlp");
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = Command::new(leadstream_bin());
    cmd.arg("gateway")
        .env("LEADSTREAM_KAFKA_BROKERS", broker.addr())
        .env("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true")
        .env("LEADSTREAM_REDIS_URL", leadstream_testkit::redis_url())
        .env("LEADSTREAM_TOPIC_PREFIX", &prefix)
        .env("LEADSTREAM_REDIS_PREFIX", &prefix)
        .env("LEADSTREAM_HTTP_ADDR", url.trim_start_matches("http://"))
        .env("LEADSTREAM_PARTITIONS", PARTITIONS.to_string())
        .env("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN)
        .env("LEADSTREAM_SHUTDOWN_DELAY", "0s")
        .env("LEADSTREAM_SHUTDOWN_GRACE", "2s")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env_remove("OTEL_SERVICE_NAME")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut child = ChildGuard::spawn(&mut cmd).expect("spawn leadstream gateway");
    let http = reqwest::Client::new();
    wait_until(WAIT, "the gateway is ready", || async {
        let r = http.get(format!("{url}/readyz")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let caller = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let resp = http
        .post(format!("{url}/ingest"))
        .bearer_auth(ADMIN)
        .header("traceparent", &caller)
        .json(&json!({"lead_id": "ld_otlp", "event_type": "page_view"}))
        .send()
        .await
        .expect("ingest answered");
    assert_eq!(resp.status(), 202);

    // SIGTERM: the process drains, flushes the span exporter and exits.
    let pid = child.0.as_ref().expect("running").id();
    let signalled = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(signalled, "could not send SIGTERM to {pid}");
    let status = wait_until(WAIT, "the gateway exits", || {
        let exited = child.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
        async move { exited }
    })
    .await;
    child.0 = None;
    assert!(status.success(), "gateway exit status {status}");

    let exports = exports.lock().unwrap().clone();
    assert!(!exports.is_empty(), "no OTLP export arrived");
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let traced = exports
        .iter()
        .find(|(_, body)| contains(body, &trace_id))
        .expect("an export holds the caller's trace id");
    assert_eq!(traced.0, "application/x-protobuf");
    assert!(contains(&traced.1, b"http_request"), "the request span");
    assert!(
        contains(&traced.1, b"leadstream-gateway"),
        "the default service name"
    );
}
