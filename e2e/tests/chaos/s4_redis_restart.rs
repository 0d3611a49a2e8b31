//! Redis goes away mid-stream and comes back. The stack's own redis-server runs with an
//! append-only file fsynced on every write (`--appendonly yes --appendfsync always`): Redis is
//! the processor's source of truth (lead state, dedupe marks, applied offsets), so a user who
//! restarts it configures it for durability. It is killed with -9, stays down for a while, and
//! restarts on the same port from its AOF. Processing must pause and resume without counting
//! anything twice or losing anything; ingest requests that fail meanwhile are retried by the
//! producer as told.

use std::time::Duration;

use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};

use crate::{chaos_load, outage, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_stream_pauses_and_resumes_without_double_counting() {
    let mut opts = StackOpts::new("redis");
    opts.durable_redis = true;
    let mut stack = Stack::start(opts).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;

    running.reached(1.0 / 3.0).await;
    // On the test's thread (the parent-death signal is per thread; see `Stack::start`).
    stack.redis.kill();
    tokio::time::sleep(outage(Duration::from_secs(3))).await;
    stack.redis.start_again();
    eprintln!(
        "answers retried around the Redis restart: {:?}",
        running.progress.retried()
    );

    let sent = running.finish().await;
    verify(&stack, &sent).await;
    stack.stop().await;
}
