//! `leadstream admin topics`, `lag`, `keys` and `webhook-secret` on real parts (a tansu broker,
//! Redis), checked against what the broker, the catalog and the processor's keys then hold.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use leadstream_shared::catalog::Catalog;
use leadstream_shared::kafka::{KafkaSettings, Publisher};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{Cmd, RedisKv, Store};
use leadstream_testkit::cli::admin;
use leadstream_testkit::{redis_url, unique, Broker};

fn vars(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The value of a `name\tvalue` line.
fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")))
        .unwrap_or_else(|| panic!("no {name} in {stdout:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_once_and_described() {
    let broker = Broker::start();
    let prefix = unique("admtop");
    let v = vars(&[
        ("LEADSTREAM_KAFKA_BROKERS", broker.addr()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
        ("LEADSTREAM_PARTITIONS", "3".into()),
    ]);
    for run in 0..2 {
        let (ok, out, err) = admin(&v, &["topics"]);
        assert!(ok, "run {run}: {err}");
        for t in [
            "events.v1",
            "triggers.fired.v1",
            "notifications.dlq.v1",
            "events.dlq.v1",
        ] {
            let rows: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with(&format!("{prefix}.{t}\t")))
                .collect();
            assert_eq!(rows.len(), 3, "run {run}, {t}: {out}");
            // Empty topics: low = high = 0.
            assert!(rows.iter().all(|r| r.ends_with("\t0\t0")), "{rows:?}");
        }
    }
    // A broker that is not there: a sentence and a failure exit, not a hang or a panic.
    let mut gone = v.clone();
    gone.insert("LEADSTREAM_KAFKA_BROKERS".into(), "127.0.0.1:1".into());
    gone.insert(
        "LEADSTREAM_KAFKA_CONFIG".into(),
        "socket.timeout.ms=2000".into(),
    );
    let (ok, _, err) = admin(&gone, &["topics"]);
    assert!(!ok);
    assert!(err.starts_with("error: "), "{err}");
}

/// `admin lag` beside the group's committed offsets shows the processor's applied offsets,
/// from where this version keeps them or, for a partition not written since an upgrade, where
/// earlier versions kept them (written here straight to Redis, as a processor leaves them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_shows_the_processors_applied_offsets_in_either_layout() {
    let broker = Broker::start();
    let prefix = unique("admlag");
    let v = leadstream_testkit::vars::service(&broker.addr(), &redis_url(), &prefix, 3);
    let (ok, _, err) = admin(&v, &["topics"]);
    assert!(ok, "{err}");
    let events = format!("{prefix}.events.v1");
    // At least three records on every partition.
    let publisher = Publisher::new(&KafkaSettings::new(broker.addr()), Duration::from_secs(10))
        .expect("producer");
    let mut high = BTreeMap::<i32, i64>::new();
    for i in 0.. {
        if high.len() == 3 && high.values().all(|n| *n >= 3) {
            break;
        }
        assert!(i < 200, "records reach every partition: {high:?}");
        let d = publisher
            .send(&events, &format!("ou:lead_{i}"), b"{}", &[])
            .await
            .expect("produce");
        high.insert(d.partition, d.offset + 1);
    }
    // Partition 0 applied up to offset 1, 1 up to 2 (an older value in the old layout loses),
    // 2 only in the layout before partition hash tags (offset 0).
    let keys = Keys::new(prefix.clone());
    let store: Store = Arc::new(RedisKv::connect(&redis_url()).await.expect("redis"));
    let set = |key: String, v: &str| Cmd::Set {
        key,
        value: v.as_bytes().to_vec(),
        ttl_ms: None,
    };
    store
        .exec(vec![
            set(keys.partition(&events, 0).applied(), "1"),
            set(keys.partition(&events, 1).applied(), "2"),
            set(keys.legacy_applied(&events, 1), "0"),
            set(keys.legacy_applied(&events, 2), "0"),
        ])
        .await
        .unwrap();

    let lag = || {
        admin(
            &v,
            &[
                "lag",
                "--group",
                "leadstream-processor",
                "--topic",
                "events",
            ],
        )
    };
    let (ok, out, err) = lag();
    assert!(ok, "{err}");
    for (p, applied) in [(0, 1), (1, 2), (2, 0)] {
        let h = high[&p];
        // topic, partition, high, committed (none), lag, applied, applied lag.
        let row = format!("{events}\t{p}\t{h}\t-\t{h}\t{applied}\t{}", h - applied - 1);
        assert!(out.lines().any(|l| l == row), "{row:?} in {out}");
    }
    // Without an applied offset: the whole partition is still to apply.
    store
        .exec(vec![Cmd::Del {
            key: keys.legacy_applied(&events, 2),
        }])
        .await
        .unwrap();
    let (ok, out, err) = lag();
    assert!(ok, "{err}");
    let h = high[&2];
    let row = format!("{events}\t2\t{h}\t-\t{h}\t-\t{h}");
    assert!(out.lines().any(|l| l == row), "{row:?} in {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_and_revoked_and_secrets_rotate() {
    let prefix = unique("admkeys");
    let v = vars(&[
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
    ]);
    let store: Store = Arc::new(RedisKv::connect(&redis_url()).await.expect("redis"));
    let catalog = Catalog::new(store, Keys::new(prefix.clone()));

    let (ok, out, err) = admin(
        &v,
        &[
            "keys",
            "create",
            "--name",
            "ci",
            "--scope",
            "ingest,read",
            "--ou",
            "unit_default",
        ],
    );
    assert!(ok, "{err}");
    let id = field(&out, "id").to_string();
    let secret = field(&out, "key").to_string();
    let key = catalog
        .authenticate(&secret)
        .await
        .unwrap()
        .expect("the printed secret authenticates");
    assert_eq!(key.id, id);
    assert_eq!(key.ou_ids, ["unit_default"]);

    let (ok, list, _) = admin(&v, &["keys", "list"]);
    assert!(ok);
    assert!(list.contains(&id), "{list}");
    assert!(!list.contains(&secret), "list never shows a secret");

    let (ok, _, err) = admin(&v, &["keys", "revoke", &id]);
    assert!(ok, "{err}");
    assert!(catalog.authenticate(&secret).await.unwrap().is_none());
    let (ok, _, err) = admin(&v, &["keys", "revoke", &id]);
    assert!(!ok);
    assert!(err.contains(&format!("no key \"{id}\"")), "{err}");

    let before = catalog.webhook_secret("unit_default").await.unwrap();
    let (ok, out, err) = admin(&v, &["webhook-secret", "rotate", "--ou", "unit_default"]);
    assert!(ok, "{err}");
    let fresh = field(&out, "secret");
    assert_ne!(fresh, before);
    assert_eq!(catalog.webhook_secret("unit_default").await.unwrap(), fresh);
    let signing = catalog
        .signing_secrets("unit_default", 60_000)
        .await
        .unwrap();
    assert_eq!(
        signing,
        [fresh.to_string(), before],
        "the old secret keeps signing"
    );
}
