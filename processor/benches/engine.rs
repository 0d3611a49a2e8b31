//! Load generator for the processor's hot path: dedupe + scoring + milestone check + sequence
//! matching + lead state, through the real Redis (two round trips per batch), without Kafka.
//!
//! `cargo bench -p leadstream-processor --bench engine`
//! Knobs: BENCH_EVENTS (default 200000), BENCH_LEADS (10000), BENCH_BATCH (1000),
//! BENCH_SEQUENCES (10), LEADSTREAM_TEST_REDIS_URL. Prints a `PERF {json}` line for
//! `scripts/perf-report` beside the human one.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env, TYPES};
use leadstream_processor::engine::{Engine, EngineSettings, Input};
use leadstream_shared::catalog::Catalog;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{RedisKv, Store};
use serde_json::json;

#[tokio::main]
async fn main() {
    let events = env("BENCH_EVENTS", 200_000);
    let leads = env("BENCH_LEADS", 10_000);
    let batch = env("BENCH_BATCH", 1000);
    let sequences = env("BENCH_SEQUENCES", 10);
    let url = std::env::var("LEADSTREAM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let kv: Store = Arc::new(RedisKv::connect(&url).await.expect("redis-server"));
    let prefix = format!("bench_{}", leadstream_shared::ids::new_id("e"));
    let keys = Keys::new(prefix.clone());
    let catalog = Catalog::new(kv.clone(), keys.clone());
    let ou = "unit_default";
    common::install_config(&catalog, ou, sequences).await;
    let engine = Engine::new(
        kv.clone(),
        keys,
        EngineSettings {
            topic: format!("{prefix}.events.v1"),
            dedupe_ttl: Duration::from_secs(600),
            sequence_cap: 256,
            history_cap: 100_000,
            cached_leads: env(
                "BENCH_CACHED_LEADS",
                leadstream_processor::engine::DEFAULT_CACHED_LEADS,
            ),
        },
    );
    // Events spread over the partitions a processor owns, as the gateway's partitioner puts
    // them (one atomic write per partition and batch).
    let partitions = env("BENCH_PARTITIONS", 4) as i32;
    let mut rnd = common::rng(42);
    let inputs: Vec<Input> = (0..events)
        .map(|i| {
            let lead = format!("ld_{}", rnd(leads as u64));
            Input {
                partition: leadstream_shared::kafka::murmur2_partition(
                    leadstream_domain::kafka_key(
                        leadstream_domain::ids::OuId(ou),
                        leadstream_domain::ids::LeadId(&lead),
                    )
                    .as_bytes(),
                    partitions,
                ),
                offset: i as i64,
                event: common::event(i, ou, lead, TYPES[rnd(TYPES.len() as u64) as usize]),
            }
        })
        .collect();
    let started = Instant::now();
    let mut fired = 0;
    let mut latencies = Vec::new();
    for chunk in inputs.chunks(batch) {
        let t = Instant::now();
        let mut chunk = chunk.to_vec();
        chunk.sort_by_key(|i| (i.partition, i.offset));
        let out = engine.apply(&chunk).await.expect("apply");
        // What the processor does once the fired topic acknowledged the firings.
        engine.published(&out.fired).await.expect("published");
        latencies.push(t.elapsed());
        fired += out.fired.len();
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "engine: {events} events, {leads} leads, batch {batch}, 6 rules, 3 milestone triggers, {sequences} sequences, real Redis"
    );
    println!(
        "  {:.0} events/s; {fired} firings; batch latency p50 {:?} p99 {:?}; 2 Redis round trips per batch",
        events as f64 / secs,
        p(0.5),
        p(0.99)
    );
    // Machine-readable line for scripts/perf-report.
    println!(
        "PERF {}",
        json!({"name": "engine", "sequences": sequences, "events": events, "leads": leads,
               "batch": batch, "events_per_s": events as f64 / secs, "fired": fired,
               "batch_p50_ms": p(0.5).as_secs_f64() * 1e3, "batch_p99_ms": p(0.99).as_secs_f64() * 1e3})
    );
}
