//! Milestone triggers (seed 003, DESIGN.md "Processing semantics"): a trigger with threshold T
//! and optional event type E is *armed* while the lead's score is below T; it fires on the
//! first event (of type E, when set) after which the score is ≥ T, and is then disarmed until
//! the score is below T again — at an event's start (after decay) or end (after its points).
//! A trigger with no state for a lead starts armed iff the score before the event is below T,
//! so a new trigger never fires for a lead already above T without a fresh crossing. Inactive
//! triggers never fire; while inactive, a lead's crossing is consumed (armed = score < T), so
//! reactivating does not fire for leads that crossed meanwhile.

use super::state::{LeadScore, MilestoneState};
use crate::event::EngagementEvent;
use crate::fired::Targets;
use crate::ids;
use crate::model::trigger::MilestoneTrigger;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One firing, ready to become a [`TriggerFired`](crate::fired::TriggerFired) record ([`crate::firing::milestone`]).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MilestoneFiring {
    /// `ids::derived_id("fir", [trigger_id, lead_id, crossing])`: a replay of the same
    /// state and event gives the same id, so delivery is idempotent.
    pub fired_id: String,
    pub trigger_id: String,
    pub trigger_name: String,
    pub lead_id: String,
    pub event_id: String,
    /// 1 for the lead's first firing of this trigger, 2 for the second, …
    pub crossing: u64,
    /// The lead's total score after the event.
    pub score: i64,
    /// The seed 003 webhook body.
    pub payload: Value,
    pub targets: Targets,
}

/// The seed 003 webhook payload. `created_at` is the event time.
pub fn payload(
    trigger: &MilestoneTrigger,
    event: &EngagementEvent,
    lead_id: &str,
    score: i64,
) -> Value {
    json!({
        "trigger": {"id": trigger.id, "name": trigger.name, "type": "milestone"},
        "event": {
            "id": event.event_id,
            "lead_id": lead_id,
            "event_type": event.event_type,
            "metadata": Value::Object(event.metadata.clone()),
            "created_at": ids::rfc3339_ms(event.event_time_ms),
        },
        "score": score,
    })
}

/// Updates every trigger's state for one event and returns the firings.
pub(crate) fn evaluate(
    state: &mut LeadScore,
    triggers: &[MilestoneTrigger],
    event: &EngagementEvent,
    lead_id: &str,
    before: i64,
    after: i64,
) -> Vec<MilestoneFiring> {
    let mut firings = Vec::new();
    for trigger in triggers {
        let t = trigger.score_threshold;
        if !trigger.active {
            if let Some(m) = state.milestones.get_mut(&trigger.id) {
                m.armed = after < t;
            }
            continue;
        }
        let m = match state.milestones.get_mut(&trigger.id) {
            Some(m) => {
                m.armed |= before < t;
                m
            }
            None => state
                .milestones
                .entry(trigger.id.clone())
                .or_insert(MilestoneState {
                    armed: before < t,
                    fired_count: 0,
                }),
        };
        if after < t {
            m.armed = true;
        } else if m.armed && trigger.matches_type(&event.event_type) {
            m.armed = false;
            m.fired_count += 1;
            let crossing = m.fired_count;
            firings.push(MilestoneFiring {
                fired_id: ids::derived_id("fir", &[&trigger.id, lead_id, &crossing.to_string()]),
                trigger_id: trigger.id.clone(),
                trigger_name: trigger.name.clone(),
                lead_id: lead_id.to_string(),
                event_id: event.event_id.clone(),
                crossing,
                score: after,
                payload: payload(trigger, event, lead_id, after),
                targets: trigger.targets(),
            });
        }
    }
    firings
}

/// What `POST /triggers/{id}/simulate` answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SimulateResult {
    pub would_fire: bool,
    /// Why (not), in a sentence.
    pub reason: String,
    /// The exact body it would send (also when it would not fire).
    pub payload: Value,
    /// Simulation ignores `active` (seed 003: test triggers before activating them); this says
    /// whether the trigger would currently be evaluated at all.
    pub trigger_active: bool,
}

/// Evaluates `trigger` for a supplied score change, as if the lead had no state for it (armed
/// iff `score_before` is below the threshold).
pub fn simulate(
    trigger: &MilestoneTrigger,
    score_before: i64,
    score_after: i64,
    event: &EngagementEvent,
) -> SimulateResult {
    let armed = score_before < trigger.score_threshold;
    explain(trigger, armed, score_before, score_after, event)
}

/// Evaluates `trigger` for `event` against a lead's real state and the current rulesets,
/// without changing anything (works on a copy).
pub fn simulate_for_lead(
    state: &LeadScore,
    rulesets: &[crate::model::ruleset::Ruleset],
    trigger: &MilestoneTrigger,
    event: &EngagementEvent,
) -> SimulateResult {
    let mut copy = state.clone();
    let mut t = trigger.clone();
    t.active = true;
    let out = super::apply(&mut copy, rulesets, std::slice::from_ref(&t), event);
    // Armed before the event's points: the state `apply` started from, or "no state" rules.
    let armed = match state.milestones.get(&trigger.id) {
        Some(m) => m.armed || out.score_before < t.score_threshold,
        None => out.score_before < t.score_threshold,
    };
    let mut r = explain(trigger, armed, out.score_before, out.score_after, event);
    r.would_fire = !out.firings.is_empty();
    r
}

fn explain(
    trigger: &MilestoneTrigger,
    armed: bool,
    before: i64,
    after: i64,
    event: &EngagementEvent,
) -> SimulateResult {
    let t = trigger.score_threshold;
    let lead_id = event.lead_id.as_deref().unwrap_or("");
    let (would_fire, reason) = if after < t {
        (false, format!("score {after} is below the threshold {t}"))
    } else if !armed {
        let r = format!(
            "score was already {before}, at or above the threshold {t}: the trigger fires once \
             per crossing and has not been re-armed by the score dropping below it"
        );
        (false, r)
    } else if !trigger.matches_type(&event.event_type) {
        let want = trigger.event_type.as_deref().unwrap_or("");
        let r = format!(
            "event type {} is not the trigger's event_type {want}; the trigger stays armed and \
             fires on the next {want} event while the score is at or above {t}",
            event.event_type
        );
        (false, r)
    } else {
        (
            true,
            format!("score {before} -> {after} reaches the threshold {t}"),
        )
    };
    SimulateResult {
        would_fire,
        reason,
        payload: payload(trigger, event, lead_id, after),
        trigger_active: trigger.active,
    }
}
