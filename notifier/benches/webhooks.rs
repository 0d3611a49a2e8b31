//! Webhook delivery benchmark: signed webhooks/s to a local receiver and the fired → delivered
//! latency (p50/p99), on real parts (a tansu broker, redis-server, an HTTP receiver).
//!
//! `cargo bench -p leadstream-notifier --bench webhooks` (needs `tansu` and `redis-server`).
//! `BENCH_N` sets the number of fired records (default 5000). The fired topic's consumer uses
//! `fetch.wait.max.ms` = `LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS` (default 100) and the producers
//! `linger.ms` = 5; both are printed with the figures because they bound the latency. A
//! `PERF {json}` line for `scripts/perf-report` is printed beside the human output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use leadstream_domain::fired::{Targets, TriggerFired, TriggerKind};
use leadstream_notifier::NotifierConfig;
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher};
use leadstream_testkit::{redis_url, unique, Broker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

type Log = Arc<Mutex<Vec<(String, i64)>>>;

async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let l = l.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let signed = headers.contains_key("webhook-signature");
            l.lock()
                .unwrap()
                .push((id, if signed { now_ms() } else { -1 }));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn record(i: usize, url: &str) -> TriggerFired {
    let lead = format!("ld_{i}");
    TriggerFired {
        fired_id: leadstream_shared::ids::derived_id("fir", &["bench", &lead]),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: lead.clone(),
        trigger_id: "trg_bench".into(),
        trigger_name: "Bench".into(),
        kind: TriggerKind::Milestone,
        event_id: format!("evt_{i}"),
        fired_at_ms: now_ms(),
        score: 80,
        payload: json!({"trigger": {"id": "trg_bench", "name": "Bench", "type": "milestone"},
            "event": {"id": format!("evt_{i}"), "lead_id": lead, "event_type": "page_view",
                      "metadata": {"page": "/pricing"}, "created_at": "2025-01-15T10:35:00Z"},
            "score": 80}),
        targets: Targets {
            webhook_url: Some(url.to_string()),
            ..Targets::default()
        },
    }
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let broker = Broker::start();
    let prefix = unique("bench");
    let (url, log) = receiver().await;
    let vars: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", broker.addr()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
        ("LEADSTREAM_PARTITIONS", "4".into()),
        (
            "LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS",
            std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "100".into()),
        ),
        ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
        ("LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", "64".into()),
        ("LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT", "256".into()),
        ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}_n")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = NotifierConfig::from_source(&vars).unwrap();
    let kafka = KafkaSettings::new(broker.addr());
    ensure_topics(
        &kafka,
        &[&cfg.common.topics.fired, &cfg.common.topics.dlq],
        4,
        1,
    )
    .await
    .unwrap();
    let fired_topic = cfg.common.topics.fired.clone();
    let fetch_wait = cfg.common.kafka.fetch_wait_max_ms;
    let stop = CancellationToken::new();
    let notifier = tokio::spawn(leadstream_notifier::run(cfg, stop.clone()));
    let publisher = Publisher::new(&kafka, Duration::from_secs(30)).unwrap();

    // Warm up: one record through the whole path (group join, connections, secrets).
    let warm = record(usize::MAX, &url);
    let bytes = leadstream_shared::avro::encode_fired(&warm).unwrap();
    publisher
        .send(&fired_topic, &warm.kafka_key(), &bytes, &[])
        .await
        .unwrap();
    while log.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log.lock().unwrap().clear();

    let started = Instant::now();
    let mut fired_at = std::collections::HashMap::new();
    let mut sends = Vec::with_capacity(n);
    for i in 0..n {
        let f = record(i, &url);
        fired_at.insert(f.fired_id.clone(), f.fired_at_ms);
        let bytes = leadstream_shared::avro::encode_fired(&f).unwrap();
        let p = publisher.clone();
        let topic = fired_topic.clone();
        sends.push(tokio::spawn(async move {
            p.send(&topic, &f.kafka_key(), &bytes, &[]).await
        }));
    }
    for s in sends {
        s.await.unwrap().unwrap();
    }
    let produced = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    while log.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let got = log.lock().unwrap().clone();

    // Steady phase: RATE records/s for 5 s, the latency a live system sees.
    const RATE: usize = 100;
    log.lock().unwrap().clear();
    let mut steady_at = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE as u64));
    for i in 0..RATE * 5 {
        tick.tick().await;
        let f = record(1_000_000 + i, &url);
        steady_at.insert(f.fired_id.clone(), f.fired_at_ms);
        let bytes = leadstream_shared::avro::encode_fired(&f).unwrap();
        let p = publisher.clone();
        let topic = fired_topic.clone();
        tokio::spawn(async move { p.send(&topic, &f.kafka_key(), &bytes, &[]).await });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.lock().unwrap().len() < RATE * 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut steady: Vec<i64> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, at)| steady_at.get(id).map(|f| at - f))
        .collect();
    steady.sort_unstable();
    stop.cancel();
    let _ = notifier.await;

    let unsigned = got.iter().filter(|(_, t)| *t < 0).count();
    let mut lat: Vec<i64> = got
        .iter()
        .filter_map(|(id, at)| fired_at.get(id).map(|f| at - f))
        .collect();
    lat.sort_unstable();
    let distinct: std::collections::HashSet<&String> = got.iter().map(|(id, _)| id).collect();
    println!("notifier webhook benchmark");
    println!(
        "  records: {n}, delivered: {} (distinct ids {}), unsigned: {unsigned}",
        got.len(),
        distinct.len()
    );
    println!(
        "  throughput: {:.0} signed webhooks/s ({:.2} s)",
        got.len() as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("  burst produce time: {:.2} s", produced.as_secs_f64());
    println!(
        "  steady {RATE}/s for 5 s: {} delivered, fired -> delivered p50 {} ms, p99 {} ms, max {} ms",
        steady.len(),
        pct(&steady, 0.50),
        pct(&steady, 0.99),
        steady.last().copied().unwrap_or(0)
    );
    println!(
        "  burst fired -> delivered latency: p50 {} ms, p99 {} ms, max {} ms",
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0)
    );
    println!(
        "  settings: 4 partitions, tansu memory broker, local redis-server, fetch.wait.max.ms={fetch_wait}, linger.ms=5, endpoint concurrency 64, max in flight 256"
    );
    println!(
        "PERF {}",
        json!({"name": "notifier", "records": n, "delivered": got.len(), "distinct": distinct.len(),
               "unsigned": unsigned, "deliveries_per_s": got.len() as f64 / elapsed.as_secs_f64(),
               "burst_p50_ms": pct(&lat, 0.50), "burst_p99_ms": pct(&lat, 0.99),
               "steady_rate": RATE, "steady_delivered": steady.len(),
               "steady_p50_ms": pct(&steady, 0.50), "steady_p99_ms": pct(&steady, 0.99),
               "fetch_wait_ms": fetch_wait, "endpoint_concurrency": 64, "max_in_flight": 256,
               "partitions": 4})
    );
}
