//! The batch engine: a polled batch of events in, lead state and firings out, in two Redis
//! round trips whatever the batch size.
//!
//! 1. **Read** (one pipeline): each input partition's applied offset, each OU's config version,
//!    each lead's state, and whether each event's dedupe id was seen before.
//! 2. **Compute** in memory, in offset order: records at or below the applied offset are replays
//!    (already applied before a crash) and are skipped; duplicates (same OU, source and producer
//!    id) change nothing; every other event is scored, checked against milestone triggers and fed
//!    to the sequence matcher.
//! 3. **Write** (one atomic guarded script): dedupe marks, lead states, history, the fired
//!    records into the partition's outbox, and the new applied offset — only if every partition's
//!    applied offset is still what step 1 read. A consumer that lost its partition to another
//!    (a zombie after a rebalance) fails that guard and writes nothing.
//!
//! The caller then produces the outbox to the fired topic, clears it, and commits the offsets.
//! A crash anywhere leaves either nothing written (the batch is replayed in full) or everything
//! written with the firings in the outbox (the replay is skipped by the applied offset and the
//! outbox is produced when the partition is next assigned). Fired ids are deterministic, so a
//! firing produced twice (crash after the produce, before the outbox was cleared) is delivered
//! once: the notifier is idempotent on the id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::event::EngagementEvent;
use leadstream_shared::fired::{TriggerFired, TriggerKind};
use leadstream_shared::ids::{now_ms, rfc3339_ms};
use leadstream_shared::keys::Keys;
use leadstream_shared::model::ruleset::Ruleset;
use leadstream_shared::model::sequence::SequenceTrigger;
use leadstream_shared::model::trigger::MilestoneTrigger;
use leadstream_shared::store::{Cmd, Guard, Reply, Store, StoreError};

use crate::scoring;
use crate::sequence::{self, ActiveSequences, SeqEvent};
use crate::state::{HistoryEntry, LeadRecord};

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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("partition ownership changed while the batch was applied (another consumer wrote)")]
    Fenced,
    #[error("cannot encode a fired record: {0}")]
    Encode(String),
}

/// An OU's configuration as the engine uses it.
pub struct OuConfig {
    version: i64,
    rulesets: Vec<Ruleset>,
    triggers: Vec<MilestoneTrigger>,
    sequences: HashMap<String, SequenceTrigger>,
    active: ActiveSequences,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub topic: String,
    pub dedupe_ttl: Duration,
    pub sequence_cap: usize,
    pub history_cap: usize,
}

pub struct Engine {
    catalog: Catalog,
    keys: Keys,
    settings: EngineSettings,
    configs: Mutex<HashMap<String, Arc<OuConfig>>>,
}

impl Engine {
    pub fn new(kv: Store, keys: Keys, settings: EngineSettings) -> Engine {
        Engine {
            catalog: Catalog::new(kv, keys.clone()),
            keys,
            settings,
            configs: Mutex::new(HashMap::new()),
        }
    }

    fn kv(&self) -> &Store {
        self.catalog.store()
    }

    /// The key of a partition's applied offset.
    pub fn applied_key(&self, partition: i32) -> String {
        self.keys
            .global(&format!("applied:{}:{partition}", self.settings.topic))
    }

    /// Apply a batch; retried when a concurrent writer moved the applied offset (the retry
    /// re-reads it and skips what the other writer applied).
    pub async fn apply(&self, inputs: &[Input]) -> Result<Applied, EngineError> {
        for _ in 0..3 {
            if let Some(done) = self.try_apply(inputs).await? {
                return Ok(done);
            }
        }
        Err(EngineError::Fenced)
    }

    async fn try_apply(&self, inputs: &[Input]) -> Result<Option<Applied>, EngineError> {
        let mut partitions: Vec<i32> = inputs.iter().map(|i| i.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let mut ous: Vec<&str> = inputs.iter().map(|i| i.event.ou_id.as_str()).collect();
        ous.sort_unstable();
        ous.dedup();
        let mut leads: Vec<(&str, &str)> = inputs
            .iter()
            .filter_map(|i| Some((i.event.ou_id.as_str(), i.event.lead_id.as_deref()?)))
            .collect();
        leads.sort_unstable();
        leads.dedup();

        // 1. Read.
        let mut cmds =
            Vec::with_capacity(partitions.len() + ous.len() + leads.len() + inputs.len());
        cmds.extend(partitions.iter().map(|p| Cmd::Get {
            key: self.applied_key(*p),
        }));
        cmds.extend(ous.iter().map(|ou| Cmd::Get {
            key: self.keys.config_version(ou),
        }));
        cmds.extend(leads.iter().map(|(ou, lead)| Cmd::Get {
            key: self.keys.lead_state(ou, lead),
        }));
        // Each input's dedupe mark, built once: read here, written in step 2.
        let processed: Vec<String> = inputs
            .iter()
            .map(|i| self.keys.processed(&i.event.ou_id, &i.event.dedupe_id()))
            .collect();
        cmds.extend(processed.iter().map(|key| Cmd::Exists { key: key.clone() }));
        let mut replies = self.kv().exec(cmds).await?.into_iter();
        let mut applied_raw: HashMap<i32, Option<Vec<u8>>> = HashMap::new();
        for p in &partitions {
            applied_raw.insert(*p, replies.next().and_then(Reply::into_bytes));
        }
        let versions: Vec<i64> = ous
            .iter()
            .map(|_| replies.next().map(int_reply).unwrap_or(0))
            .collect();
        let mut states: HashMap<(&str, &str), LeadRecord> = HashMap::new();
        for lead in &leads {
            let rec = match replies.next().map(|r| r.json::<LeadRecord>()) {
                Some(Ok(Some(r))) => r,
                Some(Err(e)) => {
                    // A corrupt state must not stop the partition: start the lead afresh and
                    // say so loudly.
                    tracing::error!(ou = lead.0, lead = lead.1, error = %e, "corrupt lead state replaced");
                    LeadRecord::default()
                }
                _ => LeadRecord::default(),
            };
            states.insert(*lead, rec);
        }
        let seen_before: Vec<bool> = inputs
            .iter()
            .map(|_| replies.next().is_some_and(|r| r.as_int() == 1))
            .collect();
        let configs = self.configs_for(&ous, &versions).await?;

        // 2. Compute.
        let now = now_ms();
        let applied_offset: HashMap<i32, i64> = applied_raw
            .iter()
            .map(|(p, raw)| (*p, raw.as_deref().and_then(parse_i64).unwrap_or(-1)))
            .collect();
        let mut out = Applied::default();
        let mut new_offset = applied_offset.clone();
        let mut seen_now: HashSet<&str> = HashSet::new();
        let mut touched: HashSet<(&str, &str)> = HashSet::new();
        let mut writes: Vec<Cmd> = Vec::new();
        let ttl = Some(self.settings.dedupe_ttl.as_millis() as u64);
        let mut history_keys: HashSet<String> = HashSet::new();
        for ((input, seen), mark) in inputs.iter().zip(seen_before).zip(&processed) {
            let last = new_offset.entry(input.partition).or_insert(-1);
            if input.offset <= applied_offset.get(&input.partition).copied().unwrap_or(-1) {
                out.replayed += 1;
                continue;
            }
            *last = (*last).max(input.offset);
            let e = &input.event;
            let Some(lead) = e.lead_id.as_deref() else {
                continue;
            };
            // The mark's key names the OU and the dedupe id: equal keys, same event.
            if seen || !seen_now.insert(mark.as_str()) {
                out.duplicates += 1;
                continue;
            }
            writes.push(Cmd::Set {
                key: mark.clone(),
                value: b"1".to_vec(),
                ttl_ms: ttl,
            });
            let Some(cfg) = configs.get(e.ou_id.as_str()) else {
                continue;
            };
            let key = (e.ou_id.as_str(), lead);
            let Some(rec) = states.get_mut(&key) else {
                continue;
            };
            touched.insert(key);
            rec.events += 1;
            rec.last_event_at_ms = Some(
                rec.last_event_at_ms
                    .map_or(e.event_time_ms, |t| t.max(e.event_time_ms)),
            );
            let outcome = scoring::apply(&mut rec.score, &cfg.rulesets, &cfg.triggers, e);
            let mut fired: Vec<TriggerFired> = outcome
                .firings
                .into_iter()
                .map(|f| f.into_trigger_fired(e, now))
                .collect();
            if cfg.active.is_relevant(&e.event_type) {
                let matches = rec.seq.observe(
                    lead,
                    &cfg.active,
                    &SeqEvent::from(e),
                    self.settings.sequence_cap,
                );
                for m in matches {
                    let Some(seq) = cfg.sequences.get(&m.sequence_id) else {
                        continue;
                    };
                    fired.push(TriggerFired {
                        fired_id: m.fired_id.clone(),
                        org_id: e.org_id.clone(),
                        ou_id: e.ou_id.clone(),
                        lead_id: lead.to_string(),
                        trigger_id: seq.id.clone(),
                        trigger_name: seq.name.clone(),
                        kind: TriggerKind::Sequence,
                        event_id: e.event_id.clone(),
                        fired_at_ms: now,
                        score: outcome.score_after,
                        payload: sequence::payload(seq, lead, &m),
                        targets: seq.targets(),
                    });
                }
            }
            for f in fired {
                let kind = f.kind.as_str();
                let entry = HistoryEntry {
                    id: f.fired_id.clone(),
                    trigger_id: f.trigger_id.clone(),
                    trigger_name: f.trigger_name.clone(),
                    lead_id: f.lead_id.clone(),
                    event_id: f.event_id.clone(),
                    score: f.score,
                    fired_at: rfc3339_ms(f.fired_at_ms),
                    payload: f.payload.clone(),
                };
                let hkey = self.keys.history(&e.ou_id, kind);
                writes.push(Cmd::ZAdd {
                    key: hkey.clone(),
                    score: f.fired_at_ms as f64,
                    member: serde_json::to_vec(&entry)
                        .map_err(|e| EngineError::Encode(e.to_string()))?,
                });
                history_keys.insert(hkey);
                let avro = leadstream_shared::avro::encode_fired(&f)
                    .map_err(|e| EngineError::Encode(e.to_string()))?;
                writes.push(Cmd::HSet {
                    key: self.keys.outbox(input.partition),
                    field: f.fired_id.clone(),
                    value: avro,
                });
                out.fired.push((input.partition, f));
            }
            out.applied += 1;
        }

        // 3. Write, guarded by the applied offsets read in step 1.
        for key in &touched {
            let Some(rec) = states.get(key) else { continue };
            writes.push(Cmd::Set {
                key: self.keys.lead_state(key.0, key.1),
                value: serde_json::to_vec(rec).map_err(|e| EngineError::Encode(e.to_string()))?,
                ttl_ms: None,
            });
            writes.push(Cmd::ZAdd {
                key: self.keys.leads(key.0),
                score: rec.last_event_at_ms.unwrap_or(0) as f64,
                member: key.1.as_bytes().to_vec(),
            });
        }
        for key in history_keys {
            let cap = self.settings.history_cap as isize;
            writes.push(Cmd::ZRemRangeByRank {
                key,
                start: 0,
                stop: -(cap + 1),
            });
        }
        let mut guards = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let key = self.applied_key(*p);
            guards.push(match applied_raw.get(p).cloned().flatten() {
                Some(v) => Guard::Equals(key.clone(), v),
                None => Guard::Absent(key.clone()),
            });
            let next = new_offset.get(p).copied().unwrap_or(-1);
            if next > applied_offset.get(p).copied().unwrap_or(-1) {
                writes.push(Cmd::Set {
                    key,
                    value: next.to_string().into_bytes(),
                    ttl_ms: None,
                });
            }
        }
        tracing::debug!(
            ?applied_offset,
            ?new_offset,
            first = inputs
                .first()
                .map(|i| (i.partition, i.offset))
                .unwrap_or_default()
                .1,
            last = inputs
                .last()
                .map(|i| (i.partition, i.offset))
                .unwrap_or_default()
                .1,
            applied = out.applied,
            replayed = out.replayed,
            duplicates = out.duplicates,
            "batch computed"
        );
        match self.kv().exec_guarded(guards, writes).await? {
            Some(_) => Ok(Some(out)),
            None => Ok(None),
        }
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
        let mut cmds = Vec::new();
        for (ou, _) in &stale {
            for c in [
                collections::RULESETS,
                collections::TRIGGERS,
                collections::SEQUENCES,
            ] {
                cmds.push(Cmd::HGetAll {
                    key: self.keys.docs(ou, c),
                });
            }
        }
        let mut replies = self.kv().exec(cmds).await?.into_iter();
        let mut cache = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        for (ou, version) in stale {
            let rulesets: Vec<Ruleset> = docs(ou, "ruleset", replies.next());
            let triggers: Vec<MilestoneTrigger> = docs(ou, "trigger", replies.next());
            let seqs: Vec<SequenceTrigger> = docs(ou, "sequence", replies.next());
            let cfg = Arc::new(OuConfig {
                version,
                active: ActiveSequences::new(&seqs),
                sequences: seqs.into_iter().map(|s| (s.id.clone(), s)).collect(),
                rulesets,
                triggers,
            });
            cache.insert(ou.to_string(), cfg.clone());
            out.insert(ou.to_string(), cfg);
        }
        Ok(out)
    }
}

/// Decode a collection; a document that no longer parses is skipped with an error log rather
/// than stopping every event of the OU.
fn docs<T: serde::de::DeserializeOwned>(ou: &str, what: &str, r: Option<Reply>) -> Vec<T> {
    let mut v: Vec<(String, T)> = Vec::new();
    for (id, bytes) in r.map(Reply::into_pairs).unwrap_or_default() {
        match serde_json::from_slice(&bytes) {
            Ok(d) => v.push((id, d)),
            Err(e) => tracing::error!(ou, id, error = %e, "unreadable {what} skipped"),
        }
    }
    // Ids are time-sortable: creation order, so firings come out in a stable order.
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(_, d)| d).collect()
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn int_reply(r: Reply) -> i64 {
    r.into_bytes().as_deref().and_then(parse_i64).unwrap_or(0)
}
