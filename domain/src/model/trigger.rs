//! Milestone triggers (seed 003): "tell me when a lead's score reaches T", optionally only on
//! an event of one type. Managed at `/triggers`; evaluated by [`crate::scoring`],
//! which fires once per lead per crossing and delivers to the [`Targets`] named here.
//!
//! [`MilestoneTrigger`] is the stored shape and the `GET /triggers` item, exactly seed 003's
//! fields plus `slack_webhook_url` / `teams_webhook_url`. Unset optional fields serialize as
//! `null` (not omitted), so every trigger in a list has the same keys; a trigger without
//! `event_type` shows `"event_type": null` (= any event).
//!
//! Requests (`POST` [`CreateTrigger`], `PUT` [`ReplaceTrigger`], `PATCH` [`PatchTrigger`]) share
//! the raw, all-optional [`TriggerBody`]; `validate` gives field-level [`ValidationError`]s
//! (`score_threshold must be an integer`). Unknown fields are rejected; `id` and `created_at`
//! may be sent back (a GET body PUT again) but are read-only.

use super::check::Faults;
use super::{check, present, ValidationError};
use crate::fired::Targets;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn yes() -> bool {
    true
}

/// A stored milestone trigger (`trg_…`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MilestoneTrigger {
    pub id: String,
    pub name: String,
    /// Fires only on events of this type; `None` = any event that crosses the threshold.
    #[serde(default)]
    pub event_type: Option<String>,
    pub score_threshold: i64,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub email_subject: Option<String>,
    #[serde(default)]
    pub email_preheader: Option<String>,
    #[serde(default)]
    pub email_message: Option<String>,
    #[serde(default)]
    pub slack_webhook_url: Option<String>,
    #[serde(default)]
    pub teams_webhook_url: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl MilestoneTrigger {
    /// Where a firing goes, copied at firing time.
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

    /// Whether an event of `event_type` may fire this trigger.
    pub fn matches_type(&self, event_type: &str) -> bool {
        self.event_type.as_deref().is_none_or(|t| t == event_type)
    }
}

/// Every field of a trigger request, each optional and raw (see the module header).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
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
    pub event_type: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub score_threshold: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_url: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub emails: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email_subject: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email_preheader: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email_message: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub slack_webhook_url: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub teams_webhook_url: Option<Value>,
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
    pub created_at: Option<Value>,
}

/// `POST /triggers`: `name` and `score_threshold` required, `active` defaults to true.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct CreateTrigger(pub TriggerBody);

/// `PUT /triggers/{id}`: replaces every field; omitted optional fields become unset, except
/// `active`, which keeps its current value when omitted (use it or PATCH to (de)activate).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct ReplaceTrigger(pub TriggerBody);

/// `PATCH /triggers/{id}`: changes only the fields given; `null` clears an optional field.
/// `{"active": false}` deactivates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct PatchTrigger(pub TriggerBody);

const MAX_NAME: usize = 200;
const MAX_EMAILS: usize = 50;

/// The validated optional fields, shared by create / replace / patch.
struct Parsed {
    event_type: Option<String>,
    webhook_url: Option<String>,
    emails: Vec<String>,
    email_subject: Option<String>,
    email_preheader: Option<String>,
    email_message: Option<String>,
    slack_webhook_url: Option<String>,
    teams_webhook_url: Option<String>,
}

fn name(v: Option<Value>) -> Result<String, ValidationError> {
    check::text("name", check::required("name", v)?, MAX_NAME)
}

fn threshold(v: Option<Value>) -> Result<i64, ValidationError> {
    check::integer("score_threshold", &check::required("score_threshold", v)?)
}

impl TriggerBody {
    /// Checks the optional fields in request order; absent and `null` are unset.
    fn parse_optional(&mut self, f: &mut Faults) -> Parsed {
        Parsed {
            event_type: f.take(check::opt_text("event_type", self.event_type.take(), 200)),
            webhook_url: f.take(check::http_url("webhook_url", self.webhook_url.take())),
            emails: f.take(check::emails("emails", self.emails.take(), MAX_EMAILS)),
            email_subject: f.take(check::header_text(
                "email_subject",
                self.email_subject.take(),
                998,
            )),
            email_preheader: f.take(check::opt_text(
                "email_preheader",
                self.email_preheader.take(),
                998,
            )),
            email_message: f.take(check::opt_text(
                "email_message",
                self.email_message.take(),
                10_000,
            )),
            slack_webhook_url: f.take(check::http_url(
                "slack_webhook_url",
                self.slack_webhook_url.take(),
            )),
            teams_webhook_url: f.take(check::http_url(
                "teams_webhook_url",
                self.teams_webhook_url.take(),
            )),
        }
    }

    /// The whole trigger from a create or replace body, after `f`'s faults (the `id` check).
    fn build(
        mut self,
        id: String,
        created_at: String,
        active: bool,
        mut f: Faults,
    ) -> Result<MilestoneTrigger, Vec<ValidationError>> {
        let name = f.take(name(self.name.take()));
        let score_threshold = f.take(threshold(self.score_threshold.take()));
        let active = f
            .take(check::opt_bool("active", self.active.take()))
            .unwrap_or(active);
        let p = self.parse_optional(&mut f);
        f.finish(MilestoneTrigger {
            id,
            name,
            event_type: p.event_type,
            score_threshold,
            webhook_url: p.webhook_url,
            emails: p.emails,
            email_subject: p.email_subject,
            email_preheader: p.email_preheader,
            email_message: p.email_message,
            slack_webhook_url: p.slack_webhook_url,
            teams_webhook_url: p.teams_webhook_url,
            active,
            created_at,
        })
    }
}

impl CreateTrigger {
    /// `id` from `ids::new_id("trg")`, `now` RFC 3339. Every faulty field is reported.
    pub fn validate(self, id: String, now: &str) -> Result<MilestoneTrigger, Vec<ValidationError>> {
        let mut f = Faults::default();
        f.take(check::read_only_id(self.0.id.as_ref(), None));
        self.0.build(id, now.to_string(), true, f)
    }
}

impl ReplaceTrigger {
    pub fn validate(
        self,
        existing: &MilestoneTrigger,
    ) -> Result<MilestoneTrigger, Vec<ValidationError>> {
        let mut f = Faults::default();
        f.take(check::read_only_id(self.0.id.as_ref(), Some(&existing.id)));
        self.0.build(
            existing.id.clone(),
            existing.created_at.clone(),
            existing.active,
            f,
        )
    }
}

impl PatchTrigger {
    pub fn validate(
        self,
        existing: &MilestoneTrigger,
    ) -> Result<MilestoneTrigger, Vec<ValidationError>> {
        let mut b = self.0;
        let mut f = Faults::default();
        f.take(check::read_only_id(b.id.as_ref(), Some(&existing.id)));
        let mut out = existing.clone();
        if b.name.is_some() {
            if let Some(name) = f.get(name(b.name.take())) {
                out.name = name;
            }
        }
        if b.score_threshold.is_some() {
            if let Some(t) = f.get(threshold(b.score_threshold.take())) {
                out.score_threshold = t;
            }
        }
        if let Some(active) = f.take(check::opt_bool("active", b.active.take())) {
            out.active = active;
        }
        // Which optional fields were sent (absent = keep, null = clear).
        let sent = [
            b.event_type.is_some(),
            b.webhook_url.is_some(),
            b.emails.is_some(),
            b.email_subject.is_some(),
            b.email_preheader.is_some(),
            b.email_message.is_some(),
            b.slack_webhook_url.is_some(),
            b.teams_webhook_url.is_some(),
        ];
        let p = b.parse_optional(&mut f);
        let set = |i: usize, new: Option<String>, old: &mut Option<String>| {
            if sent[i] {
                *old = new;
            }
        };
        set(0, p.event_type, &mut out.event_type);
        set(1, p.webhook_url, &mut out.webhook_url);
        if sent[2] {
            out.emails = p.emails;
        }
        set(3, p.email_subject, &mut out.email_subject);
        set(4, p.email_preheader, &mut out.email_preheader);
        set(5, p.email_message, &mut out.email_message);
        set(6, p.slack_webhook_url, &mut out.slack_webhook_url);
        set(7, p.teams_webhook_url, &mut out.teams_webhook_url);
        f.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn create(v: Value) -> Result<MilestoneTrigger, Vec<ValidationError>> {
        let req: CreateTrigger = serde_json::from_value(v)
            .map_err(|e| vec![ValidationError::new("body", e.to_string())])?;
        req.validate("trg_1".into(), "2025-01-15T10:30:00Z")
    }

    /// Every fault, `; `-separated.
    fn err(v: Value) -> String {
        match create(v) {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    #[test]
    fn seed_003_request_gives_the_seed_response() {
        let t = create(json!({
            "name": "Hot Lead Alert",
            "event_type": "demo_request",
            "score_threshold": 75,
            "webhook_url": "https://hooks.example.com/leadvibe",
            "emails": ["sales@example.com"],
            "email_subject": "Hot Lead Alert",
            "email_message": "A lead just crossed the 75-point threshold!"
        }))
        .unwrap();
        let got = serde_json::to_value(&t).unwrap();
        let seed = json!({
            "id": "trg_1", "name": "Hot Lead Alert", "event_type": "demo_request",
            "score_threshold": 75, "webhook_url": "https://hooks.example.com/leadvibe",
            "emails": ["sales@example.com"], "active": true, "created_at": "2025-01-15T10:30:00Z"
        });
        for (k, v) in seed.as_object().unwrap() {
            assert_eq!(&got[k], v, "field {k}");
        }
        // Unset optionals are present as null, set extras carried through.
        assert_eq!(got["email_preheader"], Value::Null);
        assert_eq!(got["slack_webhook_url"], Value::Null);
        assert_eq!(got["email_subject"], "Hot Lead Alert");
        let back: MilestoneTrigger = serde_json::from_value(got).unwrap();
        assert_eq!(back, t);
        assert_eq!(
            t.targets().webhook_url.as_deref(),
            Some("https://hooks.example.com/leadvibe")
        );
        assert_eq!(t.targets().emails, vec!["sales@example.com".to_string()]);
    }

    #[test]
    fn validation_messages_name_the_field() {
        assert_eq!(err(json!({"score_threshold": 5})), "name is required");
        assert_eq!(
            err(json!({"name": "  ", "score_threshold": 5})),
            "name must not be empty"
        );
        assert_eq!(err(json!({"name": "x"})), "score_threshold is required");
        assert_eq!(
            err(json!({"name": "x", "score_threshold": 7.5})),
            "score_threshold must be an integer"
        );
        assert_eq!(
            err(json!({"name": "x", "score_threshold": "75"})),
            "score_threshold must be an integer"
        );
        let base = |k: &str, v: Value| {
            let mut o = json!({"name": "x", "score_threshold": 1});
            o[k] = v;
            err(o)
        };
        assert_eq!(
            base("webhook_url", json!("ftp://x.com/a")),
            "webhook_url must be an absolute http(s) URL"
        );
        assert_eq!(
            base("webhook_url", json!("/relative")),
            "webhook_url must be an absolute http(s) URL"
        );
        assert_eq!(
            base("slack_webhook_url", json!("nope")),
            "slack_webhook_url must be an absolute http(s) URL"
        );
        assert_eq!(
            base("teams_webhook_url", json!(3)),
            "teams_webhook_url must be a string"
        );
        assert_eq!(
            base("emails", json!(["a@b.co", "nope"])),
            "emails[1] must be an email address"
        );
        assert_eq!(
            base("emails", json!("a@b.co")),
            "emails must be an array of strings"
        );
        assert_eq!(
            base("email_subject", json!("hi\r\nBcc: x@y.z")),
            "email_subject must not contain line breaks"
        );
        assert_eq!(base("active", json!("yes")), "active must be a boolean");
        assert_eq!(
            base("id", json!("trg_mine")),
            "id is assigned by the server"
        );
        assert!(base("webhok_url", json!("https://x.com")).contains("unknown field `webhok_url`"));
    }

    #[test]
    fn put_replaces_and_patch_merges() {
        let t = create(
            json!({"name": "a", "event_type": "x", "score_threshold": 10,
            "webhook_url": "http://127.0.0.1:9/h", "active": false}),
        )
        .unwrap();
        assert!(!t.active);
        let put: ReplaceTrigger =
            serde_json::from_value(json!({"id": "trg_1", "name": "b", "score_threshold": 20}))
                .unwrap();
        let r = put.validate(&t).unwrap();
        assert_eq!(
            (
                r.name.as_str(),
                r.score_threshold,
                r.event_type.clone(),
                r.webhook_url.clone()
            ),
            ("b", 20, None, None)
        );
        assert!(!r.active, "PUT without active keeps it");
        assert_eq!(r.created_at, t.created_at);
        let wrong: ReplaceTrigger =
            serde_json::from_value(json!({"id": "trg_2", "name": "b", "score_threshold": 1}))
                .unwrap();
        assert_eq!(wrong.validate(&t).unwrap_err()[0].field, "id");

        let patch: PatchTrigger = serde_json::from_value(
            json!({"active": true, "webhook_url": null, "emails": ["s@x.io"]}),
        )
        .unwrap();
        let p = patch.validate(&t).unwrap();
        assert!(p.active);
        assert_eq!(
            (p.name.as_str(), p.score_threshold, p.event_type.as_deref()),
            ("a", 10, Some("x"))
        );
        assert_eq!(p.webhook_url, None);
        assert_eq!(p.emails, vec!["s@x.io".to_string()]);
        let bad: PatchTrigger = serde_json::from_value(json!({"score_threshold": null})).unwrap();
        assert_eq!(
            bad.validate(&t).unwrap_err()[0].to_string(),
            "score_threshold is required"
        );
    }

    #[test]
    fn every_faulty_field_is_reported_at_once() {
        assert_eq!(
            err(
                json!({"id": "trg_x", "score_threshold": "high", "webhook_url": "ftp://x",
                       "emails": ["not an address"]})
            ),
            "id is assigned by the server; name is required; \
             score_threshold must be an integer; webhook_url must be an absolute http(s) URL; \
             emails[0] must be an email address"
        );
    }
}
