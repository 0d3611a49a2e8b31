//! Property: over random event streams (positive and negative points, caps, typed and untyped
//! triggers, any thresholds), the engine's scores and firings equal a brute-force oracle that
//! recomputes every score from scratch and applies DESIGN.md's rule literally: a trigger fires
//! at event j iff its type matches, the score after j is ≥ T, and the score was below T at some
//! point since its previous firing (or ever, before the first). Hence never twice per crossing.

use super::tests::{event, ruleset, trigger};
use super::*;
use proptest::prelude::*;
use serde_json::json;

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
