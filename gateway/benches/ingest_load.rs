//! Load generator: ingest throughput and latency of the real gateway against a local tansu
//! broker and Redis, next to the ceiling: a bare rdkafka producer (same producer settings)
//! sending the same records to the same broker.
//!
//! `cargo bench -p leadstream-gateway --bench ingest_load` (bounded: a fixed number of requests
//! per phase; everything on loopback). Knobs: `BENCH_SINGLE` (requests, default 20000),
//! `BENCH_CONCURRENCY` (default 64), `BENCH_BATCH_EVENTS` (default 100000), `BENCH_BATCH_SIZE`
//! (events per import request, default 1000), `BENCH_BROKERS` (an already running broker
//! instead of a fresh tansu). Prints one line per phase, and beside it a `PERF {json}` line for
//! `scripts/perf-report`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use leadstream_gateway::GatewayConfig;
use leadstream_shared::avro::encode_event;
use leadstream_testkit::{redis_url, unique, Broker};

mod common;
use common::{env_usize, perf, sample_event};

const ADMIN: &str = "bench-bootstrap-admin-key-0123456789";

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn event_body(i: usize) -> serde_json::Value {
    json!({
        "lead_id": format!("ld_bench{}", i % 10_000),
        "event_type": "page_view",
        "timestamp": "2025-09-15T14:30:00Z",
        "metadata": {"path": "/pricing/enterprise", "utm_source": "google", "utm_campaign": "q3-launch",
                      "referrer": "https://www.example.com/blog/post"}
    })
}

async fn single_phase(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    conc: usize,
) -> (f64, Vec<Duration>, usize) {
    let started = Instant::now();
    let results: Vec<(bool, Duration)> = stream::iter(0..n)
        .map(|i| {
            let body = serde_json::to_vec(&event_body(i)).unwrap();
            async move {
                let t = Instant::now();
                let ok = client
                    .post(url)
                    .bearer_auth(ADMIN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status() == 202)
                    .unwrap_or(false);
                (ok, t.elapsed())
            }
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|(ok, _)| !ok).count();
    let mut lat: Vec<Duration> = results.into_iter().map(|(_, d)| d).collect();
    lat.sort();
    (n as f64 / secs, lat, failed)
}

/// Open loop at `rate` requests/s for `n` requests: latency at a given load.
async fn paced_phase(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    rate: f64,
) -> (Vec<Duration>, usize) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        tick.tick().await;
        let client = client.clone();
        let url = url.to_string();
        let body = serde_json::to_vec(&event_body(i)).unwrap();
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = client
                .post(&url)
                .bearer_auth(ADMIN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status() == 202)
                .unwrap_or(false);
            (ok, t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut failed = 0;
    for h in handles {
        if let Ok((ok, d)) = h.await {
            failed += usize::from(!ok);
            lat.push(d);
        }
    }
    lat.sort();
    (lat, failed)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let single_n = env_usize("BENCH_SINGLE", 20_000);
    let conc = env_usize("BENCH_CONCURRENCY", 64);
    let batch_events = env_usize("BENCH_BATCH_EVENTS", 100_000);
    let batch_size = env_usize("BENCH_BATCH_SIZE", 1000);

    // BENCH_BROKERS: use a broker already running (e.g. to watch its logs) instead of a new one.
    let external = std::env::var("BENCH_BROKERS").ok();
    let broker = match external {
        Some(_) => None,
        None => Some(tokio::task::spawn_blocking(Broker::start).await.unwrap()),
    };
    let brokers = external.unwrap_or_else(|| broker.as_ref().map(|b| b.addr()).unwrap_or_default());
    let prefix = unique("bench");
    let env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", brokers),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_PARTITIONS", "3".into()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_RATE_LIMIT_PER_SEC", "0".into()),
        ("LEADSTREAM_OU_EVENT_RATE", "0".into()),
        ("LEADSTREAM_KEY_EVENT_RATE", "0".into()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = GatewayConfig::from_source(&env).expect("config");
    let kafka = cfg.common.kafka.clone();
    let topic = cfg.common.topics.events.clone();
    let linger = kafka.linger_ms;
    let shutdown = CancellationToken::new();
    let running = leadstream_gateway::spawn(cfg, shutdown.clone())
        .await
        .expect("gateway");
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    let record_bytes = encode_event(&sample_event(0)).unwrap().len();
    println!(
        "setup: tansu broker (memory storage), 3 partitions, redis-server, linger.ms={linger}, \
         lz4, acks=all, idempotence; record ≈ {record_bytes} bytes Avro; {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // Warm-up (connections, metadata, caches).
    let _ = single_phase(&client, &format!("{base}/ingest"), 500, conc).await;

    // 1. Single events, closed loop.
    let (rps, lat, failed) = single_phase(&client, &format!("{base}/ingest"), single_n, conc).await;
    println!(
        "single  /ingest: {single_n} requests, concurrency {conc}: {rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, failed {failed}",
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    perf(
        json!({"name": "gateway_single", "requests": single_n, "concurrency": conc, "rps": rps,
                "p50_ms": pct(&lat, 0.50), "p99_ms": pct(&lat, 0.99), "failed": failed,
                "linger_ms": linger, "record_bytes": record_bytes}),
    );

    // 2. Latency at half of that peak, open loop.
    let half = rps / 2.0;
    let n_half = (half * 5.0).clamp(1000.0, 50_000.0) as usize;
    let (lat, failed) = paced_phase(&client, &format!("{base}/ingest"), n_half, half).await;
    println!(
        "single  /ingest at half peak ({half:.0} req/s, {n_half} requests): p50 {:.2} ms, p99 {:.2} ms, failed {failed}",
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    perf(
        json!({"name": "gateway_single_half", "requests": n_half, "rate": half,
                "p50_ms": pct(&lat, 0.50), "p99_ms": pct(&lat, 0.99), "failed": failed}),
    );

    // 3. Batched: bulk import, NDJSON.
    let requests = batch_events.div_ceil(batch_size);
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|r| {
            let mut s = String::with_capacity(batch_size * 300);
            for i in 0..batch_size {
                s.push_str(&event_body(r * batch_size + i).to_string());
                s.push('\n');
            }
            s.into_bytes()
        })
        .collect();
    let started = Instant::now();
    let results: Vec<(u64, Duration)> = stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            let url = format!("{base}/import");
            async move {
                let t = Instant::now();
                let accepted = match client
                    .post(url)
                    .bearer_auth(ADMIN)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|b| b["accepted"].as_u64())
                        .unwrap_or(0),
                    Err(_) => 0,
                };
                (accepted, t.elapsed())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let accepted: u64 = results.iter().map(|(a, _)| a).sum();
    let mut lat: Vec<Duration> = results.into_iter().map(|(_, d)| d).collect();
    lat.sort();
    println!(
        "batched /import: {accepted} events in {requests} requests of {batch_size}, 4 in flight: {:.0} events/s, request p50 {:.1} ms, p99 {:.1} ms",
        accepted as f64 / secs,
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    perf(
        json!({"name": "gateway_batch", "events": accepted, "batch_size": batch_size,
                "in_flight": 4, "events_per_s": accepted as f64 / secs,
                "p50_ms": pct(&lat, 0.50), "p99_ms": pct(&lat, 0.99)}),
    );

    // 4. Ceiling: bare rdkafka producer, same settings, same records, same broker.
    let producer: FutureProducer = kafka
        .producer_config(Duration::from_secs(30))
        .create()
        .unwrap();
    let payloads: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
        (0..batch_events)
            .map(|i| {
                let e = sample_event(i);
                (e.kafka_key(), encode_event(&e).unwrap())
            })
            .collect(),
    );
    // Warm-up: metadata and the idempotent producer id, so that only sending is timed (as the
    // gateway's producer is warm in phases 1-3).
    let (k, v) = &payloads[0];
    producer
        .send(
            FutureRecord::to(&topic).key(k).payload(v),
            Duration::from_secs(5),
        )
        .await
        .expect("warm-up record");
    let started = Instant::now();
    let ok = stream::iter(0..batch_events)
        .map(|i| {
            let producer = producer.clone();
            let payloads = payloads.clone();
            let topic = topic.clone();
            async move {
                let (k, v) = &payloads[i];
                producer
                    .send(
                        FutureRecord::to(&topic).key(k).payload(v),
                        Duration::from_secs(5),
                    )
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(10_000)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ceiling bare rdkafka producer: {ok} records of {record_bytes} bytes: {:.0} records/s",
        ok as f64 / secs
    );
    perf(
        json!({"name": "kafka_ceiling", "records": ok, "record_bytes": record_bytes,
                "in_flight": 10_000, "records_per_s": ok as f64 / secs, "linger_ms": linger}),
    );

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.handle).await;
    drop(broker);
}
