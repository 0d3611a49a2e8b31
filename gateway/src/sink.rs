//! Where accepted events go: the [`EventSink`] seam.
//!
//! Production uses [`KafkaSink`], which wraps the shared `Publisher` (idempotent, acks=all, lz4,
//! murmur2_random) and adds the gateway's deadline: an event not acknowledged within
//! `LEADSTREAM_PRODUCE_TIMEOUT` is a 503. [`MemorySink`] keeps records in memory for in-process
//! tests (property tests, unit tests) and can be told to fail like an unreachable broker.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use leadstream_shared::kafka::{
    Delivered, KafkaSettings, KafkaSetupError, PublishError, Publisher,
};

use crate::metrics as m;

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

/// After this many failed publishes in a row (a request's batch counts once), and no more often than every two deadlines, the
/// producer is replaced by a new one (see [`KafkaSink`]).
const REBUILD_AFTER_FAILURES: u32 = 3;

/// The events topic on Kafka.
///
/// librdkafka reconnects by itself when a broker comes back with its state. When a broker comes
/// back *without* it (a restarted single broker, a new cluster), an idempotent producer can stay
/// wedged on its old producer id and sequence numbers, timing out forever; and a producer can
/// hit a fatal error. In both cases the sink builds a fresh producer (new producer id). Records
/// still in the old one fail, their requests get 503 and are retried by their clients, so no
/// acknowledged record is lost or written twice.
pub struct KafkaSink {
    settings: KafkaSettings,
    topic: String,
    deadline: Duration,
    current: RwLock<Publisher>,
    failures: AtomicU32,
    rebuilt_at: Mutex<Instant>,
    partitions: Mutex<Option<(i32, Instant)>>,
}

impl KafkaSink {
    pub fn new(
        settings: KafkaSettings,
        topic: impl Into<String>,
        deadline: Duration,
    ) -> Result<KafkaSink, KafkaSetupError> {
        let publisher = Publisher::new(&settings, deadline)?;
        Ok(KafkaSink {
            settings,
            topic: topic.into(),
            deadline,
            current: RwLock::new(publisher),
            failures: AtomicU32::new(0),
            rebuilt_at: Mutex::new(Instant::now()),
            partitions: Mutex::new(None),
        })
    }

    fn publisher(&self) -> Option<Publisher> {
        self.current.read().ok().map(|p| p.clone())
    }

    fn after_failure(&self, used: &Publisher) {
        let failures = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
        let fatal = rdkafka::producer::Producer::client(used.producer()).fatal_error();
        if fatal.is_none() && failures < REBUILD_AFTER_FAILURES {
            return;
        }
        let Ok(mut at) = self.rebuilt_at.lock() else {
            return;
        };
        if fatal.is_none() && at.elapsed() < self.deadline * 2 {
            return;
        }
        match Publisher::new(&self.settings, self.deadline) {
            Ok(fresh) => {
                if let Ok(mut cur) = self.current.write() {
                    let old = std::mem::replace(&mut *cur, fresh);
                    // Dropping a producer waits for its queue: not on a runtime thread.
                    std::thread::spawn(move || drop(old));
                }
                *at = Instant::now();
                self.failures.store(0, Ordering::SeqCst);
                tracing::warn!(
                    ?fatal,
                    failures,
                    "replaced the Kafka producer after repeated failures"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot build a new Kafka producer"),
        }
    }
}

#[async_trait::async_trait]
impl EventSink for KafkaSink {
    async fn publish_batch(
        &self,
        records: &[(String, Vec<u8>)],
        headers: &[(&'static str, Vec<u8>)],
    ) -> Vec<Result<Delivered, PublishError>> {
        let Some(publisher) = self.publisher() else {
            return records
                .iter()
                .map(|_| Err(PublishError::Unavailable("producer lock poisoned".into())))
                .collect();
        };
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let started = Instant::now();
        // librdkafka enforces message.timeout.ms itself; this outer deadline (a little longer)
        // only guards against an acknowledgement that never comes.
        let deadline = tokio::time::Instant::now() + self.deadline + Duration::from_millis(500);
        let out = publisher
            .send_all(
                &self.topic,
                records.iter().map(|(k, p)| (k.as_str(), p.as_slice())),
                &headers,
                deadline,
            )
            .await;
        metrics::histogram!(m::PRODUCE_LATENCY).record(started.elapsed().as_secs_f64());
        if out.iter().any(|r| r.is_ok()) {
            self.failures.store(0, Ordering::SeqCst);
        } else if out.iter().any(|r| matches!(r, Err(e) if e.is_retryable())) {
            self.after_failure(&publisher);
        }
        out
    }

    async fn partitions(&self) -> Option<i32> {
        if let Some((n, at)) = *self.partitions.lock().ok()? {
            if at.elapsed() < PARTITIONS_TTL {
                return Some(n);
            }
        }
        let publisher = self.publisher()?;
        let topic = self.topic.clone();
        // Metadata requests block: off the async workers.
        let n = tokio::task::spawn_blocking(move || {
            let md = rdkafka::producer::Producer::client(publisher.producer())
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
        if let Some(p) = self.publisher() {
            if let Err(e) = p.flush(timeout) {
                tracing::warn!(error = %e, "producer flush at shutdown did not complete");
            }
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
