//! A webhook receiver in trouble while firings keep coming: down (its port closed), slow
//! (answers only after twice the notifier's `LEADSTREAM_WEBHOOK_TIMEOUT`), answering 500, then
//! 429 with `Retry-After`, then healthy again. Every firing must still be delivered exactly
//! once, and the delivery log must record the failed attempts of each kind.

use std::time::Duration;

use leadstream_e2e::load::MILESTONE_PATH;
use leadstream_e2e::stack::WEBHOOK_TIMEOUT;
use leadstream_e2e::verify::verify;
use leadstream_e2e::{Mode, Stack, StackOpts};

use crate::{chaos_load, outage, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_slow_500_and_429_still_gets_every_firing_once() {
    let stack = Stack::start(StackOpts::new("rxfault")).await;
    let (_, running) = start_load(&stack, chaos_load(), &[]).await;

    running.reached(0.2).await;
    for mode in [
        Mode::Down,
        Mode::Slow(WEBHOOK_TIMEOUT * 2),
        Mode::Status(500),
        Mode::TooMany(1),
    ] {
        stack.receiver.set_mode(mode);
        tokio::time::sleep(outage(Duration::from_secs(3))).await;
    }
    stack.receiver.set_mode(Mode::Ok);

    let sent = running.finish().await;
    let out = verify(&stack, &sent).await;
    let seen = stack.receiver.statuses(MILESTONE_PATH);
    eprintln!("receiver answers on {MILESTONE_PATH} (0 = too late): {seen:?}");
    for (status, what) in [(0, "late (slow) answers"), (500, "500s"), (429, "429s")] {
        assert!(
            seen.get(&status).copied().unwrap_or(0) > 0,
            "no {what}: {seen:?}"
        );
    }
    let retrying = |f: &dyn Fn(&serde_json::Value) -> bool| {
        out.log
            .iter()
            .filter(|a| a["status"] == "retrying" && f(a))
            .count()
    };
    assert!(
        retrying(&|a| a["status_code"] == 500) > 0,
        "log: 500 retried"
    );
    assert!(
        retrying(&|a| a["status_code"] == 429) > 0,
        "log: 429 retried"
    );
    assert!(
        retrying(&|a| a["status_code"].is_null() && a["error"].is_string()) > 0,
        "log: connection errors and timeouts retried"
    );
    stack.stop().await;
}
