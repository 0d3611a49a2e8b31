//! Fair sharing between tenants at the gateway (issue 12): event rate limits per OU counted in
//! events (a 100-event import costs 100), a cap on keys per OU, and admin keys that cannot mint
//! keys or org units beyond their own binding.

use serde_json::{json, Value};

use crate::clients::Gw;
use crate::ADMIN;

async fn call(gw: &Gw, method: &str, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = reqwest::Client::new()
        .request(method, format!("http://{}{path}", gw.addr))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn created(gw: &Gw, path: &str, key: &str, body: Value) -> Value {
    let (status, answer) = call(gw, "POST", path, key, &body).await;
    assert_eq!(status, 201, "POST {path} {body} → {answer}");
    answer
}

fn events(n: usize, tag: &str) -> Value {
    (0..n)
        .map(|i| json!({"lead_id": format!("ld_{tag}_{i}"), "event_type": "page_view"}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_rates_are_per_ou_and_counted_in_events_and_keys_per_ou_are_capped() {
    let gw = Gw::start(&[
        ("LEADSTREAM_MAX_IMPORT_ITEMS", "100"),
        ("LEADSTREAM_OU_EVENT_RATE", "1"),
        ("LEADSTREAM_OU_EVENT_BURST", "100"),
        ("LEADSTREAM_KEY_EVENT_RATE", "0"),
        ("LEADSTREAM_RATE_LIMIT_PER_SEC", "0"),
        ("LEADSTREAM_MAX_KEYS_PER_OU", "3"),
    ])
    .await;
    let a = created(&gw, "/org-units", ADMIN, json!({"name": "A"})).await["id"].clone();
    let b = created(&gw, "/org-units", ADMIN, json!({"name": "B"})).await["id"].clone();
    let ingest = |ou: &Value| json!({"name": "i", "scopes": ["ingest"], "ou_ids": [ou]});
    let key_a = created(&gw, "/api-keys", ADMIN, ingest(&a)).await["key"].clone();
    let key_a2 = created(&gw, "/api-keys", ADMIN, ingest(&a)).await["key"].clone();
    let key_b = created(&gw, "/api-keys", ADMIN, ingest(&b)).await["key"].clone();
    let (key_a, key_a2, key_b) = (
        key_a.as_str().unwrap(),
        key_a2.as_str().unwrap(),
        key_b.as_str().unwrap(),
    );

    // One import of 100 events spends OU A's burst of 100 events ...
    let (status, answer) = call(&gw, "POST", "/import", key_a, &events(100, "a")).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &json!(100)),
        "{answer}"
    );
    // ... so the next one is refused whole, by any key of OU A, with Retry-After ...
    let (status, answer) = call(&gw, "POST", "/import", key_a, &events(100, "a2")).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    assert!(answer["error"]["message"].as_str().unwrap().contains("OU"));
    let (status, _) = call(&gw, "POST", "/import", key_a2, &events(50, "a3")).await;
    assert_eq!(status, 429);
    // ... while OU B is untouched.
    let (status, answer) = call(&gw, "POST", "/import", key_b, &events(100, "b")).await;
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &json!(100)),
        "{answer}"
    );

    // An admin key bound to OU A: the third key of OU A, and it cannot create org units.
    let admin_a = created(
        &gw,
        "/api-keys",
        ADMIN,
        json!({"name": "adm", "scopes": ["admin"], "ou_ids": [a]}),
    )
    .await["key"]
        .clone();
    let (status, answer) = call(
        &gw,
        "POST",
        "/org-units",
        admin_a.as_str().unwrap(),
        &json!({"name": "C"}),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    // OU A has 3 keys: a fourth is refused, by anyone.
    let (status, answer) = call(&gw, "POST", "/api-keys", ADMIN, &ingest(&a)).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "too_many_keys");

    // An admin key bound to source "crm" mints only keys bound to "crm".
    let admin_crm = created(
        &gw,
        "/api-keys",
        ADMIN,
        json!({"name": "crm", "scopes": ["admin", "ingest"], "ou_ids": [b], "source_id": "crm"}),
    )
    .await["key"]
        .clone();
    let admin_crm = admin_crm.as_str().unwrap();
    let (status, answer) = call(
        &gw,
        "POST",
        "/api-keys",
        admin_crm,
        &json!({"name": "x", "scopes": ["ingest"], "source_id": "erp"}),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    let minted = created(
        &gw,
        "/api-keys",
        admin_crm,
        json!({"name": "x", "scopes": ["ingest"]}),
    )
    .await;
    assert_eq!(minted["source_id"], "crm", "{minted}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_work_per_request_is_bounded() {
    let gw = Gw::start(&[]).await;
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", gw.addr);
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }
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
    let gw = Gw::start(&[]).await;
    let hook = "https://hooks.slack.com/services/T000/B000/very-secret-token";
    let trigger = created(
        &gw,
        "/triggers",
        ADMIN,
        json!({"name": "hot", "score_threshold": 10, "webhook_url": "https://h.example/hook?token=s3cret",
               "slack_webhook_url": hook}),
    )
    .await;
    let id = trigger["id"].as_str().unwrap().to_string();
    let seq = json!({"name": "seq", "event_types": ["a", "b"], "window_seconds": 60,
                     "teams_webhook_url": "https://x.webhook.office.com/webhookb2/secret-path"});
    created(&gw, "/sequences", ADMIN, seq).await;
    let read = created(
        &gw,
        "/api-keys",
        ADMIN,
        json!({"name": "r", "scopes": ["read"]}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/triggers".to_string(),
        format!("/triggers/{id}"),
        "/sequences".to_string(),
    ] {
        let (status, answer) = call(&gw, "GET", &path, &read, &Value::Null).await;
        assert_eq!(status, 200, "{path} {answer}");
        let text = answer.to_string();
        for secret in ["very-secret-token", "s3cret", "secret-path"] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
        assert!(text.contains("[redacted]"), "{text}");
    }
    let (_, answer) = call(&gw, "GET", &format!("/triggers/{id}"), ADMIN, &Value::Null).await;
    assert_eq!(
        answer["slack_webhook_url"], hook,
        "admins see the whole URL"
    );
    gw.stop().await;
}
