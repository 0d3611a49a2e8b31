//! kill -9 of the notifier with retries pending. From a third of the load on, the receiver
//! answers 500, so deliveries pile up as scheduled retries in Redis; the notifier is killed
//! with -9 while the receiver still fails, a new one starts (fresh consumer group: it re-reads
//! the fired topic and stores only deliveries it does not know), and the receiver recovers.
//! Every fired id must arrive exactly once per endpoint, and the delivery log must show the
//! failed attempts.

use std::time::Duration;

use leadstream_e2e::load::MILESTONE_PATH;
use leadstream_e2e::verify::verify;
use leadstream_e2e::{Mode, Stack, StackOpts};
use leadstream_testkit::wait_for;

use crate::{chaos_load, outage, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_notifier_with_retries_pending_delivers_each_firing_once() {
    let mut stack = Stack::start(StackOpts::new("nkill")).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;

    running.reached(1.0 / 3.0).await;
    stack.receiver.set_mode(Mode::Status(500));
    let rx = stack.receiver.clone();
    wait_for(Duration::from_secs(60), "failed attempts piling up", || {
        rx.statuses(MILESTONE_PATH).get(&500).copied().unwrap_or(0) >= 10
    })
    .await;
    stack.notifier.kill9();
    stack.notifier = stack.spawn_notifier_in_new_group(1);
    tokio::time::sleep(outage(Duration::from_secs(2))).await;
    stack.receiver.set_mode(Mode::Ok);

    let sent = running.finish().await;
    let out = verify(&stack, &sent).await;
    let failed_500 = out
        .log
        .iter()
        .filter(|a| a["status"] == "retrying" && a["status_code"] == 500)
        .count();
    assert!(
        failed_500 > 0,
        "the delivery log records the 500s: {:?}",
        out.attempts
    );
    stack.stop().await;
}
