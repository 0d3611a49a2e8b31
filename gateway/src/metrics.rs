//! Metric names, defined once. Each constant's doc line lists its labels.
//!
//! Exposed at `GET /metrics` in the Prometheus text format. The recorder is process-wide (the
//! `metrics` crate has one global recorder), installed once by [`install`]. The Kafka client
//! metrics every service shares (`leadstream_kafka_*`: produce acks and errors, librdkafka
//! statistics) are named in `leadstream_shared::kafka::stats`; `docs/observability.md` lists all.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Counter. Labels: `route`, `status` (HTTP status code).
pub const HTTP_REQUESTS: &str = "leadstream_gateway_http_requests_total";
/// Histogram, seconds. Labels: `route`.
pub const HTTP_DURATION: &str = "leadstream_gateway_http_request_duration_seconds";
/// Counter: events the broker acknowledged. Labels: `origin`.
pub const EVENTS_ACKED: &str = "leadstream_gateway_events_acked_total";
/// Counter: events that failed to publish. Labels: `origin`, `retryable` (`true`/`false`).
pub const PRODUCE_ERRORS: &str = "leadstream_gateway_produce_errors_total";
/// Histogram, seconds: enqueue → broker ack of a request's events (the last ack of a batch).
/// No labels.
pub const PRODUCE_LATENCY: &str = "leadstream_gateway_produce_latency_seconds";
/// Counter: answers replayed from an idempotency / dedupe record. Labels: `origin`.
pub const DUPLICATES: &str = "leadstream_gateway_duplicates_total";
/// Counter: items refused by validation inside batches. Labels: `origin`.
pub const ITEMS_REJECTED: &str = "leadstream_gateway_items_rejected_total";
/// Counter: requests refused by the per-key rate limit. No labels.
pub const RATE_LIMITED: &str = "leadstream_gateway_rate_limited_total";
/// Counter: requests shed with 503 by the global in-flight limit. No labels.
pub const SHED: &str = "leadstream_gateway_shed_total";
/// Counter: events refused by the per-OU / per-key event rate limits. No labels.
pub const EVENTS_RATE_LIMITED: &str = "leadstream_gateway_events_rate_limited_total";
/// Counter: requests refused by the per-address limit of unverified credentials. No labels.
pub const RATE_LIMITED_ADDRESS: &str = "leadstream_gateway_rate_limited_address_total";
/// Counter: API key lookups. Labels: `result` (`cache_hit`, `store_hit`, `unknown`,
/// `unknown_cached`).
pub const KEY_LOOKUPS: &str = "leadstream_gateway_key_lookups_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the Prometheus recorder once per process; later calls return the same handle. If
/// another recorder is already installed (an embedding program chose its own), `None`.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|_| handle)
        })
        .clone()
}
