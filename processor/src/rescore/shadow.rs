//! The shadow state of one partition's replay, in memory and free of I/O: the OU's leads as
//! its events give them under the job's rules ([`Shadow::apply`]), then merged with the live
//! states at the switch ([`Shadow::switch`]) or compared with them for a preview
//! ([`Shadow::compare`]).
//!
//! Memory: one [`LeadRecord`] per lead of the OU in the partition (plus, with
//! `fire_triggers`, its latest event) and the dedupe digests of the last dedupe TTL of
//! records. It does not grow with the length of the history beyond that window.

use std::collections::HashMap;

use leadstream_domain::event::EngagementEvent;
use leadstream_domain::fired::TriggerFired;
use leadstream_domain::firing;
use leadstream_domain::ids::{derived_id, LeadId, OuId};
use leadstream_domain::lead::LeadRecord;
use leadstream_domain::model::trigger::MilestoneTrigger;
use leadstream_domain::rules::OuRules;
use leadstream_domain::scoring::{self, MilestoneFiring, MilestoneState};
use leadstream_shared::keys::PartitionKeys;
use leadstream_shared::store::rescore::{LeadChange, MilestoneShift, PreviewPart};

use crate::engine::digest;

/// The rules a replay applies.
pub struct ReplayRules {
    pub rules: OuRules,
    /// The OU's milestone triggers (the rescore's own firings and the preview's shifts).
    pub triggers: Vec<MilestoneTrigger>,
    /// The OU's config version the rules were read at.
    pub version: i64,
}

pub struct Shadow {
    ou: String,
    since_ms: Option<i64>,
    rules: ReplayRules,
    keep_last: bool,
    sequence_cap: usize,
    dedupe_ttl_ms: i64,
    /// By lead id.
    pub leads: HashMap<String, LeadRecord>,
    /// The latest event applied per lead (kept only when the rescore fires triggers: the
    /// firing's payload names an event).
    last: HashMap<String, EngagementEvent>,
    /// Dedupe digest → Kafka timestamp of the record that applied it (fixed-size keys: no
    /// allocation per entry).
    seen: HashMap<[u8; 12], i64>,
    seen_pruned_at: usize,
    pub events_applied: u64,
    pub duplicates: u64,
    pub event_time_reached_ms: Option<i64>,
}

/// What the switch writes for one lead.
pub struct Switched {
    /// Lead states to write, by [`PartitionKeys::lead_field`].
    pub states: Vec<(String, LeadRecord)>,
    pub fired: Vec<TriggerFired>,
    pub scores_changed: u64,
}

impl Shadow {
    pub fn new(
        ou: &str,
        since_ms: Option<i64>,
        rules: ReplayRules,
        keep_last: bool,
        sequence_cap: usize,
        dedupe_ttl_ms: i64,
    ) -> Shadow {
        Shadow {
            ou: ou.to_string(),
            since_ms,
            rules,
            keep_last,
            sequence_cap,
            dedupe_ttl_ms,
            leads: HashMap::new(),
            last: HashMap::new(),
            seen: HashMap::new(),
            seen_pruned_at: 0,
            events_applied: 0,
            duplicates: 0,
            event_time_reached_ms: None,
        }
    }

    pub fn version(&self) -> i64 {
        self.rules.version
    }

    /// Apply one event of the partition, read at Kafka time `ts_ms`, as the live engine does:
    /// events of other OUs, before `since` or without a lead are skipped; a duplicate (same
    /// OU, source and producer id within the dedupe TTL) changes nothing.
    pub fn apply(&mut self, ts_ms: i64, event: &EngagementEvent) {
        if event.ou_id != self.ou {
            return;
        }
        if self.since_ms.is_some_and(|s| event.event_time_ms < s) {
            return;
        }
        let Some(lead) = event.lead_id.as_deref() else {
            return;
        };
        let mut d = [0u8; 12];
        d.copy_from_slice(&digest(&event.ou_id, &event.dedupe_id()));
        if let Some(at) = self.seen.get(&d) {
            if ts_ms.saturating_sub(*at) <= self.dedupe_ttl_ms {
                self.duplicates += 1;
                return;
            }
        }
        self.seen.insert(d, ts_ms);
        if self.seen.len() > 2 * self.seen_pruned_at.max(10_000) {
            let ttl = self.dedupe_ttl_ms;
            self.seen.retain(|_, at| ts_ms.saturating_sub(*at) <= ttl);
            self.seen_pruned_at = self.seen.len();
        }
        if !self.leads.contains_key(lead) {
            self.leads.insert(lead.to_string(), LeadRecord::default());
        }
        let rec = self.leads.get_mut(lead).expect("inserted above");
        // Firings of the past are not sent: they only move the milestone states.
        let _ = self.rules.rules.apply(rec, event, self.sequence_cap, 0);
        if self.keep_last {
            self.last.insert(lead.to_string(), event.clone());
        }
        self.events_applied += 1;
        self.event_time_reached_ms = Some(
            self.event_time_reached_ms
                .map_or(event.event_time_ms, |t| t.max(event.event_time_ms)),
        );
    }

    /// The lead fields the switch must write: every lead of the replay, and the `live` ones
    /// (leads of the OU the partition holds) that the replay did not see, which are reset.
    pub fn fields(&self, live: &[String]) -> Vec<String> {
        let ou = OuId(&self.ou);
        let mut out: Vec<String> = self
            .leads
            .keys()
            .map(|l| PartitionKeys::lead_field(ou, LeadId(l)))
            .collect();
        out.extend(live.iter().cloned());
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The states to write for `fields` (with their live states, `None` when absent or
    /// unreadable), and — when `fire_for` names the job (`fire_triggers`) — a firing for each
    /// active milestone trigger a lead now reaches from below, with the next crossing's
    /// deterministic id and `"rescore": {"job_id"}` added to its payload. Milestone crossing
    /// counts never go below the live ones, so no fired id is ever reused.
    pub fn switch(
        &self,
        fields: &[String],
        live: &[Option<LeadRecord>],
        fire_for: Option<&str>,
        now_ms: i64,
    ) -> Switched {
        let mut out = Switched {
            states: Vec::with_capacity(fields.len()),
            fired: Vec::new(),
            scores_changed: 0,
        };
        for (field, live) in fields.iter().zip(live) {
            let lead = lead_of(field);
            let mut new = self.leads.get(lead).cloned().unwrap_or_default();
            let after = new.score.score_at(now_ms);
            let before = live.as_ref().map_or(0, |l| l.score.score_at(now_ms));
            if before != after {
                out.scores_changed += 1;
            }
            if let Some(live) = live {
                for (id, m) in &live.score.milestones {
                    let threshold = self.threshold(id);
                    let e = new
                        .score
                        .milestones
                        .entry(id.clone())
                        .or_insert(MilestoneState {
                            armed: threshold.map_or(m.armed, |t| after < t),
                            fired_count: 0,
                        });
                    e.fired_count = e.fired_count.max(m.fired_count);
                }
            }
            if let Some(job_id) = fire_for {
                for t in self.rules.triggers.iter().filter(|t| t.active) {
                    if !(before < t.score_threshold && after >= t.score_threshold) {
                        continue;
                    }
                    let Some(event) = self.last.get(lead) else {
                        continue;
                    };
                    let m = new
                        .score
                        .milestones
                        .entry(t.id.clone())
                        .or_insert(MilestoneState {
                            armed: false,
                            fired_count: 0,
                        });
                    m.fired_count += 1;
                    m.armed = false;
                    let crossing = m.fired_count;
                    let f = MilestoneFiring {
                        fired_id: derived_id("fir", &[&t.id, lead, &crossing.to_string()]),
                        trigger_id: t.id.clone(),
                        trigger_name: t.name.clone(),
                        lead_id: lead.to_string(),
                        event_id: event.event_id.clone(),
                        crossing,
                        score: after,
                        payload: scoring::payload(t, event, lead, after),
                        targets: t.targets(),
                    };
                    let mut fired = firing::milestone(f, event, now_ms);
                    if let Some(body) = fired.payload.as_object_mut() {
                        body.insert("rescore".into(), serde_json::json!({ "job_id": job_id }));
                    }
                    out.fired.push(fired);
                }
            }
            out.states.push((field.clone(), new));
        }
        out
    }

    /// A preview's result: for each of `fields` (with its live state), the score before (live)
    /// and after (the replay), and how each milestone trigger's population moves.
    pub fn compare(
        &self,
        fields: &[String],
        live: &[Option<LeadRecord>],
        now_ms: i64,
    ) -> PreviewPart {
        let mut part = PreviewPart::default();
        for t in &self.rules.triggers {
            part.milestones.insert(
                t.id.clone(),
                MilestoneShift {
                    name: t.name.clone(),
                    threshold: t.score_threshold,
                    newly_reached: 0,
                    fell_below: 0,
                },
            );
        }
        for (field, live) in fields.iter().zip(live) {
            let lead = lead_of(field);
            let after = self.leads.get(lead).map_or(0, |r| r.score.score_at(now_ms));
            let before = live.as_ref().map_or(0, |l| l.score.score_at(now_ms));
            for t in &self.rules.triggers {
                let shift = part.milestones.get_mut(&t.id).expect("inserted above");
                let t = t.score_threshold;
                if before < t && after >= t {
                    shift.newly_reached += 1;
                } else if before >= t && after < t {
                    shift.fell_below += 1;
                }
            }
            part.add(LeadChange {
                lead_id: lead.to_string(),
                before,
                after,
                change: after - before,
            });
        }
        part
    }

    fn threshold(&self, trigger_id: &str) -> Option<i64> {
        self.rules
            .triggers
            .iter()
            .find(|t| t.id == trigger_id)
            .map(|t| t.score_threshold)
    }
}

/// The lead id of a [`PartitionKeys::lead_field`].
fn lead_of(field: &str) -> &str {
    field.split_once('\u{1f}').map_or(field, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadstream_domain::event::Origin;
    use leadstream_domain::model::ruleset::CreateRuleset;
    use leadstream_domain::model::trigger::CreateTrigger;
    use serde_json::json;

    const T0: i64 = 1_736_935_200_000;

    fn event(id: &str, lead: &str, event_type: &str, at: i64) -> EngagementEvent {
        EngagementEvent {
            event_id: id.into(),
            org_id: "org_1".into(),
            ou_id: "unit_1".into(),
            lead_id: Some(lead.into()),
            aliases: vec![],
            source: None,
            producer_event_id: None,
            event_type: event_type.into(),
            event_time_ms: at,
            received_at_ms: at,
            metadata: Default::default(),
            origin: Origin::Ingest,
            environment: None,
            severity: None,
        }
    }

    fn rules(points: i64) -> ReplayRules {
        let now = "2025-01-01T00:00:00Z";
        let rs: CreateRuleset = serde_json::from_value(json!({"name": "E",
            "rules": [{"event_type": "demo", "points": points}]}))
        .unwrap();
        let tr: CreateTrigger = serde_json::from_value(json!({"name": "Hot",
            "score_threshold": 50, "webhook_url": "https://hooks.example.com/hot"}))
        .unwrap();
        let rulesets = vec![rs.validate("rs_1".into(), now).unwrap()];
        let triggers = vec![tr.validate("tr_1".into(), now).unwrap()];
        ReplayRules {
            rules: OuRules::new(rulesets, triggers.clone(), vec![]),
            triggers,
            version: 1,
        }
    }

    fn field(lead: &str) -> String {
        PartitionKeys::lead_field(OuId("unit_1"), LeadId(lead))
    }

    /// The live state of a lead that got `n` demo events under the old rules.
    fn live(points: i64, n: usize) -> LeadRecord {
        let mut s = Shadow::new("unit_1", None, rules(points), false, 10, 1000);
        for i in 0..n {
            s.apply(T0, &event(&format!("e{i}"), "l1", "demo", T0 + i as i64));
        }
        s.leads.remove("l1").unwrap_or_default()
    }

    #[test]
    fn duplicates_other_ous_and_events_before_since_are_not_applied() {
        let mut s = Shadow::new("unit_1", Some(T0), rules(10), false, 10, 1000);
        s.apply(T0, &event("e1", "l1", "demo", T0));
        s.apply(T0 + 10, &event("e1", "l1", "demo", T0)); // duplicate within the TTL
        s.apply(T0 + 5000, &event("e1", "l1", "demo", T0)); // past the TTL: applied
        s.apply(T0, &event("e2", "l1", "demo", T0 - 1)); // before since
        let mut other = event("e3", "l1", "demo", T0);
        other.ou_id = "unit_2".into();
        s.apply(T0, &other);
        assert_eq!(s.events_applied, 2);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.leads["l1"].score.score_at(T0), 20);
    }

    #[test]
    fn the_switch_keeps_crossing_counts_resets_unseen_leads_and_fires_once() {
        // Live: 3 × 10 points (below 50). New rules: 3 × 20 = 60 (at or above 50).
        let mut s = Shadow::new("unit_1", None, rules(20), true, 10, 1000);
        for i in 0..3 {
            s.apply(T0, &event(&format!("e{i}"), "l1", "demo", T0 + i));
        }
        let mut old = live(10, 3);
        old.score.milestones.get_mut("tr_1").unwrap().fired_count = 4;
        let gone = live(30, 2); // 60 live, no event in the replay: reset to 0
        let fields = s.fields(&[field("l2")]);
        assert_eq!(fields, vec![field("l1"), field("l2")]);
        let quiet = s.switch(
            &fields,
            &[Some(old.clone()), Some(gone.clone())],
            None,
            T0 + 10,
        );
        assert!(quiet.fired.is_empty());
        assert_eq!(quiet.scores_changed, 2);
        let m = quiet.states[0].1.score.milestones["tr_1"];
        assert_eq!(m.fired_count, 4, "the live count is kept when larger");
        assert!(!m.armed, "the replay crossed 50: disarmed");
        let reset = &quiet.states[1].1;
        assert_eq!(reset.score.score_at(T0), 0);
        assert!(reset.score.milestones["tr_1"].armed);
        assert_eq!(reset.score.milestones["tr_1"].fired_count, 1);

        let loud = s.switch(&fields, &[Some(old), Some(gone)], Some("rsj_1"), T0 + 10);
        assert_eq!(loud.fired.len(), 1);
        let f = &loud.fired[0];
        assert_eq!(f.lead_id, "l1");
        assert_eq!(f.fired_id, derived_id("fir", &["tr_1", "l1", "5"]));
        assert_eq!(f.score, 60);
        assert_eq!(f.payload["rescore"]["job_id"], "rsj_1");
        assert_eq!(f.payload["trigger"]["id"], "tr_1");
        assert_eq!(loud.states[0].1.score.milestones["tr_1"].fired_count, 5);
        // Deterministic: the same inputs give the same firing.
        let again = s.switch(&fields, &[Some(live(10, 3)), None], Some("rsj_1"), T0 + 10);
        // (the replay's own past crossing counts: 1, so the rescore's is the second)
        assert_eq!(
            again.fired[0].fired_id,
            derived_id("fir", &["tr_1", "l1", "2"])
        );
    }

    #[test]
    fn a_preview_counts_buckets_and_milestone_shifts() {
        let mut s = Shadow::new("unit_1", None, rules(20), false, 10, 1000);
        for i in 0..3 {
            s.apply(T0, &event(&format!("e{i}"), "l1", "demo", T0 + i));
        }
        let fields = s.fields(&[field("l2")]);
        let p = s.compare(&fields, &[Some(live(10, 3)), Some(live(30, 2))], T0 + 10);
        assert_eq!(p.leads, 2);
        assert_eq!(p.changes["10..49"], 1); // 30 → 60
        assert_eq!(p.changes["-99..-50"], 1); // 60 → 0
        assert_eq!(p.milestones["tr_1"].newly_reached, 1);
        assert_eq!(p.milestones["tr_1"].fell_below, 1);
        assert_eq!(p.top[0].lead_id, "l2");
    }
}
