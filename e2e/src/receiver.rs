//! The webhook receiver: a real HTTP server (axum) on 127.0.0.1 that records every request with
//! its `webhook-id` and answers as the test programs it — OK, down (the port closed), slow
//! (beyond the notifier's timeout), a status such as 500, or 429 with `Retry-After`.
//!
//! A delivery counts only when the receiver answered 2xx *in time*: a slow answer written after
//! the notifier's timeout reached nobody (the client had given up), so it is recorded as
//! `late` and not counted. [`Receiver::delivered`] counts deliveries per (path, webhook-id).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

/// How the receiver answers from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Ok,
    /// The port is closed: connections are refused.
    Down,
    /// 200 after this delay (longer than the notifier's timeout: the answer comes too late).
    Slow(Duration),
    /// This status at once (500, 503, …).
    Status(u16),
    /// 429 with `Retry-After: {0}` seconds.
    TooMany(u32),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub webhook_id: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
    /// Answered after the client's timeout: nobody got it.
    pub late: bool,
}

impl Received {
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status) && !self.late
    }
}

struct Inner {
    log: Vec<Received>,
    mode: Mode,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    /// `true` while the listener should be open.
    up: Arc<watch::Sender<bool>>,
    /// The notifier's timeout: slower answers are `late`.
    client_timeout: Duration,
}

impl Receiver {
    /// Listen on a free loopback port, answering 200.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let up = Arc::new(watch::channel(true).0);
        let rx = Receiver {
            addr,
            inner: Arc::new(Mutex::new(Inner {
                log: Vec::new(),
                mode: Mode::Ok,
            })),
            up,
            client_timeout: crate::stack::WEBHOOK_TIMEOUT,
        };
        rx.serve(listener);
        rx
    }

    /// Serve on `listener` until the mode turns [`Mode::Down`], then bind the same port again
    /// when it turns anything else.
    fn serve(&self, listener: tokio::net::TcpListener) {
        let rx = self.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            let mut up = rx.up.subscribe();
            loop {
                let l = match listener.take() {
                    Some(l) => l,
                    None => {
                        let _ = up.wait_for(|u| *u).await;
                        match tokio::net::TcpListener::bind(rx.addr).await {
                            Ok(l) => l,
                            Err(e) => {
                                eprintln!("receiver: cannot bind {} again: {e}", rx.addr);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        }
                    }
                };
                let app = axum::Router::new().fallback(handle).with_state(rx.clone());
                let mut down = rx.up.subscribe();
                // Graceful shutdown stops accepting and closes idle keep-alive connections:
                // the port is closed, as when a receiver goes down.
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = down.wait_for(|u| !*u).await;
                    })
                    .await;
            }
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().expect("receiver").mode = mode;
        self.up.send_replace(mode != Mode::Down);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("receiver").log.clone()
    }

    /// Deliveries (2xx answered in time) per webhook-id on `path`.
    pub fn delivered(&self, path: &str) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for r in self.received() {
            if r.path == path && r.delivered() {
                *m.entry(r.webhook_id).or_insert(0) += 1;
            }
        }
        m
    }

    /// Requests per answered status on `path` (late answers under 0).
    pub fn statuses(&self, path: &str) -> BTreeMap<u16, usize> {
        let mut m = BTreeMap::new();
        for r in self.received() {
            if r.path == path {
                *m.entry(if r.late { 0 } else { r.status }).or_insert(0) += 1;
            }
        }
        m
    }
}

async fn handle(State(rx): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mode = rx.inner.lock().expect("receiver").mode;
    let (status, retry_after, delay) = match mode {
        Mode::Ok => (200, None, Duration::ZERO),
        // A request on a connection accepted just before the port closed.
        Mode::Down => (503, None, Duration::ZERO),
        Mode::Slow(d) => (200, None, d),
        Mode::Status(s) => (s, None, Duration::ZERO),
        Mode::TooMany(secs) => (429, Some(secs), Duration::ZERO),
    };
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Recorded before the answer: when the client gives up on a slow answer, hyper drops this
    // handler, and the request must still be in the log (as late: nobody gets the answer).
    rx.inner.lock().expect("receiver").log.push(Received {
        path: uri.path().to_string(),
        webhook_id,
        headers,
        body,
        status,
        late: delay >= rx.client_timeout,
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(s) => (code, [("retry-after", s.to_string())], "slow down").into_response(),
        None => (code, format!("answer {status}")).into_response(),
    }
}
