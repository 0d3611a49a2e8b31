//! Firings, built in one place: the [`TriggerFired`] record of a milestone crossing
//! ([`milestone`](fn@milestone)) or of a completed sequence ([`sequence`](fn@sequence)), and
//! the [`HistoryEntry`] kept for each in the OU's milestone / sequence history
//! (`GET /milestone-events`, `/sequence-events`).
//!
//! Every part of a fired record is a function of the trigger, the lead's state and the event,
//! except `fired_at_ms`, which the caller passes in (the processor's clock when it applied the
//! event). Fired ids are deterministic, so replaying an event fires the same ids again.

use serde::{Deserialize, Serialize};

use crate::event::EngagementEvent;
use crate::fired::{TriggerFired, TriggerKind};
use crate::ids::rfc3339_ms;
use crate::model::sequence::SequenceTrigger;
use crate::scoring::MilestoneFiring;
use crate::sequence::{self, SequenceMatch};

/// The record of a milestone crossing for `leadstream.triggers.fired.v1`. `event` is the
/// event that crossed (the one passed to [`crate::scoring::apply`]).
pub fn milestone(f: MilestoneFiring, event: &EngagementEvent, fired_at_ms: i64) -> TriggerFired {
    TriggerFired {
        fired_id: f.fired_id,
        org_id: event.org_id.clone(),
        ou_id: event.ou_id.clone(),
        lead_id: f.lead_id,
        trigger_id: f.trigger_id,
        trigger_name: f.trigger_name,
        kind: TriggerKind::Milestone,
        event_id: f.event_id,
        fired_at_ms,
        score: f.score,
        payload: f.payload,
        targets: f.targets,
    }
}

/// The record of a completed sequence: `event` completed `m` for `lead_id`, whose total score
/// after the event is `score`.
pub fn sequence(
    seq: &SequenceTrigger,
    m: &SequenceMatch,
    event: &EngagementEvent,
    lead_id: &str,
    score: i64,
    fired_at_ms: i64,
) -> TriggerFired {
    TriggerFired {
        fired_id: m.fired_id.clone(),
        org_id: event.org_id.clone(),
        ou_id: event.ou_id.clone(),
        lead_id: lead_id.to_string(),
        trigger_id: seq.id.clone(),
        trigger_name: seq.name.clone(),
        kind: TriggerKind::Sequence,
        event_id: event.event_id.clone(),
        fired_at_ms,
        score,
        payload: sequence::payload(seq, lead_id, m),
        targets: seq.targets(),
    }
}

/// One firing, as kept in the milestone / sequence history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub id: String,
    pub trigger_id: String,
    pub trigger_name: String,
    pub lead_id: String,
    pub event_id: String,
    pub score: i64,
    pub fired_at: String,
    pub payload: serde_json::Value,
}

impl HistoryEntry {
    /// The entry of a firing: a function of the fired record alone, so writing it again (after
    /// a crash) adds nothing to the history's sorted set.
    pub fn of(f: &TriggerFired) -> HistoryEntry {
        HistoryEntry {
            id: f.fired_id.clone(),
            trigger_id: f.trigger_id.clone(),
            trigger_name: f.trigger_name.clone(),
            lead_id: f.lead_id.clone(),
            event_id: f.event_id.clone(),
            score: f.score,
            fired_at: rfc3339_ms(f.fired_at_ms),
            payload: f.payload.clone(),
        }
    }

    /// The stored form: a member of the history's sorted set (JSON).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| e.to_string())
    }
}
