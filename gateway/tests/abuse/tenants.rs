//! Fair sharing between tenants at the gateway (issue 12): event rate limits per OU counted in
//! events (a 100-event import costs 100), a cap on keys per OU, and admin keys that cannot mint
//! keys or org units beyond their own binding.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{secret, spawn_on_store, RoutesApp, ADMIN};

fn events(n: usize, tag: &str) -> Value {
    (0..n)
        .map(|i| json!({"lead_id": format!("ld_{tag}_{i}"), "event_type": "page_view"}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_rates_are_per_ou_and_counted_in_events_and_keys_per_ou_are_capped() {
    let gw = RoutesApp::builder()
        .vars(&[
            ("LEADSTREAM_MAX_IMPORT_ITEMS", "100"),
            ("LEADSTREAM_OU_EVENT_RATE", "1"),
            ("LEADSTREAM_OU_EVENT_BURST", "100"),
            ("LEADSTREAM_KEY_EVENT_RATE", "0"),
            ("LEADSTREAM_RATE_LIMIT_PER_SEC", "0"),
            ("LEADSTREAM_MAX_KEYS_PER_OU", "3"),
        ])
        .start(spawn_on_store)
        .await;
    let a = gw.create("/org-units", json!({"name": "A"})).await["id"].clone();
    let b = gw.create("/org-units", json!({"name": "B"})).await["id"].clone();
    let ingest = |ou: &Value| json!({"name": "i", "scopes": ["ingest"], "ou_ids": [ou]});
    let key_a = &secret(&gw.create("/api-keys", ingest(&a)).await);
    let key_a2 = &secret(&gw.create("/api-keys", ingest(&a)).await);
    let key_b = &secret(&gw.create("/api-keys", ingest(&b)).await);

    // One import of 100 events spends OU A's burst of 100 events ...
    let (status, answer) = gw.post("/import", key_a, events(100, "a")).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &json!(100)),
        "{answer}"
    );
    // ... so the next one is refused whole, by any key of OU A, with Retry-After ...
    let (status, answer) = gw.post("/import", key_a, events(100, "a2")).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    assert!(answer["error"]["message"].as_str().unwrap().contains("OU"));
    let (status, _) = gw.post("/import", key_a2, events(50, "a3")).await;
    assert_eq!(status, 429);
    // ... while OU B is untouched.
    let (status, answer) = gw.post("/import", key_b, events(100, "b")).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &json!(100)),
        "{answer}"
    );

    // An admin key bound to OU A: the third key of OU A, and it cannot create org units.
    let admin_a = secret(
        &gw.create(
            "/api-keys",
            json!({"name": "adm", "scopes": ["admin"], "ou_ids": [a]}),
        )
        .await,
    );
    let (status, answer) = gw.post("/org-units", &admin_a, json!({"name": "C"})).await;
    assert_eq!(status, 403, "{answer}");
    // OU A has 3 keys: a fourth is refused, by anyone.
    let (status, answer) = gw.post("/api-keys", ADMIN, ingest(&a)).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "too_many_keys");

    // An admin key bound to source "crm" mints only keys bound to "crm".
    let admin_crm = &secret(
        &gw.create(
            "/api-keys",
            json!({"name": "crm", "scopes": ["admin", "ingest"], "ou_ids": [b], "source_id": "crm"}),
        )
        .await,
    );
    let (status, answer) = gw
        .post(
            "/api-keys",
            admin_crm,
            json!({"name": "x", "scopes": ["ingest"], "source_id": "erp"}),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let minted = gw
        .expect(
            201,
            Method::POST,
            "/api-keys",
            admin_crm,
            Some(json!({"name": "x", "scopes": ["ingest"]})),
        )
        .await;
    assert_eq!(minted["source_id"], "crm", "{minted}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_work_per_request_is_bounded() {
    let gw = RoutesApp::start(spawn_on_store).await;
    let get = |path: &'static str| {
        let gw = &gw;
        async move { gw.get(path, ADMIN).await.0 }
    };
    for path in [
        "/deliveries?offset=10000",
        "/milestone-events?offset=10000",
        "/sequence-events?offset=10000",
    ] {
        assert_eq!(get(path).await, 200, "{path}");
    }
    for path in [
        "/deliveries?offset=10001",
        "/milestone-events?offset=10001",
        "/sequence-events?offset=900000",
    ] {
        let status = get(path).await;
        assert!(matches!(status, 400 | 422), "{path} → {status}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_keys_see_endpoint_urls_redacted() {
    let gw = RoutesApp::start(spawn_on_store).await;
    let hook = "https://hooks.slack.com/services/T000/B000/very-secret-token";
    let trigger = gw.create("/triggers", json!({"name": "hot", "score_threshold": 10, "webhook_url": "https://h.example/hook?token=s3cret",
               "slack_webhook_url": hook}),
    )
    .await;
    let id = trigger["id"].as_str().unwrap().to_string();
    let seq = json!({"name": "seq", "event_types": ["a", "b"], "window_seconds": 60,
                     "teams_webhook_url": "https://x.webhook.office.com/webhookb2/secret-path"});
    gw.create("/sequences", seq).await;
    let read = secret(
        &gw.create("/api-keys", json!({"name": "r", "scopes": ["read"]}))
            .await,
    );
    for path in [
        "/triggers".to_string(),
        format!("/triggers/{id}"),
        "/sequences".to_string(),
    ] {
        let (status, answer) = gw.get(&path, &read).await;
        assert_eq!(status, 200, "{path} {answer}");
        let text = answer.to_string();
        for secret in ["very-secret-token", "s3cret", "secret-path"] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
        assert!(text.contains("[redacted]"), "{text}");
    }
    let (_, answer) = gw.get(&format!("/triggers/{id}"), ADMIN).await;
    assert_eq!(
        answer["slack_webhook_url"], hook,
        "admins see the whole URL"
    );
    gw.stop().await;
}
