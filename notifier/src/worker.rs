//! The dispatcher: takes due jobs from the store and runs each attempt as its own task.
//!
//! Jobs reach it two ways: new ones straight from the consumer (so a first attempt does not wait
//! for a poll), and every `poll_interval` from the due set (retries, jobs of a crashed worker,
//! jobs another replica enqueued). Before a job is claimed it must get a permit from its
//! endpoint's semaphore (`LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY`) and from the global one
//! (`LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT`); a job that cannot get one stays due and is looked at
//! again on the next poll. So a slow or dead endpoint occupies at most its own few permits and
//! never holds back deliveries to other endpoints. Likewise each OU may hold at most
//! `LEADSTREAM_NOTIFIER_OU_SHARE` of the global permits (default a quarter), so one tenant whose
//! many endpoints all hang until their timeout cannot hold every permit: the other OUs'
//! deliveries keep flowing.
//!
//! One attempt (`Worker::run_job`): claim the lease → load the job → gate: 410-disabled? an
//! earlier job of the same lead to the same endpoint not final yet (its *lane*, see
//! [`crate::jobs`])? → attempt → state transition → one write of the new state, the due time and
//! the attempt record → for a dead job, the DLQ record, then the job leaves the due set and its
//! lane.
//!
//! Writes of attempt results go through one recorder task that puts every write waiting (up to
//! 128) in one atomic write, each under its own lease check (group commit); an attempt returns
//! only once its write is made, so a 2xx is on record before its job leaves the due set.
//!
//! Order: one lead's deliveries to one endpoint are made in firing order. A job behind an earlier
//! one of its lane is not attempted: it is parked (due again when the earlier one can have ended:
//! its retry time, or now, plus the lease) and woken at once by the write that makes the earlier
//! one final. So a retry holds back the same lead's later deliveries to that endpoint (never
//! other leads' or other endpoints'), until it succeeds or is dead-lettered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadstream_shared::avro::{encode_dead_letter, encode_fired, DeadLetter};
use leadstream_shared::ids::{new_id, now_ms};
use leadstream_shared::kafka::{Publisher, Topics};
use leadstream_shared::keys::{delivery_job_endpoint, delivery_job_ou};
use leadstream_shared::metric;
use leadstream_shared::store::StoreError;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::attempt::{transition, DeadReason, Outcome, State};
use crate::deliver::{AttemptReport, Sender};
use crate::delivery::{AttemptStatus, DeliveryAttempt};
use crate::jobs::{Earlier, Gate, Job, JobStore, Next, Prepared, Recorded, Write};
use crate::metrics::{NotifierCounter, NotifierGauge, NotifierHistogram};
use crate::schedule::Schedule;
use leadstream_shared::trace;
use tracing::Instrument;

mod waiting;
use waiting::Waiting;

/// Whether a claimed job is finished with for now, or should be claimed again at once.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Done,
    Again,
}

enum Dispatch {
    Started,
    /// Already in flight here (marked to run again when it ends, if it was a wake-up).
    Skipped,
    /// No permit free (its endpoint's or the global one): it waits.
    Busy(String),
}

/// What the dispatcher needs.
pub struct Worker {
    pub jobs: JobStore,
    pub sender: Sender,
    pub publisher: Publisher,
    pub topics: Topics,
    pub schedule: Schedule,
    pub lease_ms: u64,
    pub poll_interval: Duration,
    pub endpoint_concurrency: usize,
    pub global: Arc<Semaphore>,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Permits one OU may hold at once.
    pub ou_share: usize,
    ous: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Jobs in flight here, each with whether a wake-up came for it meanwhile (it then runs
    /// again when it ends: the wake-up may have come after its own look at its lane).
    in_flight: Mutex<HashMap<String, bool>>,
    /// Jobs that became first in their lane, handed back to the dispatcher.
    wake_tx: mpsc::UnboundedSender<String>,
    wake_rx: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    /// Job writes for the recorder ([`Worker::record`]).
    records_tx: mpsc::UnboundedSender<ToRecord>,
    records_rx: Mutex<Option<mpsc::UnboundedReceiver<ToRecord>>>,
}

/// A job write and where its result goes: `Ok(None)` when it is to be written alone (a lease
/// of its batch was lost).
type ToRecord = (Prepared, oneshot::Sender<Result<Option<Recorded>, String>>);

/// Most job writes the recorder puts in one atomic write.
const RECORD_BATCH: usize = 128;

/// A job the consumer just created, handed over for its first attempt (its lane and trigger are
/// known, so the claim and the gate go in one round trip: [`JobStore::claim_gated`]).
pub struct Fresh {
    pub key: String,
    pub job: Job,
}

/// What an attempt task hands back when it ends.
struct Ended {
    endpoint: String,
    /// A wake-up came while it ran: dispatch it again.
    rerun: Option<String>,
}

/// The builder's inputs (everything but the internal bookkeeping).
pub struct WorkerParts {
    pub jobs: JobStore,
    pub sender: Sender,
    pub publisher: Publisher,
    pub topics: Topics,
    pub schedule: Schedule,
    pub lease_ms: u64,
    pub poll_interval: Duration,
    pub endpoint_concurrency: usize,
    pub max_in_flight: usize,
    /// Global permits one OU may hold at once.
    pub ou_share: usize,
}

impl Worker {
    pub fn new(p: WorkerParts) -> Arc<Worker> {
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let (records_tx, records_rx) = mpsc::unbounded_channel();
        Arc::new(Worker {
            jobs: p.jobs,
            sender: p.sender,
            publisher: p.publisher,
            topics: p.topics,
            schedule: p.schedule,
            lease_ms: p.lease_ms,
            poll_interval: p.poll_interval,
            endpoint_concurrency: p.endpoint_concurrency,
            global: Arc::new(Semaphore::new(p.max_in_flight)),
            endpoints: Mutex::new(HashMap::new()),
            ou_share: p.ou_share.max(1),
            ous: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            wake_tx,
            wake_rx: Mutex::new(Some(wake_rx)),
            records_tx,
            records_rx: Mutex::new(Some(records_rx)),
        })
    }

    /// Run until `shutdown`, then let in-flight attempts finish (each is bounded by its timeout).
    pub async fn run(
        self: Arc<Self>,
        mut fresh: mpsc::Receiver<Fresh>,
        shutdown: CancellationToken,
    ) {
        let mut tasks = JoinSet::new();
        let mut waiting = Waiting::default();
        let taken = (
            self.wake_rx.lock().ok().and_then(|mut w| w.take()),
            self.records_rx.lock().ok().and_then(|mut r| r.take()),
        );
        let (Some(mut wake), Some(records)) = taken else {
            tracing::error!("notifier dispatcher started twice");
            return;
        };
        let recorder = tokio::spawn(record_batches(self.jobs.clone(), records));
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let scan = (self.global.available_permits() * 4).max(512);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(f) = fresh.recv() => {
                    if let Dispatch::Busy(key) = self.try_dispatch(f.key, false, Some(f.job), &mut tasks) {
                        waiting.push(key);
                    }
                }
                Some(key) = wake.recv() => self.dispatch_or_wait(key, true, &mut tasks, &mut waiting),
                _ = tick.tick() => {
                    match self.jobs.due(now_ms(), scan).await {
                        Ok(keys) => for k in keys { self.dispatch_or_wait(k, false, &mut tasks, &mut waiting); },
                        Err(e) => tracing::warn!(error = %e, "cannot read due deliveries; retrying"),
                    }
                    self.prune_endpoints();
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    // A permit was freed: hand it to a job waiting for it, without waiting for
                    // the next poll (the freed endpoint's own queue first).
                    let Ok(ended) = done else { continue };
                    if let Some(key) = ended.rerun {
                        self.dispatch_or_wait(key, true, &mut tasks, &mut waiting);
                    }
                    self.resume_waiting(&ended.endpoint, &mut tasks, &mut waiting);
                }
            }
        }
        tracing::info!(in_flight = tasks.len(), "notifier dispatcher draining");
        while tasks.join_next().await.is_some() {}
        // Every attempt has had its write answered.
        recorder.abort();
    }

    /// [`JobStore::record`] through the recorder, which writes the jobs that finish together in
    /// one atomic write (group commit): the write is made before this returns, as before.
    async fn record(&self, w: Write<'_>) -> Result<Recorded, StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.records_tx.send((self.jobs.prepare(w), tx)).is_err() {
            return self.jobs.record(w).await;
        }
        match rx.await {
            Ok(Ok(Some(r))) => Ok(r),
            Ok(Err(e)) => Err(StoreError::Unavailable(e)),
            // Alone (a lease of its batch was lost), or the recorder is gone (shutdown).
            Ok(Ok(None)) | Err(_) => self.jobs.record(w).await,
        }
    }

    /// `woken`: the job just became first in its lane (see [`Dispatch::Skipped`]).
    fn dispatch_or_wait(
        self: &Arc<Self>,
        key: String,
        woken: bool,
        tasks: &mut JoinSet<Ended>,
        waiting: &mut Waiting,
    ) {
        if let Dispatch::Busy(key) = self.try_dispatch(key, woken, None, tasks) {
            waiting.push(key);
        }
    }

    fn resume_waiting(
        self: &Arc<Self>,
        endpoint: &str,
        tasks: &mut JoinSet<Ended>,
        waiting: &mut Waiting,
    ) {
        let mut order: Vec<String> = vec![endpoint.to_string()];
        order.extend(
            waiting
                .queues
                .keys()
                .filter(|e| *e != endpoint)
                .take(16)
                .cloned(),
        );
        for ep in order {
            while let Some(key) = waiting.pop(&ep) {
                match self.try_dispatch(key, false, None, tasks) {
                    Dispatch::Started => {}
                    Dispatch::Skipped => continue,
                    Dispatch::Busy(key) => {
                        waiting.push_front(key);
                        break;
                    }
                }
            }
            if self.global.available_permits() == 0 {
                return;
            }
        }
    }

    /// `hint`: the job as the consumer created it (see [`Fresh`]).
    fn try_dispatch(
        self: &Arc<Self>,
        key: String,
        woken: bool,
        hint: Option<Job>,
        tasks: &mut JoinSet<Ended>,
    ) -> Dispatch {
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return Dispatch::Skipped;
        };
        if let Some(rerun) = in_flight.get_mut(&key) {
            *rerun |= woken;
            return Dispatch::Skipped;
        }
        let endpoint = delivery_job_endpoint(&key).to_string();
        let sem = {
            let Ok(mut eps) = self.endpoints.lock() else {
                return Dispatch::Skipped;
            };
            eps.entry(endpoint.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.endpoint_concurrency)))
                .clone()
        };
        let ou_sem = {
            let Ok(mut ous) = self.ous.lock() else {
                return Dispatch::Skipped;
            };
            if ous.len() > 4096 {
                let full = self.ou_share;
                ous.retain(|_, s| s.available_permits() < full);
            }
            ous.entry(delivery_job_ou(&key).to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.ou_share)))
                .clone()
        };
        let Ok(ou_permit) = ou_sem.try_acquire_owned() else {
            return Dispatch::Busy(key);
        };
        let Ok(ep_permit) = sem.try_acquire_owned() else {
            return Dispatch::Busy(key);
        };
        let Ok(permit) = self.global.clone().try_acquire_owned() else {
            return Dispatch::Busy(key);
        };
        in_flight.insert(key.clone(), false);
        metric::gauge!(NotifierGauge::InFlight).increment(1.0);
        let me = self.clone();
        tasks.spawn(async move {
            me.run_job(&key, hint, (ep_permit, permit)).await;
            drop(ou_permit);
            let rerun = match me.in_flight.lock() {
                Ok(mut f) => f.remove(&key).unwrap_or(false),
                Err(_) => false,
            };
            metric::gauge!(NotifierGauge::InFlight).decrement(1.0);
            Ended {
                endpoint,
                rerun: rerun.then_some(key),
            }
        });
        Dispatch::Started
    }

    /// Forget idle endpoints' semaphores so the map does not grow without bound.
    fn prune_endpoints(&self) {
        if let Ok(mut eps) = self.endpoints.lock() {
            if eps.len() > 1024 {
                let full = self.endpoint_concurrency;
                eps.retain(|_, s| s.available_permits() < full);
            }
        }
    }

    async fn run_job(
        &self,
        key: &str,
        hint: Option<Job>,
        _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    ) {
        if let Err(e) = self.try_run_job(key, hint).await {
            // The job stays due; the lease expires and the next poll takes it again.
            tracing::warn!(job = key, error = %e, "store unavailable during a delivery; will retry");
        }
    }

    async fn try_run_job(&self, key: &str, mut hint: Option<Job>) -> Result<(), StoreError> {
        // A job parked behind an earlier one that ended meanwhile is taken again at once; a
        // few rounds at most (each needs the lane to change under it).
        for _ in 0..4 {
            let token = new_id("lease");
            let claimed = match hint.take() {
                Some(h) => {
                    self.jobs
                        .claim_gated(key, &token, self.lease_ms, &h)
                        .await?
                }
                None => self
                    .jobs
                    .claim(key, &token, self.lease_ms)
                    .await?
                    .map(|job| (job, None)),
            };
            let Some((job, gate)) = claimed else {
                return Ok(());
            };
            let span = delivery_span(&job);
            if self
                .run_claimed(key, &token, job, gate)
                .instrument(span)
                .await?
                == Step::Done
            {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Wake the job now first in a lane (see [`Recorded::next_in_lane`]).
    fn wake(&self, recorded: &Recorded) {
        if let Some(next) = &recorded.next_in_lane {
            let _ = self.wake_tx.send(next.clone());
        }
    }

    /// One step of a claimed job: the attempt, or the DLQ send of a dead one.
    /// `gate`: already read with the claim (else read here).
    async fn run_claimed(
        &self,
        key: &str,
        token: &str,
        mut job: Job,
        gate: Option<Gate>,
    ) -> Result<Step, StoreError> {
        let now = now_ms();
        match job.state {
            State::Dead { reason } if !job.dlq_sent => {
                self.finish_dead(key, token, &mut job, reason).await?;
                return Ok(Step::Done);
            }
            ref s if s.is_final() => {
                let r = self
                    .record(self.write(key, token, &job, Next::Done))
                    .await?;
                self.wake(&r);
                return Ok(Step::Done);
            }
            // Not due yet (a stale entry, or woken early): due again at its retry time.
            State::Failed { retry_at_ms } if retry_at_ms > now + 50 => {
                self.jobs.park(key, token, retry_at_ms).await?;
                return Ok(Step::Done);
            }
            _ => {}
        }

        let gate = match gate {
            Some(g) => g,
            None => self.jobs.gate(&job).await?,
        };
        if let Some(earlier) = gate.behind {
            return self.wait_behind(key, token, &job, earlier).await;
        }
        let ep = job.endpoint();
        let report = if gate.disabled {
            None
        } else {
            Some(self.sender.attempt(&job.fired, &ep).await)
        };
        let now = now_ms();
        job.attempts += 1;
        let (state, status) = match &report {
            None => (
                State::Dead {
                    reason: DeadReason::Disabled,
                },
                AttemptStatus::Skipped,
            ),
            Some(r) => {
                let s = transition(job.attempts, &r.outcome, r.refused, &self.schedule, now);
                let status = match &s {
                    State::Succeeded { .. } => AttemptStatus::Succeeded,
                    State::Failed { .. } | State::Pending => AttemptStatus::Retrying,
                    State::Dead {
                        reason: DeadReason::Gone,
                    } => AttemptStatus::Disabled,
                    State::Dead { .. } => AttemptStatus::Failed,
                };
                (s, status)
            }
        };
        job.state = state.clone();
        job.last_status = report.as_ref().and_then(|r| r.outcome.status_code());
        job.last_error = match &report {
            None => Some("endpoint disabled for this trigger by an earlier 410 Gone".into()),
            Some(r) => r.outcome.error().map(str::to_string),
        };
        let attempt = self.attempt_record(&job, now, status, report.as_ref());
        self.observe(&job, &attempt, report.as_ref());
        let gone = matches!(report.as_ref().map(|r| &r.outcome), Some(Outcome::Gone));
        let next = match &state {
            State::Succeeded { .. } => Next::Done,
            State::Failed { retry_at_ms } => Next::At(*retry_at_ms),
            State::Pending => Next::At(now),
            // Kept due until its DLQ record is acknowledged.
            State::Dead { .. } => Next::At(now),
        };
        // An attempt was made (the endpoint may have answered 2xx): its result must be recorded,
        // not dropped and the job delivered again because the store blinked. While the store is
        // unavailable the write is retried, within the lease (past it another notifier may take
        // the job, and the write's lease check says so).
        let record_until = Instant::now() + Duration::from_millis(self.lease_ms);
        let mut pause = Duration::from_millis(50);
        let recorded = loop {
            let w = Write {
                attempt: Some(&attempt),
                gone_at_ms: gone.then_some(now),
                ..self.write(key, token, &job, next)
            };
            match self.record(w).await {
                Ok(r) => break r,
                Err(e) if report.is_some() && Instant::now() + pause < record_until => {
                    metric::counter!(NotifierCounter::RecordRetries).increment(1);
                    tracing::warn!(job = key, error = %e, "recording an attempt failed; retrying the write, not the delivery");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        };
        self.wake(&recorded);
        if !recorded.held {
            metric::counter!(NotifierCounter::LeaseLost).increment(1);
            tracing::warn!(
                job = key,
                "an attempt outlived its lease; its result was recorded anyway"
            );
            return Ok(Step::Done);
        }
        if let State::Dead { reason } = state {
            let token = new_id("lease");
            if self.jobs.claim(key, &token, self.lease_ms).await?.is_some() {
                self.finish_dead(key, &token, &mut job, reason).await?;
            }
        }
        Ok(Step::Done)
    }

    /// The claimed `job` is behind `earlier` in its lane: park it until `earlier` can have
    /// ended (the write that makes `earlier` final wakes it sooner). An `earlier` that is gone
    /// or final was left in the lane (e.g. it expired): it is taken out and the job goes on.
    async fn wait_behind(
        &self,
        key: &str,
        token: &str,
        job: &Job,
        earlier: Earlier,
    ) -> Result<Step, StoreError> {
        let now = now_ms();
        let lease = i64::try_from(self.lease_ms).unwrap_or(i64::MAX);
        let until = match self.jobs.load(&earlier.key).await? {
            Some(e) if holds_its_lane(&e) => {
                let from = match e.state {
                    State::Failed { retry_at_ms } => retry_at_ms.max(now),
                    _ => now,
                };
                from.saturating_add(lease)
            }
            _ => {
                self.jobs.leave_lane(job, &earlier).await?;
                self.jobs.release(key, token).await?;
                return Ok(Step::Again);
            }
        };
        metric::counter!(NotifierCounter::WaitedInLane).increment(1);
        tracing::debug!(job = key, behind = %earlier.key, "waits for an earlier delivery of its lead");
        self.jobs.park(key, token, until).await?;
        // The earlier job may have ended between the gate and the park, its wake-up finding our
        // lease: look once more now that the lease is given back.
        if self.jobs.lane_head(job).await?.as_deref() == Some(key) {
            return Ok(Step::Again);
        }
        Ok(Step::Done)
    }

    /// A write of the job's state that records no attempt.
    fn write<'a>(&self, key: &'a str, token: &'a str, job: &'a Job, next: Next) -> Write<'a> {
        Write {
            job_key: key,
            token,
            job,
            next,
            attempt: None,
            gone_at_ms: None,
        }
    }

    /// Send the DLQ record, then take the job out of the due set. If Kafka does not
    /// acknowledge, the job stays due (in 5 s) and the DLQ send is tried again.
    async fn finish_dead(
        &self,
        key: &str,
        token: &str,
        job: &mut Job,
        reason: DeadReason,
    ) -> Result<(), StoreError> {
        let ep = job.endpoint();
        let why = format!(
            "{}: {} after {} attempt(s) to {} {}",
            reason.as_str(),
            job.last_error.as_deref().unwrap_or("failed"),
            job.attempts,
            job.channel.as_str(),
            ep.display()
        );
        let letter = DeadLetter {
            reason: why.clone(),
            source_topic: self.topics.fired.clone(),
            source_partition: job.source_partition,
            source_offset: job.source_offset,
            key: Some(job.fired.kafka_key().into_bytes()),
            payload: encode_fired(&job.fired).unwrap_or_default(),
            failed_at_ms: now_ms(),
            target: Some(ep.display()),
            attempts: i32::try_from(job.attempts).unwrap_or(i32::MAX),
        };
        let sent = match encode_dead_letter(&letter) {
            Ok(bytes) => {
                let headers: [(&str, &[u8]); 3] = [
                    ("leadstream-fired-id", job.fired.fired_id.as_bytes()),
                    ("leadstream-endpoint-id", job.endpoint_id.as_bytes()),
                    ("leadstream-reason", reason.as_str().as_bytes()),
                ];
                self.publisher
                    .send(&self.topics.dlq, &job.fired.kafka_key(), &bytes, &headers)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(_) => {
                metric::counter!(NotifierCounter::Dlq, job.channel.as_str(), reason.as_str())
                    .increment(1);
                tracing::warn!(
                    fired_id = %job.fired.fired_id, ou = %job.fired.ou_id, trigger = %job.fired.trigger_id,
                    endpoint = %ep.display(), reason = reason.as_str(), attempts = job.attempts,
                    "delivery failed for good; sent to the DLQ"
                );
                job.dlq_sent = true;
                let r = self.record(self.write(key, token, job, Next::Done)).await?;
                self.wake(&r);
            }
            Err(e) => {
                tracing::warn!(fired_id = %job.fired.fired_id, error = %e, "DLQ not acknowledged; will retry");
                let w = self.write(key, token, job, Next::At(now_ms() + 5000));
                self.record(w).await?;
            }
        }
        Ok(())
    }

    fn attempt_record(
        &self,
        job: &Job,
        now: i64,
        status: AttemptStatus,
        r: Option<&AttemptReport>,
    ) -> DeliveryAttempt {
        let f = &job.fired;
        DeliveryAttempt {
            id: new_id("att"),
            fired_id: f.fired_id.clone(),
            ou_id: f.ou_id.clone(),
            lead_id: f.lead_id.clone(),
            trigger_id: f.trigger_id.clone(),
            trigger_name: f.trigger_name.clone(),
            channel: job.channel,
            endpoint_id: job.endpoint_id.clone(),
            target: job.endpoint().display(),
            attempt: job.attempts,
            at_ms: now,
            status,
            status_code: job.last_status,
            error: job.last_error.clone(),
            latency_ms: r.map(|r| r.latency.as_millis() as u64).unwrap_or(0),
            response_body: r.and_then(|r| r.response_body.clone()),
            next_attempt_at_ms: match job.state {
                State::Failed { retry_at_ms } => Some(retry_at_ms),
                _ => None,
            },
        }
    }

    fn observe(&self, job: &Job, a: &DeliveryAttempt, r: Option<&AttemptReport>) {
        let ch = job.channel.as_str();
        metric::counter!(NotifierCounter::Attempts, ch, a.status.as_str()).increment(1);
        if let Some(r) = r {
            metric::histogram!(NotifierHistogram::AttemptSeconds, ch)
                .record(r.latency.as_secs_f64());
        }
        let ep = &a.target;
        if a.status == AttemptStatus::Succeeded {
            metric::counter!(NotifierCounter::Succeeded, ch).increment(1);
            let lag = (a.at_ms - job.fired.fired_at_ms).max(0) as f64 / 1000.0;
            metric::histogram!(NotifierHistogram::FiredToDeliveredSeconds, ch).record(lag);
            // Debug: every delivery is in the delivery log and the metrics already, and a line
            // per delivery at info costs a formatted write per webhook at full speed.
            tracing::debug!(fired_id = %a.fired_id, ou = %a.ou_id, endpoint = %ep, attempt = a.attempt,
                status = ?a.status_code, latency_ms = a.latency_ms, "delivered");
        } else {
            metric::counter!(NotifierCounter::Failed, ch).increment(1);
            tracing::info!(fired_id = %a.fired_id, ou = %a.ou_id, endpoint = %ep, attempt = a.attempt,
                status = ?a.status_code, error = a.error.as_deref().unwrap_or(""),
                next_attempt_at_ms = ?a.next_attempt_at_ms, outcome = a.status.as_str(), "delivery attempt failed");
        }
    }
}

/// The recorder: takes every job write waiting (up to [`RECORD_BATCH`]) and writes them in one
/// [`JobStore::record_all`], one batch at a time.
async fn record_batches(jobs: JobStore, mut writes: mpsc::UnboundedReceiver<ToRecord>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while writes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let (prepared, answers): (Vec<Prepared>, Vec<_>) = batch.drain(..).unzip();
        match jobs.record_all(prepared).await {
            Ok(Some(recorded)) => {
                for (a, r) in answers.into_iter().zip(recorded) {
                    let _ = a.send(Ok(Some(r)));
                }
            }
            Ok(None) => {
                for a in answers {
                    let _ = a.send(Ok(None));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for a in answers {
                    let _ = a.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Whether a job still holds back the later jobs of its lane: not final, or dead with its DLQ
/// record not yet acknowledged.
fn holds_its_lane(job: &Job) -> bool {
    match job.state {
        State::Dead { .. } => !job.dlq_sent,
        ref s => !s.is_final(),
    }
}

/// The `deliver` span of one claimed job: a child of the fired record's context kept in the job
/// (a disabled span when traces are not exported).
fn delivery_span(job: &Job) -> tracing::Span {
    if !trace::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "deliver",
        channel = job.channel.as_str(),
        ou = %job.fired.ou_id,
        fired_id = %job.fired.fired_id,
        endpoint = %job.endpoint_id,
        attempt = job.attempts + 1,
        trace_id = tracing::field::Empty,
    );
    match &job.trace {
        Some(parent) => parent.set_parent_of(&span),
        None => trace::record_trace_id(&span),
    }
    span
}
