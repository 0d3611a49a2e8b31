//! Each seed's own examples, sent as the seed sends them, then read back from Kafka and checked
//! field by field, with key and partition.

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use leadstream_domain::event::{AliasKind, Origin};
use leadstream_shared::ids::parse_rfc3339_ms;

/// Seeds 001/002 know no OUs: a source key the bootstrap admin creates without `ou_ids` belongs
/// to `unit_default`, the OU the creating call acts in, and ingests at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_created_without_ou_ids_belongs_to_the_creators_ou() {
    let app = App::start(spawn_gateway).await;
    let key = app.key(&["ingest"], &[], Some("src_lariba")).await;
    let event = json!({"event_id": "evt_demo_001", "event_type": "payment.failed",
        "source_id": "src_lariba", "timestamp": "2026-06-01T10:00:00+0000",
        "payload": {"amount": 49.99}});
    let resp = app
        .post("/v1/events/ingest", Cred::ApiKey(&key), &[], &event)
        .await;
    let status = resp.status();
    let answer = body(resp).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], true);
    let listed = body(app.get("/api-keys", Cred::Bearer(ADMIN)).await).await;
    let k = listed["api_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["source_id"] == "src_lariba")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(k["ou_ids"], json!(["unit_default"]));
    assert_eq!(k["org_wide"], false);
    // Naming no OU, binding to none: refused with the way out named.
    let both =
        json!({"name": "x", "scopes": ["read"], "ou_ids": ["unit_default"], "org_wide": true});
    let (status, _, message) =
        error_of(app.post("/api-keys", Cred::Bearer(ADMIN), &[], &both).await).await;
    assert_eq!(status, 422, "{message}");
}

/// Seed 000: set the active OU (cookie), then the three examples (alias, lead_id + metadata,
/// timestamp) with Basic auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_examples_land_in_kafka_with_every_field() {
    let app = App::start(spawn_gateway).await;
    // An org-wide key names its OU per request; without one: seed 000's 400.
    let key = json!({"name": "org-wide", "scopes": ["ingest"], "org_wide": true});
    let created = app.create("/api-keys", &key).await;
    assert_eq!(created["org_wide"], true, "{created}");
    let key = secret(&created);
    let ex1 =
        json!({"alias_kind": "email", "alias": "user@example.com", "event_type": "page_view"});
    let (status, code, message) =
        error_of(app.post("/ingest", Cred::Basic(&key), &[], &ex1).await).await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (400, "active_ou_not_set", "active OU not set")
    );

    let resp = app
        .post(
            "/org-units/active",
            Cred::Basic(&key),
            &[],
            &json!({"ouId": "unit_default"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(cookie, "leadstream_ou=unit_default");
    let with_cookie = [("cookie", cookie.as_str())];

    let first = json!({"alias_kind": "email", "alias": "user@example.com", "event_type": "page_view",
                       "metadata": {"path": "/pricing", "utm_source": "google"}});
    let ex2 = json!({"lead_id": "ld_abc123", "event_type": "demo_request",
                     "metadata": {"product": "enterprise", "source": "website"}});
    let ex3 = json!({"alias_kind": "email", "alias": "User@Example.com ", "event_type": "email_open",
                     "timestamp": "2025-09-15T14:30:00Z"});
    let mut answers = Vec::new();
    for b in [&first, &ex1, &ex2, &ex3] {
        let resp = app
            .post("/ingest", Cred::Basic(&key), &with_cookie, b)
            .await;
        assert_eq!(resp.status(), 202);
        answers.push(body(resp).await);
    }
    assert_eq!(answers[0]["status"], "accepted");
    let lead = answers[0]["lead_id"].as_str().unwrap().to_string();
    assert!(lead.starts_with("ld_"));
    assert_eq!(
        answers[1]["lead_id"],
        lead.as_str(),
        "same email → same lead"
    );
    assert_eq!(
        answers[3]["lead_id"],
        lead.as_str(),
        "normalised email → same lead"
    );
    assert_eq!(answers[2]["lead_id"], "ld_abc123");

    let recs = app.records(4, Duration::from_millis(500)).await;
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_placed(r);
        assert_eq!(r.event.ou_id, "unit_default");
        assert_eq!(r.event.org_id, "org_default");
        assert_eq!(r.event.origin, Origin::Ingest);
        assert!(r
            .traceparent
            .as_deref()
            .is_some_and(|t| t.starts_with("00-")));
        assert!(r.event.received_at_ms > 0);
    }
    let by_id = |id: &serde_json::Value| {
        recs.iter()
            .find(|r| r.event.event_id == id.as_str().unwrap())
            .unwrap()
    };
    let e = &by_id(&answers[0]["event_id"]).event;
    assert_eq!(e.lead_id.as_deref(), Some(lead.as_str()));
    assert_eq!(e.aliases[0].kind, AliasKind::Email);
    assert_eq!(e.aliases[0].value, "user@example.com");
    assert_eq!(e.event_type, "page_view");
    assert_eq!(e.metadata["path"], "/pricing");
    assert_eq!(e.metadata["utm_source"], "google");
    assert_eq!(
        e.event_time_ms, e.received_at_ms,
        "no timestamp → receipt time"
    );
    assert!(e.source.is_none() && e.producer_event_id.is_none());
    let e = &by_id(&answers[2]["event_id"]).event;
    assert_eq!(e.lead_id.as_deref(), Some("ld_abc123"));
    assert_eq!(e.metadata["product"], "enterprise");
    assert_eq!(by_id(&answers[2]["event_id"]).key, "unit_default:ld_abc123");
    let e = &by_id(&answers[3]["event_id"]).event;
    assert_eq!(
        e.event_time_ms,
        parse_rfc3339_ms("2025-09-15T14:30:00Z").unwrap()
    );
    assert_eq!(e.event_type, "email_open");
    app.stop().await;
}

/// Seed 001: the example with X-API-Key bound to `src_demo` and Idempotency-Key; a retry
/// answers the same and writes nothing; another body with the key is 409; a foreign
/// `source_id` is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_example_is_stored_once_per_idempotency_key() {
    let app = App::start(spawn_gateway).await;
    let key = app
        .key(&["ingest"], &["unit_default"], Some("src_demo"))
        .await;
    let seed = json!({
        "event_id": "evt_demo_001",
        "event_type": "payment.failed",
        "source_id": "src_demo",
        "environment": "production",
        "severity": "critical",
        "timestamp": "2026-06-01T10:00:00Z",
        "payload": {"amount": 49.99, "currency": "EUR", "reason": "card_declined"}
    });
    let idem = [("idempotency-key", "demo-request-001")];
    let first = app
        .post("/v1/events/ingest", Cred::ApiKey(&key), &idem, &seed)
        .await;
    assert_eq!(first.status(), 200);
    let first = body(first).await;
    assert_eq!(first["accepted"], true);
    assert_eq!(first["status"], "stored");
    let event_id = first["event_id"].as_str().unwrap().to_string();
    assert!(event_id.starts_with("evt_"));

    let retry = app
        .post("/v1/events/ingest", Cred::ApiKey(&key), &idem, &seed)
        .await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(body(retry).await, first, "a retry returns the first answer");

    let mut other = seed.clone();
    other["severity"] = json!("info");
    let (status, code, _) = error_of(
        app.post("/v1/events/ingest", Cred::ApiKey(&key), &idem, &other)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "idempotency_key_reused"));

    let mut foreign = seed.clone();
    foreign["source_id"] = json!("src_other");
    let (status, _, msg) = error_of(
        app.post(
            "/v1/events/ingest",
            Cred::ApiKey(&key),
            &[("idempotency-key", "x2")],
            &foreign,
        )
        .await,
    )
    .await;
    assert_eq!(status, 403, "{msg}");

    let recs = app.records(1, Duration::from_secs(1)).await;
    assert_eq!(recs.len(), 1, "the retry wrote nothing");
    let r = &recs[0];
    assert_placed(r);
    let e = &r.event;
    assert_eq!(e.event_id, event_id);
    assert_eq!(e.source.as_deref(), Some("src_demo"));
    assert_eq!(e.producer_event_id.as_deref(), Some("evt_demo_001"));
    assert_eq!(e.event_type, "payment.failed");
    assert_eq!(e.environment.as_deref(), Some("production"));
    assert_eq!(e.severity.as_deref(), Some("critical"));
    assert_eq!(
        e.event_time_ms,
        parse_rfc3339_ms("2026-06-01T10:00:00Z").unwrap()
    );
    assert_eq!(e.metadata["amount"], 49.99);
    assert_eq!(e.metadata["reason"], "card_declined");
    assert_eq!(e.origin, Origin::Events);
    assert_eq!(
        r.key,
        format!("unit_default:{event_id}"),
        "no lead named: keyed by the event"
    );
    app.stop().await;
}

fn cdp_seed() -> serde_json::Value {
    json!({
        "source": "brand.pos",
        "externalEventId": "txn_987654321",
        "eventType": "purchase_completed",
        "occurredAt": "2026-05-20T12:45:00Z",
        "identity": {"externalUserId": "L-123456789", "email": "customer@example.com"},
        "properties": {"order_id": "order_42", "amount": 120.50, "currency": "USD", "store_id": "store_42"}
    })
}

async fn register_purchase(app: &App) {
    app.event_type(json!({
        "name": "purchase_completed",
        "required_properties": ["order_id", "amount"],
        "properties": {"order_id": "string", "amount": "number", "currency": "string"}
    }))
    .await;
}

/// Seed 002: the example is accepted, its repeat is a duplicate of the first id, and the batch
/// example's three outcomes (accepted, duplicate, per-item error) come back in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_accepts_dedupes_and_batches() {
    let app = App::start(spawn_gateway).await;
    register_purchase(&app).await;
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let resp = app
        .post("/v1/cdp/events", Cred::Bearer(&key), &[], &cdp_seed())
        .await;
    assert_eq!(resp.status(), 202);
    let accepted = body(resp).await;
    assert_eq!(accepted["status"], "accepted");
    let original = accepted["event_id"].as_str().unwrap().to_string();

    let resp = app
        .post("/v1/cdp/events", Cred::Bearer(&key), &[], &cdp_seed())
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await,
        json!({"status": "duplicate", "original_event_id": original})
    );

    let mut fresh = cdp_seed();
    fresh["externalEventId"] = json!("txn_a");
    let mut bad = cdp_seed();
    bad["externalEventId"] = json!("txn_c");
    bad["identity"] = json!({});
    let batch = json!({"items": [fresh, cdp_seed(), bad]});
    let resp = app
        .post("/v1/cdp/events/batch", Cred::Bearer(&key), &[], &batch)
        .await;
    assert_eq!(resp.status(), 200);
    let results = body(resp).await["results"].clone();
    assert_eq!(results[0]["status"], "accepted");
    assert_eq!(
        results[1],
        json!({"status": "duplicate", "original_event_id": original})
    );
    assert_eq!(
        results[2],
        json!({"status": "error", "error_code": "validation_failed",
               "message": "identity.externalUserId, identity.email, identity.phone, or identity.deviceKey is required"})
    );

    let recs = app.records(2, Duration::from_secs(1)).await;
    assert_eq!(recs.len(), 2, "duplicates and errors publish nothing");
    for r in &recs {
        assert_placed(r);
        let e = &r.event;
        assert_eq!(e.origin, Origin::Cdp);
        assert_eq!(e.source.as_deref(), Some("brand.pos"));
        assert_eq!(e.event_type, "purchase_completed");
        assert_eq!(e.aliases.len(), 2);
        assert_eq!(e.aliases[0].kind, AliasKind::ExternalId);
        assert_eq!(e.aliases[0].value, "L-123456789");
        assert_eq!(e.aliases[1].value, "customer@example.com");
        assert_eq!(
            e.event_time_ms,
            parse_rfc3339_ms("2026-05-20T12:45:00Z").unwrap()
        );
        assert_eq!(e.metadata["amount"], 120.5);
    }
    assert_eq!(
        recs[0].event.lead_id, recs[1].event.lead_id,
        "same identity → same lead"
    );
    let first = recs.iter().find(|r| r.event.event_id == original).unwrap();
    assert_eq!(
        first.event.producer_event_id.as_deref(),
        Some("txn_987654321")
    );
    app.stop().await;
}

/// Seed 002 validation: unregistered type, missing required property, wrong property type → 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_contract_violations_are_422() {
    let app = App::start(spawn_gateway).await;
    register_purchase(&app).await;
    let mut unknown = cdp_seed();
    unknown["eventType"] = json!("refund_issued");
    let mut missing = cdp_seed();
    missing["properties"] = json!({"order_id": "o"});
    let mut wrong = cdp_seed();
    wrong["properties"]["amount"] = json!("lots");
    for (b, needle) in [
        (unknown, "not registered"),
        (missing, "`amount` is required"),
        (wrong, "must be a number"),
    ] {
        let (status, code, msg) = error_of(
            app.post("/v1/cdp/events", Cred::Bearer(ADMIN), &[], &b)
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (422, "validation_failed"));
        assert!(msg.contains(needle), "{msg}");
    }
    app.stop().await;
}

/// Bulk import: 2,000 NDJSON events and a gzip JSON array, original timestamps kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_ndjson_and_gzip_keep_timestamps() {
    let app = App::start(spawn_gateway).await;
    let n = 2000;
    let mut ndjson = String::new();
    for i in 0..n {
        let ts = format!("2024-01-01T00:{:02}:{:02}Z", (i / 60) % 60, i % 60);
        ndjson.push_str(
            &json!({"alias_kind": "cookie", "alias": format!("c{}", i % 50),
            "event_type": "page_view", "timestamp": ts, "event_id": format!("imp-{i}")})
            .to_string(),
        );
        ndjson.push('\n');
    }
    ndjson.push_str("{\"event_type\": 5}\n");
    let resp = app
        .post_raw(
            "/import",
            Cred::Bearer(ADMIN),
            &[],
            "application/x-ndjson",
            ndjson.into_bytes(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let b = body(resp).await;
    assert_eq!(b["accepted"], n);
    assert_eq!(b["rejected"], 1);
    assert_eq!(b["errors"][0]["index"], n);

    let array: Vec<_> = (0..10)
        .map(|i| {
            json!({"lead_id": format!("ld_hist{i}"), "event_type": "email_open",
                        "timestamp": "2023-03-03T03:03:03Z"})
        })
        .collect();
    let gzipped = gzip(&serde_json::to_vec(&array).unwrap());
    let resp = app
        .post_gzip("/import", Cred::Bearer(ADMIN), "application/json", gzipped)
        .await;
    assert_eq!(body(resp).await["accepted"], 10);

    let recs = app.records(n + 10, Duration::from_secs(1)).await;
    assert_eq!(recs.len(), n + 10);
    let mut leads = std::collections::HashSet::new();
    for r in &recs {
        assert_placed(r);
        assert_eq!(r.event.origin, Origin::Import);
        if let Some(pid) = &r.event.producer_event_id {
            let i: i64 = pid.trim_start_matches("imp-").parse().unwrap();
            let ts = format!("2024-01-01T00:{:02}:{:02}Z", (i / 60) % 60, i % 60);
            assert_eq!(r.event.event_time_ms, parse_rfc3339_ms(&ts).unwrap());
            leads.insert(r.event.lead_id.clone().unwrap());
        } else {
            assert_eq!(
                r.event.event_time_ms,
                parse_rfc3339_ms("2023-03-03T03:03:03Z").unwrap()
            );
        }
    }
    assert_eq!(leads.len(), 50, "50 cookies → 50 leads");
    app.stop().await;
}
