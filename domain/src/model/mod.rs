//! Configuration objects users manage through the gateway and the processor evaluates:
//! [`ruleset`]s, milestone [`trigger`]s and [`sequence`] triggers, each with its request bodies
//! and their validation.
//!
//! Every model validates the same way: a [`check::Faults`] collects the first fault of every
//! field, each a [`ValidationError`] naming the field's JSON path and what is wrong with it, and
//! a body with faults is refused with all of them (`Vec<ValidationError>`), so a client fixes
//! every field in one round. Inside a nested list (`rules[2].conditions[0].op`) the first fault
//! is reported.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub mod check;
pub mod ruleset;
pub mod sequence;
pub mod trigger;

/// A request field that is missing or wrong. Displays as `"{field} {message}"`, e.g.
/// `score_threshold must be an integer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct ValidationError {
    /// JSON path of the field, e.g. `rules[2].conditions[0].op` (`body` for the whole body).
    pub field: String,
    /// What is wrong, without the field's name: `must be an integer`.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// For `#[serde(default, deserialize_with = "present")]`: tells an absent field (`None`) from
/// an explicit `null` (`Some(Value::Null)`), which PATCH needs to clear optional fields.
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}
