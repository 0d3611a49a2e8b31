//! The tenants tests' world: the real gateway on real Redis (a key prefix of its own) with a
//! memory sink ([`RoutesApp`]), and one OU's worth of things created through the API.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};

use leadstream_domain::firing::HistoryEntry;
use leadstream_gateway::MemorySink;
use leadstream_shared::delivery::{self, AttemptStatus, Channel, DeliveryAttempt};
use leadstream_shared::store::Cmd;

use crate::common::{spawn_on, RoutesApp, ADMIN};

pub(super) const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z

/// The gateway on real Redis, serving on a loopback port, without a per-key rate limit; the
/// memory sink its events go to.
pub(super) async fn start() -> (RoutesApp, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let publish_to = sink.clone();
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_RATE_LIMIT_PER_SEC", "0")
        .start(|env, store, stop| spawn_on(env, store, publish_to, stop))
        .await;
    (gw, sink)
}

pub(super) fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id in {v}"))
        .to_string()
}

/// One OU's things, created through the API with its own admin key (plus the history and
/// delivery entries the processor and notifier would write, written under its keys).
pub(super) struct Tenant {
    pub(super) ou: String,
    pub(super) admin: String,
    pub(super) admin_key_id: String,
    pub(super) read: String,
    pub(super) ruleset: String,
    pub(super) trigger: String,
    pub(super) sequence: String,
    pub(super) lead: String,
}

pub(super) async fn tenant(gw: &RoutesApp, name: &str, email: &str) -> Tenant {
    let ou = id(&gw
        .expect(
            201,
            Method::POST,
            "/org-units",
            ADMIN,
            Some(json!({"name": name})),
        )
        .await);
    let mk = |scope: &'static str| json!({"name": format!("{name}-{scope}"), "scopes": [scope], "ou_ids": [ou.clone()]});
    let a = gw
        .expect(201, Method::POST, "/api-keys", ADMIN, Some(mk("admin")))
        .await;
    let r = gw
        .expect(201, Method::POST, "/api-keys", ADMIN, Some(mk("read")))
        .await;
    let admin = a["key"].as_str().unwrap().to_string();
    let rs = json!({"name": format!("{name} rules"), "rules": [{"event_type": "page_view", "points": 5}]});
    let ruleset = id(&gw
        .expect(201, Method::POST, "/rulesets", &admin, Some(rs))
        .await);
    let trg = json!({"name": format!("{name} hot"), "score_threshold": 10,
                     "webhook_url": format!("https://hooks.example.com/{name}")});
    let trigger = id(&gw
        .expect(201, Method::POST, "/triggers", &admin, Some(trg))
        .await);
    let seq = json!({"name": format!("{name} seq"), "event_types": ["page_view", "demo_request"],
                     "window_seconds": 3600, "webhook_url": format!("https://hooks.example.com/{name}")});
    let sequence = id(&gw
        .expect(201, Method::POST, "/sequences", &admin, Some(seq))
        .await);
    let et = json!({"name": format!("{name}_signup"), "required_properties": []});
    gw.expect(201, Method::POST, "/v1/cdp/event-types", &admin, Some(et))
        .await;
    gw.expect(200, Method::POST, "/webhook-secret/rotate", &admin, None)
        .await;
    let ev = json!({"alias_kind": "email", "alias": email, "event_type": "page_view"});
    let lead = gw
        .expect(202, Method::POST, "/ingest", &admin, Some(ev))
        .await["lead_id"]
        .as_str()
        .unwrap()
        .to_string();
    // What the processor and the notifier write for this OU.
    let mut cmds = Vec::new();
    for (kind, trigger_id) in [("milestone", &trigger), ("sequence", &sequence)] {
        let entry = HistoryEntry {
            id: format!("fir_{name}_{kind}"),
            trigger_id: trigger_id.clone(),
            trigger_name: format!("{name} {kind}"),
            lead_id: lead.clone(),
            event_id: format!("evt_{name}"),
            score: 10,
            fired_at: "2025-01-15T10:00:00Z".into(),
            payload: json!({"tenant": name}),
        };
        cmds.push(Cmd::ZAdd {
            key: gw.keys.history(&ou, kind),
            score: T0 as f64,
            member: serde_json::to_vec(&entry).unwrap(),
        });
    }
    let attempt = DeliveryAttempt {
        id: format!("att_{name}"),
        fired_id: format!("fir_{name}_milestone"),
        ou_id: ou.clone(),
        lead_id: lead.clone(),
        trigger_id: trigger.clone(),
        trigger_name: format!("{name} hot"),
        channel: Channel::Webhook,
        endpoint_id: format!("ep_{name}"),
        target: format!("https://hooks.example.com/{name}"),
        attempt: 1,
        at_ms: T0,
        status: AttemptStatus::Succeeded,
        status_code: Some(200),
        error: None,
        latency_ms: 5,
        response_body: None,
        next_attempt_at_ms: None,
    };
    cmds.extend(delivery::record_cmds(&gw.keys, &attempt, 86_400_000));
    gw.store
        .exec(cmds)
        .await
        .expect("seed history and deliveries");
    Tenant {
        ou,
        admin_key_id: id(&a),
        admin,
        read: r["key"].as_str().unwrap().to_string(),
        ruleset,
        trigger,
        sequence,
        lead,
    }
}

/// Everything of `t` that its own admin key can read.
pub(super) async fn snapshot(gw: &RoutesApp, t: &Tenant, email: &str) -> Vec<(String, u16, Value)> {
    let paths = [
        "/rulesets".to_string(),
        format!("/rulesets/{}", t.ruleset),
        "/triggers".into(),
        format!("/triggers/{}", t.trigger),
        "/sequences".into(),
        format!("/sequences/{}", t.sequence),
        format!("/leads/{}", t.lead),
        format!("/leads?alias_kind=email&alias={email}"),
        "/milestone-events".into(),
        "/sequence-events".into(),
        "/deliveries".into(),
        "/v1/cdp/event-types".into(),
        "/webhook-secret".into(),
        "/api-keys".into(),
        "/org-units".into(),
    ];
    let mut out = Vec::new();
    for p in paths {
        let (s, v) = gw.get(&p, &t.admin).await;
        assert_eq!(s, 200, "{p} for its own tenant: {v}");
        out.push((p, s, v));
    }
    out
}
