//! Milestone trigger simulate (seed 003), from the lead state the processor's engine wrote or
//! from given scores. (CRUD, activation and 400s: `gateway/tests/it/scoring_routes/triggers.rs`.)

use serde_json::json;

use super::*;

#[tokio::test]
async fn trigger_simulate_uses_the_lead_state_or_given_scores() {
    let gw = Gw::start().await;
    gw.create("/rulesets", engagement_ruleset()).await;
    let mut body = seed_003();
    body["score_threshold"] = json!(60);
    let fired = gw.create("/triggers", body).await;
    let mut body = seed_003();
    body["score_threshold"] = json!(100);
    let high = gw.create("/triggers", body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.process(pricing_then_demo()).await;
    let demo = json!({"id": "evt-789", "event_type": "demo_request", "metadata": {"source": "website"},
        "created_at": "2025-01-15T10:35:00Z"});
    // Already fired at 60 for this lead: disarmed, whatever the next event.
    let (s, r) = gw
        .post(
            &format!("/triggers/{}/simulate", fired["id"].as_str().unwrap()),
            ADMIN,
            json!({"lead_id": "ld_1", "event": demo}),
        )
        .await;
    assert_eq!(
        (s, r["would_fire"].clone(), r["score_before"].clone()),
        (200, json!(false), json!(60)),
        "{r}"
    );
    assert!(r["reason"].as_str().unwrap().contains("already"), "{r}");
    // Threshold 100: 60 -> 110 on a demo_request crosses it.
    let (_, r) = gw
        .post(
            &format!("/triggers/{high}/simulate"),
            ADMIN,
            json!({"lead_id": "ld_1", "event": demo}),
        )
        .await;
    assert_eq!(
        (r["would_fire"].clone(), r["score_after"].clone()),
        (json!(true), json!(110)),
        "{r}"
    );
    assert_eq!(r["contributions"][0]["points"], 50);
    assert_eq!(
        r["payload"],
        json!({"trigger": {"id": high, "name": "Hot Lead Alert", "type": "milestone"},
        "event": {"id": "evt-789", "lead_id": "ld_1", "event_type": "demo_request",
            "metadata": {"source": "website"}, "created_at": "2025-01-15T10:35:00Z"},
        "score": 110})
    );
    assert_eq!(
        r["targets"]["webhook_url"],
        "https://hooks.example.com/leadvibe"
    );
    // Given scores, and the event type rule.
    let path = format!("/triggers/{high}/simulate");
    let (_, r) = gw
        .post(
            &path,
            ADMIN,
            json!({"score_before": 90, "score_after": 120, "event": demo}),
        )
        .await;
    assert_eq!(
        (r["would_fire"].clone(), r["payload"]["score"].clone()),
        (json!(true), json!(120))
    );
    let (_, r) = gw
        .post(
            &path,
            ADMIN,
            json!({"score_before": 90, "score_after": 120,
        "event": {"event_type": "page_view"}}),
        )
        .await;
    assert_eq!(r["would_fire"], false);
    for (body, f) in [
        (json!({"score_before": 1, "event": demo}), "score_after"),
        (
            json!({"score_before": "1", "score_after": 2, "event": demo}),
            "score_before",
        ),
        (json!({"score_before": 1, "score_after": 2}), "event"),
        (
            json!({"score_before": 1, "score_after": 2, "event": {"id": "x"}}),
            "event.event_type",
        ),
        (
            json!({"lead_id": "ld_1", "score_before": 1, "event": demo}),
            "lead_id",
        ),
    ] {
        let (s, b) = gw.post(&path, ADMIN, body).await;
        assert_eq!(
            (s, b["error"]["fields"][0]["field"].as_str()),
            (400, Some(f)),
            "{b}"
        );
    }
    assert_eq!(
        gw.post(&path, ADMIN, json!({"lead_id": "ld_nobody", "event": demo}))
            .await
            .0,
        404
    );
    assert_eq!(
        gw.post(
            "/triggers/trg_none/simulate",
            ADMIN,
            json!({"lead_id": "ld_1", "event": demo})
        )
        .await
        .0,
        404
    );
}
