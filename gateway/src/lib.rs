//! leadstream-gateway: the HTTP front door.
//!
//! The path of an event through this crate:
//!
//! ```text
//! HTTP request ─▶ server (router, metrics, panic guard)
//!   └▶ routes::*        auth (key → scope → rate limit → active OU), then
//!        body           Content-Type, size limits, gzip with a decompressed cap
//!        payload::*     seed format → Draft (precise 400/422 messages)
//!        dedupe         seed 001 Idempotency-Key / seed 002 externalEventId: two-phase claim
//!        publish        identity (aliases → ld_… lead, Redis) → Avro → sink (Kafka, acks=all)
//!   ◀─ 2xx only after the broker acknowledged; 503 + Retry-After when it did not
//! ```
//!
//! Management (org units, API keys) and the catalog documents — rulesets, triggers, sequences,
//! CDP event types, all through one generic pattern (`routes::documents`) over the catalog's
//! typed store — plus the reads (leads, history, deliveries) and `/healthz`, `/readyz`,
//! `/metrics` are served beside the ingest routes; `server::router` is the one place they are
//! assembled. Entry points: [`run`] (the `leadstream
//! gateway` subcommand), [`spawn`] (tests: real broker and Redis, port 0) and [`spawn_with`] /
//! [`router_with`] (any store and sink, e.g. `leadstream dev` or in-process tests).

pub mod auth;
pub mod body;
pub mod cache;
pub mod config;
pub mod dedupe;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod payload;
pub mod publish;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod sink;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use leadstream_shared::kafka::ensure_topics;
use leadstream_shared::store::Store;

pub use config::GatewayConfig;
pub use sink::{EventSink, KafkaSink, MemorySink};
pub use state::AppState;

/// A gateway running in this process.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The operations port's bound address, when `LEADSTREAM_METRICS_ADDR` is set.
    pub ops_addr: Option<SocketAddr>,
    /// Resolves when the server stopped (after the shutdown token was cancelled and it drained).
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub state: AppState,
}

/// Run the gateway until `shutdown` is cancelled and the drain finished.
pub async fn run(cfg: GatewayConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let running = spawn(cfg, shutdown).await?;
    running.handle.await.context("gateway task failed")?
}

/// Connect to Redis (`LEADSTREAM_REDIS_URL` is required here) and the brokers, create the events
/// topic when missing, bootstrap the catalog, bind, and serve in a task.
pub async fn spawn(cfg: GatewayConfig, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let url = cfg.common.redis_url.clone().context(
        "LEADSTREAM_REDIS_URL is required for the gateway (only `leadstream dev` runs without Redis)",
    )?;
    let store = cfg
        .common
        .open_store()
        .await
        .with_context(|| format!("cannot connect to Redis at {}", redact_url(&url)))?;
    let sink = kafka_sink(&cfg).await?;
    spawn_with(cfg, store, sink, shutdown).await
}

/// The Kafka sink for `cfg`: creates the events topic when missing, then the producer.
pub async fn kafka_sink(cfg: &GatewayConfig) -> anyhow::Result<Arc<dyn EventSink>> {
    let c = &cfg.common;
    ensure_topics(
        &c.kafka,
        &[&c.topics.events],
        c.partitions,
        c.replication_factor,
    )
    .await
    .context("cannot prepare the events topic")?;
    Ok(Arc::new(KafkaSink::new(
        c.kafka.clone(),
        c.topics.events.clone(),
        cfg.produce_timeout,
    )?))
}

/// Serve with the given store and sink (any adapters), on `cfg.http_addr`.
pub async fn spawn_with(
    cfg: GatewayConfig,
    store: Store,
    sink: Arc<dyn EventSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    metrics::install();
    let addr = cfg.http_addr;
    let state = build_state(cfg, store, sink, shutdown).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (LEADSTREAM_HTTP_ADDR)"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gateway listening");
    let ops =
        match state.cfg.metrics_addr {
            None => None,
            Some(ops_addr) => Some(tokio::net::TcpListener::bind(ops_addr).await.with_context(
                || format!("cannot listen on {ops_addr} (LEADSTREAM_METRICS_ADDR)"),
            )?),
        };
    let ops_addr = ops.as_ref().map(|l| l.local_addr()).transpose()?;
    if let Some(a) = ops_addr {
        tracing::info!(addr = %a, "/metrics, /healthz and /readyz served on the operations port");
    }
    let st = state.clone();
    let handle = tokio::spawn(async move {
        // The operations port answers through the drain (readiness says 503 then) and stops
        // with the public server.
        let ops = ops.map(|l| {
            let app = server::ops_router(st.clone());
            tokio::spawn(async move { axum::serve(l, app).await })
        });
        let result = server::serve(listener, st).await;
        if let Some(ops) = ops {
            ops.abort();
        }
        result
    });
    Ok(Running {
        addr,
        ops_addr,
        handle,
        state,
    })
}

/// The router alone, for in-process tests (`tower::ServiceExt::oneshot`).
pub async fn router_with(
    cfg: GatewayConfig,
    store: Store,
    sink: Arc<dyn EventSink>,
) -> anyhow::Result<(axum::Router, AppState)> {
    let state = build_state(cfg, store, sink, CancellationToken::new()).await?;
    Ok((server::router(state.clone()), state))
}

async fn build_state(
    cfg: GatewayConfig,
    store: Store,
    sink: Arc<dyn EventSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<AppState> {
    let bootstrap = cfg.bootstrap_admin_key.clone();
    let state = AppState::build(cfg, store, sink, shutdown);
    let catalog = &state.auth.catalog;
    catalog
        .bootstrap(bootstrap.as_ref().map(|s| s.expose()))
        .await
        .context("cannot bootstrap the default org, OU and admin key")?;
    // The runbook's promise: unsetting the variable retires the key.
    if bootstrap.is_none() && catalog.retire_bootstrap_key().await? {
        tracing::warn!(
            "LEADSTREAM_BOOTSTRAP_ADMIN_KEY is unset: the bootstrap admin key was removed"
        );
    }
    Ok(state)
}

/// `redis://user:pass@host` → `redis://***@host` for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}
