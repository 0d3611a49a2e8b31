//! The operations port (issue 12): with `LEADSTREAM_METRICS_ADDR`, `/metrics`, `/healthz` and
//! `/readyz` are served there and `/metrics` leaves the public port; `/readyz` never echoes the
//! store's error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::store::{Cmd, Guard, Kv, RedisKv, Reply, Store, StoreError};
use leadstream_testkit::{redis_url, unique};

use crate::clients::Gw;
use crate::ADMIN;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_to_the_operations_port() {
    let gw = Gw::start(&[("LEADSTREAM_METRICS_ADDR", "127.0.0.1:0")]).await;
    let ops = gw.ops_addr.expect("the operations port is bound");
    assert_ne!(ops, gw.addr);
    // A request on the public port, so the metrics have something to say.
    let _ = get(gw.addr, "/org-units").await;
    let (status, text) = get(ops, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("leadstream_gateway_http_requests_total"),
        "{text}"
    );
    assert_eq!(get(ops, "/healthz").await.0, 200);
    assert_eq!(get(ops, "/readyz").await.0, 200);
    assert_eq!(get(gw.addr, "/metrics").await.0, 404);
    assert_eq!(get(gw.addr, "/healthz").await.0, 200);
    gw.stop().await;
}

/// The real store until `broken`, then an error that names an internal address.
struct Breakable {
    inner: RedisKv,
    broken: AtomicBool,
}

const SECRET_ERROR: &str = "connection refused by 10.9.8.7:6379 (user ops-secret)";

#[async_trait::async_trait]
impl Kv for Breakable {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(SECRET_ERROR.into()));
        }
        self.inner.exec(cmds).await
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(SECRET_ERROR.into()));
        }
        self.inner.exec_guarded(guards, cmds).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_does_not_echo_the_store_error() {
    let env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_REDIS_PREFIX", unique("readyz")),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
        ("LEADSTREAM_SHUTDOWN_GRACE", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = GatewayConfig::from_source(&env).expect("config");
    let store = Arc::new(Breakable {
        inner: RedisKv::connect(&redis_url()).await.expect("redis-server"),
        broken: AtomicBool::new(false),
    });
    let shutdown = CancellationToken::new();
    let running = leadstream_gateway::spawn_with(
        cfg,
        store.clone() as Store,
        Arc::new(MemorySink::new()),
        shutdown.clone(),
    )
    .await
    .expect("gateway starts");
    assert_eq!(get(running.addr, "/readyz").await.0, 200);
    store.broken.store(true, Ordering::SeqCst);
    let (status, text) = get(running.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(text.contains("store_unavailable"), "{text}");
    assert!(
        !text.contains("10.9.8.7") && !text.contains("ops-secret"),
        "{text}"
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.handle).await;
}
