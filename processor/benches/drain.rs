//! The processor end to end through Kafka: `BENCH_EVENTS` events already on the events topic
//! (`BENCH_PARTITIONS` partitions, keyed by lead as the gateway keys them), then processors
//! started; the time until every event is applied, beside a bare rdkafka consumer reading the
//! same records in the same run (the ceiling: what a consumer that does nothing can drain).
//!
//! For each count in `BENCH_PROCESSORS` (default `1,2,4`) that many processors of one consumer
//! group run against a fresh Redis prefix (fresh state); they run in this process on one tokio
//! runtime, as separate consumers with their own Redis connections, so on two cores they share
//! the CPU with Redis and the broker — the report says where the total rate flattens.
//!
//! Rates are measured from the first record received (bare consumer) or, for the processors,
//! from the moment their consumer group is stable with every member (the broker's group
//! description; the first offset applied when the broker cannot describe groups) to the last,
//! counting only what was applied in between, so group joins and the rebalances while members
//! arrive are not counted against either; the time to that start is printed too.
//!
//! `LEADSTREAM_TEST_REDIS_URL=redis://127.0.0.1:PORT cargo bench -p leadstream-processor --bench drain`
//! Knobs: BENCH_EVENTS (100000), BENCH_LEADS (10000), BENCH_PARTITIONS (4), BENCH_SEQUENCES (10),
//! BENCH_PROCESSORS (1,2,4). Needs `tansu` (testkit starts one). Prints `PERF {json}` lines.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::env;
use leadstream_processor::ProcessorConfig;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::offsets::AppliedOffsets;
use leadstream_shared::store::{RedisKv, Store};
use leadstream_testkit::{unique, Broker};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const OU: &str = "unit_default";

#[tokio::main]
async fn main() {
    let events = env("BENCH_EVENTS", 100_000);
    let leads = env("BENCH_LEADS", 10_000).max(1);
    let partitions = env("BENCH_PARTITIONS", 4) as i32;
    let sequences = env("BENCH_SEQUENCES", 10);
    let counts: Vec<usize> = std::env::var("BENCH_PROCESSORS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let redis = std::env::var("LEADSTREAM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let kv: Store = Arc::new(RedisKv::connect(&redis).await.expect("redis-server"));

    let broker = Broker::start();
    let topic_prefix = unique("drain");
    let settings = KafkaSettings::new(broker.addr());
    let (topics, record_bytes, produce_secs) =
        common::backlog(&settings, &topic_prefix, OU, partitions, events, leads).await;
    println!(
        "drain: {events} events ({record_bytes} B Avro each) on {partitions} partitions, {leads} leads, \
         6 rules, 3 milestone triggers, {sequences} sequences; produced in {produce_secs:.1} s"
    );

    // The ceiling: a consumer that only counts.
    let consumer: StreamConsumer = settings
        .consumer_config(&unique("bare"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topics.events]).expect("subscribe");
    let started = Instant::now();
    let mut first = None;
    let mut n = 0;
    while n < events {
        match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
            Ok(Ok(_)) => {
                first.get_or_insert_with(Instant::now);
                n += 1;
            }
            Ok(Err(e)) => eprintln!("bare consumer: {e}"),
            Err(_) => panic!("bare consumer stalled at {n} of {events}"),
        }
    }
    let first = first.expect("records arrived");
    let bare_secs = first.elapsed().as_secs_f64();
    let bare_rate = events as f64 / bare_secs;
    println!(
        "  ceiling, bare rdkafka consumer: {bare_rate:.0} records/s (first record after {:.1} s)",
        (first - started).as_secs_f64()
    );
    drop(consumer);
    println!(
        "PERF {}",
        json!({"name": "drain_ceiling", "events": events, "partitions": partitions,
               "records_per_s": bare_rate, "record_bytes": record_bytes})
    );

    for &k in &counts {
        let prefix = unique("drainst");
        let keys = Keys::new(prefix.clone());
        common::install_config(&Catalog::new(kv.clone(), keys.clone()), OU, sequences).await;
        // One topic set for every run; keys and group per run.
        let mut vars =
            leadstream_testkit::vars::service(&broker.addr(), &redis, &topic_prefix, partitions);
        vars.insert("LEADSTREAM_REDIS_PREFIX".into(), prefix.clone());
        vars.insert("LEADSTREAM_PROCESSOR_GROUP".into(), unique("drain-group"));
        let cfg = ProcessorConfig::from_source(&vars).expect("config");
        let group = cfg.group_id.clone();
        // Reads the applied offsets where the processor resumes from them.
        let probe = AppliedOffsets::new(kv.clone(), keys, topics.events.clone());
        let token = CancellationToken::new();
        let started = Instant::now();
        let handles: Vec<_> = (0..k)
            .map(|_| {
                let (cfg, token) = (cfg.clone(), token.clone());
                tokio::spawn(async move { leadstream_processor::run(cfg, token).await })
            })
            .collect();
        let parts: Vec<i32> = (0..partitions).collect();
        let describer: StreamConsumer = settings
            .consumer_config(&unique("describer"))
            .create()
            .expect("consumer");
        // (when, applied then): the start of the measured window.
        let mut first: Option<(Instant, i64)> = None;
        let mut describable = true;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let applied = probe.get(&parts).await.expect("applied offsets");
            let done: i64 = applied.values().map(|a| a.map_or(0, |o| o + 1)).sum();
            if first.is_none() {
                let stable = if describable {
                    match describer.fetch_group_list(Some(&group), Duration::from_secs(2)) {
                        Ok(list) => list.groups().iter().any(|g| {
                            g.state().eq_ignore_ascii_case("stable") && g.members().len() == k
                        }),
                        Err(e) => {
                            eprintln!("  (the broker cannot describe groups: {e}; measuring from the first offset applied)");
                            describable = false;
                            false
                        }
                    }
                } else {
                    done > 0
                };
                if stable {
                    first = Some((Instant::now(), done));
                }
            }
            if done as usize >= events {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{k} processors stalled at {done} of {events}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (first, base) = first.unwrap_or((started, 0));
        let secs = first.elapsed().as_secs_f64();
        let measured = events as i64 - base;
        let rate = measured as f64 / secs;
        token.cancel();
        for h in handles {
            let _ = h.await;
        }
        println!(
            "  {k} processor(s): {rate:.0} events/s = {:.0}% of the bare consumer ({measured} events \
             measured from {:.1} s after the start, when the group was stable)",
            100.0 * rate / bare_rate,
            (first - started).as_secs_f64()
        );
        println!(
            "PERF {}",
            json!({"name": "drain", "processors": k, "events": events, "partitions": partitions,
                   "leads": leads, "sequences": sequences, "events_per_s": rate, "measured_events": measured,
                   "ceiling_records_per_s": bare_rate, "ratio": rate / bare_rate})
        );
    }
}
