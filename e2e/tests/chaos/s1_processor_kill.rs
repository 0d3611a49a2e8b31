//! kill -9 of processors mid-stream. Two processors share the load; at a third of it one is
//! killed with -9 and a replacement starts, and at two thirds the replacement is killed too and
//! another starts. tansu never expires a member killed with -9, so each replacement joins a
//! fresh consumer group (README, Known limitations): it owns every partition at once and
//! resumes from the applied offsets in Redis alone, while the surviving original keeps its own
//! partitions in the old group — two owners of those partitions, which the applied-offset
//! fencing must keep from counting anything twice.
//!
//! The second test is the same-group takeover: SIGTERM of one of two processors in one group,
//! the survivor takes the partitions over.

use std::time::Duration;

use leadstream_e2e::stack::PARTITIONS;
use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};
use leadstream_testkit::{committed_offsets, wait_until};

use crate::{chaos_load, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_processors_mid_stream_loses_nothing_and_counts_nothing_twice() {
    kill_9_scenario(StackOpts::new("pkill")).await;
}

/// The same with every service on a Redis Cluster (3 masters, 3 replicas).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_processors_on_a_redis_cluster() {
    let mut opts = StackOpts::new("pkillc");
    opts.redis_cluster = true;
    kill_9_scenario(opts).await;
}

async fn kill_9_scenario(opts: StackOpts) {
    let mut stack = Stack::start(opts).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;
    let total = running.spec.total();

    let at1 = running.reached(1.0 / 3.0).await;
    stack.processors[0].kill9();
    let replacement = stack.spawn_processor_in_new_group(1);
    stack.processors.push(replacement);

    let at2 = running.reached(2.0 / 3.0).await;
    let last = stack.processors.len() - 1;
    stack.processors[last].kill9();
    let replacement = stack.spawn_processor_in_new_group(2);
    stack.processors.push(replacement);
    eprintln!("kill -9 at {at1} and {at2} of {total} acknowledged events");
    assert!(at2 < total, "the kills must land mid-stream");

    let sent = running.finish().await;
    verify(&stack, &sent).await;
    stack.stop().await;
}

/// The same-group takeover, SIGTERM variant (the only one the test broker allows: it never
/// expires a member killed with -9). Two processors share one group under the load; at a third
/// of it one gets SIGTERM and must exit cleanly, and the survivor of the same group must take
/// its partitions over: the group's committed offsets then advance on every partition, with
/// one member left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_a_processor_mid_stream_the_survivor_of_its_group_takes_over() {
    let mut stack = Stack::start(StackOpts::new("ptakeover")).await;
    assert_eq!(stack.processors.len(), 2);
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;
    let total = running.spec.total();
    let brokers = stack.broker.addr();
    let (topic, group) = (stack.events_topic(), stack.processor_group());

    let at = running.reached(1.0 / 3.0).await;
    let leaving = stack.processors.remove(0);
    let label = leaving.label.clone();
    assert!(
        leaving.terminate().await,
        "{label} leaves cleanly on SIGTERM"
    );
    let at_leave = committed_offsets(&brokers, &group, &topic).await;
    assert!(stack.processors[0].running(), "the survivor is running");
    wait_until(
        Duration::from_secs(120),
        "the survivor to commit on every partition",
        || async {
            let now = committed_offsets(&brokers, &group, &topic).await;
            (0..PARTITIONS as i32)
                .all(|p| now.get(&p).copied().unwrap_or(0) > at_leave.get(&p).copied().unwrap_or(0))
                .then_some(())
        },
    )
    .await;
    let after = running.progress.accepted();
    eprintln!("SIGTERM at {at} of {total} acknowledged events; survivor committing on every partition by {after}");
    assert!(after < total, "the takeover must happen under load");

    let sent = running.finish().await;
    verify(&stack, &sent).await;
    stack.stop().await;
}
