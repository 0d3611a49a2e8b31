//! Seed 002's 409 (issue 18, part 2): a reused `externalEventId` with a different body is a
//! non-retryable collision (409 `idempotency_conflict`); a retry that meets the first request
//! still being stored is retryable (503 `request_in_progress` with `Retry-After`). The same two
//! answers for seed 001's `Idempotency-Key` (409 `idempotency_key_reused`, 503).

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use leadstream_shared::store::Cmd;

fn purchase(ext: &str, amount: f64) -> serde_json::Value {
    json!({
        "source": "brand.pos",
        "externalEventId": ext,
        "eventType": "purchase_completed",
        "identity": {"email": "customer@example.com"},
        "properties": {"order_id": "order_42", "amount": amount}
    })
}

/// Put a claim that looks like a request still publishing `(source, id)` right now (its time
/// lies ahead, so it never turns stale during the test).
async fn pending_claim(app: &App, scope: &str, source: &str, id: &str) {
    let parts = serde_json::to_string(&[source, id]).unwrap();
    let key = app.keys.ingest_claim("unit_default", scope, &parts);
    let at_ms = leadstream_shared::ids::now_ms() + 600_000;
    let value = json!({"state": "pending", "at_ms": at_ms, "event_id": "evt_elsewhere"});
    app.store()
        .await
        .exec(vec![Cmd::Set {
            key,
            value: serde_json::to_vec(&value).unwrap(),
            ttl_ms: Some(600_000),
        }])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdp_reuse_with_another_body_is_409_and_in_progress_is_503() {
    let app = App::with_env(&[("LEADSTREAM_PRODUCE_TIMEOUT", "2s")], spawn_gateway).await;
    app.event_type(json!({
        "name": "purchase_completed",
        "required_properties": ["order_id", "amount"],
        "properties": {"order_id": "string", "amount": "number"}
    }))
    .await;
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let resp = app
        .post(
            "/v1/cdp/events",
            Cred::Bearer(&key),
            &[],
            &purchase("txn_1", 10.0),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let first = body(resp).await["event_id"].as_str().unwrap().to_string();

    // Same id, same body (keys in another order): a duplicate of the first.
    let same = r#"{"properties": {"amount": 10.0, "order_id": "order_42"},
        "identity": {"email": "customer@example.com"}, "eventType": "purchase_completed",
        "externalEventId": "txn_1", "source": "brand.pos"}"#;
    let resp = app
        .post_raw(
            "/v1/cdp/events",
            Cred::Bearer(&key),
            &[],
            "application/json",
            same.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await,
        json!({"status": "duplicate", "original_event_id": first})
    );

    // Same id, another body: 409 with its own code, no Retry-After.
    let resp = app
        .post(
            "/v1/cdp/events",
            Cred::Bearer(&key),
            &[],
            &purchase("txn_1", 99.0),
        )
        .await;
    assert!(resp.headers().get("retry-after").is_none());
    let (status, code, message) = error_of(resp).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "idempotency_conflict"),
        "{message}"
    );

    // In a batch: per item, in order; a copy inside the batch with another body too.
    let batch = json!({"items": [
        purchase("txn_1", 10.0),
        purchase("txn_1", 11.0),
        purchase("txn_2", 5.0),
        purchase("txn_2", 6.0),
    ]});
    let resp = app
        .post("/v1/cdp/events/batch", Cred::Bearer(&key), &[], &batch)
        .await;
    assert_eq!(resp.status(), 200);
    let results = body(resp).await["results"].clone();
    assert_eq!(results[0]["status"], "duplicate");
    assert_eq!(results[1]["error_code"], "idempotency_conflict");
    assert_eq!(results[2]["status"], "accepted");
    assert_eq!(results[3]["error_code"], "idempotency_conflict");

    // A request is storing txn_3 right now: retryable 503 with Retry-After.
    pending_claim(&app, "cdp", "brand.pos", "txn_3").await;
    let resp = app
        .post(
            "/v1/cdp/events",
            Cred::Bearer(&key),
            &[],
            &purchase("txn_3", 1.0),
        )
        .await;
    assert!(resp.headers().get("retry-after").is_some());
    let (status, code, _) = error_of(resp).await;
    assert_eq!((status, code.as_str()), (503, "request_in_progress"));
    let batch = json!({"items": [purchase("txn_3", 1.0), purchase("txn_4", 1.0)]});
    let resp = app
        .post("/v1/cdp/events/batch", Cred::Bearer(&key), &[], &batch)
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("retry-after").is_some());
    let results = body(resp).await["results"].clone();
    assert_eq!(results[0]["error_code"], "request_in_progress");
    assert_eq!(results[1]["status"], "accepted");

    // Only txn_1, txn_2 and txn_4 were published.
    let recs = app.records(3, Duration::from_millis(500)).await;
    let mut ids: Vec<_> = recs
        .iter()
        .map(|r| r.event.producer_event_id.clone().unwrap_or_default())
        .collect();
    ids.sort();
    assert_eq!(ids, ["txn_1", "txn_2", "txn_4"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_in_progress_is_503() {
    let app = App::with_env(&[("LEADSTREAM_PRODUCE_TIMEOUT", "2s")], spawn_gateway).await;
    let key = app
        .key(&["ingest"], &["unit_default"], Some("src_demo"))
        .await;
    pending_claim(&app, "idem", "src_demo", "idem-1").await;
    let event = json!({"event_id": "e1", "event_type": "payment.failed", "source_id": "src_demo",
                       "timestamp": "2026-06-01T10:00:00Z", "payload": {}});
    let resp = app
        .post(
            "/v1/events/ingest",
            Cred::ApiKey(&key),
            &[("idempotency-key", "idem-1")],
            &event,
        )
        .await;
    assert!(resp.headers().get("retry-after").is_some());
    let (status, code, _) = error_of(resp).await;
    assert_eq!((status, code.as_str()), (503, "request_in_progress"));
    app.stop().await;
}
