//! Redis goes away mid-stream and comes back. The stack's own redis-server runs with an
//! append-only file fsynced on every write (`--appendonly yes --appendfsync always`): Redis is
//! the processor's source of truth (lead state, dedupe marks, applied offsets), so a user who
//! restarts it configures it for durability. It is killed with -9, stays down for a while, and
//! restarts on the same port from its AOF. Processing must pause (no offset committed while Redis
//! is down, every service still running) and resume (the processors commit past every record
//! the topic held when Redis came back) without counting anything twice or losing anything;
//! ingest requests that fail meanwhile are retried by the producer as told.

use std::time::Duration;

use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};
use leadstream_testkit::{committed_offsets, end_offsets, wait_until};

use crate::{chaos_load, outage, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_stream_pauses_and_resumes_without_double_counting() {
    let mut opts = StackOpts::new("redis");
    opts.durable_redis = true;
    let mut stack = Stack::start(opts).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;

    running.reached(1.0 / 3.0).await;
    let brokers = stack.broker.addr();
    let (topic, group) = (stack.events_topic(), stack.processor_group());
    // On the test's thread (the parent-death signal is per thread; see `Stack::start`).
    stack.redis.kill();
    // The staged outage, in two halves with a look at the processors' commits between them.
    tokio::time::sleep(outage(Duration::from_secs(3)) / 2).await;
    let committed_mid = committed_offsets(&brokers, &group, &topic).await;
    tokio::time::sleep(outage(Duration::from_secs(3)) / 2).await;
    // Paused: an offset is committed only after its effects are in Redis, so with Redis down
    // nothing moves (a commit already under way at the kill had the first half to land)...
    let committed_down = committed_offsets(&brokers, &group, &topic).await;
    let end_down = end_offsets(&brokers, &topic).await;
    assert_eq!(
        committed_down, committed_mid,
        "the processors committed offsets while Redis was down"
    );
    // ... and paused, not crashed: every service is still running.
    for p in &mut stack.processors {
        assert!(p.running(), "{} survives the Redis outage", p.label);
    }
    assert!(stack.gateway.running() && stack.notifier.running());
    stack.redis.start_again();
    // Resumed: the processors commit past everything the topic held when Redis came back.
    wait_until(
        Duration::from_secs(120),
        "the processors to resume after the Redis restart",
        || async {
            let now = committed_offsets(&brokers, &group, &topic).await;
            end_down
                .iter()
                .all(|(p, end)| now.get(p).copied().unwrap_or(0) >= *end)
                .then_some(())
        },
    )
    .await;
    let backlog: i64 = end_down
        .iter()
        .map(|(p, end)| end - committed_down.get(p).copied().unwrap_or(0))
        .sum();
    eprintln!(
        "records waiting when Redis came back: {backlog}; answers retried around the restart: {:?}",
        running.progress.retried()
    );

    let sent = running.finish().await;
    verify(&stack, &sent).await;
    stack.stop().await;
}
