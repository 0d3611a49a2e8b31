//! Firings: the [`HistoryEntry`] kept for each fired record in the OU's milestone / sequence
//! history (`GET /milestone-events`, `/sequence-events`).

use serde::{Deserialize, Serialize};

use crate::fired::TriggerFired;
use crate::ids::rfc3339_ms;

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
}
