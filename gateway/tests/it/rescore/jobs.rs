//! A rescore's life through the routes (created once per OU, read, cancelled, refused to other
//! tenants and to keys without the admin scope), and a preview's: answered 202 when it is not
//! done in time, 200 with the result when the processors finish it while it waits.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use leadstream_shared::ids::now_ms;
use leadstream_shared::store::rescore::{
    JobKind, JobState, LeadChange, MilestoneShift, PartitionProgress, Phase, PreviewPart,
    RescoreJobs, CHANGE_BUCKETS,
};
use leadstream_testkit::openapi::{assert_valid, document};

use super::*;

#[tokio::test]
async fn one_rescore_per_ou_is_accepted_read_and_cancelled() {
    let gw = start().await;
    let jobs = jobs_of(&gw);
    let doc = document();
    let before = now_ms();
    let (s, location, job) = post(
        &gw,
        "/rulesets/rescore",
        ADMIN,
        &json!({"since": "2025-01-15T10:00:00Z", "fire_triggers": true}),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("rsj_"), "{id}");
    assert_eq!(location, format!("/rescore-jobs/{id}"));
    assert_ms_between(&job["created_at"], before, now_ms());
    let mut expected = json!({
        "id": id, "kind": "rescore", "ou_id": "unit_default", "state": "running",
        "since": "2025-01-15T10:00:00Z", "fire_triggers": true,
        "created_at": job["created_at"], "finished_at": null, "error": null,
        "progress": {"partitions_total": null, "partitions_done": 0, "records_read": 0,
            "events_applied": 0, "leads_updated": 0, "scores_changed": 0, "fired": 0,
            "event_time_reached": null,
            "covered": {"from": null, "to": null, "retention_gap": false}},
        "partitions": [],
    });
    assert_eq!(job, expected);
    assert_valid(&doc, JOB_SCHEMA, &job);
    // Stored as asked: what the processors will pick up.
    let stored = stored(&jobs, &id).await;
    assert_eq!(
        (stored.kind, stored.org_id.as_str(), stored.ou_id.as_str()),
        (JobKind::Rescore, "org_default", "unit_default")
    );
    assert_eq!(
        (
            stored.since_ms,
            stored.fire_triggers,
            stored.draft.is_none()
        ),
        (Some(1_736_935_200_000), true, true)
    );
    assert_eq!(active_ids(&jobs).await, vec![id.clone()]);

    // A second rescore of the OU is refused, naming the running one; nothing is created.
    let (s, _, refused) = post(&gw, "/rulesets/rescore", ADMIN, &json!({})).await;
    assert_eq!(s, 409, "{refused}");
    let (code, message) = error(&refused);
    assert_eq!(code, "rescore_running");
    assert!(message.contains(&id), "{message}");
    assert_eq!(active_ids(&jobs).await, vec![id.clone()]);

    // Readable with a read key; another OU neither sees nor cancels it, but runs its own.
    let read = gw.key(&["read"], &["unit_default"]).await;
    let path = format!("/rescore-jobs/{id}");
    assert_eq!(gw.get(&path, &read).await, (200, job.clone()));
    let (other, other_admin) = other_ou(&gw, "Other").await;
    let (s, v) = gw.get(&path, &other_admin).await;
    assert_eq!((s, error(&v).0.as_str()), (404, "not_found"), "{v}");
    assert_eq!(error(&v).1, format!("rescore job {id:?} does not exist"));
    let (s, v) = gw.call(Method::DELETE, &path, &other_admin, None).await;
    assert_eq!((s, error(&v).0.as_str()), (404, "not_found"), "{v}");
    assert_eq!(gw.get(&path, ADMIN).await, (200, job.clone()));
    let (s, _, theirs) = post(&gw, "/rulesets/rescore", &other_admin, &json!({})).await;
    assert_eq!((s, theirs["ou_id"].as_str()), (202, Some(other.as_str())));
    assert_eq!(theirs["since"], Value::Null);
    assert_eq!(theirs["fire_triggers"], false);

    // Keys without the admin scope may not start or cancel.
    let ingest = gw.key(&["ingest"], &["unit_default"]).await;
    for key in [&read, &ingest] {
        let (s, _, v) = post(&gw, "/rulesets/rescore", key, &json!({})).await;
        assert_eq!((s, error(&v).0.as_str()), (403, "forbidden"), "{v}");
        let (s, v) = gw.call(Method::DELETE, &path, key, None).await;
        assert_eq!((s, error(&v).0.as_str()), (403, "forbidden"), "{v}");
        let (s, _, v) = post(
            &gw,
            "/rulesets/preview",
            key,
            &json!({"ruleset": {"name": "d"}}),
        )
        .await;
        assert_eq!((s, error(&v).0.as_str()), (403, "forbidden"), "{v}");
    }
    let (s, _) = gw.get(&path, &ingest).await;
    assert_eq!(s, 403);

    // Cancelled: the answer says so, the OU's slot is free again, a second cancel is a 409.
    let before = now_ms();
    let (s, cancelled) = gw.call(Method::DELETE, &path, ADMIN, None).await;
    assert_eq!(s, 200, "{cancelled}");
    assert_ms_between(&cancelled["finished_at"], before, now_ms());
    expected["state"] = json!("cancelled");
    expected["finished_at"] = cancelled["finished_at"].clone();
    assert_eq!(cancelled, expected);
    assert_valid(&doc, JOB_SCHEMA, &cancelled);
    assert_eq!(gw.get(&path, ADMIN).await, (200, cancelled.clone()));
    let mut running = active_ids(&jobs).await;
    running.sort();
    assert_eq!(running, vec![theirs["id"].as_str().unwrap().to_string()]);
    let (s, v) = gw.call(Method::DELETE, &path, ADMIN, None).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        error(&v),
        (
            "rescore_finished".into(),
            format!("rescore job {id:?} is already cancelled; only a running job can be cancelled")
        )
    );
    let (s, _, again) = post(&gw, "/rulesets/rescore", ADMIN, &json!({"since": null})).await;
    assert_eq!(s, 202, "{again}");
    assert_ne!(again["id"], job["id"]);
    let (s, v) = gw
        .call(Method::DELETE, "/rescore-jobs/rsj_nope", ADMIN, None)
        .await;
    assert_eq!(
        (s, error(&v).1.as_str()),
        (404, "rescore job \"rsj_nope\" does not exist")
    );
}

/// A finished partition's report, as a processor would write it.
fn done(
    partition: i32,
    preview: PreviewPart,
    read: u64,
    from_ms: i64,
    to_ms: i64,
) -> PartitionProgress {
    PartitionProgress {
        partition,
        phase: Some(Phase::Done),
        records_read: read,
        events_applied: read - 1,
        leads: preview.leads,
        scores_changed: preview.top.iter().filter(|c| c.change != 0).count() as u64,
        first_offset: Some(0),
        last_offset: Some(read as i64 - 1),
        covered_from_ms: Some(from_ms),
        covered_to_ms: Some(to_ms),
        event_time_reached_ms: Some(to_ms),
        preview: Some(preview),
        updated_at_ms: to_ms,
        ..Default::default()
    }
}

fn change(lead: &str, before: i64, after: i64) -> LeadChange {
    LeadChange {
        lead_id: lead.into(),
        before,
        after,
        change: after - before,
    }
}

fn shift(newly_reached: u64, fell_below: u64) -> MilestoneShift {
    MilestoneShift {
        name: "Hot".into(),
        threshold: 40,
        newly_reached,
        fell_below,
    }
}

const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z

/// Report both partitions of `id` done with their previews and finish the job, standing in for
/// the processors.
async fn complete(jobs: &RescoreJobs, id: &str) {
    jobs.set_partitions(id, 2).await.unwrap();
    let mut a = PreviewPart::default();
    a.add(change("ld_a", 30, 45));
    a.add(change("ld_b", 10, 10));
    a.milestones.insert("trg_1".into(), shift(1, 0));
    let mut b = PreviewPart::default();
    b.add(change("ld_c", 160, 20));
    b.add(change("ld_d", 0, 3));
    b.add(change("ld_e", 50, 45));
    b.milestones.insert("trg_1".into(), shift(0, 1));
    b.milestones.insert(
        "trg_2".into(),
        MilestoneShift {
            name: "Warm".into(),
            threshold: 5,
            newly_reached: 0,
            fell_below: 0,
        },
    );
    jobs.report(id, &done(0, a, 10, T0 + 1_000, T0 + 60_500))
        .await
        .unwrap();
    jobs.report(id, &done(1, b, 7, T0 + 2_000, T0 + 30_250))
        .await
        .unwrap();
    let view = jobs.get(id).await.unwrap().unwrap();
    assert!(jobs
        .finish(&view, JobState::Completed, None, T0 + 90_000)
        .await
        .unwrap());
}

/// The rendered result of [`complete`].
fn completed_preview() -> Value {
    let counts: BTreeMap<&str, u64> = [
        ("<=-100", 1),
        ("-9..-1", 1),
        ("0", 1),
        ("1..9", 1),
        ("10..49", 1),
    ]
    .into();
    let changes: Vec<Value> = CHANGE_BUCKETS
        .iter()
        .map(|b| json!({"bucket": b, "leads": counts.get(b).copied().unwrap_or(0)}))
        .collect();
    json!({
        "leads": 5,
        "changes": changes,
        "top": [
            {"lead_id": "ld_c", "before": 160, "after": 20, "change": -140},
            {"lead_id": "ld_a", "before": 30, "after": 45, "change": 15},
            {"lead_id": "ld_e", "before": 50, "after": 45, "change": -5},
            {"lead_id": "ld_d", "before": 0, "after": 3, "change": 3},
            {"lead_id": "ld_b", "before": 10, "after": 10, "change": 0},
        ],
        "milestones": [
            {"trigger_id": "trg_1", "name": "Hot", "threshold": 40, "newly_reached": 1, "fell_below": 1},
            {"trigger_id": "trg_2", "name": "Warm", "threshold": 5, "newly_reached": 0, "fell_below": 0},
        ],
    })
}

#[tokio::test]
async fn a_preview_not_done_in_time_is_202_and_its_finished_result_is_rendered_whole() {
    let gw = start().await;
    let jobs = jobs_of(&gw);
    let doc = document();
    let rules = json!([{"event_type": "page_view", "points": 5}]);
    let existing = gw
        .create("/rulesets", json!({"name": "Engagement", "rules": rules}))
        .await;
    let rs = existing["id"].as_str().unwrap().to_string();
    let draft = json!({"name": "Engagement v2", "rules": [
        {"event_type": "page_view", "points": 3}, {"event_type": "unsubscribe", "points": -50}]});
    let (s, location, job) = post(
        &gw,
        "/rulesets/preview",
        ADMIN,
        &json!({"ruleset": draft, "ruleset_id": rs, "since": "2025-01-15T10:00:00Z",
                "wait_seconds": 0}),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/rescore-jobs/{id}"));
    assert_eq!(
        (
            &job["kind"],
            &job["state"],
            &job["since"],
            &job["fire_triggers"]
        ),
        (
            &json!("preview"),
            &json!("running"),
            &json!("2025-01-15T10:00:00Z"),
            &json!(false)
        )
    );
    assert!(job.get("preview").is_none(), "no result yet: {job}");
    assert_valid(&doc, JOB_SCHEMA, &job);
    // The draft, validated as POST /rulesets does, replaces the existing ruleset in the job
    // only: the stored ruleset is untouched.
    let stored = stored(&jobs, &id).await;
    let d = stored.draft.expect("the draft");
    assert_eq!(
        (d.id.as_str(), d.name.as_str(), d.active),
        (rs.as_str(), "Engagement v2", true)
    );
    assert_eq!(
        d.rules
            .iter()
            .map(|r| (r.event_type.as_str(), r.points))
            .collect::<Vec<_>>(),
        [("page_view", 3), ("unsubscribe", -50)]
    );
    assert_eq!(
        gw.get(&format!("/rulesets/{rs}"), ADMIN).await,
        (200, existing)
    );
    // Previews take no rescore slot.
    let (s, _, _) = post(&gw, "/rulesets/rescore", ADMIN, &json!({})).await;
    assert_eq!(s, 202);

    // Half done: no partial result is shown.
    jobs.set_partitions(&id, 2).await.unwrap();
    let mut part = PreviewPart::default();
    part.add(change("ld_a", 30, 45));
    jobs.report(&id, &done(0, part, 10, T0 + 1_000, T0 + 60_500))
        .await
        .unwrap();
    let (s, half) = gw.get(&format!("/rescore-jobs/{id}"), ADMIN).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            &half["progress"]["partitions_total"],
            &half["progress"]["partitions_done"]
        ),
        (&json!(2), &json!(1))
    );
    assert!(half.get("preview").is_none(), "{half}");

    complete(&jobs, &id).await;
    let (s, v) = gw.get(&format!("/rescore-jobs/{id}"), ADMIN).await;
    assert_eq!(s, 200, "{v}");
    assert_valid(&doc, JOB_SCHEMA, &v);
    assert_eq!(v["state"], "completed");
    assert_eq!(v["finished_at"], "2025-01-15T10:01:30Z");
    assert_eq!(
        v["progress"],
        json!({"partitions_total": 2, "partitions_done": 2, "records_read": 17,
            "events_applied": 15, "leads_updated": 5, "scores_changed": 4, "fired": 0,
            "event_time_reached": "2025-01-15T10:00:30.250Z",
            "covered": {"from": "2025-01-15T10:00:01Z", "to": "2025-01-15T10:01:00.500Z",
                        "retention_gap": false}})
    );
    assert_eq!(
        v["partitions"][1],
        json!({"partition": 1, "phase": "done", "records_read": 7, "events_applied": 6,
            "leads": 3, "scores_changed": 3, "fired": 0, "first_offset": 0, "last_offset": 6,
            "covered_from": "2025-01-15T10:00:02Z", "covered_to": "2025-01-15T10:00:30.250Z",
            "event_time_reached": "2025-01-15T10:00:30.250Z", "retention_gap": false,
            "switched_at_offset": null, "error": null})
    );
    assert_eq!(v["preview"], completed_preview());
    // A finished preview cannot be cancelled.
    let (s, refused) = gw
        .call(Method::DELETE, &format!("/rescore-jobs/{id}"), ADMIN, None)
        .await;
    assert_eq!((s, error(&refused).0.as_str()), (409, "rescore_finished"));
}

#[tokio::test]
async fn a_preview_finished_while_it_waits_is_answered_200_with_its_result() {
    let gw = start().await;
    let jobs = jobs_of(&gw);
    // The processors' stand-in: finishes the first preview it sees running.
    let finisher = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let running = jobs.active().await.unwrap();
                if let Some(v) = running.iter().find(|v| v.job.kind == JobKind::Preview) {
                    complete(&jobs, &v.job.id).await;
                    return v.job.id.clone();
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no preview job appeared"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let (s, location, v) = post(
        &gw,
        "/rulesets/preview",
        ADMIN,
        &json!({"ruleset": {"name": "Draft"}, "wait_seconds": 30}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered once finished"
    );
    assert_eq!(location, "", "a finished preview needs no Location");
    let id = finisher.await.unwrap();
    assert_eq!(v["id"], id);
    assert_eq!(v["state"], "completed");
    assert_eq!(v["preview"], completed_preview());
    assert_valid(&document(), JOB_SCHEMA, &v);
    // A new draft got a new ruleset id; nothing was saved.
    let d = stored(&jobs, &id).await.draft.unwrap();
    assert!(d.id.starts_with("rs_"), "{}", d.id);
    assert_eq!(gw.get("/rulesets", ADMIN).await.1, json!({"rulesets": []}));
}
