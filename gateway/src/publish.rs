//! From validated events to acknowledged Kafka records.
//!
//! [`Pipeline::accept`] resolves leads for alias-only events ([`crate::identity`]), encodes each
//! event as single-object Avro, and hands the request's records to the sink as one batch for the
//! events topic,
//! keyed `"{ou}:{lead}"` (the producer's murmur2_random partitioner places it), then waits for
//! every acknowledgement. Answers are per event, so single-event routes answer 2xx only after
//! their ack and batch routes can report each item. The W3C trace context travels in Kafka
//! headers so one trace spans gateway → processor → notifier: the HTTP request span's context
//! when traces are exported (it is a child of the caller's `traceparent`, see
//! [`crate::server`]), otherwise the caller's `traceparent` or a new one.

use std::sync::Arc;
use std::time::Duration;

use leadstream_domain::event::EngagementEvent;
use leadstream_shared::avro;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::kafka::{Delivered, PublishError};
use leadstream_shared::metric;
use leadstream_shared::trace::{self, TraceContext};

use crate::error::ApiError;
use crate::identity;
use crate::metrics::GatewayCounter;
use crate::sink::EventSink;

/// Why one event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("cannot encode the event: {0}")]
    Encode(String),
}

impl PublishFailure {
    pub fn is_retryable(&self) -> bool {
        match self {
            PublishFailure::Publish(e) => e.is_retryable(),
            PublishFailure::Encode(_) => false,
        }
    }

    /// The HTTP error for a single-event route.
    pub fn into_api(self, retry_after_secs: u64) -> ApiError {
        match self {
            PublishFailure::Publish(e) if e.is_retryable() => ApiError::unavailable(
                format!("event not stored, retry later: {e}"),
                retry_after_secs,
            ),
            PublishFailure::Publish(e) => ApiError::Validation(e.to_string()),
            PublishFailure::Encode(e) => ApiError::Internal(e),
        }
    }

    /// The per-item `error_code` of batch answers.
    pub fn code(&self) -> &'static str {
        if self.is_retryable() {
            "unavailable"
        } else {
            "rejected"
        }
    }
}

#[derive(Clone)]
pub struct Pipeline {
    pub sink: Arc<dyn EventSink>,
    pub catalog: Catalog,
}

impl Pipeline {
    /// Resolve leads (store errors fail the whole call: nothing was published yet), then
    /// publish every event and await all acks.
    pub async fn accept(
        &self,
        events: &mut [EngagementEvent],
        traceparent: &str,
    ) -> Result<Vec<Result<Delivered, PublishFailure>>, ApiError> {
        identity::resolve(&self.catalog, events)
            .await
            .map_err(|e| store_unavailable(e, 2))?;
        Ok(self.publish(events, traceparent).await)
    }

    /// Publish already-resolved events as one batch; one result per event, in order.
    ///
    /// Every event is encoded first (an event that cannot be encoded fails alone), then the
    /// batch is handed to the sink at once and its acknowledgements awaited together.
    pub async fn publish(
        &self,
        events: &[EngagementEvent],
        traceparent: &str,
    ) -> Vec<Result<Delivered, PublishFailure>> {
        let headers: Vec<(&'static str, Vec<u8>)> = match TraceContext::current() {
            Some(c) => c
                .headers()
                .into_iter()
                .map(|(k, v)| (k, v.to_vec()))
                .collect(),
            None => vec![(trace::TRACEPARENT, traceparent.as_bytes().to_vec())],
        };
        // Records in event order, without the events that could not be encoded: the sink's
        // results line up with the `Ok` slots.
        let mut records = Vec::with_capacity(events.len());
        let slots: Vec<Result<(), PublishFailure>> = events
            .iter()
            .map(|e| {
                let payload =
                    avro::encode_event(e).map_err(|err| PublishFailure::Encode(err.to_string()))?;
                records.push((e.kafka_key(), payload));
                Ok(())
            })
            .collect();
        let mut sent = self
            .sink
            .publish_batch(&records, &headers)
            .await
            .into_iter();
        let mut acked = OriginCounts::default();
        let results: Vec<_> = events
            .iter()
            .zip(slots)
            .map(|(e, slot)| {
                let res = slot.and_then(|()| {
                    sent.next()
                        .unwrap_or_else(|| {
                            Err(leadstream_shared::kafka::PublishError::Unavailable(
                                "the sink returned fewer results than records".into(),
                            ))
                        })
                        .map_err(PublishFailure::Publish)
                });
                match &res {
                    Ok(_) => acked.add(e.origin.as_str()),
                    Err(PublishFailure::Publish(err)) => {
                        let retryable = if err.is_retryable() { "true" } else { "false" };
                        metric::counter!(GatewayCounter::ProduceErrors, e.origin.as_str(), retryable)
                            .increment(1);
                        tracing::warn!(event_id = %e.event_id, ou = %e.ou_id, error = %err, "publish failed");
                    }
                    Err(PublishFailure::Encode(err)) => {
                        tracing::warn!(event_id = %e.event_id, ou = %e.ou_id, error = %err, "encode failed");
                    }
                }
                res
            })
            .collect();
        acked.flush();
        results
    }

    pub fn flush(&self, timeout: Duration) {
        self.sink.flush(timeout);
    }
}

/// Acknowledged events per origin, counted into [`GatewayCounter::EventsAcked`] once per request
/// instead of once per event (a labelled counter lookup is a hash-map lookup in the recorder).
#[derive(Default)]
struct OriginCounts(Vec<(&'static str, u64)>);

impl OriginCounts {
    fn add(&mut self, origin: &'static str) {
        match self.0.iter_mut().find(|(o, _)| *o == origin) {
            Some((_, n)) => *n += 1,
            None => self.0.push((origin, 1)),
        }
    }

    fn flush(self) {
        for (origin, n) in self.0 {
            metric::counter!(GatewayCounter::EventsAcked, origin).increment(n);
        }
    }
}

/// A store failure is the dependency's fault: 503, retry later.
pub fn store_unavailable(
    e: leadstream_shared::store::StoreError,
    retry_after_secs: u64,
) -> ApiError {
    ApiError::unavailable(
        format!("store unavailable, retry later: {e}"),
        retry_after_secs,
    )
}

/// The `traceparent` records carry when traces are not exported: the request's when it is
/// well-formed, otherwise a new sampled one. (When they are, [`Pipeline::publish`] uses the
/// request span's context instead.)
pub fn traceparent(headers: &axum::http::HeaderMap) -> String {
    match headers
        .get(trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
    {
        Some(tp) if trace::valid_traceparent(tp) => tp.to_ascii_lowercase(),
        _ => trace::new_traceparent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn traceparent_is_kept_or_made() {
        let mut h = HeaderMap::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.insert("traceparent", HeaderValue::from_static(tp));
        assert_eq!(traceparent(&h), tp);
        let made = traceparent(&HeaderMap::new());
        assert_eq!(made.len(), 55);
        assert!(made.starts_with("00-") && made.ends_with("-01"));
        h.insert("traceparent", HeaderValue::from_static("garbage"));
        assert_ne!(traceparent(&h), "garbage");
    }
}
