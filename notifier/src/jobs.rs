//! Durable delivery state in the store (Redis), so retries survive restarts and nothing is
//! delivered twice to the same endpoint.
//!
//! Keys (all under `LEADSTREAM_REDIS_PREFIX`):
//! - `ou:{ou}:notifier:dlv:{fired_id}:{endpoint_id}` — the [`Job`]: the fired record, the
//!   endpoint, the attempt count and the [`State`]. It is created only if absent (a guarded
//!   write), which is the idempotency on `(fired_id, endpoint)`: a replayed or re-produced fired
//!   record finds it and is skipped. It lives for the retention period (default 30 days).
//! - `g:notifier:due` — one sorted set of job keys by the time their next step is due (now for a
//!   new job, `retry_at` for a failed one, now for a dead one whose DLQ record is not yet sent).
//!   Every notifier replica polls it; a job leaves it when it is final.
//! - `{job key}:lease` — a short `SET NX PX` claim: the one worker that holds it makes the attempt.
//!   A worker that dies mid-attempt loses the lease when it expires and the job is taken again.
//! - `ou:{ou}:notifier:disabled:{trigger_id}:{endpoint_id}` — set by a 410 Gone.
//!
//! On a Redis Cluster every one of these keys (and the delivery records) carries the hash tag
//! `{notifier}` (see [`Keys::for_cluster`]): a job, its lease, the due set and the delivery
//! records one write touches together live in one slot.
//!
//! The one window where a crash can cause a second delivery: the worker got a 2xx and died
//! before [`record`] (one round trip) stored it. The job is then attempted again after the lease
//! expires, with the same `webhook-id`, which Standard Webhooks receivers use to drop duplicates.

use leadstream_domain::fired::TriggerFired;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{Cmd, Guard, Kv, Reply, StoreError};
use leadstream_shared::trace::TraceContext;
use serde::{Deserialize, Serialize};

use crate::attempt::State;
use crate::delivery::Channel;
use crate::endpoint::Endpoint;

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
}

pub fn job_key(keys: &Keys, ou: &str, fired_id: &str, endpoint_id: &str) -> String {
    keys.notifier_ou(ou, &format!("notifier:dlv:{fired_id}:{endpoint_id}"))
}

pub fn due_key(keys: &Keys) -> String {
    keys.notifier_global("notifier:due")
}

pub fn lease_key(job_key: &str) -> String {
    format!("{job_key}:lease")
}

pub fn disabled_key(keys: &Keys, ou: &str, trigger_id: &str, endpoint_id: &str) -> String {
    keys.notifier_ou(ou, &format!("notifier:disabled:{trigger_id}:{endpoint_id}"))
}

/// The endpoint id at the end of a job key (for per-endpoint limits before the job is loaded).
pub fn endpoint_of(job_key: &str) -> &str {
    job_key.rsplit(':').next().unwrap_or(job_key)
}

/// The OU of a job key (`{prefix}:ou:{ou}:notifier:dlv:…`); empty when it has none.
pub fn ou_of(job_key: &str) -> &str {
    job_key
        .rfind(":notifier:dlv:")
        .and_then(|end| job_key[..end].rsplit_once(":ou:"))
        .map_or("", |(_, ou)| ou)
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Create the jobs that do not exist yet and make them due now. Answers, per job, whether it
/// was created (false: a duplicate). Each job is one atomic guarded write; they run
/// concurrently (pipelined on one connection).
pub async fn enqueue(
    store: &dyn Kv,
    keys: &Keys,
    jobs: &[Job],
    now_ms: i64,
    retention_ms: u64,
) -> Result<Vec<bool>, StoreError> {
    let due = due_key(keys);
    let writes = jobs.iter().map(|j| {
        let key = job_key(keys, &j.fired.ou_id, &j.fired.fired_id, &j.endpoint_id);
        store.exec_guarded(
            vec![Guard::Absent(key.clone())],
            vec![
                Cmd::Set {
                    key: key.clone(),
                    value: json(j),
                    ttl_ms: Some(retention_ms),
                },
                Cmd::ZAdd {
                    key: due.clone(),
                    score: now_ms as f64,
                    member: key.into_bytes(),
                },
            ],
        )
    });
    futures::future::try_join_all(writes)
        .await
        .map(|r| r.into_iter().map(|x| x.is_some()).collect())
}

/// Job keys due at `now_ms`, earliest first.
pub async fn due(
    store: &dyn Kv,
    keys: &Keys,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let r = store
        .exec(vec![Cmd::ZRangeByScore {
            key: due_key(keys),
            min: f64::NEG_INFINITY,
            max: now_ms as f64,
            limit: Some(limit),
        }])
        .await?;
    Ok(r.into_iter()
        .next()
        .map(Reply::into_array)
        .unwrap_or_default()
        .into_iter()
        .filter_map(Reply::into_bytes)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect())
}

/// Take the lease on a job and load it. `None` when another worker holds the lease, or the job
/// is gone (expired) — then it is also removed from the due set.
pub async fn claim(
    store: &dyn Kv,
    keys: &Keys,
    job_key: &str,
    token: &str,
    lease_ms: u64,
) -> Result<Option<Job>, StoreError> {
    let lease = lease_key(job_key);
    let mut r = store
        .exec(vec![
            Cmd::SetNx {
                key: lease.clone(),
                value: token.as_bytes().to_vec(),
                ttl_ms: Some(lease_ms),
            },
            Cmd::Get {
                key: job_key.to_string(),
            },
        ])
        .await?
        .into_iter();
    let won = r.next().map(|x| x.as_int() == 1).unwrap_or(false);
    if !won {
        return Ok(None);
    }
    let job = match r.next().map(Reply::json::<Job>).transpose()?.flatten() {
        Some(j) => j,
        None => {
            store
                .exec(vec![
                    Cmd::ZRem {
                        key: due_key(keys),
                        member: job_key.as_bytes().to_vec(),
                    },
                    Cmd::Del { key: lease },
                ])
                .await?;
            return Ok(None);
        }
    };
    Ok(Some(job))
}

/// Give a lease back without changing the job.
pub async fn release(store: &dyn Kv, job_key: &str, token: &str) -> Result<(), StoreError> {
    let lease = lease_key(job_key);
    store
        .exec_guarded(
            vec![Guard::Equals(lease.clone(), token.as_bytes().to_vec())],
            vec![Cmd::Del { key: lease }],
        )
        .await
        .map(|_| ())
}

/// Where the job goes in the due set after a write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Due again at this time (a retry, or a DLQ send still to do).
    At(i64),
    /// Final: leaves the due set.
    Done,
}

/// One job write: which job, under which lease, its new state and next due time.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub job_key: &'a str,
    pub token: &'a str,
    pub job: &'a Job,
    pub next: Next,
    pub retention_ms: u64,
}

/// Store the job's new state, its place in the due set and `extra` commands (the attempt
/// record), and give the lease back — atomically, if we still hold the lease. If the lease was
/// lost (the attempt outlived it), everything but the lease release is written anyway so no
/// attempt goes unrecorded, and `false` is answered.
pub async fn record(
    store: &dyn Kv,
    keys: &Keys,
    w: Write<'_>,
    extra: Vec<Cmd>,
) -> Result<bool, StoreError> {
    let Write {
        job_key,
        token,
        job,
        next,
        retention_ms,
    } = w;
    let lease = lease_key(job_key);
    let mut cmds = vec![Cmd::Set {
        key: job_key.to_string(),
        value: json(job),
        ttl_ms: Some(retention_ms),
    }];
    cmds.push(match next {
        Next::At(t) => Cmd::ZAdd {
            key: due_key(keys),
            score: t as f64,
            member: job_key.as_bytes().to_vec(),
        },
        Next::Done => Cmd::ZRem {
            key: due_key(keys),
            member: job_key.as_bytes().to_vec(),
        },
    });
    cmds.extend(extra);
    let mut guarded = cmds.clone();
    guarded.push(Cmd::Del { key: lease.clone() });
    let held = store
        .exec_guarded(
            vec![Guard::Equals(lease, token.as_bytes().to_vec())],
            guarded,
        )
        .await?
        .is_some();
    if !held {
        store.exec(cmds).await?;
    }
    Ok(held)
}

/// The job stored under `job_key` with its exact stored bytes (for a compare-and-set), if any.
pub async fn load(store: &dyn Kv, job_key: &str) -> Result<Option<(Vec<u8>, Job)>, StoreError> {
    let r = store
        .exec(vec![Cmd::Get {
            key: job_key.to_string(),
        }])
        .await?;
    let Some(raw) = r.into_iter().next().and_then(Reply::into_bytes) else {
        return Ok(None);
    };
    let job = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some((raw, job)))
}

/// Replace a job with `job` and make it due now — only if it still holds exactly `seen` (what
/// [`load`] read), so a concurrent worker or replay is never overwritten. Used by
/// `leadstream admin dlq replay` to give a dead job a fresh retry schedule. Answers whether the
/// write happened.
pub async fn requeue(
    store: &dyn Kv,
    keys: &Keys,
    job_key: &str,
    seen: Vec<u8>,
    job: &Job,
    now_ms: i64,
    retention_ms: u64,
) -> Result<bool, StoreError> {
    let cmds = vec![
        Cmd::Set {
            key: job_key.to_string(),
            value: json(job),
            ttl_ms: Some(retention_ms),
        },
        Cmd::ZAdd {
            key: due_key(keys),
            score: now_ms as f64,
            member: job_key.as_bytes().to_vec(),
        },
    ];
    let done = store
        .exec_guarded(vec![Guard::Equals(job_key.to_string(), seen)], cmds)
        .await?;
    Ok(done.is_some())
}

/// Whether a 410 disabled this endpoint for the trigger.
pub async fn is_disabled(store: &dyn Kv, keys: &Keys, job: &Job) -> Result<bool, StoreError> {
    let key = disabled_key(
        keys,
        &job.fired.ou_id,
        &job.fired.trigger_id,
        &job.endpoint_id,
    );
    let r = store.exec(vec![Cmd::Exists { key }]).await?;
    Ok(r.first().map(|x| x.as_int() > 0).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::milestone;
    use leadstream_shared::store::MemoryKv;

    #[tokio::test]
    async fn enqueue_is_idempotent_and_leases_are_exclusive() {
        jobs_round(MemoryKv::new(), Keys::new("t")).await;
    }

    /// On a cluster every atomic write of a delivery (with its attempt record and 410 mark)
    /// stays in one slot: the strict store refuses a cross-slot batch as Redis Cluster does.
    #[tokio::test]
    async fn on_a_cluster_every_job_write_stays_in_one_slot() {
        jobs_round(MemoryKv::cluster_strict(), Keys::for_cluster("t")).await;
    }

    async fn jobs_round(kv: MemoryKv, keys: Keys) {
        let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
        let job = Job::new(&milestone(), &ep, 0, 7, 1000);
        assert_eq!(
            enqueue(&kv, &keys, std::slice::from_ref(&job), 1000, 60_000)
                .await
                .unwrap(),
            [true]
        );
        assert_eq!(
            enqueue(&kv, &keys, std::slice::from_ref(&job), 1000, 60_000)
                .await
                .unwrap(),
            [false]
        );

        let due_now = due(&kv, &keys, 1000, 10).await.unwrap();
        assert_eq!(due_now.len(), 1);
        let k = &due_now[0];
        assert_eq!(endpoint_of(k), ep.id());
        assert!(due(&kv, &keys, 999, 10).await.unwrap().is_empty());

        let got = claim(&kv, &keys, k, "a", 10_000).await.unwrap().unwrap();
        assert_eq!(got, job);
        assert!(claim(&kv, &keys, k, "b", 10_000).await.unwrap().is_none());

        let mut done = got.clone();
        done.state = State::Succeeded { at_ms: 1001 };
        let w = Write {
            job_key: k,
            token: "a",
            job: &done,
            next: Next::Done,
            retention_ms: 60_000,
        };
        let mut extra = leadstream_shared::delivery::record_cmds(&keys, &attempt(&done), 60_000);
        extra.push(Cmd::Set {
            key: disabled_key(&keys, &done.fired.ou_id, &done.fired.trigger_id, &ep.id()),
            value: b"410".to_vec(),
            ttl_ms: None,
        });
        assert!(record(&kv, &keys, w, extra).await.unwrap());
        assert!(is_disabled(&kv, &keys, &done).await.unwrap());
        assert!(requeue(
            &kv,
            &keys,
            k,
            load(&kv, k).await.unwrap().unwrap().0,
            &done,
            1,
            1
        )
        .await
        .unwrap());
        release(&kv, k, "nobody").await.unwrap();
        record(&kv, &keys, w, vec![]).await.unwrap();
        assert!(due(&kv, &keys, i64::MAX, 10).await.unwrap().is_empty());
        // Lease released: a claim works again and sees the final state.
        let again = claim(&kv, &keys, k, "c", 10_000).await.unwrap().unwrap();
        assert!(again.state.is_final());
        // A stale holder's write still lands but reports the lost lease.
        assert!(!record(&kv, &keys, w, vec![]).await.unwrap());
    }

    fn attempt(job: &Job) -> leadstream_shared::delivery::DeliveryAttempt {
        use leadstream_shared::delivery::{AttemptStatus, DeliveryAttempt};
        DeliveryAttempt {
            id: "att_1".into(),
            fired_id: job.fired.fired_id.clone(),
            ou_id: job.fired.ou_id.clone(),
            lead_id: job.fired.lead_id.clone(),
            trigger_id: job.fired.trigger_id.clone(),
            trigger_name: "t".into(),
            channel: job.channel,
            endpoint_id: job.endpoint_id.clone(),
            target: job.target.clone(),
            attempt: 1,
            at_ms: 1001,
            status: AttemptStatus::Succeeded,
            status_code: Some(200),
            error: None,
            latency_ms: 3,
            response_body: None,
            next_attempt_at_ms: None,
        }
    }

    #[test]
    fn jobs_keep_their_trace_context_and_old_jobs_still_decode() {
        let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let job = Job::new(&milestone(), &ep, 0, 7, 1000).with_trace(TraceContext::parse(tp, None));
        let back: Job = serde_json::from_slice(&json(&job)).unwrap();
        assert_eq!(
            back.trace.as_ref().map(|t| t.traceparent.as_str()),
            Some(tp)
        );
        // A job stored before the field existed.
        let mut old = serde_json::to_value(Job::new(&milestone(), &ep, 0, 7, 1000)).unwrap();
        assert!(old.get("trace").is_none(), "absent context is not written");
        old.as_object_mut().unwrap().remove("trace");
        let decoded: Job = serde_json::from_value(old).unwrap();
        assert_eq!(decoded.trace, None);
    }
}
