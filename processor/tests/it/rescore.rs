//! Rescore (issue 15) on the real broker and Redis, with the real `leadstream processor` as a
//! child process.
//!
//! The scenario: ~40 leads get 1,500 events (plus producer retries) under the old rules, with
//! a milestone trigger whose threshold no lead reaches under them. Then the rules change to
//! bigger points (and a rule for a new type), a live producer starts sending more events for
//! half of the leads — only types that score ≤ 0 under the new rules (`unsubscribe` and an
//! unscored type, plus retries of earlier records) — and, while it sends, a rescore job is
//! created the way the gateway does. Since live events can only lower a score, no live
//! event can cross the threshold upwards: every firing after the rules change is the
//! rescore's own.
//!
//! Afterwards, per lead, the score must equal the test's own oracle (all its distinct events,
//! both phases, under the new rules; written here, not taken from the processor) and the event
//! count its distinct events (nothing lost or doubled across the switch); the firings must
//! follow `fire_triggers` exactly. The kill -9 variant kills the processor as soon as one
//! partition is switching (or switched) while another is not done, and lets a replacement
//! (a fresh consumer group: tansu never expires a killed member) finish the job. The
//! two-processor variant runs two processes in one consumer group; the broker's description
//! of the group shows both owning partitions before the rules change and after the job, so
//! each switched its own partitions.
//!
//! One `pub(crate) async fn` scenario; the `#[tokio::test]`s are thin wrappers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use leadstream_domain::event::EngagementEvent;
use leadstream_domain::fired::TriggerKind;
use leadstream_shared::avro::decode_fired;
use leadstream_shared::ids::{derived_id, now_ms};
use leadstream_shared::kafka::KafkaSettings;
use leadstream_shared::store::rescore::{Job, JobState, JobView, Phase, RescoreJobs};
use leadstream_testkit::{consume, end_offsets, unique, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::json;

use crate::world::{World, OU, PARTITIONS};

mod plan;

use plan::{Plan, LEADS, NEW, OLD, TRIGGER};

/// Live records per step, and the pause between steps.
const LIVE_CHUNK: usize = 5;
const LIVE_PAUSE: Duration = Duration::from_millis(40);
/// The job is created once this many live records were sent, and the live producer holds
/// the last fifth of its records back until the job has completed: live events arrive before,
/// during and after the rescore, whatever the machine's speed.
const LIVE_BEFORE_JOB: usize = 100;

async fn put_rules(w: &World, rules: &[(&str, i64)], updated_at: &str) {
    let rules: Vec<_> = rules
        .iter()
        .enumerate()
        .map(|(i, (t, p))| json!({"id": format!("r{i}"), "event_type": t, "points": p}))
        .collect();
    w.put_ruleset(json!({
        "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z",
        "updated_at": updated_at, "rules": rules
    }))
    .await;
}

async fn produce_all(w: &World, records: &[EngagementEvent]) {
    for chunk in records.chunks(20) {
        join_all(chunk.iter().map(|e| w.produce(e))).await;
    }
}

/// Total records on the fired topic (high watermarks summed).
async fn fired_records(w: &World) -> i64 {
    end_offsets(&w.broker.addr(), &w.topics.fired)
        .await
        .values()
        .sum()
}

/// Wait (bounded) until `n` distinct events are applied over the plan's leads.
async fn wait_applied(w: &World, n: u64, what: &str) {
    let got = wait_until(Duration::from_secs(180), what, || async {
        let a = w.applied(LEADS).await;
        (a >= n).then_some(a)
    })
    .await;
    assert_eq!(
        got, n,
        "{what}: more applied than distinct events (counted twice)"
    );
}

/// How the rescore job was run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// One processor runs the whole job.
    Plain,
    /// kill -9 the processor during the switch; a replacement finishes the job.
    Kill9,
    /// Two processors in one consumer group, each owning some of the partitions from before
    /// the rules change to the job's completion: each replays and switches its own.
    TwoProcessors,
}

pub(crate) async fn scenario(w: &World, fire_triggers: bool, mode: Mode) {
    let plan = Plan::new();
    let [fire, quiet, maybe] = plan.categories();
    eprintln!(
        "threshold {}; leads that must fire {}, must not {}, may (switch-dependent) {}",
        plan.threshold,
        fire.len(),
        quiet.len(),
        maybe.len()
    );
    assert!(
        !fire.is_empty() && !quiet.is_empty(),
        "the plan splits the leads"
    );

    // 1. Old rules, the trigger, phase 1 through a processor process.
    put_rules(w, OLD, "2025-01-01T00:00:00Z").await;
    w.put_trigger(json!({
        "id": TRIGGER, "name": "Hot", "score_threshold": plan.threshold, "active": true,
        "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
    }))
    .await;
    let group = w.env["LEADSTREAM_PROCESSOR_GROUP"].clone();
    // Two processors: each one's log says which partitions it owns and which it switched.
    let logs = (mode == Mode::TwoProcessors)
        .then(|| ["a", "b"].map(|n| std::env::temp_dir().join(format!("{}.log", unique(n)))));
    let (mut child, other) = match &logs {
        Some([a, b]) => (
            w.spawn_process_logged(&[], a),
            Some(w.spawn_process_logged(&[], b)),
        ),
        None => (w.spawn_process(&[]), None),
    };
    produce_all(w, &plan.phase1).await;
    wait_applied(w, plan.distinct1, "phase 1 to be applied").await;
    // Both processors own partitions before the rules change.
    let split = match &logs {
        Some(logs) => Some(wait_split(w, &group, logs).await),
        None => None,
    };
    assert_eq!(
        fired_records(w).await,
        0,
        "the old rules never let a lead reach the threshold"
    );

    // 2. New rules: the OU's config version moves (the processor reloads its rules on it).
    let v0 = w.catalog.config_version(OU).await.expect("version");
    put_rules(w, NEW, "2025-01-02T00:00:00Z").await;
    let v1 = w.catalog.config_version(OU).await.expect("version");
    assert!(
        v1 > v0,
        "replacing the ruleset bumps the config version ({v0} → {v1})"
    );

    // 3. and 4. Live events while the rescore job runs.
    let jobs = RescoreJobs::new(w.kv.clone(), w.keys.clone());
    let job = Job::rescore("org_default", OU, None, fire_triggers, now_ms());
    let sent = AtomicUsize::new(0);
    let job_done = AtomicBool::new(false);
    let live = async {
        let hold_from = plan.phase2.len() * 4 / 5;
        for chunk in plan.phase2.chunks(LIVE_CHUNK) {
            if sent.load(Ordering::SeqCst) >= hold_from {
                wait_until(Duration::from_secs(180), "the job to complete", || async {
                    job_done.load(Ordering::SeqCst).then_some(())
                })
                .await;
            }
            join_all(chunk.iter().map(|e| w.produce(e))).await;
            sent.fetch_add(chunk.len(), Ordering::SeqCst);
            tokio::time::sleep(LIVE_PAUSE).await;
        }
    };
    let control = async {
        wait_until(
            Duration::from_secs(60),
            "live events before the job",
            || async { (sent.load(Ordering::SeqCst) >= LIVE_BEFORE_JOB).then_some(()) },
        )
        .await;
        jobs.create(&job)
            .await
            .expect("store")
            .expect("no other rescore of the OU runs");
        let started = Instant::now();
        let sent_at_create = sent.load(Ordering::SeqCst);
        let mut kill = None;
        let deadline = started + Duration::from_secs(120);
        let view = loop {
            let v = jobs.get(&job.id).await.expect("store").expect("the job");
            if v.status.state.is_finished() {
                break v;
            }
            if mode == Mode::Kill9 && kill.is_none() && switching(&v) {
                child.kill9();
                let after = jobs.get(&job.id).await.expect("store").expect("the job");
                let phases = phases(&after);
                eprintln!(
                    "kill -9 after {:?}, partitions at the kill: {phases}",
                    started.elapsed()
                );
                assert!(
                    after.status.state == JobState::Running && !after.all_done(),
                    "the kill -9 must land mid-job, but the job had completed: {phases}"
                );
                kill = Some(phases);
                // A fresh group: tansu never expires the killed member, so the old group
                // would never get the partitions back.
                child =
                    w.spawn_process(&[("LEADSTREAM_PROCESSOR_GROUP", &format!("{group}-gen1"))]);
            }
            assert!(
                Instant::now() < deadline,
                "the job did not finish within 120 s: {}",
                phases(&v)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        job_done.store(true, Ordering::SeqCst);
        let took = started.elapsed();
        (
            view,
            took,
            sent_at_create,
            sent.load(Ordering::SeqCst),
            kill,
        )
    };
    let ((), (view, took, sent_at_create, sent_at_done, kill)) = tokio::join!(live, control);
    eprintln!(
        "job {} {:?} in {took:?}; live records sent: {sent_at_create} at its creation, \
         {sent_at_done} at its completion, {} in all; totals {:?}; {}",
        job.id,
        view.status.state,
        plan.phase2.len(),
        view.progress,
        phases(&view)
    );
    assert_eq!(
        view.status.state,
        JobState::Completed,
        "the job completes: {:?}",
        view.status
    );
    assert!(
        sent_at_create < sent_at_done && sent_at_done < plan.phase2.len(),
        "live events arrive while the job runs and after it"
    );
    if mode == Mode::Kill9 {
        assert!(kill.is_some(), "the processor was killed during the job");
    }
    if let (Some(owned), Some(logs)) = (&split, &logs) {
        // Each processor switched exactly the partitions it owned, and still owns them: the
        // job was split between the two, no partition moved mid-job.
        for (name, (log, owned)) in ["a", "b"].iter().zip(logs.iter().zip(owned)) {
            let now = ProcessLog::read(log, &job.id);
            eprintln!(
                "processor {name}: owned {owned:?} before the job, {:?} after it, switched {:?}",
                now.assigned, now.switched
            );
            assert_eq!(
                &now.assigned, owned,
                "processor {name}: a rebalance during the job"
            );
            assert_eq!(
                &now.switched, owned,
                "processor {name} switches exactly the partitions it owns"
            );
        }
        for log in logs {
            let _ = std::fs::remove_file(log);
        }
    }
    wait_applied(w, plan.distinct, "every event to be applied").await;

    // 5. Every lead equals the oracle; the job's view adds up.
    let now = now_ms();
    let mut wrong = Vec::new();
    for (lead, e) in &plan.expected {
        let rec = w.lead(lead).await.expect("lead state");
        let got = (rec.events, rec.score.score_at(now));
        if got != (e.events, e.score) {
            wrong.push(format!(
                "{lead}: (events, score) {got:?}, oracle ({}, {})",
                e.events, e.score
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "leads differ from the oracle:\n{}",
        wrong.join("\n")
    );
    assert_eq!(view.partitions_total, Some(PARTITIONS));
    assert_eq!(view.partitions_done, PARTITIONS, "{}", phases(&view));
    assert!(
        view.partitions.len() == PARTITIONS as usize
            && view
                .partitions
                .iter()
                .all(|p| p.phase == Some(Phase::Done) && p.error.is_none()),
        "every partition done: {}",
        phases(&view)
    );
    assert!(view.progress.events_applied > 0, "{:?}", view.progress);
    assert!(
        view.progress.leads >= plan.expected.len() as u64,
        "the switch wrote every lead: {:?}",
        view.progress
    );

    // 6. Firings.
    if !fire_triggers {
        // Nothing on the topic's high watermarks, and nothing read within 10 s either.
        assert_eq!(
            fired_records(w).await,
            0,
            "fire_triggers: false sends nothing (and no live event can cross)"
        );
        let read = consume(
            &w.broker.addr(),
            &w.topics.fired,
            1,
            Duration::from_secs(10),
            Duration::ZERO,
        )
        .await;
        assert!(read.is_empty(), "fire_triggers: false sends nothing");
        assert_eq!(view.progress.fired, 0);
        child.kill9();
        if let Some(mut o) = other {
            o.kill9();
        }
        return;
    }
    let records = consume(
        &w.broker.addr(),
        &w.topics.fired,
        fire.len(),
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .await;
    let positions: BTreeSet<(i32, i64)> = records
        .iter()
        .map(|m| (m.partition(), m.offset()))
        .collect();
    eprintln!(
        "fired topic: {} records read, {} distinct positions, end offsets {:?}",
        records.len(),
        positions.len(),
        end_offsets(&w.broker.addr(), &w.topics.fired).await
    );
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
    for m in &records {
        let f = decode_fired(m.payload().expect("payload")).expect("fired record");
        assert_eq!(
            (f.ou_id.as_str(), f.kind, f.trigger_id.as_str()),
            (OU, TriggerKind::Milestone, TRIGGER)
        );
        assert_eq!(
            f.payload["rescore"],
            json!({"job_id": job.id}),
            "a firing after the rules change is the rescore's: {}",
            f.payload
        );
        let e = plan.expected.get(&f.lead_id).expect("a lead of the plan");
        let crossing = (e.replayed_crossings + 1).to_string();
        assert_eq!(
            f.fired_id,
            derived_id("fir", &[TRIGGER, &f.lead_id, &crossing]),
            "{}: the fired id of crossing {crossing}",
            f.lead_id
        );
        *repeats.entry(f.fired_id.clone()).or_default() += 1;
        ids.entry(f.lead_id).or_default().insert(f.fired_id);
    }
    for (lead, set) in &ids {
        assert_eq!(set.len(), 1, "{lead}: one fired id, got {set:?}");
        assert!(
            !quiet.contains(lead.as_str()),
            "{lead} is below the threshold under the new rules after phase 1: no firing"
        );
    }
    let missing: Vec<_> = fire.iter().filter(|l| !ids.contains_key(**l)).collect();
    assert!(
        missing.is_empty(),
        "leads that must fire did not: {missing:?}"
    );
    let maybe_fired = maybe.iter().filter(|l| ids.contains_key(**l)).count();
    assert_eq!(
        view.progress.fired,
        ids.len() as u64,
        "the job counts its firings"
    );
    // A fired record may be on the topic more than once (the rescore produces it, and the
    // live processor produces the outbox it finds after the switch): delivery is on the id.
    eprintln!(
        "fired: {} distinct ids ({} must, {maybe_fired} of {} switch-dependent), {} records, \
         at most {} records per id",
        ids.len(),
        fire.len(),
        maybe.len(),
        records.len(),
        repeats.values().max().copied().unwrap_or(0)
    );
    child.kill9();
    if let Some(mut o) = other {
        o.kill9();
    }
}

/// What a processor's log (JSON lines) says: the partitions of its latest assignment, and
/// those it switched for one job.
#[derive(Debug, Default)]
struct ProcessLog {
    assigned: BTreeSet<i32>,
    switched: BTreeSet<i32>,
}

impl ProcessLog {
    fn read(path: &std::path::Path, job: &str) -> ProcessLog {
        let text = std::fs::read_to_string(path).expect("processor log");
        let mut log = ProcessLog::default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match v["message"].as_str() {
                // `partitions = ?[0, 1]`: an eager rebalance assigns the whole set.
                Some("partitions assigned") => {
                    let list = v["partitions"].as_str().expect("partitions");
                    log.assigned = list
                        .trim_matches(['[', ']'])
                        .split(',')
                        .filter_map(|p| p.trim().parse().ok())
                        .collect();
                }
                Some("rescore switched the partition's leads") if v["job"] == job => {
                    let p = v["partition"].as_i64().expect("partition");
                    log.switched.insert(p as i32);
                }
                _ => {}
            }
        }
        log
    }
}

/// Waits (bounded) until the broker describes the processors' group as stable with two
/// members, and the two processors' logs show them owning all the partitions between them,
/// each at least one; answers each one's partitions. (tansu 0.6 describes a group's members
/// without their assignments, so the partitions come from the processes themselves.)
async fn wait_split(w: &World, group: &str, logs: &[std::path::PathBuf; 2]) -> [BTreeSet<i32>; 2] {
    let describer: BaseConsumer = KafkaSettings::new(w.broker.addr())
        .consumer_config(&unique("describer"))
        .create()
        .expect("consumer");
    let describer = std::sync::Arc::new(describer);
    let last = std::sync::Mutex::new(String::new());
    wait_until(
        Duration::from_secs(60),
        "two processors sharing the partitions",
        || async {
            let (d, g) = (describer.clone(), group.to_string());
            let (state, members) = tokio::task::spawn_blocking(move || {
                let list = d
                    .fetch_group_list(Some(&g), Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("the broker cannot describe groups: {e}"));
                let g = list.groups().iter().find(|x| x.name() == g);
                g.map_or((String::from("absent"), 0), |g| {
                    (g.state().to_string(), g.members().len())
                })
            })
            .await
            .expect("describe");
            let owned = logs.each_ref().map(|l| ProcessLog::read(l, "").assigned);
            let now = format!("{state} with {members} members; owned {owned:?}");
            let mut last = last.lock().unwrap();
            if *last != now {
                eprintln!("processors' group: {now}");
                *last = now;
            }
            let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
            (state.eq_ignore_ascii_case("stable")
                && members == 2
                && owned.iter().all(|o| !o.is_empty())
                && owned[0].is_disjoint(&owned[1])
                && all == (0..PARTITIONS).collect())
            .then_some(owned)
        },
    )
    .await
}

/// Some partition is switching or switched while another is not done.
fn switching(v: &JobView) -> bool {
    v.partitions
        .iter()
        .any(|p| matches!(p.phase, Some(Phase::Switching | Phase::Done)))
        && !v.all_done()
}

fn phases(v: &JobView) -> String {
    let parts: Vec<String> = v
        .partitions
        .iter()
        .map(|p| {
            format!(
                "p{}={:?} (switched at {:?}, leads {}, fired {}, events {})",
                p.partition, p.phase, p.switched_at_offset, p.leads, p.fired, p.events_applied
            )
        })
        .collect();
    format!(
        "{:?}, {}/{:?} done [{}]",
        v.status.state,
        v.partitions_done,
        v.partitions_total,
        parts.join(" ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_matches_the_oracle_with_live_events_arriving() {
    scenario(&World::new("rescore").await, false, Mode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_fires_once_per_new_crossing() {
    scenario(&World::new("rescore-fire").await, true, Mode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_survives_kill_9_during_the_switch() {
    scenario(&World::new("rescore-kill").await, true, Mode::Kill9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_with_two_processors_sharing_the_partitions() {
    scenario(&World::new("rescore-two").await, true, Mode::TwoProcessors).await;
}
