//! The per-lead scoring state the pipeline keeps as one JSON value in Redis: self-contained, so
//! the lead endpoint can read a score (`score_at`) without loading rulesets, and bounded, so a
//! busy lead's state does not grow without limit.
//!
//! Decay makes scores fractional, so they are kept per ruleset and per rule in integer
//! thousandths of a point (`…_milli`): integers survive the JSON round trip through Redis
//! exactly (floats may not), so a replay from stored state computes what the first run did.
//! Everything reported is rounded half away from zero to whole points. A lead's total is the
//! sum of its active rulesets' rounded scores, so the categories the lead endpoint lists always
//! add up to the total the milestones compare with their thresholds.

use crate::model::ruleset::Ruleset;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How many recent contributions a lead keeps for "why this score".
pub const MAX_CONTRIBUTIONS: usize = 50;

/// Everything the engine knows about one lead.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LeadScore {
    /// Per ruleset id.
    #[serde(default)]
    pub rulesets: BTreeMap<String, RulesetScore>,
    /// Per milestone trigger id. Never pruned: `fired_count` keeps fired ids unique.
    #[serde(default)]
    pub milestones: BTreeMap<String, MilestoneState>,
    /// The last [`MAX_CONTRIBUTIONS`] contributions, oldest first.
    #[serde(default)]
    pub contributions: VecDeque<Contribution>,
    /// Latest event time seen (Unix ms).
    #[serde(default)]
    pub last_event_ms: Option<i64>,
}

/// One ruleset's part of a lead's score.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RulesetScore {
    /// Thousandths of a point, decayed up to `updated_ms`.
    pub score_milli: i64,
    /// The decay clock: the latest event time this ruleset was brought up to.
    pub updated_ms: i64,
    /// Copied from the ruleset at the last event, so reads need no configuration.
    #[serde(default)]
    pub half_life_seconds: Option<u64>,
    /// Copied from the ruleset at the last event; inactive rulesets do not count.
    #[serde(default = "yes")]
    pub active: bool,
    /// Per rule id: that rule's (decayed) contribution and its recent hits.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleState>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RuleState {
    /// This rule's contribution to the ruleset score in thousandths of a point (decays with
    /// it; `max_points` caps it).
    pub total_milli: i64,
    /// Event times (Unix ms) of the rule's recent scoring hits, at most `frequency.max` of
    /// them, all within the last `frequency.period_seconds`. Empty without a frequency limit.
    #[serde(default)]
    pub hits: VecDeque<i64>,
}

/// "Rule `rule_id` of ruleset `ruleset_id` gave `points` for event `event_id`."
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Contribution {
    pub event_id: String,
    pub ruleset_id: String,
    pub rule_id: String,
    /// Points actually awarded (after the rule's cap).
    pub points: i64,
    /// Event time, Unix ms.
    pub at_ms: i64,
}

/// A milestone trigger's state for one lead.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MilestoneState {
    /// True while the trigger may fire: the score was below the threshold since it last fired.
    pub armed: bool,
    /// How many times it has fired for this lead; the n-th firing has id
    /// `derived_id("fir", [trigger, lead, n])`.
    pub fired_count: u64,
}

/// `0.5^(elapsed / half_life)`; 1 when no time passed or no decay is set.
pub(crate) fn decay_factor(half_life_seconds: Option<u64>, elapsed_ms: i64) -> f64 {
    match half_life_seconds {
        Some(hl) if hl > 0 && elapsed_ms > 0 => {
            0.5f64.powf(elapsed_ms as f64 / (hl as f64 * 1000.0))
        }
        _ => 1.0,
    }
}

/// Thousandths of a point to whole points, half away from zero.
pub(crate) fn points(milli: i64) -> i64 {
    let p = milli.unsigned_abs().saturating_add(500) / 1000;
    let p = i64::try_from(p).unwrap_or(i64::MAX);
    if milli < 0 {
        -p
    } else {
        p
    }
}

/// `milli * factor`, rounded (`as` saturates at the i64 range).
fn scale(milli: i64, factor: f64) -> i64 {
    (milli as f64 * factor).round() as i64
}

impl RulesetScore {
    pub(crate) fn new(at_ms: i64, half_life_seconds: Option<u64>) -> Self {
        RulesetScore {
            score_milli: 0,
            updated_ms: at_ms,
            half_life_seconds,
            active: true,
            rules: BTreeMap::new(),
        }
    }

    /// The score at `now_ms` in whole points (never decays backwards in time); equal to what
    /// the score would be after an event at `now_ms` that scores nothing.
    pub fn points_at(&self, now_ms: i64) -> i64 {
        let f = decay_factor(
            self.half_life_seconds,
            now_ms.saturating_sub(self.updated_ms),
        );
        points(scale(self.score_milli, f))
    }

    /// Brings the score and rule totals up to `at_ms` (no-op for earlier times). Rule states
    /// that decayed to nothing and hold no hits are dropped.
    pub(crate) fn decay_to(&mut self, at_ms: i64) {
        let f = decay_factor(
            self.half_life_seconds,
            at_ms.saturating_sub(self.updated_ms),
        );
        self.updated_ms = self.updated_ms.max(at_ms);
        if f == 1.0 {
            return;
        }
        self.score_milli = scale(self.score_milli, f);
        self.rules.retain(|_, r| {
            r.total_milli = scale(r.total_milli, f);
            r.total_milli != 0 || !r.hits.is_empty()
        });
    }
}

impl LeadScore {
    /// The lead's total score at `now_ms` (Unix ms), decay applied, as of the rulesets'
    /// configuration at the lead's last event (call [`LeadScore::sync_rulesets`] on a copy
    /// first to reflect a ruleset edited since).
    pub fn score_at(&self, now_ms: i64) -> i64 {
        self.rulesets
            .values()
            .filter(|r| r.active)
            .map(|r| r.points_at(now_ms))
            .sum()
    }

    /// Score per active ruleset at `now_ms`; the values add up to [`LeadScore::score_at`].
    pub fn ruleset_scores_at(&self, now_ms: i64) -> BTreeMap<String, i64> {
        self.rulesets
            .iter()
            .filter(|(_, r)| r.active)
            .map(|(id, r)| (id.clone(), r.points_at(now_ms)))
            .collect()
    }

    /// Copies each ruleset's `active` flag and half-life into the state; a ruleset that is no
    /// longer configured stops counting (its state is kept, harmlessly, in case the list was
    /// partial).
    pub fn sync_rulesets(&mut self, rulesets: &[Ruleset]) {
        for (id, s) in self.rulesets.iter_mut() {
            match rulesets.iter().find(|r| &r.id == id) {
                Some(r) => {
                    s.active = r.active;
                    s.half_life_seconds = r.decay.map(|d| d.half_life_seconds);
                }
                None => s.active = false,
            }
        }
    }

    /// The current total without further decay (every active ruleset already brought up to
    /// the event's time).
    pub(crate) fn total(&self) -> i64 {
        self.rulesets
            .values()
            .filter(|r| r.active)
            .map(|r| points(r.score_milli))
            .sum()
    }

    pub(crate) fn remember(&mut self, contributions: &[Contribution]) {
        for c in contributions {
            if self.contributions.len() >= MAX_CONTRIBUTIONS {
                self.contributions.pop_front();
            }
            self.contributions.push_back(c.clone());
        }
    }
}
