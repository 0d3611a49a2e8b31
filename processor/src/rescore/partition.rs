//! One partition of one job: replay, then switch (rescore) or compare (preview). The steps
//! and why the switch loses and doubles nothing are in the module above.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use leadstream_domain::event::EngagementEvent;
use leadstream_domain::ids::OuId;
use leadstream_domain::lead::LeadRecord;
use leadstream_domain::rules::OuRules;
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::murmur2_partition;
use leadstream_shared::keys::PartitionKeys;
use leadstream_shared::store::offsets::respell;
use leadstream_shared::store::rescore::{Job, JobKind, PartitionProgress, Phase, FINISHED_TTL_MS};
use leadstream_shared::store::{Cmd, Guard, Reply, StoreError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::shadow::{ReplayRules, Shadow};
use super::{RunnerSettings, Shared};
use crate::decode::{decode, is_json, DecodeError, Position};
use crate::metrics::ProcessorCounter;
use crate::service::partition_count;
use leadstream_shared::metric;

/// How often progress is reported while replaying.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Records read per step (one alias resolution round trip at most).
const STEP: usize = 1000;
/// librdkafka's prefetch queue per replaying partition (KiB); fetches ask for at most a
/// quarter of it.
pub const PREFETCH_KIB: usize = 4096;
/// Lead states read per command at the switch.
const CHUNK: usize = 1000;
/// Switch attempts before the partition's replay starts over (the live engine kept writing
/// between our read of its offset and our write).
const SWITCH_ATTEMPTS: usize = 50;

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Other(String),
    /// The OU's configuration changed during the replay: start over with the new rules.
    #[error("the OU's configuration changed during the replay; starting over")]
    Restart,
}

/// Run one partition of `job` to its end, reporting progress; errors are reported and the
/// task ends (the runner starts it again at its next poll).
pub(super) async fn run(shared: Arc<Shared>, job: Job, p: i32) {
    loop {
        let mut progress = PartitionProgress {
            partition: p,
            phase: Some(Phase::Replaying),
            ..Default::default()
        };
        match one(&shared, &job, p, &mut progress).await {
            Ok(()) => return,
            Err(Error::Restart) => {
                metric::counter!(ProcessorCounter::ReplayRestarts).increment(1);
                tracing::info!(job = %job.id, partition = p, "rules changed during the replay; starting the partition over");
                continue;
            }
            Err(e) => {
                tracing::warn!(job = %job.id, partition = p, error = %e, "rescore partition failed; retrying");
                progress.error = Some(e.to_string());
                progress.updated_at_ms = now_ms();
                let _ = shared.jobs.report(&job.id, &progress).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                return;
            }
        }
    }
}

/// A record read from the partition, decoded.
struct Read {
    offset: i64,
    ts_ms: i64,
    /// `None`: nothing to apply here (another OU's record stays in, filtered by the shadow;
    /// this is for poison, lead-less and re-keyed records).
    event: Option<EngagementEvent>,
}

struct Reader {
    consumer: StreamConsumer,
    topic: String,
    p: i32,
    partitions: i32,
    /// Records read past the target offset, for the next step.
    pending: VecDeque<Read>,
    /// The last offset handed out.
    position: i64,
    /// The partition's oldest retained offset, and where the replay started.
    low: i64,
    start: i64,
}

impl Reader {
    /// Read and decode up to [`STEP`] records with offsets ≤ `target`; alias-only records are
    /// resolved (and dropped when their lead lives on another partition: the live processor
    /// re-produced them there), records not keyed to this partition are dropped (re-keyed).
    async fn step(&mut self, shared: &Shared, ou: &str, target: i64) -> Result<Vec<Read>, Error> {
        let mut out = Vec::new();
        while out.len() < STEP && self.position < target {
            if let Some(r) = self.pending.front() {
                if r.offset > target {
                    break;
                }
                let r = self.pending.pop_front().expect("front exists");
                self.position = r.offset;
                out.push(r);
                continue;
            }
            let m = if out.is_empty() {
                match tokio::time::timeout(Duration::from_secs(30), self.consumer.recv()).await {
                    Ok(m) => m?,
                    Err(_) => {
                        return Err(Error::Other(format!(
                            "no record of partition {} within 30 s while replaying up to offset {target} (at {})",
                            self.p, self.position
                        )))
                    }
                }
            } else {
                match self.consumer.recv().now_or_never() {
                    Some(m) => m?,
                    None => break,
                }
            };
            let pos = Position {
                topic: &self.topic,
                partition: self.p,
                offset: m.offset(),
            };
            let event = match decode(m.payload(), is_json(&m), &pos) {
                Ok(e) => {
                    let owned_here = e.lead_id.is_none()
                        || (m.key().is_some()
                            && murmur2_partition(e.kafka_key().as_bytes(), self.partitions)
                                == self.p);
                    owned_here.then_some(e)
                }
                Err(DecodeError::NoLead) => None,
                Err(_) => None,
            };
            let r = Read {
                offset: m.offset(),
                ts_ms: m.timestamp().to_millis().unwrap_or(0),
                event,
            };
            if r.offset <= self.position {
                continue;
            }
            if r.offset > target {
                self.pending.push_back(r);
                break;
            }
            self.position = r.offset;
            out.push(r);
        }
        // Alias-only events of the job's OU: resolve (the mappings exist: the live processor
        // made them), keep those whose lead lives here.
        let idx: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.event
                    .as_ref()
                    .is_some_and(|e| e.lead_id.is_none() && e.ou_id == ou)
            })
            .map(|(i, _)| i)
            .collect();
        if !idx.is_empty() {
            let aliases: Vec<_> = idx
                .iter()
                .map(|i| {
                    out[*i]
                        .event
                        .as_ref()
                        .map(|e| e.aliases.clone())
                        .unwrap_or_default()
                })
                .collect();
            let leads = shared.catalog.resolve_leads(ou, &aliases).await?;
            for (i, lead) in idx.into_iter().zip(leads) {
                if let Some(e) = out[i].event.as_mut() {
                    e.lead_id = Some(lead);
                    if murmur2_partition(e.kafka_key().as_bytes(), self.partitions) != self.p {
                        out[i].event = None;
                    }
                }
            }
        }
        Ok(out)
    }
}

async fn one(
    shared: &Shared,
    job: &Job,
    p: i32,
    progress: &mut PartitionProgress,
) -> Result<(), Error> {
    let s = &shared.settings;
    let pk = shared.keys.partition(&s.events_topic, p);
    if job.kind == JobKind::Rescore {
        let marker = exec1(
            shared,
            Cmd::Get {
                key: pk.rescored(&job.id),
            },
        )
        .await?;
        if let Some(b) = marker.into_bytes() {
            // Switched already (by this or an earlier owner); report what it did.
            let mut done: PartitionProgress =
                serde_json::from_slice(&b).map_err(|e| Error::Other(e.to_string()))?;
            done.phase = Some(Phase::Done);
            done.updated_at_ms = now_ms();
            shared.jobs.report(&job.id, &done).await?;
            return Ok(());
        }
    }
    let rules = load_rules(shared, job).await?;
    let Some(target) = applied(shared, &pk).await?.map(|(o, _)| o) else {
        // Nothing applied yet in this partition: no live state to rescore.
        progress.phase = Some(Phase::Done);
        progress.updated_at_ms = now_ms();
        if job.kind == JobKind::Preview {
            progress.preview = Some(Default::default());
        }
        shared.jobs.report(&job.id, progress).await?;
        return Ok(());
    };
    let mut reader = open(s, job, p, progress)?;
    let mut shadow = Shadow::new(
        &job.ou_id,
        job.since_ms,
        rules,
        job.fire_triggers,
        s.sequence_cap,
        s.dedupe_ttl.as_millis() as i64,
    );
    replay(shared, job, &mut reader, &mut shadow, target, progress).await?;
    match job.kind {
        JobKind::Preview => {
            let fields = shadow.fields(&live_leads(shared, &pk, &job.ou_id).await?);
            let live = live_states(shared, &pk, &fields).await?;
            let part = shadow.compare(&fields, &live, now_ms());
            progress.leads = part.leads;
            progress.scores_changed = part.leads - part.changes.get("0").copied().unwrap_or(0);
            progress.preview = Some(part);
            progress.phase = Some(Phase::Done);
            progress.updated_at_ms = now_ms();
            shared.jobs.report(&job.id, progress).await?;
            Ok(())
        }
        JobKind::Rescore => switch(shared, job, &pk, &mut reader, &mut shadow, progress).await,
    }
}

/// The OU's rules (with a preview's draft in place of the ruleset of its id) and the config
/// version they were read at.
async fn load_rules(shared: &Shared, job: &Job) -> Result<ReplayRules, Error> {
    let version = shared.catalog.config_version(&job.ou_id).await?;
    let mut docs = shared
        .catalog
        .scoring_documents(&[job.ou_id.as_str()])
        .await?
        .pop()
        .ok_or_else(|| Error::Other("no scoring documents answer".into()))?;
    if let Some(draft) = &job.draft {
        match docs.rulesets.iter_mut().find(|r| r.id == draft.id) {
            Some(r) => *r = draft.clone(),
            None => docs.rulesets.push(draft.clone()),
        }
    }
    Ok(ReplayRules {
        rules: OuRules::new(docs.rulesets, docs.triggers.clone(), docs.sequences),
        triggers: docs.triggers,
        version,
    })
}

/// The partition's applied offset and its stored bytes; `None` when nothing was applied.
async fn applied(shared: &Shared, pk: &PartitionKeys) -> Result<Option<(i64, Vec<u8>)>, Error> {
    let raw = exec1(shared, Cmd::Get { key: pk.applied() })
        .await?
        .into_bytes();
    Ok(raw.and_then(|raw| {
        let n = std::str::from_utf8(&raw).ok()?.parse::<i64>().ok()?;
        (n >= 0).then_some((n, raw))
    }))
}

/// A consumer assigned to the partition at `since` (or its oldest retained record).
fn open(
    s: &RunnerSettings,
    job: &Job,
    p: i32,
    progress: &mut PartitionProgress,
) -> Result<Reader, Error> {
    // A small prefetch queue: the replay reads a whole partition, and librdkafka would
    // otherwise buffer up to 64 MiB of it ahead of the shadow.
    let consumer: StreamConsumer = s
        .kafka
        .consumer_config(&format!("{}-rescore", s.group_id))
        .set("queued.max.messages.kbytes", PREFETCH_KIB.to_string())
        .set("fetch.message.max.bytes", (PREFETCH_KIB * 256).to_string())
        .set("fetch.max.bytes", (PREFETCH_KIB * 256).to_string())
        .create()?;
    let timeout = Duration::from_secs(10);
    let (low, _high) = consumer.fetch_watermarks(&s.events_topic, p, timeout)?;
    let partitions = partition_count(&consumer, &s.events_topic).ok_or_else(|| {
        Error::Other(format!(
            "cannot read the partition count of topic {}",
            s.events_topic
        ))
    })?;
    // From the oldest retained record, also with `since`: events before it are skipped by
    // their event time. (Seeking by timestamp first would save reading them, but an offset
    // found that way may lie inside a record batch, and a broker such as tansu then answers
    // with the batch after it, silently skipping records.)
    let start = low;
    // Without `since`, every record should be replayed: any deleted by retention are missing.
    progress.retention_gap = job.since_ms.is_none() && low > 0;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&s.events_topic, p, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    Ok(Reader {
        consumer,
        topic: s.events_topic.clone(),
        p,
        partitions,
        pending: VecDeque::new(),
        position: start - 1,
        low,
        start,
    })
}

/// Replay up to `target` into the shadow, reporting progress; stops with [`Error::Restart`]
/// when the OU's rules changed.
async fn replay(
    shared: &Shared,
    job: &Job,
    reader: &mut Reader,
    shadow: &mut Shadow,
    target: i64,
    progress: &mut PartitionProgress,
) -> Result<(), Error> {
    let mut reported = Instant::now();
    while reader.position < target {
        let step = reader.step(shared, &job.ou_id, target).await?;
        let kind = match job.kind {
            JobKind::Rescore => "rescore",
            JobKind::Preview => "preview",
        };
        metric::counter!(ProcessorCounter::ReplayRecords, kind).increment(step.len() as u64);
        for r in &step {
            progress.records_read += 1;
            progress.first_offset.get_or_insert(r.offset);
            progress.last_offset = Some(r.offset);
            if r.ts_ms > 0 {
                progress.covered_from_ms.get_or_insert(r.ts_ms);
                progress.covered_to_ms = Some(r.ts_ms);
            }
            if let Some(e) = &r.event {
                shadow.apply(r.ts_ms, e);
            }
        }
        if reported.elapsed() >= REPORT_EVERY {
            reported = Instant::now();
            note(shadow, progress);
            shared.jobs.report(&job.id, progress).await?;
            if shared.catalog.config_version(&job.ou_id).await? != shadow.version() {
                return Err(Error::Restart);
            }
        }
    }
    if let (Some(since), Some(from)) = (job.since_ms, progress.covered_from_ms) {
        // The replay had to start at the oldest retained record, which is newer than `since`:
        // the events between were deleted by retention.
        progress.retention_gap |= reader.low > 0 && reader.start == reader.low && from > since;
    }
    note(shadow, progress);
    Ok(())
}

fn note(shadow: &Shadow, progress: &mut PartitionProgress) {
    progress.events_applied = shadow.events_applied;
    progress.event_time_reached_ms = shadow.event_time_reached_ms;
    progress.updated_at_ms = now_ms();
}

/// The switch (see the module above): catch up with the live applied offset and write the
/// shadow in one write guarded by it; then send the rescore's firings.
async fn switch(
    shared: &Shared,
    job: &Job,
    pk: &PartitionKeys,
    reader: &mut Reader,
    shadow: &mut Shadow,
    progress: &mut PartitionProgress,
) -> Result<(), Error> {
    progress.phase = Some(Phase::Switching);
    shared.jobs.report(&job.id, progress).await?;
    // The OU's leads the partition holds, scanned once: a lead that gets its first state
    // after the scan got it from an event the shadow replays before the switch.
    let scanned = live_leads(shared, pk, &job.ou_id).await?;
    for attempt in 0..SWITCH_ATTEMPTS {
        let Some((target, raw)) = applied(shared, pk).await? else {
            return Err(Error::Other(
                "the partition's applied offset disappeared".into(),
            ));
        };
        replay(shared, job, reader, shadow, target, progress).await?;
        if shared.catalog.config_version(&job.ou_id).await? != shadow.version() {
            return Err(Error::Restart);
        }
        let fields = shadow.fields(&scanned);
        let live = live_states(shared, pk, &fields).await?;
        let now = now_ms();
        let fire_for = job.fire_triggers.then_some(job.id.as_str());
        let out = shadow.switch(&fields, &live, fire_for, now);
        let mut done = progress.clone();
        done.phase = Some(Phase::Done);
        done.leads = out.states.len() as u64;
        done.scores_changed = out.scores_changed;
        done.fired = out.fired.len() as u64;
        done.switched_at_offset = Some(target);
        done.updated_at_ms = now;
        let mut states = Vec::with_capacity(out.states.len());
        for (f, rec) in &out.states {
            states.push((f.clone(), rec.encode().map_err(Error::Other)?));
        }
        let mut cmds = Vec::new();
        if !states.is_empty() {
            cmds.push(Cmd::HSetMany {
                key: pk.leads(),
                pairs: states,
            });
        }
        let mut outbox = Vec::new();
        for f in &out.fired {
            let avro = leadstream_shared::avro::encode_fired(f)
                .map_err(|e| Error::Other(e.to_string()))?;
            outbox.push((f.fired_id.clone(), avro));
        }
        if !outbox.is_empty() {
            cmds.push(Cmd::HSetMany {
                key: pk.outbox(),
                pairs: outbox,
            });
        }
        if !cmds.is_empty() {
            // Lead states change outside the live engine: make it drop what it cached.
            cmds.push(Cmd::Set {
                key: pk.applied(),
                value: respell(&raw),
                ttl_ms: None,
            });
        }
        cmds.push(Cmd::Set {
            key: pk.rescored(&job.id),
            value: serde_json::to_vec(&done).map_err(|e| Error::Other(e.to_string()))?,
            ttl_ms: Some(FINISHED_TTL_MS),
        });
        let guard = Guard::Equals(pk.applied(), raw);
        if shared.kv.exec_guarded(vec![guard], cmds).await?.is_none() {
            metric::counter!(ProcessorCounter::RescoreSwitchRetries).increment(1);
            tracing::debug!(job = %job.id, partition = progress.partition, attempt, "live engine wrote meanwhile; catching up again");
            continue;
        }
        tracing::info!(
            job = %job.id, ou = %job.ou_id, partition = progress.partition, at_offset = target,
            leads = done.leads, scores_changed = done.scores_changed, fired = done.fired,
            "rescore switched the partition's leads"
        );
        *progress = done;
        metric::counter!(ProcessorCounter::RescoreSwitches).increment(1);
        if !out.fired.is_empty() {
            publish(shared, pk, &out.fired).await;
        }
        shared.jobs.report(&job.id, progress).await?;
        return Ok(());
    }
    Err(Error::Other(format!(
        "the live processor wrote between every one of {SWITCH_ATTEMPTS} switch attempts"
    )))
}

/// Produce the rescore's firings, record them in the history and clear them from the outbox.
/// On failure they stay in the outbox, which the live processor produces (deterministic ids).
async fn publish(
    shared: &Shared,
    pk: &PartitionKeys,
    fired: &[leadstream_domain::fired::TriggerFired],
) {
    let s = &shared.settings;
    for f in fired {
        let Ok(bytes) = leadstream_shared::avro::encode_fired(f) else {
            continue;
        };
        if let Err(e) = shared
            .publisher
            .send(&s.fired_topic, &f.kafka_key(), &bytes, &[])
            .await
        {
            tracing::warn!(error = %e, "rescore firings stay in the outbox for the live processor");
            return;
        }
    }
    if let Err(e) = shared.histories.record(fired.iter(), s.history_cap).await {
        tracing::warn!(error = %e, "rescore firings stay in the outbox for the live processor");
        return;
    }
    let clear = fired
        .iter()
        .map(|f| Cmd::HDel {
            key: pk.outbox(),
            field: f.fired_id.clone(),
        })
        .collect();
    if let Err(e) = shared.kv.exec(clear).await {
        tracing::warn!(error = %e, "could not clear the rescore's outbox entries (they are produced again, delivered once)");
    }
}

/// The lead fields of every lead of the OU the partition holds (`HSCAN` by prefix).
async fn live_leads(shared: &Shared, pk: &PartitionKeys, ou: &str) -> Result<Vec<String>, Error> {
    let prefix = PartitionKeys::lead_field_prefix(OuId(ou));
    let mut cursor = 0u64;
    let mut live = Vec::new();
    loop {
        let reply = exec1(
            shared,
            Cmd::HScanPrefix {
                key: pk.leads(),
                cursor,
                prefix: prefix.clone(),
                count: 1000,
            },
        )
        .await?;
        let mut parts = reply.into_array().into_iter();
        let next = parts
            .next()
            .and_then(Reply::into_bytes)
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        for f in parts.next().map(Reply::into_array).unwrap_or_default() {
            if let Some(b) = f.into_bytes() {
                live.push(String::from_utf8_lossy(&b).into_owned());
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(live)
}

/// The live states of `fields` (`None`: absent or unreadable), in one pipeline.
async fn live_states(
    shared: &Shared,
    pk: &PartitionKeys,
    fields: &[String],
) -> Result<Vec<Option<LeadRecord>>, Error> {
    let cmds: Vec<Cmd> = fields
        .chunks(CHUNK)
        .map(|c| Cmd::HMGet {
            key: pk.leads(),
            fields: c.to_vec(),
        })
        .collect();
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let replies = shared.kv.exec(cmds).await?;
    Ok(replies
        .into_iter()
        .flat_map(Reply::into_array)
        .map(|r| r.into_bytes().and_then(|b| LeadRecord::decode(&b).ok()))
        .collect())
}

async fn exec1(shared: &Shared, cmd: Cmd) -> Result<Reply, StoreError> {
    leadstream_shared::store::exec_one(&*shared.kv, cmd).await
}
