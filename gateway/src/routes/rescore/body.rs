//! The bodies of `POST /rulesets/rescore` and `POST /rulesets/preview`, validated the way the
//! ruleset and trigger routes validate theirs: every field is read raw, the first fault of each
//! is collected ([`Faults`]), and a body with faults is one 400 `validation_failed` listing all
//! of them. An unknown field is a 400 on `body` (serde's message names it), as for rulesets.
//! A draft ruleset is validated by the model `POST /rulesets` uses; its faults are named by
//! their path in this body (`ruleset.name`, `ruleset.rules[0].points`).

use serde::Deserialize;
use serde_json::Value;

use leadstream_domain::ids::parse_rfc3339_ms;
use leadstream_domain::model::check::{self, Faults};
use leadstream_domain::model::ruleset::{CreateRuleset, Ruleset};
use leadstream_domain::model::{present, ValidationError};

use crate::error::ApiError;

/// How long a preview waits for its result by default, and at most.
pub const WAIT_DEFAULT_SECS: u64 = 30;
pub const WAIT_MAX_SECS: i64 = 120;

/// `POST /rulesets/rescore`, raw.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescoreBody {
    #[serde(default, deserialize_with = "present")]
    since: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    fire_triggers: Option<Value>,
}

/// A validated rescore request.
#[derive(Debug, PartialEq)]
pub struct RescoreRequest {
    pub since_ms: Option<i64>,
    pub fire_triggers: bool,
}

impl RescoreBody {
    /// `now_ms`: a `since` after it is refused.
    pub fn validate(self, now_ms: i64) -> Result<RescoreRequest, ApiError> {
        let mut f = Faults::default();
        let req = RescoreRequest {
            since_ms: f.take(since(self.since, now_ms)),
            fire_triggers: f
                .take(check::opt_bool("fire_triggers", self.fire_triggers))
                .unwrap_or(false),
        };
        Ok(f.finish(req)?)
    }
}

/// `POST /rulesets/preview`, raw.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    #[serde(default, deserialize_with = "present")]
    ruleset: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    ruleset_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    since: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    wait_seconds: Option<Value>,
}

/// A validated preview request. The draft's id is `ruleset_id` when given (whether that
/// ruleset exists is the route's to check), else a new one.
#[derive(Debug)]
pub struct PreviewRequest {
    pub draft: Ruleset,
    pub replaces: Option<String>,
    pub since_ms: Option<i64>,
    pub wait_secs: u64,
}

impl PreviewBody {
    /// `new_id`: the draft's id when it replaces no ruleset; `now`: RFC 3339, its timestamps.
    pub fn validate(
        self,
        now_ms: i64,
        now: &str,
        new_id: impl FnOnce() -> String,
    ) -> Result<PreviewRequest, ApiError> {
        let mut f = Faults::default();
        let since_ms = f.take(since(self.since, now_ms));
        let wait_secs = f
            .take(
                check::given(self.wait_seconds)
                    .map(|v| check::int_in("wait_seconds", &v, 0, WAIT_MAX_SECS))
                    .transpose(),
            )
            .map_or(WAIT_DEFAULT_SECS, |n| n as u64);
        let replaces = f.take(
            check::given(self.ruleset_id)
                .map(|v| check::ident("ruleset_id", v))
                .transpose(),
        );
        let draft = check::required("ruleset", self.ruleset)
            .and_then(|v| check::object::<CreateRuleset>("ruleset", v));
        let draft = match f.get(draft) {
            None => None,
            Some(body) => {
                let id = replaces.clone().unwrap_or_else(new_id);
                match body.validate(id, now) {
                    Ok(r) => Some(r),
                    Err(faults) => {
                        for e in faults {
                            f.note(ValidationError::new(
                                format!("ruleset.{}", e.field),
                                e.message,
                            ));
                        }
                        None
                    }
                }
            }
        };
        let req = draft.map(|draft| PreviewRequest {
            draft,
            replaces,
            since_ms,
            wait_secs,
        });
        // A draft that did not validate left its faults in `f`.
        f.finish(req)?
            .ok_or_else(|| ApiError::invalid("ruleset", "ruleset is not a valid ruleset"))
    }
}

/// `since`: absent or null, or an RFC 3339 time that is not in the future.
fn since(v: Option<Value>, now_ms: i64) -> Result<Option<i64>, ValidationError> {
    let Some(v) = check::given(v) else {
        return Ok(None);
    };
    let ms = v
        .as_str()
        .and_then(parse_rfc3339_ms)
        .ok_or_else(|| ValidationError::new("since", "must be an RFC 3339 time"))?;
    if ms > now_ms {
        return Err(ValidationError::new("since", "must not be in the future"));
    }
    Ok(Some(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z

    fn fields(e: ApiError) -> Vec<(String, String)> {
        match e {
            ApiError::InvalidFields(f) => f.into_iter().map(|f| (f.field, f.message)).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn rescore(v: Value) -> Result<RescoreRequest, ApiError> {
        serde_json::from_value::<RescoreBody>(v)
            .unwrap()
            .validate(NOW)
    }

    fn preview(v: Value) -> Result<PreviewRequest, ApiError> {
        serde_json::from_value::<PreviewBody>(v).unwrap().validate(
            NOW,
            "2025-01-15T10:00:00Z",
            || "rs_new".into(),
        )
    }

    #[test]
    fn rescore_defaults_and_every_fault() {
        assert_eq!(
            rescore(json!({})).unwrap(),
            RescoreRequest {
                since_ms: None,
                fire_triggers: false
            }
        );
        assert_eq!(
            rescore(json!({"since": "2025-01-15T09:00:00Z", "fire_triggers": true})).unwrap(),
            RescoreRequest {
                since_ms: Some(NOW - 3_600_000),
                fire_triggers: true
            }
        );
        assert_eq!(rescore(json!({"since": null})).unwrap().since_ms, None);
        assert_eq!(
            fields(rescore(json!({"since": "yesterday", "fire_triggers": "yes"})).unwrap_err()),
            vec![
                ("since".into(), "since must be an RFC 3339 time".into()),
                (
                    "fire_triggers".into(),
                    "fire_triggers must be a boolean".into()
                ),
            ]
        );
        assert_eq!(
            fields(rescore(json!({"since": "2025-01-15T10:00:00.001Z"})).unwrap_err()),
            vec![("since".into(), "since must not be in the future".into())]
        );
        assert!(serde_json::from_value::<RescoreBody>(json!({"sinse": null})).is_err());
    }

    #[test]
    fn preview_validates_the_draft_as_post_rulesets_does() {
        let ok = preview(json!({"ruleset": {"name": "Draft", "rules": [
            {"event_type": "page_view", "points": 5}]}}))
        .unwrap();
        assert_eq!(
            (ok.draft.id.as_str(), ok.wait_secs, ok.replaces),
            ("rs_new", 30, None)
        );
        assert_eq!(ok.draft.rules[0].points, 5);
        let ok =
            preview(json!({"ruleset": {"name": "D"}, "ruleset_id": "rs_1", "wait_seconds": 0}))
                .unwrap();
        assert_eq!(
            (ok.draft.id.as_str(), ok.wait_secs, ok.replaces.as_deref()),
            ("rs_1", 0, Some("rs_1"))
        );
        let e = preview(
            json!({"ruleset": {"name": " ", "rules": [{"event_type": "x"}]},
                               "wait_seconds": 500, "since": 5}),
        )
        .unwrap_err();
        let f = fields(e);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "since",
                "wait_seconds",
                "ruleset.name",
                "ruleset.rules[0].points"
            ]
        );
        assert_eq!(f[1].1, "wait_seconds must be between 0 and 120");
        assert_eq!(
            fields(preview(json!({})).unwrap_err()),
            vec![("ruleset".into(), "ruleset is required".into())]
        );
        assert_eq!(
            fields(preview(json!({"ruleset": {"name": "x", "typo": 1}})).unwrap_err())[0].0,
            "ruleset"
        );
    }
}
