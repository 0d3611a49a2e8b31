//! SIGTERM under load on real `leadstream processor` processes: two replicas in one group work
//! through a stream while more events keep arriving; one gets SIGTERM mid-stream. It must exit
//! 0, the survivor must own all partitions, and afterwards every lead's score equals an oracle
//! and every milestone crossing has exactly one fired record. Then the stopped replica is
//! restarted and both are stopped idle (exit 0), and the group's committed offsets must be the
//! end of every partition (tansu answers OffsetCommit/OffsetFetch).
//!
//! `crash.rs` covers kill -9 and the bare "one replica leaves"; this test is about the drain: the
//! signal lands while records stream in, and the assignment, the commits and the exit are
//! checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use leadstream_domain::event::EngagementEvent;
use leadstream_domain::fired::TriggerKind;
use leadstream_shared::avro::decode_fired;
use leadstream_shared::ids::derived_id;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_testkit::{consume, leadstream_bin, wait_until, ChildGuard};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::json;

use crate::world::{event, World, PARTITIONS};

const LEADS: usize = 30;
/// Distinct events in the stream (producer retries come on top).
const EVENTS: usize = 2000;
/// The producer stays at most this many distinct events ahead of processing, so the stream keeps
/// flowing until the end whatever the speed of the machine.
const WINDOW: u64 = 100;
/// Events produced per step.
const CHUNK: usize = 25;
const THRESHOLD: i64 = 50;
const TRIGGER: &str = "trg_sigterm";

fn points(t: &str) -> i64 {
    match t {
        "page_view" => 5,
        "pricing" => 11,
        "unsubscribe" => -20,
        _ => 0,
    }
}

/// The input stream (deterministic, with producer retries of earlier events mixed in) and what
/// it must leave behind.
struct Oracle {
    stream: Vec<EngagementEvent>,
    /// Per stream position: distinct events up to and including it.
    unique_upto: Vec<u64>,
    unique: u64,
    score: BTreeMap<String, i64>,
    crossings: BTreeMap<String, u64>,
}

fn oracle() -> Oracle {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let types = ["page_view", "page_view", "pricing", "unsubscribe"];
    let mut stream: Vec<EngagementEvent> = Vec::new();
    for i in 0..EVENTS {
        let lead = format!("ld_{}", next(LEADS as u64));
        let t = types[next(types.len() as u64) as usize];
        let e = event(&lead, t, &format!("s{i}"), 1_700_000_000_000 + i as i64);
        stream.push(e);
        if i % 13 == 5 {
            // A producer retry of an earlier event: same producer id, new event id.
            let j = next(i as u64 + 1) as usize;
            let mut dup = stream[j].clone();
            dup.event_id = format!("evt_dup{i}");
            stream.push(dup);
        }
    }
    let mut unique_upto = Vec::with_capacity(stream.len());
    let mut seen = BTreeSet::new();
    let mut score: BTreeMap<String, i64> = BTreeMap::new();
    let mut armed: HashMap<String, bool> = HashMap::new();
    let mut crossings: BTreeMap<String, u64> = BTreeMap::new();
    for e in &stream {
        let first = seen.insert(e.dedupe_id());
        unique_upto.push(seen.len() as u64);
        if !first {
            continue;
        }
        let lead = e.lead_id.clone().unwrap_or_default();
        let s = score.entry(lead.clone()).or_insert(0);
        *s += points(&e.event_type);
        let a = armed.entry(lead.clone()).or_insert(true);
        if *s >= THRESHOLD && *a {
            *crossings.entry(lead).or_insert(0) += 1;
            *a = false;
        } else if *s < THRESHOLD {
            *a = true;
        }
    }
    Oracle {
        unique: seen.len() as u64,
        unique_upto,
        stream,
        score,
        crossings,
    }
}

/// A processor process whose log lines (JSON, stdout) are kept for assertions.
struct Replica {
    child: ChildGuard,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn spawn(w: &World) -> Replica {
        let mut cmd = Command::new(leadstream_bin());
        cmd.arg("processor")
            .envs(&w.env)
            .env("LEADSTREAM_PROCESSOR_MAX_BATCH", "5")
            .env("RUST_LOG", "warn,leadstream_processor=info")
            // JSON lines: `assigned` reads them.
            .env("LEADSTREAM_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut cmd).expect("spawn leadstream processor");
        let out = child.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Replica { child, log }
    }

    /// The partitions of the newest "partitions assigned" log line (None before the first).
    fn assigned(&self) -> Option<BTreeSet<i32>> {
        let log = self.log.lock().unwrap();
        log.iter().rev().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if v["message"] != "partitions assigned" {
                return None;
            }
            let list = v["partitions"].as_str()?;
            Some(
                list.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|d| d.parse().ok())
                    .collect(),
            )
        })
    }

    /// SIGTERM, then wait (bounded) for the exit.
    async fn terminate(&mut self) -> ExitStatus {
        self.child.signal_term();
        self.child
            .wait_exit(Duration::from_secs(60))
            .await
            .expect("the processor exits after SIGTERM (bounded at 60s here)")
    }
}

fn all_partitions() -> BTreeSet<i32> {
    (0..PARTITIONS).collect()
}

/// Produce the whole stream in small steps, each once processing is within [`WINDOW`] of what
/// was produced; `produced` counts the distinct events sent so far.
async fn produce_stream(w: &World, o: &Oracle, produced: &AtomicU64) {
    let mut sent = 0;
    for chunk in o.stream.chunks(CHUNK) {
        let ahead = produced.load(Ordering::SeqCst);
        wait_until(
            Duration::from_secs(120),
            "processing to keep up",
            || async { (w.applied(LEADS).await + WINDOW >= ahead).then_some(()) },
        )
        .await;
        join_all(chunk.iter().map(|e| w.produce(e))).await;
        sent += chunk.len();
        produced.store(o.unique_upto[sent - 1], Ordering::SeqCst);
    }
}

/// Per partition: the group's committed offset and the partition's end (high watermark).
fn committed_and_ends(w: &World) -> Vec<(i32, Option<i64>, i64)> {
    let group = &w.env["LEADSTREAM_PROCESSOR_GROUP"];
    let c: BaseConsumer = KafkaSettings::new(w.broker.addr())
        .consumer_config(group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(&w.topics.events, p);
    }
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("OffsetFetch for the processor group");
    (0..PARTITIONS)
        .map(|p| {
            let off =
                committed
                    .find_partition(&w.topics.events, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
            let (_, high) = c
                .fetch_watermarks(&w.topics.events, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, off, high)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_hands_partitions_over_and_commits() {
    let w = World::new("sigterm").await;
    w.put_ruleset(json!({
        "id": "rs_1", "name": "Engagement", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [
            {"id": "r1", "event_type": "page_view", "points": 5},
            {"id": "r2", "event_type": "pricing", "points": 11},
            {"id": "r3", "event_type": "unsubscribe", "points": -20}
        ]
    }))
    .await;
    w.put_trigger(json!({
        "id": TRIGGER, "name": "Hot", "score_threshold": THRESHOLD, "active": true,
        "webhook_url": "https://hooks.example.com/x", "created_at": "2025-01-01T00:00:00Z"
    }))
    .await;
    let o = oracle();
    let mut a = Replica::spawn(&w);
    let mut b = Replica::spawn(&w);
    // Both own partitions (the group split the work) before the stream starts.
    wait_until(
        Duration::from_secs(90),
        "two replicas sharing the partitions",
        || async {
            let (pa, pb) = (a.assigned()?, b.assigned()?);
            let both = !pa.is_empty() && !pb.is_empty() && pa.is_disjoint(&pb);
            let all = pa.union(&pb).copied().collect::<BTreeSet<_>>() == all_partitions();
            (both && all).then_some(())
        },
    )
    .await;

    // The stream flows while one replica gets SIGTERM a third of the way through.
    let produced = AtomicU64::new(0);
    let stop_one = async {
        let at = wait_until(
            Duration::from_secs(120),
            "progress before SIGTERM",
            || async {
                let n = w.applied(LEADS).await;
                (n >= o.unique / 3).then_some(n)
            },
        )
        .await;
        let sent = produced.load(Ordering::SeqCst);
        let status = a.terminate().await;
        assert!(status.success(), "SIGTERM is a clean exit, got {status}");
        wait_until(
            Duration::from_secs(90),
            "the survivor owns every partition",
            || async { (b.assigned()? == all_partitions()).then_some(()) },
        )
        .await;
        (at, sent)
    };
    let ((at, sent), ()) = tokio::join!(stop_one, produce_stream(&w, &o, &produced));
    eprintln!("SIGTERM at {at} applied, {sent} produced, of {}", o.unique);
    assert!(
        sent < o.unique,
        "the signal must land while the stream still flows ({sent} of {} produced)",
        o.unique
    );

    // Nothing lost, nothing counted twice.
    let n = wait_until(Duration::from_secs(120), "every event applied", || async {
        let n = w.applied(LEADS).await;
        (n >= o.unique).then_some(n)
    })
    .await;
    assert_eq!(n, o.unique, "every event applied exactly once");
    for (lead, expected) in &o.score {
        let rec = w.lead(lead).await.expect("lead state");
        assert_eq!(rec.score.score_at(0), *expected, "score of {lead}");
    }
    let expected: BTreeSet<String> = o
        .crossings
        .iter()
        .flat_map(|(lead, n)| {
            (1..=*n).map(move |k| derived_id("fir", &[TRIGGER, lead, &k.to_string()]))
        })
        .collect();
    assert!(!expected.is_empty(), "the stream must cross the threshold");
    let records = consume(
        &w.broker.addr(),
        &w.topics.fired,
        expected.len(),
        Duration::from_secs(60),
        Duration::from_secs(3),
    )
    .await;
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for m in &records {
        let f = decode_fired(m.payload().expect("payload")).expect("fired record");
        assert_eq!(f.kind, TriggerKind::Milestone);
        *fired.entry(f.fired_id).or_default() += 1;
    }
    assert_eq!(
        fired.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "one fired id per crossing, none missing, none extra"
    );
    let twice: Vec<_> = fired.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "a graceful stop produces no fired record twice: {twice:?}"
    );

    // Restart the stopped replica, let the group split again, then stop both with no load.
    let mut a = Replica::spawn(&w);
    wait_until(
        Duration::from_secs(90),
        "the restarted replica gets partitions",
        || async {
            let (pa, pb) = (a.assigned()?, b.assigned()?);
            (!pa.is_empty() && !pb.is_empty() && pa.is_disjoint(&pb)).then_some(())
        },
    )
    .await;
    let status = a.terminate().await;
    assert!(
        status.success(),
        "idle SIGTERM is a clean exit, got {status}"
    );
    wait_until(
        Duration::from_secs(90),
        "the survivor owns every partition again",
        || async { (b.assigned()? == all_partitions()).then_some(()) },
    )
    .await;
    let status = b.terminate().await;
    assert!(
        status.success(),
        "idle SIGTERM is a clean exit, got {status}"
    );

    // Both left gracefully: the group's committed offsets are the end of every partition.
    let offsets = tokio::task::block_in_place(|| committed_and_ends(&w));
    eprintln!("(partition, committed, end): {offsets:?}");
    for (p, committed, end) in offsets {
        assert!(end > 0, "partition {p} received events");
        assert_eq!(committed, Some(end), "committed offset of partition {p}");
    }
}
