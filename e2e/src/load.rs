//! The workload: the test's own rules, a steady stream of events over HTTP, and the oracle that
//! says what the system must end up with.
//!
//! Rules (created over HTTP by [`install`]): a ruleset `page_view +7, pricing +13,
//! demo_request +20, unsubscribe −30`; a milestone trigger at [`THRESHOLD`] on any event type;
//! an ordered sequence `pricing → demo_request` within an hour. Each fires to its own path on
//! the receiver.
//!
//! Load: each lead has one sender task that sends its events one after another (the next only
//! once the previous was acknowledged), so a lead's events reach its partition in the order the
//! oracle assumes. Event `k` of a lead has the producer id `{lead}-{k}` (seed 001 `event_id` and
//! `Idempotency-Key`) and the event time `start + k·10 ms`. A 503/429/5xx or a lost answer is
//! retried with the same producer id, after `Retry-After` when given — what a well-behaved
//! producer does — so an event that was acknowledged twice is still one event.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{Api, Ingest};
use leadstream_testkit::oracle::Workload;

pub const THRESHOLD: i64 = 40;
pub const RULES: [(&str, i64); 4] = [
    ("page_view", 7),
    ("pricing", 13),
    ("demo_request", 20),
    ("unsubscribe", -30),
];
pub const SEQUENCE: [&str; 2] = ["pricing", "demo_request"];
pub const MILESTONE_PATH: &str = "/hooks/milestone";
pub const SEQUENCE_PATH: &str = "/hooks/sequence";

/// What [`install`] created.
#[derive(Debug, Clone)]
pub struct Rules {
    pub trigger_id: String,
    pub sequence_id: String,
}

/// Create the ruleset, the milestone trigger and the sequence over HTTP; webhooks go to
/// `receiver_base` + [`MILESTONE_PATH`] / [`SEQUENCE_PATH`], emails (when given) over SMTP.
pub async fn install(api: &Api, receiver_base: &str, emails: &[&str]) -> Rules {
    api.ruleset("Engagement", &RULES).await;
    let trigger = api
        .create(
            "/triggers",
            &json!({"name": "Hot Lead Alert", "score_threshold": THRESHOLD,
                    "webhook_url": format!("{receiver_base}{MILESTONE_PATH}"),
                    "emails": emails}),
        )
        .await;
    let sequence = api
        .create(
            "/sequences",
            &json!({"name": "Buying Intent", "event_types": SEQUENCE, "window_seconds": 3600,
                    "ordered": true,
                    "webhook_url": format!("{receiver_base}{SEQUENCE_PATH}"),
                    "emails": emails}),
        )
        .await;
    let id = |v: &Value| v["id"].as_str().expect("id").to_string();
    Rules {
        trigger_id: id(&trigger),
        sequence_id: id(&sequence),
    }
}

/// How much load, for how long.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub leads: usize,
    /// Events per second over all leads.
    pub rate: f64,
    pub duration: Duration,
}

impl LoadSpec {
    pub fn events_per_lead(&self) -> usize {
        ((self.rate * self.duration.as_secs_f64()) / self.leads as f64).ceil() as usize
    }

    pub fn total(&self) -> usize {
        self.events_per_lead() * self.leads
    }
}

/// Shared counters the test watches while the load runs.
#[derive(Default)]
pub struct Progress {
    /// Events acknowledged by every OU.
    pub accepted: AtomicUsize,
    /// Non-2xx answers that were retried, by status (0: no answer).
    pub retried: Mutex<BTreeMap<u16, usize>>,
    /// `Retry-After` values seen on retried answers.
    pub retry_after: Mutex<BTreeMap<u64, usize>>,
}

impl Progress {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn retried(&self) -> BTreeMap<u16, usize> {
        self.retried.lock().expect("progress").clone()
    }
}

/// One OU the load sends to: its client, its id and the prefix of its hook paths on the
/// receiver (empty for the default OU).
#[derive(Clone)]
pub struct Tenant {
    pub ou_id: String,
    pub api: Api,
    pub hooks: String,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tenant({}, hooks {:?})", self.ou_id, self.hooks)
    }
}

/// What was acknowledged: per lead, the event types in stream order — the same in every OU of
/// `tenants` (each lead's events go to every OU with the same lead id and producer ids).
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub leads: BTreeMap<String, Vec<&'static str>>,
    pub tenants: Vec<Tenant>,
}

impl Sent {
    pub fn total(&self) -> usize {
        self.leads.values().map(Vec::len).sum()
    }
}

pub fn lead_id(i: usize) -> String {
    format!("ld_e2e_{i:03}")
}

/// Event `k` of lead `i`: a fixed pseudo-random type (35% page view, 25% pricing, 15% demo
/// request, 25% unsubscribe) so every run sends the same stream.
pub fn event_type(i: usize, k: usize) -> &'static str {
    let mut x = (i as u64) << 32 | k as u64;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ 0xD1B5_4A32_D192_ED03;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    match (x >> 40) % 100 {
        0..=34 => "page_view",
        35..=59 => "pricing",
        60..=74 => "demo_request",
        _ => "unsubscribe",
    }
}

/// Run the load to the end (every event acknowledged in every OU of `tenants`) and say what
/// was sent. Event `k` of a lead goes to each OU in turn, with the same lead id and producer id;
/// `progress` counts it once all OUs acknowledged it. Panics when an event is still not
/// acknowledged `grace` after the planned end.
pub async fn run(
    tenants: Vec<Tenant>,
    spec: LoadSpec,
    progress: Arc<Progress>,
    grace: Duration,
) -> Sent {
    let start = Instant::now();
    let base_ms = leadstream_shared::ids::now_ms() - 3_600_000;
    let per_lead = spec.events_per_lead();
    let deadline = start + spec.duration + grace;
    let tasks: Vec<_> = (0..spec.leads)
        .map(|i| {
            let tenants = tenants.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let lead = lead_id(i);
                let mut types = Vec::with_capacity(per_lead);
                for k in 0..per_lead {
                    // Event k of lead i is due at (k·leads + i) / rate seconds.
                    let due = (k * spec.leads + i) as f64 / spec.rate;
                    tokio::time::sleep_until(start + Duration::from_secs_f64(due)).await;
                    let t = event_type(i, k);
                    let pid = format!("{lead}-{k}");
                    let body = json!({"event_id": pid, "event_type": t, "source_id": "e2e",
                        "lead_id": lead, "payload": {"k": k},
                        "timestamp": leadstream_shared::ids::rfc3339_ms(base_ms + 10 * k as i64)});
                    for tenant in &tenants {
                        send(&tenant.api, &body, &pid, &progress, deadline).await;
                    }
                    progress.accepted.fetch_add(1, Ordering::Relaxed);
                    types.push(t);
                }
                (lead, types)
            })
        })
        .collect();
    let mut sent = Sent {
        tenants,
        ..Sent::default()
    };
    for t in tasks {
        let (lead, types) = t.await.expect("lead sender");
        sent.leads.insert(lead, types);
    }
    sent
}

async fn send(api: &Api, body: &Value, pid: &str, progress: &Progress, deadline: Instant) {
    loop {
        match api.ingest(body, pid).await {
            Ingest::Accepted => return,
            Ingest::Retry {
                status,
                retry_after,
            } => {
                *progress
                    .retried
                    .lock()
                    .expect("progress")
                    .entry(status)
                    .or_insert(0) += 1;
                if let Some(s) = retry_after {
                    *progress
                        .retry_after
                        .lock()
                        .expect("progress")
                        .entry(s)
                        .or_insert(0) += 1;
                }
                assert!(
                    Instant::now() < deadline,
                    "event {pid} still not acknowledged at the deadline (last answer {status})"
                );
                let wait = retry_after.map_or(Duration::from_millis(200), Duration::from_secs);
                tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
            }
            Ingest::Rejected { status, body: b } => {
                panic!("ingest of {pid} {body} was rejected: {status} {b}")
            }
        }
    }
}

/// What the system must end up with for one lead (the independent oracle in `testkit`).
pub use leadstream_testkit::oracle::Expected;

/// The workload's rules, for the oracle.
pub const WORKLOAD: Workload<'static> = Workload {
    rules: &RULES,
    threshold: THRESHOLD,
    sequence: SEQUENCE,
};

/// The oracle, from the test's own copy of the rules (every event of a lead lies within the
/// sequence's hour).
pub fn expected(types: &[&str]) -> Expected {
    WORKLOAD.expected(types)
}

/// The oracle for every lead that was sent.
pub fn expected_all(sent: &Sent) -> BTreeMap<String, Expected> {
    sent.leads
        .iter()
        .map(|(l, t)| (l.clone(), expected(t)))
        .collect()
}
