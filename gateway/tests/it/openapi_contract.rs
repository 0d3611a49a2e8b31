//! The OpenAPI document against the server (issue 18, part 2), checked with an independent JSON
//! Schema validator (`leadstream_testkit::openapi`): bodies the document refuses are refused by
//! the server too. The webhook bodies and simulate answers the services really send are checked
//! against it with the whole pipeline in one process: `e2e/tests/pipeline/openapi_contract.rs`.

use serde_json::json;

use crate::common::*;
use leadstream_testkit::openapi::{document, request_schema, validator};

/// Bodies the document refuses are refused by the server too: the constraints it states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stated_constraints_are_the_servers() {
    let doc = document();
    let app = App::start(spawn_gateway).await;
    for (path, b) in [
        ("/org-units", json!({"name": "  "})),
        ("/api-keys", json!({"name": "", "scopes": ["read"]})),
        ("/rulesets", json!({"name": " "})),
        (
            "/rulesets",
            json!({"name": "r", "rules": [{"event_type": "x", "points": 2000000}]}),
        ),
        ("/triggers", json!({"name": "", "score_threshold": 1})),
        (
            "/sequences",
            json!({"name": "s", "event_types": [], "window_seconds": 60}),
        ),
        (
            "/sequences",
            json!({"name": "s", "event_types": ["a"], "window_seconds": 0}),
        ),
        (
            "/sequences",
            json!({"name": "s", "event_types": ["a"], "window_seconds": 60, "typo": 1}),
        ),
        ("/v1/cdp/event-types", json!({"name": ""})),
        ("/rulesets/rescore", json!({"since": "yesterday"})),
        ("/rulesets/rescore", json!({"fire_triggers": "yes"})),
        ("/rulesets/rescore", json!({"sinse": null})),
        ("/rulesets/preview", json!({"since": null})),
        (
            "/rulesets/preview",
            json!({"ruleset": {"name": "d"}, "wait_seconds": 500}),
        ),
        ("/rulesets/preview", json!({"ruleset": {"name": " "}})),
    ] {
        let v = validator(&doc, &request_schema(path));
        assert!(!v.is_valid(&b), "the document allows {path} {b}");
        let resp = app.post(path, Cred::Bearer(ADMIN), &[], &b).await;
        let status = resp.status().as_u16();
        assert!(
            (400..500).contains(&status),
            "{path} {b} → {status} {}",
            body(resp).await
        );
    }
    app.stop().await;
}
