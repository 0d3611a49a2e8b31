//! Redis memory per lead of state, written the way the processor writes it: the real engine
//! (same ruleset, milestone triggers and sequences as the `engine` bench, the processor's default
//! caps and dedupe TTL) applies `BENCH_MEM_EVENTS_PER_LEAD` events to each of `BENCH_MEM_LEADS`
//! leads, and Redis `used_memory` is read before, after, and after removing each class of key
//! that is not per-lead state:
//!
//! - the outbox (the service clears it once the fired topic acknowledged the records);
//! - dedupe marks, one 12-byte digest per event in per-partition time-bucket sets, kept for the
//!   dedupe TTL (7 days by default);
//! - milestone / sequence history, capped per OU and kind (a fixed cost, not per lead).
//!
//! What remains is the lead states (one hash per events partition): that, divided by the leads
//! written,
//! is the per-lead figure; per 1,000,000 leads it is scaled by `1e6 / BENCH_MEM_LEADS` (printed).
//! Bucket arrays of Redis' main dictionary are not shrunk at once on delete, so up to ~16 bytes
//! per deleted key may stay attributed to what remains.
//!
//! Run it against a Redis of its own (`scripts/perf-report` starts one): `used_memory` deltas on
//! a shared server include other clients' writes. Keys are written under a unique prefix and
//! removed at the end.
//!
//! `LEADSTREAM_TEST_REDIS_URL=redis://127.0.0.1:PORT cargo bench -p leadstream-processor --bench memory`
//! Knobs: BENCH_MEM_LEADS (default 100000), BENCH_MEM_EVENTS_PER_LEAD (2), BENCH_BATCH (1000),
//! BENCH_SEQUENCES (10). Prints a human summary and a `PERF {json}` line.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use common::{env, TYPES};
use leadstream_processor::engine::{Engine, EngineSettings, Input};
use leadstream_processor::ProcessorConfig;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::keys::{Keys, PartitionKeys};
use leadstream_shared::store::{RedisKv, Store};
use redis::aio::ConnectionManager;
use serde_json::json;

/// `used_memory` from `INFO memory`.
async fn used_memory(conn: &mut ConnectionManager) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

/// Delete every key matching `pattern`; returns how many. Bounded: at most `max_keys / 1000 +
/// 1000` SCAN calls.
async fn delete_matching(conn: &mut ConnectionManager, pattern: &str, max_keys: usize) -> usize {
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    for _ in 0..max_keys / 1000 + 1000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(conn)
            .await
            .expect("SCAN");
        for chunk in keys.chunks(1000) {
            let n: usize = redis::cmd("DEL")
                .arg(chunk)
                .query_async(conn)
                .await
                .expect("DEL");
            deleted += n;
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    deleted
}

/// Mean stored size of up to `n` lead states (HSTRLEN), to relate memory to the encoding.
async fn mean_state_len(
    conn: &mut ConnectionManager,
    pk: &PartitionKeys,
    ou: &str,
    n: usize,
) -> f64 {
    let mut pipe = redis::pipe();
    for l in 0..n {
        pipe.cmd("HSTRLEN")
            .arg(pk.leads())
            .arg(PartitionKeys::lead_field(
                leadstream_domain::ids::OuId(ou),
                leadstream_domain::ids::LeadId(&format!("ld_{l}")),
            ));
    }
    let lens: Vec<i64> = pipe.query_async(conn).await.expect("STRLEN");
    lens.iter().sum::<i64>() as f64 / lens.len().max(1) as f64
}

#[tokio::main]
async fn main() {
    let leads = env("BENCH_MEM_LEADS", 100_000).max(1);
    let per_lead = env("BENCH_MEM_EVENTS_PER_LEAD", 2).max(1);
    let batch = env("BENCH_BATCH", 1000).max(1);
    let sequences = env("BENCH_SEQUENCES", 10);
    let url = std::env::var("LEADSTREAM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // Deleting a million leads' keys takes Redis seconds per big key: no response timeout.
    let mut conn = ConnectionManager::new_with_config(
        redis::Client::open(url.as_str()).expect("redis url"),
        redis::aio::ConnectionManagerConfig::new().set_response_timeout(None),
    )
    .await
    .expect("redis-server");
    let keys_before: i64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("DBSIZE");
    let kv: Store = Arc::new(RedisKv::connect(&url).await.expect("redis-server"));
    let prefix = format!("benchmem_{}", leadstream_shared::ids::new_id("m"));
    let keys = Keys::new(prefix.clone());
    let catalog = Catalog::new(kv.clone(), keys.clone());
    let ou = "unit_default";

    common::install_config(&catalog, ou, sequences).await;

    // The processor's own defaults for the caps and the dedupe TTL (the broker is required by
    // the config but never contacted here).
    let vars: BTreeMap<String, String> = [(
        "LEADSTREAM_KAFKA_BROKERS".to_string(),
        "127.0.0.1:9".to_string(),
    )]
    .into();
    let cfg = ProcessorConfig::from_source(&vars).expect("processor defaults");
    let engine = Engine::new(
        kv.clone(),
        keys.clone(),
        EngineSettings {
            topic: format!("{prefix}.events.v1"),
            dedupe_ttl: cfg.dedupe_ttl,
            sequence_cap: cfg.sequence_cap,
            history_cap: cfg.history_cap,
            cached_leads: cfg.cached_leads,
        },
    );
    let base = used_memory(&mut conn).await;

    // Round r gives every lead its r-th event, so each batch touches `batch` distinct leads.
    let events = leads * per_lead;
    let mut rnd = common::rng(42);
    let started = Instant::now();
    let mut fired = 0;
    let mut next = 0;
    while next < events {
        let end = (next + batch).min(events);
        let inputs: Vec<Input> = (next..end)
            .map(|i| Input {
                partition: 0,
                offset: i as i64,
                event: common::event(
                    i,
                    ou,
                    format!("ld_{}", i % leads),
                    TYPES[rnd(TYPES.len() as u64) as usize],
                ),
            })
            .collect();
        let out = engine.apply(&inputs).await.expect("apply");
        engine.published(&out.fired).await.expect("published");
        fired += out.fired.len();
        next = end;
    }
    let secs = started.elapsed().as_secs_f64();

    let all = used_memory(&mut conn).await;
    let pk = engine.partition_keys(0);
    let state_json = mean_state_len(&mut conn, &pk, ou, leads.min(1000)).await;
    let outbox_keys = delete_matching(&mut conn, &pk.outbox(), 1000).await;
    let after_outbox = used_memory(&mut conn).await;
    delete_matching(&mut conn, &pk.dedupe_pattern(), 1000).await;
    // Every event is a distinct mark.
    let marks = events;
    let after_marks = used_memory(&mut conn).await;
    let history_keys = delete_matching(&mut conn, &keys.ou_key(ou, "history:*"), 1000).await;
    let state = used_memory(&mut conn).await;
    let leftover = delete_matching(&mut conn, &format!("{prefix}:*"), leads * 2).await;

    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    let per_lead_state = (state - base) as f64 / leads as f64;
    let per_mark = (after_outbox - after_marks) as f64 / marks.max(1) as f64;
    let scale = 1e6 / leads as f64;
    println!(
        "memory: {leads} leads x {per_lead} events ({events} events, {fired} firings, {:.0} events/s), \
         6 rules, 3 milestone triggers, {sequences} sequences, dedupe TTL {:?}, history cap {}",
        events as f64 / secs,
        cfg.dedupe_ttl,
        cfg.history_cap
    );
    println!(
        "  used_memory: +{:.1} MiB in all; outbox ({outbox_keys} keys) {:.1} MiB, dedupe marks ({marks}) {:.1} MiB ({per_mark:.0} B each), \
         history ({history_keys} keys, capped) {:.1} MiB, lead states {:.1} MiB",
        mib(all - base),
        mib(all - after_outbox),
        mib(after_outbox - after_marks),
        mib(after_marks - state),
        mib(state - base)
    );
    println!(
        "  per lead: {per_lead_state:.0} B of state (mean encoded state {state_json:.0} B); per 1,000,000 leads: \
         {:.0} MiB of state, {:.0} MiB with their {per_lead} dedupe marks each (x{scale:.2} of what was measured)",
        per_lead_state * 1e6 / (1024.0 * 1024.0),
        (per_lead_state + per_mark * per_lead as f64) * 1e6 / (1024.0 * 1024.0),
    );
    println!(
        "PERF {}",
        json!({"name": "memory", "leads": leads, "events_per_lead": per_lead, "events": events,
               "sequences": sequences, "fired": fired, "events_per_s": events as f64 / secs,
               "redis_keys_before": keys_before, "used_memory_base": base,
               "total_bytes": all - base, "outbox_bytes": all - after_outbox,
               "dedupe_marks": marks, "dedupe_bytes": after_outbox - after_marks,
               "history_bytes": after_marks - state, "state_bytes": state - base,
               "state_per_lead_bytes": per_lead_state, "mark_bytes": per_mark,
               "state_json_bytes": state_json, "scale_to_1m": scale,
               "state_per_1m_mib": per_lead_state * 1e6 / (1024.0 * 1024.0),
               "with_marks_per_1m_mib": (per_lead_state + per_mark * per_lead as f64) * 1e6 / (1024.0 * 1024.0),
               "dedupe_ttl_s": cfg.dedupe_ttl.as_secs(), "history_cap": cfg.history_cap,
               "leftover_keys_deleted": leftover})
    );
}
