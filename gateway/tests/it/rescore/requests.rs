//! Bodies the rescore and preview routes refuse: each fault named precisely, in the routes'
//! 400 `validation_failed` style (or 404 for a ruleset the OU does not have), and no job created.

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn garbage_bodies_are_refused_precisely_and_create_nothing() {
    let gw = start().await;
    let jobs = jobs_of(&gw);
    let future = leadstream_domain::ids::rfc3339_ms(leadstream_shared::ids::now_ms() + 3_600_000);
    let validation = |v: &Value| {
        assert_eq!(error(v).0, "validation_failed", "{v}");
        fields(v)
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(f, m)| (f.to_string(), m.to_string()))
            .collect()
    };

    for (body, expected) in [
        (
            json!({"since": "yesterday"}),
            pairs(&[("since", "since must be an RFC 3339 time")]),
        ),
        (
            json!({"since": future}),
            pairs(&[("since", "since must not be in the future")]),
        ),
        (
            json!({"fire_triggers": "true"}),
            pairs(&[("fire_triggers", "fire_triggers must be a boolean")]),
        ),
        (
            json!({"since": 1736935200000_i64, "fire_triggers": 1}),
            pairs(&[
                ("since", "since must be an RFC 3339 time"),
                ("fire_triggers", "fire_triggers must be a boolean"),
            ]),
        ),
    ] {
        let (s, _, v) = post(&gw, "/rulesets/rescore", ADMIN, &body).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert_eq!(validation(&v), expected, "{body}");
    }
    // Unknown fields and non-objects are refused as the ruleset routes refuse them.
    let (s, _, v) = post(&gw, "/rulesets/rescore", ADMIN, &json!({"sinse": null})).await;
    assert_eq!(s, 400);
    let f = validation(&v);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "body");
    assert!(f[0].1.contains("unknown field `sinse`"), "{v}");
    let (s, _, v) = post(&gw, "/rulesets/rescore", ADMIN, &json!([])).await;
    assert_eq!(
        (s, fields(&v)),
        (400, pairs(&[("body", "body must be a JSON object")]))
    );
    for path in ["/rulesets/rescore", "/rulesets/preview"] {
        let resp = gw
            .http
            .post(format!("{}{path}", gw.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{\"since\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(error(&v).0, "invalid_json", "{v}");
        assert!(error(&v).1.starts_with("malformed JSON: "), "{v}");
    }

    // A draft with faults: the same faults POST /rulesets finds, named by their path here.
    let draft = json!({"name": " ", "rules": [{"event_type": "page_view", "points": "ten"}],
                       "decay": {"half_life_seconds": 0}});
    let (s, as_ruleset) = gw.post("/rulesets", ADMIN, draft.clone()).await;
    assert_eq!(s, 400, "{as_ruleset}");
    let from_rulesets: Vec<(String, String)> = fields(&as_ruleset)
        .into_iter()
        .map(|(f, m)| (format!("ruleset.{f}"), format!("ruleset.{m}")))
        .collect();
    assert_eq!(from_rulesets.len(), 3, "{as_ruleset}");
    let (s, _, v) = post(&gw, "/rulesets/preview", ADMIN, &json!({"ruleset": draft})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(validation(&v), from_rulesets);
    for (body, expected) in [
        (json!({}), pairs(&[("ruleset", "ruleset is required")])),
        (
            json!({"ruleset": "Draft"}),
            pairs(&[("ruleset", "ruleset must be an object")]),
        ),
        (
            json!({"ruleset": {"name": "d"}, "wait_seconds": 500}),
            pairs(&[("wait_seconds", "wait_seconds must be between 0 and 120")]),
        ),
        (
            json!({"ruleset": {"name": "d"}, "wait_seconds": 1.5}),
            pairs(&[("wait_seconds", "wait_seconds must be an integer")]),
        ),
        (
            json!({"ruleset": {"name": "d"}, "ruleset_id": 7}),
            pairs(&[(
                "ruleset_id",
                "ruleset_id must be 1 to 64 letters, digits, '_', '-' or '.'",
            )]),
        ),
        (
            json!({"ruleset": {"name": ""}, "since": future, "wait_seconds": -1}),
            pairs(&[
                ("since", "since must not be in the future"),
                ("wait_seconds", "wait_seconds must be between 0 and 120"),
                ("ruleset.name", "ruleset.name must not be empty"),
            ]),
        ),
    ] {
        let (s, _, v) = post(&gw, "/rulesets/preview", ADMIN, &body).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert_eq!(validation(&v), expected, "{body}");
    }
    let (s, _, v) = post(
        &gw,
        "/rulesets/preview",
        ADMIN,
        &json!({"ruleset": {"name": "d", "typo": true}}),
    )
    .await;
    assert_eq!(s, 400);
    let f = validation(&v);
    assert_eq!(f[0].0, "ruleset");
    assert!(f[0].1.contains("unknown field `typo`"), "{v}");
    let (s, _, v) = post(
        &gw,
        "/rulesets/preview",
        ADMIN,
        &json!({"ruleset": {"name": "d"}, "ruleset_id": "rs_nope", "wait_seconds": 0}),
    )
    .await;
    assert_eq!(
        (s, error(&v)),
        (
            404,
            (
                "not_found".into(),
                "ruleset \"rs_nope\" does not exist".into()
            )
        )
    );
    // Another OU's ruleset is unknown here too.
    let (_, other_admin) = other_ou(&gw, "Other").await;
    let theirs = gw
        .expect(
            201,
            reqwest::Method::POST,
            "/rulesets",
            &other_admin,
            Some(json!({"name": "Theirs"})),
        )
        .await;
    let (s, _, _) = post(
        &gw,
        "/rulesets/preview",
        ADMIN,
        &json!({"ruleset": {"name": "d"}, "ruleset_id": theirs["id"], "wait_seconds": 0}),
    )
    .await;
    assert_eq!(s, 404);

    assert_eq!(
        active_ids(&jobs).await,
        Vec::<String>::new(),
        "no job created"
    );
    assert_eq!(gw.get("/rulesets", ADMIN).await.1, json!({"rulesets": []}));
}
