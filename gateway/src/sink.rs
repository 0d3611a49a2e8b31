//! Where accepted events go: the [`EventSink`] seam.
//!
//! Production uses [`KafkaSink`], which wraps the shared `Publisher` (idempotent, acks=all, lz4,
//! murmur2_random) and adds the gateway's deadline: an event not acknowledged within
//! `LEADSTREAM_PRODUCE_TIMEOUT` is a 503. [`MemorySink`] keeps records in memory for in-process
//! tests (property tests, unit tests) and can be told to fail like an unreachable broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leadstream_shared::kafka::{
    Delivered, KafkaSettings, KafkaSetupError, PublishError, Publisher,
};
use leadstream_shared::metric;

use crate::metrics::GatewayHistogram;

/// One record to publish: Kafka key, Avro payload, headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publish records that share one set of headers and resolve once the broker acknowledged
    /// (or refused) every one: one result per record, in order. A single event is a batch of
    /// one.
    async fn publish_batch(
        &self,
        records: &[(String, Vec<u8>)],
        headers: &[(&'static str, Vec<u8>)],
    ) -> Vec<Result<Delivered, PublishError>>;

    /// Wait for everything in flight (shutdown).
    fn flush(&self, _timeout: Duration) {}

    /// The events topic's partition count, when the sink knows it (the lead routes find a
    /// lead's state in its partition).
    async fn partitions(&self) -> Option<i32> {
        None
    }
}

/// How long a partition count read from the broker is trusted.
const PARTITIONS_TTL: Duration = Duration::from_secs(30);

/// The events topic on Kafka. The shared [`Publisher`] replaces its producer when it is wedged
/// or fatally failed (a broker that came back without its state, `ProducerFenced` after an
/// outage); records still in the old one fail, their requests get 503 and are retried by their
/// clients, so no acknowledged record is lost or written twice.
pub struct KafkaSink {
    publisher: Publisher,
    topic: String,
    deadline: Duration,
    partitions: Mutex<Option<(i32, Instant)>>,
}

impl KafkaSink {
    pub fn new(
        settings: KafkaSettings,
        topic: impl Into<String>,
        deadline: Duration,
    ) -> Result<KafkaSink, KafkaSetupError> {
        Ok(KafkaSink {
            publisher: Publisher::new(&settings, deadline)?,
            topic: topic.into(),
            deadline,
            partitions: Mutex::new(None),
        })
    }
}

#[async_trait::async_trait]
impl EventSink for KafkaSink {
    async fn publish_batch(
        &self,
        records: &[(String, Vec<u8>)],
        headers: &[(&'static str, Vec<u8>)],
    ) -> Vec<Result<Delivered, PublishError>> {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let started = Instant::now();
        // librdkafka enforces message.timeout.ms itself; this outer deadline (a little longer)
        // only guards against an acknowledgement that never comes.
        let deadline = tokio::time::Instant::now() + self.deadline + Duration::from_millis(500);
        let out = self
            .publisher
            .send_all(
                &self.topic,
                records.iter().map(|(k, p)| (k.as_str(), p.as_slice())),
                &headers,
                deadline,
            )
            .await;
        metric::histogram!(GatewayHistogram::ProduceLatency)
            .record(started.elapsed().as_secs_f64());
        out
    }

    async fn partitions(&self) -> Option<i32> {
        if let Some((n, at)) = *self.partitions.lock().ok()? {
            if at.elapsed() < PARTITIONS_TTL {
                return Some(n);
            }
        }
        let producer = self.publisher.producer();
        let topic = self.topic.clone();
        // Metadata requests block: off the async workers.
        let n = tokio::task::spawn_blocking(move || {
            let md = rdkafka::producer::Producer::client(&producer)
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .ok()?;
            let n = md.topics().first()?.partitions().len() as i32;
            (n > 0).then_some(n)
        })
        .await
        .ok()
        .flatten()?;
        if let Ok(mut cached) = self.partitions.lock() {
            *cached = Some((n, Instant::now()));
        }
        Some(n)
    }

    fn flush(&self, timeout: Duration) {
        if let Err(e) = self.publisher.flush(timeout) {
            tracing::warn!(error = %e, "producer flush at shutdown did not complete");
        }
    }
}

/// Records kept in memory; `set_failing(true)` makes every publish fail as retryable.
#[derive(Default)]
pub struct MemorySink {
    records: Mutex<Vec<Record>>,
    failing: AtomicBool,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn records(&self) -> Vec<Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl EventSink for MemorySink {
    async fn publish_batch(
        &self,
        records: &[(String, Vec<u8>)],
        headers: &[(&'static str, Vec<u8>)],
    ) -> Vec<Result<Delivered, PublishError>> {
        let failing = self.failing.load(Ordering::SeqCst);
        let Ok(mut stored) = self.records.lock() else {
            return records
                .iter()
                .map(|_| Err(PublishError::Unavailable("memory sink poisoned".into())))
                .collect();
        };
        records
            .iter()
            .map(|(key, payload)| {
                if failing {
                    return Err(PublishError::Unavailable("memory sink is failing".into()));
                }
                stored.push(Record {
                    key: key.clone(),
                    payload: payload.clone(),
                    headers: headers.to_vec(),
                });
                Ok(Delivered {
                    partition: 0,
                    offset: stored.len() as i64 - 1,
                })
            })
            .collect()
    }
}
