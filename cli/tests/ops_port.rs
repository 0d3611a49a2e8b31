//! The processor's and the notifier's operations port (`LEADSTREAM_METRICS_ADDR`): `/healthz`,
//! `/readyz` and `/metrics` from the real binary on a real broker and Redis; readiness follows
//! the store; a bad address is a precise configuration error.

use std::process::{Command, Stdio};
use std::time::Duration;

use leadstream_testkit::redis_server::{Durability, RedisServer};
use leadstream_testkit::{
    free_port, leadstream_bin, redis_url, unique, wait_until, Broker, ChildGuard,
};

fn service(kind: &str, broker: &Broker, ops: &str, redis: &str) -> Command {
    let prefix = unique("ops");
    let mut cmd = Command::new(leadstream_bin());
    cmd.arg(kind)
        .env("LEADSTREAM_KAFKA_BROKERS", broker.addr())
        .env("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true")
        .env("LEADSTREAM_REDIS_URL", redis)
        .env("LEADSTREAM_TOPIC_PREFIX", &prefix)
        .env("LEADSTREAM_REDIS_PREFIX", &prefix)
        .env("LEADSTREAM_PARTITIONS", "2")
        .env("LEADSTREAM_PROCESSOR_GROUP", format!("{prefix}-p"))
        .env("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}-n"))
        .env("LEADSTREAM_METRICS_ADDR", ops)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let resp = http.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_and_notifier_serve_health_readiness_and_metrics() {
    let broker = Broker::start();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for kind in ["processor", "notifier"] {
        let ops = format!("127.0.0.1:{}", free_port());
        let mut child = ChildGuard::spawn(&mut service(kind, &broker, &ops, &redis_url()))
            .expect("spawn service");
        let base = format!("http://{ops}");
        let ready = wait_until(Duration::from_secs(60), "/readyz is 200", || async {
            get(&http, &format!("{base}/readyz"))
                .await
                .filter(|(s, _)| *s == 200)
        })
        .await;
        assert!(ready.1.contains("\"ready\""), "{kind}: {}", ready.1);
        let (status, body) = get(&http, &format!("{base}/healthz"))
            .await
            .expect("healthz");
        assert_eq!((status, body.contains("ok")), (200, true), "{kind}: {body}");
        // librdkafka statistics arrive every 5 s; they are exported through this port.
        let metrics = format!("{base}/metrics");
        wait_until(Duration::from_secs(30), "Kafka client metrics", || async {
            get(&http, &metrics)
                .await
                .filter(|(s, t)| *s == 200 && t.contains("leadstream_kafka_broker_rtt_seconds"))
        })
        .await;
        child.signal_term();
        let exit = child
            .wait_exit(Duration::from_secs(60))
            .await
            .expect("exits after SIGTERM");
        assert!(exit.success(), "{kind}: {exit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_the_store_does_not_answer() {
    // A private redis-server, so this test can stop it without disturbing others.
    let dir = std::env::temp_dir().join(unique("ops-redis"));
    let mut redis = RedisServer::start(&dir, Durability::None);
    let broker = Broker::start();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ops = format!("127.0.0.1:{}", free_port());
    let _child = ChildGuard::spawn(&mut service("processor", &broker, &ops, &redis.url()))
        .expect("spawn processor");
    let readyz = format!("http://{ops}/readyz");
    wait_until(Duration::from_secs(60), "/readyz is 200", || async {
        get(&http, &readyz).await.filter(|(s, _)| *s == 200)
    })
    .await;
    redis.kill();
    let (_, body) = wait_until(Duration::from_secs(30), "/readyz is 503", || async {
        get(&http, &readyz).await.filter(|(s, _)| *s == 503)
    })
    .await;
    assert!(body.contains("store_unavailable"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_operations_address_is_a_precise_error() {
    let out = Command::new(leadstream_bin())
        .arg("processor")
        .env("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1")
        .env("LEADSTREAM_REDIS_URL", redis_url())
        .env("LEADSTREAM_METRICS_ADDR", "not-an-address")
        .stdin(Stdio::null())
        .output()
        .expect("run processor");
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("LEADSTREAM_METRICS_ADDR") && all.contains("not-an-address"),
        "{all}"
    );
}
