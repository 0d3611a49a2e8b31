//! The Kafka seam: topic names, client settings the design requires, topic creation, and a
//! [`Publisher`] that answers only once the broker has acknowledged a record.
//!
//! Producers: `enable.idempotence=true`, `acks=all`, lz4, a few ms of linger, and
//! `partitioner=murmur2_random` so Java clients of internal systems (murmur2 by default) put a
//! lead on the same partition as we do. Consumers: no auto-commit and no automatic offset store —
//! a service stores an offset only after every effect of the record is durable.
//!
//! Every producer and consumer built with [`KafkaSettings::with_stats`] reports librdkafka
//! statistics (queues, broker RTT, consumer lag) as metrics: [`stats`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer};

use crate::metric;

pub mod stats;
use stats::KafkaCounter;
pub use stats::StatsContext;

/// Connection settings shared by producers and consumers. `Debug` hides secret properties
/// (passwords, keys, OAuth configuration) of the overrides.
#[derive(Clone)]
pub struct KafkaSettings {
    /// `host:port,host:port`.
    pub brokers: String,
    /// Extra librdkafka properties (`LEADSTREAM_KAFKA_CONFIG=key=value,…`), applied last.
    pub overrides: BTreeMap<String, String>,
    /// Consumer long-poll (`fetch.wait.max.ms`). The tansu broker answers one request at a time
    /// per connection, so this also delays a consumer's other requests: keep it short in tests and
    /// state it beside latency figures.
    pub fetch_wait_max_ms: u32,
    pub linger_ms: u32,
    /// Accommodate the tansu test broker's answer to a fetch inside a record batch (the next
    /// batch): consumers seek back instead of stepping over what looks like a gap
    /// (`LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS=true`; the test harnesses set it). Off for real
    /// Kafka, where gaps (transaction markers, compaction) are ordinary.
    pub test_broker_quirks: bool,
}

/// Whether a librdkafka property holds a secret (never logged or printed).
pub fn is_secret_property(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password")
        || n.contains("secret")
        || n.ends_with(".key.pem")
        || n == "sasl.oauthbearer.config"
        || n == "sasl.jaas.config"
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let overrides: BTreeMap<&str, &str> = self
            .overrides
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_property(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("overrides", &overrides)
            .field("fetch_wait_max_ms", &self.fetch_wait_max_ms)
            .field("linger_ms", &self.linger_ms)
            .field("test_broker_quirks", &self.test_broker_quirks)
            .finish()
    }
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            overrides: BTreeMap::new(),
            fetch_wait_max_ms: 100,
            linger_ms: 5,
            test_broker_quirks: false,
        }
    }

    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "leadstream")
            .set("socket.keepalive.enable", "true")
            // Loopback tests and single-broker setups: don't wait long between reconnects.
            .set("reconnect.backoff.max.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "10000");
        c
    }

    fn apply_overrides(&self, c: &mut ClientConfig) {
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
    }

    /// Turn on librdkafka statistics (every [`stats::DEFAULT_INTERVAL_MS`] unless
    /// `LEADSTREAM_KAFKA_CONFIG` sets `statistics.interval.ms`). Only for clients whose context
    /// records them ([`StatsContext`], or one calling [`stats::record`]): the default context
    /// logs every document.
    pub fn with_stats<'c>(&self, c: &'c mut ClientConfig) -> &'c mut ClientConfig {
        if !self.overrides.contains_key("statistics.interval.ms") {
            c.set(
                "statistics.interval.ms",
                stats::DEFAULT_INTERVAL_MS.to_string(),
            );
        }
        c
    }

    /// [`KafkaSettings::consumer_config`] with statistics on (use with [`StatsContext`]).
    pub fn consumer_config_with_stats(&self, group_id: &str) -> ClientConfig {
        let mut c = self.consumer_config(group_id);
        self.with_stats(&mut c);
        c
    }

    /// The producer configuration every leadstream producer uses.
    pub fn producer_config(&self, message_timeout: Duration) -> ClientConfig {
        let mut c = self.base();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", self.linger_ms.to_string())
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                message_timeout.as_millis().to_string(),
            )
            .set("queue.buffering.max.messages", "200000")
            .set("queue.buffering.max.kbytes", "262144");
        self.apply_overrides(&mut c);
        c
    }

    /// The consumer configuration: manual offset store and commit.
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Never see records of aborted or open transactions (librdkafka's default, stated:
            // direct producers may write the events topic transactionally).
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("max.poll.interval.ms", "300000")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string());
        self.apply_overrides(&mut c);
        c
    }
}

/// Topic names, derived from `LEADSTREAM_TOPIC_PREFIX` (default `leadstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub events: String,
    pub fired: String,
    pub retry: String,
    pub dlq: String,
    /// Input records the processor could not decode or apply.
    pub events_dlq: String,
}

impl Topics {
    pub fn from_prefix(prefix: &str) -> Topics {
        Topics {
            events: format!("{prefix}.events.v1"),
            fired: format!("{prefix}.triggers.fired.v1"),
            retry: format!("{prefix}.notifications.retry.v1"),
            dlq: format!("{prefix}.notifications.dlq.v1"),
            events_dlq: format!("{prefix}.events.dlq.v1"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error(
        "cannot create a Kafka client for {brokers} with the properties of \
         LEADSTREAM_KAFKA_CONFIG: {source}"
    )]
    Client {
        brokers: String,
        #[source]
        source: KafkaError,
    },
    /// The TLS handshake with the brokers failed (untrusted certificate, wrong host name).
    #[error(
        "cannot connect to the Kafka brokers at {brokers} over TLS: {reason}; set \
         ssl.ca.location in LEADSTREAM_KAFKA_CONFIG to the CA that signed the brokers' \
         certificates (and security.protocol to SSL or SASL_SSL)"
    )]
    Tls { brokers: String, reason: String },
    /// The brokers refused the SASL credentials.
    #[error(
        "the Kafka brokers at {brokers} refused the SASL credentials: {reason}; check \
         sasl.mechanism, sasl.username and sasl.password in LEADSTREAM_KAFKA_CONFIG"
    )]
    Authentication { brokers: String, reason: String },
    #[error("cannot create topic {topic} on {brokers}: {message}")]
    Topic {
        topic: String,
        brokers: String,
        message: String,
    },
}

/// Create the topics that are missing (existing ones are left alone). Fails with a clear message
/// if the brokers cannot be reached or refuse.
///
/// Topics that already exist are found in the cluster metadata first, so no `CreateTopics`
/// request is sent when every topic exists: clusters where operators create topics (no create
/// ACL) and `leadstream dev`'s embedded mock cluster (which does not implement `CreateTopics`;
/// dev creates its topics through the mock API) both work.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[&str],
    partitions: i32,
    replication: i32,
) -> Result<(), KafkaSetupError> {
    let mut cfg = settings.base();
    settings.apply_overrides(&mut cfg);
    let client_error = |source| KafkaSetupError::Client {
        brokers: settings.brokers.clone(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = cfg.create().map_err(client_error)?;
    let probe: BaseProducer<SetupContext> = cfg
        .create_with_context(SetupContext::default())
        .map_err(client_error)?;
    // All topics' metadata (asking for named topics could auto-create them on some brokers).
    // When it cannot be read because TLS or SASL failed, say so; otherwise fall through:
    // creating reports the problem precisely.
    let (probe, existing) = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let names = loop {
            if let Ok(md) = probe
                .client()
                .fetch_metadata(None, Duration::from_millis(500))
            {
                break Some(
                    md.topics()
                        .iter()
                        .map(|t| t.name().to_string())
                        .collect::<Vec<_>>(),
                );
            }
            // Serve the client's error events (TLS and SASL failures arrive as those).
            probe.poll(Duration::ZERO);
            if probe.context().failure().is_some() || std::time::Instant::now() >= deadline {
                break None;
            }
        };
        (probe, names)
    })
    .await
    .map_err(|e| KafkaSetupError::Topic {
        topic: topics.join(","),
        brokers: settings.brokers.clone(),
        message: format!("metadata task failed: {e}"),
    })?;
    if existing.is_none() {
        if let Some((code, reason)) = probe.context().failure() {
            let brokers = settings.brokers.clone();
            return Err(match code {
                RDKafkaErrorCode::Authentication => {
                    KafkaSetupError::Authentication { brokers, reason }
                }
                _ => KafkaSetupError::Tls { brokers, reason },
            });
        }
    }
    let existing = existing.unwrap_or_default();
    let topics: Vec<&str> = topics
        .iter()
        .copied()
        .filter(|t| !existing.iter().any(|e| e == t))
        .collect();
    if topics.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| KafkaSetupError::Topic {
            topic: topics.join(","),
            brokers: settings.brokers.clone(),
            message: e.to_string(),
        })?;
    for r in results {
        if let Err((topic, code)) = r {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(KafkaSetupError::Topic {
                    topic,
                    brokers: settings.brokers.clone(),
                    message: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The admin client's context during setup: remembers the first TLS or SASL failure librdkafka
/// reports, so a start that cannot connect says why.
#[derive(Default)]
struct SetupContext {
    failure: std::sync::Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl SetupContext {
    fn failure(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

impl rdkafka::producer::ProducerContext for SetupContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl rdkafka::client::ClientContext for SetupContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error during setup");
        let code = error.rdkafka_error_code();
        if let Some(code @ (RDKafkaErrorCode::SSL | RDKafkaErrorCode::Authentication)) = code {
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert((code, reason.to_string()));
            }
        }
    }
}

/// Where a published record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The local queue is full or the broker did not acknowledge in time: try again later (503).
    #[error("Kafka unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the record itself (too large, invalid): retrying will not help.
    #[error("Kafka refused the record: {0}")]
    Rejected(String),
}

impl PublishError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Unavailable(_))
    }
}

fn classify(e: KafkaError) -> PublishError {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize | C::InvalidMessage) => {
            PublishError::Rejected(e.to_string())
        }
        _ => PublishError::Unavailable(e.to_string()),
    }
}

/// Sends records and resolves once the broker acknowledged them (acks=all). Counts acks and
/// errors per topic ([`KafkaCounter::Produced`], [`KafkaCounter::ProduceErrors`]) and reports
/// librdkafka statistics. Clones share one producer.
///
/// It heals itself. librdkafka reconnects by itself when a broker comes back with its state, but
/// an idempotent producer can be left unusable: a fatal error (e.g. `ProducerFenced` answered
/// after its in-flight requests timed out during an outage, seen with the tansu broker frozen
/// for 6 s), or a producer id and sequence numbers a broker that came back *without* its state
/// no longer knows, so every send times out. So after a fatal error at once, and after
/// [`REPLACE_AFTER_FAILURES`] publishes in a row that all failed as retryable (and no more
/// often than every two message timeouts), the producer is replaced by a new one (a new
/// producer id; [`KafkaCounter::ProducerReplaced`]). Records still in the old one fail and are
/// retried by their callers (a request's client after its 503, the processor's and notifier's
/// retry loops), so nothing acknowledged is lost and nothing is written twice beyond what
/// idempotent ids absorb.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<PublisherInner>,
}

struct PublisherInner {
    settings: KafkaSettings,
    message_timeout: Duration,
    /// The producer in use and its generation (bumped by each replacement).
    current: RwLock<(u64, FutureProducer<StatsContext>)>,
    /// Publishes in a row that failed (retryable), for the producer of `current`.
    failures: AtomicU32,
    /// When the producer was last built; serialises replacements.
    built_at: Mutex<Instant>,
    counters: RwLock<HashMap<String, TopicCounters>>,
}

/// After this many publishes in a row that failed as retryable (a batch counts once), the
/// producer is replaced (see [`Publisher`]).
pub const REPLACE_AFTER_FAILURES: u32 = 3;

/// The counters of one topic, resolved once so a send does not build label sets.
#[derive(Clone)]
struct TopicCounters {
    acked: metrics::Counter,
    retryable: metrics::Counter,
    rejected: metrics::Counter,
}

impl TopicCounters {
    fn new(topic: &str) -> TopicCounters {
        let t = topic.to_string();
        TopicCounters {
            acked: metric::counter!(KafkaCounter::Produced, t.clone()),
            retryable: metric::counter!(KafkaCounter::ProduceErrors, t.clone(), "true"),
            rejected: metric::counter!(KafkaCounter::ProduceErrors, t, "false"),
        }
    }
}

impl Publisher {
    pub fn new(
        settings: &KafkaSettings,
        message_timeout: Duration,
    ) -> Result<Publisher, KafkaSetupError> {
        let producer = Self::build(settings, message_timeout)?;
        Ok(Publisher {
            inner: Arc::new(PublisherInner {
                settings: settings.clone(),
                message_timeout,
                current: RwLock::new((0, producer)),
                failures: AtomicU32::new(0),
                built_at: Mutex::new(Instant::now()),
                counters: RwLock::default(),
            }),
        })
    }

    fn build(
        settings: &KafkaSettings,
        message_timeout: Duration,
    ) -> Result<FutureProducer<StatsContext>, KafkaSetupError> {
        let mut cfg = settings.producer_config(message_timeout);
        settings
            .with_stats(&mut cfg)
            .create_with_context(StatsContext)
            .map_err(|source| KafkaSetupError::Client {
                brokers: settings.brokers.clone(),
                source,
            })
    }

    /// The producer in use now (a handle: librdkafka's producer is reference-counted).
    pub fn producer(&self) -> FutureProducer<StatsContext> {
        self.current().1
    }

    fn current(&self) -> (u64, FutureProducer<StatsContext>) {
        let cur = self
            .inner
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (cur.0, cur.1.clone())
    }

    /// How many times the producer was replaced so far.
    pub fn generation(&self) -> u64 {
        self.current().0
    }

    /// Account for one publish (a send or a batch) made with producer `generation`: any ack
    /// clears the failure count; a publish that only failed as retryable adds one, and the
    /// producer is replaced when it is fatally failed or the count reached
    /// [`REPLACE_AFTER_FAILURES`] (see [`Publisher`]).
    fn observe<'a>(
        &self,
        generation: u64,
        used: &FutureProducer<StatsContext>,
        results: impl IntoIterator<Item = &'a Result<Delivered, PublishError>>,
    ) {
        let (mut acked, mut retryable) = (false, false);
        for r in results {
            match r {
                Ok(_) => acked = true,
                Err(e) if e.is_retryable() => retryable = true,
                Err(_) => {}
            }
        }
        if acked {
            self.inner.failures.store(0, Ordering::Relaxed);
            return;
        }
        // Not counted: failures of a producer already replaced.
        if !retryable || self.generation() != generation {
            return;
        }
        let failures = self.inner.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let fatal = used.client().fatal_error();
        if fatal.is_none() && failures < REPLACE_AFTER_FAILURES {
            return;
        }
        let mut built_at = self
            .inner
            .built_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another publish of the same producer replaced it meanwhile.
        if self.generation() != generation {
            return;
        }
        if fatal.is_none() && built_at.elapsed() < self.inner.message_timeout * 2 {
            return;
        }
        let fresh = match Self::build(&self.inner.settings, self.inner.message_timeout) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build a new Kafka producer");
                return;
            }
        };
        let old = {
            let mut cur = self
                .inner
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::replace(&mut *cur, (generation + 1, fresh))
        };
        // The last handle's drop waits for the old queue: never on a runtime thread.
        std::thread::spawn(move || drop(old));
        *built_at = Instant::now();
        self.inner.failures.store(0, Ordering::Relaxed);
        metric::counter!(KafkaCounter::ProducerReplaced, fatal.is_some().to_string()).increment(1);
        tracing::warn!(
            ?fatal,
            failures,
            "replaced the Kafka producer: it failed fatally or every publish failed"
        );
    }

    fn counters(&self, topic: &str) -> TopicCounters {
        if let Some(c) = self
            .inner
            .counters
            .read()
            .ok()
            .and_then(|m| m.get(topic).cloned())
        {
            return c;
        }
        let c = TopicCounters::new(topic);
        if let Ok(mut m) = self.inner.counters.write() {
            m.insert(topic.to_string(), c.clone());
        }
        c
    }

    /// Enqueue a record and wait for the broker's acknowledgement. A full local queue fails at
    /// once (the caller answers 503) instead of waiting.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<Delivered, PublishError> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(headers.len());
            for (k, v) in headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            record = record.headers(h);
        }
        let counters = self.counters(topic);
        let (generation, producer) = self.current();
        let out = match producer.send_result(record) {
            Err((e, _)) => Err(classify(e)),
            Ok(future) => match future.await {
                Ok(Ok(d)) => Ok(Delivered {
                    partition: d.partition,
                    offset: d.offset,
                }),
                Ok(Err((e, _))) => Err(classify(e)),
                Err(_) => Err(PublishError::Unavailable("producer was dropped".into())),
            },
        };
        match &out {
            Ok(_) => counters.acked.increment(1),
            Err(e) if e.is_retryable() => counters.retryable.increment(1),
            Err(_) => counters.rejected.increment(1),
        }
        self.observe(generation, &producer, [&out]);
        out
    }

    /// Enqueue every record of a batch at once, then wait for their acknowledgements: one
    /// result per record, in order. The records share one set of headers (built once); a
    /// record not acknowledged by `deadline` is [`PublishError::Unavailable`]. Counters are
    /// added once per batch. This is the batch routes' path: no future, task or timer per
    /// record, and librdkafka sees the whole batch before its first linger expires.
    pub async fn send_all<'r>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (&'r str, &'r [u8])>,
        headers: &[(&str, &[u8])],
        deadline: tokio::time::Instant,
    ) -> Vec<Result<Delivered, PublishError>> {
        let shared = (!headers.is_empty()).then(|| {
            headers.iter().fold(
                OwnedHeaders::new_with_capacity(headers.len()),
                |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: Some(*v),
                    })
                },
            )
        });
        let (generation, producer) = self.current();
        let pending: Vec<_> = records
            .into_iter()
            .map(|(key, payload)| {
                let mut record = FutureRecord::to(topic).key(key).payload(payload);
                if let Some(h) = &shared {
                    record = record.headers(h.clone());
                }
                producer.send_result(record).map_err(|(e, _)| classify(e))
            })
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Err(e) => Err(e),
                Ok(future) => match tokio::time::timeout_at(deadline, future).await {
                    Ok(Ok(Ok(d))) => Ok(Delivered {
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Ok(Err((e, _)))) => Err(classify(e)),
                    Ok(Err(_)) => Err(PublishError::Unavailable("producer was dropped".into())),
                    Err(_) => Err(PublishError::Unavailable(
                        "no broker acknowledgement before the deadline".into(),
                    )),
                },
            });
        }
        let counters = self.counters(topic);
        let (mut acked, mut retryable, mut rejected) = (0, 0, 0);
        for r in &out {
            match r {
                Ok(_) => acked += 1,
                Err(e) if e.is_retryable() => retryable += 1,
                Err(_) => rejected += 1,
            }
        }
        counters.acked.increment(acked);
        counters.retryable.increment(retryable);
        counters.rejected.increment(rejected);
        self.observe(generation, &producer, &out);
        out
    }

    /// Wait until everything enqueued so far is acknowledged (shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer().flush(timeout).map_err(classify)
    }
}

/// The Java/librdkafka murmur2 partitioner (`murmur2_random` for keyed records): which
/// partition a key lands on among `partitions`. Used by tests and tools to predict placement.
pub fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    let h = murmur2(key) & 0x7fff_ffff;
    (h % partitions.max(1) as u32) as i32
}

/// Kafka's murmur2 (seed 0x9747b28c), as in the Java client.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(props: &[(&str, &str)]) -> KafkaSettings {
        let mut s = KafkaSettings::new("127.0.0.1:9093");
        for (k, v) in props {
            s.overrides.insert(k.to_string(), v.to_string());
        }
        s
    }

    /// No SASL broker runs here, so SASL is proven at the client level: librdkafka as built
    /// accepts TLS with each mechanism we document (it refuses a mechanism it lacks at creation,
    /// as it does GSSAPI), and the secrets stay out of `Debug`.
    #[test]
    fn tls_and_sasl_mechanisms_are_built_in() {
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let s = with(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "svc"),
                ("sasl.password", "pw-not-shown"),
            ]);
            let p: Result<FutureProducer, _> = s.producer_config(Duration::from_secs(1)).create();
            assert!(p.is_ok(), "{mechanism}: {:?}", p.err());
            assert!(!format!("{s:?}").contains("pw-not-shown"));
        }
        let s = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ]);
        let p: Result<FutureProducer, _> = s.producer_config(Duration::from_secs(1)).create();
        assert!(p.is_ok(), "OAUTHBEARER: {:?}", p.err());
        let s = with(&[("security.protocol", "SSL")]);
        let p: Result<FutureProducer, _> = s.producer_config(Duration::from_secs(1)).create();
        assert!(p.is_ok(), "SSL: {:?}", p.err());
        let s = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "GSSAPI"),
        ]);
        let p: Result<FutureProducer, _> = s.producer_config(Duration::from_secs(1)).create();
        assert!(p.is_err(), "GSSAPI is not built in");
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Vectors from Kafka's UtilsTest.testMurmur2 (as signed ints).
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }

    #[test]
    fn topics_follow_the_prefix() {
        let t = Topics::from_prefix("leadstream");
        assert_eq!(t.events, "leadstream.events.v1");
        assert_eq!(t.fired, "leadstream.triggers.fired.v1");
        assert_eq!(t.dlq, "leadstream.notifications.dlq.v1");
    }
}
