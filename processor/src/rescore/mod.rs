//! Rescore and preview jobs (issue 15): replay an OU's events from the events topic through
//! the current rules (rescore) or a draft (preview), while the live processor keeps running.
//!
//! Jobs are created by the gateway in Redis ([`RescoreJobs`]). Every processor polls the
//! running jobs once a second and replays, for each job, the events partitions it owns —
//! partition by partition, each in its own task with its own Kafka consumer (assigned, no
//! group), so a job scales out with the processors. When a partition changes owner, its task
//! stops here and starts from scratch at the new owner.
//!
//! **One partition's rescore** ([`partition`]):
//! 1. Read the partition's live applied offset `A` (what the live engine has applied).
//! 2. Replay the partition from `since` (the first offset whose Kafka timestamp is at or after
//!    it) or from its oldest retained record up to `A` into a shadow state in memory
//!    ([`shadow::Shadow`]): the OU's events, deduplicated and scored as the live engine does,
//!    under the rules of the OU's config version `V` read at the start.
//! 3. **The switch meets the live applied offset.** Read the applied offset again (`A'`,
//!    stored bytes `raw`), replay on to exactly `A'`, and write — in one atomic write guarded
//!    by "the applied offset is still `raw`", in the partition's Redis Cluster slot — every
//!    lead of the OU in the partition (replayed states; leads with no event in the range are
//!    reset; milestone crossing counts never go below the live ones), the milestone firings
//!    of `fire_triggers` into the partition's outbox, a marker that this job switched this
//!    partition, and the applied offset respelled (same number, other bytes:
//!    [`leadstream_shared::store::offsets::respell`]). The shadow then holds exactly the events
//!    up to `A'`, as the live state did, so no live event is lost or counted twice: events
//!    after `A'` are applied by the live engine on top of the switched states. When the live
//!    engine wrote in between, the guard fails and the switch is tried again from step 3. The
//!    respelled offset fails the live engine's own guard on its cached bytes, so it drops
//!    what it cached of the partition and reads the switched states.
//! 4. A crash before the write leaves the live state untouched and the job restarts the
//!    partition; after it, the marker makes the next owner report the partition done, and the
//!    firings in the outbox are produced by the live processor like any other (deterministic
//!    ids: produced twice, delivered once).
//!
//! If the OU's configuration changes during the replay (version ≠ `V`), the partition starts
//! over with the new rules. A preview stops after step 2 and compares the shadow with the live
//! states instead of writing them.

mod partition;
pub mod shadow;

pub use partition::PREFETCH_KIB;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadstream_shared::catalog::Catalog;
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::{KafkaSettings, Publisher};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::history::Histories;
use leadstream_shared::store::rescore::{JobState, Phase, RescoreJobs};
use leadstream_shared::store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the runner needs from the processor's configuration.
#[derive(Clone)]
pub struct RunnerSettings {
    pub kafka: KafkaSettings,
    pub events_topic: String,
    pub fired_topic: String,
    pub group_id: String,
    pub dedupe_ttl: Duration,
    pub sequence_cap: usize,
    pub history_cap: usize,
    /// How often running jobs are polled.
    pub poll: Duration,
}

/// What the consumer loop knows of the events topic, kept current for the runner.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// The partitions this processor owns.
    pub partitions: BTreeSet<i32>,
    /// The events topic's partition count (0 until the first assignment).
    pub of_topic: i32,
}

/// Shared between the consumer loop (writer) and the runner (reader).
pub type Owned = Arc<Mutex<Ownership>>;

pub(crate) struct Shared {
    kv: Store,
    keys: Keys,
    jobs: RescoreJobs,
    catalog: Catalog,
    histories: Histories,
    publisher: Publisher,
    settings: RunnerSettings,
}

/// Polls the running jobs and runs their partitions that this processor owns.
pub struct Runner {
    shared: Arc<Shared>,
    owned: Owned,
}

impl Runner {
    pub fn new(
        kv: Store,
        keys: Keys,
        publisher: Publisher,
        settings: RunnerSettings,
        owned: Owned,
    ) -> Runner {
        Runner {
            shared: Arc::new(Shared {
                jobs: RescoreJobs::new(kv.clone(), keys.clone()),
                catalog: Catalog::new(kv.clone(), keys.clone()),
                histories: Histories::new(kv.clone(), keys.clone()),
                kv,
                keys,
                publisher,
                settings,
            }),
            owned,
        }
    }

    /// Run until `shutdown`; partition tasks are stopped with it (a stopped replay is started
    /// again by whichever processor owns the partition next).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks: HashMap<(String, i32), JoinHandle<()>> = HashMap::new();
        loop {
            if let Err(e) = self.tick(&mut tasks).await {
                tracing::warn!(error = %e, "rescore jobs: poll failed; trying again");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.shared.settings.poll) => {}
            }
        }
        for (_, t) in tasks {
            t.abort();
        }
    }

    async fn tick(&self, tasks: &mut HashMap<(String, i32), JoinHandle<()>>) -> anyhow::Result<()> {
        tasks.retain(|_, t| !t.is_finished());
        let jobs = self.shared.jobs.active().await?;
        let Ownership {
            partitions: owned,
            of_topic,
        } = self.owned.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut wanted: BTreeSet<(String, i32)> = BTreeSet::new();
        for view in jobs {
            let id = view.job.id.clone();
            if view.partitions_total.is_none() && of_topic > 0 {
                self.shared.jobs.set_partitions(&id, of_topic).await?;
            }
            if view.all_done() {
                if self
                    .shared
                    .jobs
                    .finish(&view, JobState::Completed, None, now_ms())
                    .await?
                {
                    tracing::info!(job = %id, ou = %view.job.ou_id, kind = ?view.job.kind, "rescore job completed");
                }
                continue;
            }
            for p in &owned {
                let done = view
                    .partitions
                    .iter()
                    .any(|x| x.partition == *p && x.phase == Some(Phase::Done));
                if !done {
                    wanted.insert((id.clone(), *p));
                }
            }
            for p in &owned {
                let key = (id.clone(), *p);
                if !wanted.contains(&key) || tasks.contains_key(&key) {
                    continue;
                }
                let shared = self.shared.clone();
                let job = view.job.clone();
                let p = *p;
                tasks.insert(
                    key,
                    tokio::spawn(async move { partition::run(shared, job, p).await }),
                );
            }
        }
        // Partitions no longer owned, and jobs cancelled or finished: stop their tasks.
        tasks.retain(|key, t| {
            let keep = wanted.contains(key);
            if !keep {
                t.abort();
            }
            keep
        });
        Ok(())
    }
}
