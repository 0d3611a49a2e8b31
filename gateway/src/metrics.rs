//! The gateway's metrics, defined once with their labels ([`GatewayCounter`],
//! [`GatewayHistogram`]; recorded with `leadstream_shared::metric`).
//!
//! Exposed at `GET /metrics` in the Prometheus text format. The recorder is process-wide (the
//! `metrics` crate has one global recorder), installed once by [`install`]. The Kafka client
//! metrics every service shares (`leadstream_kafka_*`: produce acks and errors, librdkafka
//! statistics) are named in `leadstream_shared::kafka::stats`; `docs/observability.md` lists all.

use std::sync::OnceLock;

use leadstream_shared::metric;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

metric::define! {
    /// The gateway's counters.
    pub enum GatewayCounter: Counter {
        /// Requests answered, by matched route and HTTP status code.
        HttpRequests = "leadstream_gateway_http_requests_total" ["route", "status"],
        /// Events the broker acknowledged.
        EventsAcked = "leadstream_gateway_events_acked_total" ["origin"],
        /// Events that failed to publish; `retryable` is `true` or `false`.
        ProduceErrors = "leadstream_gateway_produce_errors_total" ["origin", "retryable"],
        /// Answers replayed from an idempotency / dedupe record.
        Duplicates = "leadstream_gateway_duplicates_total" ["origin"],
        /// Items refused by validation inside batches.
        ItemsRejected = "leadstream_gateway_items_rejected_total" ["origin"],
        /// Requests refused by the per-key rate limit.
        RateLimited = "leadstream_gateway_rate_limited_total" [],
        /// Requests shed with 503 by the global in-flight limit.
        Shed = "leadstream_gateway_shed_total" [],
        /// Events refused by the per-OU / per-key event rate limits.
        EventsRateLimited = "leadstream_gateway_events_rate_limited_total" [],
        /// Requests refused by the per-address limit of unverified credentials.
        RateLimitedAddress = "leadstream_gateway_rate_limited_address_total" [],
        /// API key lookups; `result` is `cache_hit`, `store_hit`, `unknown` or `unknown_cached`.
        KeyLookups = "leadstream_gateway_key_lookups_total" ["result"],
    }
}

metric::define! {
    /// The gateway's histograms, in seconds.
    pub enum GatewayHistogram: Histogram {
        /// Time to answer a request, by matched route.
        HttpDuration = "leadstream_gateway_http_request_duration_seconds" ["route"],
        /// Enqueue → broker ack of a request's events (the last ack of a batch).
        ProduceLatency = "leadstream_gateway_produce_latency_seconds" [],
    }
}

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
