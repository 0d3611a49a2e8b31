//! `/healthz` (the process answers), `/readyz` (it should get traffic: not shutting down and the
//! store answers; 503 as soon as shutdown begins so load balancers drain it first) and
//! `/metrics` (Prometheus text). With `LEADSTREAM_METRICS_ADDR` the three are served on that
//! operations port ([`crate::server::ops_router`]) and `/metrics` leaves the public port. `/readyz` never
//! echoes the store's error (addresses, credentials in URLs): it is logged instead.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(st): State<AppState>) -> Response {
    if st.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    match st.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "/readyz: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "store_unavailable"})),
            )
                .into_response()
        }
    }
}

pub async fn metrics() -> Response {
    match crate::metrics::install() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed").into_response(),
    }
}
