//! Property: over random event streams (positive and negative points, caps, typed and untyped
//! triggers, any thresholds), the engine's scores and firings equal a brute-force oracle that
//! recomputes every score from scratch and applies DESIGN.md's rule literally: a trigger fires
//! at event j iff its type matches, the score after j is ≥ T, and the score was below T at some
//! point since its previous firing (or ever, before the first). Hence never twice per crossing.

use super::tests::{event, ruleset, trigger, T0};
use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const TYPES: [&str; 3] = ["a", "b", "c"];

/// Brute force: per-rule cumulative awards with the cap, recomputed from the whole prefix.
fn oracle_score(rules: &[(usize, i64, Option<i64>)], events: &[usize]) -> i64 {
    rules
        .iter()
        .map(|&(ty, pts, cap)| {
            let mut total = 0i64;
            for _ in events.iter().filter(|&&e| e == ty) {
                let award = match cap {
                    Some(c) => pts.signum() * pts.abs().min(c - total.abs()),
                    None => pts,
                };
                total += award;
            }
            total
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn fires_once_per_crossing_like_the_oracle(
        rules in prop::collection::vec((0usize..3, -30i64..=30, prop::option::of(1i64..100)), 1..5),
        trigs in prop::collection::vec((-40i64..120, prop::option::of(0usize..3), any::<bool>()), 1..4),
        events in prop::collection::vec(0usize..3, 0..60),
    ) {
        let body: Vec<_> = rules.iter().map(|&(ty, pts, cap)| {
            json!({"event_type": TYPES[ty], "points": pts, "max_points": cap})
        }).collect();
        let rs = ruleset("rs_p", json!({"name": "p", "rules": body}));
        let triggers: Vec<MilestoneTrigger> = trigs.iter().enumerate().map(|(i, &(t, ty, active))| {
            trigger(&format!("trg_{i}"), json!({"name": "p", "score_threshold": t,
                "event_type": ty.map(|x| TYPES[x]), "active": active}))
        }).collect();

        let mut state = LeadScore::default();
        let mut scores = vec![0i64]; // scores[j] = score after j events
        let mut last_fire: Vec<Option<usize>> = vec![None; triggers.len()];
        for (j, &ty) in events.iter().enumerate() {
            let e = event(&format!("e{j}"), TYPES[ty], 1_000 + j as i64, json!({}));
            let out = apply(&mut state, std::slice::from_ref(&rs), &triggers, &e);
            let expected = oracle_score(&rules, &events[..=j]);
            prop_assert_eq!(out.score_before, scores[j]);
            prop_assert_eq!(out.score_after, expected);
            scores.push(expected);
            for (i, trg) in triggers.iter().enumerate() {
                let t = trg.score_threshold;
                let since = last_fire[i].map_or(0, |f| f + 1);
                let dipped = scores[since..=j].iter().any(|&s| s < t);
                let should = trg.active && trg.matches_type(TYPES[ty]) && expected >= t && dipped
;
                let did = out.firings.iter().any(|f| f.trigger_id == trg.id);
                prop_assert_eq!(did, should, "trigger {} at event {} scores {:?}", i, j, scores);
                if did {
                    last_fire[i] = Some(j + 1);
                }
            }
        }
    }
}

// ---------- The engine against the from-scratch oracle (`super::oracle`) ----------

use super::oracle::{self, Cond, Ev, OracleRule, OracleRuleset};

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![
        prop::sample::select(vec!["/p", "pricing", "/docs"]).prop_map(Cond::PathContains),
        (
            prop::sample::select(vec!["gt", "gte", "lt", "lte"]),
            0i64..10
        )
            .prop_map(|(op, v)| Cond::N(op, v)),
        prop::sample::select(vec!["web", "app"]).prop_map(Cond::SourceIs),
        any::<bool>().prop_map(Cond::HasN),
    ]
}

/// A rule of a decaying ruleset (points multiples of 64, no cap: see the oracle's docs) or of
/// a ruleset without decay (any points, caps).
fn oracle_rule(decays: bool) -> impl Strategy<Value = OracleRule> {
    let points = if decays {
        prop_oneof![(-2i64..=-1), (1i64..=3)]
            .prop_map(|p| p * 64)
            .boxed()
    } else {
        prop_oneof![(-30i64..=-1), (1i64..=30)].boxed()
    };
    let cap = if decays {
        Just(None).boxed()
    } else {
        prop::option::of(1i64..60).boxed()
    };
    (
        prop::option::weighted(0.8, 0usize..oracle::TYPES.len()),
        points,
        cap,
        prop::option::of((1usize..=3, 1i64..=5)),
        prop::collection::vec(cond(), 0..3),
    )
        .prop_map(|(ty, points, cap, frequency, conditions)| OracleRule {
            ty,
            points,
            cap,
            frequency,
            conditions,
        })
}

fn oracle_ruleset() -> impl Strategy<Value = OracleRuleset> {
    (prop::bool::weighted(0.85), any::<bool>()).prop_flat_map(|(active, decays)| {
        prop::collection::vec(oracle_rule(decays), 1..5).prop_map(move |rules| OracleRuleset {
            active,
            half_life: decays.then_some(1),
            rules,
        })
    })
}

fn oracle_event() -> impl Strategy<Value = Ev> {
    (
        0usize..oracle::TYPES.len(),
        0i64..=9,
        prop::sample::select(vec!["web", "app"]),
        prop::option::of(prop::sample::select(vec!["/pricing", "/home", "/docs/p"])),
        prop::option::of(0i64..10),
    )
        .prop_map(|(ty, at, source, path, n)| Ev {
            ty,
            at,
            source,
            path,
            n,
        })
}

fn to_ruleset(i: usize, o: &OracleRuleset) -> Ruleset {
    let rules: Vec<_> = o
        .rules
        .iter()
        .enumerate()
        .map(|(k, r)| {
            json!({
                "id": format!("r{k}"),
                "event_type": r.ty.map_or("*", |t| oracle::TYPES[t]),
                "points": r.points,
                "max_points": r.cap,
                "frequency": r.frequency.map(|(max, period)| json!({"max": max, "period_seconds": period})),
                "conditions": r.conditions.iter().map(Cond::to_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    ruleset(
        &format!("rs_{i}"),
        json!({"name": "p", "active": o.active, "rules": rules,
               "decay": o.half_life.map(|h| json!({"half_life_seconds": h}))}),
    )
}

fn to_event(j: usize, e: &Ev) -> EngagementEvent {
    let mut meta = serde_json::Map::new();
    if let Some(p) = e.path {
        meta.insert("path".into(), json!(p));
    }
    if let Some(n) = e.n {
        meta.insert("n".into(), json!(n));
    }
    let mut ev = event(
        &format!("e{j}"),
        oracle::TYPES[e.ty],
        T0 + e.at * 1000,
        Value::Object(meta),
    );
    ev.source = Some(e.source.into());
    ev
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Several rulesets (active or not, decaying or not), caps, frequency limits, conditions
    /// and events in any time order: after every event the engine's score equals the oracle's,
    /// and so does a later read.
    #[test]
    fn scores_equal_the_from_scratch_oracle(
        sets in prop::collection::vec(oracle_ruleset(), 1..4),
        events in prop::collection::vec(oracle_event(), 0..40),
    ) {
        let rulesets: Vec<Ruleset> = sets.iter().enumerate().map(|(i, o)| to_ruleset(i, o)).collect();
        let (expected, o) = oracle::scores(&sets, &events);
        let mut state = LeadScore::default();
        let mut before = 0;
        for (j, e) in events.iter().enumerate() {
            let out = apply(&mut state, &rulesets, &[], &to_event(j, e));
            // Before the event's points: the previous score decayed to the new clock.
            prop_assert_eq!(out.score_before, before_of(&sets, &events[..j], e, before));
            prop_assert_eq!(out.score_after, expected[j], "after event {} of {:?}", j, events);
            before = expected[j];
        }
        // Reads decay the same way: at the end of the generated time range.
        let end = o.clock().unwrap_or(0).max(9);
        prop_assert_eq!(state.score_at(T0 + end * 1000), o.score_at(end));
    }
}

/// The score before event `e` is applied: the oracle's score of the prefix, read at the clock
/// `e` brings (the previous score when nothing decays).
fn before_of(sets: &[OracleRuleset], prefix: &[Ev], e: &Ev, previous: i64) -> i64 {
    let (_, o) = oracle::scores(sets, prefix);
    match o.clock() {
        None => previous,
        Some(c) => o.score_at(c.max(e.at)),
    }
}
