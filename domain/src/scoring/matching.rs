//! Does a rule match an event? Event type first (a string compare that rejects most rules),
//! then every condition in order. Nothing here allocates: dotted metadata paths are walked with
//! `split('.')` over the event's JSON.
//!
//! Semantics, as documented to users:
//! - `event_type` `*` matches every type;
//! - fields: `event_type`, `source`, `metadata.<a.b.c>` (a numeric segment indexes an array);
//!   a missing field or a JSON `null` counts as absent;
//! - `eq`/`ne` compare JSON values exactly, except that numbers compare numerically (`1 == 1.0`);
//!   `ne` holds when the field is absent;
//! - `contains`: substring of a string field (string value), or element of an array field;
//! - `exists`: present (or, with `"value": false`, absent);
//! - `gt`/`gte`/`lt`/`lte`: numeric; a numeric string field (`"42"`) counts as its number,
//!   anything else does not match.

use crate::event::EngagementEvent;
use crate::model::ruleset::{Condition, Op, Rule};
use serde_json::Value;
use std::cmp::Ordering;

/// Whether `rule` scores `event` (before caps and frequency limits).
pub fn rule_matches(rule: &Rule, event: &EngagementEvent) -> bool {
    (rule.event_type == event.event_type || rule.event_type == "*")
        && rule.conditions.iter().all(|c| condition_holds(c, event))
}

/// A resolved event field (JSON strings resolve to `Str`).
#[derive(Clone, Copy)]
enum Field<'a> {
    Str(&'a str),
    Json(&'a Value),
    Absent,
}

fn resolve<'a>(field: &str, event: &'a EngagementEvent) -> Field<'a> {
    match field {
        "event_type" => Field::Str(&event.event_type),
        "source" => event.source.as_deref().map_or(Field::Absent, Field::Str),
        _ => {
            let Some(path) = field.strip_prefix("metadata.") else {
                return Field::Absent;
            };
            let mut segments = path.split('.');
            let mut cur = match segments.next().and_then(|s| event.metadata.get(s)) {
                Some(v) => v,
                None => return Field::Absent,
            };
            for seg in segments {
                let next = match cur {
                    Value::Object(m) => m.get(seg),
                    Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                    _ => None,
                };
                match next {
                    Some(v) => cur = v,
                    None => return Field::Absent,
                }
            }
            match cur {
                Value::Null => Field::Absent,
                Value::String(s) => Field::Str(s),
                v => Field::Json(v),
            }
        }
    }
}

pub fn condition_holds(c: &Condition, event: &EngagementEvent) -> bool {
    let f = resolve(&c.field, event);
    let v = c.value.as_ref();
    match c.op {
        Op::Exists => !matches!(f, Field::Absent) == v.and_then(Value::as_bool).unwrap_or(true),
        Op::Eq => v.is_some_and(|v| field_eq(f, v)),
        Op::Ne => v.is_some_and(|v| !field_eq(f, v)),
        Op::Contains => v.is_some_and(|v| contains(f, v)),
        Op::Gt => compare(f, v) == Some(Ordering::Greater),
        Op::Gte => matches!(compare(f, v), Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => compare(f, v) == Some(Ordering::Less),
        Op::Lte => matches!(compare(f, v), Some(Ordering::Less | Ordering::Equal)),
    }
}

fn field_eq(f: Field<'_>, v: &Value) -> bool {
    match f {
        Field::Str(s) => v.as_str() == Some(s),
        Field::Json(j) => json_eq(j, v),
        Field::Absent => false,
    }
}

/// JSON equality with numbers compared by value (integers exactly, others as f64).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn contains(f: Field<'_>, v: &Value) -> bool {
    match f {
        Field::Str(s) => v.as_str().is_some_and(|n| s.contains(n)),
        Field::Json(Value::Array(items)) => items.iter().any(|x| json_eq(x, v)),
        _ => false,
    }
}

fn number(f: Field<'_>) -> Option<f64> {
    match f {
        Field::Json(Value::Number(n)) => n.as_f64(),
        Field::Str(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn compare(f: Field<'_>, v: Option<&Value>) -> Option<Ordering> {
    number(f)?.partial_cmp(&v?.as_f64()?)
}
