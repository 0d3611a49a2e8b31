//! The batch engine: a polled batch of events in, lead state and firings out.
//!
//! Everything the engine keeps for one events partition shares that partition's Redis Cluster
//! hash tag ([`PartitionKeys`]): the applied offset, the lead states, the dedupe marks and the
//! outbox. Each partition of a batch is applied on its own, concurrently:
//!
//! 1. **Read** (one pipeline): the lead states not already in memory, whether each event's
//!    dedupe digest was seen (one `SMISMEMBER` per live time bucket, whatever the batch size),
//!    each OU's config version, and — the first time the partition is seen — its applied offset.
//! 2. **Compute** in memory, in offset order: records at or below the applied offset are replays
//!    (already applied before a crash) and are skipped; duplicates (same OU, source and producer
//!    id) change nothing; every other event goes through the domain's [`OuRules::apply`]: it is
//!    scored, checked against milestone triggers and fed to the sequence matcher, and the
//!    firings come back as fired records.
//! 3. **Write** (one atomic guarded command, one slot): lead states, dedupe digests, the fired
//!    records into the partition's outbox, and the new applied offset — only if the partition's
//!    applied offset is still the one this engine last read or wrote. A consumer that lost its
//!    partition to another (a zombie after a rebalance) fails that guard and writes nothing.
//!
//! Owned partitions' lead states stay in memory between batches (bounded by
//! [`EngineSettings::cached_leads`]), so a busy partition reads from Redis only the leads it has
//! not seen. The cache is fenced by the applied offset: it is used only while Redis still holds
//! the offset this engine wrote, which the write's guard checks; any other value (another owner
//! wrote, or a Redis failover lost the newest writes) drops the partition's cache and re-reads.
//! When the offset went *backwards* (a failover lost acknowledged writes) the engine answers
//! [`EngineError::Rewound`] so the consumer re-reads the partition from there: state and offset
//! were rewound together, so nothing is lost or counted twice.
//!
//! The caller then produces the outbox to the fired topic and calls [`Engine::published`], which
//! writes the history entries and clears the outbox. A crash anywhere leaves either nothing
//! written (the batch is replayed in full) or everything written with the firings in the outbox
//! (the replay is skipped by the applied offset and the outbox is produced when the partition is
//! next assigned). Fired ids are deterministic, so a firing produced twice (crash after the
//! produce, before the outbox was cleared) is delivered once: the notifier is idempotent on the
//! id, and the history entry, a function of the fired record, is added once.
//!
//! A write that fails without an answer (the connection broke, Redis died after its
//! `appendfsync` but before replying) may have landed. The engine then forgets the partition,
//! and the retry reads it cold: when the write landed, its records are replays and recompute
//! nothing, so a cold read also reads the partition's outbox and reports what it holds with the
//! batch. Otherwise those firings would wait in the outbox, neither produced nor in the history,
//! until the partition is next assigned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use sha2::{Digest, Sha256};

use leadstream_domain::event::EngagementEvent;
use leadstream_domain::fired::TriggerFired;
use leadstream_domain::lead::LeadRecord;
use leadstream_domain::rules::OuRules;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::ids::now_ms;
use leadstream_shared::keys::{Keys, PartitionKeys};
use leadstream_shared::store::history::Histories;
use leadstream_shared::store::offsets::AppliedOffsets;
use leadstream_shared::store::{Cmd, Guard, Reply, Store, StoreError};

mod batch;
mod legacy;
#[cfg(test)]
mod tests;

use batch::{compute, Batch, Read, ReadPlan, WritePlan};

/// One event to apply; `event.lead_id` is set (alias-only records are resolved before).
#[derive(Debug, Clone)]
pub struct Input {
    pub partition: i32,
    pub offset: i64,
    pub event: EngagementEvent,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Firings, with the input partition whose outbox holds them.
    pub fired: Vec<(i32, TriggerFired)>,
    pub applied: usize,
    pub duplicates: usize,
    /// Records at or below the applied offset: applied before a crash, skipped now.
    pub replayed: usize,
}

impl Applied {
    fn add(&mut self, other: Applied) {
        self.fired.extend(other.fired);
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.replayed += other.replayed;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("partition ownership changed while the batch was applied (another consumer wrote)")]
    Fenced,
    #[error("cannot encode a fired record: {0}")]
    Encode(String),
    /// Redis holds an older applied offset than this engine wrote for these partitions: a
    /// failover lost the newest writes (state and offset together). The consumer must read the
    /// partitions again from their applied offsets.
    #[error("the store lost applied writes of partitions {0:?} (failover); re-reading them")]
    Rewound(Vec<i32>),
}

/// An OU's configuration as the engine uses it: the domain's rules, as of a config version.
pub struct OuConfig {
    version: i64,
    rules: OuRules,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub topic: String,
    pub dedupe_ttl: Duration,
    pub sequence_cap: usize,
    pub history_cap: usize,
    /// Lead states kept in memory across the owned partitions (0 keeps none).
    pub cached_leads: usize,
}

/// The default of [`EngineSettings::cached_leads`]: about 100 MB of a typical state.
pub const DEFAULT_CACHED_LEADS: usize = 100_000;

/// What the engine remembers of an owned partition between batches.
#[derive(Default)]
struct Partition {
    /// The applied offset as stored (the write guard): `None` while the key is absent.
    applied_raw: Option<Vec<u8>>,
    applied: i64,
    /// Lead states as last written, by [`PartitionKeys::lead_field`].
    leads: HashMap<String, LeadRecord>,
    /// The partition was applied by a version that kept one key per lead: leads missing from
    /// the partition's hash are read there too, and until `legacy_marks_until` (ms) so are the
    /// old dedupe marks.
    legacy: bool,
    legacy_marks_until: i64,
    /// First write since an upgrade: record `legacy_marks_until` with it.
    upgrading: bool,
    /// What the outbox held when the partition was read cold: firings of an earlier write that
    /// were not acknowledged by the fired topic (that write's answer may have been lost), to be
    /// reported with the batch being applied.
    unpublished: Vec<(i32, TriggerFired)>,
}

pub struct Engine {
    catalog: Catalog,
    histories: Histories,
    keys: Keys,
    settings: EngineSettings,
    configs: Mutex<HashMap<String, Arc<OuConfig>>>,
    partitions: Mutex<HashMap<i32, Partition>>,
    /// The highest applied offset this engine saw or wrote per partition: an older one in Redis
    /// means the store lost writes.
    known: Mutex<HashMap<i32, i64>>,
    /// Firings of partitions applied in a batch whose other partitions failed: reported with the
    /// next batch (they are in the outbox meanwhile).
    pending: Mutex<Vec<(i32, TriggerFired)>>,
}

/// The 12-byte digest of an event's dedupe id in its OU, as kept in the dedupe sets.
pub(crate) fn digest(ou: &str, dedupe_id: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(ou.as_bytes());
    h.update([0x1f]);
    h.update(dedupe_id.as_bytes());
    h.finalize()[..12].to_vec()
}

/// Dedupe marks are kept in sets per time bucket of a quarter of the TTL: a mark lives from its
/// write until its bucket's end plus the TTL, so at least the TTL and at most 1.25 times it, and
/// five buckets cover every live mark.
const DEDUPE_BUCKETS: i64 = 4;

impl Engine {
    pub fn new(kv: Store, keys: Keys, settings: EngineSettings) -> Engine {
        Engine {
            histories: Histories::new(kv.clone(), keys.clone()),
            catalog: Catalog::new(kv, keys.clone()),
            keys,
            settings,
            configs: Mutex::new(HashMap::new()),
            partitions: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
        }
    }

    fn kv(&self) -> &Store {
        self.catalog.store()
    }

    /// The keys of one events partition.
    pub fn partition_keys(&self, partition: i32) -> PartitionKeys {
        self.keys.partition(&self.settings.topic, partition)
    }

    fn bucket_ms(&self) -> i64 {
        (self.settings.dedupe_ttl.as_millis() as i64 / DEDUPE_BUCKETS).max(1)
    }

    /// Each partition's applied offset as stored (`None`: nothing applied yet), read where this
    /// version keeps it and, for partitions not written since an upgrade, where earlier versions
    /// kept it: the typed store ([`AppliedOffsets`]) every reader uses. One round trip.
    pub async fn applied_offsets(
        &self,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Option<i64>>, StoreError> {
        AppliedOffsets::new(
            self.kv().clone(),
            self.keys.clone(),
            self.settings.topic.clone(),
        )
        .get(partitions)
        .await
    }

    /// Forget every cached partition: called on each assignment, when the consumer is
    /// repositioned at the stored applied offsets. (A partition that left and came back may
    /// have been applied by another owner meanwhile; its first batch re-reads it.)
    pub fn forget_partitions(&self) {
        lock(&self.partitions).clear();
        lock(&self.known).clear();
    }

    /// The firings left in a partition's outbox (by a crash before [`Engine::published`]),
    /// including the outbox of the layout before partition hash tags.
    pub async fn outbox(&self, partition: i32) -> Result<Vec<(i32, TriggerFired)>, StoreError> {
        let replies = self
            .kv()
            .exec(vec![
                Cmd::HGetAll {
                    key: self.partition_keys(partition).outbox(),
                },
                Cmd::HGetAll {
                    key: self.keys.legacy_outbox(partition),
                },
            ])
            .await?;
        Ok(decode_outbox(
            partition,
            replies.into_iter().flat_map(Reply::into_pairs).collect(),
        ))
    }

    /// After the firings were acknowledged by the fired topic: add them to the OUs' histories
    /// (idempotent: an entry is a function of its fired record), then clear them from the
    /// outboxes. Two round trips, in that order, so a crash between them only repeats work.
    pub async fn published(&self, fired: &[(i32, TriggerFired)]) -> Result<(), StoreError> {
        if fired.is_empty() {
            return Ok(());
        }
        self.histories
            .record(fired.iter().map(|(_, f)| f), self.settings.history_cap)
            .await?;
        let mut clear = Vec::with_capacity(fired.len());
        let mut outboxes: HashMap<i32, (String, bool)> = HashMap::new();
        for (p, f) in fired {
            let (key, legacy) = outboxes.entry(*p).or_insert_with(|| {
                // The outbox of the layout before partition hash tags can only hold firings
                // of partitions applied by that version (or unknown here: drained outboxes).
                let legacy = lock(&self.partitions).get(p).is_none_or(|x| x.legacy);
                (self.partition_keys(*p).outbox(), legacy)
            });
            clear.push(Cmd::HDel {
                key: key.clone(),
                field: f.fired_id.clone(),
            });
            if *legacy {
                clear.push(Cmd::HDel {
                    key: self.keys.legacy_outbox(*p),
                    field: f.fired_id.clone(),
                });
            }
        }
        self.kv().exec(clear).await?;
        Ok(())
    }

    /// Apply a batch sorted by (partition, offset). Partitions are applied concurrently, each
    /// atomically; a partition whose owner changed is re-read and retried.
    pub async fn apply(&self, inputs: &[Input]) -> Result<Applied, EngineError> {
        let mut groups: Vec<&[Input]> = Vec::new();
        let mut rest = inputs;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .position(|i| i.partition != first.partition)
                .unwrap_or(rest.len());
            groups.push(&rest[..n]);
            rest = &rest[n..];
        }
        let results = join_all(groups.iter().map(|g| self.apply_partition(g))).await;
        let mut out = Applied::default();
        out.fired.append(&mut lock(&self.pending));
        let mut rewound = Vec::new();
        let mut failed = None;
        for r in results {
            match r {
                Ok(a) => out.add(a),
                Err(EngineError::Rewound(ps)) => rewound.extend(ps),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        // A firing reported twice (held as pending and read again from a partition's outbox)
        // is produced once.
        let mut ids = HashSet::new();
        out.fired.retain(|(_, f)| ids.insert(f.fired_id.clone()));
        if failed.is_none() && rewound.is_empty() {
            return Ok(out);
        }
        // What was applied is in the outboxes; report its firings with the next batch.
        *lock(&self.pending) = std::mem::take(&mut out.fired);
        match failed {
            Some(e) => Err(e),
            None => Err(EngineError::Rewound(rewound)),
        }
    }

    async fn apply_partition(&self, inputs: &[Input]) -> Result<Applied, EngineError> {
        let p = inputs[0].partition;
        for _ in 0..3 {
            let cached = lock(&self.partitions).remove(&p);
            match self.try_apply(p, inputs, cached).await? {
                Some((out, part)) => {
                    lock(&self.known).insert(p, part.applied);
                    let mut parts = lock(&self.partitions);
                    parts.insert(p, part);
                    self.bound_cache(&mut parts);
                    return Ok(out);
                }
                None => continue,
            }
        }
        Err(EngineError::Fenced)
    }

    /// Keep at most `cached_leads` states in memory: partitions over their share start afresh.
    fn bound_cache(&self, parts: &mut HashMap<i32, Partition>) {
        let share = self.settings.cached_leads / parts.len().max(1);
        for part in parts.values_mut() {
            if part.leads.len() > share {
                part.leads.clear();
            }
        }
    }

    /// One attempt at one partition; `None` when the guard failed (the partition is re-read).
    /// Three steps: read what the plan names (one round trip), compute in memory (the domain's
    /// rules; no store), write what the computation decided (one guarded command).
    async fn try_apply(
        &self,
        p: i32,
        inputs: &[Input],
        cached: Option<Partition>,
    ) -> Result<Option<(Applied, Partition)>, EngineError> {
        let now = now_ms();
        let cold = cached.is_none();
        let mut part = cached.unwrap_or_default();

        // 1. Read.
        let plan = self.read_plan(inputs, &part, cold, now);
        let read = self.read(p, &plan, inputs, &mut part, now).await?;

        // 2. Compute.
        let start = part.applied;
        let mut batch = compute(
            inputs,
            &plan.digests,
            read,
            &mut part.leads,
            start,
            self.settings.sequence_cap,
            now,
        );
        // Firings an earlier write left in the outbox come first: they fired first.
        let mut fired = std::mem::take(&mut part.unpublished);
        fired.append(&mut batch.out.fired);
        batch.out.fired = fired;
        if batch.next == start {
            // Only replays: nothing to write.
            return Ok(Some((batch.out, part)));
        }

        // 3. Write, guarded by the applied offset this engine read or wrote last.
        let write = self.write_plan(p, &part, &batch, plan.bucket)?;
        tracing::debug!(
            partition = p,
            from = start,
            to = batch.next,
            applied = batch.out.applied,
            replayed = batch.out.replayed,
            duplicates = batch.out.duplicates,
            "batch computed"
        );
        match self.kv().exec_guarded(vec![write.guard], write.cmds).await {
            Ok(Some(_)) => {
                part.applied = batch.next;
                part.applied_raw = Some(write.applied_raw);
                part.upgrading = false;
                Ok(Some((batch.out, part)))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What a batch needs from the store: the OUs' config versions, the lead states not in
    /// memory, whether each event's dedupe digest was seen, and — for a partition not in memory
    /// (`cold`) — its applied offset and its outbox.
    fn read_plan<'a>(
        &self,
        inputs: &'a [Input],
        part: &Partition,
        cold: bool,
        now: i64,
    ) -> ReadPlan<'a> {
        let mut ous: Vec<&str> = inputs.iter().map(|i| i.event.ou_id.as_str()).collect();
        ous.sort_unstable();
        ous.dedup();
        let mut fields: Vec<String> = inputs
            .iter()
            .filter_map(|i| Some(PartitionKeys::lead_field(i.event.ou(), i.event.lead()?)))
            .filter(|f| !part.leads.contains_key(f))
            .collect();
        fields.sort_unstable();
        fields.dedup();
        let digests: Vec<Vec<u8>> = inputs
            .iter()
            .map(|i| digest(&i.event.ou_id, &i.event.dedupe_id()))
            .collect();
        ReadPlan {
            cold,
            ous,
            fields,
            digests,
            bucket: now / self.bucket_ms(),
        }
    }

    /// Read what `plan` names in one round trip (plus one for partitions applied before the
    /// upgrade to partition hash tags, and one for OUs whose configuration changed). The
    /// applied offset and the lead states go into `part`; the rest is returned.
    async fn read(
        &self,
        p: i32,
        plan: &ReadPlan<'_>,
        inputs: &[Input],
        part: &mut Partition,
        now: i64,
    ) -> Result<Read, EngineError> {
        let pk = self.partition_keys(p);
        let mut cmds = Vec::with_capacity(plan.ous.len() + 10);
        if plan.cold {
            cmds.push(Cmd::Get { key: pk.applied() });
            cmds.push(Cmd::Get {
                key: self.keys.legacy_applied(&self.settings.topic, p),
            });
            cmds.push(Cmd::Get { key: pk.legacy() });
            cmds.push(Cmd::HGetAll { key: pk.outbox() });
        }
        cmds.extend(plan.ous.iter().map(|ou| Cmd::Get {
            key: self.keys.config_version(ou),
        }));
        if !plan.fields.is_empty() {
            cmds.push(Cmd::HMGet {
                key: pk.leads(),
                fields: plan.fields.clone(),
            });
        }
        for b in plan.bucket - DEDUPE_BUCKETS..=plan.bucket {
            cmds.push(Cmd::SMIsMember {
                key: pk.dedupe(b),
                members: plan.digests.clone(),
            });
        }
        let mut replies = self.kv().exec(cmds).await?.into_iter();
        if plan.cold {
            let stored = replies.next().and_then(Reply::into_bytes);
            let old = replies.next().and_then(Reply::into_bytes);
            let marks_until = replies.next().and_then(Reply::into_bytes);
            let outbox = replies.next().map(Reply::into_pairs).unwrap_or_default();
            part.unpublished = decode_outbox(p, outbox);
            if !part.unpublished.is_empty() {
                tracing::info!(
                    partition = p,
                    count = part.unpublished.len(),
                    "firings an earlier write left in the outbox are reported with this batch"
                );
            }
            part.applied = stored
                .as_deref()
                .or(old.as_deref())
                .and_then(parse_i64)
                .unwrap_or(-1);
            part.legacy = marks_until.is_some() || (stored.is_none() && old.is_some());
            part.upgrading = stored.is_none() && old.is_some();
            part.legacy_marks_until = match (&marks_until, part.upgrading) {
                (Some(v), _) => parse_i64(v).unwrap_or(0),
                (None, true) => now + self.settings.dedupe_ttl.as_millis() as i64,
                (None, false) => 0,
            };
            part.applied_raw = stored;
            let known = lock(&self.known).get(&p).copied();
            if known.is_some_and(|k| k > part.applied) {
                tracing::error!(
                    partition = p,
                    stored = part.applied,
                    known = known.unwrap_or(-1),
                    "the store holds an older applied offset than this processor wrote: a Redis \
                     failover lost writes; re-reading the partition from the stored offset"
                );
                lock(&self.known).remove(&p);
                return Err(EngineError::Rewound(vec![p]));
            }
        }
        let versions: Vec<i64> = plan
            .ous
            .iter()
            .map(|_| replies.next().map(int_reply).unwrap_or(0))
            .collect();
        let mut loaded: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        if !plan.fields.is_empty() {
            let values = replies.next().map(Reply::into_array).unwrap_or_default();
            for (f, v) in plan.fields.iter().zip(values) {
                loaded.insert(f.clone(), v.into_bytes());
            }
        }
        let mut seen_before = vec![false; inputs.len()];
        for _ in 0..=DEDUPE_BUCKETS {
            let hits = replies.next().map(Reply::into_array).unwrap_or_default();
            for (seen, hit) in seen_before.iter_mut().zip(hits) {
                *seen |= hit.as_int() == 1;
            }
        }
        if part.legacy {
            self.read_legacy(part, now, inputs, &mut loaded, &mut seen_before)
                .await?;
        }
        for (f, bytes) in loaded {
            let rec = match bytes.map(|b| LeadRecord::decode(&b)) {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    // A corrupt state must not stop the partition: start the lead afresh and
                    // say so loudly.
                    tracing::error!(partition = p, lead = %f.replace('\u{1f}', "/"), error = %e, "corrupt lead state replaced");
                    LeadRecord::default()
                }
                None => LeadRecord::default(),
            };
            part.leads.insert(f, rec);
        }
        let configs = self.configs_for(&plan.ous, &versions).await?;
        Ok(Read {
            seen_before,
            configs,
        })
    }

    /// The guarded write of a computed batch: lead states, dedupe digests, the fired records
    /// into the partition's outbox, and the new applied offset — applied only if the stored
    /// offset is still the one this engine read or wrote last.
    fn write_plan(
        &self,
        p: i32,
        part: &Partition,
        batch: &Batch,
        bucket: i64,
    ) -> Result<WritePlan, EngineError> {
        let pk = self.partition_keys(p);
        let mut cmds = Vec::with_capacity(6);
        let mut states = Vec::with_capacity(batch.touched.len());
        for field in &batch.touched {
            let Some(rec) = part.leads.get(field) else {
                continue;
            };
            states.push((field.clone(), rec.encode().map_err(EngineError::Encode)?));
        }
        if !states.is_empty() {
            cmds.push(Cmd::HSetMany {
                key: pk.leads(),
                pairs: states,
            });
        }
        if !batch.new_marks.is_empty() {
            let key = pk.dedupe(bucket);
            cmds.push(Cmd::SAdd {
                key: key.clone(),
                members: batch.new_marks.clone(),
            });
            cmds.push(Cmd::PExpireAt {
                key,
                at_ms: (bucket + 1) * self.bucket_ms()
                    + self.settings.dedupe_ttl.as_millis() as i64,
            });
        }
        let mut outbox = Vec::with_capacity(batch.out.fired.len());
        for (_, f) in &batch.out.fired {
            let avro = leadstream_shared::avro::encode_fired(f)
                .map_err(|e| EngineError::Encode(e.to_string()))?;
            outbox.push((f.fired_id.clone(), avro));
        }
        if !outbox.is_empty() {
            cmds.push(Cmd::HSetMany {
                key: pk.outbox(),
                pairs: outbox,
            });
        }
        if part.upgrading {
            cmds.push(Cmd::Set {
                key: pk.legacy(),
                value: part.legacy_marks_until.to_string().into_bytes(),
                ttl_ms: None,
            });
        }
        let applied_raw = batch.next.to_string().into_bytes();
        cmds.push(Cmd::Set {
            key: pk.applied(),
            value: applied_raw.clone(),
            ttl_ms: None,
        });
        let guard = match &part.applied_raw {
            Some(v) => Guard::Equals(pk.applied(), v.clone()),
            None => Guard::Absent(pk.applied()),
        };
        Ok(WritePlan {
            guard,
            cmds,
            applied_raw,
        })
    }

    /// The configuration of each OU, reloading those whose version changed (one round trip for
    /// all of them).
    async fn configs_for(
        &self,
        ous: &[&str],
        versions: &[i64],
    ) -> Result<HashMap<String, Arc<OuConfig>>, StoreError> {
        let mut out = HashMap::new();
        let mut stale = Vec::new();
        {
            let cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
            for (ou, v) in ous.iter().zip(versions) {
                match cache.get(*ou) {
                    Some(c) if c.version == *v => {
                        out.insert(ou.to_string(), c.clone());
                    }
                    _ => stale.push((*ou, *v)),
                }
            }
        }
        if stale.is_empty() {
            return Ok(out);
        }
        let ids: Vec<&str> = stale.iter().map(|(ou, _)| *ou).collect();
        let docs = self.catalog.scoring_documents(&ids).await?;
        let mut cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        for ((ou, version), d) in stale.into_iter().zip(docs) {
            let cfg = Arc::new(OuConfig {
                version,
                rules: OuRules::new(d.rulesets, d.triggers, d.sequences),
            });
            cache.insert(ou.to_string(), cfg.clone());
            out.insert(ou.to_string(), cfg);
        }
        Ok(out)
    }
}

/// An outbox's entries (fired id → Avro fired record) as the firings of `partition`; an
/// unreadable entry is skipped, loudly.
fn decode_outbox(partition: i32, entries: Vec<(String, Vec<u8>)>) -> Vec<(i32, TriggerFired)> {
    let mut out = Vec::with_capacity(entries.len());
    for (id, bytes) in entries {
        match leadstream_shared::avro::decode_fired(&bytes) {
            Ok(f) => out.push((partition, f)),
            Err(e) => {
                tracing::error!(partition, id, error = %e, "unreadable outbox entry skipped")
            }
        }
    }
    out
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn int_reply(r: Reply) -> i64 {
    r.into_bytes().as_deref().and_then(parse_i64).unwrap_or(0)
}
