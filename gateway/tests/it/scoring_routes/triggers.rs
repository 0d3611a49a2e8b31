//! Milestone triggers (seed 003): CRUD, activation, 400s naming the field. (Simulate against the
//! lead state the processor's engine wrote: `e2e/tests/pipeline/scoring_routes/triggers.rs`.)

use reqwest::Method;
use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn triggers_follow_seed_003_with_crud_and_activation() {
    let gw = Gw::start(spawn_on_store).await;
    let t = gw.create("/triggers", seed_003()).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("trg_"));
    for (k, v) in [
        ("name", json!("Hot Lead Alert")),
        ("event_type", json!("demo_request")),
        ("score_threshold", json!(75)),
        ("webhook_url", json!("https://hooks.example.com/leadvibe")),
        ("emails", json!(["sales@example.com"])),
        ("active", json!(true)),
    ] {
        assert_eq!(t[k], v, "{k}");
    }
    assert!(parse_rfc3339_ms(t["created_at"].as_str().unwrap()).is_some());
    let (s, list) = gw.get("/triggers", ADMIN).await;
    assert_eq!((s, list), (200, json!({"triggers": [t.clone()]})));
    assert_eq!(
        gw.get(&format!("/triggers/{id}"), ADMIN).await,
        (200, t.clone())
    );

    let path = format!("/triggers/{id}");
    let (s, put) = gw
        .call(
            Method::PUT,
            &path,
            ADMIN,
            Some(json!({"name": "Any event", "score_threshold": 90})),
        )
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(
        (
            put["event_type"].clone(),
            put["webhook_url"].clone(),
            put["score_threshold"].clone()
        ),
        (Value::Null, Value::Null, json!(90))
    );
    assert_eq!(
        (put["id"].clone(), put["created_at"].clone()),
        (t["id"].clone(), t["created_at"].clone())
    );
    let (s, off) = gw
        .call(Method::PATCH, &path, ADMIN, Some(json!({"active": false})))
        .await;
    assert_eq!(
        (s, off["active"].clone(), off["name"].clone()),
        (200, json!(false), json!("Any event"))
    );
    let (_, on) = gw
        .call(Method::PATCH, &path, ADMIN, Some(json!({"active": true})))
        .await;
    assert_eq!(on["active"], true);
    assert_eq!(gw.call(Method::DELETE, &path, ADMIN, None).await.0, 204);
    assert_eq!(gw.get(&path, ADMIN).await.0, 404);
    assert_eq!(gw.call(Method::DELETE, &path, ADMIN, None).await.0, 404);
    assert_eq!(gw.get("/triggers", ADMIN).await.1, json!({"triggers": []}));
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_the_field() {
    let gw = Gw::start(spawn_on_store).await;
    let field = |b: &Value| {
        b["error"]["fields"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for (body, f, msg) in [
        (json!({"score_threshold": 5}), "name", "name is required"),
        (
            json!({"name": "x"}),
            "score_threshold",
            "score_threshold is required",
        ),
        (
            json!({"name": "x", "score_threshold": "75"}),
            "score_threshold",
            "score_threshold must be an integer",
        ),
        (
            json!({"name": "x", "score_threshold": 1, "webhook_url": "ftp://x"}),
            "webhook_url",
            "webhook_url must be an absolute http(s) URL",
        ),
        (
            json!({"name": "x", "score_threshold": 1, "emails": ["nope"]}),
            "emails[0]",
            "emails[0] must be an email address",
        ),
    ] {
        let (s, b) = gw.post("/triggers", ADMIN, body).await;
        assert_eq!(
            (s, b["error"]["code"].as_str(), field(&b)),
            (400, Some("validation_failed"), f.to_string())
        );
        assert_eq!(b["error"]["message"], msg);
    }
    let (s, b) = gw
        .post(
            "/triggers",
            ADMIN,
            json!({"name": "x", "score_threshold": 1, "nme": 1}),
        )
        .await;
    assert!(
        s == 400
            && b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `nme`"),
        "{b}"
    );
    let raw = gw
        .http
        .post(format!("{}/triggers", gw.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    let mut seq = seed_004();
    seq["event_types"] = json!([]);
    seq["window_seconds"] = json!(0);
    let (s, b) = gw.post("/sequences", ADMIN, seq).await;
    let fields: Vec<&str> = b["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(s, 400);
    assert!(
        fields.contains(&"event_types") && fields.contains(&"window_seconds"),
        "{b}"
    );
    for (k, v) in [
        ("window_seconds", json!(-60)),
        ("window_seconds", json!("7 days")),
        ("ordered", json!("yes")),
        ("max_gap_seconds", json!(604801)),
        ("event_types", json!(["a", 3])),
        ("name", json!("")),
    ] {
        let mut seq = seed_004();
        seq[k] = v;
        let (s, b) = gw.post("/sequences", ADMIN, seq).await;
        assert_eq!((s, field(&b)), (400, k.to_string()), "{b}");
    }
    let (s, b) = gw
        .post(
            "/rulesets",
            ADMIN,
            json!({"name": "x", "rules": [{"event_type": "a"}]}),
        )
        .await;
    assert_eq!((s, field(&b)), (400, "rules[0].points".to_string()));
    assert_eq!(
        gw.get("/triggers", ADMIN).await.1,
        json!({"triggers": []}),
        "nothing was stored"
    );
}
