//! Offsets: where each partition resumes and what gets committed.
//!
//! Redis is the source of truth for progress: the engine writes each partition's *applied
//! offset* atomically with the state it produced. On every assignment the consumer seeks each
//! partition right after it ([`Processor::resume_from_applied`]); it commits only offsets it
//! recorded as durable itself ([`Ctx`], never librdkafka's consumed position); and it refuses to
//! apply a record that does not continue a partition contiguously ([`Processor::contiguous`]).
//! Offsets a consumer never sees (transaction markers, aborted transactions, compaction) are
//! stepped over at once; the test broker's quirk has its own switch (see [`contiguity`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use leadstream_shared::metric;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::contiguity::{self, Decision};
use super::{retry, Processor};
use crate::metrics::ProcessorCounter;

/// Tracks, per partition, the next offset whose every effect is durable, and commits exactly
/// those offsets (never librdkafka's consumed position, which can run ahead of durable work).
/// Also marks assignment changes so the loop drains the new partitions' outboxes.
pub(super) struct Ctx {
    pub(super) topic: String,
    pub(super) assignment_changed: AtomicBool,
    pub(super) durable: Mutex<HashMap<i32, i64>>,
}

impl Ctx {
    pub(super) fn durable_list(&self, only: Option<&[i32]>) -> TopicPartitionList {
        let durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        let mut tpl = TopicPartitionList::new();
        for (p, o) in durable.iter() {
            if only.is_none_or(|ps| ps.contains(p)) {
                let _ = tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*o));
            }
        }
        tpl
    }
}

impl ClientContext for Ctx {
    /// librdkafka statistics (consumer lag per partition, queues, broker RTT) as metrics.
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        leadstream_shared::kafka::stats::record(&statistics);
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            // Rebalances run inside poll, between batches: what is recorded as durable is all
            // there is. Commit it before the partitions move, then forget them.
            let parts: Vec<i32> = revoked.elements().iter().map(|e| e.partition()).collect();
            let tpl = self.durable_list(Some(&parts));
            if tpl.count() > 0 {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                    tracing::warn!(error = %e, "commit on revoke failed; the new owner skips what was applied");
                }
            }
            let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
            durable.retain(|p, _| !parts.contains(p));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions assigned");
        }
        self.assignment_changed.store(true, Ordering::SeqCst);
    }
}

impl Processor {
    /// Keep the records that continue each partition where its durable state ends, and those
    /// after a gap that does not exist for consumers (see [`contiguity`]). With the test-broker
    /// quirk switch on, a record beyond the expected offset is dropped with the rest of its
    /// partition in this batch and the partition sought back instead.
    pub(super) async fn contiguous<'a>(
        &self,
        batch: Vec<BorrowedMessage<'a>>,
    ) -> Vec<BorrowedMessage<'a>> {
        let expected: HashMap<i32, i64> = self
            .consumer
            .context()
            .durable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut next = expected.clone();
        let mut stale: HashMap<i32, i64> = HashMap::new();
        let mut keep = Vec::with_capacity(batch.len());
        let quirks = self.cfg.common.kafka.test_broker_quirks;
        for m in batch {
            let p = m.partition();
            if stale.contains_key(&p) {
                continue;
            }
            let exp = next.get(&p).copied();
            let tries = match exp {
                Some(e) if m.offset() > e && quirks => {
                    let gaps = self.gaps.lock().unwrap_or_else(|e| e.into_inner());
                    gaps.get(&(p, e)).copied().unwrap_or(0)
                }
                _ => 0,
            };
            match contiguity::decide(exp, m.offset(), quirks, tries) {
                Decision::Apply => {}
                Decision::ApplyAfterGap { skipped } => {
                    let exp = exp.unwrap_or_default();
                    metric::counter!(ProcessorCounter::SkippedOffsets, "gap")
                        .increment(skipped as u64);
                    self.gaps
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(p, exp));
                    if quirks {
                        tracing::error!(
                            partition = p,
                            expected = exp,
                            got = m.offset(),
                            "offsets missing from the topic; continuing after the gap"
                        );
                    } else if skipped == 1 {
                        // One transaction marker: ordinary, after every transaction.
                        tracing::debug!(
                            partition = p,
                            expected = exp,
                            got = m.offset(),
                            "one offset absent for consumers (transaction marker); continuing"
                        );
                    } else {
                        // An aborted transaction, compaction, or retention that deleted records
                        // before they were read: said once per gap.
                        tracing::info!(partition = p, expected = exp, got = m.offset(), skipped, "offsets absent for consumers (aborted transaction, compaction or retention); continuing after them");
                    }
                }
                Decision::SeekBack => {
                    let exp = exp.unwrap_or_default();
                    *self
                        .gaps
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry((p, exp))
                        .or_insert(0) += 1;
                    stale.insert(p, exp);
                    continue;
                }
            }
            next.insert(p, m.offset() + 1);
            keep.push(m);
        }
        let topic = &self.cfg.common.topics.events;
        for (p, exp) in stale {
            tracing::debug!(
                partition = p,
                expected = exp,
                "record beyond the durable position: seeking back (test-broker quirk)"
            );
            metric::counter!(ProcessorCounter::SeekBacks).increment(1);
            let mut tpl = TopicPartitionList::new();
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(exp));
            if let Err(e) = self.consumer.seek_partitions(tpl, Duration::from_secs(5)) {
                tracing::warn!(partition = p, error = %e, "seek back failed; will retry");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        keep
    }

    /// Position every assigned partition right after its applied offset in Redis, the source of
    /// truth (written atomically with the state). Kafka's committed offset is only where a
    /// partition that was never applied starts, and a lag signal; it is not trusted to be behind
    /// the applied state. Returns false on shutdown.
    pub(super) async fn resume_from_applied(&self, shutdown: &CancellationToken) -> bool {
        let Ok(tpl) = self.consumer.assignment() else {
            return true;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        drop(tpl);
        if partitions.is_empty() {
            return true;
        }
        self.engine.forget_partitions();
        let Some(applied) = retry(shutdown, "read applied offsets", || {
            self.engine.applied_offsets(&partitions)
        })
        .await
        else {
            return false;
        };
        let topic = &self.cfg.common.topics.events;
        for p in &partitions {
            let applied = applied.get(p).copied().flatten();
            // Nothing applied from this partition yet: start at its beginning (as
            // auto.offset.reset=earliest would), so records dropped at the rebalance come back.
            let (target, next) = match applied {
                Some(a) => (Offset::Offset(a + 1), Some(a + 1)),
                None => (Offset::Beginning, None),
            };
            let mut tpl = TopicPartitionList::new();
            let _ = tpl.add_partition_offset(topic, *p, target);
            // Seeking needs the partition's fetcher to be set up, which follows the assignment
            // shortly: retry briefly.
            let mut done = false;
            for _ in 0..50 {
                match self
                    .consumer
                    .seek_partitions(tpl.clone(), Duration::from_secs(5))
                {
                    Ok(res) if res.elements().iter().all(|e| e.error().is_ok()) => {
                        done = true;
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            if done {
                tracing::info!(partition = p, offset = ?next, "resumed after the applied offset");
            } else {
                tracing::error!(
                    partition = p,
                    "could not seek to the applied offset; relying on the committed offset"
                );
            }
            let mut durable = self
                .consumer
                .context()
                .durable
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match next {
                Some(n) => durable.insert(*p, n),
                None => durable.remove(p),
            };
        }
        true
    }

    /// Record the batch as durable and commit those offsets (async; a lost commit only means
    /// a replay that the applied offsets skip).
    pub(super) fn commit_durable(&self, batch: &[BorrowedMessage<'_>]) {
        let mut parts = Vec::new();
        {
            let mut durable = self
                .consumer
                .context()
                .durable
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for m in batch {
                let next = m.offset() + 1;
                let e = durable.entry(m.partition()).or_insert(next);
                *e = (*e).max(next);
                parts.push(m.partition());
            }
        }
        parts.sort_unstable();
        parts.dedup();
        let tpl = self.consumer.context().durable_list(Some(&parts));
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "async commit");
        }
    }
}
