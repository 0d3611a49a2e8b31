//! The processor's crash proofs against a real Redis Cluster (Debian's `redis-server` in cluster
//! mode: 3 masters and 3 replicas on loopback ports, made by `testkit::redis_cluster`): the same
//! kill -9 and rebalance scenarios as against one Redis (`crash.rs`), and a master killed with
//! -9 mid-stream, whose replica is promoted while the processor runs; and the rescore proof.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leadstream_testkit::redis_cluster::RedisCluster;
use leadstream_testkit::wait_until;

use crate::crash::{self, EVENTS};
use crate::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let w = World::with_redis("ckill", &cluster.url_list()).await;
    crash::kill_9_scenario(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_one_leaving_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let w = World::with_redis("creb", &cluster.url_list()).await;
    crash::rebalance_scenario(&w).await;
}

/// kill -9 of the master that holds partition 0's state while the stream is produced and
/// applied: its replica is promoted, writes the dead master acknowledged but had not yet
/// replicated are lost (state and applied offset together), and the processor re-reads what
/// was lost. Every score still equals the oracle and every crossing fired once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let mut cluster = RedisCluster::start();
    let w = World::with_redis("cfail", &cluster.url_list()).await;
    let plan = crash::setup(&w).await;
    let mut child = w.spawn_process(&[("LEADSTREAM_PROCESSOR_MAX_BATCH", "5")]);
    let produced = AtomicU64::new(0);
    let victim = w.keys.partition(&w.topics.events, 0).applied();
    let failover = async {
        let at = wait_until(
            Duration::from_secs(180),
            "progress before the failover",
            || async {
                let (p, n) = (produced.load(Ordering::SeqCst), crash::applied(&w).await);
                (p >= EVENTS as u64 / 3 && n > 0).then_some((p, n))
            },
        )
        .await;
        let port = tokio::task::block_in_place(|| cluster.kill_primary_of(&victim));
        eprintln!("killed -9 the master on port {port} at (produced, applied) {at:?}");
        at
    };
    let ((), at) = tokio::join!(crash::produce_stream(&w, &plan, &produced), failover);
    assert!(
        at.0 < EVENTS as u64 && at.1 < EVENTS as u64,
        "the master must die while the stream is produced and applied: {at:?}"
    );
    crash::verify(&w, &plan).await;
    assert!(
        child
            .0
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none()),
        "the processor rode out the failover"
    );
    child.kill9();
}

/// The rescore proof (`rescore.rs`: oracle, firings, kill -9 during the switch) on a Redis
/// Cluster: jobs, progress and the per-OU slot are plain keys; each partition's switch is one
/// atomic write in that partition's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_with_kill_9_during_the_switch_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let w = World::with_redis("crescore", &cluster.url_list()).await;
    crate::rescore::scenario(&w, true, crate::rescore::Mode::Kill9).await;
}
