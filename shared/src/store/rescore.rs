//! Rescore and preview jobs (issue 15): what `POST /rulesets/rescore` and `POST /rulesets/preview`
//! create, what the processors work on, and what `GET /rescore-jobs/{id}` shows.
//!
//! A job replays one OU's events from the events topic through a set of rules. The work is
//! split by events partition: the processor that owns a partition replays it
//! (`processor::rescore`) and reports that partition's [`PartitionProgress`] here; the job's
//! view ([`JobView`]) adds the partitions up. A rescore then switches each partition's leads
//! to the replayed state (one atomic write in the partition's slot); a preview writes no state
//! and reports how scores would change ([`PreviewPart`]).
//!
//! Layout (all built by [`Keys`]):
//! - `rescore:job:{id}` (hash): `job` → the [`Job`] as created (JSON, never rewritten),
//!   `state` → [`JobStatus`] (JSON), `partitions` → the events topic's partition count (set by
//!   the first processor that sees the job), `p:{n}` → partition n's [`PartitionProgress`].
//! - `rescore:active` (sorted set, by creation time): the ids of running jobs, which every
//!   processor polls.
//! - per OU, `rescore:running` (string): the id of the OU's running rescore; at most one at a
//!   time (previews are not limited).
//!
//! A finished job's hash expires after [`FINISHED_TTL_MS`].

use std::collections::BTreeMap;

use leadstream_domain::model::ruleset::Ruleset;
use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::store::{Cmd, Guard, Reply, Store, StoreError};

/// How long a finished job stays readable.
pub const FINISHED_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// How many leads a preview lists as the largest changes.
pub const PREVIEW_TOP: usize = 20;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Rescore,
    Preview,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

/// A job as requested: fixed once created.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub org_id: String,
    pub ou_id: String,
    /// Replay events whose event time is at or after this (Unix ms); `None`: every retained
    /// record.
    pub since_ms: Option<i64>,
    /// Rescore: fire milestone triggers for leads that end at or above a threshold they were
    /// below.
    #[serde(default)]
    pub fire_triggers: bool,
    /// Preview: the draft ruleset, replacing the OU's ruleset of the same id (or added).
    #[serde(default)]
    pub draft: Option<Ruleset>,
    pub created_at_ms: i64,
}

impl Job {
    /// A new rescore of OU `ou_id` of `org_id`, created at `now_ms`.
    pub fn rescore(
        org_id: &str,
        ou_id: &str,
        since_ms: Option<i64>,
        fire_triggers: bool,
        now_ms: i64,
    ) -> Job {
        Job::new(
            JobKind::Rescore,
            org_id,
            ou_id,
            since_ms,
            fire_triggers,
            None,
            now_ms,
        )
    }

    /// A new preview of `draft` for OU `ou_id` of `org_id`, created at `now_ms`.
    pub fn preview(
        org_id: &str,
        ou_id: &str,
        since_ms: Option<i64>,
        draft: Ruleset,
        now_ms: i64,
    ) -> Job {
        Job::new(
            JobKind::Preview,
            org_id,
            ou_id,
            since_ms,
            false,
            Some(draft),
            now_ms,
        )
    }

    fn new(
        kind: JobKind,
        org_id: &str,
        ou_id: &str,
        since_ms: Option<i64>,
        fire_triggers: bool,
        draft: Option<Ruleset>,
        now_ms: i64,
    ) -> Job {
        Job {
            id: crate::ids::new_id("rsj"),
            kind,
            org_id: org_id.to_string(),
            ou_id: ou_id.to_string(),
            since_ms,
            fire_triggers,
            draft,
            created_at_ms: now_ms,
        }
    }
}

/// Where a job stands as a whole.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JobStatus {
    pub state: JobState,
    #[serde(default)]
    pub finished_at_ms: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// What a partition's replay has reached.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the partition's history into the shadow state.
    Replaying,
    /// Caught up with the live applied offset; switching the leads to the shadow state.
    Switching,
    Done,
    Failed,
}

/// One partition's part of a job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PartitionProgress {
    pub partition: i32,
    pub phase: Option<Phase>,
    /// Records of the partition read (every OU's).
    pub records_read: u64,
    /// Events of the job's OU applied to the shadow state (duplicates and events before
    /// `since` not counted).
    pub events_applied: u64,
    /// Leads of the OU in the partition whose state the switch wrote (rescore) or compared
    /// (preview).
    pub leads: u64,
    /// Of those, leads whose score changed.
    pub scores_changed: u64,
    /// Milestone firings sent for crossings the rescore caused (`fire_triggers`).
    pub fired: u64,
    /// The first and last offsets read.
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    /// Kafka timestamps of the first and last records read (Unix ms).
    pub covered_from_ms: Option<i64>,
    pub covered_to_ms: Option<i64>,
    /// The latest event time applied (Unix ms).
    pub event_time_reached_ms: Option<i64>,
    /// The partition's oldest retained record is newer than `since` (or, without `since`,
    /// records were already deleted by retention): older events could not be replayed.
    pub retention_gap: bool,
    /// The live applied offset the shadow state was switched at.
    pub switched_at_offset: Option<i64>,
    pub preview: Option<PreviewPart>,
    pub error: Option<String>,
    pub updated_at_ms: i64,
}

/// One lead's score before and after.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LeadChange {
    pub lead_id: String,
    pub before: i64,
    pub after: i64,
    pub change: i64,
}

/// How one milestone trigger's population would move.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MilestoneShift {
    pub name: String,
    pub threshold: i64,
    /// Leads below the threshold now, at or above it after.
    pub newly_reached: u64,
    /// Leads at or above the threshold now, below it after.
    pub fell_below: u64,
}

/// A preview's result for some partitions (summed into the job's by [`PreviewPart::merge`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PreviewPart {
    pub leads: u64,
    /// Leads per change bucket (labels from [`change_bucket`]).
    pub changes: BTreeMap<String, u64>,
    /// The [`PREVIEW_TOP`] largest changes (by absolute change, then lead id).
    pub top: Vec<LeadChange>,
    /// Per milestone trigger id.
    pub milestones: BTreeMap<String, MilestoneShift>,
}

/// The change buckets, in order.
pub const CHANGE_BUCKETS: [&str; 9] = [
    "<=-100", "-99..-50", "-49..-10", "-9..-1", "0", "1..9", "10..49", "50..99", ">=100",
];

/// The bucket of a score change.
pub fn change_bucket(change: i64) -> &'static str {
    match change {
        i64::MIN..=-100 => CHANGE_BUCKETS[0],
        -99..=-50 => CHANGE_BUCKETS[1],
        -49..=-10 => CHANGE_BUCKETS[2],
        -9..=-1 => CHANGE_BUCKETS[3],
        0 => CHANGE_BUCKETS[4],
        1..=9 => CHANGE_BUCKETS[5],
        10..=49 => CHANGE_BUCKETS[6],
        50..=99 => CHANGE_BUCKETS[7],
        _ => CHANGE_BUCKETS[8],
    }
}

impl PreviewPart {
    /// Count one lead.
    pub fn add(&mut self, change: LeadChange) {
        self.leads += 1;
        *self
            .changes
            .entry(change_bucket(change.change).to_string())
            .or_default() += 1;
        self.top.push(change);
        trim_top(&mut self.top);
    }

    pub fn merge(&mut self, other: &PreviewPart) {
        self.leads += other.leads;
        for (b, n) in &other.changes {
            *self.changes.entry(b.clone()).or_default() += n;
        }
        self.top.extend(other.top.iter().cloned());
        trim_top(&mut self.top);
        for (id, s) in &other.milestones {
            let m = self.milestones.entry(id.clone()).or_default();
            m.name.clone_from(&s.name);
            m.threshold = s.threshold;
            m.newly_reached += s.newly_reached;
            m.fell_below += s.fell_below;
        }
    }
}

/// Largest absolute change first (then by lead id), at most [`PREVIEW_TOP`].
fn trim_top(top: &mut Vec<LeadChange>) {
    top.sort_by(|a, b| {
        b.change
            .unsigned_abs()
            .cmp(&a.change.unsigned_abs())
            .then_with(|| a.lead_id.cmp(&b.lead_id))
    });
    top.truncate(PREVIEW_TOP);
}

/// A job with everything reported about it.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    #[serde(flatten)]
    pub status: JobStatus,
    /// The events topic's partition count, once a processor has seen the job.
    pub partitions_total: Option<i32>,
    pub partitions_done: i32,
    pub progress: Totals,
    /// Per partition, by partition number.
    pub partitions: Vec<PartitionProgress>,
    /// Preview: the result (once every partition is done).
    pub preview: Option<PreviewPart>,
}

/// The partitions' progress added up.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub records_read: u64,
    pub events_applied: u64,
    pub leads: u64,
    pub scores_changed: u64,
    pub fired: u64,
    /// The event time every partition has reached (the smallest of the partitions' latest
    /// applied event times; partitions with no event of the OU do not hold it back).
    pub event_time_reached_ms: Option<i64>,
    /// Kafka timestamps of the oldest and newest records read, over all partitions.
    pub covered_from_ms: Option<i64>,
    pub covered_to_ms: Option<i64>,
    /// Some partition's retention did not reach back to `since`.
    pub retention_gap: bool,
}

impl JobView {
    fn build(
        job: Job,
        status: JobStatus,
        total: Option<i32>,
        parts: Vec<PartitionProgress>,
    ) -> Self {
        let mut t = Totals::default();
        let mut done = 0;
        let mut preview: Option<PreviewPart> = None;
        for p in &parts {
            t.records_read += p.records_read;
            t.events_applied += p.events_applied;
            t.leads += p.leads;
            t.scores_changed += p.scores_changed;
            t.fired += p.fired;
            t.retention_gap |= p.retention_gap;
            t.covered_from_ms = min_opt(t.covered_from_ms, p.covered_from_ms);
            t.covered_to_ms = t.covered_to_ms.max(p.covered_to_ms);
            if let Some(e) = p.event_time_reached_ms {
                t.event_time_reached_ms = min_opt(t.event_time_reached_ms, Some(e));
            }
            if p.phase == Some(Phase::Done) {
                done += 1;
                if let Some(part) = &p.preview {
                    preview.get_or_insert_with(PreviewPart::default).merge(part);
                }
            }
        }
        let complete = total.is_some_and(|n| done >= n);
        if job.kind == JobKind::Preview && !complete {
            preview = None;
        }
        if let Some(p) = &mut preview {
            for b in CHANGE_BUCKETS {
                p.changes.entry(b.to_string()).or_default();
            }
        }
        JobView {
            job,
            status,
            partitions_total: total,
            partitions_done: done,
            progress: t,
            partitions: parts,
            preview,
        }
    }

    /// Every partition reported done.
    pub fn all_done(&self) -> bool {
        self.partitions_total
            .is_some_and(|n| self.partitions_done >= n)
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Why a rescore could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateRefused {
    /// The OU already runs this rescore.
    AlreadyRunning(String),
}

/// The jobs, read and written by the gateway (create, read, cancel) and the processors
/// (progress, finish).
#[derive(Clone)]
pub struct RescoreJobs {
    store: Store,
    keys: Keys,
}

impl RescoreJobs {
    pub fn new(store: Store, keys: Keys) -> RescoreJobs {
        RescoreJobs { store, keys }
    }

    fn job_key(&self, id: &str) -> String {
        self.keys.rescore_job(id)
    }

    /// Record a new running job. A rescore needs the OU's rescore slot: refused while another
    /// rescore of the OU runs.
    pub async fn create(&self, job: &Job) -> Result<Result<(), CreateRefused>, StoreError> {
        if job.kind == JobKind::Rescore {
            let lock = self.keys.rescore_running(&job.ou_id);
            let set = crate::store::exec_one(
                &*self.store,
                Cmd::SetNx {
                    key: lock.clone(),
                    value: job.id.clone().into_bytes(),
                    ttl_ms: None,
                },
            )
            .await?;
            if set.as_int() != 1 {
                let holder = crate::store::exec_one(&*self.store, Cmd::Get { key: lock }).await?;
                let holder = holder
                    .into_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // The holder may have finished between the two commands; say so plainly.
                return Ok(Err(CreateRefused::AlreadyRunning(holder)));
            }
        }
        let key = self.job_key(&job.id);
        let status = JobStatus {
            state: JobState::Running,
            finished_at_ms: None,
            error: None,
        };
        self.store
            .exec(vec![
                Cmd::HSetMany {
                    key,
                    pairs: vec![
                        ("job".into(), to_json(job)?),
                        ("state".into(), to_json(&status)?),
                    ],
                },
                Cmd::ZAdd {
                    key: self.keys.rescore_active(),
                    score: job.created_at_ms as f64,
                    member: job.id.clone().into_bytes(),
                },
            ])
            .await?;
        Ok(Ok(()))
    }

    /// A job and everything reported about it; `None` when unknown (or expired).
    pub async fn get(&self, id: &str) -> Result<Option<JobView>, StoreError> {
        let pairs = crate::store::exec_one(
            &*self.store,
            Cmd::HGetAll {
                key: self.job_key(id),
            },
        )
        .await?
        .into_pairs();
        let mut job = None;
        let mut status = None;
        let mut total = None;
        let mut parts = Vec::new();
        for (field, value) in pairs {
            match field.as_str() {
                "job" => job = Some(from_json::<Job>(&value)?),
                "state" => status = Some(from_json::<JobStatus>(&value)?),
                "partitions" => {
                    total = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                }
                f if f.starts_with("p:") => parts.push(from_json::<PartitionProgress>(&value)?),
                _ => {}
            }
        }
        let Some(job) = job else { return Ok(None) };
        let status = status.unwrap_or(JobStatus {
            state: JobState::Running,
            finished_at_ms: None,
            error: None,
        });
        parts.sort_by_key(|p| p.partition);
        Ok(Some(JobView::build(job, status, total, parts)))
    }

    /// The running jobs, oldest first.
    pub async fn active(&self) -> Result<Vec<JobView>, StoreError> {
        let ids = crate::store::exec_one(
            &*self.store,
            Cmd::ZRangeByScore {
                key: self.keys.rescore_active(),
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
                limit: Some(1000),
            },
        )
        .await?
        .into_array();
        let mut out = Vec::new();
        for id in ids.into_iter().filter_map(Reply::into_bytes) {
            let id = String::from_utf8_lossy(&id).into_owned();
            match self.get(&id).await? {
                Some(v) if v.status.state == JobState::Running => out.push(v),
                // Finished (or expired) but still listed: a crash between the two writes of
                // `finish`. Tidy up.
                _ => {
                    self.store
                        .exec(vec![Cmd::ZRem {
                            key: self.keys.rescore_active(),
                            member: id.into_bytes(),
                        }])
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Record the events topic's partition count (the first writer wins).
    pub async fn set_partitions(&self, id: &str, n: i32) -> Result<(), StoreError> {
        self.store
            .exec(vec![Cmd::HSetNx {
                key: self.job_key(id),
                field: "partitions".into(),
                value: n.to_string().into_bytes(),
            }])
            .await?;
        Ok(())
    }

    /// Report one partition's progress (replacing its earlier report).
    pub async fn report(&self, id: &str, p: &PartitionProgress) -> Result<(), StoreError> {
        self.store
            .exec(vec![Cmd::HSet {
                key: self.job_key(id),
                field: format!("p:{}", p.partition),
                value: to_json(p)?,
            }])
            .await?;
        Ok(())
    }

    /// Finish a running job (completed, cancelled or failed); `false` when it was not running.
    /// Frees the OU's rescore slot and starts the job's expiry.
    pub async fn finish(
        &self,
        view: &JobView,
        state: JobState,
        error: Option<String>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = self.job_key(&view.job.id);
        let current = crate::store::exec_one(
            &*self.store,
            Cmd::HGet {
                key: key.clone(),
                field: "state".into(),
            },
        )
        .await?
        .into_bytes();
        let running = match current {
            Some(b) => from_json::<JobStatus>(&b)?.state == JobState::Running,
            None => false,
        };
        if !running {
            return Ok(false);
        }
        let status = JobStatus {
            state,
            finished_at_ms: Some(now_ms),
            error,
        };
        self.store
            .exec(vec![
                Cmd::HSet {
                    key: key.clone(),
                    field: "state".into(),
                    value: to_json(&status)?,
                },
                Cmd::PExpire {
                    key,
                    ttl_ms: FINISHED_TTL_MS,
                },
                Cmd::ZRem {
                    key: self.keys.rescore_active(),
                    member: view.job.id.clone().into_bytes(),
                },
            ])
            .await?;
        if view.job.kind == JobKind::Rescore {
            let lock = self.keys.rescore_running(&view.job.ou_id);
            self.store
                .exec_guarded(
                    vec![Guard::Equals(
                        lock.clone(),
                        view.job.id.clone().into_bytes(),
                    )],
                    vec![Cmd::Del { key: lock }],
                )
                .await?;
        }
        Ok(true)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(format!("rescore job: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;
    use std::sync::Arc;

    fn job(id: &str, kind: JobKind) -> Job {
        Job {
            id: id.into(),
            kind,
            org_id: "org_1".into(),
            ou_id: "unit_1".into(),
            since_ms: None,
            fire_triggers: false,
            draft: None,
            created_at_ms: 1,
        }
    }

    fn progress(p: i32, phase: Phase, preview: Option<PreviewPart>) -> PartitionProgress {
        PartitionProgress {
            partition: p,
            phase: Some(phase),
            records_read: 10,
            events_applied: 4,
            event_time_reached_ms: Some(100 + p as i64),
            covered_from_ms: Some(50 - p as i64),
            covered_to_ms: Some(200 + p as i64),
            preview,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_rescore_per_ou_runs_and_a_finished_job_frees_the_slot() {
        let jobs = RescoreJobs::new(Arc::new(MemoryKv::new()), Keys::new("t"));
        assert_eq!(
            jobs.create(&job("rsj_1", JobKind::Rescore)).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            jobs.create(&job("rsj_2", JobKind::Rescore)).await.unwrap(),
            Err(CreateRefused::AlreadyRunning("rsj_1".into()))
        );
        // Previews are not limited.
        assert_eq!(
            jobs.create(&job("rsj_3", JobKind::Preview)).await.unwrap(),
            Ok(())
        );
        let active = jobs.active().await.unwrap();
        assert_eq!(active.len(), 2);
        let v = jobs.get("rsj_1").await.unwrap().unwrap();
        assert!(jobs.finish(&v, JobState::Cancelled, None, 5).await.unwrap());
        assert!(!jobs.finish(&v, JobState::Completed, None, 6).await.unwrap());
        assert_eq!(
            jobs.get("rsj_1").await.unwrap().unwrap().status.state,
            JobState::Cancelled
        );
        assert_eq!(jobs.active().await.unwrap().len(), 1);
        assert_eq!(
            jobs.create(&job("rsj_4", JobKind::Rescore)).await.unwrap(),
            Ok(())
        );
        assert!(jobs.get("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_view_adds_up_the_partitions() {
        let jobs = RescoreJobs::new(Arc::new(MemoryKv::new()), Keys::new("t"));
        assert_eq!(
            jobs.create(&job("rsj_1", JobKind::Preview)).await.unwrap(),
            Ok(())
        );
        jobs.set_partitions("rsj_1", 2).await.unwrap();
        jobs.set_partitions("rsj_1", 9).await.unwrap();
        let mut a = PreviewPart::default();
        a.add(LeadChange {
            lead_id: "l1".into(),
            before: 0,
            after: 50,
            change: 50,
        });
        a.milestones.insert(
            "tr_1".into(),
            MilestoneShift {
                name: "Hot".into(),
                threshold: 40,
                newly_reached: 1,
                fell_below: 0,
            },
        );
        jobs.report("rsj_1", &progress(0, Phase::Done, Some(a.clone())))
            .await
            .unwrap();
        jobs.report("rsj_1", &progress(1, Phase::Replaying, None))
            .await
            .unwrap();
        let v = jobs.get("rsj_1").await.unwrap().unwrap();
        assert_eq!(v.partitions_total, Some(2));
        assert_eq!(v.partitions_done, 1);
        assert!(!v.all_done());
        assert!(
            v.preview.is_none(),
            "a preview is shown whole or not at all"
        );
        assert_eq!(v.progress.records_read, 20);
        assert_eq!(v.progress.event_time_reached_ms, Some(100));
        assert_eq!(v.progress.covered_from_ms, Some(49));
        assert_eq!(v.progress.covered_to_ms, Some(201));
        let mut b = PreviewPart::default();
        b.add(LeadChange {
            lead_id: "l2".into(),
            before: 60,
            after: 10,
            change: -50,
        });
        b.milestones.insert(
            "tr_1".into(),
            MilestoneShift {
                name: "Hot".into(),
                threshold: 40,
                newly_reached: 0,
                fell_below: 1,
            },
        );
        jobs.report("rsj_1", &progress(1, Phase::Done, Some(b)))
            .await
            .unwrap();
        let v = jobs.get("rsj_1").await.unwrap().unwrap();
        assert!(v.all_done());
        let p = v.preview.unwrap();
        assert_eq!(p.leads, 2);
        assert_eq!(p.changes["50..99"], 1);
        assert_eq!(p.changes["-99..-50"], 1);
        assert_eq!(p.changes["0"], 0);
        assert_eq!(p.changes.len(), CHANGE_BUCKETS.len());
        assert_eq!(p.milestones["tr_1"].newly_reached, 1);
        assert_eq!(p.milestones["tr_1"].fell_below, 1);
        assert_eq!(p.top.len(), 2);
    }

    #[test]
    fn buckets_cover_every_change_and_the_top_keeps_the_largest() {
        assert_eq!(change_bucket(-100), "<=-100");
        assert_eq!(change_bucket(-50), "-99..-50");
        assert_eq!(change_bucket(0), "0");
        assert_eq!(change_bucket(9), "1..9");
        assert_eq!(change_bucket(100), ">=100");
        let mut p = PreviewPart::default();
        for i in 0..100 {
            p.add(LeadChange {
                lead_id: format!("l{i:03}"),
                before: 0,
                after: i,
                change: i,
            });
        }
        assert_eq!(p.top.len(), PREVIEW_TOP);
        assert_eq!(p.top[0].change, 99);
        assert_eq!(p.top[PREVIEW_TOP - 1].change, 80);
        assert_eq!(p.leads, 100);
    }
}
