//! A webhook receiver for tests: a real HTTP server (axum) on a free loopback port that records
//! every request and answers as the test programs it, and an independent Standard Webhooks
//! signature check ([`verify`]).
//!
//! How a request is answered, in order:
//! 1. While [`Receiver::pause`]d, requests wait (counted by [`Receiver::held`]); after
//!    [`Receiver::resume_new_epoch`] the ones that waited answer 503 (their client is gone).
//! 2. A [`Script`] for the request's `webhook-id` ([`Receiver::script_id`]), else for its path
//!    ([`Receiver::script`]): its first `fail_first` requests per (path, webhook-id) get
//!    `fail_status`.
//! 3. Otherwise the [`Mode`] ([`Receiver::set_mode`], 200 at once by default): down (the port
//!    closed), slow, a status, or 429 with `Retry-After`.
//!
//! Every request is recorded ([`Received`]) before it is answered, with the status it gets. An
//! answer slower than the client's timeout ([`Receiver::start_with_client_timeout`]) reached
//! nobody: it is recorded as `late` and is no delivery ([`Receiver::delivered`]). A request is
//! marked `answered` once its answer is handed back (a slow one, after its delay).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::{watch, Notify};

// ---------- Independent Standard Webhooks verification (written from the spec) ----------

/// Verify `webhook-signature` (`header`) against `whsec_` secrets: any listed `v1,` signature
/// matching any secret is enough. Separate from the notifier's signer on purpose.
pub fn verify(secrets: &[String], id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    secrets
        .iter()
        .filter_map(|s| secret_key(s))
        .any(|key| verify_key(&key, id, ts, body, header))
}

/// The HMAC key of a `whsec_` secret (its base64 part decoded).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .ok()
}

/// [`verify`] with one secret's key already decoded ([`secret_key`]).
pub fn verify_key(key: &[u8], id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return false;
    };
    for part in [id.as_bytes(), b".", ts.as_bytes(), b".", body] {
        mac.update(part);
    }
    let expected = mac.finalize().into_bytes();
    header.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|s| b64.decode(s).ok())
            .is_some_and(|got| {
                use subtle::ConstantTimeEq;
                got.ct_eq(expected.as_slice()).into()
            })
    })
}

// ---------- The receiver ----------

/// How the receiver answers requests no [`Script`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 at once.
    Ok,
    /// The port is closed: connections are refused (a request on a connection accepted just
    /// before gets 503).
    Down,
    /// 200 after this delay (longer than the client's timeout: the answer comes too late).
    Slow(Duration),
    /// 200 after `base` plus a part of `spread` fixed by the request's `webhook-id` (the same
    /// id always waits as long).
    SlowPerId { base: Duration, spread: Duration },
    /// This status at once (500, 503, …).
    Status(u16),
    /// 429 with `Retry-After: {0}` seconds.
    TooMany(u32),
}

/// How a path (or a webhook-id) answers: the first `fail_first` requests *per webhook-id* (or
/// per path when there is no id) get `fail_status`, later ones are answered by the [`Mode`].
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub fail_first: usize,
    pub fail_status: u16,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The `webhook-id` header (empty when there is none).
    pub webhook_id: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it was recorded (after any pause, before any delay).
    pub at: Instant,
    /// The status the receiver answered.
    pub status: u16,
    /// Answered after the client's timeout: nobody got it.
    pub late: bool,
    /// The answer was handed back (a slow answer is not, until its delay has passed).
    pub answered: bool,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Answered 2xx in time.
    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status) && !self.late
    }
}

struct Inner {
    log: Vec<Received>,
    mode: Mode,
    scripts: HashMap<String, Script>,
    /// Scripts for one webhook-id, ahead of its path's.
    id_scripts: HashMap<String, Script>,
    /// Requests per (path, webhook-id), for the scripts.
    seen: HashMap<String, usize>,
    /// While set, handlers wait; answers for requests from an older epoch are 503.
    paused: bool,
    epoch: u64,
    /// Requests waiting while paused.
    held: usize,
    /// The client's timeout: slower answers are `late`.
    client_timeout: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    resume: Arc<Notify>,
    /// `true` while the listener should be open.
    up: Arc<watch::Sender<bool>>,
}

impl Receiver {
    /// Listen on a free loopback port, answering 200; no answer counts as late.
    pub async fn start() -> Receiver {
        Receiver::start_with_client_timeout(Duration::MAX).await
    }

    /// [`Receiver::start`] for a client that gives up after `timeout`: answers delayed that
    /// long or longer are recorded as `late`.
    pub async fn start_with_client_timeout(timeout: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let rx = Receiver {
            addr,
            inner: Arc::new(Mutex::new(Inner {
                log: Vec::new(),
                mode: Mode::Ok,
                scripts: HashMap::new(),
                id_scripts: HashMap::new(),
                seen: HashMap::new(),
                paused: false,
                epoch: 0,
                held: 0,
                client_timeout: timeout,
            })),
            resume: Arc::default(),
            up: Arc::new(watch::channel(true).0),
        };
        rx.serve(listener);
        rx
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("receiver")
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

    /// How requests no script takes are answered from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
        self.up.send_replace(mode != Mode::Down);
    }

    /// How requests on `path` are answered.
    pub fn script(&self, path: &str, s: Script) {
        self.lock().scripts.insert(path.to_string(), s);
    }

    /// How requests carrying webhook-id `id` are answered (ahead of the path's script).
    pub fn script_id(&self, id: &str, s: Script) {
        self.lock().id_scripts.insert(id.to_string(), s);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().log.clone()
    }

    /// The requests on `path`.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
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

    /// Hold every answer until [`Receiver::resume_new_epoch`].
    pub fn pause(&self) {
        self.lock().paused = true;
    }

    /// Requests waiting for an answer while paused.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    /// Release held requests; they answer 503 (their client is gone), so none counts as delivered.
    pub fn resume_new_epoch(&self) {
        let mut s = self.lock();
        s.paused = false;
        s.epoch += 1;
        drop(s);
        self.resume.notify_waiters();
    }

    /// Wait while paused; answers the epoch the request arrived in.
    async fn wait_unpaused(&self) -> u64 {
        let epoch = self.lock().epoch;
        let mut holding = false;
        loop {
            let notified = self.resume.notified();
            {
                let mut s = self.lock();
                if !s.paused {
                    if holding {
                        s.held -= 1;
                    }
                    return epoch;
                }
                if !holding {
                    s.held += 1;
                    holding = true;
                }
            }
            notified.await;
        }
    }
}

/// The (status, `Retry-After` seconds, delay) that `mode` gives a request.
fn by_mode(mode: Mode, webhook_id: &str) -> (u16, Option<u32>, Duration) {
    match mode {
        Mode::Ok => (200, None, Duration::ZERO),
        Mode::Down => (503, None, Duration::ZERO),
        Mode::Slow(d) => (200, None, d),
        Mode::SlowPerId { base, spread } => {
            let h = webhook_id
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let spread_ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX).max(1);
            (200, None, base + Duration::from_millis(h % spread_ms))
        }
        Mode::Status(s) => (s, None, Duration::ZERO),
        Mode::TooMany(secs) => (429, Some(secs), Duration::ZERO),
    }
}

async fn handle(State(rx): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let epoch = rx.wait_unpaused().await;
    let path = uri.path().to_string();
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Recorded before the answer: when the client gives up on a slow answer, hyper drops this
    // handler, and the request must still be in the log (as late: nobody gets the answer).
    let (status, retry_after, delay, index) = {
        let mut s = rx.lock();
        let (status, retry_after, delay) = if s.epoch != epoch {
            (503, None, Duration::ZERO)
        } else {
            let n = s.seen.entry(format!("{path}|{webhook_id}")).or_insert(0);
            *n += 1;
            let n = *n;
            match s
                .id_scripts
                .get(&webhook_id)
                .or_else(|| s.scripts.get(&path))
            {
                Some(sc) if n <= sc.fail_first => (sc.fail_status, None, Duration::ZERO),
                _ => by_mode(s.mode, &webhook_id),
            }
        };
        let late = delay >= s.client_timeout;
        s.log.push(Received {
            path,
            webhook_id,
            headers,
            body,
            at: Instant::now(),
            status,
            late,
            answered: delay.is_zero(),
        });
        (status, retry_after, delay, s.log.len() - 1)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
        rx.lock().log[index].answered = true;
    }
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(s) => (code, [("retry-after", s.to_string())], "slow down").into_response(),
        None => (code, format!("answer {status}")).into_response(),
    }
}
