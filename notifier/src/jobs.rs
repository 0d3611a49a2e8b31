//! Durable delivery state in the store (Redis), so retries survive restarts and nothing is
//! delivered twice to the same endpoint. [`JobStore`] is the one place it is read and written:
//! by the notifier's consumer and dispatcher, and by `leadstream admin dlq replay`
//! ([`JobStore::replay`]).
//!
//! Keys (all under `LEADSTREAM_REDIS_PREFIX`; the layouts are in [`Keys`]):
//! - `ou:{ou}:notifier:dlv:{fired_id}:{endpoint_id}` ([`Keys::delivery_job`]) — the [`Job`]: the
//!   fired record, the endpoint, the attempt count and the [`State`]. It is created only if
//!   absent (a guarded write), which is the idempotency on `(fired_id, endpoint)`: a replayed or
//!   re-produced fired record finds it and is skipped. It lives for the retention period
//!   (default 30 days).
//! - `g:notifier:due` ([`Keys::delivery_due`]) — one sorted set of job keys by the time their
//!   next step is due (now for a new job, `retry_at` for a failed one, now for a dead one whose
//!   DLQ record is not yet sent). Every notifier replica polls it; a job leaves it when it is
//!   final.
//! - `{job key}:lease` ([`Keys::delivery_lease`]) — a short `SET NX PX` claim: the one worker
//!   that holds it makes the attempt. A worker that dies mid-attempt loses the lease when it
//!   expires and the job is taken again.
//! - `ou:{ou}:notifier:disabled:{trigger_id}:{endpoint_id}` ([`Keys::delivery_disabled`]) — set
//!   by a 410 Gone.
//! - `ou:{ou}:notifier:lane:{endpoint_id}:{lead_id}` ([`Keys::delivery_lane`]) — the *lane*: the
//!   unfinished jobs of one lead to one endpoint (their fired ids, which name the job keys in
//!   either key layout), by their fired record's offset (one lead's
//!   fired records are on one partition of the fired topic, in firing order). A job is attempted
//!   only when no job with a lower offset is in its lane ([`JobStore::gate`]); it leaves the lane
//!   in the write that makes it final ([`JobStore::record`] with [`Next::Done`]: delivered, or
//!   dead with its DLQ record acknowledged), and that write answers the next job in the lane so
//!   it can be woken at once. So deliveries of one lead to one endpoint are made in firing order,
//!   a retry included; different leads (and different endpoints) do not wait for each other.
//!
//! On a Redis Cluster every one of these keys (and the delivery records) carries the hash tag
//! `{notifier}` (see [`Keys::for_cluster`]): a job, its lease, the due set and the delivery
//! records one write touches together live in one slot.
//!
//! The one window where a crash can cause a second delivery: the worker got a 2xx and died
//! before [`JobStore::record`] (one round trip) stored it. The job is then attempted again after
//! the lease expires, with the same `webhook-id`, which Standard Webhooks receivers use to drop
//! duplicates.

mod replay;

use std::collections::HashMap;

use leadstream_domain::fired::TriggerFired;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{
    coalesce_zset_writes, exec_one, Cmd, Guard, Kv, Reply, Store, StoreError,
};
use leadstream_shared::trace::TraceContext;
use serde::{Deserialize, Serialize};

use crate::attempt::State;
use crate::delivery::{record_cmds, Channel, DeliveryAttempt};
use crate::endpoint::Endpoint;

pub use replay::{Replay, ReplayError, ReplayOptions};

/// One delivery: one fired record to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub fired: TriggerFired,
    pub channel: Channel,
    pub target: String,
    pub endpoint_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub state: State,
    /// For `Dead` jobs: whether the DLQ record has been acknowledged by Kafka.
    #[serde(default)]
    pub dlq_sent: bool,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Where the fired record came from (for the DLQ record).
    pub source_partition: i32,
    pub source_offset: i64,
    pub created_ms: i64,
    /// The trace context of the fired record, so every attempt (a retry hours later too) joins
    /// the trace of the request that sent the event. Absent in jobs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl Job {
    pub fn new(
        fired: &TriggerFired,
        ep: &Endpoint,
        partition: i32,
        offset: i64,
        now_ms: i64,
    ) -> Job {
        Job {
            fired: fired.clone(),
            channel: ep.channel,
            target: ep.target.clone(),
            endpoint_id: ep.id(),
            attempts: 0,
            state: State::Pending,
            dlq_sent: false,
            last_error: None,
            last_status: None,
            source_partition: partition,
            source_offset: offset,
            created_ms: now_ms,
            trace: None,
        }
    }

    /// The job carrying the fired record's trace context.
    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Job {
        self.trace = trace;
        self
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(self.channel, self.target.clone())
    }

    /// Back to a new delivery (a replay): pending, no attempts, no error.
    fn reset(&mut self) {
        self.attempts = 0;
        self.state = State::Pending;
        self.dlq_sent = false;
        self.last_error = None;
        self.last_status = None;
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Where the job goes in the due set after a write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Due again at this time (a retry, or a DLQ send still to do).
    At(i64),
    /// Final: leaves the due set.
    Done,
}

/// One job write: which job, under which lease, its new state and next due time, and what the
/// attempt it records changed besides.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub job_key: &'a str,
    pub token: &'a str,
    pub job: &'a Job,
    pub next: Next,
    /// The attempt this write records in the delivery log.
    pub attempt: Option<&'a DeliveryAttempt>,
    /// The attempt got a 410 Gone at this time: the endpoint is disabled for the job's trigger
    /// from now on.
    pub gone_at_ms: Option<i64>,
}

/// The commands of one job write under its lease, ready to be written alone or with others
/// ([`JobStore::prepare`], [`JobStore::record_all`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    lease: String,
    token: Vec<u8>,
    cmds: Vec<Cmd>,
    /// Where in `cmds` the lane's new first job is read (a final write).
    lane_reply: Option<usize>,
    ou: String,
    endpoint_id: String,
}

/// What [`JobStore::record`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The lease was still ours (false: the attempt outlived it; the write landed anyway).
    pub held: bool,
    /// The job left its lane ([`Next::Done`]) and this job is now first in it: wake it.
    pub next_in_lane: Option<String>,
}

/// What stands between a claimed job and its attempt ([`JobStore::gate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// A 410 Gone disabled the endpoint for the job's trigger.
    pub disabled: bool,
    /// An earlier job of the same lead to the same endpoint that is not final yet: it goes first.
    pub behind: Option<Earlier>,
}

/// A job earlier in a lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    pub key: String,
    pub fired_id: String,
}

/// The delivery jobs in the store: the one place their states are read and written, by the
/// notifier's [`crate::ingest`] and [`crate::worker`] and by `leadstream admin dlq replay`.
/// Key layouts: [`Keys::delivery_job`] and its neighbours.
#[derive(Clone)]
pub struct JobStore {
    store: Store,
    keys: Keys,
    /// How long a job (and the attempt records written with it) is kept.
    retention_ms: u64,
}

impl JobStore {
    pub fn new(store: Store, keys: Keys, retention_ms: u64) -> JobStore {
        JobStore {
            store,
            keys,
            retention_ms,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The key of a job (what [`JobStore::due`] lists and the other operations take).
    pub fn key_of(&self, job: &Job) -> String {
        self.key(&job.fired.ou_id, &job.fired.fired_id, &job.endpoint_id)
    }

    /// The key of the job delivering fired record `fired_id` of OU `ou` to `endpoint_id`.
    pub fn key(&self, ou: &str, fired_id: &str, endpoint_id: &str) -> String {
        self.keys.delivery_job(ou, fired_id, endpoint_id)
    }

    fn kv(&self) -> &dyn Kv {
        self.store.as_ref()
    }

    /// Put `job_key` in the due set at `at_ms`.
    fn due_at(&self, job_key: &str, at_ms: i64) -> Cmd {
        Cmd::ZAdd {
            key: self.keys.delivery_due(),
            score: at_ms as f64,
            member: job_key.as_bytes().to_vec(),
        }
    }

    fn not_due(&self, job_key: &str) -> Cmd {
        Cmd::ZRem {
            key: self.keys.delivery_due(),
            member: job_key.as_bytes().to_vec(),
        }
    }

    /// The lane of the job: its lead's unfinished jobs to its endpoint.
    fn lane(&self, job: &Job) -> String {
        self.keys
            .delivery_lane(job.fired.ou(), job.fired.lead(), &job.endpoint_id)
    }

    /// The first job of `lane` with an offset up to `max` (`+inf`: the first of all).
    fn lane_first(lane: String, max: f64) -> Cmd {
        Cmd::ZRangeByScore {
            key: lane,
            min: f64::NEG_INFINITY,
            max,
            limit: Some(1),
        }
    }

    fn set_job(&self, job_key: &str, job: &Job) -> Cmd {
        Cmd::Set {
            key: job_key.to_string(),
            value: json(job),
            ttl_ms: Some(self.retention_ms),
        }
    }

    /// The commands that create `j` (under `key`), due at `now_ms`, in its lane.
    fn create(&self, key: &str, j: &Job, now_ms: i64) -> [Cmd; 4] {
        let lane = self.lane(j);
        [
            self.set_job(key, j),
            self.due_at(key, now_ms),
            Cmd::ZAdd {
                key: lane.clone(),
                score: j.source_offset as f64,
                member: j.fired.fired_id.as_bytes().to_vec(),
            },
            Cmd::PExpire {
                key: lane,
                ttl_ms: self.retention_ms,
            },
        ]
    }

    /// Create the jobs that do not exist yet, make them due now and put them in their lanes.
    /// Answers, per job, whether it was created (false: a duplicate). A batch in which no job
    /// exists yet (the usual case) is one atomic guarded write; otherwise each job is one,
    /// pipelined on one connection in the order given (a lane is ordered by offset whatever the
    /// order of its writes).
    pub async fn enqueue(&self, jobs: &[Job], now_ms: i64) -> Result<Vec<bool>, StoreError> {
        let keys: Vec<String> = jobs.iter().map(|j| self.key_of(j)).collect();
        if jobs.len() > 1 {
            let guards = keys.iter().map(|k| Guard::Absent(k.clone())).collect();
            let cmds = jobs
                .iter()
                .zip(&keys)
                .flat_map(|(j, k)| self.create(k, j, now_ms))
                .collect();
            // One `ZADD` of the due set for the whole batch (and one per lane that several
            // jobs join).
            let (cmds, _) = coalesce_zset_writes(cmds);
            if self.kv().exec_guarded(guards, cmds).await?.is_some() {
                return Ok(vec![true; jobs.len()]);
            }
        }
        let writes = jobs.iter().zip(&keys).map(|(j, key)| {
            self.kv().exec_guarded(
                vec![Guard::Absent(key.clone())],
                self.create(key, j, now_ms).to_vec(),
            )
        });
        futures::future::try_join_all(writes)
            .await
            .map(|r| r.into_iter().map(|x| x.is_some()).collect())
    }

    /// Job keys due at `now_ms`, earliest first.
    pub async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let r = exec_one(
            self.kv(),
            Cmd::ZRangeByScore {
                key: self.keys.delivery_due(),
                min: f64::NEG_INFINITY,
                max: now_ms as f64,
                limit: Some(limit),
            },
        )
        .await?;
        Ok(r.into_array()
            .into_iter()
            .filter_map(Reply::into_bytes)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect())
    }

    /// Take the lease on a job and load it. `None` when another worker holds the lease, or the
    /// job is gone (expired) — then it is also removed from the due set.
    pub async fn claim(
        &self,
        job_key: &str,
        token: &str,
        lease_ms: u64,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .claim_with(job_key, token, lease_ms, None)
            .await?
            .map(|(job, _)| job))
    }

    /// [`JobStore::claim`] and [`JobStore::gate`] in one round trip, for a job whose lane and
    /// trigger are known before it is loaded (`hint`: the job as the consumer just created it).
    /// The gate is answered only when the loaded job is that same job.
    pub async fn claim_gated(
        &self,
        job_key: &str,
        token: &str,
        lease_ms: u64,
        hint: &Job,
    ) -> Result<Option<(Job, Option<Gate>)>, StoreError> {
        self.claim_with(job_key, token, lease_ms, Some(hint)).await
    }

    async fn claim_with(
        &self,
        job_key: &str,
        token: &str,
        lease_ms: u64,
        hint: Option<&Job>,
    ) -> Result<Option<(Job, Option<Gate>)>, StoreError> {
        let lease = self.keys.delivery_lease(job_key);
        let mut cmds = vec![
            Cmd::SetNx {
                key: lease.clone(),
                value: token.as_bytes().to_vec(),
                ttl_ms: Some(lease_ms),
            },
            Cmd::Get {
                key: job_key.to_string(),
            },
        ];
        if let Some(h) = hint {
            cmds.extend(self.gate_cmds(h));
        }
        let mut r = self.kv().exec(cmds).await?.into_iter();
        let won = r.next().map(|x| x.as_int() == 1).unwrap_or(false);
        if !won {
            return Ok(None);
        }
        let job = match r.next().map(Reply::json::<Job>).transpose()?.flatten() {
            Some(j) => j,
            None => {
                self.kv()
                    .exec(vec![self.not_due(job_key), Cmd::Del { key: lease }])
                    .await?;
                return Ok(None);
            }
        };
        let gate = hint
            .filter(|h| {
                h.fired.fired_id == job.fired.fired_id
                    && h.endpoint_id == job.endpoint_id
                    && h.fired.lead_id == job.fired.lead_id
                    && h.fired.trigger_id == job.fired.trigger_id
                    && h.source_offset == job.source_offset
            })
            .map(|_| self.gate_of(&job, r.next(), r.next()));
        Ok(Some((job, gate)))
    }

    /// The commands of a [`JobStore::gate`]: the 410 mark, the lane's first job up to `job`.
    fn gate_cmds(&self, job: &Job) -> [Cmd; 2] {
        [
            Cmd::Exists {
                key: self.disabled_key(job),
            },
            Self::lane_first(self.lane(job), job.source_offset as f64),
        ]
    }

    /// The gate from the replies of [`JobStore::gate_cmds`].
    fn gate_of(&self, job: &Job, disabled: Option<Reply>, first: Option<Reply>) -> Gate {
        let behind = first
            .and_then(first_member)
            .filter(|f| *f != job.fired.fired_id)
            .map(|fired_id| Earlier {
                key: self.key(&job.fired.ou_id, &fired_id, &job.endpoint_id),
                fired_id,
            });
        Gate {
            disabled: disabled.is_some_and(|x| x.as_int() > 0),
            behind,
        }
    }

    /// Whether the claimed `job` may be attempted now: its endpoint's 410 mark, and the first
    /// job of its lane with a lower (or equal) offset — `None` in [`Gate::behind`] when that is
    /// the job itself or there is none (a job written before lanes existed, or re-queued by a
    /// replay, is in no lane and waits for nobody). One round trip.
    pub async fn gate(&self, job: &Job) -> Result<Gate, StoreError> {
        let mut r = self
            .kv()
            .exec(self.gate_cmds(job).to_vec())
            .await?
            .into_iter();
        Ok(self.gate_of(job, r.next(), r.next()))
    }

    /// Take `stale` out of `job`'s lane: a job that expired or is final but was left in it.
    pub async fn leave_lane(&self, job: &Job, stale: &Earlier) -> Result<(), StoreError> {
        self.kv()
            .exec(vec![Cmd::ZRem {
                key: self.lane(job),
                member: stale.fired_id.as_bytes().to_vec(),
            }])
            .await
            .map(drop)
    }

    /// The key of the first job in `job`'s lane now.
    pub async fn lane_head(&self, job: &Job) -> Result<Option<String>, StoreError> {
        let first = exec_one(self.kv(), Self::lane_first(self.lane(job), f64::INFINITY)).await?;
        Ok(first_member(first).map(|f| self.key(&job.fired.ou_id, &f, &job.endpoint_id)))
    }

    /// Give the lease back and make the job due at `at_ms` (it waits behind an earlier job of
    /// its lane, or for its retry time), if we still hold the lease.
    pub async fn park(&self, job_key: &str, token: &str, at_ms: i64) -> Result<(), StoreError> {
        let lease = self.keys.delivery_lease(job_key);
        self.kv()
            .exec_guarded(
                vec![Guard::Equals(lease.clone(), token.as_bytes().to_vec())],
                vec![self.due_at(job_key, at_ms), Cmd::Del { key: lease }],
            )
            .await
            .map(drop)
    }

    /// Give a lease back without changing the job.
    pub async fn release(&self, job_key: &str, token: &str) -> Result<(), StoreError> {
        let lease = self.keys.delivery_lease(job_key);
        self.kv()
            .exec_guarded(
                vec![Guard::Equals(lease.clone(), token.as_bytes().to_vec())],
                vec![Cmd::Del { key: lease }],
            )
            .await
            .map(|_| ())
    }

    /// Store the job's new state, its place in the due set (and, when final, its leaving its
    /// lane), the attempt record and the 410 mark (if any), and give the lease back —
    /// atomically, if we still hold the lease. If the lease was lost (the attempt outlived it),
    /// everything but the lease release is written anyway so no attempt goes unrecorded, and
    /// [`Recorded::held`] is false. A final job answers the job now first in its lane.
    pub async fn record(&self, w: Write<'_>) -> Result<Recorded, StoreError> {
        match self.record_all(vec![self.prepare(w)]).await? {
            Some(mut done) if done.len() == 1 => Ok(done.remove(0)),
            _ => self.record_unguarded(w).await,
        }
    }

    /// The commands of one [`JobStore::record`], for [`JobStore::record_all`].
    pub fn prepare(&self, w: Write<'_>) -> Prepared {
        let Write {
            job_key,
            token,
            job,
            next,
            attempt,
            gone_at_ms,
        } = w;
        let mut cmds = vec![self.set_job(job_key, job)];
        cmds.push(match next {
            Next::At(t) => self.due_at(job_key, t),
            Next::Done => self.not_due(job_key),
        });
        // The reply of the lane's new first job, when the job leaves its lane.
        let lane_reply = (next == Next::Done).then(|| {
            let lane = self.lane(job);
            cmds.push(Cmd::ZRem {
                key: lane.clone(),
                member: job.fired.fired_id.as_bytes().to_vec(),
            });
            cmds.push(Self::lane_first(lane, f64::INFINITY));
            cmds.len() - 1
        });
        if let Some(a) = attempt {
            cmds.extend(record_cmds(&self.keys, a, self.retention_ms));
        }
        if let Some(at) = gone_at_ms {
            cmds.push(Cmd::Set {
                key: self.disabled_key(job),
                value: format!("410 Gone at {at}").into_bytes(),
                ttl_ms: None,
            });
        }
        Prepared {
            lease: self.keys.delivery_lease(job_key),
            token: token.as_bytes().to_vec(),
            cmds,
            lane_reply,
            ou: job.fired.ou_id.clone(),
            endpoint_id: job.endpoint_id.clone(),
        }
    }

    /// The job named by a lane reply.
    fn next_in_lane(&self, ou: &str, endpoint_id: &str, reply: Option<Reply>) -> Option<String> {
        reply
            .and_then(first_member)
            .map(|f| self.key(ou, &f, endpoint_id))
    }

    /// A write whose lease was lost: everything but the lease release, so no attempt goes
    /// unrecorded.
    async fn record_unguarded(&self, w: Write<'_>) -> Result<Recorded, StoreError> {
        let p = self.prepare(w);
        let replies = self.kv().exec(p.cmds).await?;
        let reply = p.lane_reply.and_then(|i| replies.into_iter().nth(i));
        Ok(Recorded {
            held: false,
            next_in_lane: self.next_in_lane(&p.ou, &p.endpoint_id, reply),
        })
    }

    /// Several prepared [`JobStore::record`]s in one atomic write, if every lease is still held
    /// (an index of the delivery log that several attempts share is trimmed and given its
    /// expiry once, after all of them are added). `None` when a lease was lost: nothing was
    /// written, and each write is to be made alone ([`JobStore::record`]). Answers in order.
    pub async fn record_all(&self, ps: Vec<Prepared>) -> Result<Option<Vec<Recorded>>, StoreError> {
        // A trim or an expiry of a key is kept only at its last occurrence.
        let kept: Vec<Vec<bool>> = {
            let mut last: HashMap<(u8, &str), (usize, usize)> = HashMap::new();
            for (i, p) in ps.iter().enumerate() {
                for (j, c) in p.cmds.iter().enumerate() {
                    match c {
                        Cmd::ZRemRangeByRank { key, .. } => last.insert((0, key.as_str()), (i, j)),
                        Cmd::PExpire { key, .. } => last.insert((1, key.as_str()), (i, j)),
                        _ => None,
                    };
                }
            }
            ps.iter()
                .enumerate()
                .map(|(i, p)| {
                    p.cmds
                        .iter()
                        .enumerate()
                        .map(|(j, c)| match c {
                            Cmd::ZRemRangeByRank { key, .. } => {
                                last.get(&(0, key.as_str())) == Some(&(i, j))
                            }
                            Cmd::PExpire { key, .. } => {
                                last.get(&(1, key.as_str())) == Some(&(i, j))
                            }
                            _ => true,
                        })
                        .collect()
                })
                .collect()
        };
        let mut guards = Vec::with_capacity(ps.len());
        let mut cmds = Vec::with_capacity(ps.iter().map(|p| p.cmds.len() + 1).sum());
        let mut lanes = Vec::with_capacity(ps.len());
        for (p, kept) in ps.into_iter().zip(kept) {
            let Prepared {
                lease,
                token,
                cmds: own,
                lane_reply,
                ou,
                endpoint_id,
            } = p;
            let mut at = None;
            for (j, (c, keep)) in own.into_iter().zip(kept).enumerate() {
                if keep {
                    if lane_reply == Some(j) {
                        at = Some(cmds.len());
                    }
                    cmds.push(c);
                }
            }
            cmds.push(Cmd::Del { key: lease.clone() });
            guards.push(Guard::Equals(lease, token));
            lanes.push((at, ou, endpoint_id));
        }
        // The attempts' adds to the shared indexes of the delivery log (and the jobs' leaving
        // the due set) as one command per key.
        let (cmds, at) = coalesce_zset_writes(cmds);
        let Some(mut replies) = self.kv().exec_guarded(guards, cmds).await? else {
            return Ok(None);
        };
        Ok(Some(
            lanes
                .into_iter()
                .map(|(lane_at, ou, endpoint_id)| {
                    let reply = lane_at.map(|i| std::mem::replace(&mut replies[at[i]], Reply::Nil));
                    Recorded {
                        held: true,
                        next_in_lane: self.next_in_lane(&ou, &endpoint_id, reply),
                    }
                })
                .collect(),
        ))
    }

    /// The job stored under `job_key`, if any.
    pub async fn load(&self, job_key: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.load_raw(job_key).await?.map(|(_, job)| job))
    }

    /// The job with its exact stored bytes (for a compare-and-set).
    async fn load_raw(&self, job_key: &str) -> Result<Option<(Vec<u8>, Job)>, StoreError> {
        let Some(raw) = exec_one(
            self.kv(),
            Cmd::Get {
                key: job_key.to_string(),
            },
        )
        .await?
        .into_bytes() else {
            return Ok(None);
        };
        let job = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((raw, job)))
    }

    /// Whether a worker holds the lease on `job_key` now.
    pub async fn is_leased(&self, job_key: &str) -> Result<bool, StoreError> {
        let key = self.keys.delivery_lease(job_key);
        Ok(exec_one(self.kv(), Cmd::Exists { key }).await?.as_int() > 0)
    }

    fn disabled_key(&self, job: &Job) -> String {
        self.keys
            .delivery_disabled(&job.fired.ou_id, &job.fired.trigger_id, &job.endpoint_id)
    }

    /// Whether a 410 disabled this endpoint for the trigger.
    pub async fn is_disabled(&self, job: &Job) -> Result<bool, StoreError> {
        let key = self.disabled_key(job);
        Ok(exec_one(self.kv(), Cmd::Exists { key }).await?.as_int() > 0)
    }
}

/// The one member of a one-member range reply.
fn first_member(r: Reply) -> Option<String> {
    r.into_array()
        .into_iter()
        .next()
        .and_then(Reply::into_bytes)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests;
