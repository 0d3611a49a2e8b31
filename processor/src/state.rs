//! What the processor keeps per lead (one JSON value in Redis) and the history entries it
//! writes. The gateway reads both to answer `GET /leads/{id}`, `/milestone-events` and
//! `/sequence-events`.

use serde::{Deserialize, Serialize};

use crate::scoring::LeadScore;
use crate::sequence::SequenceBuffer;

/// A lead's processing state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LeadRecord {
    #[serde(default)]
    pub score: LeadScore,
    #[serde(default)]
    pub seq: SequenceBuffer,
    /// Event time of the newest event applied.
    #[serde(default)]
    pub last_event_at_ms: Option<i64>,
    /// Events applied (duplicates not counted).
    #[serde(default)]
    pub events: u64,
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
