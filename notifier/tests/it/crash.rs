//! Crash test: kill -9 a notifier process with deliveries pending, attempts in flight and
//! retries scheduled; after a restart every fired record is delivered exactly once per
//! endpoint and none is lost.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use leadstream_shared::fired::Targets;

use crate::support::*;

fn spawn_child(env: &Env) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_leadstream-notifier"))
        .envs(&env.vars)
        .env("RUST_LOG", "warn")
        .env("LEADSTREAM_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("notifier binary")
}

/// 2xx answers per key.
fn successes(
    rx: &Receiver,
    path: &str,
    key: impl Fn(&Received) -> String,
) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rx.on(path).iter().filter(|r| r.status == 200) {
        *m.entry(key(r)).or_insert(0) += 1;
    }
    m
}

fn slack_lead(r: &Received) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["text"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .nth(6)
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_with_pending_and_scheduled_deliveries_loses_nothing_and_duplicates_nothing() {
    const N: usize = 40;
    let env = Env::new(
        "crash",
        &[("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "700ms,700ms,700ms")],
    )
    .await;
    let rx = Receiver::start().await;
    // Every webhook fails once (503) and succeeds on its retry: retries are scheduled in Redis.
    rx.script(
        "/hook",
        Script {
            fail_first: 1,
            fail_status: 503,
        },
    );

    let mut child = spawn_child(&env);
    let records: Vec<_> = (0..N)
        .map(|i| {
            fired(
                i,
                &format!("ld_crash_{i}"),
                Targets {
                    webhook_url: Some(rx.url("/hook")),
                    slack_webhook_url: Some(rx.url("/slack")),
                    ..Targets::default()
                },
            )
        })
        .collect();
    for f in &records {
        env.produce(f).await;
    }
    // Wait until work is under way: some first attempts made, retries scheduled.
    eventually(Duration::from_secs(60), "first attempts", || {
        rx.on("/hook").len() >= 10
    })
    .await;
    // Hold the receiver's answers so attempts are in flight, then kill -9.
    rx.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.start_kill().expect("kill -9");
    child.wait().await.unwrap();
    // Requests held from the dead process answer 503: their client is gone, none counts.
    rx.resume_new_epoch();
    let before = successes(&rx, "/hook", |r| r.header("webhook-id")).len();
    assert!(
        before < N,
        "the crash must come with deliveries still pending ({before} done)"
    );

    let mut child = spawn_child(&env);
    eventually(
        Duration::from_secs(90),
        "every record delivered to both endpoints",
        || {
            successes(&rx, "/hook", |r| r.header("webhook-id")).len() == N
                && successes(&rx, "/slack", slack_lead).len() == N
        },
    )
    .await;
    // Quiet period longer than a lease and a retry: nothing more may arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hooks = successes(&rx, "/hook", |r| r.header("webhook-id"));
    let slack = successes(&rx, "/slack", slack_lead);
    for f in &records {
        assert_eq!(
            hooks.get(&f.fired_id),
            Some(&1),
            "webhook for {}",
            f.fired_id
        );
        assert_eq!(slack.get(&f.lead_id), Some(&1), "slack for {}", f.lead_id);
    }
    child.start_kill().ok();
    child.wait().await.ok();
}
