//! Scale out from one processor to three and back under steady load: two replicas join the
//! consumer group at a quarter of the load, and leave it gracefully (SIGTERM: drain, commit,
//! leave) at three quarters. Every rebalance hands partitions over; nothing may be lost or
//! counted twice.

use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};

use crate::{chaos_load, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_to_three_processors_and_back_under_load() {
    scale_scenario(StackOpts::new("scale")).await;
}

/// The same with every service on a Redis Cluster (3 masters, 3 replicas).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_and_back_on_a_redis_cluster() {
    let mut opts = StackOpts::new("scalec");
    opts.redis_cluster = true;
    scale_scenario(opts).await;
}

async fn scale_scenario(mut opts: StackOpts) {
    opts.processors = 1;
    let mut stack = Stack::start(opts).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;

    running.reached(0.25).await;
    for _ in 0..2 {
        let p = stack.spawn("processor", &[]);
        stack.processors.push(p);
    }
    running.reached(0.75).await;
    for _ in 0..2 {
        let p = stack.processors.pop().expect("a replica");
        let label = p.label.clone();
        assert!(p.terminate().await, "{label} leaves cleanly on SIGTERM");
    }
    assert_eq!(stack.processors.len(), 1);

    let sent = running.finish().await;
    verify(&stack, &sent).await;
    stack.stop().await;
}
