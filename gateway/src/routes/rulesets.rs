//! Scoring rulesets of the active OU (issue 3, item 1): `GET /rulesets` → `{"rulesets":[…]}`
//! (read scope), `POST /rulesets` → 201 with the created ruleset, `GET /rulesets/{id}`,
//! `PUT /rulesets/{id}` (replace), `PATCH /rulesets/{id}` (merge; `{"active": false}`
//! deactivates), `DELETE /rulesets/{id}` → 204 (writes need the admin scope).
//!
//! The shape and the field-level validation are the model's
//! ([`leadstream_domain::model::ruleset`]); invalid bodies are 400 like the seeds' trigger
//! routes. The processor notices every change through the OU's config version, which
//! `put_doc` / `delete_doc` bump atomically with the document.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use leadstream_domain::model::ruleset::{CreateRuleset, PatchRuleset, ReplaceRuleset, Ruleset};
use leadstream_shared::catalog::collections::RULESETS;
use leadstream_shared::ids::new_id;

use super::scoring_routes::{
    catalog, ctx, delete_doc, json_body, load_doc, now_rfc3339, save_doc, store_err, update_doc,
    Reply,
};
use crate::auth::Scope;
use crate::state::AppState;

const WHAT: &str = "ruleset";

pub async fn list(State(st): State<AppState>, headers: HeaderMap) -> Reply {
    let c = ctx(&st, &headers, Scope::Read).await?;
    let items: Vec<Ruleset> = catalog(&st)
        .list_docs(&c.tenant.ou_id, RULESETS)
        .await
        .map_err(store_err(&st))?;
    Ok(Json(json!({ "rulesets": items })).into_response())
}

pub async fn create(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: CreateRuleset = json_body(&st, &headers, body).await?;
    let rs = req.validate(new_id("rs"), &now_rfc3339())?;
    save_doc(
        &st,
        &c.tenant.ou_id,
        RULESETS,
        &rs.id,
        &rs,
        StatusCode::CREATED,
    )
    .await
}

pub async fn get_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Read).await?;
    let rs: Ruleset = load_doc(&st, &c.tenant.ou_id, RULESETS, WHAT, &id).await?;
    Ok(Json(rs).into_response())
}

pub async fn replace(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: ReplaceRuleset = json_body(&st, &headers, body).await?;
    update_doc(
        &st,
        &c.tenant.ou_id,
        RULESETS,
        WHAT,
        &id,
        |existing: &Ruleset| req.validate(existing, &now_rfc3339()),
    )
    .await
}

pub async fn patch(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    let req: PatchRuleset = json_body(&st, &headers, body).await?;
    update_doc(
        &st,
        &c.tenant.ou_id,
        RULESETS,
        WHAT,
        &id,
        |existing: &Ruleset| req.validate(existing, &now_rfc3339()),
    )
    .await
}

pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let c = ctx(&st, &headers, Scope::Admin).await?;
    delete_doc(&st, &c.tenant.ou_id, RULESETS, WHAT, &id).await
}
