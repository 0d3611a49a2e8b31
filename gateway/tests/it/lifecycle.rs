//! Health, readiness and graceful shutdown: `/readyz` turns 503 as soon as the token is
//! cancelled, the listener closes after the delay, and the server task ends.

use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_when_shutdown_begins_then_the_server_stops() {
    let mut app = App::with_env(&[("LEADSTREAM_SHUTDOWN_DELAY", "1s")], spawn_gateway).await;
    assert_eq!(app.get("/healthz", Cred::None).await.status(), 200);
    assert_eq!(app.get("/readyz", Cred::None).await.status(), 200);
    let metrics = app.get("/metrics", Cred::None).await;
    assert_eq!(metrics.status(), 200);
    app.shutdown.cancel();
    let resp = app.get("/readyz", Cred::None).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(body(resp).await["status"], "shutting_down");
    let handle = app.handle.take().unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), handle).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "server stops cleanly: {done:?}"
    );
    assert!(
        app.http.get(app.url("/healthz")).send().await.is_err(),
        "listener closed"
    );
}
