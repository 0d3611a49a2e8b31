//! Hostile clients (issue 12): a client that trickles its body is cut off after
//! `LEADSTREAM_READ_TIMEOUT` with 408, and past `LEADSTREAM_MAX_IN_FLIGHT` concurrent requests the
//! gateway sheds load with 503 + `Retry-After` at once instead of queueing. The gateway runs on
//! the real Redis with a memory sink (no broker needed: nothing here is published).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{spawn_on_store, RoutesApp, ADMIN};

/// Open a connection to `addr` and send the head of a `POST /ingest` that announces 100 bytes of
/// body but sends only the first few.
async fn trickle(addr: SocketAddr) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /ingest HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"lead_id\""
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn
}

/// The status line and the rest of the answer on `conn` (bounded wait: the test fails rather
/// than hangs if the gateway never answers).
async fn answer(conn: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = conn.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.ends_with(b"}") {
                break;
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(60), read).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(done.is_ok(), "no complete answer within 60s; got {text:?}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_408() {
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_READ_TIMEOUT", "500ms")
        .start(spawn_on_store)
        .await;
    let mut conn = trickle(gw.addr).await;
    let text = answer(&mut conn).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_shed_with_503_and_retry_after() {
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_MAX_IN_FLIGHT", "1")
        .var("LEADSTREAM_READ_TIMEOUT", "120s")
        .start(spawn_on_store)
        .await;
    let http = &gw.http;
    let url = format!("{}/org-units", gw.base);
    // The trickling request holds the only permit while the gateway waits for its body.
    let mut slow = trickle(gw.addr).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let retry_after = loop {
        let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
        if resp.status() == 503 {
            break resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        // The probe may have held the permit when the trickling request arrived, which was
        // then shed itself (it has an answer): start another one.
        let mut peek = [0u8; 64];
        match slow.try_read(&mut peek) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => slow = trickle(gw.addr).await,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 503 while one request is in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(retry_after.as_deref(), Some("2"));
    // Health stays answerable.
    let health = http
        .get(format!("{}/healthz", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The slow request completes; its permit comes back and the next request is served.
    let rest = format!("{}}}", " ".repeat(100 - "{\"lead_id\"".len() - 1));
    slow.write_all(rest.as_bytes()).await.unwrap();
    let text = answer(&mut slow).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off() {
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_READ_TIMEOUT", "500ms")
        .start(spawn_on_store)
        .await;
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    // Half a request head, then silence.
    conn.write_all(b"POST /ingest HTTP/1.1\r\nHost: gw\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // a 408 before closing is fine too
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), closed)
        .await
        .expect("the gateway closed the connection of a client trickling its headers");
    gw.stop().await;
}
