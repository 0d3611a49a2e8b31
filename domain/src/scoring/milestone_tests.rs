//! Unit tests of milestone semantics (DESIGN.md "Processing semantics", seed 003): once per
//! crossing, re-arming, `event_type`, inactive triggers, the payload and simulation.

use super::tests::{event, fired, points, trigger, T0};
use super::*;
use crate::ids;
use serde_json::json;

#[test]
fn negative_points_rearm_and_fire_once_per_crossing() {
    let rs = points(&[("demo", 40), ("view", 5), ("unsubscribe", -20)]);
    let trg = trigger("trg_1", json!({"name": "hot", "score_threshold": 75}));
    let mut s = LeadScore::default();
    let mut run = |id: &str, t: &str| {
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            std::slice::from_ref(&trg),
            &event(id, t, T0, json!({})),
        )
    };
    assert!(run("e1", "demo").firings.is_empty()); // 40
    let first = run("e2", "demo"); // 80: crossing
    assert_eq!(fired(&first), ["trg_1"]);
    assert!(
        run("e3", "view").firings.is_empty(),
        "85: no refire above T"
    ); // 85
    assert!(run("e4", "unsubscribe").firings.is_empty()); // 65: re-armed
    let second = run("e5", "demo"); // 105: crossing again
    assert_eq!(fired(&second), ["trg_1"]);
    assert_eq!(second.firings[0].crossing, 2);
    assert_ne!(first.firings[0].fired_id, second.firings[0].fired_id);
    assert_eq!(
        second.firings[0].fired_id,
        ids::derived_id("fir", &["trg_1", "ld_123", "2"])
    );
}

#[test]
fn event_type_trigger_waits_for_its_type_after_the_crossing() {
    let rs = points(&[("view", 30), ("demo_request", 10)]);
    let typed = trigger(
        "trg_t",
        json!({"name": "t", "event_type": "demo_request", "score_threshold": 50}),
    );
    let any = trigger("trg_any", json!({"name": "a", "score_threshold": 50}));
    let trgs = [typed, any];
    let mut s = LeadScore::default();
    let mut run = |id: &str, t: &str| {
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            &trgs,
            &event(id, t, T0, json!({})),
        )
    };
    assert!(run("e1", "view").firings.is_empty()); // 30
    assert_eq!(
        fired(&run("e2", "view")),
        ["trg_any"],
        "crossing on another type: only the untyped trigger"
    ); // 60
    assert!(run("e3", "view").firings.is_empty()); // 90
    assert_eq!(
        fired(&run("e4", "demo_request")),
        ["trg_t"],
        "next event of type E fires"
    ); // 100
    assert!(
        run("e5", "demo_request").firings.is_empty(),
        "once per crossing"
    ); // 110
}

#[test]
fn new_trigger_for_a_lead_above_threshold_waits_for_a_crossing() {
    let rs = points(&[("view", 60), ("unsubscribe", -100)]);
    let trg = trigger("trg_1", json!({"name": "t", "score_threshold": 50}));
    let mut s = LeadScore::default();
    apply(
        &mut s,
        std::slice::from_ref(&rs),
        &[],
        &event("e1", "view", T0, json!({})),
    ); // 60, no trigger yet
    let out = apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e2", "view", T0, json!({})),
    ); // 120
    assert!(out.firings.is_empty());
    assert!(!s.milestones["trg_1"].armed);
    apply(
        &mut s,
        std::slice::from_ref(&rs),
        std::slice::from_ref(&trg),
        &event("e3", "unsubscribe", T0, json!({})),
    ); // 20
    let out = apply(&mut s, &[rs], &[trg], &event("e4", "view", T0, json!({}))); // 80
    assert_eq!(fired(&out), ["trg_1"]);
}

#[test]
fn inactive_triggers_never_fire_and_reactivation_needs_a_crossing() {
    let rs = points(&[("view", 30), ("unsubscribe", -100)]);
    let mut trg = trigger(
        "trg_1",
        json!({"name": "t", "score_threshold": 50, "active": false}),
    );
    let mut s = LeadScore::default();
    let mut run = |id: &str, t: &str, trg: &MilestoneTrigger| {
        apply(
            &mut s,
            std::slice::from_ref(&rs),
            std::slice::from_ref(trg),
            &event(id, t, T0, json!({})),
        )
    };
    assert!(run("e1", "view", &trg).firings.is_empty()); // 30
    assert!(run("e2", "view", &trg).firings.is_empty(), "inactive"); // 60
    trg.active = true;
    assert!(
        run("e3", "view", &trg).firings.is_empty(),
        "crossed while inactive: no fire on reactivation"
    ); // 90
    trg.active = false;
    assert!(run("e4", "unsubscribe", &trg).firings.is_empty()); // -10
    assert!(run("e5", "view", &trg).firings.is_empty()); // 20
    assert!(
        run("e6", "view", &trg).firings.is_empty(),
        "crossing while inactive is consumed"
    ); // 50
    trg.active = true;
    assert!(run("e7", "unsubscribe", &trg).firings.is_empty()); // -50
    assert_eq!(run("e8", "view", &trg).firings.len(), 0); // -20
    assert_eq!(run("e9", "view", &trg).firings.len(), 0); // 10
    assert_eq!(run("e10", "view", &trg).firings.len(), 0); // 40
    assert_eq!(run("e11", "view", &trg).firings.len(), 1); // 70
}

#[test]
fn payload_matches_seed_003_field_for_field() {
    let rs = points(&[("demo_request", 82)]);
    let trg = trigger(
        "trigger-456",
        json!({"name": "Hot Lead Alert", "event_type": "demo_request",
        "score_threshold": 75, "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"]}),
    );
    let mut e = event(
        "evt-789",
        "demo_request",
        T0 + 35 * 60_000,
        json!({"source": "website", "page": "/pricing"}),
    );
    e.received_at_ms = e.event_time_ms + 5;
    let mut s = LeadScore::default();
    let out = apply(&mut s, &[rs], &[trg], &e);
    let seed = json!({
        "trigger": {"id": "trigger-456", "name": "Hot Lead Alert", "type": "milestone"},
        "event": {"id": "evt-789", "lead_id": "ld_123", "event_type": "demo_request",
            "metadata": {"source": "website", "page": "/pricing"},
            "created_at": "2025-01-15T10:35:00Z"},
        "score": 82
    });
    let f = out.firings[0].clone();
    assert_eq!(f.payload, seed);
    let rec = crate::firing::milestone(f, &e, 123);
    assert_eq!(
        (rec.kind, rec.score, rec.fired_at_ms),
        (crate::fired::TriggerKind::Milestone, 82, 123)
    );
    assert_eq!(
        (
            rec.ou_id.as_str(),
            rec.lead_id.as_str(),
            rec.event_id.as_str()
        ),
        ("unit_default", "ld_123", "evt-789")
    );
    assert_eq!(rec.targets.emails, ["sales@example.com"]);
    assert_eq!(
        rec.fired_id,
        ids::derived_id("fir", &["trigger-456", "ld_123", "1"])
    );
}

#[test]
fn simulate_explains_the_decision() {
    let trg = trigger(
        "trg_1",
        json!({"name": "t", "event_type": "demo", "score_threshold": 75, "active": false}),
    );
    let e = event("e", "demo", T0, json!({"page": "/p"}));
    let r = simulate(&trg, 70, 80, &e);
    assert!(r.would_fire && !r.trigger_active);
    assert_eq!(r.payload["score"], 80);
    assert_eq!(r.payload["event"]["metadata"]["page"], "/p");
    assert!(!simulate(&trg, 80, 90, &e).would_fire, "no crossing");
    assert!(!simulate(&trg, 10, 20, &e).would_fire);
    let other = event("e", "view", T0, json!({}));
    let r = simulate(&trg, 70, 80, &other);
    assert!(!r.would_fire && r.reason.contains("event_type demo"));
    // Against a lead's real state, without changing it.
    let rs = points(&[("demo", 40)]);
    let mut s = LeadScore::default();
    apply(&mut s, std::slice::from_ref(&rs), &[], &e);
    let before = s.clone();
    let r = simulate_for_lead(&s, &[rs], &trg, &e);
    assert!(r.would_fire, "{}", r.reason);
    assert_eq!(r.payload["score"], 80);
    assert_eq!(s, before);
}
