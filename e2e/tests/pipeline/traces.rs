//! One trace from the HTTP request to the webhook, and the metrics each hop reports.
//!
//! Real parts in one process: a tansu broker, the real Redis, the gateway on port 0, the
//! processor and the notifier (same topic and key prefixes), and a webhook receiver on
//! 127.0.0.1 (allowed through the SSRF guard). A global subscriber sends spans to an in-memory
//! exporter; this test runs in a process of its own (nextest), so the global subscriber is
//! ours. One event is sent with a `traceparent` header while a milestone trigger is armed; once
//! the webhook arrived, the caller's trace id must be on the HTTP span, the processing span, the
//! firing and the delivery span. Then `/metrics` (one recorder for all three services here) must
//! show produce acks, firings by kind, deliveries, processing latency and consumer lag.
//!
//! Without an exporter (no OpenTelemetry layer in the process) the caller's `traceparent` must
//! still reach the fired record, copied as bytes. (That the gateway process exports its spans
//! over OTLP is checked in the gateway's own tests: `gateway/tests/it/traces.rs`.)

use std::time::Duration;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;

use crate::common::*;
use leadstream_testkit::receiver::Receiver;
use leadstream_testkit::wait_until;

const WAIT: Duration = Duration::from_secs(90);
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn spans_of(exporter: &InMemorySpanExporter, trace_id: &str) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id)
        .collect()
}

/// Arm a milestone trigger (50 points for a demo request, threshold 40) that calls `hook`, then
/// ingest a demo request for `email` within the caller's trace; the caller's `traceparent`.
async fn send_traced(app: &App, hook: &str, email: &str) -> String {
    let rules =
        json!({"name": "Engagement", "rules": [{"event_type": "demo_request", "points": 50}]});
    app.create("/rulesets", &rules).await;
    let trigger = json!({"name": "Hot Lead Alert", "event_type": "demo_request",
        "score_threshold": 40, "webhook_url": hook});
    app.create("/triggers", &trigger).await;
    let caller = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let event = json!({"alias_kind": "email", "alias": email, "event_type": "demo_request"});
    let traced = [("traceparent", caller.as_str())];
    let resp = app
        .post("/ingest", Cred::Bearer(ADMIN), &traced, &event)
        .await;
    assert_eq!(resp.status(), 202, "{}", body(resp).await);
    caller
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_request_to_delivery_and_metrics_for_each_hop() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    assert!(
        leadstream_shared::telemetry::init_with("info,rdkafka=warn", Some(provider)),
        "the global subscriber was already set: run this test in its own process (nextest)"
    );
    // Statistics every 500 ms so consumer lag shows up quickly.
    let kafka_config = ("LEADSTREAM_KAFKA_CONFIG", "statistics.interval.ms=500");
    let app = App::with_env(&[kafka_config], spawn_gateway).await;
    let services = Services::both(&notifier_env(
        &app,
        &[
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "5s".into()),
            (kafka_config.0, kafka_config.1.into()),
        ],
    ));

    let rx = Receiver::start().await;
    send_traced(&app, &rx.url("/hook"), "traced@example.com").await;

    wait_until(WAIT, "the webhook arrives", || async {
        (!rx.on("/hook").is_empty()).then_some(())
    })
    .await;
    // The delivery span ends once the attempt is recorded, just after the webhook answered.
    let spans = wait_until(WAIT, "the delivery span is exported", || async {
        let spans = spans_of(&exporter, TRACE_ID);
        spans.iter().any(|s| s.name == "deliver").then_some(spans)
    })
    .await;
    let all = names(&spans);
    for name in [
        "http_request",
        "process_batch",
        "fire",
        "ingest_batch",
        "deliver",
    ] {
        assert!(
            all.iter().any(|n| n == name),
            "no {name} span in trace {TRACE_ID}: {all:?}"
        );
    }
    let http = spans.iter().find(|s| s.name == "http_request").unwrap();
    assert_eq!(
        http.parent_span_id.to_string(),
        CALLER_SPAN,
        "the HTTP span is a child of the caller's span"
    );
    // The fired record carries the firing's context: the delivery is its child.
    let fire = spans.iter().find(|s| s.name == "fire").unwrap();
    let deliver = spans.iter().find(|s| s.name == "deliver").unwrap();
    assert_eq!(deliver.parent_span_id, fire.span_context.span_id());
    // The webhook request itself continues the trace: its parent is the delivery span.
    let sent = Some(rx.on("/hook")[0].header("traceparent")).filter(|t| !t.is_empty());
    assert_eq!(
        sent,
        Some(format!(
            "00-{TRACE_ID}-{}-01",
            deliver.span_context.span_id()
        )),
        "the webhook carries the delivery span's traceparent"
    );

    let metrics = wait_until(WAIT, "lag and DLQ size in /metrics", || async {
        let text = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let lag = format!("leadstream_kafka_consumer_lag{{topic=\"{}\"", app.topic);
        let dlq = "leadstream_notifier_dlq_messages 0";
        (text.contains(&lag) && text.contains(dlq)).then_some(text)
    })
    .await;
    for needle in [
        "leadstream_gateway_events_acked_total",
        "leadstream_kafka_produced_total",
        "leadstream_processor_fired_total{kind=\"milestone\"} 1",
        "leadstream_processor_processing_latency_seconds",
        "leadstream_notifier_succeeded_total{channel=\"webhook\"} 1",
        "leadstream_kafka_broker_rtt_seconds",
        "leadstream_kafka_queue_messages",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} not in /metrics:\n{metrics}"
        );
    }

    services.stop().await;
    app.stop().await;
}

/// Gateway and processor without an OpenTelemetry layer (this test's process installs none):
/// the fired record carries the caller's `traceparent` unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_exporter_the_fired_record_carries_the_callers_traceparent() {
    assert!(!leadstream_shared::trace::enabled());
    let app = App::start(spawn_gateway).await;
    let services = Services::processor(&app.service_env(&[]));
    let hook = "https://hooks.example.com/leadvibe";
    let caller = send_traced(&app, hook, "untraced@example.com").await;

    let fired = leadstream_testkit::consume(
        &app.broker.addr(),
        &app.common.topics.fired,
        1,
        WAIT,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(fired.len(), 1, "one firing");
    let carried =
        leadstream_shared::trace::TraceContext::from_headers(rdkafka::Message::headers(&fired[0]));
    assert_eq!(
        carried.map(|c| c.traceparent),
        Some(caller),
        "the fired record carries the caller's traceparent"
    );

    services.stop().await;
    app.stop().await;
}
