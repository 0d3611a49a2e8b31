//! kill -9 of processors mid-stream. Two processors share the load; at a third of it one is
//! killed with -9 and a replacement starts, and at two thirds the replacement is killed too and
//! another starts. tansu never expires a member killed with -9, so each replacement joins a
//! fresh consumer group (README, Known limitations): it owns every partition at once and
//! resumes from the applied offsets in Redis alone, while the surviving original keeps its own
//! partitions in the old group — two owners of those partitions, which the applied-offset
//! fencing must keep from counting anything twice.

use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};

use crate::{chaos_load, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_processors_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let mut stack = Stack::start(StackOpts::new("pkill")).await;
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
