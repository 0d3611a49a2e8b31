//! The scoring and milestone engine: pure functions over one lead's [`LeadScore`] — no Kafka,
//! no Redis, no clock. The pipeline loads a lead's state, calls [`apply`] once per (deduped)
//! event in partition order, stores the state back and produces the returned firings; because
//! the same state and event always give the same result (and the same `fired_id`s), replaying
//! a batch after a crash is harmless.
//!
//! Per event, [`apply`]:
//! 1. copies each ruleset's `active` flag and half-life into the state;
//! 2. decays every active ruleset's score up to the lead's *clock*, `max(event time, latest
//!    event time seen)` — the **clock rule**: a historical import replayed in time order decays
//!    exactly as if it had happened live, wall-clock time never enters, and a late
//!    (out-of-order) event neither rewinds decay nor is decayed for its lateness: it counts as
//!    if it arrived at the lead's latest time, for decay and frequency limits alike. Reads decay
//!    the same way up to "now" ([`LeadScore::score_at`]);
//! 3. takes `score_before` (the total after decay), then lets every matching rule of every
//!    active ruleset score, respecting the rule's frequency limit (at most `max` scoring hits
//!    in the `period_seconds` up to the clock; hits are recorded at the clock) and its cap
//!    (`max_points` bounds the magnitude of the rule's current, decayed contribution; the award
//!    is cut to what fits, an integer); a rule that is limited or capped out contributes
//!    nothing and records no hit;
//! 4. takes `score_after` and evaluates the milestone triggers (see `milestone.rs`).
//!
//! Scores are kept in thousandths of a point (decay makes them fractional) and reported as
//! integers: each ruleset's score is rounded half away from zero and the total is the sum of
//! those (so the per-ruleset breakdown adds up to the total). Events
//! without a `lead_id` are not scored: resolve aliases first.

mod matching;
mod milestone;
mod state;

#[cfg(test)]
mod milestone_tests;
#[cfg(test)]
mod oracle;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use matching::{condition_holds, rule_matches};
pub use milestone::{payload, simulate, simulate_for_lead, MilestoneFiring, SimulateResult};
pub use state::{
    Contribution, LeadScore, MilestoneState, RuleState, RulesetScore, MAX_CONTRIBUTIONS,
};

use crate::event::EngagementEvent;
use crate::model::ruleset::{Rule, Ruleset};
use crate::model::trigger::MilestoneTrigger;
use serde::{Deserialize, Serialize};

/// What one event did to a lead.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The lead's total score after decay, before this event's points.
    pub score_before: i64,
    /// The lead's total score after this event.
    pub score_after: i64,
    /// The points this event earned, rule by rule (also appended to the state's history).
    pub contributions: Vec<Contribution>,
    /// Milestone triggers this event fired, in the order of the `triggers` slice.
    pub firings: Vec<MilestoneFiring>,
}

/// Scores `event` for the lead whose state is `state` and evaluates the milestone triggers.
/// `rulesets` and `triggers` are the OU's current configuration (inactive ones included or
/// not; they are skipped either way).
pub fn apply(
    state: &mut LeadScore,
    rulesets: &[Ruleset],
    triggers: &[MilestoneTrigger],
    event: &EngagementEvent,
) -> Outcome {
    let Some(lead_id) = event.lead_id.as_deref() else {
        return Outcome::default();
    };
    let at = event.event_time_ms;
    // The clock rule: a late event counts at the lead's latest time. (Judging a late event's
    // frequency limit at its own time counted hits later than it, and a ruleset's first award
    // from a late event was decayed for its lateness; the oracle property test found both.)
    let clock = state.last_event_ms.map_or(at, |t| t.max(at));
    state.sync_rulesets(rulesets);
    for rs in state.rulesets.values_mut().filter(|r| r.active) {
        rs.decay_to(clock);
    }
    let score_before = state.total();

    let mut contributions = Vec::new();
    for ruleset in rulesets.iter().filter(|r| r.active) {
        for rule in &ruleset.rules {
            if !rule_matches(rule, event) {
                continue;
            }
            let points = score_rule(state, ruleset, rule, clock);
            if points != 0 {
                contributions.push(Contribution {
                    event_id: event.event_id.clone(),
                    ruleset_id: ruleset.id.clone(),
                    rule_id: rule.id.clone(),
                    points,
                    at_ms: at,
                });
            }
        }
    }
    let score_after = state.total();
    let firings = milestone::evaluate(state, triggers, event, lead_id, score_before, score_after);
    state.remember(&contributions);
    state.last_event_ms = Some(state.last_event_ms.map_or(at, |t| t.max(at)));
    Outcome {
        score_before,
        score_after,
        contributions,
        firings,
    }
}

/// Awards a matching rule's points (0 when frequency-limited or capped out) and records them;
/// `at` is the lead's clock (never earlier than a recorded hit).
fn score_rule(state: &mut LeadScore, ruleset: &Ruleset, rule: &Rule, at: i64) -> i64 {
    let existing = state
        .rulesets
        .get(&ruleset.id)
        .and_then(|rs| rs.rules.get(&rule.id));
    let period_ms = rule
        .frequency
        .map(|f| i64::try_from(f.period_seconds.saturating_mul(1000)).unwrap_or(i64::MAX));
    if let (Some(f), Some(period_ms), Some(st)) = (rule.frequency, period_ms, existing) {
        let since = at.saturating_sub(period_ms);
        let recent = st.hits.iter().filter(|&&h| h > since).count();
        if recent >= f.max as usize {
            return 0;
        }
    }
    let mut points = rule.points;
    if let Some(cap) = rule.max_points {
        let sign = points.signum();
        // Whole points that still fit under the cap.
        let current = existing
            .map_or(0, |s| s.total_milli)
            .saturating_mul(sign)
            .max(0);
        let room = cap.saturating_mul(1000).saturating_sub(current).max(0) / 1000;
        points = sign * points.abs().min(room);
    }
    if points == 0 {
        return 0;
    }

    if !state.rulesets.contains_key(&ruleset.id) {
        let hl = ruleset.decay.map(|d| d.half_life_seconds);
        let fresh = RulesetScore::new(at, hl);
        state.rulesets.insert(ruleset.id.clone(), fresh);
    }
    let Some(rs) = state.rulesets.get_mut(&ruleset.id) else {
        return 0;
    };
    if !rs.rules.contains_key(&rule.id) {
        rs.rules.insert(rule.id.clone(), RuleState::default());
    }
    let Some(st) = rs.rules.get_mut(&rule.id) else {
        return 0;
    };
    let milli = points.saturating_mul(1000);
    rs.score_milli = rs.score_milli.saturating_add(milli);
    st.total_milli = st.total_milli.saturating_add(milli);
    match (rule.frequency, period_ms) {
        (Some(f), Some(period_ms)) => {
            let since = at.saturating_sub(period_ms);
            st.hits.retain(|&h| h > since);
            st.hits.push_back(at);
            if st.hits.len() > f.max as usize {
                // Hits are recorded at the clock, so in order; state written before the clock
                // rule may hold them unsorted: drop the oldest times either way.
                st.hits.make_contiguous().sort_unstable();
                while st.hits.len() > f.max as usize {
                    st.hits.pop_front();
                }
            }
        }
        _ => st.hits.clear(),
    }
    points
}
