//! Sequence triggers (seed 004): CRUD and simulate, checked against the real firing.

use reqwest::Method;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn sequences_follow_seed_004_and_simulate_matches_the_real_firing() {
    let gw = Gw::start().await;
    let seq = gw.create("/sequences", seed_004()).await;
    let id = seq["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("seq_"));
    for (k, v) in [
        ("name", json!("Buying Intent Sequence")),
        ("window_seconds", json!(604800)),
        ("ordered", json!(true)),
        ("active", json!(true)),
        ("window_unit", json!("7 days")),
        (
            "event_types",
            json!(["pricing_page_view", "whitepaper_download", "demo_request"]),
        ),
    ] {
        assert_eq!(seq[k], v, "{k}");
    }
    assert_eq!(
        gw.get("/sequences", ADMIN).await.1,
        json!({"sequences": [seq.clone()]})
    );
    let path = format!("/sequences/{id}/simulate");
    let e = |id: &str, ty: &str, at: &str| json!({"id": id, "event_type": ty, "created_at": at});
    let seed_events = json!([
        e("evt-001", "pricing_page_view", "2025-01-10T09:00:00Z"),
        e("evt-002", "whitepaper_download", "2025-01-12T14:30:00Z"),
        e("evt-003", "demo_request", "2025-01-14T11:00:00Z")
    ]);
    let (s, r) = gw.post(&path, ADMIN, json!({"events": seed_events})).await;
    assert_eq!((s, r["would_fire"].clone()), (200, json!(true)), "{r}");
    let seed_payload = json!({"trigger": {"id": id, "name": "Buying Intent Sequence", "type": "sequence"},
        "lead_id": "", "sequence": ["pricing_page_view", "whitepaper_download", "demo_request"],
        "events": [{"id": "evt-001", "event_type": "pricing_page_view", "created_at": "2025-01-10T09:00:00Z"},
            {"id": "evt-002", "event_type": "whitepaper_download", "created_at": "2025-01-12T14:30:00Z"},
            {"id": "evt-003", "event_type": "demo_request", "created_at": "2025-01-14T11:00:00Z"}]});
    assert_eq!(r["payload"], seed_payload);
    let wrong_order = json!([
        e("w", "whitepaper_download", "2025-01-10T09:00:00Z"),
        e("p", "pricing_page_view", "2025-01-12T09:00:00Z"),
        e("d", "demo_request", "2025-01-14T09:00:00Z")
    ]);
    let (_, r) = gw.post(&path, ADMIN, json!({"events": wrong_order})).await;
    assert_eq!(
        (r["would_fire"].clone(), r["payload"].clone()),
        (json!(false), Value::Null)
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("in the listed order"),
        "{r}"
    );
    // Unordered via PATCH: now the same events fire.
    let (s, p) = gw
        .call(
            Method::PATCH,
            &format!("/sequences/{id}"),
            ADMIN,
            Some(json!({"ordered": false})),
        )
        .await;
    assert_eq!((s, p["ordered"].clone()), (200, json!(false)));
    assert_eq!(
        gw.post(&path, ADMIN, json!({"events": wrong_order}))
            .await
            .1["would_fire"],
        true
    );
    gw.call(
        Method::PATCH,
        &format!("/sequences/{id}"),
        ADMIN,
        Some(json!({"ordered": true})),
    )
    .await;

    // The lead's stored events, plus "would this next event complete it?".
    let at = |s: &str| format!("2025-01-1{s}Z");
    gw.process(vec![
        ev(
            "evt-001",
            "ld_123",
            "pricing_page_view",
            &at("0T09:00:00"),
            json!({}),
        ),
        ev(
            "evt-002",
            "ld_123",
            "whitepaper_download",
            &at("2T14:30:00"),
            json!({}),
        ),
    ])
    .await;
    let (_, r) = gw.post(&path, ADMIN, json!({"lead_id": "ld_123"})).await;
    assert_eq!(
        (r["would_fire"].clone(), r["considered_events"].clone()),
        (json!(false), json!(2)),
        "{r}"
    );
    assert_eq!(
        r["reason"],
        "not enough events of: demo_request (needs 1, has 0)"
    );
    let next = json!([e("evt-003", "demo_request", "2025-01-14T11:00:00Z")]);
    let (_, sim) = gw
        .post(&path, ADMIN, json!({"lead_id": "ld_123", "events": next}))
        .await;
    let mut expected = seed_payload.clone();
    expected["lead_id"] = json!("ld_123");
    assert_eq!(sim["payload"], expected, "{sim}");
    gw.process(vec![ev(
        "evt-003",
        "ld_123",
        "demo_request",
        &at("4T11:00:00"),
        json!({}),
    )])
    .await;
    let (s, h) = gw
        .get(
            &format!("/sequence-events?sequence_id={id}&lead_id=ld_123"),
            ADMIN,
        )
        .await;
    assert_eq!(s, 200);
    let items = h["sequence_events"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{h}");
    assert_eq!(
        (items[0]["sequence_id"].as_str(), &items[0]["payload"]),
        (Some(id.as_str()), &expected)
    );
    assert_eq!(
        items[0]["id"], sim["firings"][0]["fired_id"],
        "simulate predicts the fired id"
    );
    let (_, r) = gw.post(&path, ADMIN, json!({"lead_id": "ld_123"})).await;
    assert_eq!(
        r["considered_events"], 0,
        "used events are not offered again: {r}"
    );

    // PUT replaces (omitted optionals cleared, identity kept); DELETE removes.
    let one = format!("/sequences/{id}");
    let mut body = seed_004();
    body["name"] = json!("Renamed");
    body.as_object_mut().unwrap().remove("webhook_url");
    let (s, put) = gw.call(Method::PUT, &one, ADMIN, Some(body)).await;
    assert_eq!((s, put["name"].clone()), (200, json!("Renamed")), "{put}");
    assert_eq!(put.get("webhook_url"), None);
    assert_eq!(
        (&put["id"], &put["created_at"]),
        (&seq["id"], &seq["created_at"])
    );
    assert_eq!(gw.call(Method::DELETE, &one, ADMIN, None).await.0, 204);
    assert_eq!(gw.get(&one, ADMIN).await.0, 404);
    assert_eq!(
        gw.post(&path, ADMIN, json!({"lead_id": "ld_123"})).await.0,
        404
    );
}
