//! Rescore and preview jobs (issue 15), the gateway's routes through the real gateway on port 0
//! over the real Redis (own key prefix), no broker: `POST /rulesets/rescore`,
//! `POST /rulesets/preview`, `GET` and `DELETE /rescore-jobs/{id}`. What the processors do with
//! a job (replay, switch, report) is not here: where a test needs a job's partitions reported
//! or the job finished, the test writes that itself through the typed store
//! (`RescoreJobs::{set_partitions, report, finish}`), standing in for the processors.

use serde_json::{json, Value};

use leadstream_shared::ids::parse_rfc3339_ms;
use leadstream_shared::store::rescore::{Job, RescoreJobs};

use crate::common::{spawn_on_store, RoutesApp, ADMIN};

mod jobs;
mod requests;

const JOB_SCHEMA: &str = "/components/schemas/RescoreJob";

/// The gateway without a per-key rate limit (a waiting preview and its checks make many calls).
async fn start() -> RoutesApp {
    RoutesApp::builder()
        .var("LEADSTREAM_RATE_LIMIT_PER_SEC", "0")
        .start(spawn_on_store)
        .await
}

/// The store the routes use, for the test's own reads and the processors' writes.
fn jobs_of(gw: &RoutesApp) -> RescoreJobs {
    RescoreJobs::new(gw.store.clone(), gw.keys.clone())
}

/// `POST path` with `body` as `key`: status, `Location` header (or ""), JSON answer.
async fn post(gw: &RoutesApp, path: &str, key: &str, body: &Value) -> (u16, String, Value) {
    let resp = gw
        .http
        .post(format!("{}{path}", gw.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, location, resp.json().await.unwrap_or(Value::Null))
}

/// An org unit of its own with an admin key bound to it; (ou id, admin key).
async fn other_ou(gw: &RoutesApp, name: &str) -> (String, String) {
    let ou = gw.create("/org-units", json!({"name": name})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = gw.key(&["admin"], &[&ou]).await;
    (ou, key)
}

/// The `error` of an answer: (code, message).
fn error(v: &Value) -> (String, String) {
    (
        v["error"]["code"].as_str().unwrap_or("").to_string(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// The `fields` of a 400: (field, message) pairs.
fn fields(v: &Value) -> Vec<(String, String)> {
    v["error"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("fields in {v}"))
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The job as stored, for the created ones.
async fn stored(jobs: &RescoreJobs, id: &str) -> Job {
    jobs.get(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} stored"))
        .job
}

/// The ids of the running jobs.
async fn active_ids(jobs: &RescoreJobs) -> Vec<String> {
    jobs.active()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.job.id)
        .collect()
}

fn assert_ms_between(t: &Value, from: i64, to: i64) {
    let ms = parse_rfc3339_ms(t.as_str().unwrap_or_else(|| panic!("a time: {t}")))
        .unwrap_or_else(|| panic!("RFC 3339: {t}"));
    assert!((from..=to).contains(&ms), "{t} not within [{from}, {to}]");
}
