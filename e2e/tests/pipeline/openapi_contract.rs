//! The OpenAPI document against what the services really send (issue 18, part 2), checked with
//! an independent JSON Schema validator (`leadstream_testkit::openapi`: the `jsonschema` crate,
//! draft 2020-12 as OpenAPI 3.1 uses, formats asserted):
//!
//! - the webhook bodies of seeds 003 and 004 (`webhooks.milestoneFired` / `sequenceFired`) as a
//!   local receiver got them from the real notifier, after the real processor fired (and the
//!   `webhook-*` headers the document names were there);
//! - the answers of both simulate routes, and the requests this test sent them;
//! - requests the document allows are accepted, and a CDP batch with a non-object item is
//!   answered per item, as the document says.
//!
//! That the server refuses what the document refuses is checked in the gateway's own tests
//! (`gateway/tests/it/openapi_contract.rs`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use leadstream_testkit::openapi::{assert_valid, document, request_schema, response_schema};
use leadstream_testkit::receiver::Receiver;
use leadstream_testkit::wait_until;

/// The bodies the receiver got, with whether the signing headers were present.
fn deliveries(rx: &Receiver) -> Vec<(Value, bool)> {
    rx.on("/hook")
        .into_iter()
        .map(|r| {
            let signed = ["webhook-id", "webhook-timestamp", "webhook-signature"]
                .iter()
                .all(|h| r.headers.contains_key(*h));
            (
                serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                signed,
            )
        })
        .collect()
}

/// POST a body the document must allow; the answer must have `status` and match the document.
async fn exchange(app: &App, doc: &Value, path: &str, b: &Value, status: u16) -> Value {
    let doc_path = path_template(path);
    assert_valid(doc, &request_schema(&doc_path), b);
    let resp = app.post(path, Cred::Bearer(ADMIN), &[], b).await;
    let got = resp.status().as_u16();
    let answer = body(resp).await;
    assert_eq!(got, status, "POST {path} {b} → {answer}");
    if status == 200 {
        assert_valid(doc, &response_schema(&doc_path, status), &answer);
    }
    answer
}

/// `/triggers/trg_1/simulate` → `/triggers/{id}/simulate`.
fn path_template(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() == 4 && parts[3] == "simulate" {
        format!("/{}/{{id}}/simulate", parts[1])
    } else {
        path.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_bodies_and_simulate_answers_match_the_document() {
    let doc = document();
    let app = App::start(spawn_gateway).await;
    let services = Services::both(&notifier_env(&app, &[]));
    let rx = Receiver::start().await;
    let hook_url = rx.url("/hook");

    // Seed 003 and 004 objects, created with bodies the document allows.
    exchange(
        &app,
        &doc,
        "/rulesets",
        &json!({"name": "Engagement", "rules": [
            {"event_type": "demo_request", "points": 50},
            {"event_type": "pricing_page_view", "points": 30,
             "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]}]}),
        201,
    )
    .await;
    let trigger = exchange(
        &app,
        &doc,
        "/triggers",
        &json!({"name": "Hot Lead Alert", "event_type": "demo_request", "score_threshold": 75,
                "webhook_url": hook_url}),
        201,
    )
    .await;
    let steps = ["pricing_page_view", "whitepaper_download", "demo_request"];
    let sequence = exchange(
        &app,
        &doc,
        "/sequences",
        &json!({"name": "Buying Intent Sequence", "event_types": steps, "window_seconds": 604800,
                "window_unit": "7 days", "ordered": true, "webhook_url": hook_url}),
        201,
    )
    .await;
    let (trg, seq) = (
        trigger["id"].as_str().unwrap().to_string(),
        sequence["id"].as_str().unwrap().to_string(),
    );

    // Events that fire both; the processor writes the firings.
    let times = [
        "2025-01-10T09:00:00Z",
        "2025-01-12T14:30:00Z",
        "2025-01-14T11:00:00Z",
    ];
    let mut lead = String::new();
    for (ty, at) in steps.iter().zip(times) {
        let b = json!({"alias_kind": "email", "alias": "buyer@example.com", "event_type": ty,
                       "timestamp": at, "metadata": {"path": "/pricing"}});
        let a = exchange(&app, &doc, "/ingest", &b, 202).await;
        lead = a["lead_id"].as_str().unwrap().to_string();
    }
    // What the notifier delivered: one milestone and one sequence webhook.
    let bodies = wait_until(Duration::from_secs(90), "two webhook deliveries", || {
        let got = deliveries(&rx);
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    let of = |kind: &str| {
        bodies
            .iter()
            .find(|(b, _)| b["trigger"]["type"] == kind)
            .unwrap_or_else(|| panic!("a {kind} webhook in {bodies:?}"))
    };
    let (milestone, signed) = of("milestone");
    assert!(signed, "the webhook-* headers the document names");
    assert_eq!(milestone["trigger"]["id"], trg.as_str());
    assert_valid(
        &doc,
        "/webhooks/milestoneFired/post/requestBody/content/application~1json/schema",
        milestone,
    );
    let (sequence_body, signed) = of("sequence");
    assert!(signed, "the webhook-* headers the document names");
    assert_eq!(sequence_body["trigger"]["id"], seq.as_str());
    assert_valid(
        &doc,
        "/webhooks/sequenceFired/post/requestBody/content/application~1json/schema",
        sequence_body,
    );

    // Both simulate routes, in each of their forms.
    let event = json!({"event_type": "demo_request", "metadata": {"plan": "pro"},
                       "created_at": "2025-01-15T10:00:00Z"});
    for b in [
        json!({"score_before": 70, "score_after": 80, "event": event}),
        json!({"score_before": 10, "score_after": 20, "event": {"event_type": "page_view"}}),
        json!({"lead_id": lead, "event": event}),
    ] {
        let a = exchange(&app, &doc, &format!("/triggers/{trg}/simulate"), &b, 200).await;
        assert!(a["would_fire"].is_boolean(), "{a}");
    }
    let fires = exchange(
        &app,
        &doc,
        &format!("/sequences/{seq}/simulate"),
        &json!({"events": [
            {"id": "e1", "event_type": "pricing_page_view", "created_at": "2025-01-10T09:00:00Z"},
            {"event_type": "whitepaper_download", "created_at": "2025-01-11T09:00:00Z"},
            {"event_type": "demo_request", "created_at": "2025-01-12T09:00:00+00:00"}]}),
        200,
    )
    .await;
    assert_eq!(fires["would_fire"], true, "{fires}");
    let not = exchange(
        &app,
        &doc,
        &format!("/sequences/{seq}/simulate"),
        &json!({"lead_id": lead}),
        200,
    )
    .await;
    assert_eq!(not["payload"], Value::Null, "{not}");

    // The batch: items that are not objects are allowed by the document and answered per item.
    let batch = json!({"items": [42, {"source": "s"}]});
    let a = exchange(&app, &doc, "/v1/cdp/events/batch", &batch, 200).await;
    assert_eq!(a["results"][0]["error_code"], "validation_failed", "{a}");
    assert_eq!(a["results"][1]["error_code"], "validation_failed", "{a}");

    services.stop().await;
    app.stop().await;
}
