//! Scoring rulesets: what users manage at `/rulesets` and the processor scores every event with.
//!
//! A [`Ruleset`] is a named score category (the lead endpoint reports one score per ruleset);
//! its [`Rule`]s give points to events of a type whose fields meet the rule's [`Condition`]s,
//! optionally capped per lead (`max_points`), limited in frequency (`frequency`) and decayed
//! with a half-life (`decay`). The engine is [`crate::scoring`].
//!
//! Requests (`POST` [`CreateRuleset`], `PUT` [`ReplaceRuleset`], `PATCH` [`PatchRuleset`]) all
//! deserialize into one all-optional [`RulesetBody`] whose leaves are raw JSON, so `validate`
//! can name the exact field and fault (`rules[2].conditions[0].op must be one of …`) instead of
//! serde's "invalid type at line 1 column 40". Unknown fields are rejected; `id`, `created_at`
//! and `updated_at` are accepted (so a GET body can be PUT back) but are read-only.
//! The stored types accept unknown fields, so an older binary reads what a newer one wrote.
//! Optional values serialize as `null` rather than being omitted: every GET has one shape.
//!
//! Failures are [`ValidationError`]s, found with the [`check`] helpers the trigger models use
//! too.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::Faults;
use super::{check, present, ValidationError};

fn yes() -> bool {
    true
}

/// A stored ruleset (`rs_…`), as the catalog keeps it and `GET /rulesets/{id}` returns it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Ruleset {
    pub id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub decay: Option<Decay>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Every field of a ruleset request, each optional and raw (see the module header).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RulesetBody {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub active: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub rules: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub decay: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<Value>,
}

/// `POST /rulesets`: `name` required; `active` defaults to true; `rules` to `[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct CreateRuleset(pub RulesetBody);

/// `PUT /rulesets/{id}`: replaces every field (an omitted `active` keeps its current value:
/// activation is a lifecycle switch, not content an edit form should silently reset).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct ReplaceRuleset(pub RulesetBody);

/// `PATCH /rulesets/{id}`: changes only the fields given; `"decay": null` removes decay;
/// `rules`, when given, replaces the whole list.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct PatchRuleset(pub RulesetBody);

const MAX_NAME: usize = 200;

impl CreateRuleset {
    /// `id` from `ids::new_id("rs")`, `now` RFC 3339. Every faulty field is reported (inside
    /// `rules`, the first fault).
    pub fn validate(self, id: String, now: &str) -> Result<Ruleset, Vec<ValidationError>> {
        let b = self.0;
        let mut f = Faults::default();
        f.take(check::read_only_id(b.id.as_ref(), None));
        let ruleset = Ruleset {
            name: f.take(name(b.name)),
            active: f.take(check::opt_bool("active", b.active)).unwrap_or(true),
            rules: f.take(parse_rules(b.rules, &[])),
            decay: f.take(parse_decay(b.decay)),
            id,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        };
        f.finish(ruleset)
    }
}

impl ReplaceRuleset {
    pub fn validate(self, existing: &Ruleset, now: &str) -> Result<Ruleset, Vec<ValidationError>> {
        let b = self.0;
        let mut f = Faults::default();
        f.take(check::read_only_id(b.id.as_ref(), Some(&existing.id)));
        let ruleset = Ruleset {
            name: f.take(name(b.name)),
            active: f
                .take(check::opt_bool("active", b.active))
                .unwrap_or(existing.active),
            rules: f.take(parse_rules(b.rules, &existing.rules)),
            decay: f.take(parse_decay(b.decay)),
            id: existing.id.clone(),
            created_at: existing.created_at.clone(),
            updated_at: now.to_string(),
        };
        f.finish(ruleset)
    }
}

impl PatchRuleset {
    pub fn validate(self, existing: &Ruleset, now: &str) -> Result<Ruleset, Vec<ValidationError>> {
        let b = self.0;
        let mut f = Faults::default();
        f.take(check::read_only_id(b.id.as_ref(), Some(&existing.id)));
        let mut out = existing.clone();
        if b.name.is_some() {
            if let Some(name) = f.get(name(b.name)) {
                out.name = name;
            }
        }
        if let Some(active) = f.take(check::opt_bool("active", b.active)) {
            out.active = active;
        }
        if b.rules.is_some() {
            if let Some(rules) = f.get(parse_rules(b.rules, &existing.rules)) {
                out.rules = rules;
            }
        }
        if b.decay.is_some() {
            if let Some(decay) = f.get(parse_decay(b.decay)) {
                out.decay = decay;
            }
        }
        out.updated_at = now.to_string();
        f.finish(out)
    }
}

fn name(v: Option<Value>) -> Result<String, ValidationError> {
    check::text("name", check::required("name", v)?, MAX_NAME)
}

/// One scoring rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rule {
    /// Stable within the ruleset (`r1`, `r2`, … when the request gave none). A lead's cap and
    /// frequency counts are kept under it: send it back when editing a rule to keep them.
    pub id: String,
    /// The event type this rule scores; `*` scores every type.
    pub event_type: String,
    /// Points per matching event; negative points lower the score.
    pub points: i64,
    /// All must hold (AND).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Cap on the magnitude of this rule's (decayed) contribution to one lead's score.
    #[serde(default)]
    pub max_points: Option<i64>,
    /// The rule scores at most `max` times per `period_seconds` per lead.
    #[serde(default)]
    pub frequency: Option<Frequency>,
}

/// A test on one event field: `event_type`, `source` or `metadata.<dotted.path>`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    /// Required for every op but `exists` (where it is an optional boolean, default true).
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Eq,
    Ne,
    Contains,
    Exists,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Eq,
        Op::Ne,
        Op::Contains,
        Op::Exists,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Contains => "contains",
            Op::Exists => "exists",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == s)
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Op::Gt | Op::Gte | Op::Lt | Op::Lte)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frequency {
    pub max: u32,
    pub period_seconds: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decay {
    pub half_life_seconds: u64,
}

const MAX_RULES: usize = 200;
const MAX_CONDITIONS: usize = 20;
const MAX_RULE_POINTS: i64 = 1_000_000;
const MAX_CAP: i64 = 1_000_000_000;
const MAX_FREQUENCY: i64 = 1_000;
const MAX_PERIOD_SECONDS: i64 = 10 * 365 * 24 * 3600;

macro_rules! body {
    ($(#[$m:meta])* $name:ident { $($f:ident),* }) => {
        $(#[$m])*
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $(#[serde(default, deserialize_with = "present")] $f: Option<Value>,)*
        }
    };
}
body!(RuleBody {
    id,
    event_type,
    points,
    conditions,
    max_points,
    frequency
});
body!(ConditionBody { field, op, value });
body!(FrequencyBody {
    max,
    period_seconds
});
body!(DecayBody { half_life_seconds });

/// Parses `rules` and assigns `rN` ids to rules without one, numbering past every `rN` in the
/// request and in `existing`, so a new rule never inherits a removed rule's per-lead state.
fn parse_rules(v: Option<Value>, existing: &[Rule]) -> Result<Vec<Rule>, ValidationError> {
    let Some(v) = check::given(v) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(ValidationError::new("rules", "must be an array"));
    };
    if items.len() > MAX_RULES {
        let msg = format!("must hold at most {MAX_RULES} rules");
        return Err(ValidationError::new("rules", msg));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("rules[{i}]");
        let f = |name: &str| format!("{p}.{name}");
        let b: RuleBody = check::object(&p, item)?;
        let id = match check::given(b.id) {
            Some(v) => check::ident(&f("id"), v)?,
            None => String::new(),
        };
        if let Some(j) = rules.iter().position(|r| !id.is_empty() && r.id == id) {
            return Err(ValidationError::new(
                f("id"),
                format!("duplicates rules[{j}].id"),
            ));
        }
        let points = check::required(&f("points"), b.points)?;
        rules.push(Rule {
            id,
            event_type: check::text(
                &f("event_type"),
                check::required(&f("event_type"), b.event_type)?,
                200,
            )?,
            points: check::int_in(&f("points"), &points, -MAX_RULE_POINTS, MAX_RULE_POINTS)?,
            conditions: parse_conditions(&p, b.conditions)?,
            max_points: check::given(b.max_points)
                .map(|v| check::int_in(&f("max_points"), &v, 1, MAX_CAP))
                .transpose()?,
            frequency: parse_frequency(&p, b.frequency)?,
        });
    }
    let numbered = |r: &Rule| r.id.strip_prefix('r')?.parse::<u64>().ok();
    let mut next = existing
        .iter()
        .chain(&rules)
        .filter_map(numbered)
        .max()
        .unwrap_or(0);
    for r in rules.iter_mut().filter(|r| r.id.is_empty()) {
        next += 1;
        r.id = format!("r{next}");
    }
    Ok(rules)
}

fn parse_conditions(p: &str, v: Option<Value>) -> Result<Vec<Condition>, ValidationError> {
    let Some(v) = check::given(v) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(ValidationError::new(
            format!("{p}.conditions"),
            "must be an array",
        ));
    };
    if items.len() > MAX_CONDITIONS {
        let msg = format!("must hold at most {MAX_CONDITIONS} conditions");
        return Err(ValidationError::new(format!("{p}.conditions"), msg));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("{p}.conditions[{i}]");
        let f = |name: &str| format!("{p}.{name}");
        let b: ConditionBody = check::object(&p, item)?;
        let field = check::text(&f("field"), check::required(&f("field"), b.field)?, 200)?;
        let valid_field = match field.strip_prefix("metadata.") {
            Some(path) => path.split('.').all(|seg| !seg.is_empty()),
            None => field == "event_type" || field == "source",
        };
        if !valid_field {
            let msg = "must be event_type, source or metadata.<path>";
            return Err(ValidationError::new(f("field"), msg));
        }
        let op = check::required(&f("op"), b.op)?
            .as_str()
            .and_then(Op::parse)
            .ok_or_else(|| {
                let all: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
                ValidationError::new(f("op"), format!("must be one of {}", all.join(", ")))
            })?;
        let value = check::given(b.value);
        let vf = f("value");
        let bad = |what: &str| {
            Err(ValidationError::new(
                &vf,
                format!("{what} for op {}", op.as_str()),
            ))
        };
        match (&value, op) {
            (None, Op::Exists) | (Some(Value::Bool(_)), Op::Exists) => {}
            (Some(_), Op::Exists) => return bad("must be a boolean"),
            (None, _) => return bad("is required"),
            (Some(Value::Number(_)), _) => {}
            (Some(_), op) if op.is_numeric() => return bad("must be a number"),
            (Some(Value::String(_) | Value::Bool(_)), Op::Contains) => {}
            (Some(_), Op::Contains) => return bad("must be a string, number or boolean"),
            (Some(_), _) => {}
        }
        out.push(Condition { field, op, value });
    }
    Ok(out)
}

fn parse_frequency(p: &str, v: Option<Value>) -> Result<Option<Frequency>, ValidationError> {
    let Some(v) = check::given(v) else {
        return Ok(None);
    };
    let p = format!("{p}.frequency");
    let b: FrequencyBody = check::object(&p, v)?;
    let (fm, fp) = (format!("{p}.max"), format!("{p}.period_seconds"));
    let max = check::int_in(&fm, &check::required(&fm, b.max)?, 1, MAX_FREQUENCY)?;
    let period = check::int_in(
        &fp,
        &check::required(&fp, b.period_seconds)?,
        1,
        MAX_PERIOD_SECONDS,
    )?;
    Ok(Some(Frequency {
        max: u32::try_from(max).unwrap_or(1),
        period_seconds: u64::try_from(period).unwrap_or(1),
    }))
}

fn parse_decay(v: Option<Value>) -> Result<Option<Decay>, ValidationError> {
    let Some(v) = check::given(v) else {
        return Ok(None);
    };
    let b: DecayBody = check::object("decay", v)?;
    let f = "decay.half_life_seconds";
    let hl = check::int_in(
        f,
        &check::required(f, b.half_life_seconds)?,
        1,
        MAX_PERIOD_SECONDS,
    )?;
    Ok(Some(Decay {
        half_life_seconds: u64::try_from(hl).unwrap_or(1),
    }))
}

#[cfg(test)]
mod tests;
