//! The operations port (issue 12): with `LEADSTREAM_METRICS_ADDR`, `/metrics`, `/healthz` and
//! `/readyz` are served there and `/metrics` leaves the public port; `/readyz` never echoes the
//! store's error.

use std::net::SocketAddr;

use crate::common::{spawn_on_store, RoutesApp};
use leadstream_testkit::redis_store;
use leadstream_testkit::store::Faulty;

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_to_the_operations_port() {
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_METRICS_ADDR", "127.0.0.1:0")
        .start(spawn_on_store)
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_does_not_echo_the_store_error() {
    let store = Faulty::new(redis_store().await);
    let gw = RoutesApp::builder()
        .store(store.clone())
        .start(spawn_on_store)
        .await;
    assert_eq!(get(gw.addr, "/readyz").await.0, 200);
    store.break_with("connection refused by 10.9.8.7:6379 (user ops-secret)");
    let (status, text) = get(gw.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(text.contains("store_unavailable"), "{text}");
    assert!(
        !text.contains("10.9.8.7") && !text.contains("ops-secret"),
        "{text}"
    );
    gw.stop().await;
}
