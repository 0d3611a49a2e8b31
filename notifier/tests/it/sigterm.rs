//! SIGTERM under load on the real `leadstream notifier` process: fired records keep arriving and
//! a slow webhook receiver (300–800 ms per answer) keeps deliveries in flight when the signal
//! lands. The process must exit 0 after letting every in-flight attempt finish and record its
//! result; what was not attempted stays due (no lease left behind); after a restart every fired
//! record is delivered exactly once (counted by `webhook-id`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use leadstream_domain::fired::TriggerFired;
use leadstream_notifier::attempt::State;
use leadstream_notifier::endpoint::Endpoint;
use leadstream_shared::delivery::{AttemptStatus, Channel, DeliveryQuery};
use leadstream_shared::kafka::KafkaSettings;
use leadstream_testkit::{leadstream_bin, wait_for, ChildGuard};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::*;

/// Fired records produced before the signal, and while the notifier drains.
const BEFORE: usize = 40;
const DURING: usize = 20;

/// A webhook receiver that takes 300–800 ms per answer (the same for each `webhook-id`).
async fn slow_receiver() -> Receiver {
    let rx = Receiver::start().await;
    rx.set_mode(Mode::SlowPerId {
        base: Duration::from_millis(300),
        spread: Duration::from_millis(500),
    });
    rx
}

/// Every request that reached the receiver, by `webhook-id`.
fn started_ids(rx: &Receiver) -> Vec<String> {
    rx.received().into_iter().map(|r| r.webhook_id).collect()
}

/// Every request it answered (recorded as the answer is returned), by `webhook-id`.
fn answered_ids(rx: &Receiver) -> Vec<String> {
    rx.received()
        .into_iter()
        .filter(|r| r.answered)
        .map(|r| r.webhook_id)
        .collect()
}

fn in_flight(rx: &Receiver) -> usize {
    started_ids(rx).len() - answered_ids(rx).len()
}

fn spawn_notifier(env: &Env) -> ChildGuard {
    let mut cmd = Command::new(leadstream_bin());
    cmd.arg("notifier")
        .envs(&env.vars)
        .env(
            "RUST_LOG",
            std::env::var("LEADSTREAM_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("LEADSTREAM_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    ChildGuard::spawn(&mut cmd).expect("spawn leadstream notifier")
}

/// SIGTERM, then wait (polling, bounded) for the exit.
async fn terminate(child: &mut ChildGuard) -> ExitStatus {
    child.signal_term();
    child
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("the notifier exits after SIGTERM (bounded at 60s here)")
}

fn counts(ids: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.clone()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_deliveries_finish_and_the_rest_stays_due() {
    let env = Env::new(
        "sigterm",
        &[
            // Longer than the slowest answer: every attempt made succeeds on the first try.
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "5s"),
            ("LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", "6"),
        ],
    )
    .await;
    let rx = slow_receiver().await;
    let url = rx.url("/hook");
    let records: Vec<TriggerFired> = (0..BEFORE + DURING)
        .map(|i| fired(i, &format!("ld_term_{i}"), webhook(url.clone())))
        .collect();

    let mut child = spawn_notifier(&env);
    for f in &records[..BEFORE] {
        env.produce(f).await;
    }
    wait_for(Duration::from_secs(60), "deliveries under way", || {
        answered_ids(&rx).len() >= 6 && in_flight(&rx) > 0
    })
    .await;
    let in_flight_at_signal = in_flight(&rx);
    // More records arrive while the notifier drains (and after it stopped).
    let during = async {
        for f in &records[BEFORE..] {
            env.produce(f).await;
        }
    };
    let (status, ()) = tokio::join!(terminate(&mut child), during);
    assert!(status.success(), "SIGTERM is a clean exit, got {status}");

    // Committed offsets never pass what was made durable: at most the end of each partition.
    for (p, committed, end) in committed_and_ends(&env) {
        assert!(
            committed.is_none_or(|c| c <= end),
            "partition {p}: committed {committed:?} is beyond the end {end}"
        );
    }
    // Every attempt the receiver saw got its answer before the process exited.
    let started = started_ids(&rx);
    let answered = answered_ids(&rx);
    assert_eq!(
        counts(&started),
        counts(&answered),
        "every in-flight delivery finished before the exit"
    );
    assert!(
        in_flight_at_signal > 0,
        "deliveries must be in flight at the signal"
    );
    let delivered: BTreeSet<String> = answered.iter().cloned().collect();
    assert_eq!(delivered.len(), answered.len(), "no delivery twice");
    assert!(
        delivered.len() < records.len(),
        "the signal must land with deliveries still to do ({} done)",
        delivered.len()
    );

    // The store agrees: delivered ⇔ succeeded (and in the delivery log); the rest stays due,
    // with no lease left behind to delay the next start.
    let endpoint = Endpoint::new(Channel::Webhook, url.clone()).id();
    let jobs = env.jobs();
    let due: BTreeSet<String> = jobs
        .due(i64::MAX, 10 * records.len())
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut pending = 0;
    for f in &records {
        let key = jobs.key(&f.ou_id, &f.fired_id, &endpoint);
        let job = jobs.load(&key).await.unwrap();
        assert!(
            !jobs.is_leased(&key).await.unwrap(),
            "no lease left on {key}"
        );
        let Some(job) = job else {
            // Not consumed yet: the record waits in Kafka, its offset uncommitted.
            assert!(!delivered.contains(&f.fired_id));
            continue;
        };
        if delivered.contains(&f.fired_id) {
            assert!(
                matches!(job.state, State::Succeeded { .. }),
                "{}: delivered, so recorded as succeeded: {:?}",
                f.fired_id,
                job.state
            );
            assert!(!due.contains(&key), "a succeeded delivery is not due");
            let log = env
                .deliveries(DeliveryQuery {
                    fired_id: Some(f.fired_id.clone()),
                    ..DeliveryQuery::default()
                })
                .await;
            assert!(
                log.iter().any(|a| a.status == AttemptStatus::Succeeded),
                "{}: the delivery log has the success: {log:?}",
                f.fired_id
            );
        } else {
            assert_eq!(job.state, State::Pending, "{}: not attempted", f.fired_id);
            assert!(due.contains(&key), "{}: still due", f.fired_id);
            pending += 1;
        }
    }
    eprintln!(
        "at the exit: {} delivered, {pending} due, {} not yet consumed, {in_flight_at_signal} in flight at the signal",
        delivered.len(),
        records.len() - delivered.len() - pending
    );

    // A new process finishes the work: each record delivered exactly once.
    let mut child = spawn_notifier(&env);
    let all = tokio::time::timeout(Duration::from_secs(90), async {
        while counts(&answered_ids(&rx)).len() < records.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if all.is_err() {
        let answered = counts(&answered_ids(&rx));
        let missing: Vec<usize> = (0..records.len())
            .filter(|i| !answered.contains_key(&records[*i].fired_id))
            .collect();
        for i in &missing {
            let key = jobs.key("unit_default", &records[*i].fired_id, &endpoint);
            eprintln!(
                "record {i}: job {:?}, leased {:?}",
                jobs.load(&key).await,
                jobs.is_leased(&key).await
            );
        }
        panic!("not delivered after the restart (record numbers; {BEFORE}.. were produced during the drain): {missing:?}");
    }
    let status = terminate(&mut child).await;
    assert!(status.success(), "SIGTERM is a clean exit, got {status}");
    let answered = counts(&answered_ids(&rx));
    assert_eq!(
        counts(&started_ids(&rx)),
        answered,
        "nothing left in flight"
    );
    for (p, committed, end) in committed_and_ends(&env) {
        assert_eq!(
            committed,
            Some(end),
            "partition {p}: everything consumed is committed"
        );
    }
    for f in &records {
        assert_eq!(
            answered.get(&f.fired_id),
            Some(&1),
            "{} delivered exactly once",
            f.fired_id
        );
    }
}

/// Per partition of the fired topic: the notifier group's committed offset and the end.
fn committed_and_ends(env: &Env) -> Vec<(i32, Option<i64>, i64)> {
    let group = &env.vars["LEADSTREAM_NOTIFIER_GROUP"];
    let c: BaseConsumer = KafkaSettings::new(env.broker.addr())
        .consumer_config(group)
        .create()
        .expect("consumer");
    let partitions = 0..2;
    let mut tpl = TopicPartitionList::new();
    for p in partitions.clone() {
        tpl.add_partition(&env.fired_topic, p);
    }
    tokio::task::block_in_place(|| {
        let committed = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("OffsetFetch for the notifier group");
        partitions
            .map(|p| {
                let off =
                    committed
                        .find_partition(&env.fired_topic, p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                let (_, end) = c
                    .fetch_watermarks(&env.fired_topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                (p, off, end)
            })
            .collect()
    })
}
