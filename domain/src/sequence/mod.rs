//! Windowed sequence matching (seed 004, DESIGN "Processing semantics"): pure, no I/O.
//!
//! The pipeline keeps one [`SequenceBuffer`] per lead (JSON in Redis), builds an
//! [`ActiveSequences`] whenever the OU's sequences change, and calls
//! [`SequenceBuffer::observe`] for each event of the lead; every [`SequenceMatch`] becomes a
//! `TriggerFired` with [`payload`]. `POST /sequences/{id}/simulate` uses [`simulate`].
//!
//! Semantics, in the order `observe` applies them:
//! - Only active sequences count; an event whose type no active sequence lists changes nothing
//!   (so the pipeline may skip loading the buffer for it).
//! - Duplicates: an event whose id is in the buffer, or was recently used by a match and then
//!   evicted (the last [`USED_IDS_KEPT`] such ids), is ignored.
//! - Watermark: the newest event time seen (relevant events only). An event older than the
//!   largest active window relative to the watermark is dropped; for each sequence, only events
//!   with `time >= watermark - window` take part (inclusive).
//! - Memory: the buffer keeps events of listed types inside the largest window, at most `cap`
//!   of them (oldest by event time evicted first; an evicted new event fires nothing).
//! - Order: events are ordered by (event time, arrival); equal event times count in the order
//!   they arrived. Ordered sequences need the listed types in that strict order.
//! - A match is `len(event_types)` distinct events, one per listed step, including the new
//!   event, none used before by this sequence, first to last within `window_seconds`
//!   (inclusive: `last - first <= window`), consecutive ones (by event time) at most
//!   `max_gap_seconds` apart when set. Matched events are used up for that sequence only.
//! - Newest wins: among all matches, the one whose events, sorted newest first, are
//!   lexicographically greatest by (event time, arrival): the newest possible last event, then
//!   the newest possible second-to-last given that, and so on.
//! - Because every arrival consumes the match it completes, the buffer never holds a complete
//!   unused set for a sequence; a match is searched only among sets that include the new event.

mod search;

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};

use crate::{event::EngagementEvent, ids, model::sequence::SequenceTrigger};
use serde::{Deserialize, Serialize};

use search::Compiled;

/// Default per-lead buffer cap (events).
pub const DEFAULT_CAP: usize = 256;
/// How many ids of used-then-evicted events a buffer remembers for dedupe.
pub const USED_IDS_KEPT: usize = 64;

/// The part of an event a sequence looks at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SeqEvent {
    pub id: String,
    pub event_type: String,
    /// Event time (`timestamp` / `occurredAt`), Unix milliseconds.
    pub time_ms: i64,
}

impl SeqEvent {
    pub fn new(id: impl Into<String>, event_type: impl Into<String>, time_ms: i64) -> Self {
        SeqEvent {
            id: id.into(),
            event_type: event_type.into(),
            time_ms,
        }
    }
}

impl From<&EngagementEvent> for SeqEvent {
    fn from(e: &EngagementEvent) -> Self {
        SeqEvent::new(e.event_id.clone(), e.event_type.clone(), e.event_time_ms)
    }
}

/// One completed sequence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SequenceMatch {
    pub sequence_id: String,
    /// The matched events in step order: `events[i].event_type == event_types[i]`.
    pub events: Vec<SeqEvent>,
    /// `derived_id("fir", [sequence_id, lead_id, event ids in step order…])`.
    pub fired_id: String,
}

/// The active sequences of one OU, prepared once per configuration change.
#[derive(Clone, Debug, Default)]
pub struct ActiveSequences {
    seqs: Vec<Compiled>,
    /// Event type → (its number, indices of the sequences listing it, in input order).
    by_type: HashMap<String, (u32, Vec<usize>)>,
    horizon_ms: i64,
}

impl ActiveSequences {
    /// Keeps the active ones; inactive sequences never fire.
    pub fn new(all: &[SequenceTrigger]) -> Self {
        let mut set = ActiveSequences::default();
        for s in all.iter().filter(|s| s.active) {
            let Some(mut c) = Compiled::new(s) else {
                continue;
            };
            let i = set.seqs.len();
            for ty in &c.distinct {
                let next = set.by_type.len() as u32;
                let entry = set.by_type.entry(ty.clone()).or_insert((next, Vec::new()));
                entry.1.push(i);
                c.type_ids.push(entry.0);
            }
            set.horizon_ms = set.horizon_ms.max(c.window_ms);
            set.seqs.push(c);
        }
        set
    }

    /// Does any active sequence list this event type?
    pub fn is_relevant(&self, event_type: &str) -> bool {
        self.by_type.contains_key(event_type)
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    fn type_id(&self, event_type: &str) -> u32 {
        self.by_type.get(event_type).map_or(u32::MAX, |(id, _)| *id)
    }
}

/// An event held for future matches. Short field names: this is stored per lead.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Buffered {
    #[serde(rename = "i")]
    id: String,
    #[serde(rename = "t")]
    event_type: String,
    #[serde(rename = "m")]
    time_ms: i64,
    /// Arrival number: breaks ties between equal event times.
    #[serde(rename = "s")]
    seq: u64,
    /// Ids of the sequences whose match used this event.
    #[serde(rename = "u", default)]
    used_by: Vec<String>,
}

impl Buffered {
    fn key(&self) -> (i64, u64) {
        (self.time_ms, self.seq)
    }

    fn to_event(&self) -> SeqEvent {
        SeqEvent::new(self.id.clone(), self.event_type.clone(), self.time_ms)
    }
}

/// Per-lead matcher state; serialise it as JSON between events.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SequenceBuffer {
    #[serde(rename = "w", default)]
    watermark_ms: Option<i64>,
    #[serde(rename = "n", default)]
    next_seq: u64,
    /// Sorted by (time, arrival).
    #[serde(rename = "e", default)]
    events: Vec<Buffered>,
    #[serde(rename = "d", default)]
    used_ids: VecDeque<String>,
}

impl SequenceBuffer {
    /// Newest relevant event time seen for the lead.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// Number of buffered events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Feed one event of `lead_id`; returns the sequences it completed, in the order of the
    /// sequences given to [`ActiveSequences::new`]. Deterministic: the same buffer and event
    /// give the same matches and fired ids (a replay after a crash fires the same ids).
    pub fn observe(
        &mut self,
        lead_id: &str,
        active: &ActiveSequences,
        event: &SeqEvent,
        cap: usize,
    ) -> Vec<SequenceMatch> {
        let Some((_, seq_idx)) = active.by_type.get(&event.event_type) else {
            return Vec::new();
        };
        if !self.events.is_sorted_by_key(Buffered::key) {
            self.events.sort_by_key(Buffered::key); // only a hand-edited buffer gets here
        }
        if self.events.iter().any(|b| b.id == event.id) || self.used_ids.contains(&event.id) {
            return Vec::new();
        }
        let wm = self
            .watermark_ms
            .map_or(event.time_ms, |w| w.max(event.time_ms));
        if event.time_ms < wm.saturating_sub(active.horizon_ms) {
            return Vec::new();
        }
        self.watermark_ms = Some(wm);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        let new = Buffered {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            time_ms: event.time_ms,
            seq,
            used_by: Vec::new(),
        };
        let at = self.events.partition_point(|b| b.key() < new.key());
        self.events.insert(at, new);
        self.evict(active, wm, cap);
        let key = (event.time_ms, seq);
        let Ok(e_idx) = self.events.binary_search_by_key(&key, Buffered::key) else {
            return Vec::new(); // evicted by the cap: it was the oldest of a full buffer
        };
        // Type numbers once per event, so the per-sequence scans compare integers.
        let tys: Vec<u32> = self
            .events
            .iter()
            .map(|b| active.type_id(&b.event_type))
            .collect();
        let mut out = Vec::new();
        for &si in seq_idx {
            let Some(c) = active.seqs.get(si) else {
                continue;
            };
            let Some(picked) = c.find(&self.events, &tys, e_idx, wm) else {
                continue;
            };
            let mut parts: Vec<&str> = vec![&c.id, lead_id];
            parts.extend(
                picked
                    .iter()
                    .filter_map(|&i| self.events.get(i))
                    .map(|b| b.id.as_str()),
            );
            let fired_id = ids::derived_id("fir", &parts);
            let events = picked
                .iter()
                .filter_map(|&i| self.events.get(i))
                .map(Buffered::to_event);
            let events = events.collect();
            for &i in &picked {
                if let Some(b) = self.events.get_mut(i) {
                    b.used_by.push(c.id.clone());
                }
            }
            out.push(SequenceMatch {
                sequence_id: c.id.clone(),
                events,
                fired_id,
            });
        }
        out
    }

    /// Drop what no active sequence can use any more, then the oldest beyond `cap`.
    fn evict(&mut self, active: &ActiveSequences, wm: i64, cap: usize) {
        let cutoff = wm.saturating_sub(active.horizon_ms);
        let mut used = Vec::new();
        self.events.retain(|b| {
            let keep = b.time_ms >= cutoff && active.is_relevant(&b.event_type);
            if !keep && !b.used_by.is_empty() {
                used.push(b.id.clone());
            }
            keep
        });
        let over = self.events.len().saturating_sub(cap);
        for b in self.events.drain(..over) {
            if !b.used_by.is_empty() {
                used.push(b.id);
            }
        }
        self.used_ids.extend(used);
        while self.used_ids.len() > USED_IDS_KEPT {
            self.used_ids.pop_front();
        }
    }
}

/// The seed 004 webhook body for a match.
pub fn payload(seq: &SequenceTrigger, lead_id: &str, m: &SequenceMatch) -> serde_json::Value {
    let events: Vec<serde_json::Value> = m
        .events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "event_type": e.event_type,
                "created_at": ids::rfc3339_ms(e.time_ms),
            })
        })
        .collect();
    serde_json::json!({
        "trigger": {"id": seq.id, "name": seq.name, "type": "sequence"},
        "lead_id": lead_id,
        "sequence": seq.event_types,
        "events": events,
    })
}

/// One firing during a simulation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SimulatedFiring {
    pub fired_id: String,
    pub events: Vec<SeqEvent>,
    pub payload: serde_json::Value,
}

/// Answer of `POST /sequences/{id}/simulate`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SimulateResult {
    pub would_fire: bool,
    /// The events of the first firing (empty when it would not fire).
    pub events: Vec<SeqEvent>,
    /// The payload of the first firing.
    pub payload: Option<serde_json::Value>,
    /// Every firing, in order (a stream may complete the sequence more than once).
    pub firings: Vec<SimulatedFiring>,
}

/// Replays `events` in the given (arrival) order through a fresh buffer, as if `seq` were the
/// only sequence and active (so an inactive one can be tried before switching it on).
pub fn simulate(seq: &SequenceTrigger, lead_id: &str, events: &[SeqEvent]) -> SimulateResult {
    let mut s = seq.clone();
    s.active = true;
    let active = ActiveSequences::new(std::slice::from_ref(&s));
    let mut buf = SequenceBuffer::default();
    let firings: Vec<SimulatedFiring> = events
        .iter()
        .flat_map(|e| buf.observe(lead_id, &active, e, DEFAULT_CAP))
        .map(|m| SimulatedFiring {
            payload: payload(&s, lead_id, &m),
            fired_id: m.fired_id,
            events: m.events,
        })
        .collect();
    let first = firings.first();
    SimulateResult {
        would_fire: first.is_some(),
        events: first.map(|f| f.events.clone()).unwrap_or_default(),
        payload: first.map(|f| f.payload.clone()),
        firings,
    }
}
