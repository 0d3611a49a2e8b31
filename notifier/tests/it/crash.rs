//! Crash test: kill -9 a notifier process with deliveries pending, attempts in flight and
//! retries scheduled; after a restart every fired record is delivered exactly once per
//! endpoint and none is lost.

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

use leadstream_domain::fired::Targets;
use leadstream_shared::delivery::{AttemptStatus, DeliveryQuery};
use leadstream_testkit::wait_for;

use crate::support::*;

fn spawn_child(env: &Env) -> tokio::process::Child {
    spawn_child_with(env, &[])
}

fn spawn_child_with(env: &Env, extra: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_leadstream-notifier"))
        .envs(&env.vars)
        .envs(extra.iter().copied())
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
    kill_9_round(&[]).await;
}

/// Deliver N records to a webhook (failing once each) and Slack, kill -9 the notifier with work
/// pending, restart it, and check every record is delivered exactly once per endpoint. `extra`
/// configures the notifier (e.g. a Redis Cluster). Answers the environment and N.
pub async fn kill_9_round(extra: &[(&str, &str)]) -> (Env, usize) {
    const N: usize = 40;
    let mut vars = vec![("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "700ms,700ms,700ms")];
    vars.extend_from_slice(extra);
    let env = Env::new("crash", &vars).await;
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
    wait_for(Duration::from_secs(60), "first attempts", || {
        rx.on("/hook").len() >= 10
    })
    .await;
    // Hold the receiver's answers until attempts are in flight, then kill -9.
    rx.pause();
    wait_for(Duration::from_secs(30), "attempts held in flight", || {
        rx.held() > 0
    })
    .await;
    // A 200 the old process received but had not yet recorded is attempted again by its
    // successor: that is the crash window `kill_9_while_the_receiver_answers_200…` measures.
    // This round is about work pending at the crash, so it kills once every success answered
    // so far is on record (the receiver holds every new request meanwhile).
    let answered = successes(&rx, "/hook", |r| r.header("webhook-id"))
        .values()
        .sum::<usize>()
        + successes(&rx, "/slack", slack_lead).values().sum::<usize>();
    let on_record = DeliveryQuery {
        status: Some(AttemptStatus::Succeeded),
        ..Default::default()
    };
    leadstream_testkit::wait_until(
        Duration::from_secs(30),
        "every success answered before the crash on record",
        || async {
            let recorded = all_deliveries(&env, on_record.clone()).await.len();
            (recorded >= answered).then_some(())
        },
    )
    .await;
    child.start_kill().expect("kill -9");
    child.wait().await.unwrap();
    // Requests held from the dead process answer 503: their client is gone, none counts.
    rx.resume_new_epoch();
    let before = successes(&rx, "/hook", |r| r.header("webhook-id")).len();
    assert!(
        before < N,
        "the crash must come with deliveries still pending ({before} done)"
    );

    // tansu never expires the session of a member killed with -9: a replacement in the same
    // group would never be assigned the dead member's partitions, and fired records it had not
    // read yet (a slow first poll under load) would never be delivered. So it joins a fresh
    // group, reads the fired topic from the start and stores only the deliveries it does not
    // know yet (the idempotency on (fired id, endpoint)).
    let group = format!("{}-gen1", env.vars["LEADSTREAM_NOTIFIER_GROUP"]);
    let mut child = spawn_child_with(&env, &[("LEADSTREAM_NOTIFIER_GROUP", &group)]);
    wait_for(
        Duration::from_secs(90),
        "every record delivered to both endpoints",
        || {
            successes(&rx, "/hook", |r| r.header("webhook-id")).len() == N
                && successes(&rx, "/slack", slack_lead).len() == N
        },
    )
    .await;
    // Done when the log holds a success for every job (both channels): each job is then
    // final, so no further attempt can come and the counts below are complete.
    let succeeded = DeliveryQuery {
        status: Some(AttemptStatus::Succeeded),
        ..Default::default()
    };
    leadstream_testkit::wait_until(
        Duration::from_secs(60),
        "a recorded success for every job",
        || async {
            let log = all_deliveries(&env, succeeded.clone()).await;
            let jobs: BTreeSet<(String, String)> = log
                .into_iter()
                .map(|a| (a.fired_id, a.endpoint_id))
                .collect();
            (jobs.len() == 2 * N).then_some(())
        },
    )
    .await;
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
    (env, N)
}

/// Every delivery attempt in the log matching `q`, all pages.
async fn all_deliveries(
    env: &Env,
    q: DeliveryQuery,
) -> Vec<leadstream_shared::delivery::DeliveryAttempt> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = leadstream_shared::delivery::query(
            env.store.as_ref(),
            &env.keys,
            "unit_default",
            &DeliveryQuery {
                offset,
                limit: Some(leadstream_shared::delivery::PAGE_MAX),
                ..q.clone()
            },
        )
        .await
        .expect("delivery log");
        out.extend(page.deliveries);
        match page.next_offset {
            Some(o) => offset = o,
            None => return out,
        }
    }
}

/// The receiver answers 200 to everything while fired records keep arriving, and the notifier
/// is killed with -9 mid-stream (attempts may be in flight: nothing is held back).
///
/// What is guaranteed there, and asserted exactly: every fired record reaches the endpoint
/// (at least once); a second delivery of the same record can only come from the crash window
/// — the receiver answered 2xx before the kill, the dead notifier never recorded it, and the
/// job is attempted again after its lease expired — so a record arrives at most twice, the
/// copies carry the same `webhook-id`, body and a valid signature (a receiver that dedupes on
/// `webhook-id`, as Standard Webhooks asks, processes each record once), at most
/// `ENDPOINT_CONCURRENCY` records are repeated, and the delivery log holds exactly one success
/// per record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_while_the_receiver_answers_200_under_load_delivers_each_id_at_least_once_and_repeats_only_the_crash_window(
) {
    const N: usize = 200;
    const CONCURRENCY: usize = 8;
    /// The producer stays at most this many records ahead of the successes seen.
    const AHEAD: usize = 40;
    let env = Env::new(
        "crash200",
        &[(
            "LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY",
            &CONCURRENCY.to_string(),
        )],
    )
    .await;
    let rx = Receiver::start().await;
    let secret = env
        .catalog()
        .webhook_secret("unit_default")
        .await
        .expect("secret");
    let records: Vec<_> = (0..N)
        .map(|i| fired(i, &format!("ld_c200_{i}"), webhook(rx.url("/hook"))))
        .collect();
    let delivered = || successes(&rx, "/hook", |r| r.header("webhook-id")).len();

    let first = spawn_child(&env);
    let produced = std::sync::atomic::AtomicUsize::new(0);
    let produce = async {
        for chunk in records.chunks(10) {
            let ahead = produced.load(std::sync::atomic::Ordering::SeqCst);
            wait_for(Duration::from_secs(120), "deliveries to keep up", || {
                delivered() + AHEAD >= ahead
            })
            .await;
            for f in chunk {
                env.produce(f).await;
            }
            produced.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
        }
    };
    let crash = async {
        let mut child = first;
        wait_for(Duration::from_secs(120), "a third delivered", || {
            delivered() >= N / 3
        })
        .await;
        child.start_kill().expect("kill -9");
        child.wait().await.expect("reaped");
        let killed_at = Instant::now();
        let at_kill = (
            produced.load(std::sync::atomic::Ordering::SeqCst),
            delivered(),
        );
        // tansu never expires the session of a member killed with -9, so the replacement joins
        // a fresh group: it reads the fired topic from the start and stores only the
        // deliveries it does not know yet (the idempotency on (fired id, endpoint)).
        let group = format!("{}-gen1", env.vars["LEADSTREAM_NOTIFIER_GROUP"]);
        let restarted_at = Instant::now();
        let child = spawn_child_with(&env, &[("LEADSTREAM_NOTIFIER_GROUP", &group)]);
        (child, (killed_at, restarted_at), at_kill)
    };
    let ((), (mut child, (killed_at, restarted_at), (produced_at_kill, delivered_at_kill))) =
        tokio::join!(produce, crash);
    assert!(
        produced_at_kill < N && delivered_at_kill < N,
        "the kill must land mid-stream (produced {produced_at_kill}, delivered {delivered_at_kill})"
    );

    // Done when the log holds a success for every record: each job is then final, so no
    // further attempt can come and the receiver's counts below are complete.
    let succeeded = DeliveryQuery {
        status: Some(AttemptStatus::Succeeded),
        ..Default::default()
    };
    leadstream_testkit::wait_until(
        Duration::from_secs(120),
        "a recorded success for every record",
        || async {
            let log = all_deliveries(&env, succeeded.clone()).await;
            let ids: BTreeSet<String> = log.into_iter().map(|a| a.fired_id).collect();
            (ids.len() == N).then_some(())
        },
    )
    .await;

    let log = all_deliveries(&env, succeeded).await;
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for a in &log {
        *per_id.entry(a.fired_id.as_str()).or_default() += 1;
    }
    assert!(
        per_id.values().all(|&n| n == 1) && per_id.len() == N,
        "the delivery log holds exactly one success per record"
    );
    let got = rx.on("/hook");
    let mut repeated = Vec::new();
    for f in &records {
        let copies: Vec<&Received> = got
            .iter()
            .filter(|r| r.status == 200 && r.header("webhook-id") == f.fired_id)
            .collect();
        assert!(!copies.is_empty(), "{} was never delivered", f.fired_id);
        assert!(
            copies.len() <= 2,
            "{} delivered {} times",
            f.fired_id,
            copies.len()
        );
        for r in &copies {
            let ts = r.header("webhook-timestamp");
            let sig = r.header("webhook-signature");
            assert!(
                verify(
                    std::slice::from_ref(&secret),
                    &f.fired_id,
                    &ts,
                    &r.body,
                    &sig
                ),
                "every copy is signed"
            );
            assert_eq!(r.body, copies[0].body, "every copy has the same body");
        }
        if copies.len() == 2 {
            // Only the crash window: the first copy came from the killed process (the
            // receiver may read its last request just after the kill, but before the
            // replacement was started), the repeat after the kill.
            assert!(
                copies[0].at < restarted_at && copies[1].at > killed_at,
                "{} repeated outside the crash window",
                f.fired_id
            );
            repeated.push(f.fired_id.clone());
        }
    }
    assert!(
        repeated.len() <= CONCURRENCY,
        "more repeats ({}) than attempts that can be in flight at the kill",
        repeated.len()
    );
    eprintln!(
        "killed -9 with {produced_at_kill} produced and {delivered_at_kill} delivered; \
         repeated (same webhook-id, crash window): {}",
        repeated.len()
    );
    child.start_kill().ok();
    child.wait().await.ok();
}
