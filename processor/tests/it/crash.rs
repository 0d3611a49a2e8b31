//! Crash and rebalance: real `leadstream processor` processes are killed (-9) or stopped
//! (SIGTERM) while they work through thousands of events. Afterwards every lead's score must equal
//! the score computed from the input, and each threshold crossing must have exactly one fired id
//! (a fired id may appear twice on the topic — the notifier delivers on the id — but no crossing
//! may be missing or get two ids).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::future::join_all;
use leadstream_shared::avro::decode_fired;
use leadstream_shared::ids::derived_id;
use leadstream_testkit::{consume, wait_until};
use rdkafka::Message;
use serde_json::json;

use crate::world::{event, World, OU};

const LEADS: usize = 40;
const EVENTS: usize = 3000;
const DUPLICATES: usize = 200;
const THRESHOLD: i64 = 60;
const TRIGGER: &str = "trg_hot";

/// Points per event type: the oracle's copy of the ruleset below.
fn points(t: &str) -> i64 {
    match t {
        "page_view" => 7,
        "pricing" => 13,
        "unsubscribe" => -25,
        _ => 0,
    }
}

const SEQUENCE: &str = "seq_buying";

struct Oracle {
    /// Sequence firings the matcher gives for each lead's deduplicated stream.
    sequence_ids: BTreeSet<String>,
    /// Producer ids per lead, stream order, duplicates removed.
    events: BTreeMap<String, Vec<String>>,
    score: BTreeMap<String, i64>,
    crossings: BTreeMap<String, u64>,
}

async fn setup(w: &World) -> Oracle {
    w.put_ruleset(json!({
        "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [
            {"id": "r1", "event_type": "page_view", "points": 7},
            {"id": "r2", "event_type": "pricing", "points": 13},
            {"id": "r3", "event_type": "unsubscribe", "points": -25}
        ]
    }))
    .await;
    w.put_trigger(json!({
        "id": TRIGGER, "name": "Hot", "score_threshold": THRESHOLD, "active": true,
        "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
    }))
    .await;
    let seq: leadstream_shared::model::sequence::SequenceTrigger = serde_json::from_value(json!({
        "id": SEQUENCE, "name": "Buying", "event_types": ["page_view", "pricing", "page_view"],
        "window_seconds": 1, "ordered": true, "active": true,
        "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
    }))
    .expect("sequence");
    w.catalog
        .put_doc(
            OU,
            leadstream_shared::catalog::collections::SEQUENCES,
            SEQUENCE,
            &seq,
        )
        .await
        .expect("put sequence");
    // A deterministic pseudo-random stream (LCG), with duplicates of earlier events mixed in.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let types = ["page_view", "page_view", "pricing", "unsubscribe"];
    let mut stream = Vec::with_capacity(EVENTS + DUPLICATES);
    for i in 0..EVENTS {
        let lead = format!("ld_{}", next(LEADS as u64));
        let t = types[next(types.len() as u64) as usize];
        stream.push(event(
            &lead,
            t,
            &format!("e{i}"),
            1_700_000_000_000 + i as i64,
        ));
        if i % (EVENTS / DUPLICATES) == 7 {
            // A producer retry of an earlier event of the same lead: same producer id.
            let j = (next(i as u64 + 1)) as usize;
            let mut dup = stream[j].clone();
            dup.event_id = format!("evt_dup{i}");
            if dup.lead_id == stream[i].lead_id {
                stream.push(dup);
            }
        }
    }
    // Oracle: per lead in stream order (one lead → one partition → offset order), duplicates
    // ignored; the trigger is armed while the score is below the threshold.
    let mut seen = BTreeSet::new();
    let mut score: BTreeMap<String, i64> = BTreeMap::new();
    let mut armed: HashMap<String, bool> = HashMap::new();
    let mut crossings: BTreeMap<String, u64> = BTreeMap::new();
    let mut events: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let active = leadstream_processor::sequence::ActiveSequences::new(std::slice::from_ref(&seq));
    let mut buffers: HashMap<String, leadstream_processor::sequence::SequenceBuffer> =
        HashMap::new();
    let mut sequence_ids = BTreeSet::new();
    for e in &stream {
        if !seen.insert(e.dedupe_id()) {
            continue;
        }
        let lead = e.lead_id.clone().unwrap_or_default();
        events.entry(lead.clone()).or_default().push(e.dedupe_id());
        let matches = buffers.entry(lead.clone()).or_default().observe(
            &lead,
            &active,
            &leadstream_processor::sequence::SeqEvent::from(e),
            leadstream_processor::sequence::DEFAULT_CAP,
        );
        sequence_ids.extend(matches.into_iter().map(|m| m.fired_id));
        let s = score.entry(lead.clone()).or_insert(0);
        let before = *s;
        *s += points(&e.event_type);
        let a = armed.entry(lead.clone()).or_insert(before < THRESHOLD);
        if before < THRESHOLD {
            *a = true;
        }
        if *s >= THRESHOLD && *a {
            *crossings.entry(lead.clone()).or_insert(0) += 1;
            *a = false;
        } else if *s < THRESHOLD {
            *a = true;
        }
    }
    for chunk in stream.chunks(500) {
        join_all(chunk.iter().map(|e| w.produce(e))).await;
    }
    Oracle {
        sequence_ids,
        events,
        score,
        crossings,
    }
}

async fn verify(w: &World, oracle: &Oracle) {
    let unique = oracle.score.len();
    assert!(unique > 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut n = w.applied(LEADS).await;
    while n < EVENTS as u64 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n = w.applied(LEADS).await;
    }
    if n != EVENTS as u64 {
        explain_shortfall(w, oracle).await;
    }
    assert_eq!(
        n, EVENTS as u64,
        "every event applied exactly once (less: lost, more: counted twice)"
    );
    for (lead, expected) in &oracle.score {
        let rec = w.lead(lead).await.expect("lead state");
        assert_eq!(rec.score.score_at(0), *expected, "score of {lead}");
    }
    let expected_total: u64 = oracle.crossings.values().sum();
    assert!(expected_total > 0, "the stream must cross the threshold");
    let records = consume(
        &w.broker.addr(),
        &w.topics.fired,
        expected_total as usize + oracle.sequence_ids.len(),
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .await;
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    let mut sequence_ids = BTreeSet::new();
    for m in &records {
        let f = decode_fired(m.payload().expect("payload")).expect("fired record");
        match f.kind {
            leadstream_shared::fired::TriggerKind::Milestone => {
                *ids.entry(f.fired_id).or_default() += 1
            }
            leadstream_shared::fired::TriggerKind::Sequence => {
                sequence_ids.insert(f.fired_id);
            }
        }
    }
    assert!(
        !oracle.sequence_ids.is_empty(),
        "the stream must complete the sequence"
    );
    assert_eq!(
        sequence_ids, oracle.sequence_ids,
        "sequence firings survive the kills exactly"
    );
    let mut expected_ids = BTreeSet::new();
    for (lead, n) in &oracle.crossings {
        for k in 1..=*n {
            expected_ids.insert(derived_id("fir", &[TRIGGER, lead, &k.to_string()]));
        }
    }
    let got: BTreeSet<String> = ids.keys().cloned().collect();
    assert_eq!(
        got, expected_ids,
        "one fired id per crossing, none missing, none extra"
    );
    let repeats = records.len() - got.len() - sequence_ids.len();
    eprintln!(
        "fired records: {}, distinct ids: {}, repeated (harmless) ids: {repeats}",
        records.len(),
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let w = World::new("crash").await;
    let oracle = setup(&w).await;
    // Small batches so the stream takes long enough to be interrupted several times.
    let extra = [("LEADSTREAM_PROCESSOR_MAX_BATCH", "5")];
    // tansu does not expire the session of a member killed with -9: its partitions would stay
    // assigned to the dead process. Each replacement therefore joins under a fresh group name,
    // which makes it the owner of every partition at once. It has no committed offsets at all,
    // so it can only resume from the applied offsets in Redis: the harder case.
    let group = |k: u64| format!("{}-gen{k}", w.env["LEADSTREAM_PROCESSOR_GROUP"]);
    let g0 = group(0);
    let mut child = w.spawn_process(&[extra[0], ("LEADSTREAM_PROCESSOR_GROUP", &g0)]);
    let mut kills = Vec::new();
    for k in 1..=3u64 {
        let target = k * EVENTS as u64 / 5;
        let at = wait_until(Duration::from_secs(90), "progress before kill", || async {
            let n = w.applied(LEADS).await;
            (n >= target).then_some(n)
        })
        .await;
        child.kill9();
        kills.push(at);
        let gk = group(k);
        child = w.spawn_process(&[extra[0], ("LEADSTREAM_PROCESSOR_GROUP", &gk)]);
    }
    eprintln!("killed -9 at applied counts {kills:?}");
    assert!(
        kills.iter().all(|&n| n < EVENTS as u64),
        "each kill -9 must land mid-stream (applied at kills: {kills:?})"
    );
    verify(&w, &oracle).await;
    child.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_work_and_one_leaving_loses_nothing() {
    let w = World::new("rebalance").await;
    let oracle = setup(&w).await;
    let extra = [("LEADSTREAM_PROCESSOR_MAX_BATCH", "5")];
    let mut a = w.spawn_process(&extra);
    let mut b = w.spawn_process(&extra);
    let at = wait_until(
        Duration::from_secs(90),
        "progress with two replicas",
        || async {
            let n = w.applied(LEADS).await;
            (n >= EVENTS as u64 / 3).then_some(n)
        },
    )
    .await;
    // Graceful leave (SIGTERM): the survivor takes over its partitions.
    let status = tokio::task::spawn_blocking(move || a.terminate())
        .await
        .expect("join")
        .expect("exit status");
    assert!(status.success(), "SIGTERM is a clean exit, got {status}");
    assert!(
        at < EVENTS as u64,
        "the replica must leave mid-stream (applied: {at})"
    );
    verify(&w, &oracle).await;
    b.kill9();
}

/// On failure: which leads are short.
async fn explain_shortfall(w: &World, oracle: &Oracle) {
    for (lead, ids) in &oracle.events {
        let rec = w.lead(lead).await.unwrap_or_default();
        if rec.events as usize != ids.len() {
            eprintln!("{lead}: applied {} of {}", rec.events, ids.len());
        }
    }
}
