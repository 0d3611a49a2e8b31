//! Rescore replay rate beside the live processor's rate, in the same run, and the processor's
//! memory while it replays histories of different lengths (issue 15).
//!
//! For each history length in `BENCH_EVENTS` (default `50000,200000`): a fresh topic set gets
//! that many events (`BENCH_LEADS` leads, keyed as the gateway keys them) on
//! `BENCH_PARTITIONS` partitions; one processor (in this process) drains them — the **live
//! rate**, from the first offset applied to the last — then the ruleset is changed and a
//! rescore job is created; the same processor replays the whole history and switches every
//! lead — the **replay rate**, events of the history divided by the time from the job's
//! creation to its completion (job polling, consumer start-up and the switch included).
//! The process's resident memory is sampled every 50 ms: before the rescore and its peak
//! during it. The shadow state is one lead record per lead, so with the same number of leads
//! the peak should not grow with the history.
//!
//! `LEADSTREAM_TEST_REDIS_URL=redis://127.0.0.1:PORT cargo bench -p leadstream-processor --bench rescore`
//! Knobs: BENCH_EVENTS (50000,200000), BENCH_LEADS (10000), BENCH_PARTITIONS (4),
//! BENCH_SEQUENCES (10). Needs `tansu` (testkit starts one). Prints `PERF {json}` lines.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::env;
use futures::future::join_all;
use leadstream_domain::model::ruleset::Ruleset;
use leadstream_processor::ProcessorConfig;
use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::offsets::AppliedOffsets;
use leadstream_shared::store::rescore::{Job, JobState, RescoreJobs};
use leadstream_shared::store::{RedisKv, Store};
use leadstream_testkit::{unique, Broker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const OU: &str = "unit_default";

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The highest resident memory seen, sampled every 50 ms from [`PeakRss::start`] to
/// [`PeakRss::stop`] (KiB).
struct PeakRss {
    peak: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        PeakRss { peak, sampler }
    }

    fn stop(self) -> u64 {
        self.sampler.abort();
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::main]
async fn main() {
    let lengths: Vec<usize> = std::env::var("BENCH_EVENTS")
        .unwrap_or_else(|_| "50000,200000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let leads = env("BENCH_LEADS", 10_000).max(1);
    let partitions = env("BENCH_PARTITIONS", 4) as i32;
    let sequences = env("BENCH_SEQUENCES", 10);
    let redis = std::env::var("LEADSTREAM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let kv: Store = Arc::new(RedisKv::connect(&redis).await.expect("redis-server"));
    for events in lengths {
        run(&kv, &redis, events, leads, partitions, sequences).await;
    }
}

async fn run(
    kv: &Store,
    redis: &str,
    events: usize,
    leads: usize,
    partitions: i32,
    sequences: usize,
) {
    // A fresh broker per length: tansu (memory storage) slows down with the records it holds.
    let broker = Broker::start();
    let topic_prefix = unique("rescore");
    let settings = KafkaSettings::new(broker.addr());
    let (topics, _, _) =
        common::backlog(&settings, &topic_prefix, OU, partitions, events, leads).await;

    let prefix = unique("rescorest");
    let keys = Keys::new(prefix.clone());
    let catalog = Catalog::new(kv.clone(), keys.clone());
    common::install_config(&catalog, OU, sequences).await;
    let mut vars =
        leadstream_testkit::vars::service(&broker.addr(), redis, &topic_prefix, partitions);
    vars.insert("LEADSTREAM_REDIS_PREFIX".into(), prefix.clone());
    vars.insert("LEADSTREAM_PROCESSOR_GROUP".into(), unique("rescore-group"));
    let cfg = ProcessorConfig::from_source(&vars).expect("config");
    let probe = AppliedOffsets::new(kv.clone(), keys.clone(), topics.events.clone());
    let token = CancellationToken::new();
    let processor = {
        let (cfg, token) = (cfg.clone(), token.clone());
        tokio::spawn(async move { leadstream_processor::run(cfg, token).await })
    };

    // Live: from the first offset applied to the last.
    let parts: Vec<i32> = (0..partitions).collect();
    let mut first: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let applied = probe.get(&parts).await.expect("applied offsets");
        let done: i64 = applied.values().map(|a| a.map_or(0, |o| o + 1)).sum();
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
        }
        if done as usize >= events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processor stalled at {done} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (first, base) = first.expect("applied");
    let live_rate = (events as i64 - base) as f64 / first.elapsed().as_secs_f64();

    // The ceiling: a bare consumer reading the same partitions with the replay's consumer
    // settings, doing nothing with the records; its memory growth is the client's and the
    // broker's share of the replay's.
    let (bare_rate, bare_rss) = bare_read(&settings, &topics.events, partitions, events).await;

    // New rules, then a rescore of the whole history.
    let mut rs: Ruleset = catalog
        .documents::<Ruleset>(collections::RULESETS)
        .get(OU, "rs_1")
        .await
        .expect("read")
        .expect("ruleset");
    for r in &mut rs.rules {
        r.points *= 2;
    }
    catalog
        .put_doc(OU, collections::RULESETS, &rs.id, &rs)
        .await
        .expect("put");
    let jobs = RescoreJobs::new(kv.clone(), keys.clone());
    let rss_before = rss_kib();
    let peak = PeakRss::start();
    let job = Job::rescore("org_default", OU, None, false, now_ms());
    let started = Instant::now();
    jobs.create(&job)
        .await
        .expect("store")
        .expect("no other rescore");
    let view = loop {
        let v = jobs.get(&job.id).await.expect("store").expect("job");
        if v.status.state != JobState::Running {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "rescore stalled: {:?}",
            v.progress
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let replay_secs = started.elapsed().as_secs_f64();
    let rss_peak = peak.stop();
    assert_eq!(view.status.state, JobState::Completed, "{view:?}");
    let replay_rate = events as f64 / replay_secs;
    token.cancel();
    let _ = processor.await;
    println!(
        "rescore: {events} events, {leads} leads, {partitions} partitions, {sequences} sequences: \
         live {live_rate:.0} events/s, replay {replay_rate:.0} events/s ({:.2}× live; {replay_secs:.1} s \
         from job creation to completion, {} leads switched, {} scores changed); RSS {:.0} MiB before, \
         peak {:.0} MiB during (+{:.0} MiB); bare consumer with the replay's settings {bare_rate:.0} \
         records/s, its RSS +{:.0} MiB",
        replay_rate / live_rate,
        view.progress.leads,
        view.progress.scores_changed,
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        (rss_peak.saturating_sub(rss_before)) as f64 / 1024.0,
        bare_rss as f64 / 1024.0,
    );
    println!(
        "PERF {}",
        json!({"name": "rescore", "events": events, "leads": leads, "partitions": partitions,
               "sequences": sequences, "live_events_per_s": live_rate,
               "replay_events_per_s": replay_rate, "ratio": replay_rate / live_rate,
               "replay_s": replay_secs, "leads_switched": view.progress.leads,
               "scores_changed": view.progress.scores_changed,
               "rss_before_kib": rss_before, "rss_peak_kib": rss_peak,
               "bare_records_per_s": bare_rate, "bare_rss_growth_kib": bare_rss})
    );
}

/// Read every partition from the start with the replay's consumer settings (one consumer per
/// partition, as the replay runs them), counting only: records/s and the RSS growth (KiB).
async fn bare_read(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    events: usize,
) -> (f64, u64) {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::{Offset, TopicPartitionList};
    let before = rss_kib();
    let peak = PeakRss::start();
    let started = Instant::now();
    let reads = (0..partitions).map(|p| {
        let consumer: StreamConsumer = settings
            .consumer_config(&unique("bare"))
            .set(
                "queued.max.messages.kbytes",
                leadstream_processor::rescore::PREFETCH_KIB.to_string(),
            )
            .set(
                "fetch.message.max.bytes",
                (leadstream_processor::rescore::PREFETCH_KIB * 256).to_string(),
            )
            .set(
                "fetch.max.bytes",
                (leadstream_processor::rescore::PREFETCH_KIB * 256).to_string(),
            )
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
        consumer.assign(&tpl).expect("assign");
        async move {
            // Until the partition stays quiet (tansu's watermarks are not reliable).
            let mut n = 0usize;
            while let Ok(m) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
                if let Err(e) = m {
                    eprintln!("bare consumer: {e}");
                    continue;
                }
                n += 1;
            }
            n
        }
    });
    let n: usize = join_all(reads).await.into_iter().sum();
    // Less the quiet period that ended the reads.
    let secs = (started.elapsed().as_secs_f64() - 3.0).max(0.001);
    let peak = peak.stop();
    assert!(n >= events, "read {n} of {events}");
    (n as f64 / secs, peak.saturating_sub(before))
}
