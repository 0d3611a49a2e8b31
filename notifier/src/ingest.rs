//! The consumer: reads the fired topic as a consumer group and turns each fired record into one
//! durable job per endpoint.
//!
//! Per polled batch: decode every record (one that cannot be decoded goes to the DLQ with the
//! reason), create the jobs that do not exist yet (idempotent on `(fired_id, endpoint)`), and only
//! then store and commit the offsets. So an offset is committed once the record's delivery state
//! is durable in the store — not when the delivery succeeded: retries continue from the store,
//! whoever owns the partition by then. A crash before the commit replays the batch, and the
//! replayed jobs are recognised as duplicates.
//!
//! Each job keeps the fired record's trace context (`traceparent` header); when traces are
//! exported a batch is one `ingest_batch` span, a child of its first traced record and linked to
//! the others.

use std::time::Duration;

use leadstream_shared::avro::{decode_fired, encode_dead_letter, DeadLetter};
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::{Publisher, StatsContext, Topics};
use leadstream_shared::metric;
use leadstream_shared::trace::{self, TraceContext};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::endpoint::Endpoint;
use crate::jobs::{Job, JobStore};
use crate::metrics::{NotifierCounter, NotifierGauge};
use crate::worker::Fresh;

/// Most records handled per batch.
const BATCH_MAX: usize = 500;
/// How long a batch waits for more records after the first one.
const BATCH_WAIT: Duration = Duration::from_millis(5);

pub struct Ingest {
    /// Built with [`leadstream_shared::kafka::KafkaSettings::consumer_config_with_stats`], so
    /// its lag and queues are reported as metrics.
    pub consumer: StreamConsumer<StatsContext>,
    pub jobs: JobStore,
    pub topics: Topics,
    pub publisher: Publisher,
    /// New jobs, handed to the dispatcher for an immediate first attempt.
    pub fresh: mpsc::Sender<Fresh>,
}

impl Ingest {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.consumer.subscribe(&[self.topics.fired.as_str()])?;
        tokio::spawn(watch_dlq_size(
            self.publisher.clone(),
            self.topics.dlq.clone(),
            shutdown.clone(),
        ));
        tracing::info!(topic = %self.topics.fired, "notifier consuming fired triggers");
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = self.consumer.recv() => m,
            };
            let mut batch = match first {
                Ok(msg) => vec![msg.detach()],
                Err(e) => {
                    tracing::warn!(error = %e, "fired topic: consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while batch.len() < BATCH_MAX {
                match tokio::time::timeout(BATCH_WAIT, self.consumer.recv()).await {
                    Ok(Ok(msg)) => batch.push(msg.detach()),
                    _ => break,
                }
            }
            if !self
                .handle(&batch, &shutdown)
                .instrument(batch_span(&batch))
                .await
            {
                break;
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is not an error worth more than a note.
            tracing::debug!(error = %e, "final offset commit");
        }
        Ok(())
    }

    /// Make the batch durable, then store and commit its offsets. `false` when shutdown came
    /// while the store was unreachable (nothing is committed then; the batch is replayed).
    async fn handle(&self, batch: &[OwnedMessage], shutdown: &CancellationToken) -> bool {
        let now = now_ms();
        let mut new_jobs = Vec::new();
        for msg in batch {
            metric::counter!(NotifierCounter::FiredConsumed).increment(1);
            let payload = msg.payload().unwrap_or_default();
            match decode_fired(payload) {
                Ok(f) => {
                    let context = TraceContext::from_headers(msg.headers());
                    for ep in Endpoint::all(&f.targets) {
                        let job = Job::new(&f, &ep, msg.partition(), msg.offset(), now);
                        new_jobs.push(job.with_trace(context.clone()));
                    }
                }
                Err(e) => {
                    if !self
                        .dead_letter(msg, &format!("undecodable fired record: {e}"), shutdown)
                        .await
                    {
                        return false;
                    }
                }
            }
        }
        let mut backoff = Duration::from_millis(100);
        let created = loop {
            match self.jobs.enqueue(&new_jobs, now).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record deliveries; retrying (offsets not committed)");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        for msg in batch {
            // librdkafka stores (and commits) `offset + 1` itself: passing the record's own
            // offset commits "next to read". Passing `offset + 1` skipped a record per partition.
            if let Err(e) = self
                .consumer
                .store_offset(msg.topic(), msg.partition(), msg.offset())
            {
                // The partition was revoked meanwhile: its new owner replays, idempotently.
                tracing::debug!(error = %e, "offset not stored");
            }
        }
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Async) {
            tracing::debug!(error = %e, "offset commit");
        }
        for (job, created) in new_jobs.into_iter().zip(created) {
            let ch = job.channel.as_str();
            if created {
                metric::counter!(NotifierCounter::DeliveriesCreated, ch).increment(1);
                let key = self.jobs.key_of(&job);
                // A full hand-off queue is fine: the poller finds the job in the due set.
                let _ = self.fresh.try_send(Fresh { key, job });
            } else {
                metric::counter!(NotifierCounter::DeliveriesDuplicate, ch).increment(1);
                tracing::debug!(fired_id = %job.fired.fired_id, endpoint = %job.endpoint_id, "already known; skipped");
            }
        }
        true
    }

    /// Send a record that cannot be handled to the DLQ, retrying until Kafka acknowledges.
    async fn dead_letter(
        &self,
        msg: &OwnedMessage,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> bool {
        tracing::warn!(
            partition = msg.partition(),
            offset = msg.offset(),
            reason,
            "fired record to the DLQ"
        );
        let letter = DeadLetter {
            reason: reason.to_string(),
            source_topic: msg.topic().to_string(),
            source_partition: msg.partition(),
            source_offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().unwrap_or_default().to_vec(),
            failed_at_ms: now_ms(),
            target: None,
            attempts: 0,
        };
        let Ok(bytes) = encode_dead_letter(&letter) else {
            return true;
        };
        let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
        loop {
            match self
                .publisher
                .send(&self.topics.dlq, &key, &bytes, &[])
                .await
            {
                Ok(_) => {
                    metric::counter!(NotifierCounter::Dlq, "none", "undecodable").increment(1);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DLQ unavailable; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }
}

/// The batch span (a disabled span when traces are not exported).
fn batch_span(batch: &[OwnedMessage]) -> tracing::Span {
    if !trace::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "ingest_batch",
        records = batch.len(),
        trace_id = tracing::field::Empty
    );
    trace::link_records(&span, batch);
    span
}

/// How often the DLQ topic's size is read.
const DLQ_SIZE_EVERY: Duration = Duration::from_secs(30);

/// Keep [`NotifierGauge::DlqMessages`] up to date: the records in the notifications DLQ topic
/// (high − low watermark over its partitions), read through the producer's connection every 30 s.
async fn watch_dlq_size(publisher: Publisher, topic: String, shutdown: CancellationToken) {
    use rdkafka::producer::Producer;
    let mut tick = tokio::time::interval(DLQ_SIZE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (p, t) = (publisher.clone(), topic.clone());
        let size = tokio::task::spawn_blocking(move || {
            let producer = p.producer();
            let client = producer.client();
            let timeout = Duration::from_secs(5);
            let md = client.fetch_metadata(Some(&t), timeout).ok()?;
            let partitions = md.topics().first()?.partitions().len() as i32;
            let mut total = 0i64;
            for partition in 0..partitions {
                let (low, high) = client.fetch_watermarks(&t, partition, timeout).ok()?;
                total += (high - low).max(0);
            }
            Some(total)
        })
        .await;
        match size {
            Ok(Some(n)) => metric::gauge!(NotifierGauge::DlqMessages).set(n as f64),
            _ => tracing::debug!(topic = %topic, "cannot read the DLQ topic's size"),
        }
    }
}
