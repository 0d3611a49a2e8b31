//! Hostile clients (issue 12): a client that trickles its body is cut off after
//! `LEADSTREAM_READ_TIMEOUT` with 408, and past `LEADSTREAM_MAX_IN_FLIGHT` concurrent requests the
//! gateway sheds load with 503 + `Retry-After` at once instead of queueing. The gateway runs on
//! the real Redis with a memory sink (no broker needed: nothing here is published).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::store::{RedisKv, Store};
use leadstream_testkit::{redis_url, unique};

use crate::ADMIN;

pub(crate) struct Gw {
    pub(crate) addr: SocketAddr,
    pub(crate) ops_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gw {
    /// The gateway with `extra` variables over the defaults (an empty value removes one).
    pub(crate) async fn start(extra: &[(&str, &str)]) -> Gw {
        let mut env: BTreeMap<String, String> = [
            ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1".to_string()),
            ("LEADSTREAM_REDIS_URL", redis_url()),
            ("LEADSTREAM_REDIS_PREFIX", unique("abuse")),
            ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
            ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
            ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
            ("LEADSTREAM_SHUTDOWN_GRACE", "1s".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert(k.to_string(), v.to_string());
            }
        }
        let cfg = GatewayConfig::from_source(&env).expect("config");
        let kv: Store = Arc::new(RedisKv::connect(&redis_url()).await.expect("redis-server"));
        let shutdown = CancellationToken::new();
        let running =
            leadstream_gateway::spawn_with(cfg, kv, Arc::new(MemorySink::new()), shutdown.clone())
                .await
                .expect("gateway starts");
        Gw {
            addr: running.addr,
            ops_addr: running.ops_addr,
            shutdown,
            handle: running.handle,
        }
    }

    /// Open a connection and send the head of a `POST /ingest` that announces 100 bytes of body
    /// but sends only the first few.
    async fn trickle(&self) -> TcpStream {
        let mut conn = TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST /ingest HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"lead_id\""
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
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
    let gw = Gw::start(&[("LEADSTREAM_READ_TIMEOUT", "500ms")]).await;
    let mut conn = gw.trickle().await;
    let text = answer(&mut conn).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_requests_are_shed_with_503_and_retry_after() {
    let gw = Gw::start(&[
        ("LEADSTREAM_MAX_IN_FLIGHT", "1"),
        ("LEADSTREAM_READ_TIMEOUT", "120s"),
    ])
    .await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/org-units", gw.addr);
    // The trickling request holds the only permit while the gateway waits for its body.
    let mut slow = gw.trickle().await;
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
            _ => slow = gw.trickle().await,
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
        .get(format!("http://{}/healthz", gw.addr))
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
    let gw = Gw::start(&[("LEADSTREAM_READ_TIMEOUT", "500ms")]).await;
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
