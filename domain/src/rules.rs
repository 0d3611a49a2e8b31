//! What one event does to a lead: [`OuRules::apply`] counts it, scores it against the OU's
//! rulesets, evaluates the milestone triggers, feeds the sequence matcher and returns the
//! firings as [`TriggerFired`] records (built by [`crate::firing`]).
//!
//! The processor calls it once per new event (replays and duplicates are filtered before), in
//! partition order, on the lead's [`LeadRecord`]; nothing here reads a store or a clock, so the
//! same record, rules, event and `now` always give the same record and firings.

use std::collections::HashMap;

use crate::event::EngagementEvent;
use crate::fired::TriggerFired;
use crate::firing;
use crate::lead::LeadRecord;
use crate::model::ruleset::Ruleset;
use crate::model::sequence::SequenceTrigger;
use crate::model::trigger::MilestoneTrigger;
use crate::scoring;
use crate::sequence::{ActiveSequences, SeqEvent};

/// An OU's configuration, prepared once per version for applying events: its rulesets,
/// milestone triggers and sequence triggers (inactive ones included; they never score or fire).
#[derive(Debug, Clone, Default)]
pub struct OuRules {
    rulesets: Vec<Ruleset>,
    triggers: Vec<MilestoneTrigger>,
    sequences: HashMap<String, SequenceTrigger>,
    active: ActiveSequences,
}

impl OuRules {
    /// Firings come out in the order of the slices given (milestone triggers first, then
    /// sequences), so pass them in a stable order (the processor uses creation order).
    pub fn new(
        rulesets: Vec<Ruleset>,
        triggers: Vec<MilestoneTrigger>,
        sequences: Vec<SequenceTrigger>,
    ) -> OuRules {
        OuRules {
            active: ActiveSequences::new(&sequences),
            sequences: sequences.into_iter().map(|s| (s.id.clone(), s)).collect(),
            rulesets,
            triggers,
        }
    }

    /// Apply one new event of the lead whose state is `rec`: count it, score it, evaluate the
    /// milestone triggers and, when an active sequence lists its type, feed it to the sequence
    /// matcher (whose buffer keeps at most `sequence_cap` events). Returns the firings, stamped
    /// `now_ms`: milestones in trigger order, then completed sequences. An event without a
    /// `lead_id` changes nothing (resolve aliases first).
    pub fn apply(
        &self,
        rec: &mut LeadRecord,
        event: &EngagementEvent,
        sequence_cap: usize,
        now_ms: i64,
    ) -> Vec<TriggerFired> {
        let Some(lead) = event.lead_id.as_deref() else {
            return Vec::new();
        };
        rec.events += 1;
        rec.last_event_at_ms = Some(
            rec.last_event_at_ms
                .map_or(event.event_time_ms, |t| t.max(event.event_time_ms)),
        );
        let outcome = scoring::apply(&mut rec.score, &self.rulesets, &self.triggers, event);
        let mut fired: Vec<TriggerFired> = outcome
            .firings
            .into_iter()
            .map(|f| firing::milestone(f, event, now_ms))
            .collect();
        if self.active.is_relevant(&event.event_type) {
            let matches = rec
                .seq
                .observe(lead, &self.active, &SeqEvent::from(event), sequence_cap);
            for m in matches {
                let Some(seq) = self.sequences.get(&m.sequence_id) else {
                    continue;
                };
                let f = firing::sequence(seq, &m, event, lead, outcome.score_after, now_ms);
                fired.push(f);
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;
    use crate::fired::TriggerKind;
    use crate::firing::HistoryEntry;
    use crate::model::ruleset::CreateRuleset;
    use crate::model::sequence::SequenceRequest;
    use crate::model::trigger::CreateTrigger;
    use serde_json::{json, Value};

    const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z
    const NOW: i64 = T0 + 5_000;

    fn event(id: &str, event_type: &str, at: i64) -> EngagementEvent {
        EngagementEvent {
            event_id: id.into(),
            org_id: "org_1".into(),
            ou_id: "unit_1".into(),
            lead_id: Some("ld_1".into()),
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

    fn rules() -> OuRules {
        let now = "2025-01-01T00:00:00Z";
        let rs: CreateRuleset = serde_json::from_value(json!({"name": "Engagement",
            "rules": [{"event_type": "demo_request", "points": 50},
                      {"event_type": "pricing_page_view", "points": 10}]}))
        .unwrap();
        let tr: CreateTrigger = serde_json::from_value(json!({"name": "Hot Lead",
            "score_threshold": 60, "webhook_url": "https://hooks.example.com/hot"}))
        .unwrap();
        let seq: SequenceRequest = serde_json::from_value(json!({"name": "Buying Intent",
            "event_types": ["pricing_page_view", "demo_request"], "window_seconds": 3600,
            "ordered": true, "emails": ["sales@example.com"]}))
        .unwrap();
        OuRules::new(
            vec![rs.validate("rs_1".into(), now).unwrap()],
            vec![tr.validate("tr_1".into(), now).unwrap()],
            vec![seq.into_trigger("seq_1".into(), now.into()).unwrap()],
        )
    }

    fn ev(f: &TriggerFired) -> Value {
        json!([
            f.kind.as_str(),
            f.trigger_id,
            f.event_id,
            f.score,
            f.fired_at_ms
        ])
    }

    #[test]
    fn one_event_fires_the_milestone_then_the_sequence() {
        let rules = rules();
        let mut rec = LeadRecord::default();
        let first = rules.apply(&mut rec, &event("e1", "pricing_page_view", T0), 16, NOW);
        assert!(first.is_empty());
        let fired = rules.apply(&mut rec, &event("e2", "demo_request", T0 + 1_000), 16, NOW);
        let got: Vec<Value> = fired.iter().map(ev).collect();
        assert_eq!(
            got,
            vec![
                json!(["milestone", "tr_1", "e2", 60, NOW]),
                json!(["sequence", "seq_1", "e2", 60, NOW]),
            ]
        );
        assert_eq!((rec.events, rec.last_event_at_ms), (2, Some(T0 + 1_000)));
        let seq = &fired[1];
        assert_eq!(seq.kind, TriggerKind::Sequence);
        assert_eq!(
            (seq.org_id.as_str(), seq.ou_id.as_str()),
            ("org_1", "unit_1")
        );
        assert_eq!(seq.targets.emails, vec!["sales@example.com".to_string()]);
        assert_eq!(seq.payload["events"][0]["id"], "e1");
        assert_eq!(
            fired[0].targets.webhook_url.as_deref(),
            Some("https://hooks.example.com/hot")
        );

        // The same state and event fire the same ids: replays are harmless.
        let mut again = LeadRecord::default();
        rules.apply(&mut again, &event("e1", "pricing_page_view", T0), 16, NOW);
        let replay = rules.apply(
            &mut again,
            &event("e2", "demo_request", T0 + 1_000),
            16,
            NOW + 1,
        );
        let ids = |v: &[TriggerFired]| v.iter().map(|f| f.fired_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&replay), ids(&fired));

        let h = HistoryEntry::of(seq);
        assert_eq!(
            (h.id.as_str(), h.fired_at.as_str()),
            (seq.fired_id.as_str(), "2025-01-15T10:00:05Z")
        );
        let back: HistoryEntry = serde_json::from_slice(&h.encode().unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn an_event_without_a_lead_changes_nothing() {
        let mut e = event("e1", "demo_request", T0);
        e.lead_id = None;
        let mut rec = LeadRecord::default();
        assert!(rules().apply(&mut rec, &e, 16, NOW).is_empty());
        assert_eq!(rec, LeadRecord::default());
    }
}
