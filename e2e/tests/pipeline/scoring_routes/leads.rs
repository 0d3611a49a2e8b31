//! Leads and OU isolation, over the state the processor's engine wrote. (Firing history paging:
//! `gateway/tests/it/scoring_routes/leads.rs`.)

use reqwest::Method;
use serde_json::json;

use super::*;
use leadstream_domain::ids::{LeadId, OuId};

#[tokio::test]
async fn another_ous_key_gets_404_and_scopes_are_enforced() {
    let gw = Gw::start().await;
    let tid = gw.create("/triggers", seed_003()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = gw.create("/sequences", seed_004()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rid = gw.create("/rulesets", engagement_ruleset()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.process(vec![ev(
        "e1",
        "ld_1",
        "demo_request",
        "2025-01-15T10:35:00Z",
        json!({}),
    )])
    .await;
    let ou_b = gw.create("/org-units", json!({"name": "B"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = gw.key(&["admin"], &[&ou_b]).await;

    for path in [
        format!("/triggers/{tid}"),
        format!("/sequences/{sid}"),
        format!("/rulesets/{rid}"),
    ] {
        assert_eq!(gw.get(&path, &other).await.0, 404, "{path}");
        assert_eq!(
            gw.call(Method::PATCH, &path, &other, Some(json!({"active": false})))
                .await
                .0,
            404
        );
        assert_eq!(gw.call(Method::DELETE, &path, &other, None).await.0, 404);
    }
    let sim =
        json!({"score_before": 0, "score_after": 100, "event": {"event_type": "demo_request"}});
    assert_eq!(
        gw.post(&format!("/triggers/{tid}/simulate"), &other, sim)
            .await
            .0,
        404
    );
    assert_eq!(gw.get("/leads/ld_1", &other).await.0, 404);
    assert_eq!(gw.get("/triggers", &other).await.1, json!({"triggers": []}));
    assert_eq!(
        gw.get("/sequences", &other).await.1,
        json!({"sequences": []})
    );
    assert_eq!(
        gw.get("/milestone-events", &other).await.1["milestone_events"],
        json!([])
    );
    assert_eq!(
        gw.get(&format!("/triggers/{tid}"), ADMIN).await.1["active"],
        true,
        "untouched"
    );

    let reader = gw.key(&["read"], &["unit_default"]).await;
    assert_eq!(gw.get("/triggers", &reader).await.0, 200);
    assert_eq!(gw.get("/leads/ld_1", &reader).await.0, 200);
    assert_eq!(gw.post("/triggers", &reader, seed_003()).await.0, 403);
    assert_eq!(
        gw.call(Method::DELETE, &format!("/sequences/{sid}"), &reader, None)
            .await
            .0,
        403
    );
    let ingest = gw.key(&["ingest"], &["unit_default"]).await;
    assert_eq!(gw.get("/triggers", &ingest).await.0, 403);
    assert_eq!(gw.get("/triggers", "not-a-key").await.0, 401);
}

#[tokio::test]
async fn lead_endpoint_explains_the_score() {
    let gw = Gw::start().await;
    let rs = gw.create("/rulesets", engagement_ruleset()).await;
    let rid = rs["id"].as_str().unwrap().to_string();
    assert_eq!(rs["rules"][0]["id"], "r1");
    let fit = gw
        .create(
            "/rulesets",
            json!({"name": "Fit", "rules": [{"event_type": "page_view", "points": -3}]}),
        )
        .await;
    let mut events = pricing_then_demo();
    events.push(ev(
        "e3",
        "ld_1",
        "page_view",
        "2025-01-15T10:06:00Z",
        json!({"path": "/blog"}),
    ));
    gw.process(events).await;
    let kv = gw.store.clone();
    let keys = &gw.keys;
    kv.exec(vec![
        Cmd::Set {
            key: keys.alias("unit_default", "email", "ann@example.com"),
            value: b"ld_1".to_vec(),
            ttl_ms: None,
        },
        Cmd::HSet {
            key: keys.lead_aliases(OuId("unit_default"), LeadId("ld_1")),
            field: "email:ann@example.com".into(),
            value: b"1".to_vec(),
        },
    ])
    .await
    .unwrap();
    let (s, lead) = gw.get("/leads/ld_1", ADMIN).await;
    assert_eq!(s, 200, "{lead}");
    assert_eq!(
        (lead["score"].clone(), lead["event_count"].clone()),
        (json!(54), json!(3))
    );
    let mut cats = lead["rulesets"].as_array().unwrap().clone();
    cats.sort_by_key(|c| c["name"].as_str().unwrap().to_string());
    assert_eq!(
        cats,
        [
            json!({"id": rid, "name": "Engagement", "active": true, "score": 60}),
            json!({"id": fit["id"], "name": "Fit", "active": true, "score": -6})
        ]
    );
    assert_eq!(
        lead["aliases"],
        json!([{"kind": "email", "value": "ann@example.com"}])
    );
    assert_eq!(lead["last_event_at"], "2025-01-15T10:06:00Z");
    let c = &lead["contributions"];
    assert_eq!(c.as_array().unwrap().len(), 4);
    assert_eq!(c[0]["event_id"], "e3");
    assert_eq!(
        c[1],
        json!({"event_id": "e2", "ruleset_id": rid, "ruleset_name": "Engagement", "rule_id": "r2",
        "event_type": "demo_request", "points": 50, "at": "2025-01-15T10:05:00Z"})
    );
    let (s, by_alias) = gw
        .get("/leads?alias_kind=email&alias=Ann@Example.com", ADMIN)
        .await;
    assert_eq!((s, &by_alias), (200, &lead));
    assert_eq!(
        gw.get("/leads?alias_kind=email&alias=nobody@example.com", ADMIN)
            .await
            .0,
        404
    );
    assert_eq!(gw.get("/leads?alias_kind=fax&alias=1", ADMIN).await.0, 400);
    assert_eq!(gw.get("/leads", ADMIN).await.0, 400);
    assert_eq!(gw.get("/leads/ld_unknown", ADMIN).await.0, 404);

    // A deactivated ruleset stops counting at once; rulesets CRUD round trip.
    let path = format!("/rulesets/{}", fit["id"].as_str().unwrap());
    let (s, off) = gw
        .call(Method::PATCH, &path, ADMIN, Some(json!({"active": false})))
        .await;
    assert_eq!((s, off["active"].clone()), (200, json!(false)));
    assert_eq!(gw.get("/leads/ld_1", ADMIN).await.1["score"], 60);
    let (s, put) = gw
        .call(
            Method::PUT,
            &path,
            ADMIN,
            Some(json!({"name": "Fit v2", "rules": []})),
        )
        .await;
    assert_eq!(
        (s, put["name"].clone(), put["active"].clone()),
        (200, json!("Fit v2"), json!(false))
    );
    assert_eq!(
        gw.get("/rulesets", ADMIN).await.1["rulesets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(gw.call(Method::DELETE, &path, ADMIN, None).await.0, 204);
    assert_eq!(gw.get(&path, ADMIN).await.0, 404);
}
