//! The human-readable facts of a firing, shared by the email and chat renderers.
//!
//! The webhook body is the seed payload verbatim; people (email, Slack, Teams) get a summary:
//! the trigger, the lead, the score, the event that completed it with its metadata, and for a
//! sequence the events that satisfied it. Everything is read defensively from the payload (it
//! is JSON from another service), falling back to the record's own fields.

use leadstream_domain::fired::{TriggerFired, TriggerKind};
use leadstream_shared::ids::rfc3339_ms;
use serde_json::Value;

/// One event line of a sequence (or the milestone's event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub id: String,
    pub event_type: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub trigger_id: String,
    pub trigger_name: String,
    pub kind: TriggerKind,
    pub lead_id: String,
    pub ou_id: String,
    pub score: i64,
    pub fired_at: String,
    /// The event that crossed the threshold (milestone) or completed the sequence.
    pub event: Option<EventLine>,
    /// `key: value` pairs of the milestone event's metadata, sorted by key.
    pub metadata: Vec<(String, String)>,
    /// The watched sequence (sequence triggers).
    pub sequence: Vec<String>,
    /// The events that satisfied the sequence.
    pub sequence_events: Vec<EventLine>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn event_line(v: &Value) -> EventLine {
    EventLine {
        id: text(v.get("id")),
        event_type: text(v.get("event_type")),
        created_at: text(v.get("created_at")),
    }
}

impl Summary {
    pub fn of(f: &TriggerFired) -> Summary {
        let p = &f.payload;
        let event_v = p.get("event");
        let event = event_v.map(event_line).or_else(|| {
            // A sequence's completing event is the last of its events.
            p.get("events")
                .and_then(Value::as_array)
                .and_then(|a| a.last())
                .map(event_line)
        });
        let mut metadata: Vec<(String, String)> = event_v
            .and_then(|e| e.get("metadata"))
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(Some(v)))).collect())
            .unwrap_or_default();
        metadata.sort();
        let sequence = p
            .get("sequence")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| text(Some(v))).collect())
            .unwrap_or_default();
        let sequence_events = p
            .get("events")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(event_line).collect())
            .unwrap_or_default();
        let score = p.get("score").and_then(Value::as_i64).unwrap_or(f.score);
        Summary {
            trigger_id: f.trigger_id.clone(),
            trigger_name: f.trigger_name.clone(),
            kind: f.kind,
            lead_id: f.lead_id.clone(),
            ou_id: f.ou_id.clone(),
            score,
            fired_at: rfc3339_ms(f.fired_at_ms),
            event,
            metadata,
            sequence,
            sequence_events,
        }
    }

    /// One line: "High Score Alert fired for lead ld_123 (score 82)".
    pub fn headline(&self) -> String {
        match self.kind {
            TriggerKind::Milestone => format!(
                "{} fired for lead {} (score {})",
                self.trigger_name, self.lead_id, self.score
            ),
            TriggerKind::Sequence => {
                format!("{} completed by lead {}", self.trigger_name, self.lead_id)
            }
        }
    }

    /// Label/value facts in display order.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("Lead", self.lead_id.clone()),
            (
                "Trigger",
                format!(
                    "{} ({}, {})",
                    self.trigger_name,
                    self.kind.as_str(),
                    self.trigger_id
                ),
            ),
            ("Score", self.score.to_string()),
        ];
        if !self.sequence.is_empty() {
            out.push(("Sequence", self.sequence.join(" → ")));
        }
        if let Some(e) = &self.event {
            out.push((
                "Event",
                format!("{} ({}) at {}", e.event_type, e.id, e.created_at),
            ));
        }
        out.push(("Fired at", self.fired_at.clone()));
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use leadstream_domain::fired::Targets;
    use serde_json::json;

    pub(crate) fn milestone() -> TriggerFired {
        TriggerFired {
            fired_id: "fir_1".into(),
            org_id: "org_default".into(),
            ou_id: "unit_default".into(),
            lead_id: "ld_123".into(),
            trigger_id: "trigger-456".into(),
            trigger_name: "Hot Lead Alert".into(),
            kind: TriggerKind::Milestone,
            event_id: "evt-789".into(),
            fired_at_ms: 1_736_937_300_000,
            score: 82,
            payload: json!({
                "trigger": {"id": "trigger-456", "name": "Hot Lead Alert", "type": "milestone"},
                "event": {"id": "evt-789", "lead_id": "ld_123", "event_type": "demo_request",
                          "metadata": {"source": "website", "page": "/pricing"},
                          "created_at": "2025-01-15T10:35:00Z"},
                "score": 82
            }),
            targets: Targets::default(),
        }
    }

    pub(crate) fn sequence() -> TriggerFired {
        let mut f = milestone();
        f.kind = TriggerKind::Sequence;
        f.trigger_id = "seq-456".into();
        f.trigger_name = "Buying Intent Sequence".into();
        f.payload = json!({
            "trigger": {"id": "seq-456", "name": "Buying Intent Sequence", "type": "sequence"},
            "lead_id": "ld_123",
            "sequence": ["pricing_page_view", "whitepaper_download", "demo_request"],
            "events": [
                {"id": "evt-001", "event_type": "pricing_page_view", "created_at": "2025-01-10T09:00:00Z"},
                {"id": "evt-002", "event_type": "whitepaper_download", "created_at": "2025-01-12T14:30:00Z"},
                {"id": "evt-003", "event_type": "demo_request", "created_at": "2025-01-14T11:00:00Z"}
            ]
        });
        f
    }

    #[test]
    fn milestone_summary() {
        let s = Summary::of(&milestone());
        assert_eq!(
            s.headline(),
            "Hot Lead Alert fired for lead ld_123 (score 82)"
        );
        assert_eq!(s.metadata[0], ("page".into(), "/pricing".into()));
        assert_eq!(s.event.as_ref().unwrap().event_type, "demo_request");
    }

    #[test]
    fn sequence_summary_and_odd_payloads() {
        let s = Summary::of(&sequence());
        assert_eq!(s.sequence_events.len(), 3);
        assert_eq!(s.event.as_ref().unwrap().id, "evt-003");
        assert!(s.facts().iter().any(|(k, _)| *k == "Sequence"));
        let mut f = milestone();
        f.payload = json!([1, 2]);
        let s = Summary::of(&f);
        assert_eq!(s.score, 82);
        assert!(s.event.is_none());
    }
}
