//! The processor service: a consumer-group member that turns polled batches of events into lead
//! state and firings, and commits offsets only after every effect is durable.
//!
//! Per batch: decode (poison records go to the events DLQ with the reason) → resolve alias-only
//! records, re-producing those whose lead belongs to another partition (and keyless records,
//! keyed by their lead) → [`Engine::apply`]
//! (state, dedupe and the outbox, atomically) → produce the outbox to the fired topic and wait
//! for the acks → record the firings in the history and clear the outbox → commit the offsets
//! (explicitly: see [`Ctx`]).
//! When partitions are assigned, their outboxes are produced first (firings a crashed owner
//! recorded but never got acknowledged). On SIGTERM: finish the batch, commit, leave the group.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use futures::future::BoxFuture;
use futures::FutureExt;
use leadstream_domain::fired::TriggerFired;
use leadstream_shared::avro::{encode_dead_letter, encode_event, DeadLetter};
use leadstream_shared::catalog::Catalog;
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::{ensure_topics, murmur2_partition, Publisher};
use leadstream_shared::metric;
use leadstream_shared::store::{self, Cmd, Store};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::ProcessorConfig;
use crate::decode::{decode, is_json, DecodeError, Position};
use crate::engine::{Engine, EngineError, EngineSettings, Input};
use crate::metrics::{ProcessorCounter, ProcessorHistogram};
use crate::rescore;

mod contiguity;
pub(crate) mod observe;
mod offsets;
use leadstream_shared::trace::TraceContext;
use observe as m;
use offsets::Ctx;

pub struct Processor {
    cfg: ProcessorConfig,
    consumer: StreamConsumer<Ctx>,
    publisher: Publisher,
    engine: Engine,
    catalog: Catalog,
    kv: Store,
    partitions: i32,
    /// The partitions this processor owns, for the rescore runner.
    owned: rescore::Owned,
    /// How often a gap at (partition, expected offset) was met; see [`Processor::contiguous`].
    gaps: Mutex<HashMap<(i32, i64), u32>>,
}

/// Run until `shutdown` is cancelled.
pub async fn run(cfg: ProcessorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let p = Processor::start(cfg, None).await?;
    p.run(shutdown).await
}

impl Processor {
    /// Connect, create missing topics, subscribe. `kv` overrides the configured store (dev mode).
    pub async fn start(cfg: ProcessorConfig, kv: Option<Store>) -> anyhow::Result<Processor> {
        let c = &cfg.common;
        let kv = match kv {
            Some(kv) => kv,
            None => c.open_store().await?,
        };
        let t = &c.topics;
        ensure_topics(
            &c.kafka,
            &[&t.events, &t.fired, &t.events_dlq],
            c.partitions,
            c.replication_factor,
        )
        .await?;
        let consumer: StreamConsumer<Ctx> = c
            .kafka
            .consumer_config_with_stats(&cfg.group_id)
            .create_with_context(Ctx {
                topic: t.events.clone(),
                assignment_changed: AtomicBool::new(false),
                durable: Mutex::new(HashMap::new()),
            })?;
        consumer.subscribe(&[&t.events])?;
        let publisher = Publisher::new(&c.kafka, cfg.produce_timeout)?;
        let partitions = partition_count(&consumer, &t.events).unwrap_or(c.partitions);
        let keys = c.keys();
        let engine = Engine::new(
            kv.clone(),
            keys.clone(),
            EngineSettings {
                topic: t.events.clone(),
                dedupe_ttl: cfg.dedupe_ttl,
                sequence_cap: cfg.sequence_cap,
                history_cap: cfg.history_cap,
                cached_leads: cfg.cached_leads,
            },
        );
        tracing::info!(group = %cfg.group_id, topic = %t.events, partitions, "processor started");
        Ok(Processor {
            catalog: Catalog::new(kv.clone(), keys),
            cfg,
            consumer,
            publisher,
            engine,
            kv,
            partitions,
            owned: Default::default(),
            gaps: Mutex::new(HashMap::new()),
        })
    }

    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let runner = self.rescore_runner();
        let runner_stop = shutdown.child_token();
        let runner = tokio::spawn(runner.run(runner_stop.clone()));
        let out = self.consume(&shutdown).await;
        runner_stop.cancel();
        let _ = runner.await;
        out
    }

    /// The rescore and preview jobs' runner (see [`crate::rescore`]), sharing this processor's
    /// store, publisher and view of its owned partitions.
    fn rescore_runner(&self) -> rescore::Runner {
        let c = &self.cfg.common;
        rescore::Runner::new(
            self.kv.clone(),
            c.keys(),
            self.publisher.clone(),
            rescore::RunnerSettings {
                kafka: c.kafka.clone(),
                events_topic: c.topics.events.clone(),
                fired_topic: c.topics.fired.clone(),
                group_id: self.cfg.group_id.clone(),
                dedupe_ttl: self.cfg.dedupe_ttl,
                sequence_cap: self.cfg.sequence_cap,
                history_cap: self.cfg.history_cap,
                poll: Duration::from_secs(1),
            },
            self.owned.clone(),
        )
    }

    /// The consumer loop.
    async fn consume(&mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let shutdown = shutdown.clone();
        loop {
            if self
                .consumer
                .context()
                .assignment_changed
                .swap(false, Ordering::SeqCst)
            {
                if let Some(n) = partition_count(&self.consumer, &self.cfg.common.topics.events) {
                    self.partitions = n;
                }
                if !self.resume_from_applied(&shutdown).await {
                    break;
                }
                self.note_owned();
                self.drain_outboxes(&shutdown).await;
            }
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = self.consumer.recv() => m,
            };
            let first = match first {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < self.cfg.max_batch {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(m),
                    _ => break,
                }
            }
            if self
                .consumer
                .context()
                .assignment_changed
                .load(Ordering::SeqCst)
            {
                // The assignment changed while polling: these records may come from a position
                // that is not where our applied state ends. Drop them unprocessed; the loop
                // repositions every partition and fetches them again.
                continue;
            }
            let batch = self.contiguous(batch).await;
            if batch.is_empty() {
                continue;
            }
            let span = m::batch_span(&batch);
            self.handle(&batch, &shutdown).instrument(span).await;
            if shutdown.is_cancelled() {
                break;
            }
        }
        let tpl = self.consumer.context().durable_list(None);
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!(error = %e, "final commit failed; the next owner skips what was applied");
            }
        }
        self.consumer.unsubscribe();
        let _ = self.publisher.flush(Duration::from_secs(5));
        tracing::info!("processor stopped");
        Ok(())
    }

    /// Tell the rescore runner which partitions this processor owns now.
    fn note_owned(&self) {
        let owned = match self.consumer.assignment() {
            Ok(tpl) => tpl.elements().iter().map(|e| e.partition()).collect(),
            Err(_) => Default::default(),
        };
        *self.owned.lock().unwrap_or_else(|p| p.into_inner()) = rescore::Ownership {
            partitions: owned,
            of_topic: self.partitions,
        };
    }

    /// Everything for one polled batch; returns once its offsets are stored (or shutdown).
    async fn handle(&self, batch: &[BorrowedMessage<'_>], shutdown: &CancellationToken) {
        let topic = self.cfg.common.topics.events.as_str();
        let mut inputs = Vec::with_capacity(batch.len());
        let mut side_effects = Vec::new();
        let mut unresolved: BTreeMap<String, Vec<Input>> = BTreeMap::new();
        for m in batch {
            let pos = Position {
                topic,
                partition: m.partition(),
                offset: m.offset(),
            };
            match decode(m.payload(), is_json(m), &pos) {
                Ok(event) => {
                    let input = Input {
                        partition: m.partition(),
                        offset: m.offset(),
                        event,
                    };
                    if input.event.lead_id.is_none() {
                        unresolved
                            .entry(input.event.ou_id.clone())
                            .or_default()
                            .push(input);
                    } else if m.key().is_none()
                        || murmur2_partition(input.event.kafka_key().as_bytes(), self.partitions)
                            != input.partition
                    {
                        // A keyless record, or one keyed or partitioned otherwise than the
                        // gateway does (`{ou}:{lead}`, murmur2), lands on a partition that does
                        // not own its lead: applied here, the lead would have two owners and its
                        // state would not be where readers look. Re-keyed, it reaches the lead's
                        // partition.
                        let context = TraceContext::from_headers(m.headers());
                        side_effects.push(self.rekey(input.event, context));
                    } else {
                        inputs.push(input);
                    }
                }
                Err(DecodeError::NoLead) => {
                    // Valid, and stored (seed 001 names no lead): nothing here to score.
                    tracing::debug!(
                        partition = m.partition(),
                        offset = m.offset(),
                        "event without a lead skipped"
                    );
                }
                Err(e) => {
                    metric::counter!(ProcessorCounter::Poison).increment(1);
                    tracing::warn!(partition = m.partition(), offset = m.offset(), error = %e, "poison record sent to the DLQ");
                    side_effects.push(self.dead_letter(m, &e.to_string()));
                }
            }
        }
        // Alias-only records: resolve; those owned by another partition are re-keyed.
        for (ou, group) in unresolved {
            let aliases: Vec<_> = group.iter().map(|i| i.event.aliases.clone()).collect();
            let leads = retry(shutdown, "resolve aliases", || {
                self.catalog.resolve_leads(&ou, &aliases)
            })
            .await;
            let Some(leads) = leads else { return };
            for (mut input, lead) in group.into_iter().zip(leads) {
                input.event.lead_id = Some(lead);
                let key = input.event.kafka_key();
                if murmur2_partition(key.as_bytes(), self.partitions) == input.partition {
                    inputs.push(input);
                } else {
                    let context = m::record_context(batch, input.partition, input.offset);
                    side_effects.push(self.rekey(input.event, context));
                }
            }
        }
        if !side_effects.is_empty() {
            // Re-keyed and dead-lettered records must be acknowledged before offsets move.
            for r in join_all(side_effects).await {
                if let Err(e) = r {
                    tracing::error!(error = %e, "could not produce a re-keyed or dead-letter record; will retry the batch");
                    return;
                }
            }
        }
        inputs.sort_by_key(|i| (i.partition, i.offset));
        let mut delay = Duration::from_millis(50);
        let applied = loop {
            match self.engine.apply(&inputs).await {
                Ok(a) => break a,
                Err(EngineError::Rewound(partitions)) => {
                    // Redis lost the newest writes of these partitions (a failover): state and
                    // applied offset went back together, so reading again from the stored
                    // offset recomputes exactly what was lost. The firings recomputed carry the
                    // same ids, so none is delivered twice.
                    metric::counter!(ProcessorCounter::RewoundPartitions)
                        .increment(partitions.len() as u64);
                    self.resume_from_applied(shutdown).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "apply batch failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        metric::counter!(ProcessorCounter::Events).increment(applied.applied as u64);
        metric::counter!(ProcessorCounter::Duplicates).increment(applied.duplicates as u64);
        metric::histogram!(ProcessorHistogram::BatchRecords).record(batch.len() as f64);
        m::record_latency(&inputs, now_ms());
        if !applied.fired.is_empty() {
            let (contexts, _fire_spans) = m::fired_contexts(batch, &inputs, &applied.fired);
            if self
                .publish_fired(&applied.fired, &contexts, shutdown)
                .await
                .is_none()
            {
                return;
            }
        }
        self.commit_durable(batch);
    }

    /// Produce firings (with the trace context of the event that fired each, when known) and
    /// clear them from the outbox once acknowledged.
    async fn publish_fired(
        &self,
        fired: &[(i32, TriggerFired)],
        contexts: &[Option<TraceContext>],
        shutdown: &CancellationToken,
    ) -> Option<()> {
        let topic = &self.cfg.common.topics.fired;
        type Encoded<'a> = (
            i32,
            &'a TriggerFired,
            String,
            Vec<u8>,
            Vec<(&'a str, &'a [u8])>,
        );
        let encoded: Vec<Encoded<'_>> = fired
            .iter()
            .enumerate()
            .filter_map(|(i, (p, f))| {
                let bytes = leadstream_shared::avro::encode_fired(f).ok()?;
                let headers = contexts
                    .get(i)
                    .and_then(Option::as_ref)
                    .map(TraceContext::headers)
                    .unwrap_or_default();
                Some((*p, f, f.kafka_key(), bytes, headers))
            })
            .collect();
        retry(shutdown, "produce fired records", || async {
            let sends = encoded
                .iter()
                .map(|(_, _, key, bytes, h)| self.publisher.send(topic, key, bytes, h));
            for r in join_all(sends).await {
                r?;
            }
            Ok::<_, leadstream_shared::kafka::PublishError>(())
        })
        .await?;
        for (_, f, _, _, _) in &encoded {
            metric::counter!(ProcessorCounter::Fired, f.kind.as_str()).increment(1);
        }
        retry(
            shutdown,
            "record firings in the history and clear the outbox",
            || self.engine.published(fired),
        )
        .await
    }

    /// Produce what crashed owners left in the outboxes of our partitions.
    async fn drain_outboxes(&self, shutdown: &CancellationToken) {
        let Ok(tpl) = self.consumer.assignment() else {
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        drop(tpl);
        for p in partitions {
            let Some(fired) = retry(shutdown, "read outbox", || self.engine.outbox(p)).await else {
                return;
            };
            if !fired.is_empty() {
                tracing::info!(
                    partition = p,
                    count = fired.len(),
                    "producing firings left in the outbox"
                );
                if self.publish_fired(&fired, &[], shutdown).await.is_none() {
                    return;
                }
            }
        }
    }

    fn rekey(
        &self,
        event: leadstream_domain::event::EngagementEvent,
        context: Option<TraceContext>,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        async move {
            let bytes = encode_event(&event)?;
            let headers = context.as_ref().map(TraceContext::headers);
            self.publisher
                .send(
                    &self.cfg.common.topics.events,
                    &event.kafka_key(),
                    &bytes,
                    headers.as_deref().unwrap_or_default(),
                )
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        reason: &str,
    ) -> BoxFuture<'_, anyhow::Result<()>> {
        let d = DeadLetter {
            reason: reason.to_string(),
            source_topic: m.topic().to_string(),
            source_partition: m.partition(),
            source_offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
            failed_at_ms: now_ms(),
            target: None,
            attempts: 0,
        };
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        // The applied offset in Redis covers applied records only, so a poison record with
        // nothing applied after it on its partition is read again after a restart or rebalance.
        // This mark, written once its dead letter was acknowledged, keeps it from being sent twice.
        let mark = self.cfg.common.keys().dead_lettered(
            &d.source_topic,
            d.source_partition,
            d.source_offset,
        );
        async move {
            let sent = store::exec_one(&*self.kv, Cmd::Exists { key: mark.clone() }).await?;
            if sent.as_int() == 1 {
                return Ok(());
            }
            let bytes = encode_dead_letter(&d)?;
            self.publisher
                .send(&self.cfg.common.topics.events_dlq, &key, &bytes, &[])
                .await?;
            let ttl_ms = Some(self.cfg.dedupe_ttl.as_millis() as u64);
            let value = b"1".to_vec();
            store::exec_one(
                &*self.kv,
                Cmd::Set {
                    key: mark,
                    value,
                    ttl_ms,
                },
            )
            .await?;
            metric::counter!(ProcessorCounter::EventsDlq).increment(1);
            Ok(())
        }
        .boxed()
    }
}

/// The topic's partition count, from the broker's metadata.
pub(crate) fn partition_count<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> Option<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let n = md.topics().first()?.partitions().len() as i32;
    (n > 0).then_some(n)
}

/// Retry an operation with capped exponential backoff until it succeeds or shutdown begins
/// (`None`). Used where giving up would lose work: Redis or Kafka being briefly unavailable
/// pauses processing instead of skipping records.
async fn retry<T, E, F, Fut>(shutdown: &CancellationToken, what: &str, mut f: F) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// For tests and `dev`: run with an explicit store.
pub async fn run_with_store(
    cfg: ProcessorConfig,
    kv: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let p = Processor::start(cfg, Some(kv)).await?;
    p.run(shutdown).await
}
