//! A fired trigger: what the processor produces to `leadstream.triggers.fired.v1` and the
//! notifier delivers. The `payload` is exactly the seed 003 / 004 webhook body; the rest says
//! where it goes.

use serde::{Deserialize, Serialize};

use crate::ids::{LeadId, OuId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Milestone,
    Sequence,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Milestone => "milestone",
            TriggerKind::Sequence => "sequence",
        }
    }

    pub fn parse(s: &str) -> Option<TriggerKind> {
        match s {
            "milestone" => Some(TriggerKind::Milestone),
            "sequence" => Some(TriggerKind::Sequence),
            _ => None,
        }
    }
}

/// Where a firing is delivered. Copied from the trigger at the moment it fired, so a later edit
/// of the trigger does not change what an already-fired notification says or where it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    pub email_subject: Option<String>,
    pub email_preheader: Option<String>,
    pub email_message: Option<String>,
    pub slack_webhook_url: Option<String>,
    pub teams_webhook_url: Option<String>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.webhook_url.is_none()
            && self.emails.is_empty()
            && self.slack_webhook_url.is_none()
            && self.teams_webhook_url.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerFired {
    /// Deterministic: derived from (trigger, lead, crossing / completion). Delivery is idempotent
    /// on it and it is the `webhook-id` header.
    pub fired_id: String,
    pub org_id: String,
    pub ou_id: String,
    pub lead_id: String,
    pub trigger_id: String,
    pub trigger_name: String,
    pub kind: TriggerKind,
    /// The event that completed the crossing or the sequence.
    pub event_id: String,
    pub fired_at_ms: i64,
    /// The lead's total score when it fired.
    pub score: i64,
    /// The exact webhook body of seed 003 (milestone) or 004 (sequence).
    pub payload: serde_json::Value,
    pub targets: Targets,
}

impl TriggerFired {
    pub fn ou(&self) -> OuId<'_> {
        OuId(&self.ou_id)
    }

    pub fn lead(&self) -> LeadId<'_> {
        LeadId(&self.lead_id)
    }

    pub fn kafka_key(&self) -> String {
        crate::kafka_key(self.ou(), self.lead())
    }
}
