//! A from-scratch scoring oracle for the property tests: an event list in, the lead's score out,
//! written from the documented semantics (module docs of [`super`]) without the engine's
//! structure. It keeps every award ever made (no incremental state, no milli rounding, no
//! pruning) and recomputes the score from that list:
//!
//! - the lead's clock is the latest event time seen; an event counts as if it happened at
//!   `max(its time, clock)` (the clock rule: a late event is neither decayed for its lateness nor
//!   rewinds anything, and it is frequency-limited at the clock too);
//! - a ruleset's score at time `t` is the sum over its awards of `points · 2^(−(t − at)/h)`;
//! - a rule with a frequency limit scores only while fewer than `max` of its awards lie in
//!   `(t − period, t]`; a capped rule's running total never passes `max_points` in magnitude;
//! - the total is the sum over active rulesets of each ruleset's score rounded half away from
//!   zero.
//!
//! The generators keep every value exactly representable (dyadic rationals: whole seconds and
//! a one-second half-life, points multiples of 64 where scores decay, caps only where they do
//! not), so the oracle and the engine must agree to the point, with no tolerance.

/// Event types the generated rules and events use (`*` in a rule matches all).
pub const TYPES: [&str; 3] = ["view", "pricing", "demo"];

/// A condition the oracle evaluates itself, on the fields the generated events carry.
#[derive(Clone, Debug)]
pub enum Cond {
    /// `metadata.path contains needle`.
    PathContains(&'static str),
    /// `metadata.n` compared with a number: `gt`, `gte`, `lt` or `lte`.
    N(&'static str, i64),
    /// `source eq value`.
    SourceIs(&'static str),
    /// `metadata.n exists` (`true`) or is absent (`false`).
    HasN(bool),
}

impl Cond {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Cond::PathContains(s) => {
                json!({"field": "metadata.path", "op": "contains", "value": s})
            }
            Cond::N(op, v) => json!({"field": "metadata.n", "op": op, "value": v}),
            Cond::SourceIs(s) => json!({"field": "source", "op": "eq", "value": s}),
            Cond::HasN(b) => json!({"field": "metadata.n", "op": "exists", "value": b}),
        }
    }

    fn holds(&self, e: &Ev) -> bool {
        match self {
            Cond::PathContains(needle) => e.path.is_some_and(|p| p.contains(needle)),
            Cond::N(op, v) => match e.n {
                None => false,
                Some(n) => match *op {
                    "gt" => n > *v,
                    "gte" => n >= *v,
                    "lt" => n < *v,
                    "lte" => n <= *v,
                    other => unreachable!("no such generated op {other}"),
                },
            },
            Cond::SourceIs(s) => e.source == *s,
            Cond::HasN(want) => e.n.is_some() == *want,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OracleRule {
    /// Index into [`TYPES`], or `None` for `*`.
    pub ty: Option<usize>,
    pub points: i64,
    pub cap: Option<i64>,
    /// `(max, period_seconds)`.
    pub frequency: Option<(usize, i64)>,
    pub conditions: Vec<Cond>,
}

#[derive(Clone, Debug)]
pub struct OracleRuleset {
    pub active: bool,
    /// Half-life in seconds (the generators use 1).
    pub half_life: Option<i64>,
    pub rules: Vec<OracleRule>,
}

/// One event as the oracle sees it.
#[derive(Clone, Debug)]
pub struct Ev {
    pub ty: usize,
    /// Whole seconds after the test's origin (any order).
    pub at: i64,
    pub source: &'static str,
    pub path: Option<&'static str>,
    pub n: Option<i64>,
}

/// An award: `points` given at the lead's clock `at` (seconds) by rule `rule` of a ruleset.
struct Award {
    rule: usize,
    at: i64,
    points: i64,
}

/// The score after each event of `events` (in list order), and the lead's clock at the end.
pub fn scores(rulesets: &[OracleRuleset], events: &[Ev]) -> (Vec<i64>, Oracle) {
    let mut o = Oracle {
        awards: rulesets.iter().map(|_| Vec::new()).collect(),
        clock: None,
        rulesets: rulesets.to_vec(),
    };
    let mut after = Vec::with_capacity(events.len());
    for e in events {
        let now = o.clock.map_or(e.at, |c| c.max(e.at));
        o.clock = Some(now);
        for (ri, rs) in rulesets.iter().enumerate() {
            if !rs.active {
                continue;
            }
            for (k, rule) in rs.rules.iter().enumerate() {
                let type_ok = rule.ty.is_none_or(|t| t == e.ty);
                if !type_ok || !rule.conditions.iter().all(|c| c.holds(e)) {
                    continue;
                }
                let mine = || o.awards[ri].iter().filter(move |a| a.rule == k);
                if let Some((max, period)) = rule.frequency {
                    let in_window = mine()
                        .filter(|a| a.at > now - period && a.at <= now)
                        .count();
                    if in_window >= max {
                        continue;
                    }
                }
                let points = match rule.cap {
                    None => rule.points,
                    Some(cap) => {
                        // Caps only appear where nothing decays: the running total is a sum.
                        let so_far: i64 = mine().map(|a| a.points).sum();
                        let wanted = so_far + rule.points;
                        let allowed = wanted.clamp(-cap, cap);
                        // Never move past the cap, and never move against the rule's sign.
                        let step = allowed - so_far;
                        if step.signum() == rule.points.signum() {
                            step
                        } else {
                            0
                        }
                    }
                };
                if points != 0 {
                    o.awards[ri].push(Award {
                        rule: k,
                        at: now,
                        points,
                    });
                }
            }
        }
        after.push(o.score_at(now));
    }
    (after, o)
}

/// The awards made so far; read the score at any later time.
pub struct Oracle {
    awards: Vec<Vec<Award>>,
    clock: Option<i64>,
    rulesets: Vec<OracleRuleset>,
}

impl Oracle {
    /// The lead's total at `t` seconds (no earlier than the clock).
    pub fn score_at(&self, t: i64) -> i64 {
        self.rulesets
            .iter()
            .zip(&self.awards)
            .filter(|(rs, _)| rs.active)
            .map(|(rs, awards)| {
                let exact: f64 = awards
                    .iter()
                    .map(|a| {
                        let halvings = rs.half_life.map_or(0, |h| (t - a.at) / h);
                        a.points as f64 / 2f64.powi(halvings as i32)
                    })
                    .sum();
                half_away(exact)
            })
            .sum()
    }

    pub fn clock(&self) -> Option<i64> {
        self.clock
    }
}

/// Round half away from zero (exact for the dyadic values the generators produce).
fn half_away(x: f64) -> i64 {
    let r = (x.abs() + 0.5).floor() as i64;
    if x < 0.0 {
        -r
    } else {
        r
    }
}
