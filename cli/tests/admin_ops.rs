//! `leadstream admin topics`, `keys` and `webhook-secret` on real parts (a tansu broker, Redis),
//! checked against what the broker and the catalog then hold.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use leadstream_shared::catalog::Catalog;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{RedisKv, Store};
use leadstream_testkit::{leadstream_bin, redis_url, unique, Broker};

fn admin(vars: &BTreeMap<String, String>, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(leadstream_bin())
        .arg("admin")
        .args(args)
        .envs(vars)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run leadstream admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
