//! Rescore and preview over HTTP against the real processor (issue 15): the gateway on port 0,
//! a tansu broker, the real Redis, the processor in this process. Rules, events, the draft, the
//! rule change and the jobs all go through the HTTP API; the expected numbers are worked out
//! by hand below, not by leadstream's code.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::Message;
use serde_json::{json, Value};

use crate::common::*;
use leadstream_shared::avro::decode_fired;
use leadstream_testkit::openapi::{assert_valid, document};
use leadstream_testkit::{consume, wait_until};

const WAIT: Duration = Duration::from_secs(90);

/// Lead i (0–5) gets i page views and, when i is odd, one demo request.
/// Old rules (page_view 5, demo_request 20): 0, 25, 10, 35, 20, 45 — all below 50.
/// New rules (page_view 10, demo_request 40): 0, 50, 20, 70, 40, 90.
const LEADS: usize = 6;

fn email(i: usize) -> String {
    format!("rescore{i}@example.com")
}

fn old_score(i: usize) -> i64 {
    5 * i as i64 + 20 * (i % 2) as i64
}

fn new_score(i: usize) -> i64 {
    10 * i as i64 + 40 * (i % 2) as i64
}

async fn lead(app: &App, i: usize) -> Value {
    let (status, lead) = app
        .get_json(
            &format!("/leads?alias_kind=email&alias={}", email(i)),
            Cred::Bearer(ADMIN),
        )
        .await;
    assert_eq!(status, 200, "{lead}");
    lead
}

async fn job_until_finished(app: &App, id: &str) -> Value {
    wait_until(WAIT, &format!("job {id} finished"), || async {
        let (status, job) = app
            .get_json(&format!("/rescore-jobs/{id}"), Cred::Bearer(ADMIN))
            .await;
        assert_eq!(status, 200, "{job}");
        (job["state"] != "running").then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_then_rescore_over_http_with_the_real_processor() {
    let app = App::start(spawn_gateway).await;
    let services = Services::processor(&app.service_env(&[]));
    let admin = Cred::Bearer(ADMIN);
    let rules = |pv: i64, demo: i64| {
        json!({"name": "Engagement", "rules": [
            {"event_type": "page_view", "points": pv},
            {"event_type": "demo_request", "points": demo}]})
    };
    let rs = app.expect("/rulesets", admin, &rules(5, 20), 201).await;
    let rs_id = rs["id"].as_str().expect("id").to_string();
    let trg = app
        .expect(
            "/triggers",
            admin,
            &json!({"name": "Hot", "score_threshold": 50,
                    "webhook_url": "https://hooks.example.com/hot"}),
            201,
        )
        .await;
    let trg_id = trg["id"].as_str().expect("id").to_string();
    let mut minute = 0;
    for i in 0..LEADS {
        let mut types = vec!["page_view"; i];
        if i % 2 == 1 {
            types.push("demo_request");
        }
        for ty in types {
            minute += 1;
            let b = json!({"alias_kind": "email", "alias": email(i), "event_type": ty,
                           "timestamp": format!("2025-01-15T10:{minute:02}:00Z")});
            app.expect("/ingest", admin, &b, 202).await;
        }
    }
    for i in 1..LEADS {
        let want = (i + i % 2) as u64;
        wait_until(
            WAIT,
            &format!("lead {i} has its {want} events applied"),
            || async {
                let l = lead(&app, i).await;
                (l["event_count"] == want).then_some(())
            },
        )
        .await;
        assert_eq!(lead(&app, i).await["score"], old_score(i));
    }

    // Preview the new rules as a draft of the ruleset: nothing is written.
    let resp = app
        .post(
            "/rulesets/preview",
            admin,
            &[],
            &json!({"ruleset": rules(10, 40), "ruleset_id": rs_id, "wait_seconds": 60}),
        )
        .await;
    let status = resp.status().as_u16();
    let preview = body(resp).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["state"], "completed", "{preview}");
    let p = &preview["preview"];
    // Leads 1–5 (lead 0 has no event): changes 25, 10, 35, 20, 45.
    assert_eq!(p["leads"], 5, "{p}");
    let buckets: BTreeMap<String, u64> = p["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|b| {
            (
                b["bucket"].as_str().unwrap().to_string(),
                b["leads"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(buckets["10..49"], 5, "{p}");
    assert_eq!(buckets.values().sum::<u64>(), 5, "{p}");
    assert_eq!(p["top"][0]["before"], 45, "{p}");
    assert_eq!(p["top"][0]["after"], 90, "{p}");
    let hot = &p["milestones"][0];
    assert_eq!(hot["trigger_id"], trg_id.as_str());
    assert_eq!(hot["newly_reached"], 3, "leads 1, 3 and 5 reach 50: {p}");
    assert_eq!(hot["fell_below"], 0);
    assert_eq!(lead(&app, 5).await["score"], 45, "a preview writes nothing");

    // Make the change, then rescore with firings.
    let resp = reqwest::Client::new()
        .put(app.url(&format!("/rulesets/{rs_id}")))
        .bearer_auth(ADMIN)
        .json(&rules(10, 40))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let created = app
        .expect(
            "/rulesets/rescore",
            admin,
            &json!({"fire_triggers": true}),
            202,
        )
        .await;
    let job_id = created["id"].as_str().expect("job id").to_string();
    let again = app.post("/rulesets/rescore", admin, &[], &json!({})).await;
    assert_eq!(again.status(), 409, "one rescore per OU at a time");
    let job = job_until_finished(&app, &job_id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        job["progress"]["events_applied"], 18,
        "2 + 2 + 4 + 4 + 6 events: {job}"
    );
    assert_eq!(job["progress"]["fired"], 3, "{job}");
    for i in 1..LEADS {
        let l = lead(&app, i).await;
        assert_eq!(l["score"], new_score(i), "lead {i}: {l}");
        assert_eq!(l["event_count"], (i + i % 2) as u64, "lead {i}: {l}");
    }

    // The three new crossings fired once each, marked as the rescore's.
    let fired: Vec<_> = consume(
        &app.broker.addr(),
        &app.common.topics.fired,
        3,
        WAIT,
        Duration::from_secs(3),
    )
    .await
    .iter()
    .map(|m| decode_fired(m.payload().unwrap_or_default()).expect("fired decodes"))
    .collect();
    let mut ids: Vec<&str> = fired.iter().map(|f| f.fired_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{fired:?}");
    let mut scores: Vec<i64> = fired.iter().map(|f| f.score).collect();
    scores.sort_unstable();
    scores.dedup();
    assert_eq!(scores, vec![50, 70, 90]);
    // The webhook bodies (the fired records' payloads) match the OpenAPI document's milestone
    // webhook, checked by an independent JSON Schema validator; so do the job answers.
    let doc = document();
    for f in &fired {
        assert_eq!(f.trigger_id, trg_id);
        assert_eq!(
            f.payload["rescore"]["job_id"],
            job_id.as_str(),
            "{:?}",
            f.payload
        );
        assert_valid(&doc, "/components/schemas/WebhookMilestone", &f.payload);
    }
    assert_valid(&doc, "/components/schemas/RescoreJob", &job);
    assert_valid(&doc, "/components/schemas/RescoreJob", &preview);

    // Live processing goes on from the switched states: lead 1 at 50 + 10.
    let b = json!({"alias_kind": "email", "alias": email(1), "event_type": "page_view",
                   "timestamp": "2025-01-15T11:00:00Z"});
    app.expect("/ingest", admin, &b, 202).await;
    wait_until(
        WAIT,
        "lead 1's live event applied on the rescored state",
        || async {
            let l = lead(&app, 1).await;
            (l["event_count"] == 3).then_some(l)
        },
    )
    .await;
    assert_eq!(lead(&app, 1).await["score"], 60);
    services.stop().await;
    app.stop().await;
}

/// `since`: only events whose event time is at or after it count; a lead whose events all came
/// before it is reset to 0 (its score is rebuilt from the range, which has none of them); the
/// job reports the range it covered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescore_since_counts_only_events_from_then_on() {
    let app = App::start(spawn_gateway).await;
    let services = Services::processor(&app.service_env(&[]));
    let admin = Cred::Bearer(ADMIN);
    app.expect(
        "/rulesets",
        admin,
        &json!({"name": "Visits", "rules": [{"event_type": "page_view", "points": 10}]}),
        201,
    )
    .await;
    // (lead, event time): a has two visits before 10:00 and one after, b only one before,
    // c two after.
    let visits = [
        ("a", "09:00"),
        ("a", "09:10"),
        ("b", "09:20"),
        ("a", "11:00"),
        ("c", "11:05"),
        ("c", "11:10"),
    ];
    for (lead, at) in visits {
        let b = json!({"alias_kind": "email", "alias": format!("since-{lead}@example.com"),
                       "event_type": "page_view", "timestamp": format!("2025-01-15T{at}:00Z")});
        app.expect("/ingest", admin, &b, 202).await;
    }
    let get = |lead: &'static str| {
        let app = &app;
        async move {
            let (status, l) = app
                .get_json(
                    &format!("/leads?alias_kind=email&alias=since-{lead}@example.com"),
                    admin,
                )
                .await;
            assert_eq!(status, 200, "{l}");
            l
        }
    };
    for (lead, n) in [("a", 3u64), ("b", 1), ("c", 2)] {
        wait_until(
            WAIT,
            &format!("lead {lead}'s {n} events applied"),
            || async { (get(lead).await["event_count"] == n).then_some(()) },
        )
        .await;
    }
    assert_eq!(get("a").await["score"], 30);

    let created = app
        .expect(
            "/rulesets/rescore",
            admin,
            &json!({"since": "2025-01-15T10:00:00Z"}),
            202,
        )
        .await;
    let job = job_until_finished(&app, created["id"].as_str().expect("id")).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert!(
        job["since"]
            .as_str()
            .is_some_and(|s| s.starts_with("2025-01-15T10:00:00")),
        "{job}"
    );
    assert_eq!(
        job["progress"]["events_applied"], 3,
        "only 11:00, 11:05, 11:10: {job}"
    );
    assert_eq!(
        job["progress"]["records_read"], 6,
        "every record is read: {job}"
    );
    assert_eq!(job["progress"]["covered"]["retention_gap"], false, "{job}");
    assert!(job["progress"]["covered"]["from"].is_string(), "{job}");
    assert!(
        job["progress"]["event_time_reached"]
            .as_str()
            .is_some_and(|s| s.starts_with("2025-01-15T11:")),
        "{job}"
    );
    for (lead, score, events) in [("a", 10, 1u64), ("b", 0, 0), ("c", 20, 2)] {
        let l = get(lead).await;
        assert_eq!(l["score"], score, "lead {lead}: {l}");
        assert_eq!(l["event_count"], events, "lead {lead}: {l}");
    }
    services.stop().await;
    app.stop().await;
}
