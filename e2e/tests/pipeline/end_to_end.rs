//! End to end through real parts: the real gateway (HTTP on port 0) → a real tansu broker →
//! the real processor (in-process, same topic and Redis prefixes) → the fired topic, with the
//! real Redis behind both. Everything is created and sent over HTTP as the seeds document it
//! (000 ingest, 003 milestone triggers, 004 sequences); assertions read the fired topic and the
//! gateway's read routes. Waits are conditions with deadlines, never sleeps.

use std::time::Duration;

use rdkafka::Message;
use serde_json::{json, Value};

use crate::common::*;
use leadstream_domain::fired::{TriggerFired, TriggerKind};
use leadstream_shared::avro::decode_fired;
use leadstream_testkit::{consume, key_of, wait_until};

const WAIT: Duration = Duration::from_secs(60);
/// How long the fired topic must stay unchanged for "nothing more fired".
const QUIET: Duration = Duration::from_secs(3);

/// The gateway plus an in-process processor sharing its topic and Redis prefixes.
struct E2e {
    app: App,
    services: Services,
}

impl E2e {
    async fn start() -> E2e {
        let app = App::start(spawn_gateway).await;
        let services = Services::processor(&app.service_env(&[]));
        E2e { app, services }
    }

    /// `POST /ingest` as the bootstrap admin (OU `unit_default`); `(event_id, lead_id)`.
    async fn ingest(&self, b: Value) -> (String, String) {
        let a = self
            .app
            .expect("/ingest", Cred::Bearer(ADMIN), &b, 202)
            .await;
        assert_eq!(a["status"], "accepted");
        let id = |k: &str| {
            a[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {a}"))
                .to_string()
        };
        (id("event_id"), id("lead_id"))
    }

    /// Wait until the lead (by email alias, as `cred` sees it) has processed `n` events.
    async fn lead_after(&self, cred: Cred<'_>, email: &str, n: u64) -> Value {
        let path = format!("/leads?alias_kind=email&alias={email}");
        wait_until(WAIT, &format!("{email} has {n} events applied"), || async {
            let (status, lead) = self.app.get_json(&path, cred).await;
            (status == 200 && lead["event_count"] == n).then_some(lead)
        })
        .await
    }

    /// Every record on the fired topic: at least `n`, and whatever else arrives within QUIET.
    async fn fired(&self, n: usize) -> Vec<(String, TriggerFired)> {
        let topic = &self.app.common.topics.fired;
        consume(&self.app.broker.addr(), topic, n, WAIT, QUIET)
            .await
            .iter()
            .map(|m| {
                let f = decode_fired(m.payload().unwrap_or_default()).expect("fired decodes");
                (key_of(m), f)
            })
            .collect()
    }

    async fn stop(self) {
        self.services.stop().await;
        self.app.stop().await;
    }
}

/// `v` without the named fields (those the test cannot know, like generated ids and times).
fn without(v: &Value, fields: &[&str]) -> Value {
    let mut v = v.clone();
    for f in fields {
        v.as_object_mut().map(|o| o.remove(*f));
    }
    v
}

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id in {v}"))
        .to_string()
}

/// Seed 003's trigger, created over HTTP.
const HOT_LEAD: &str = r#"{"name": "Hot Lead Alert", "event_type": "demo_request",
    "score_threshold": 75, "webhook_url": "https://hooks.example.com/leadvibe",
    "emails": ["sales@example.com"]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milestone_fires_end_to_end() {
    let t = E2e::start().await;
    let admin = Cred::Bearer(ADMIN);
    let rs = t
        .app
        .expect(
            "/rulesets",
            admin,
            &json!({"name": "Engagement", "rules": [
                {"event_type": "page_view", "points": 10,
                 "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]},
                {"event_type": "email_open", "points": 2},
                {"event_type": "demo_request", "points": 50}]}),
            201,
        )
        .await;
    let trigger: Value = serde_json::from_str(HOT_LEAD).unwrap();
    let trg = t.app.expect("/triggers", admin, &trigger, 201).await;
    assert_eq!(trg["active"], true);
    let trg_id = id_of(&trg);

    // Seed 001 route with seed 000's identity extension and an Idempotency-Key: 10 points.
    let email = "user@example.com";
    let first = json!({"event_type": "page_view", "source_id": "src_web",
        "alias_kind": "email", "alias": email, "timestamp": "2025-01-15T10:00:00Z",
        "payload": {"path": "/pricing"}});
    let idem = [("idempotency-key", "pv-0001")];
    let resp = t.app.post("/v1/events/ingest", admin, &idem, &first).await;
    assert_eq!(resp.status(), 200);
    let first_id = body(resp).await["event_id"].as_str().unwrap().to_string();
    // Seed 000 events: 10 + 0 (/blog) + 2 + 10 = 32 in all, then the demo request makes 82.
    let mut lead = String::new();
    for (ty, meta, at) in [
        (
            "page_view",
            json!({"path": "/pricing", "utm_source": "google"}),
            "10:01",
        ),
        ("page_view", json!({"path": "/blog"}), "10:02"),
        ("email_open", json!({}), "10:03"),
        ("page_view", json!({"path": "/pricing"}), "10:04"),
    ] {
        let b = json!({"alias_kind": "email", "alias": email, "event_type": ty,
                       "metadata": meta, "timestamp": format!("2025-01-15T{at}:00Z")});
        lead = t.ingest(b).await.1;
    }
    let before = t.lead_after(admin, email, 5).await;
    assert_eq!(before["score"], 32, "{before}");
    let demo_meta = json!({"source": "website", "page": "/pricing"});
    let (demo_id, demo_lead) = t
        .ingest(
            json!({"alias_kind": "email", "alias": email, "event_type": "demo_request",
                       "metadata": demo_meta, "timestamp": "2025-01-15T10:35:00Z"}),
        )
        .await;
    assert_eq!(demo_lead, lead);

    let fired = t.fired(1).await;
    assert_eq!(fired.len(), 1, "one firing: {fired:?}");
    let (key, f) = &fired[0];
    assert_eq!(key, &format!("unit_default:{lead}"));
    assert_eq!(f.kind, TriggerKind::Milestone);
    assert_eq!(
        (f.trigger_id.as_str(), f.event_id.as_str()),
        (trg_id.as_str(), demo_id.as_str())
    );
    assert_eq!(f.score, 82);
    assert_eq!(
        f.targets.webhook_url.as_deref(),
        Some("https://hooks.example.com/leadvibe")
    );
    assert_eq!(f.targets.emails, ["sales@example.com"]);
    // Seed 003's webhook payload, its own example values but for the ids.
    let payload = json!({
        "trigger": {"id": trg_id, "name": "Hot Lead Alert", "type": "milestone"},
        "event": {"id": demo_id, "lead_id": lead, "event_type": "demo_request",
                  "metadata": demo_meta, "created_at": "2025-01-15T10:35:00Z"},
        "score": 82
    });
    assert_eq!(f.payload, payload);

    let (status, history) = t.app.get_json("/milestone-events", admin).await;
    assert_eq!(status, 200);
    let items = history["milestone_events"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{history}");
    let want = json!({"trigger_id": trg_id, "trigger_name": "Hot Lead Alert", "lead_id": lead,
                      "event_id": demo_id, "score": 82, "payload": payload});
    assert_eq!(without(&items[0], &["id", "fired_at"]), want);

    let view = t.lead_after(admin, email, 6).await;
    assert_eq!(
        (&view["lead_id"], &view["score"]),
        (&json!(lead), &json!(82)),
        "{view}"
    );
    let contributions = view["contributions"].as_array().unwrap();
    let points: Vec<i64> = contributions
        .iter()
        .map(|c| c["points"].as_i64().unwrap())
        .collect();
    assert_eq!(points, [50, 10, 2, 10, 10], "newest first: {view}");
    let newest = &contributions[0];
    assert_eq!(
        (&newest["event_id"], &newest["event_type"]),
        (&json!(demo_id), &json!("demo_request"))
    );
    assert_eq!(newest["ruleset_id"], rs["id"]);
    assert_eq!(
        contributions[4]["event_id"],
        first_id.as_str(),
        "the seed 001 event scored"
    );
    assert_eq!(view["rulesets"][0]["score"], 82);

    // A retry under the same Idempotency-Key replays the first answer and scores nothing; an
    // unscored marker event afterwards shows the lead is processed up to here.
    let resp = t.app.post("/v1/events/ingest", admin, &idem, &first).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    assert_eq!(body(resp).await["event_id"], first_id.as_str());
    t.ingest(json!({"alias_kind": "email", "alias": email, "event_type": "webinar_signup"}))
        .await;
    let after = t.lead_after(admin, email, 7).await;
    assert_eq!(after["score"], 82, "the retry changed the score: {after}");
    // Another demo request above the threshold: 132, and still only the one firing.
    t.ingest(json!({"alias_kind": "email", "alias": email, "event_type": "demo_request"}))
        .await;
    assert_eq!(t.lead_after(admin, email, 8).await["score"], 132);
    assert_eq!(t.fired(1).await.len(), 1, "fires once per crossing");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_fires_end_to_end_with_the_seed_004_example() {
    let t = E2e::start().await;
    let admin = Cred::Bearer(ADMIN);
    let steps = ["pricing_page_view", "whitepaper_download", "demo_request"];
    let seq = t
        .app
        .expect(
            "/sequences",
            admin,
            &json!({"name": "Buying Intent Sequence", "event_types": steps,
                    "window_seconds": 604800, "window_unit": "7 days", "ordered": true,
                    "webhook_url": "https://hooks.example.com/leadvibe",
                    "emails": ["sales@example.com"]}),
            201,
        )
        .await;
    assert_eq!(
        (&seq["ordered"], &seq["active"]),
        (&json!(true), &json!(true))
    );
    let seq_id = id_of(&seq);
    let times = [
        "2025-01-10T09:00:00Z",
        "2025-01-12T14:30:00Z",
        "2025-01-14T11:00:00Z",
    ];

    let buyer = "buyer@example.com";
    let mut ids = Vec::new();
    let mut lead = String::new();
    for (ty, at) in steps.iter().zip(times) {
        let b = json!({"alias_kind": "email", "alias": buyer, "event_type": ty, "timestamp": at});
        let (id, l) = t.ingest(b).await;
        ids.push(id);
        lead = l;
    }
    let fired = t.fired(1).await;
    assert_eq!(fired.len(), 1, "one sequence firing: {fired:?}");
    let (key, f) = &fired[0];
    assert_eq!(key, &format!("unit_default:{lead}"));
    assert_eq!(
        (f.kind, f.trigger_id.as_str()),
        (TriggerKind::Sequence, seq_id.as_str())
    );
    assert_eq!(f.event_id, ids[2], "the demo request completed it");
    assert_eq!(
        f.targets.webhook_url.as_deref(),
        Some("https://hooks.example.com/leadvibe")
    );
    // Seed 004's webhook payload, exactly, but for the ids.
    let payload = json!({
        "trigger": {"id": seq_id, "name": "Buying Intent Sequence", "type": "sequence"},
        "lead_id": lead,
        "sequence": steps,
        "events": [
            {"id": ids[0], "event_type": "pricing_page_view", "created_at": times[0]},
            {"id": ids[1], "event_type": "whitepaper_download", "created_at": times[1]},
            {"id": ids[2], "event_type": "demo_request", "created_at": times[2]}
        ]
    });
    assert_eq!(f.payload, payload);
    let (status, history) = t.app.get_json("/sequence-events", admin).await;
    assert_eq!(status, 200);
    let items = history["sequence_events"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{history}");
    // No ruleset here: the lead's score is 0.
    let want = json!({"sequence_id": seq_id, "sequence_name": "Buying Intent Sequence",
                      "lead_id": lead, "event_id": ids[2], "score": 0, "payload": payload});
    assert_eq!(without(&items[0], &["id", "fired_at"]), want);

    // Out of order (whitepaper before pricing) within the window: an ordered sequence does not
    // match. Once all three are applied, the fired topic stays at one record.
    let other = "other@example.com";
    for (ty, at) in ["whitepaper_download", "pricing_page_view", "demo_request"]
        .iter()
        .zip(times)
    {
        t.ingest(json!({"alias_kind": "email", "alias": other, "event_type": ty, "timestamp": at}))
            .await;
    }
    t.lead_after(admin, other, 3).await;
    let fired = t.fired(1).await;
    assert_eq!(fired.len(), 1, "out of order fired: {fired:?}");
    let (_, history) = t.app.get_json("/sequence-events", admin).await;
    assert_eq!(
        history["sequence_events"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_see_each_other_end_to_end() {
    let t = E2e::start().await;
    let admin = Cred::Bearer(ADMIN);
    let emea = id_of(
        &t.app
            .expect("/org-units", admin, &json!({"name": "EMEA"}), 201)
            .await,
    );
    let key2 = t.app.key(&["admin"], &[emea.as_str()], None).await;
    let other = Cred::Bearer(&key2);
    let page =
        |n: i64| json!({"name": "Pages", "rules": [{"event_type": "page_view", "points": n}]});
    t.app.expect("/rulesets", admin, &page(10), 201).await;
    t.app.expect("/rulesets", other, &page(1), 201).await;
    let mut trigger: Value = serde_json::from_str(HOT_LEAD).unwrap();
    trigger["score_threshold"] = json!(20);
    trigger.as_object_mut().unwrap().remove("event_type");
    let trg_id = id_of(&t.app.expect("/triggers", admin, &trigger, 201).await);

    let email = "shared@example.com";
    let pv = json!({"alias_kind": "email", "alias": email, "event_type": "page_view"});
    let mut lead1 = String::new();
    for _ in 0..3 {
        lead1 = t.ingest(pv.clone()).await.1;
    }
    let mut lead2 = String::new();
    for _ in 0..2 {
        lead2 = t.app.expect("/ingest", other, &pv, 202).await["lead_id"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert_ne!(lead1, lead2, "the same alias in another OU is another lead");
    let view2 = t.lead_after(other, email, 2).await;
    assert_eq!(
        (&view2["lead_id"], &view2["score"]),
        (&json!(lead2), &json!(2)),
        "{view2}"
    );
    let view1 = t.lead_after(admin, email, 3).await;
    assert_eq!(
        (&view1["lead_id"], &view1["score"]),
        (&json!(lead1), &json!(30)),
        "{view1}"
    );

    let fired = t.fired(1).await;
    assert_eq!(
        fired.len(),
        1,
        "only unit_default's trigger fires: {fired:?}"
    );
    assert_eq!(fired[0].0, format!("unit_default:{lead1}"));
    // Any event type, threshold 20: the second page view crosses it.
    assert_eq!(
        (fired[0].1.ou_id.as_str(), fired[0].1.score),
        ("unit_default", 20)
    );

    // The EMEA key sees none of unit_default's things.
    assert_eq!(
        t.app
            .get_json(&format!("/triggers/{trg_id}"), other)
            .await
            .0,
        404
    );
    assert_eq!(
        t.app.get_json(&format!("/leads/{lead1}"), other).await.0,
        404
    );
    let (status, h) = t.app.get_json("/milestone-events", other).await;
    assert_eq!(
        (status, h["milestone_events"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (_, h) = t.app.get_json("/milestone-events", admin).await;
    assert_eq!(h["milestone_events"][0]["lead_id"], lead1.as_str(), "{h}");
    t.stop().await;
}
