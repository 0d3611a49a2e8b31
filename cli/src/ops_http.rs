//! The processor's and the notifier's operations port, `LEADSTREAM_METRICS_ADDR` (the gateway
//! serves the same routes on its own port):
//!
//! - `/metrics`: Prometheus text;
//! - `/healthz`: the process answers (liveness);
//! - `/readyz`: 200 while the service is running and its store answers a PING; 503 as soon as
//!   shutdown begins (the drain is under way) or when Redis does not answer, so a rollout waits
//!   for a replica that can actually work.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use leadstream_shared::store::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How often histograms are compacted when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Ops {
    metrics: PrometheusHandle,
    store: Store,
    shutdown: CancellationToken,
}

/// The address from `LEADSTREAM_METRICS_ADDR`, if set (checked before anything connects).
pub fn addr_from_env() -> anyhow::Result<Option<SocketAddr>> {
    let Ok(raw) = std::env::var("LEADSTREAM_METRICS_ADDR") else {
        return Ok(None);
    };
    raw.parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("LEADSTREAM_METRICS_ADDR: {raw:?} is not host:port ({e})"))
}

/// Install the Prometheus recorder, bind `addr` and serve the three routes in a task. The task
/// keeps serving during the drain (readiness says 503 then) and ends with the process.
pub async fn serve(
    addr: SocketAddr,
    common: &leadstream_shared::config::CommonConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the Prometheus recorder")?;
    let store = common
        .open_store()
        .await
        .context("operations port: cannot connect to Redis (LEADSTREAM_REDIS_URL)")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("LEADSTREAM_METRICS_ADDR: cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Ops {
            metrics,
            store,
            shutdown,
        });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "operations port stopped");
        }
    });
    tracing::info!(addr = %bound, "/metrics, /healthz and /readyz served");
    Ok(())
}

async fn render(State(ops): State<Ops>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(ops): State<Ops>) -> Response {
    if ops.shutdown.is_cancelled() {
        let body = json!({"status": "shutting_down"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), ops.store.ping()).await {
        Ok(Ok(())) => Json(json!({"status": "ready"})).into_response(),
        Ok(Err(e)) => {
            // Logged, never echoed: the error can name internal addresses.
            tracing::warn!(error = %e, "/readyz: the store does not answer");
            let body = json!({"status": "store_unavailable"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        Err(_) => {
            let body = json!({"status": "store_unavailable", "message": "PING timed out after 2s"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
