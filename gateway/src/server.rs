//! The router and the server loop.
//!
//! Every route reads its own body (see [`crate::body`]) so axum's default body limit is off;
//! the layers add request metrics, tracing and panic-to-500 (a panic is a bug and must never
//! take the process down with it). Connections are served by hyper directly ([`accept_loop`]) so
//! that request headers, like bodies, must arrive within `LEADSTREAM_READ_TIMEOUT`. At most `LEADSTREAM_MAX_IN_FLIGHT` requests are served at once
//! ([`shed`]): one more is answered 503 with `Retry-After` at once, so a flood costs a refusal,
//! not a queue that grows without bound (the health and metrics routes are never shed).
//! Shutdown: when the token is cancelled `/readyz` answers 503
//! at once; after `LEADSTREAM_SHUTDOWN_DELAY` (time for load balancers to notice) the listener
//! closes, in-flight requests get up to `LEADSTREAM_SHUTDOWN_GRACE` to finish, and the producer
//! is flushed so every acknowledged answer's record is on the broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use leadstream_shared::metric;
use leadstream_shared::trace::{self, TraceContext};

use crate::error::ApiError;
use crate::metrics::{GatewayCounter, GatewayHistogram};
use crate::routes::documents as docs;
use crate::routes::event_types::EventTypes;
use crate::routes::rulesets::Rulesets;
use crate::routes::sequences::{self, Sequences};
use crate::routes::triggers::{self, Triggers};
use crate::routes::{
    cdp, deliveries, health, history, import, ingest, leads, manage, openapi, rescore,
};
use crate::state::AppState;

/// All routes with their layers: the only place routes are assembled.
pub fn router(st: AppState) -> Router {
    let in_flight = InFlight {
        permits: (st.cfg.max_in_flight > 0).then(|| Arc::new(Semaphore::new(st.cfg.max_in_flight))),
        retry_after_secs: st.cfg.retry_after_secs(),
    };
    // With an operations port, `/metrics` is served there only.
    let metrics_here = st.cfg.metrics_addr.is_none();
    let public = Router::new()
        .route("/ingest", post(ingest::ingest))
        .route("/import", post(import::import))
        .route("/v1/events/ingest", post(ingest::events_ingest))
        .route("/v1/cdp/events", post(cdp::event))
        .route("/v1/cdp/events/batch", post(cdp::batch))
        .route(
            "/v1/cdp/event-types",
            post(docs::create::<EventTypes>).get(docs::list::<EventTypes>),
        )
        .route(
            "/v1/cdp/event-types/{name}",
            delete(docs::delete::<EventTypes>),
        )
        .route(
            "/org-units",
            post(manage::create_org_unit).get(manage::list_org_units),
        )
        .route("/org-units/active", post(manage::set_active_ou))
        .route(
            "/api-keys",
            post(manage::create_api_key).get(manage::list_api_keys),
        )
        .route("/api-keys/{id}", delete(manage::delete_api_key))
        .route("/webhook-secret", get(manage::webhook_secret))
        .route(
            "/webhook-secret/rotate",
            post(manage::rotate_webhook_secret),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi))
        // Scoring and triggers: management (the document pattern plus simulate) and reads.
        .route(
            "/rulesets",
            get(docs::list::<Rulesets>).post(docs::create::<Rulesets>),
        )
        .route("/rulesets/rescore", post(rescore::create_rescore))
        .route("/rulesets/preview", post(rescore::create_preview))
        .route(
            "/rescore-jobs/{id}",
            get(rescore::get_job).delete(rescore::cancel),
        )
        .route(
            "/rulesets/{id}",
            get(docs::get_one::<Rulesets>)
                .put(docs::replace::<Rulesets>)
                .patch(docs::patch::<Rulesets>)
                .delete(docs::delete::<Rulesets>),
        )
        .route(
            "/triggers",
            get(docs::list::<Triggers>).post(docs::create::<Triggers>),
        )
        .route(
            "/triggers/{id}",
            get(docs::get_one::<Triggers>)
                .put(docs::replace::<Triggers>)
                .patch(docs::patch::<Triggers>)
                .delete(docs::delete::<Triggers>),
        )
        .route("/triggers/{id}/simulate", post(triggers::simulate))
        .route(
            "/sequences",
            get(docs::list::<Sequences>).post(docs::create::<Sequences>),
        )
        .route(
            "/sequences/{id}",
            get(docs::get_one::<Sequences>)
                .put(docs::replace::<Sequences>)
                .patch(docs::patch::<Sequences>)
                .delete(docs::delete::<Sequences>),
        )
        .route("/sequences/{id}/simulate", post(sequences::simulate))
        .route("/leads", get(leads::by_alias))
        .route("/leads/{lead_id}", get(leads::by_id))
        .route("/milestone-events", get(history::milestone_events))
        .route("/sequence-events", get(history::sequence_events))
        .route("/deliveries", get(deliveries::list));
    let public = if metrics_here {
        public.route("/metrics", get(health::metrics))
    } else {
        public
    };
    public
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(st.clone(), guard_strangers))
        .layer(middleware::from_fn_with_state(in_flight, shed))
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http().make_span_with(http_span))
        .layer(CatchPanicLayer::custom(on_panic))
        .with_state(st)
}

/// The operations port's routes: metrics and health, never on the public port.
pub fn ops_router(st: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(st)
}

/// The request span. When traces are exported it is at INFO, a child of the caller's
/// `traceparent` (and `tracestate`), and its context is what the events carry to Kafka;
/// otherwise it is at DEBUG as tower-http makes it (usually filtered out, so free).
fn http_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    if !trace::enabled() {
        return tracing::debug_span!(
            "http_request",
            method = %req.method(),
            path = %req.uri().path(),
        );
    }
    let span = tracing::info_span!(
        "http_request",
        method = %req.method(),
        path = %req.uri().path(),
        otel.kind = "server",
        trace_id = tracing::field::Empty,
    );
    let h = req.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let parent =
        get(trace::TRACEPARENT).and_then(|tp| TraceContext::parse(tp, get(trace::TRACESTATE)));
    match parent {
        Some(parent) => parent.set_parent_of(&span),
        None => trace::record_trace_id(&span),
    }
    span
}

async fn not_found() -> Response {
    ApiError::NotFound("no such route".into()).into_response()
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal("handler panicked".into()).into_response()
}

/// The global in-flight limit.
#[derive(Clone)]
struct InFlight {
    permits: Option<Arc<Semaphore>>,
    retry_after_secs: u64,
}

/// Serve the request if a permit is free, else 503 + `Retry-After` without waiting.
async fn shed(State(lim): State<InFlight>, req: Request, next: Next) -> Response {
    let Some(permits) = lim.permits else {
        return next.run(req).await;
    };
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    match permits.try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => {
            metric::counter!(GatewayCounter::Shed).increment(1);
            ApiError::unavailable(
                "the gateway is serving its maximum of concurrent requests; retry later",
                lim.retry_after_secs,
            )
            .into_response()
        }
    }
}

/// A request whose credential this gateway has neither verified nor refused recently would cost
/// a Redis lookup: count it against its client address first (see [`crate::auth`]).
async fn guard_strangers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer {
        if !st.auth.settled_without_lookup(req.headers()) {
            if let Err(e) = st.strangers.check(ip) {
                return e.into_response();
            }
        }
    }
    next.run(req).await
}

async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    metric::counter!(
        GatewayCounter::HttpRequests,
        route.clone(),
        status.as_u16().to_string()
    )
    .increment(1);
    metric::histogram!(GatewayHistogram::HttpDuration, route)
        .record(started.elapsed().as_secs_f64());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return (
            status,
            axum::Json(serde_json::json!({"error": {"code": "method_not_allowed",
                "message": "method not allowed on this route"}})),
        )
            .into_response();
    }
    if status.is_client_error() && !is_json(&resp) {
        return plain_rejection_as_json(resp).await;
    }
    resp
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// axum's own extractor rejections (a path segment that is not UTF-8 once percent-decoded, …)
/// are plain text: give them the gateway's error shape, their text as the message.
async fn plain_rejection_as_json(resp: Response) -> Response {
    let status = resp.status();
    let text = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_string()
    } else {
        text
    };
    let body = serde_json::json!({"error": {"code": "bad_request", "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Accept connections until `closing`, serving each with hyper's HTTP/1 server: the request
/// headers must arrive within `read_timeout` (`LEADSTREAM_READ_TIMEOUT`; a client trickling them
/// is disconnected), the peer address is the request's `ConnectInfo`. After `closing`, each
/// connection finishes its in-flight request and closes; returns when all have.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    read_timeout: std::time::Duration,
    closing: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    // Every connection task holds a sender; the receiver sees `None` once all are gone.
    let (open_tx, mut open_rx) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = closing.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let svc =
            app.clone()
                .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.map(axum::body::Body::new)
                });
        let svc = TowerToHyperService::new(svc);
        let closing = closing.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
    Ok(())
}

/// Serve until the state's shutdown token is cancelled, then drain as described above.
pub async fn serve(listener: TcpListener, st: AppState) -> anyhow::Result<()> {
    serve_with(listener, st, Router::new()).await
}

/// [`serve`] with `extra` routes beside the gateway's (`leadstream dev` adds its webhook
/// receiver); they share the listener and the drain.
pub async fn serve_with(listener: TcpListener, st: AppState, extra: Router) -> anyhow::Result<()> {
    let token = st.shutdown.clone();
    let delay = st.cfg.shutdown_delay;
    let grace = st.cfg.shutdown_grace;
    let closing = tokio_util::sync::CancellationToken::new();
    let stop = closing.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        tracing::info!(
            ?delay,
            "shutdown: /readyz is 503, closing the listener after the delay"
        );
        tokio::time::sleep(delay).await;
        stop.cancel();
    });
    let app = router(st.clone()).merge(extra);
    let server = accept_loop(listener, app, st.cfg.read_timeout, closing.clone());
    let drain = async {
        closing.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        res = server => res?,
        _ = drain => tracing::warn!(?grace, "shutdown grace elapsed with requests in flight"),
    }
    let pipeline = st.pipeline.clone();
    tokio::task::spawn_blocking(move || pipeline.flush(grace)).await?;
    tracing::info!("gateway stopped");
    Ok(())
}
