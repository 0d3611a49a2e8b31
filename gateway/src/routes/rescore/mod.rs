//! Rescore and preview jobs of the active OU (issue 15), the gateway's side: the routes create
//! a job in the typed store ([`RescoreJobs`]), read it and cancel it; the processors that own
//! the events partitions pick running jobs up, replay the OU's events, report each partition's
//! progress and finish the job (`processor::rescore`). Every answer is one shape ([`render`]).
//!
//! - `POST /rulesets/rescore` (admin) `{"since": RFC 3339 | null, "fire_triggers": bool}` (both
//!   optional; defaults null, false) → 202 with the job and `Location: /rescore-jobs/{id}`;
//!   409 `rescore_running` while another rescore of the OU runs (one at a time per OU);
//! - `POST /rulesets/preview` (admin) `{"ruleset": <a POST /rulesets body>, "ruleset_id": the
//!   OU's ruleset the draft replaces (404 when unknown; without it the draft is added),
//!   "since", "wait_seconds": 0..=120 (default 30)}` → waits up to `wait_seconds` for the
//!   result: 200 with the finished job (its `preview`), else 202 with the running job and
//!   `Location`. A preview writes no lead state and saves no ruleset;
//! - `GET /rescore-jobs/{id}` (read) → 200 with the job;
//! - `DELETE /rescore-jobs/{id}` (admin) → 200 with the cancelled job ([`cancel`]).
//!
//! Jobs are stored by id for every tenant, so each route checks that the job is the active
//! OU's: another tenant's job is a 404 like an unknown one, never a 403 that would confirm it
//! exists. `since` may not be in the future (400); bodies are validated as in [`body`].

pub mod body;
mod view;

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use leadstream_shared::ids::{new_id, now_ms};
use leadstream_shared::store::rescore::{CreateRefused, Job, JobState, JobView};

use super::documents::load;
use super::request::{decode_object, json_value, not_found, now_rfc3339, store_err};
use super::rulesets::Rulesets;
use super::{ctx_for, Ctx};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;
use body::{PreviewBody, RescoreBody};
pub use view::render;

/// How often a waiting preview reads its job.
const POLL: Duration = Duration::from_millis(100);

/// What jobs are called in messages.
const WHAT: &str = "rescore job";

/// `POST /rulesets/rescore`.
pub async fn create_rescore(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let now = now_ms();
    let req =
        decode_object::<RescoreBody>(json_value(&st, &headers, body).await?)?.validate(now)?;
    let job = Job::rescore(
        &c.tenant.org_id,
        &c.tenant.ou_id,
        req.since_ms,
        req.fire_triggers,
        now,
    );
    record(&st, &job).await?;
    accepted(&read_back(&st, &job.id).await?)
}

/// Store a new job: 409 while the OU's rescore slot is taken (previews take none).
async fn record(st: &AppState, job: &Job) -> Result<(), ApiError> {
    if let Err(CreateRefused::AlreadyRunning(holder)) =
        st.rescore.create(job).await.map_err(store_err(st))?
    {
        return Err(already_running(&holder));
    }
    tracing::info!(job = %job.id, ou = %job.ou_id, kind = ?job.kind, "rescore job created");
    Ok(())
}

fn already_running(holder: &str) -> ApiError {
    let message = if holder.is_empty() {
        // The holder finished between the store's two commands.
        "another rescore of this OU was running a moment ago; retry".to_string()
    } else {
        format!(
            "{WHAT} {holder:?} of this OU is still running; wait for it to finish or cancel it \
             with DELETE /rescore-jobs/{holder}"
        )
    };
    ApiError::conflict("rescore_running", message)
}

/// `POST /rulesets/preview`: create the job, then read it every [`POLL`] until it finishes or
/// `wait_seconds` pass (or the gateway begins shutting down).
pub async fn create_preview(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let now = now_ms();
    let req = decode_object::<PreviewBody>(json_value(&st, &headers, body).await?)?.validate(
        now,
        &now_rfc3339(),
        || new_id("rs"),
    )?;
    if let Some(id) = &req.replaces {
        load::<Rulesets>(&st, &c.tenant.ou_id, id).await?;
    }
    let job = Job::preview(
        &c.tenant.org_id,
        &c.tenant.ou_id,
        req.since_ms,
        req.draft,
        now,
    );
    record(&st, &job).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(req.wait_secs);
    loop {
        let view = read_back(&st, &job.id).await?;
        if view.status.state.is_finished() {
            return Ok(Json(render(&view)).into_response());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return accepted(&view);
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(POLL)) => {}
            _ = st.shutdown.cancelled() => return accepted(&view),
        }
    }
}

/// `GET /rescore-jobs/{id}`.
pub async fn get_job(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Read).await?;
    let view = load_job(&st, &c, &id).await?;
    Ok(Json(render(&view)).into_response())
}

/// `DELETE /rescore-jobs/{id}`: a running job becomes `cancelled` (200 with it); a finished one
/// is a 409 `rescore_finished`. The processors stop working on it at their next look at the job.
/// A rescore's partitions that were already switched to the replayed state stay switched (each
/// switch is one atomic write of its partition; there is no undo): after a cancel, some leads
/// may carry rescored scores and others not until a new rescore (now allowed) runs.
pub async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = ctx_for(&st, &headers, Scope::Admin).await?;
    let view = load_job(&st, &c, &id).await?;
    let cancelled = !view.status.state.is_finished()
        && st
            .rescore
            .finish(&view, JobState::Cancelled, None, now_ms())
            .await
            .map_err(store_err(&st))?;
    let view = read_back(&st, &id).await?;
    if !cancelled {
        return Err(ApiError::conflict(
            "rescore_finished",
            format!(
                "{WHAT} {id:?} is already {}; only a running job can be cancelled",
                state_name(view.status.state)
            ),
        ));
    }
    tracing::info!(job = %id, ou = %c.tenant.ou_id, "rescore job cancelled");
    Ok(Json(render(&view)).into_response())
}

/// The job, when it is the active OU's; else (unknown, expired, another tenant's) 404.
async fn load_job(st: &AppState, c: &Ctx, id: &str) -> Result<JobView, ApiError> {
    st.rescore
        .get(id)
        .await
        .map_err(store_err(st))?
        .filter(|v| v.job.ou_id == c.tenant.ou_id && v.job.org_id == c.tenant.org_id)
        .ok_or_else(|| not_found(WHAT, id))
}

/// A job this request created or already found.
async fn read_back(st: &AppState, id: &str) -> Result<JobView, ApiError> {
    st.rescore
        .get(id)
        .await
        .map_err(store_err(st))?
        .ok_or_else(|| ApiError::Internal(format!("{WHAT} {id} vanished from the store")))
}

/// 202 with the job and where to follow it.
fn accepted(view: &JobView) -> Result<Response, ApiError> {
    let location = HeaderValue::from_str(&format!("/rescore-jobs/{}", view.job.id))
        .map_err(|e| ApiError::Internal(format!("Location header: {e}")))?;
    let mut resp = (StatusCode::ACCEPTED, Json(render(view))).into_response();
    resp.headers_mut().insert(header::LOCATION, location);
    Ok(resp)
}

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Running => "running",
        JobState::Completed => "completed",
        JobState::Cancelled => "cancelled",
        JobState::Failed => "failed",
    }
}
