//! One test per documented semantic of the sequence matcher, plus the seed 004 example.

use crate::{ids, model::sequence::SequenceTrigger};
use serde_json::json;

use super::*;

pub(super) fn seq(id: &str, types: &[&str], window_s: u64, ordered: bool) -> SequenceTrigger {
    SequenceTrigger {
        id: id.into(),
        name: format!("{id} name"),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        window_seconds: window_s,
        window_unit: None,
        ordered,
        max_gap_seconds: None,
        webhook_url: None,
        emails: vec![],
        email_subject: None,
        email_preheader: None,
        email_message: None,
        slack_webhook_url: None,
        teams_webhook_url: None,
        active: true,
        created_at: "2025-01-15T10:30:00Z".into(),
    }
}

/// An event at `t_s` seconds.
pub(super) fn ev(id: &str, ty: &str, t_s: i64) -> SeqEvent {
    SeqEvent::new(id, ty, t_s * 1000)
}

/// Feed events in arrival order; the firings as (sequence id, event ids in step order).
fn run_cap(
    seqs: &[SequenceTrigger],
    events: &[SeqEvent],
    cap: usize,
) -> Vec<(String, Vec<String>)> {
    let active = ActiveSequences::new(seqs);
    let mut buf = SequenceBuffer::default();
    events
        .iter()
        .flat_map(|e| buf.observe("ld_1", &active, e, cap))
        .map(|m| (m.sequence_id, m.events.into_iter().map(|e| e.id).collect()))
        .collect()
}

fn run(seqs: &[SequenceTrigger], events: &[SeqEvent]) -> Vec<(String, Vec<String>)> {
    run_cap(seqs, events, DEFAULT_CAP)
}

fn fired(id: &str, ids: &[&str]) -> (String, Vec<String>) {
    (id.into(), ids.iter().map(|s| s.to_string()).collect())
}

const BUYING: [&str; 3] = ["pricing_page_view", "whitepaper_download", "demo_request"];

#[test]
fn ordered_fires_in_order_with_other_events_between() {
    let s = seq("s", &BUYING, 3600, true);
    let evs = [
        ev("1", "pricing_page_view", 0),
        ev("x", "page_view", 1),
        ev("2", "whitepaper_download", 2),
        ev("y", "pricing_page_view", 3),
        ev("3", "demo_request", 4),
    ];
    // "y" is a newer pricing view but comes after the whitepaper, so "1" is the one that fits.
    assert_eq!(run(&[s], &evs), vec![fired("s", &["1", "2", "3"])]);
}

#[test]
fn ordered_does_not_fire_out_of_order() {
    let s = seq("s", &BUYING, 3600, true);
    let evs = [
        ev("2", "whitepaper_download", 0),
        ev("1", "pricing_page_view", 1),
        ev("3", "demo_request", 2),
    ];
    assert!(run(std::slice::from_ref(&s), &evs).is_empty());
    // Same-time events count in arrival order.
    let tie = [
        ev("1", "pricing_page_view", 5),
        ev("2", "whitepaper_download", 5),
        ev("3", "demo_request", 5),
    ];
    assert_eq!(run(std::slice::from_ref(&s), &tie).len(), 1);
    let tie_rev = [tie[1].clone(), tie[0].clone(), tie[2].clone()];
    assert!(run(&[s], &tie_rev).is_empty());
}

#[test]
fn unordered_fires_in_any_order() {
    let s = seq("s", &BUYING, 3600, false);
    let evs = [
        ev("3", "demo_request", 0),
        ev("1", "pricing_page_view", 1),
        ev("2", "whitepaper_download", 2),
    ];
    // Step order in the result, whatever the time order.
    assert_eq!(run(&[s], &evs), vec![fired("s", &["1", "2", "3"])]);
}

#[test]
fn a_type_listed_twice_needs_two_events() {
    for ordered in [true, false] {
        let s = seq("s", &["a", "b", "a"], 3600, ordered);
        let evs = [
            ev("a1", "a", 0),
            ev("b1", "b", 1),
            ev("b2", "b", 2),
            ev("a2", "a", 3),
        ];
        assert_eq!(run(std::slice::from_ref(&s), &evs[..3]), vec![]);
        assert_eq!(run(&[s], &evs), vec![fired("s", &["a1", "b2", "a2"])]);
    }
}

#[test]
fn window_is_inclusive_first_to_last() {
    for ordered in [true, false] {
        let s = seq("s", &["a", "b"], 10, ordered);
        let at = |t: i64| [ev("a", "a", 0), SeqEvent::new("b", "b", t)];
        assert_eq!(run(std::slice::from_ref(&s), &at(10_000)).len(), 1);
        assert!(run(&[s], &at(10_001)).is_empty());
    }
}

#[test]
fn seed_table_windows_work() {
    for w in [3600i64, 86_400, 604_800, 2_592_000] {
        let s = seq("s", &BUYING, w as u64, true);
        let evs = |last: i64| {
            [
                ev("1", BUYING[0], 1_000_000),
                ev("2", BUYING[1], 1_000_000 + w / 2),
                ev("3", BUYING[2], 1_000_000 + last),
            ]
        };
        assert_eq!(
            run(std::slice::from_ref(&s), &evs(w)).len(),
            1,
            "window {w}"
        );
        assert!(run(&[s], &evs(w + 1)).is_empty(), "window {w} + 1s");
    }
}

#[test]
fn max_gap_bounds_consecutive_steps() {
    for ordered in [true, false] {
        let mut s = seq("s", &["a", "b", "c"], 100, ordered);
        s.max_gap_seconds = Some(10);
        let ok = [ev("a", "a", 0), ev("b", "b", 10), ev("c", "c", 20)];
        assert_eq!(run(std::slice::from_ref(&s), &ok).len(), 1);
        let far = [ev("a", "a", 0), ev("b", "b", 11), ev("c", "c", 20)];
        assert!(run(std::slice::from_ref(&s), &far).is_empty());
        // The newest "b" (17) leaves a gap to "a"; the older one (9) bridges it.
        let bridge = [
            ev("a", "a", 0),
            ev("b1", "b", 9),
            ev("b2", "b", 17),
            ev("c", "c", 18),
        ];
        assert_eq!(run(&[s], &bridge), vec![fired("s", &["a", "b1", "c"])]);
    }
}

#[test]
fn once_per_completed_sequence_then_again_with_a_new_set() {
    let s = seq("s", &["a", "b"], 3600, true);
    let evs = [
        ev("a1", "a", 0),
        ev("b1", "b", 1),
        ev("b2", "b", 2), // a1 is used up: nothing
        ev("a2", "a", 3),
        ev("b3", "b", 4),
    ];
    let want = vec![fired("s", &["a1", "b1"]), fired("s", &["a2", "b3"])];
    assert_eq!(run(&[s], &evs), want);
}

#[test]
fn late_events_complete_but_too_old_ones_are_ignored() {
    let s = seq("s", &["a", "b", "c"], 100, true);
    // "b" arrives last but happened in the middle (historical import, skewed clock).
    let late = [ev("a", "a", 1000), ev("c", "c", 1050), ev("b", "b", 1020)];
    assert_eq!(
        run(std::slice::from_ref(&s), &late),
        vec![fired("s", &["a", "b", "c"])]
    );
    // Older than the window relative to the newest event seen (1200): ignored, even though
    // a, b, c would fit together.
    let old = [
        ev("a", "a", 1000),
        ev("c", "c", 1050),
        ev("n", "a", 1200),
        ev("b", "b", 1020),
    ];
    assert!(run(&[s], &old).is_empty());
}

#[test]
fn the_newest_events_win() {
    let s = seq("s", &["a", "b"], 3600, true);
    let evs = [
        ev("a1", "a", 0),
        ev("a2", "a", 5),
        ev("a3", "a", 9),
        ev("b", "b", 10),
    ];
    assert_eq!(
        run(std::slice::from_ref(&s), &evs),
        vec![fired("s", &["a3", "b"])]
    );
    // Unordered, late "b" at 10: the newest event of the match is maximised first, so the
    // "a" after it (20) wins over the one before it (0).
    let u = seq("u", &["a", "b"], 3600, false);
    let evs = [ev("a1", "a", 0), ev("a2", "a", 20), ev("b", "b", 10)];
    assert_eq!(run(&[u], &evs), vec![fired("u", &["a2", "b"])]);
}

#[test]
fn inactive_sequences_never_fire() {
    let mut s = seq("s", &["a"], 60, false);
    s.active = false;
    let active = ActiveSequences::new(&[s]);
    assert!(active.is_empty() && !active.is_relevant("a"));
    let mut buf = SequenceBuffer::default();
    assert!(buf.observe("ld", &active, &ev("1", "a", 0), 8).is_empty());
    assert!(buf.is_empty());
}

#[test]
fn duplicates_never_complete_twice() {
    let s = seq("s", &["a", "b"], 3600, false);
    let evs = [
        ev("a1", "a", 0),
        ev("a1", "a", 0),
        ev("b1", "b", 1),
        ev("b1", "b", 1),
    ];
    assert_eq!(run(std::slice::from_ref(&s), &evs).len(), 1);
    // Used, then evicted by the cap: still remembered.
    let active = ActiveSequences::new(&[s]);
    let mut buf = SequenceBuffer::default();
    for e in &evs[..3] {
        buf.observe("ld", &active, e, 2);
    }
    buf.observe("ld", &active, &ev("b2", "b", 5), 1);
    buf.observe("ld", &active, &ev("x", "b", 6), 1);
    assert!(!buf.events.iter().any(|b| b.id == "a1"));
    assert!(buf.observe("ld", &active, &ev("a1", "a", 7), 4).is_empty());
    assert!(!buf.events.iter().any(|b| b.id == "a1"));
}

#[test]
fn memory_is_bounded_by_relevance_window_and_cap() {
    let short = seq("s", &["a", "b"], 10, true);
    let long = seq("l", &["c", "d"], 100, true);
    let active = ActiveSequences::new(&[short, long]);
    let mut buf = SequenceBuffer::default();
    buf.observe("ld", &active, &ev("z", "page_view", 0), 8);
    assert!(buf.is_empty(), "types no sequence lists are not kept");
    buf.observe("ld", &active, &ev("a0", "a", 0), 8);
    buf.observe("ld", &active, &ev("c1", "c", 50), 8);
    assert_eq!(buf.len(), 2, "inside the largest window");
    buf.observe("ld", &active, &ev("c2", "c", 101), 8);
    assert_eq!(buf.len(), 2, "a0 fell out of the largest window");
    assert_eq!(buf.watermark_ms(), Some(101_000));
    for i in 0..10 {
        buf.observe("ld", &active, &ev(&format!("x{i}"), "c", 110 + i), 4);
    }
    let kept: Vec<&str> = buf.events.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(kept, ["x6", "x7", "x8", "x9"], "oldest evicted first");
    // A new event older than everything in a full buffer is evicted at once and fires nothing.
    assert!(buf.observe("ld", &active, &ev("d", "d", 100), 4).is_empty());
    assert_eq!(buf.len(), 4);
}

#[test]
fn one_event_can_complete_two_sequences() {
    let s1 = seq("s1", &["a", "b"], 60, true);
    let s2 = seq("s2", &["b"], 60, false);
    let evs = [ev("a", "a", 0), ev("b", "b", 1)];
    let want = vec![fired("s1", &["a", "b"]), fired("s2", &["b"])];
    assert_eq!(run(&[s1, s2], &evs), want);
}

#[test]
fn extreme_times_and_cap_zero_do_not_panic() {
    let s = seq("s", &["a", "b"], 366 * 86_400, false);
    let evs = [
        SeqEvent::new("1", "a", i64::MIN),
        SeqEvent::new("2", "b", i64::MAX),
        SeqEvent::new("3", "a", i64::MAX),
        SeqEvent::new("4", "b", i64::MIN),
    ];
    assert_eq!(
        run(std::slice::from_ref(&s), &evs),
        vec![fired("s", &["3", "2"])]
    );
    assert!(run_cap(&[s], &evs, 0).is_empty());
}

#[test]
fn buffer_state_round_trips_as_json_and_binary() {
    let s = seq("s", &["a", "b"], 60, true);
    let active = ActiveSequences::new(&[s]);
    let mut buf = SequenceBuffer::default();
    buf.observe("ld", &active, &ev("a1", "a", 1), 8);
    let text = serde_json::to_string(&buf).unwrap();
    assert_eq!(
        text,
        r#"{"w":1000,"n":1,"e":[{"i":"a1","t":"a","m":1000,"s":0,"u":[]}],"d":[]}"#
    );
    // States written before every field was always present still read.
    let old: SequenceBuffer =
        serde_json::from_str(r#"{"w":1000,"n":1,"e":[{"i":"a1","t":"a","m":1000,"s":0}]}"#)
            .unwrap();
    assert_eq!(old, buf);
    let mut back: SequenceBuffer = serde_json::from_str(&text).unwrap();
    let binary: SequenceBuffer =
        postcard::from_bytes(&postcard::to_allocvec(&buf).unwrap()).unwrap();
    assert_eq!(binary, back);
    assert_eq!(back.observe("ld", &active, &ev("b1", "b", 2), 8).len(), 1);
}

fn seed_sequence() -> SequenceTrigger {
    let mut s = seq("seq-456", &BUYING, 604_800, true);
    s.name = "Buying Intent Sequence".into();
    s
}

fn seed_events() -> Vec<SeqEvent> {
    let at = |s: &str| ids::parse_rfc3339_ms(s).unwrap();
    vec![
        SeqEvent::new("evt-001", BUYING[0], at("2025-01-10T09:00:00Z")),
        SeqEvent::new("evt-002", BUYING[1], at("2025-01-12T14:30:00Z")),
        SeqEvent::new("evt-003", BUYING[2], at("2025-01-14T11:00:00Z")),
    ]
}

#[test]
fn seed_004_payload() {
    let s = seed_sequence();
    let active = ActiveSequences::new(std::slice::from_ref(&s));
    let mut buf = SequenceBuffer::default();
    let mut matches = vec![];
    for e in seed_events() {
        matches.extend(buf.observe("ld_123", &active, &e, DEFAULT_CAP));
    }
    assert_eq!(matches.len(), 1);
    let m = &matches[0];
    let ids = ["seq-456", "ld_123", "evt-001", "evt-002", "evt-003"];
    assert_eq!(m.fired_id, ids::derived_id("fir", &ids));
    let got = payload(&s, "ld_123", m);
    let seed = json!({
        "trigger": {"id": "seq-456", "name": "Buying Intent Sequence", "type": "sequence"},
        "lead_id": "ld_123",
        "sequence": ["pricing_page_view", "whitepaper_download", "demo_request"],
        "events": [
            {"id": "evt-001", "event_type": "pricing_page_view", "created_at": "2025-01-10T09:00:00Z"},
            {"id": "evt-002", "event_type": "whitepaper_download", "created_at": "2025-01-12T14:30:00Z"},
            {"id": "evt-003", "event_type": "demo_request", "created_at": "2025-01-14T11:00:00Z"}
        ]
    });
    // Field for field, times included: whole seconds are written as the seed writes them.
    assert_eq!(got, seed);
}

#[test]
fn simulate_reports_firings_and_payload() {
    let mut s = seed_sequence();
    s.active = false; // simulation works before switching a sequence on
    let r = simulate(&s, "ld_123", &seed_events());
    assert!(r.would_fire);
    assert_eq!(r.events, seed_events());
    assert_eq!(r.firings.len(), 1);
    assert_eq!(r.payload.as_ref().unwrap()["events"][2]["id"], "evt-003");
    let mut wrong = seed_events(); // whitepaper before pricing
    (wrong[0].time_ms, wrong[1].time_ms) = (wrong[1].time_ms, wrong[0].time_ms);
    let r = simulate(&s, "ld_123", &wrong);
    assert!(!r.would_fire && r.payload.is_none() && r.events.is_empty());
}
