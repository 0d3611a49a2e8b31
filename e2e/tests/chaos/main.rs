//! The end-to-end and chaos suite (issue 7): the real `leadstream` binaries as separate
//! processes under a steady HTTP load while something breaks, each test ending with the same
//! invariants (`leadstream_e2e::verify`). See `docs/e2e.md`.
//!
//! Needs `cargo build -p leadstream` first (`scripts/test` does it), `tansu` and `redis-server`.
//! `LEADSTREAM_E2E_FULL=1` runs the long variant.

mod s0_happy;
mod s1_processor_kill;
mod s2_notifier_kill;
mod s3_broker_outage;
mod s4_redis_restart;
mod s5_receiver_faults;
mod s6_scale;

use std::sync::Arc;
use std::time::Duration;

use leadstream_e2e::load::{self, LoadSpec, Progress, Rules, Sent, Tenant};
use leadstream_e2e::Stack;
use leadstream_testkit::wait_until;
use tokio::task::JoinHandle;

/// The steady load of a chaos scenario: 100 events/s over 40 leads for 20 s (CI), or
/// 150 events/s for 60 s with `LEADSTREAM_E2E_FULL=1`.
pub fn chaos_load() -> LoadSpec {
    if leadstream_e2e::full() {
        LoadSpec {
            leads: 60,
            rate: 150.0,
            duration: Duration::from_secs(60),
        }
    } else {
        LoadSpec {
            leads: 40,
            rate: 100.0,
            duration: Duration::from_secs(20),
        }
    }
}

/// How long a staged outage lasts: `short` in CI, three times that in the full variant.
pub fn outage(short: Duration) -> Duration {
    if leadstream_e2e::full() {
        short * 3
    } else {
        short
    }
}

/// A running load: its task and its counters.
pub struct Running {
    pub spec: LoadSpec,
    pub progress: Arc<Progress>,
    task: JoinHandle<Sent>,
}

impl Running {
    /// Wait until `fraction` of the planned events were acknowledged.
    pub async fn reached(&self, fraction: f64) -> usize {
        let want = (self.spec.total() as f64 * fraction) as usize;
        let p = self.progress.clone();
        wait_until(
            self.spec.duration * 3 + Duration::from_secs(30),
            &format!("{want} events acknowledged"),
            || {
                let n = p.accepted();
                async move { (n >= want).then_some(n) }
            },
        )
        .await
    }

    /// Wait for the load's end (every event acknowledged).
    pub async fn finish(self) -> Sent {
        self.task.await.expect("load task")
    }
}

/// The second OU every scenario's load also goes to: same lead ids, same producer ids.
pub const SECOND_OU_HOOKS: &str = "/ou_b";

/// Install the workload's rules on `stack` — in the default OU (with `emails`) and in a second
/// OU whose hooks go to [`SECOND_OU_HOOKS`] paths — and start the load into both.
pub async fn start_load(stack: &Stack, spec: LoadSpec, emails: &[&str]) -> (Rules, Running) {
    let rules = load::install(&stack.api, &stack.receiver.url(""), emails).await;
    let ou_b = stack.api.org_unit("second").await;
    let api_b = stack.api.in_ou(&ou_b);
    load::install(&api_b, &stack.receiver.url(SECOND_OU_HOOKS), &[]).await;
    let tenants = vec![
        Tenant {
            ou_id: "unit_default".into(),
            api: stack.api.clone(),
            hooks: String::new(),
        },
        Tenant {
            ou_id: ou_b,
            api: api_b,
            hooks: SECOND_OU_HOOKS.into(),
        },
    ];
    let progress = Arc::new(Progress::default());
    let task = tokio::spawn(load::run(
        tenants,
        spec,
        progress.clone(),
        Duration::from_secs(60),
    ));
    (
        rules,
        Running {
            spec,
            progress,
            task,
        },
    )
}
