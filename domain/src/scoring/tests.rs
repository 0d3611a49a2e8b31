//! Unit tests of scoring and milestone semantics (DESIGN.md "Processing semantics").

use super::*;
use crate::event::Origin;
use crate::model::ruleset::CreateRuleset;
use crate::model::trigger::CreateTrigger;
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;
pub(super) const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z

pub(super) fn event(id: &str, event_type: &str, at: i64, metadata: Value) -> EngagementEvent {
    EngagementEvent {
        event_id: id.into(),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: Some("ld_123".into()),
        aliases: vec![],
        source: Some("website".into()),
        producer_event_id: None,
        event_type: event_type.into(),
        event_time_ms: at,
        received_at_ms: at,
        metadata: metadata.as_object().cloned().unwrap_or_default(),
        origin: Origin::Ingest,
        environment: None,
        severity: None,
    }
}

pub(super) fn ruleset(id: &str, body: Value) -> Ruleset {
    let req: CreateRuleset = serde_json::from_value(body).expect("ruleset body");
    req.validate(id.into(), "2025-01-01T00:00:00Z")
        .expect("valid ruleset")
}

pub(super) fn trigger(id: &str, body: Value) -> MilestoneTrigger {
    let req: CreateTrigger = serde_json::from_value(body).expect("trigger body");
    req.validate(id.into(), "2025-01-01T00:00:00Z")
        .expect("valid trigger")
}

/// A ruleset giving `pts` points per event type, no conditions.
pub(super) fn points(pairs: &[(&str, i64)]) -> Ruleset {
    let rules: Vec<Value> = pairs
        .iter()
        .map(|(t, p)| json!({"event_type": t, "points": p}))
        .collect();
    ruleset("rs_1", json!({"name": "Engagement", "rules": rules}))
}

pub(super) fn fired(out: &Outcome) -> Vec<&str> {
    out.firings.iter().map(|f| f.trigger_id.as_str()).collect()
}

#[test]
fn each_condition_op() {
    let e = event(
        "e",
        "page_view",
        T0,
        json!({"path": "/pricing", "n": 42, "s": "7", "tags": ["a", 3], "deep": {"x": [{"y": true}]}, "nil": null}),
    );
    let holds = |field: &str, op: &str, value: Value| {
        let mut c = json!({"field": field, "op": op});
        if !value.is_null() {
            c["value"] = value;
        }
        let rs = ruleset(
            "rs",
            json!({"name": "x", "rules": [{"event_type": "page_view", "points": 1, "conditions": [c]}]}),
        );
        rule_matches(&rs.rules[0], &e)
    };
    assert!(holds("metadata.path", "eq", json!("/pricing")));
    assert!(!holds("metadata.path", "eq", json!("/PRICING")));
    assert!(
        holds("metadata.n", "eq", json!(42.0)),
        "numbers compare by value"
    );
    assert!(
        !holds("metadata.s", "eq", json!(7)),
        "no string/number coercion for eq"
    );
    assert!(holds("metadata.path", "ne", json!("/docs")));
    assert!(
        holds("metadata.missing", "ne", json!("x")),
        "ne holds for an absent field"
    );
    assert!(!holds("metadata.path", "ne", json!("/pricing")));
    assert!(holds("metadata.path", "contains", json!("pric")));
    assert!(holds("metadata.tags", "contains", json!("a")));
    assert!(holds("metadata.tags", "contains", json!(3)));
    assert!(!holds("metadata.tags", "contains", json!("b")));
    assert!(!holds("metadata.n", "contains", json!(4)));
    assert!(holds("metadata.deep.x.0.y", "exists", Value::Null));
    assert!(holds("metadata.deep.x.0.y", "eq", json!(true)));
    assert!(
        !holds("metadata.nil", "exists", Value::Null),
        "null counts as absent"
    );
    assert!(holds("metadata.nope", "exists", json!(false)));
    assert!(!holds("metadata.path", "exists", json!(false)));
    assert!(holds("metadata.n", "gt", json!(41)) && !holds("metadata.n", "gt", json!(42)));
    assert!(holds("metadata.n", "gte", json!(42)) && !holds("metadata.n", "gte", json!(42.5)));
    assert!(holds("metadata.n", "lt", json!(42.5)) && !holds("metadata.n", "lt", json!(42)));
    assert!(holds("metadata.n", "lte", json!(42)) && !holds("metadata.n", "lte", json!(41)));
    assert!(
        holds("metadata.s", "gt", json!(6.5)),
        "numeric strings compare as numbers"
    );
    assert!(
        !holds("metadata.path", "gt", json!(0)),
        "non-numeric never compares"
    );
    assert!(!holds("metadata.missing", "lt", json!(100)));
    assert!(holds("source", "eq", json!("website")));
    assert!(holds("event_type", "contains", json!("view")));
    // Conditions are ANDed; `*` matches every type.
    let rs = ruleset(
        "rs",
        json!({"name": "x", "rules": [{"event_type": "*", "points": 1, "conditions": [
        {"field": "metadata.n", "op": "gt", "value": 40}, {"field": "metadata.path", "op": "eq", "value": "/docs"}]}]}),
    );
    assert!(!rule_matches(&rs.rules[0], &e));
}

#[test]
fn scores_sum_active_rulesets_with_explanations() {
    let a = points(&[("page_view", 5), ("demo_request", 50)]);
    let mut b = points(&[("page_view", 2)]);
    b.id = "rs_2".into();
    let mut s = LeadScore::default();
    let out = apply(
        &mut s,
        &[a.clone(), b.clone()],
        &[],
        &event("e1", "page_view", T0, json!({})),
    );
    assert_eq!((out.score_before, out.score_after), (0, 7));
    let why: Vec<(&str, &str, i64)> = out
        .contributions
        .iter()
        .map(|c| (c.ruleset_id.as_str(), c.rule_id.as_str(), c.points))
        .collect();
    assert_eq!(why, [("rs_1", "r1", 5), ("rs_2", "r1", 2)]);
    assert_eq!(s.contributions.len(), 2);
    assert_eq!(s.last_event_ms, Some(T0));
    // Deactivating a ruleset removes its points from the total and stops it scoring.
    b.active = false;
    let out = apply(
        &mut s,
        &[a.clone(), b.clone()],
        &[],
        &event("e2", "page_view", T0 + 1, json!({})),
    );
    assert_eq!((out.score_before, out.score_after), (5, 10));
    assert_eq!(
        s.ruleset_scores_at(T0 + 1).into_iter().collect::<Vec<_>>(),
        [("rs_1".to_string(), 10)]
    );
    b.active = true;
    let out = apply(
        &mut s,
        &[a, b],
        &[],
        &event("e3", "other", T0 + 2, json!({})),
    );
    assert_eq!(out.score_after, 12, "reactivated ruleset counts again");
    assert!(out.contributions.is_empty());
}

#[test]
fn max_points_caps_positive_and_negative_rules() {
    let rs = ruleset(
        "rs_1",
        json!({"name": "x", "rules": [
        {"event_type": "view", "points": 20, "max_points": 50},
        {"event_type": "bounce", "points": -15, "max_points": 40}]}),
    );
    let mut s = LeadScore::default();
    let got: Vec<i64> = (0..4)
        .map(|i| {
            apply(
                &mut s,
                std::slice::from_ref(&rs),
                &[],
                &event("e", "view", T0 + i, json!({})),
            )
            .contributions
            .iter()
            .map(|c| c.points)
            .sum()
        })
        .collect();
    assert_eq!(
        got,
        [20, 20, 10, 0],
        "the award is cut to what fits under the cap"
    );
    assert_eq!(s.score_at(T0 + 10), 50);
    let got: Vec<i64> = (0..4)
        .map(|i| {
            apply(
                &mut s,
                std::slice::from_ref(&rs),
                &[],
                &event("e", "bounce", T0 + 10 + i, json!({})),
            )
            .contributions
            .iter()
            .map(|c| c.points)
            .sum()
        })
        .collect();
    assert_eq!(
        got,
        [-15, -15, -10, 0],
        "negative rules are capped by magnitude"
    );
    assert_eq!(s.score_at(T0 + 20), 10);
}

#[test]
fn frequency_limits_hits_per_period() {
    let rs = ruleset(
        "rs_1",
        json!({"name": "x", "rules": [
        {"event_type": "view", "points": 1, "frequency": {"max": 2, "period_seconds": 3600}}]}),
    );
    let mut s = LeadScore::default();
    let mut score = |at: i64| {
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            &[],
            &event("e", "view", at, json!({})),
        )
        .score_after
    };
    assert_eq!(score(T0), 1);
    assert_eq!(score(T0 + 1000), 2);
    assert_eq!(
        score(T0 + 2000),
        2,
        "third hit within the hour is not scored"
    );
    assert_eq!(score(T0 + HOUR), 3, "the first hit left the window");
    assert_eq!(score(T0 + HOUR + 500), 3);
    assert_eq!(score(T0 + 3 * HOUR), 4);
    let hits = &s.rulesets["rs_1"].rules["r1"].hits;
    assert!(hits.len() <= 2, "hit times are bounded by max");
}

#[test]
fn decay_halves_per_half_life_and_rearms_a_trigger() {
    let rs = ruleset(
        "rs_1",
        json!({"name": "x", "decay": {"half_life_seconds": 3600},
        "rules": [{"event_type": "demo", "points": 100}, {"event_type": "view", "points": 10}]}),
    );
    let trg = trigger("trg_1", json!({"name": "hot", "score_threshold": 75}));
    let mut s = LeadScore::default();
    let out = apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e1", "demo", T0, json!({})),
    );
    assert_eq!(fired(&out), ["trg_1"]);
    assert_eq!(s.score_at(T0 + HOUR), 50, "read-time decay");
    assert_eq!(s.score_at(T0 + 2 * HOUR), 25);
    assert_eq!(s.score_at(T0 - HOUR), 100, "never decays backwards");
    assert_eq!(s.score_at(T0), 100, "reading changes nothing");
    // One half-life later: 50 + 10 = 60 < 75, the decay re-armed the trigger...
    let out = apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e2", "view", T0 + HOUR, json!({})),
    );
    assert_eq!((out.score_before, out.score_after), (50, 60));
    assert!(out.firings.is_empty());
    assert!(s.milestones["trg_1"].armed);
    // ...so the next crossing fires again, with a new fired id.
    let out = apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e3", "demo", T0 + HOUR, json!({})),
    );
    assert_eq!(out.score_after, 160);
    assert_eq!(out.firings[0].crossing, 2);
    // Decay alone (no event in between) can re-arm: 160 → 40 after two half-lives.
    let out = apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e4", "demo", T0 + 3 * HOUR, json!({})),
    );
    assert_eq!(
        (out.score_before, out.score_after, out.firings.len()),
        (40, 140, 1)
    );
    // A late event neither rewinds decay nor is decayed for its lateness.
    let out = apply(&mut s, &[rs], &[trg], &event("e5", "view", T0, json!({})));
    assert_eq!((out.score_before, out.score_after), (140, 150));
    assert_eq!(s.rulesets["rs_1"].updated_ms, T0 + 3 * HOUR);
}

#[test]
fn no_lead_no_effect_and_state_round_trips_and_stays_bounded() {
    let rs = ruleset(
        "rs_1",
        json!({"name": "x", "decay": {"half_life_seconds": 60}, "rules": [
        {"event_type": "view", "points": 1, "frequency": {"max": 100, "period_seconds": 60}}]}),
    );
    let trg = trigger("trg_1", json!({"name": "t", "score_threshold": 3}));
    let mut s = LeadScore::default();
    let mut anon = event("e", "view", T0, json!({}));
    anon.lead_id = None;
    assert_eq!(
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            std::slice::from_ref(&trg),
            &anon
        ),
        Outcome::default()
    );
    assert_eq!(s, LeadScore::default());
    for i in 0..120 {
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            std::slice::from_ref(&trg),
            &event(&format!("e{i}"), "view", T0 + i * 100, json!({})),
        );
    }
    assert_eq!(s.contributions.len(), MAX_CONTRIBUTIONS);
    assert_eq!(
        s.contributions.back().map(|c| c.event_id.as_str()),
        Some("e99")
    );
    // Events 100..119 fall in the same minute as the first 100 hits: frequency-limited.
    assert_eq!(s.rulesets["rs_1"].rules["r1"].hits.len(), 100);
    let text = serde_json::to_string(&s).unwrap();
    let back: LeadScore = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_decayed_cap_makes_room_again() {
    let rs = ruleset(
        "rs_1",
        json!({"name": "x", "decay": {"half_life_seconds": 3600},
        "rules": [{"event_type": "view", "points": 20, "max_points": 50}]}),
    );
    let mut s = LeadScore::default();
    let mut award = |at: i64| -> i64 {
        let out = apply(
            &mut s,
            std::slice::from_ref(&rs),
            &[],
            &event("e", "view", at, json!({})),
        );
        out.contributions.iter().map(|c| c.points).sum()
    };
    assert_eq!(
        [award(T0), award(T0), award(T0), award(T0)],
        [20, 20, 10, 0]
    );
    // One half-life later the rule's contribution is 25: 25 more points fit.
    assert_eq!([award(T0 + HOUR), award(T0 + HOUR)], [20, 5]);
}
