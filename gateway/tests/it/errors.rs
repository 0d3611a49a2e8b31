//! One test per error case of issue 2: each answers the documented status with a JSON body
//! `{"error":{"code","message"}}` and writes nothing to Kafka.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

async fn expect(
    app: &App,
    path: &str,
    cred: Cred<'_>,
    ct: &str,
    raw: &[u8],
    status: u16,
    code: &str,
) -> String {
    let resp = app.post_raw(path, cred, &[], ct, raw.to_vec()).await;
    let (s, c, m) = error_of(resp).await;
    assert_eq!((s, c.as_str()), (status, code), "{path}: {m}");
    m
}

fn j(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

/// The events topic's end offsets are where they were when the gateway started: no record was
/// written (asked of the broker, not of a consumer group that might not have joined yet).
async fn nothing_published(app: &App) {
    let now = app.end_offsets().await;
    assert_eq!(now, app.offsets_at_start, "bad input wrote records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_on_every_route() {
    let app = App::start(spawn_gateway).await;
    for path in [
        "/ingest",
        "/v1/events/ingest",
        "/v1/cdp/events",
        "/v1/cdp/events/batch",
        "/import",
    ] {
        let m = expect(
            &app,
            path,
            Cred::Bearer(ADMIN),
            "application/json",
            b"{\"event_type\": ",
            400,
            "invalid_json",
        )
        .await;
        assert!(m.starts_with("malformed JSON"), "{m}");
    }
    nothing_published(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_types_unknown_alias_bad_timestamp_and_metadata_are_named() {
    let app = App::start(spawn_gateway).await;
    let cases = [
        (
            json!({"lead_id": "ld_1", "event_type": 42}),
            "`event_type` must be a string, got number",
        ),
        (
            json!({"alias_kind": "fax", "alias": "1", "event_type": "a"}),
            "unknown alias_kind \"fax\"",
        ),
        (
            json!({"lead_id": "ld_1", "event_type": "a", "timestamp": "yesterday"}),
            "`timestamp` is not an RFC 3339 timestamp",
        ),
        (
            json!({"lead_id": "ld_1", "event_type": "a", "metadata": [1, 2]}),
            "`metadata` must be a JSON object, got array",
        ),
        (
            json!({"event_type": "a"}),
            "either `lead_id` or both `alias_kind` and `alias` are required",
        ),
        (
            json!({"alias_kind": "email", "alias": "not-an-email", "event_type": "a"}),
            "not an email address",
        ),
    ];
    for (b, needle) in cases {
        let m = expect(
            &app,
            "/ingest",
            Cred::Bearer(ADMIN),
            "application/json",
            &j(b),
            400,
            "validation_failed",
        )
        .await;
        assert!(m.contains(needle), "{m} should contain {needle}");
    }
    // Seeds 001/002 answer validation failures with 422.
    let m = expect(
        &app,
        "/v1/events/ingest",
        Cred::Bearer(ADMIN),
        "application/json",
        &j(json!({"event_type": "a", "source_id": "s", "payload": "x"})),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(m, "`payload` must be a JSON object, got string");
    nothing_published(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_gzip_bombs_are_413() {
    let app = App::start(spawn_gateway).await;
    let big = "x".repeat(70 * 1024);
    let b = j(json!({"lead_id": "ld_1", "event_type": "a", "metadata": {"blob": big}}));
    expect(
        &app,
        "/ingest",
        Cred::Bearer(ADMIN),
        "application/json",
        &b,
        413,
        "payload_too_large",
    )
    .await;
    // 40 MB of spaces inside a JSON string: ~40 KB gzipped, over the 32 MiB decompressed cap.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"[").unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..40 {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(b"]").unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let resp = app
        .post_gzip("/import", Cred::Bearer(ADMIN), "application/json", bomb)
        .await;
    let (s, c, _) = error_of(resp).await;
    assert_eq!((s, c.as_str()), (413, "payload_too_large"));
    // One batch item over the per-event limit fails alone.
    let items = json!({"items": [{"source": "s", "externalEventId": "1", "eventType": "t",
        "identity": {"email": "a@b.c"}, "properties": {"blob": big}}]});
    let resp = app
        .post("/v1/cdp/events/batch", Cred::Bearer(ADMIN), &[], &items)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body(resp).await["results"][0]["error_code"],
        "validation_failed"
    );
    nothing_published(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_415() {
    let app = App::start(spawn_gateway).await;
    let b = j(json!({"lead_id": "ld_1", "event_type": "a"}));
    for (path, content_type) in [
        ("/ingest", "text/plain"),
        ("/ingest", ""),
        ("/v1/cdp/events", "application/x-www-form-urlencoded"),
    ] {
        let admin = Cred::Bearer(ADMIN);
        let (status, code) = (415, "unsupported_media_type");
        expect(&app, path, admin, content_type, &b, status, code).await;
    }
    let resp = app
        .post_raw(
            "/ingest",
            Cred::Bearer(ADMIN),
            &[("content-encoding", "br")],
            "application/json",
            b,
        )
        .await;
    assert_eq!(resp.status(), 415);
    nothing_published(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_unknown_keys_are_401() {
    let app = App::start(spawn_gateway).await;
    let b = j(json!({"lead_id": "ld_1", "event_type": "a"}));
    for path in [
        "/ingest",
        "/v1/events/ingest",
        "/v1/cdp/events",
        "/import",
        "/api-keys",
    ] {
        for cred in [Cred::None, Cred::Bearer("lsk_not_a_key")] {
            let json = "application/json";
            expect(&app, path, cred, json, &b, 401, "unauthorized").await;
        }
    }
    // A revoked key stops working at once on the gateway that revoked it.
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let resp = app
        .post(
            "/ingest",
            Cred::ApiKey(&key),
            &[],
            &json!({"lead_id": "ld_1", "event_type": "a"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let list = body(app.get("/api-keys", Cred::Bearer(ADMIN)).await).await;
    let id = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        list.to_string().find(&key).is_none(),
        "secrets are never listed"
    );
    let resp = app
        .delete(&format!("/api-keys/{id}"), Cred::Bearer(ADMIN))
        .await;
    assert_eq!(resp.status(), 204);
    expect(
        &app,
        "/ingest",
        Cred::ApiKey(&key),
        "application/json",
        &b,
        401,
        "unauthorized",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_scope_ou_or_source_is_403() {
    let app = App::start(spawn_gateway).await;
    let b = j(json!({"lead_id": "ld_1", "event_type": "a"}));
    let read_only = app.key(&["read"], &["unit_default"], None).await;
    let m = expect(
        &app,
        "/ingest",
        Cred::Bearer(&read_only),
        "application/json",
        &b,
        403,
        "forbidden",
    )
    .await;
    assert!(m.contains("ingest scope"), "{m}");
    expect(
        &app,
        "/api-keys",
        Cred::Bearer(&read_only),
        "application/json",
        &j(json!({"name": "x", "scopes": ["admin"]})),
        403,
        "forbidden",
    )
    .await;
    // An OU the key is not bound to, by header or cookie.
    let ou = app.create("/org-units", &json!({"name": "EMEA"})).await;
    let emea = ou["id"].as_str().unwrap().to_string();
    let bound = app.key(&["ingest"], &["unit_default"], None).await;
    let resp = app
        .post(
            "/ingest",
            Cred::Bearer(&bound),
            &[("x-leadstream-ou", &emea)],
            &json!({"lead_id": "l", "event_type": "a"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .post(
            "/org-units/active",
            Cred::Bearer(&bound),
            &[],
            &json!({"ouId": emea}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let resp = app
        .post(
            "/ingest",
            Cred::Bearer(&bound),
            &[("x-leadstream-ou", "unit_nope")],
            &json!({"lead_id": "l", "event_type": "a"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    // But the admin key may use the new OU, and the event carries it.
    let resp = app
        .post(
            "/ingest",
            Cred::Bearer(ADMIN),
            &[("x-leadstream-ou", &emea)],
            &json!({"lead_id": "l", "event_type": "a"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let recs = app.records(1, Duration::from_millis(500)).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event.ou_id, emea);
    assert_eq!(recs[0].key, format!("{emea}:l"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_key_is_429_with_retry_after() {
    let app = App::with_env(
        &[
            ("LEADSTREAM_RATE_LIMIT_PER_SEC", "1"),
            ("LEADSTREAM_RATE_LIMIT_BURST", "3"),
        ],
        spawn_gateway,
    )
    .await;
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let other = app.key(&["ingest"], &["unit_default"], None).await;
    let b = json!({"lead_id": "ld_1", "event_type": "a"});
    // Warm the producer (first-record metadata) on another key so the burst below is quick.
    assert_eq!(
        app.post("/ingest", Cred::Bearer(&other), &[], &b)
            .await
            .status(),
        202
    );
    // Five requests at once: they all arrive within milliseconds, so exactly the burst of three
    // is admitted whatever the machine's load (sent one after another, each waiting for its
    // broker ack, a slow run could see a token refill and admit a fourth).
    let responses =
        futures::future::join_all((0..5).map(|_| app.post("/ingest", Cred::Bearer(&key), &[], &b)))
            .await;
    let mut accepted = 0;
    let mut limited = 0;
    let mut retry_after = None;
    for resp in responses {
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            assert_eq!(error_of(resp).await.1, "rate_limited");
            limited += 1;
        } else {
            assert_eq!(resp.status(), 202);
            accepted += 1;
        }
    }
    assert_eq!((accepted, limited), (3, 2));
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    // Another key is not affected.
    assert_eq!(
        app.post("/ingest", Cred::Bearer(&other), &[], &b)
            .await
            .status(),
        202
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_409() {
    let app = App::start(spawn_gateway).await;
    let def = json!({"name": "signup", "required_properties": []});
    app.event_type(def.clone()).await;
    let (s, c, _) = error_of(
        app.post("/v1/cdp/event-types", Cred::Bearer(ADMIN), &[], &def)
            .await,
    )
    .await;
    assert_eq!((s, c.as_str()), (409, "already_exists"));
    let listed = body(app.get("/v1/cdp/event-types", Cred::Bearer(ADMIN)).await).await;
    assert_eq!(listed["event_types"][0]["name"], "signup");
    for status in [204, 404] {
        let del = app
            .delete("/v1/cdp/event-types/signup", Cred::Bearer(ADMIN))
            .await;
        assert_eq!(del.status(), status);
    }
    let ou = json!({"name": "APAC"});
    assert_eq!(
        app.post("/org-units", Cred::Bearer(ADMIN), &[], &ou)
            .await
            .status(),
        201
    );
    assert_eq!(
        app.post("/org-units", Cred::Bearer(ADMIN), &[], &ou)
            .await
            .status(),
        409
    );
    let units = body(app.get("/org-units", Cred::Bearer(ADMIN)).await).await;
    assert_eq!(units["org_units"].as_array().unwrap().len(), 2);
    app.stop().await;
}
