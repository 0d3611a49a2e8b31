//! Sequence triggers (seed 004): "fire when a lead does A, B and C within a window".
//!
//! Users manage them through `/sequences` (create, replace, patch, delete, simulate); the
//! processor evaluates the active ones on every event (see [`crate::sequence`]).
//! This module holds the stored form, [`SequenceTrigger`], and the request bodies with their
//! validation, so the gateway refuses a bad trigger with a field-level message (400) and the
//! processor can rely on every stored trigger being well formed:
//! - `event_types`: 1 to [`MAX_EVENT_TYPES`] non-empty names; a name listed twice needs two
//!   events of that type;
//! - `window_seconds`: a positive integer, at most [`MAX_WINDOW_SECONDS`] (366 days);
//! - `max_gap_seconds` (beyond the seed): optional positive integer ≤ `window_seconds`, bounds
//!   the time between consecutive matched events;
//! - URLs absolute `http(s)`, emails that look like addresses.
//!
//! Request bodies deny unknown fields (a typo is an error, not a silently ignored field); the
//! stored form does not, so an older processor still reads a trigger a newer gateway wrote.

use serde::{Deserialize, Deserializer, Serialize};

use super::check::Faults;
use super::ValidationError;
use crate::fired::Targets;

/// Prefix of sequence trigger ids (`seq_…`).
pub const ID_PREFIX: &str = "seq";
/// Most entries `event_types` may list; bounds the matcher's work per event.
pub const MAX_EVENT_TYPES: usize = 20;
/// Longest window: 366 days.
pub const MAX_WINDOW_SECONDS: u64 = 366 * 24 * 3600;
const MAX_NAME_LEN: usize = 200;
const MAX_EMAILS: usize = 50;
const MAX_TEXT_LEN: usize = 10_000;

fn default_true() -> bool {
    true
}

/// A stored sequence trigger, OU-scoped (the OU is part of its storage key).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SequenceTrigger {
    pub id: String,
    pub name: String,
    pub event_types: Vec<String>,
    pub window_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_unit: Option<String>,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_preheader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_webhook_url: Option<String>,
    #[serde(default = "default_true")]
    pub active: bool,
    /// RFC 3339, set by the caller at creation and kept by replace/patch.
    pub created_at: String,
}

impl SequenceTrigger {
    /// Where a firing of this trigger is delivered.
    pub fn targets(&self) -> Targets {
        Targets {
            webhook_url: self.webhook_url.clone(),
            emails: self.emails.clone(),
            email_subject: self.email_subject.clone(),
            email_preheader: self.email_preheader.clone(),
            email_message: self.email_message.clone(),
            slack_webhook_url: self.slack_webhook_url.clone(),
            teams_webhook_url: self.teams_webhook_url.clone(),
        }
    }

    /// The window in milliseconds (saturating; validation keeps it far from overflow).
    pub fn window_ms(&self) -> i64 {
        secs_to_ms(self.window_seconds)
    }

    /// The largest allowed time between consecutive matched events, in milliseconds.
    pub fn max_gap_ms(&self) -> Option<i64> {
        self.max_gap_seconds.map(secs_to_ms)
    }

    /// Every field rule; `Err` lists the first broken rule of each field.
    pub fn validate(&self) -> Result<(), Vec<ValidationError>> {
        let mut r = Faults::default();
        let types = &self.event_types;
        let (name_max, types_max) = (MAX_NAME_LEN, MAX_EVENT_TYPES);
        let long = |v: Option<&String>, max: usize| v.is_some_and(|s| s.chars().count() > max);
        r.check(self.name.trim().is_empty(), "name", "must not be empty");
        let msg = format!("must be at most {name_max} characters");
        r.check(long(Some(&self.name), name_max), "name", &msg);
        r.check(types.is_empty(), "event_types", "must not be empty");
        let msg = format!("must list at most {types_max} entries");
        r.check(types.len() > types_max, "event_types", &msg);
        let blank = types.iter().any(|t| t.trim().is_empty());
        r.check(blank, "event_types", "entries must not be blank");
        let msg = format!("entries must be at most {name_max} characters");
        r.check(
            types.iter().any(|t| long(Some(t), name_max)),
            "event_types",
            &msg,
        );
        let window = self.window_seconds;
        r.check(window == 0, "window_seconds", "must be a positive integer");
        let msg = format!("must not exceed {MAX_WINDOW_SECONDS} (366 days)");
        r.check(window > MAX_WINDOW_SECONDS, "window_seconds", &msg);
        let gap = self.max_gap_seconds;
        r.check(
            gap == Some(0),
            "max_gap_seconds",
            "must be a positive integer",
        );
        let msg = "must not exceed window_seconds";
        r.check(gap.is_some_and(|g| g > window), "max_gap_seconds", msg);
        let msg = "must be at most 64 characters";
        r.check(long(self.window_unit.as_ref(), 64), "window_unit", msg);
        for (field, url) in [
            ("webhook_url", &self.webhook_url),
            ("slack_webhook_url", &self.slack_webhook_url),
            ("teams_webhook_url", &self.teams_webhook_url),
        ] {
            let bad = url.as_ref().is_some_and(|u| !is_http_url(u));
            r.check(bad, field, "must be an absolute http(s) URL");
        }
        let msg = format!("must list at most {MAX_EMAILS} addresses");
        r.check(self.emails.len() > MAX_EMAILS, "emails", &msg);
        if let Some(bad) = self.emails.iter().find(|a| !looks_like_email(a)) {
            r.check(
                true,
                "emails",
                format!("must be email addresses ({bad:?} is not)"),
            );
        }
        for (field, v, max) in [
            ("email_subject", &self.email_subject, 255),
            ("email_preheader", &self.email_preheader, 255),
            ("email_message", &self.email_message, MAX_TEXT_LEN),
        ] {
            let msg = format!("must be at most {max} characters");
            r.check(long(v.as_ref(), max), field, &msg);
        }
        r.finish(())
    }
}

fn secs_to_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn is_http_url(s: &str) -> bool {
    match url::Url::parse(s) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        }
        Err(_) => false,
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 320
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A whole-seconds field as sent: any JSON number, so `0`, `-5` and `1.5` get the field's own
/// message instead of a generic type error.
fn seconds(field: &str, v: &serde_json::Number, r: &mut Faults) -> u64 {
    let n = v.as_u64().unwrap_or(0);
    r.check(n == 0, field, "must be a positive integer");
    n
}

/// Body of `POST /sequences` (create) and `PUT /sequences/{id}` (replace).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SequenceRequest {
    pub name: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub window_seconds: Option<serde_json::Number>,
    pub window_unit: Option<String>,
    pub ordered: Option<bool>,
    pub max_gap_seconds: Option<serde_json::Number>,
    pub webhook_url: Option<String>,
    pub emails: Option<Vec<String>>,
    pub email_subject: Option<String>,
    pub email_preheader: Option<String>,
    pub email_message: Option<String>,
    pub slack_webhook_url: Option<String>,
    pub teams_webhook_url: Option<String>,
    pub active: Option<bool>,
}

/// `POST /sequences`.
pub type CreateSequence = SequenceRequest;
/// `PUT /sequences/{id}`.
pub type ReplaceSequence = SequenceRequest;

impl SequenceRequest {
    /// Create: a new trigger with the caller's id (`seq_…`) and `created_at`; `ordered`
    /// defaults to false and `active` to true.
    pub fn into_trigger(
        self,
        id: String,
        created_at: String,
    ) -> Result<SequenceTrigger, Vec<ValidationError>> {
        self.build(id, created_at, true)
    }

    /// Replace: every seed field is taken from the body (absent optional ones are cleared);
    /// `id` and `created_at` are kept, and so is `active` unless the body sets it.
    pub fn replace(
        self,
        existing: &SequenceTrigger,
    ) -> Result<SequenceTrigger, Vec<ValidationError>> {
        self.build(
            existing.id.clone(),
            existing.created_at.clone(),
            existing.active,
        )
    }

    fn build(
        self,
        id: String,
        created_at: String,
        active: bool,
    ) -> Result<SequenceTrigger, Vec<ValidationError>> {
        let mut r = Faults::default();
        r.check(self.name.is_none(), "name", "is required");
        r.check(self.event_types.is_none(), "event_types", "is required");
        let window = &self.window_seconds;
        r.check(window.is_none(), "window_seconds", "is required");
        let window_seconds = window
            .as_ref()
            .map_or(0, |n| seconds("window_seconds", n, &mut r));
        let max_gap_seconds = self
            .max_gap_seconds
            .as_ref()
            .map(|n| seconds("max_gap_seconds", n, &mut r));
        let trigger = SequenceTrigger {
            id,
            name: self.name.unwrap_or_default(),
            event_types: self.event_types.unwrap_or_default(),
            window_seconds,
            window_unit: self.window_unit,
            ordered: self.ordered.unwrap_or(false),
            max_gap_seconds,
            webhook_url: self.webhook_url,
            emails: trim_all(self.emails.unwrap_or_default()),
            email_subject: self.email_subject,
            email_preheader: self.email_preheader,
            email_message: self.email_message,
            slack_webhook_url: self.slack_webhook_url,
            teams_webhook_url: self.teams_webhook_url,
            active: self.active.unwrap_or(active),
            created_at,
        };
        finish(trigger, r)
    }
}

fn trim_all(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.trim().to_string()).collect()
}

/// Merge the request's own errors with the stored form's rules, without repeating a field the
/// request already reported (e.g. a missing `window_seconds` is not also "not positive").
fn finish(
    trigger: SequenceTrigger,
    mut r: Faults,
) -> Result<SequenceTrigger, Vec<ValidationError>> {
    for e in trigger.validate().err().unwrap_or_default() {
        r.note(e);
    }
    r.finish(trigger)
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`, clears it).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /sequences/{id}`: absent fields are unchanged; `null` clears an optional one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SequencePatch {
    pub name: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub window_seconds: Option<serde_json::Number>,
    #[serde(default, deserialize_with = "nullable")]
    pub window_unit: Option<Option<String>>,
    pub ordered: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_gap_seconds: Option<Option<serde_json::Number>>,
    #[serde(default, deserialize_with = "nullable")]
    pub webhook_url: Option<Option<String>>,
    pub emails: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email_subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email_preheader: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub email_message: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub slack_webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub teams_webhook_url: Option<Option<String>>,
    pub active: Option<bool>,
}

impl SequencePatch {
    /// The patched trigger, validated as a whole (so `max_gap_seconds` is checked against the
    /// resulting window even when only one of them changes).
    pub fn apply(
        self,
        existing: &SequenceTrigger,
    ) -> Result<SequenceTrigger, Vec<ValidationError>> {
        let mut r = Faults::default();
        let mut t = existing.clone();
        if let Some(v) = self.name {
            t.name = v;
        }
        if let Some(v) = self.event_types {
            t.event_types = v;
        }
        if let Some(n) = &self.window_seconds {
            t.window_seconds = seconds("window_seconds", n, &mut r);
        }
        if let Some(v) = self.max_gap_seconds {
            t.max_gap_seconds = v.map(|n| seconds("max_gap_seconds", &n, &mut r));
        }
        if let Some(v) = self.ordered {
            t.ordered = v;
        }
        if let Some(v) = self.emails {
            t.emails = trim_all(v);
        }
        if let Some(v) = self.active {
            t.active = v;
        }
        for (slot, v) in [
            (&mut t.window_unit, self.window_unit),
            (&mut t.webhook_url, self.webhook_url),
            (&mut t.email_subject, self.email_subject),
            (&mut t.email_preheader, self.email_preheader),
            (&mut t.email_message, self.email_message),
            (&mut t.slack_webhook_url, self.slack_webhook_url),
            (&mut t.teams_webhook_url, self.teams_webhook_url),
        ] {
            if let Some(v) = v {
                *slot = v;
            }
        }
        finish(t, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(body: serde_json::Value) -> Result<SequenceTrigger, Vec<ValidationError>> {
        let req: SequenceRequest = serde_json::from_value(body).expect("request parses");
        req.into_trigger("seq_1".into(), "2025-01-15T10:30:00Z".into())
    }

    fn fields(r: Result<SequenceTrigger, Vec<ValidationError>>) -> Vec<(String, String)> {
        r.expect_err("invalid")
            .into_iter()
            .map(|e| (e.field.clone(), e.to_string()))
            .collect()
    }

    fn seed() -> serde_json::Value {
        json!({"name": "Buying Intent Sequence",
            "event_types": ["pricing_page_view", "whitepaper_download", "demo_request"],
            "window_seconds": 604800, "window_unit": "7 days", "ordered": true,
            "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"]})
    }

    #[test]
    fn seed_request_creates_with_defaults() {
        let t = create(seed()).unwrap();
        assert_eq!(t.id, "seq_1");
        assert!(t.ordered && t.active);
        assert_eq!(t.window_ms(), 604_800_000);
        assert_eq!(t.max_gap_ms(), None);
        assert_eq!(t.targets().emails, vec!["sales@example.com".to_string()]);
        let mut min = seed();
        min.as_object_mut().unwrap().remove("ordered");
        assert!(!create(min).unwrap().ordered);
        let stored: SequenceTrigger =
            serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(stored, t);
    }

    #[test]
    fn field_level_messages() {
        let mut b = seed();
        b["event_types"] = json!([]);
        b["window_seconds"] = json!(0);
        b["webhook_url"] = json!("/relative");
        b["emails"] = json!(["not-an-address"]);
        b["max_gap_seconds"] = json!(-3);
        let f = fields(create(b));
        assert!(f.contains(&("event_types".into(), "event_types must not be empty".into())));
        assert!(f.contains(&(
            "window_seconds".into(),
            "window_seconds must be a positive integer".into()
        )));
        assert!(f.contains(&(
            "max_gap_seconds".into(),
            "max_gap_seconds must be a positive integer".into()
        )));
        assert!(f
            .iter()
            .any(|(k, m)| k == "webhook_url" && m.contains("absolute http(s)")));
        assert!(f.iter().any(|(k, _)| k == "emails"));
        for bad in [json!(1.5), json!(-1)] {
            let mut b = seed();
            b["window_seconds"] = bad;
            assert_eq!(fields(create(b))[0].0, "window_seconds");
        }
        let mut b = seed();
        b["max_gap_seconds"] = json!(604801);
        assert_eq!(
            fields(create(b)),
            vec![(
                "max_gap_seconds".to_string(),
                "max_gap_seconds must not exceed window_seconds".to_string()
            )]
        );
        let f = fields(create(json!({})));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(fields(create(
            json!({"name": " ", "event_types": [""], "window_seconds": 1})
        ))
        .iter()
        .all(|(k, _)| k == "name" || k == "event_types"));
    }

    #[test]
    fn urls_and_unknown_fields() {
        for u in ["ftp://x.example", "https://", "hooks.example.com"] {
            let mut b = seed();
            b["slack_webhook_url"] = json!(u);
            assert_eq!(fields(create(b))[0].0, "slack_webhook_url", "{u}");
        }
        let mut b = seed();
        b["teams_webhook_url"] = json!("http://127.0.0.1:9000/x");
        assert!(create(b).is_ok());
        let mut b = seed();
        b["windw_seconds"] = json!(1);
        assert!(serde_json::from_value::<SequenceRequest>(b).is_err());
        assert!(serde_json::from_value::<SequencePatch>(json!({"nme": "x"})).is_err());
    }

    #[test]
    fn replace_keeps_identity_and_active() {
        let mut t = create(seed()).unwrap();
        t.active = false;
        let mut b = seed();
        b["name"] = json!("Renamed");
        b.as_object_mut().unwrap().remove("webhook_url");
        let req: SequenceRequest = serde_json::from_value(b).unwrap();
        let r = req.replace(&t).unwrap();
        assert_eq!(
            (r.id.as_str(), r.created_at.as_str()),
            (t.id.as_str(), t.created_at.as_str())
        );
        assert_eq!(r.name, "Renamed");
        assert!(!r.active);
        assert_eq!(r.webhook_url, None);
    }

    #[test]
    fn patch_merges_clears_and_revalidates() {
        let t = create(seed()).unwrap();
        let p: SequencePatch =
            serde_json::from_value(json!({"webhook_url": null, "max_gap_seconds": 3600})).unwrap();
        let r = p.apply(&t).unwrap();
        assert_eq!(r.webhook_url, None);
        assert_eq!(r.max_gap_seconds, Some(3600));
        assert_eq!(r.window_unit, t.window_unit);
        let p: SequencePatch = serde_json::from_value(json!({"window_seconds": 60})).unwrap();
        assert_eq!(fields(p.apply(&r))[0].0, "max_gap_seconds");
        let p: SequencePatch = serde_json::from_value(json!({"active": false})).unwrap();
        assert!(!p.apply(&t).unwrap().active);
    }
}
