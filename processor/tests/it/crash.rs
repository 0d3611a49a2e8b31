//! Crash and rebalance: real `leadstream processor` processes are killed (-9) or stopped
//! (SIGTERM) while events keep arriving. The stream: 3,000 distinct events over two OUs that use
//! the same lead ids and the same producer ids (with different rules and thresholds), plus 200
//! producer retries (same producer id, new event id) sent unconditionally. The stream is
//! produced *while* the processors work and die: the producer stays at most [`WINDOW`] events
//! ahead of processing, so each kill lands mid-production whatever the machine's speed.
//!
//! Afterwards, per OU and lead, the score, the milestone crossings and the sequence completions
//! must equal the independent oracle (`leadstream_testkit::oracle`, the same one the e2e suite
//! uses; not the processor's own matcher), every firing must carry its own OU, and each crossing
//! must have exactly one fired id (a fired record may appear twice on the topic — the notifier
//! delivers on the id — but no crossing may be missing or get two ids).
//!
//! Each scenario is a `pub(crate) async fn` over a [`World`] (so the same scenarios can run
//! against another Redis deployment, e.g. a cluster, by building the world differently); the
//! `#[tokio::test]`s are thin wrappers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::join_all;
use leadstream_domain::event::EngagementEvent;
use leadstream_domain::fired::TriggerKind;
use leadstream_shared::avro::decode_fired;
use leadstream_shared::ids::derived_id;
use leadstream_testkit::oracle::{Expected, Workload};
use leadstream_testkit::{consume, wait_until};
use rdkafka::Message;
use serde_json::json;

use crate::world::{event, World, OU};

/// The second OU: same lead ids, same producer ids, its own rules.
pub(crate) const OU_B: &str = "unit_crash_b";
pub(crate) const OUS: [&str; 2] = [OU, OU_B];
pub(crate) const LEADS: usize = 40;
/// Distinct events over both OUs (two thirds in [`OU`], one third in [`OU_B`]).
pub(crate) const EVENTS: usize = 3000;
/// Producer retries mixed into the stream, every one of them sent.
pub(crate) const DUPLICATES: usize = 200;
/// The producer stays at most this many distinct events ahead of processing.
const WINDOW: u64 = 300;
/// Records produced per step.
const CHUNK: usize = 20;
/// The same trigger and sequence ids in both OUs: a firing may only count in its own.
const TRIGGER: &str = "trg_hot";
const SEQUENCE: &str = "seq_buying";
const TYPES: [&str; 5] = [
    "page_view",
    "page_view",
    "pricing",
    "demo_request",
    "unsubscribe",
];

/// Each OU's rules: the test's own copy, for the oracle.
pub(crate) fn workload(ou: &str) -> Workload<'static> {
    if ou == OU {
        Workload {
            rules: &[
                ("page_view", 7),
                ("pricing", 13),
                ("demo_request", 20),
                ("unsubscribe", -30),
            ],
            threshold: 40,
            sequence: ["pricing", "demo_request"],
        }
    } else {
        Workload {
            rules: &[
                ("page_view", 5),
                ("pricing", 11),
                ("demo_request", 17),
                ("unsubscribe", -9),
            ],
            threshold: 70,
            sequence: ["pricing", "demo_request"],
        }
    }
}

/// The stream and what it must produce.
pub(crate) struct Plan {
    /// Every record to produce, in order (duplicates included).
    pub stream: Vec<EngagementEvent>,
    /// Distinct events among `stream[..=i]`.
    pub unique_upto: Vec<u64>,
    /// Per (OU, lead): the oracle's expectation.
    pub expected: BTreeMap<(String, String), Expected>,
    /// Per (OU, lead): producer ids, stream order, duplicates removed (for failure reports).
    pub events: BTreeMap<(String, String), Vec<String>>,
}

/// Install both OUs' rules and build the stream (not produced yet).
pub(crate) async fn setup(w: &World) -> Plan {
    for ou in OUS {
        let wl = workload(ou);
        let rules: Vec<_> = wl
            .rules
            .iter()
            .enumerate()
            .map(|(i, (t, p))| json!({"id": format!("r{i}"), "event_type": t, "points": p}))
            .collect();
        w.put_ruleset_in(
            ou,
            json!({
                "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z", "rules": rules
            }),
        )
        .await;
        w.put_trigger_in(
            ou,
            json!({
                "id": TRIGGER, "name": "Hot", "score_threshold": wl.threshold, "active": true,
                "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
            }),
        )
        .await;
        let seq: leadstream_domain::model::sequence::SequenceTrigger =
            serde_json::from_value(json!({
                "id": SEQUENCE, "name": "Buying", "event_types": wl.sequence,
                "window_seconds": 3600, "ordered": true, "active": true,
                "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
            }))
            .expect("sequence");
        w.catalog
            .put_doc(
                ou,
                leadstream_shared::catalog::collections::SEQUENCES,
                SEQUENCE,
                &seq,
            )
            .await
            .expect("put sequence");
    }
    // A deterministic pseudo-random stream (LCG). Event i goes to OU_B when i % 3 == 2; each
    // OU numbers its producer ids from 0, so both OUs use the same ids for the same leads.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut stream: Vec<EngagementEvent> = Vec::with_capacity(EVENTS + DUPLICATES);
    let mut per_ou = [0usize; 2];
    let mut duplicates = 0;
    for i in 0..EVENTS {
        let o = usize::from(i % 3 == 2);
        let ou = OUS[o];
        let k = per_ou[o];
        per_ou[o] += 1;
        let lead = format!("ld_{}", next(LEADS as u64));
        let t = TYPES[next(TYPES.len() as u64) as usize];
        // Event times a millisecond apart: every lead's events lie within the sequence's hour.
        let mut e = event(&lead, t, &format!("e{k}"), 1_700_000_000_000 + i as i64);
        e.ou_id = ou.into();
        e.event_id = format!("evt_{ou}_{k}");
        stream.push(e);
        if i % (EVENTS / DUPLICATES) == 7 {
            // A producer retry of any earlier record: same OU, lead and producer id, a new
            // event id (as a second trip through a gateway would give it).
            let j = next(stream.len() as u64) as usize;
            let mut dup = stream[j].clone();
            dup.event_id = format!("{}_retry{i}", dup.event_id);
            stream.push(dup);
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, DUPLICATES, "every planned duplicate is sent");
    assert_eq!(stream.len(), EVENTS + DUPLICATES);
    // The oracle: per (OU, lead), the deduplicated event types in stream order.
    let mut seen = BTreeSet::new();
    let mut unique_upto = Vec::with_capacity(stream.len());
    let mut types: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    let mut events: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in &stream {
        if seen.insert((e.ou_id.clone(), e.dedupe_id())) {
            let key = (e.ou_id.clone(), e.lead_id.clone().unwrap_or_default());
            let t = TYPES.iter().find(|t| **t == e.event_type).expect("type");
            types.entry(key.clone()).or_default().push(t);
            events.entry(key).or_default().push(e.dedupe_id());
        }
        unique_upto.push(seen.len() as u64);
    }
    assert_eq!(seen.len(), EVENTS, "duplicates are exactly the retries");
    let expected = types
        .iter()
        .map(|((ou, lead), t)| ((ou.clone(), lead.clone()), workload(ou).expected(t)))
        .collect();
    Plan {
        stream,
        unique_upto,
        expected,
        events,
    }
}

/// Events applied so far over both OUs.
pub(crate) async fn applied(w: &World) -> u64 {
    w.applied_in(&OUS, LEADS).await
}

/// Produce the whole stream in small steps, each once processing is within [`WINDOW`] of what
/// was produced; `produced` counts the distinct events sent so far.
pub(crate) async fn produce_stream(w: &World, plan: &Plan, produced: &AtomicU64) {
    let mut sent = 0;
    for chunk in plan.stream.chunks(CHUNK) {
        let ahead = produced.load(Ordering::SeqCst);
        wait_until(
            Duration::from_secs(180),
            "processing to keep up with the producer",
            || async { (applied(w).await + WINDOW >= ahead).then_some(()) },
        )
        .await;
        join_all(chunk.iter().map(|e| w.produce(e))).await;
        sent += chunk.len();
        produced.store(plan.unique_upto[sent - 1], Ordering::SeqCst);
    }
}

/// Check everything against the plan's oracle.
pub(crate) async fn verify(w: &World, plan: &Plan) {
    // Poll (bounded) rather than `wait_until`, so a shortfall is explained before failing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut n = applied(w).await;
    while n < EVENTS as u64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n = applied(w).await;
    }
    if n != EVENTS as u64 {
        explain_shortfall(w, plan).await;
    }
    assert_eq!(
        n, EVENTS as u64,
        "every event applied exactly once (more: counted twice)"
    );
    for ((ou, lead), want) in &plan.expected {
        let rec = w.lead_in(ou, lead).await.expect("lead state");
        assert_eq!(
            (rec.events, rec.score.score_at(0)),
            (want.events, want.score),
            "(events, score) of {lead} in {ou}"
        );
    }
    let want_m: usize = plan.expected.values().map(|e| e.crossings).sum();
    let want_s: usize = plan.expected.values().map(|e| e.sequences).sum();
    assert!(want_m > 0, "the stream must cross the thresholds");
    assert!(want_s > 0, "the stream must complete the sequence");
    for ou in OUS {
        assert!(
            plan.expected
                .iter()
                .any(|((o, _), e)| o == ou && e.crossings > 0 && e.sequences > 0),
            "{ou} must fire both kinds"
        );
    }
    let records = consume(
        &w.broker.addr(),
        &w.topics.fired,
        want_m + want_s,
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .await;
    let mut milestones: BTreeSet<(String, String)> = BTreeSet::new();
    let mut sequences: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for m in &records {
        let f = decode_fired(m.payload().expect("payload")).expect("fired record");
        assert!(OUS.contains(&f.ou_id.as_str()), "a firing of {}", f.ou_id);
        assert_eq!(
            leadstream_testkit::key_of(m),
            format!("{}:{}", f.ou_id, f.lead_id),
            "a firing is keyed by its own OU and lead"
        );
        match f.kind {
            TriggerKind::Milestone => {
                milestones.insert((f.ou_id, f.fired_id));
            }
            TriggerKind::Sequence => {
                sequences
                    .entry((f.ou_id, f.lead_id))
                    .or_default()
                    .insert(f.fired_id);
            }
        }
    }
    let mut expected_m = BTreeSet::new();
    for ((ou, lead), e) in &plan.expected {
        for k in 1..=e.crossings {
            expected_m.insert((
                ou.clone(),
                derived_id("fir", &[TRIGGER, lead, &k.to_string()]),
            ));
        }
    }
    assert_eq!(
        milestones, expected_m,
        "one fired id per crossing in its own OU, none missing, none extra"
    );
    let got_s: BTreeMap<(String, String), usize> = sequences
        .iter()
        .map(|(k, ids)| (k.clone(), ids.len()))
        .collect();
    let want_s_per: BTreeMap<(String, String), usize> = plan
        .expected
        .iter()
        .filter(|(_, e)| e.sequences > 0)
        .map(|(k, e)| (k.clone(), e.sequences))
        .collect();
    assert_eq!(
        got_s, want_s_per,
        "sequence completions per (OU, lead) equal the oracle's"
    );
    let distinct = milestones.len() + sequences.values().map(BTreeSet::len).sum::<usize>();
    eprintln!(
        "fired records: {}, distinct ids: {distinct}, repeated (harmless) records: {}",
        records.len(),
        records.len() - distinct
    );
}

/// kill -9 three times while the stream is produced.
pub(crate) async fn kill_9_scenario(w: &World) {
    let plan = setup(w).await;
    // Small batches so the stream takes long enough to be interrupted several times.
    let batch = ("LEADSTREAM_PROCESSOR_MAX_BATCH", "5");
    // tansu does not expire the session of a member killed with -9: its partitions would stay
    // assigned to the dead process. Each replacement therefore joins under a fresh group name,
    // which makes it the owner of every partition at once. It has no committed offsets at all,
    // so it can only resume from the applied offsets in Redis: the harder case.
    let group = |k: u64| format!("{}-gen{k}", w.env["LEADSTREAM_PROCESSOR_GROUP"]);
    let produced = AtomicU64::new(0);
    let kills = async {
        let g0 = group(0);
        let mut child = w.spawn_process(&[batch, ("LEADSTREAM_PROCESSOR_GROUP", &g0)]);
        let mut at_spawn = 0;
        let mut kills = Vec::new();
        for k in 1..=3u64 {
            let target = k * EVENTS as u64 / 4;
            let at = wait_until(Duration::from_secs(180), "progress before kill", || async {
                let (p, n) = (produced.load(Ordering::SeqCst), applied(w).await);
                (p >= target && n > at_spawn).then_some((p, n))
            })
            .await;
            child.kill9();
            kills.push(at);
            at_spawn = applied(w).await;
            let gk = group(k);
            child = w.spawn_process(&[batch, ("LEADSTREAM_PROCESSOR_GROUP", &gk)]);
        }
        (child, kills)
    };
    let ((), (mut child, kills)) = tokio::join!(produce_stream(w, &plan, &produced), kills);
    eprintln!("killed -9 at (produced, applied) {kills:?}");
    assert!(
        kills
            .iter()
            .all(|&(p, n)| p < EVENTS as u64 && n < EVENTS as u64),
        "each kill -9 must land while the stream is still being produced: {kills:?}"
    );
    verify(w, &plan).await;
    child.kill9();
}

/// Two replicas in one group split the work; one leaves (SIGTERM) while the stream is
/// produced, and the survivor of the same group takes its partitions over.
pub(crate) async fn rebalance_scenario(w: &World) {
    let plan = setup(w).await;
    let batch = [("LEADSTREAM_PROCESSOR_MAX_BATCH", "5")];
    let mut a = w.spawn_process(&batch);
    let mut b = w.spawn_process(&batch);
    let produced = AtomicU64::new(0);
    let leave = async {
        let at = wait_until(
            Duration::from_secs(180),
            "progress with two replicas",
            || async {
                let (p, n) = (produced.load(Ordering::SeqCst), applied(w).await);
                (p >= EVENTS as u64 / 3 && n > 0).then_some((p, n))
            },
        )
        .await;
        // Graceful leave: the survivor takes over its partitions.
        a.signal_term();
        let status = a
            .wait_exit(Duration::from_secs(60))
            .await
            .expect("the replica exits within 60 s of SIGTERM");
        (at, status)
    };
    let ((), (at, status)) = tokio::join!(produce_stream(w, &plan, &produced), leave);
    assert!(status.success(), "SIGTERM is a clean exit, got {status}");
    assert!(
        at.0 < EVENTS as u64,
        "the replica must leave while the stream is produced (produced, applied: {at:?})"
    );
    verify(w, &plan).await;
    assert!(
        b.0.as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none()),
        "the survivor is still running"
    );
    b.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_counts_nothing_twice() {
    kill_9_scenario(&World::new("crash").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_work_and_one_leaving_loses_nothing() {
    rebalance_scenario(&World::new("rebalance").await).await;
}

/// On failure: which leads are short.
pub(crate) async fn explain_shortfall(w: &World, plan: &Plan) {
    for ((ou, lead), ids) in &plan.events {
        let rec = w.lead_in(ou, lead).await.unwrap_or_default();
        if rec.events as usize != ids.len() {
            eprintln!("{lead} in {ou}: applied {} of {}", rec.events, ids.len());
        }
    }
}
