//! [`JobStore::replay`]: what `leadstream admin dlq replay` does with a dead letter's delivery,
//! decided here beside the states the notifier writes, so the CLI never re-implements them.

use std::time::Duration;

use leadstream_domain::fired::TriggerFired;
use leadstream_shared::ids::now_ms;
use leadstream_shared::store::{Cmd, Guard, StoreError};

use super::{Job, JobStore};
use crate::attempt::State;
use crate::endpoint::Endpoint;

/// What [`JobStore::replay`] does besides re-queueing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Decide, but write nothing.
    pub dry_run: bool,
    /// Re-enable an endpoint a 410 Gone disabled for the trigger (else the delivery is skipped).
    pub reenable_gone: bool,
}

/// What [`JobStore::replay`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Due again now with a fresh retry schedule (with [`ReplayOptions::dry_run`]: would be).
    Replayed,
    /// Not replayed: the delivery succeeded.
    Delivered,
    /// Not replayed: the delivery is pending or retrying (e.g. replayed before).
    UnderWay,
    /// Not replayed: a 410 Gone disabled the endpoint for the trigger.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job changed under every compare-and-set, or stayed dead without its DLQ record
    /// acknowledged: nothing was written.
    #[error(
        "the delivery kept changing while it was replayed (or the notifier is still finishing it)"
    )]
    KeptChanging,
}

/// How often [`JobStore::replay`] looks at a delivery that changed under it or is still being
/// finished, and how long it waits between looks (10 s in all).
const REPLAY_LOOKS: usize = 40;
const REPLAY_WAIT: Duration = Duration::from_millis(250);

impl JobStore {
    /// Make the delivery of `fired` to `ep` due again with a fresh retry schedule, unless it was
    /// delivered or is already under way — what `leadstream admin dlq replay` does with each
    /// dead letter (`source_partition`/`source_offset`: where the fired record came from).
    ///
    /// | job in the store                  | replay                                                 |
    /// |-----------------------------------|--------------------------------------------------------|
    /// | dead, DLQ record sent             | reset to pending, attempts 0, due now (compare-and-set) |
    /// | succeeded                         | [`Replay::Delivered`]                                   |
    /// | pending / failed (retrying)       | [`Replay::UnderWay`]                                    |
    /// | dead, DLQ record not yet recorded | waited for (the notifier records it just after the DLQ ack) |
    /// | gone (expired after retention)    | re-created as a new pending job (only if absent)        |
    ///
    /// A 410 Gone mark on the endpoint answers [`Replay::Gone`], or is removed with
    /// [`ReplayOptions::reenable_gone`]. A job that changed since it was read is looked at again,
    /// a bounded number of times.
    pub async fn replay(
        &self,
        fired: &TriggerFired,
        ep: &Endpoint,
        source_partition: i32,
        source_offset: i64,
        opts: ReplayOptions,
    ) -> Result<Replay, ReplayError> {
        let key = self.key(&fired.ou_id, &fired.fired_id, &ep.id());
        for _ in 0..REPLAY_LOOKS {
            let now = now_ms();
            let Some((seen, mut job)) = self.load_raw(&key).await? else {
                // Expired after the retention period: a new job, created only if absent.
                let job = Job::new(fired, ep, source_partition, source_offset, now);
                if let Some(r) = self.gone_check(&job, opts).await? {
                    return Ok(r);
                }
                if opts.dry_run {
                    return Ok(Replay::Replayed);
                }
                if self.enqueue(&[job], now).await?.first() == Some(&true) {
                    return Ok(Replay::Replayed);
                }
                continue;
            };
            match job.state {
                State::Succeeded { .. } => return Ok(Replay::Delivered),
                State::Dead { .. } if job.dlq_sent => {}
                State::Dead { .. } => {
                    tokio::time::sleep(REPLAY_WAIT).await;
                    continue;
                }
                State::Pending | State::Failed { .. } => return Ok(Replay::UnderWay),
            }
            if let Some(r) = self.gone_check(&job, opts).await? {
                return Ok(r);
            }
            if opts.dry_run {
                return Ok(Replay::Replayed);
            }
            job.reset();
            let requeued = self
                .kv()
                .exec_guarded(
                    vec![Guard::Equals(key.clone(), seen)],
                    vec![self.set_job(&key, &job), self.due_at(&key, now)],
                )
                .await?;
            if requeued.is_some() {
                return Ok(Replay::Replayed);
            }
        }
        Err(ReplayError::KeptChanging)
    }

    /// A 410 Gone disabled the endpoint for the trigger: [`Replay::Gone`], or re-enable it.
    async fn gone_check(
        &self,
        job: &Job,
        opts: ReplayOptions,
    ) -> Result<Option<Replay>, StoreError> {
        if !self.is_disabled(job).await? {
            return Ok(None);
        }
        if !opts.reenable_gone {
            return Ok(Some(Replay::Gone));
        }
        if !opts.dry_run {
            let key = self.disabled_key(job);
            self.kv().exec(vec![Cmd::Del { key }]).await?;
        }
        Ok(None)
    }
}
