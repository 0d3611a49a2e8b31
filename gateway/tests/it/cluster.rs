//! The gateway on a real Redis Cluster (three masters, three replicas): the admin routes
//! (OUs, API keys, rulesets, triggers, event types, webhook secrets), ingest with idempotency,
//! and the read routes, with the catalog's atomic writes each in one slot.

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use leadstream_testkit::redis_cluster::RedisCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ingest_and_reads_work_on_a_redis_cluster() {
    // From the test's own thread: the nodes die with the thread that started them.
    let cluster = RedisCluster::start();
    let urls = cluster.url_list();
    let app = App::with_env(&[("LEADSTREAM_REDIS_URL", urls.as_str())], spawn_gateway).await;
    let admin = Cred::Bearer(ADMIN);
    assert_eq!(app.get_json("/readyz", Cred::None).await.0, 200);

    // Admin routes: every catalog write (atomic ones included) lands on the cluster.
    let ou = app
        .expect("/org-units", admin, &json!({"name": "EMEA"}), 201)
        .await;
    let (status, ous) = app.get_json("/org-units", admin).await;
    assert_eq!(status, 200);
    assert!(
        ous.to_string().contains(ou["id"].as_str().unwrap()),
        "{ous}"
    );
    app.expect(
        "/rulesets",
        admin,
        &json!({"name": "Engagement", "rules": [{"event_type": "demo_request", "points": 50}]}),
        201,
    )
    .await;
    let trigger = json!({"name": "Hot", "event_type": "demo_request", "score_threshold": 75,
        "webhook_url": "https://hooks.example.com/x"});
    let trg = app.expect("/triggers", admin, &trigger, 201).await;
    let (status, list) = app.get_json("/triggers", admin).await;
    assert_eq!(status, 200);
    assert!(
        list.to_string().contains(trg["id"].as_str().unwrap()),
        "{list}"
    );
    app.event_type(
        json!({"name": "purchase_completed", "required_properties": ["order_id"],
        "properties": {"order_id": "string"}}),
    )
    .await;
    let (status, first) = app.get_json("/webhook-secret", admin).await;
    assert_eq!(status, 200, "{first}");
    let rotated = app
        .post("/webhook-secret/rotate", admin, &[], &json!({}))
        .await;
    assert_eq!(rotated.status(), 200);
    let (_, second) = app.get_json("/webhook-secret", admin).await;
    assert_ne!(first, second, "rotation changed the current secret");

    // Ingest with a key of its own, and with an Idempotency-Key replayed.
    let key = app.key(&["ingest", "read"], &["unit_default"], None).await;
    let cred = Cred::Bearer(&key);
    let email = "cluster@example.com";
    let a = app
        .expect(
            "/ingest",
            cred,
            &json!({"alias_kind": "email", "alias": email, "event_type": "page_view"}),
            202,
        )
        .await;
    let lead = a["lead_id"].as_str().unwrap().to_string();
    let event = json!({"event_type": "demo_request", "source_id": "src_web",
        "alias_kind": "email", "alias": email, "timestamp": "2025-01-15T10:00:00Z",
        "payload": {"page": "/pricing"}});
    let idem = [("idempotency-key", "cluster-0001")];
    let resp = app.post("/v1/events/ingest", cred, &idem, &event).await;
    let status = resp.status();
    let first = body(resp).await;
    assert_eq!(status, 200, "{first}");
    let event_id = first["event_id"].as_str().unwrap().to_string();
    let again = app.post("/v1/events/ingest", cred, &idem, &event).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(body(again).await["event_id"], event_id.as_str());
    let records = app.records(2, Duration::from_secs(2)).await;
    assert_eq!(records.len(), 2, "the replay published nothing");
    assert!(records
        .iter()
        .all(|r| r.event.lead_id.as_deref() == Some(lead.as_str())));

    // Reads: the lead by alias and by id (its aliases live on the cluster), deliveries.
    let (status, by_alias) = app
        .get_json(&format!("/leads?alias_kind=email&alias={email}"), cred)
        .await;
    assert_eq!(status, 200, "{by_alias}");
    assert_eq!(by_alias["lead_id"], lead.as_str());
    let (status, by_id) = app.get_json(&format!("/leads/{lead}"), cred).await;
    assert_eq!(status, 200, "{by_id}");
    let (status, deliveries) = app.get_json("/deliveries", admin).await;
    assert_eq!(status, 200, "{deliveries}");

    // Revoking the key (two hashes in one atomic write) takes effect.
    let (_, keys) = app.get_json("/api-keys", admin).await;
    let id = keys
        .as_array()
        .or_else(|| keys["api_keys"].as_array())
        .and_then(|ks| ks.iter().find(|k| k["name"] == "test"))
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("the key in {keys}"))
        .to_string();
    let resp = app.delete(&format!("/api-keys/{id}"), admin).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, _) = app.get_json(&format!("/leads/{lead}"), cred).await;
    assert_eq!(status, 401);
    app.stop().await;
}
