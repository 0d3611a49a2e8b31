//! The rescore scenario's plan and oracle: the events of both phases, the old and new rules,
//! and what every lead must end with, computed here from the events (not taken from the
//! processor).

use std::collections::{BTreeMap, BTreeSet};

use leadstream_domain::event::EngagementEvent;

use crate::world::event;

pub(super) const LEADS: usize = 40;
/// Distinct events before the rules change.
pub(super) const PHASE1: usize = 1500;
/// Distinct live events while the rescore runs.
pub(super) const PHASE2: usize = 500;
/// A producer retry (same producer id, new event id) after every this many records.
pub(super) const RETRY_EVERY: usize = 25;
pub(super) const TRIGGER: &str = "trg_rescore";

/// The old rules (ruleset `rs_1` before the change).
pub(super) const OLD: &[(&str, i64)] = &[
    ("page_view", 5),
    ("pricing", 10),
    ("demo_request", 15),
    ("unsubscribe", -10),
];
/// The new rules (`rs_1` replaced): bigger points and a rule for a new type.
pub(super) const NEW: &[(&str, i64)] = &[
    ("page_view", 10),
    ("pricing", 30),
    ("demo_request", 60),
    ("unsubscribe", -20),
    ("webinar_attended", 40),
];
/// What lead `i` does before the rules change: profile `i % 4` (picked uniformly), so that
/// under the new rules some leads end far above the threshold and others below it.
pub(super) const PROFILES: [&[&str]; 4] = [
    &[
        "page_view",
        "webinar_attended",
        "demo_request",
        "unsubscribe",
        "unsubscribe",
    ],
    &[
        "page_view",
        "page_view",
        "pricing",
        "unsubscribe",
        "unsubscribe",
        "webinar_attended",
    ],
    &[
        "page_view",
        "pricing",
        "unsubscribe",
        "unsubscribe",
        "unsubscribe",
        "demo_request",
    ],
    &[
        "page_view",
        "page_view",
        "unsubscribe",
        "unsubscribe",
        "pricing",
    ],
];
/// Live types: ≤ 0 points under the new rules (`email_opened` has no rule).
pub(super) const LIVE_TYPES: [&str; 3] = ["unsubscribe", "email_opened", "email_opened"];

pub(super) fn points(rules: &[(&str, i64)], t: &str) -> i64 {
    rules.iter().find(|(r, _)| *r == t).map_or(0, |(_, p)| *p)
}

/// The oracle for one lead's distinct event types in stream order: final score, the highest
/// score on the way, and the milestone crossings (armed while below `threshold`, a crossing
/// on reaching it) under `rules`.
pub(super) fn score(rules: &[(&str, i64)], types: &[&str], threshold: i64) -> (i64, i64, u64) {
    let (mut s, mut max, mut crossings, mut armed) = (0, 0, 0, true);
    for t in types {
        s += points(rules, t);
        max = max.max(s);
        if s < threshold {
            armed = true;
        } else if armed {
            crossings += 1;
            armed = false;
        }
    }
    (s, max, crossings)
}

/// What one lead must end with.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    pub(super) events: u64,
    /// Under the new rules: after phase 1 alone, and at the end.
    pub(super) after_phase1: i64,
    pub(super) score: i64,
    /// New-rules crossings during phase 1 (the replay's own, never sent): the rescore's firing
    /// is crossing `replayed_crossings + 1` (phase 2 cannot add a crossing).
    pub(super) replayed_crossings: u64,
}

pub(super) struct Plan {
    pub(super) phase1: Vec<EngagementEvent>,
    pub(super) phase2: Vec<EngagementEvent>,
    pub(super) threshold: i64,
    pub(super) expected: BTreeMap<String, Expect>,
    pub(super) distinct1: u64,
    pub(super) distinct: u64,
}

/// A deterministic pseudo-random number source (LCG, as in `crash.rs`).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

impl Plan {
    pub(super) fn new() -> Plan {
        let mut rng = Lcg(0x2545_f491_4f6c_dd1d);
        let t0 = 1_700_000_000_000i64;
        let mut all: Vec<EngagementEvent> = Vec::new();
        let mut phase1 = Vec::new();
        for i in 0..PHASE1 {
            let l = rng.next(LEADS as u64) as usize;
            let profile = PROFILES[l % PROFILES.len()];
            let t = profile[rng.next(profile.len() as u64) as usize];
            let e = event(&format!("ld_{l}"), t, &format!("p1e{i}"), t0 + i as i64);
            phase1.push(e.clone());
            all.push(e);
            if i % RETRY_EVERY == RETRY_EVERY - 1 {
                let dup = retry(&all, &mut rng, i);
                phase1.push(dup);
            }
        }
        let mut phase2 = Vec::new();
        for i in 0..PHASE2 {
            // Even leads only: the odd ones keep their phase 1 score to the end.
            let l = 2 * rng.next(LEADS as u64 / 2) as usize;
            let t = LIVE_TYPES[rng.next(LIVE_TYPES.len() as u64) as usize];
            let e = event(
                &format!("ld_{l}"),
                t,
                &format!("p2e{i}"),
                t0 + (PHASE1 + i) as i64,
            );
            phase2.push(e.clone());
            all.push(e);
            if i % RETRY_EVERY == RETRY_EVERY - 1 {
                // A retry of any earlier record, phase 1 included: the live engine must drop
                // it after the switch as the replay drops it before.
                let dup = retry(&all, &mut rng, PHASE1 + i);
                phase2.push(dup);
            }
        }
        // Distinct events per lead, in stream order, per phase.
        let mut seen = BTreeSet::new();
        let mut types: BTreeMap<String, [Vec<&str>; 2]> = BTreeMap::new();
        let mut distinct1 = 0;
        for (ph, stream) in [&phase1, &phase2].into_iter().enumerate() {
            for e in stream {
                if seen.insert(e.dedupe_id()) {
                    let lead = e.lead_id.clone().expect("lead");
                    let t = PROFILES
                        .iter()
                        .flat_map(|p| p.iter())
                        .chain(LIVE_TYPES.iter())
                        .find(|t| **t == e.event_type)
                        .expect("type");
                    types.entry(lead).or_default()[ph].push(t);
                }
            }
            if ph == 0 {
                distinct1 = seen.len() as u64;
            }
        }
        assert_eq!(
            distinct1, PHASE1 as u64,
            "phase 1 duplicates are the retries"
        );
        assert_eq!(seen.len(), PHASE1 + PHASE2, "duplicates are the retries");
        // The threshold: just above the highest score any lead reaches under the old rules
        // (phase 2 scores ≤ 0 under either rules: it can only lower a score).
        let threshold = 1 + types
            .values()
            .map(|[p1, _]| score(OLD, p1, i64::MAX).1)
            .max()
            .expect("leads");
        let expected: BTreeMap<String, Expect> = types
            .iter()
            .map(|(lead, [p1, p2])| {
                let all: Vec<&str> = p1.iter().chain(p2.iter()).copied().collect();
                let (after_phase1, _, replayed_crossings) = score(NEW, p1, threshold);
                let (score, _, crossings) = score(NEW, &all, threshold);
                assert_eq!(
                    crossings, replayed_crossings,
                    "phase 2 cannot cross upwards"
                );
                let e = Expect {
                    events: all.len() as u64,
                    after_phase1,
                    score,
                    replayed_crossings,
                };
                (lead.clone(), e)
            })
            .collect();
        assert_eq!(expected.len(), LEADS, "every lead has events");
        Plan {
            phase1,
            phase2,
            threshold,
            expected,
            distinct1,
            distinct: seen.len() as u64,
        }
    }

    /// Leads that must fire exactly once (≥ T after phase 1 and at the end), that must not
    /// fire (< T after phase 1), and that may fire at most once (≥ T after phase 1, < T at
    /// the end: whether the rescore sees them at or above T depends on where the switch meets
    /// the live events of phase 2).
    pub(super) fn categories(&self) -> [BTreeSet<&str>; 3] {
        let t = self.threshold;
        let mut out: [BTreeSet<&str>; 3] = Default::default();
        for (lead, e) in &self.expected {
            let i = match (e.after_phase1 >= t, e.score >= t) {
                (true, true) => 0,
                (false, _) => 1,
                (true, false) => 2,
            };
            out[i].insert(lead.as_str());
        }
        out
    }
}

/// A producer retry of a random earlier record: same lead and producer id, a new event id.
fn retry(all: &[EngagementEvent], rng: &mut Lcg, i: usize) -> EngagementEvent {
    let mut dup = all[rng.next(all.len() as u64) as usize].clone();
    dup.event_id = format!("{}_retry{i}", dup.event_id);
    dup
}
