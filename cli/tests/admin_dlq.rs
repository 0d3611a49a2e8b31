//! `leadstream admin dlq replay` on real parts: a tansu broker, Redis, the real `leadstream
//! notifier` process and an HTTP receiver that fails until it is switched on. A delivery ends in
//! the DLQ; after the receiver is fixed a replay delivers it exactly once, and replaying again
//! (from the group's position, then from the beginning) delivers nothing more.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use leadstream_notifier::attempt::State;
use leadstream_notifier::endpoint::Endpoint;
use leadstream_notifier::jobs::JobStore;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{RedisKv, Store};
use leadstream_testkit::cli::admin;
use leadstream_testkit::firing::{fired, webhook};
use leadstream_testkit::receiver::{Mode, Receiver};
use leadstream_testkit::{
    leadstream_bin, redis_url, unique, wait_for, wait_until, Broker, ChildGuard,
};

/// Requests carrying webhook-id `id` that the receiver answered with `status`.
fn count(rx: &Receiver, id: &str, status: u16) -> usize {
    rx.received()
        .iter()
        .filter(|r| r.webhook_id == id && r.status == status)
        .count()
}

/// Run an admin command that must succeed; answers its stdout.
fn admin_ok(vars: &BTreeMap<String, String>, args: &[&str]) -> String {
    let (ok, stdout, stderr) = admin(vars, args);
    assert!(
        ok,
        "leadstream admin {args:?} failed: {stderr}\nstdout: {stdout}"
    );
    stdout
}

/// The summary line of a replay.
fn summary(stdout: &str) -> &str {
    stdout
        .lines()
        .rev()
        .find(|l| l.contains("replayed="))
        .unwrap_or_else(|| panic!("no summary in {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delivery_is_replayed_exactly_once() {
    let broker = Broker::start();
    let prefix = unique("admdlq");
    let mut vars = leadstream_testkit::vars::notifier(&broker.addr(), &redis_url(), &prefix);
    vars.insert(
        "LEADSTREAM_WEBHOOK_RETRY_SCHEDULE".into(),
        "100ms,100ms".into(),
    );
    let fired_topic = format!("{prefix}.triggers.fired.v1");
    let dlq_topic = format!("{prefix}.notifications.dlq.v1");
    let kafka = KafkaSettings::new(broker.addr());
    ensure_topics(&kafka, &[&fired_topic, &dlq_topic], 2, 1)
        .await
        .expect("topics");

    // The receiver answers 503 until it is fixed.
    let rx = Receiver::start().await;
    rx.set_mode(Mode::Status(503));
    let mut notifier = ChildGuard::spawn(
        Command::new(leadstream_bin())
            .arg("notifier")
            .envs(&vars)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )
    .expect("leadstream notifier");

    // One firing whose webhook fails every attempt: it ends in the DLQ.
    let f = fired(1, "ld_dlq_1", webhook(rx.url("/hook")));
    let publisher = Publisher::new(&kafka, Duration::from_secs(10)).unwrap();
    let bytes = leadstream_shared::avro::encode_fired(&f).unwrap();
    publisher
        .send(&fired_topic, &f.kafka_key(), &bytes, &[])
        .await
        .expect("produce fired");

    let store: Store = Arc::new(RedisKv::connect(&redis_url()).await.expect("redis"));
    let keys = Keys::new(prefix.clone());
    let ep = Endpoint::all(&f.targets).remove(0);
    let jobs = JobStore::new(store, keys, 60_000);
    let job_key = jobs.key(&f.ou_id, &f.fired_id, &ep.id());
    wait_until(Duration::from_secs(60), "the delivery to die", || {
        let (jobs, job_key) = (jobs.clone(), job_key.clone());
        async move {
            let job = jobs.load(&job_key).await.ok()??;
            (matches!(job.state, State::Dead { .. }) && job.dlq_sent).then_some(())
        }
    })
    .await;
    assert_eq!(
        count(&rx, &f.fired_id, 503),
        3,
        "three attempts, all failed"
    );
    let letters = leadstream_testkit::consume(
        &broker.addr(),
        &dlq_topic,
        1,
        Duration::from_secs(30),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(letters.len(), 1, "one dead letter");
    // A record that is no DeadLetter: counted as undecodable, never stops a replay.
    publisher
        .send(&dlq_topic, "garbage", b"not avro", &[])
        .await
        .expect("produce garbage");

    // A dry run reports the replay and changes nothing (the real run below still replays it).
    rx.set_mode(Mode::Ok);
    let dry = admin_ok(&vars, &["dlq", "replay", "--dry-run"]);
    assert_eq!(
        summary(&dry),
        "dry run: replayed=1 skipped=0 undecodable=1 filtered=0"
    );
    // A filter that matches nothing: read, counted as filtered, not committed (dry run).
    let other = admin_ok(&vars, &["dlq", "replay", "--dry-run", "--ou", "ou_other"]);
    assert_eq!(
        summary(&other),
        "dry run: replayed=0 skipped=0 undecodable=1 filtered=1"
    );

    let first = admin_ok(&vars, &["dlq", "replay"]);
    assert_eq!(
        summary(&first),
        "replayed=1 skipped=0 undecodable=1 filtered=0"
    );
    assert!(first.contains(&f.fired_id), "{first}");
    wait_for(Duration::from_secs(30), "the replayed delivery", || {
        count(&rx, &f.fired_id, 200) >= 1
    })
    .await;

    // Again: the group continues after the last letter, so there is nothing to read.
    let second = admin_ok(&vars, &["dlq", "replay"]);
    assert_eq!(
        summary(&second),
        "replayed=0 skipped=0 undecodable=0 filtered=0"
    );
    // From the beginning: the letter is read again and skipped, the job is delivered.
    let third = admin_ok(&vars, &["dlq", "replay", "--from-beginning"]);
    assert_eq!(
        summary(&third),
        "replayed=0 skipped=1 undecodable=1 filtered=0"
    );
    assert!(third.contains("skipped: delivered"), "{third}");

    // The group's committed offset is the DLQ's end: no lag.
    let lag = admin_ok(
        &vars,
        &["lag", "--group", "leadstream-dlq-replay", "--topic", "dlq"],
    );
    assert!(lag.contains("total lag: 0"), "{lag}");

    // Longer than several poll intervals and the whole retry schedule: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&rx, &f.fired_id, 200), 1, "delivered exactly once");
    let job = jobs.load(&job_key).await.unwrap().unwrap();
    assert!(matches!(job.state, State::Succeeded { .. }), "{job:?}");
    notifier.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_precise_error_and_a_failure_exit() {
    let vars: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_REDIS_PREFIX", unique("admbad")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cases: [(&[&str], &str); 4] = [
        (&["dlq", "replay", "--since", "yesterday"], "--since"),
        (&["dlq", "replay", "--limit", "0"], "--limit"),
        (
            &["keys", "create", "--name", "x", "--scope", "root"],
            "root",
        ),
        (
            &[
                "keys", "create", "--name", "x", "--scope", "read", "--ou", "ou_nope",
            ],
            "no OU \"ou_nope\"",
        ),
    ];
    for (args, needle) in cases {
        let (ok, _, stderr) = admin(&vars, args);
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let mut no_redis = vars.clone();
    no_redis.remove("LEADSTREAM_REDIS_URL");
    let (ok, _, stderr) = admin(&no_redis, &["keys", "list"]);
    assert!(!ok);
    assert!(stderr.contains("LEADSTREAM_REDIS_URL"));
}
