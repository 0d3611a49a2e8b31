//! The gateway test harness, shared by the gateway's own integration tests and the e2e crate's
//! in-process pipeline tests: the real gateway on port 0 over the real Redis (a key prefix of the
//! test's own), HTTP through reqwest.
//!
//! testkit depends on no service crate (the gateway dev-depends on testkit), so the caller says
//! how the gateway starts: [`App`] and [`RoutesApp`] take a spawn function that builds the
//! gateway's configuration from the variables given and spawns it in this process (a few lines
//! over `leadstream_gateway::spawn` / `spawn_with` in the test crate). What a test changes —
//! variables over the defaults, the store a [`RoutesApp`] serves from (a wrapper that counts or
//! breaks) — it says through a [`Builder`]; the sink of a [`RoutesApp`] is the spawn function's
//! (a memory sink the test may keep to read what was published).
//!
//! - [`App`]: a tansu broker of its own + Redis + gateway; [`App::service_env`] gives the
//!   variables an in-process processor or notifier needs to join it.
//! - [`RoutesApp`]: the gateway on the real Redis with no broker (its sink is the caller's), for
//!   routes that never publish or tests that read a memory sink; answers as `(status, JSON)`.
//! - [`Rec`], [`assert_placed`], [`partition_for`]: consumed records and where murmur2 puts them.
//! - [`body`], [`error_of`]: what a response says.

mod routes;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use leadstream_domain::event::EngagementEvent;
use leadstream_shared::avro::decode_event;
use leadstream_shared::config::CommonConfig;
use leadstream_shared::kafka::murmur2_partition;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::Store;

use crate::{consume, end_offsets, join_service, key_of, redis_url, unique, Broker};

pub use routes::RoutesApp;

/// The bootstrap admin key of the test gateways.
pub const ADMIN: &str = "test-bootstrap-admin-key-0123456789";
/// Partitions of the test topics.
pub const PARTITIONS: i32 = 3;

/// A service's variables (`LEADSTREAM_*`), as its `from_source` reads them.
pub type Env = BTreeMap<String, String>;

/// A gateway the caller's spawn function started in this process: its bound address (port 0 in
/// the variables), its operations port's when `LEADSTREAM_METRICS_ADDR` is set, and its task,
/// which resolves when the server stopped (after the shutdown token was cancelled and it
/// drained).
pub type Spawned = (
    SocketAddr,
    Option<SocketAddr>,
    JoinHandle<anyhow::Result<()>>,
);

/// The gateway's variables for a test against `brokers` and `redis`, with `prefix` as topic and
/// Redis key prefix: port 0, [`PARTITIONS`], [`ADMIN`] as bootstrap key, no shutdown delay.
pub fn gateway_env(brokers: &str, redis: &str, prefix: &str) -> Env {
    [
        ("LEADSTREAM_KAFKA_BROKERS", brokers.to_string()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_REDIS_URL", redis.to_string()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.to_string()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.to_string()),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_PARTITIONS", PARTITIONS.to_string()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
        ("LEADSTREAM_SHUTDOWN_GRACE", "2s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What a test changes in the harness's gateway before it starts: [`App::builder`],
/// [`RoutesApp::builder`].
pub struct Builder<T> {
    /// Variables over the defaults; `None` removes one.
    vars: Vec<(String, Option<String>)>,
    /// [`RoutesApp`]: the store to serve from instead of a new connection to the real Redis.
    store: Option<Store>,
    of: PhantomData<fn() -> T>,
}

impl<T> Builder<T> {
    fn new() -> Builder<T> {
        Builder {
            vars: Vec::new(),
            store: None,
            of: PhantomData,
        }
    }

    /// Set `name` to `value` over the defaults.
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Builder<T> {
        self.vars.push((name.to_string(), Some(value.into())));
        self
    }

    /// [`Builder::var`] for each pair.
    pub fn vars(self, vars: &[(&str, &str)]) -> Builder<T> {
        vars.iter().fold(self, |b, (k, v)| b.var(k, *v))
    }

    /// Start without `name` (e.g. no `LEADSTREAM_BOOTSTRAP_ADMIN_KEY`).
    pub fn unset(mut self, name: &str) -> Builder<T> {
        self.vars.push((name.to_string(), None));
        self
    }

    /// The defaults with this builder's changes.
    fn env(&self, mut env: Env) -> Env {
        for (k, v) in &self.vars {
            match v {
                Some(v) => env.insert(k.clone(), v.clone()),
                None => env.remove(k),
            };
        }
        env
    }
}

impl Builder<App> {
    /// The gateway with [`gateway_env`]'s variables and this builder's, started by `spawn`
    /// beside a broker of its own.
    pub async fn start<F, Fut>(self, spawn: F) -> App
    where
        F: FnOnce(Env, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Spawned>>,
    {
        // From the test's own thread: the broker dies with the thread that started it.
        let broker = Broker::start();
        let prefix = unique("gw");
        let env = self.env(gateway_env(&broker.addr(), &redis_url(), &prefix));
        let common = CommonConfig::from_source(&env).expect("config");
        let topic = common.topics.events.clone();
        let shutdown = CancellationToken::new();
        let (addr, _, handle) = spawn(env, shutdown.clone()).await.expect("gateway starts");
        let offsets_at_start = end_offsets(&broker.addr(), &topic).await;
        App {
            offsets_at_start,
            broker,
            addr,
            http: reqwest::Client::new(),
            topic,
            keys: common.keys(),
            common,
            shutdown,
            handle: Some(handle),
        }
    }
}

/// The gateway beside a tansu broker of its own and the real Redis (own topic and key prefixes),
/// on port 0; requests as [`Cred`]entials and `reqwest::Response`s.
pub struct App {
    pub broker: Broker,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub topic: String,
    /// The gateway's key layout (its `LEADSTREAM_REDIS_PREFIX`).
    pub keys: Keys,
    /// The configuration every service of this installation would read.
    pub common: CommonConfig,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// The events topic's end offsets, by partition, once the gateway was up.
    pub offsets_at_start: BTreeMap<i32, i64>,
}

/// A presented credential, in one of the three accepted forms.
#[derive(Clone, Copy)]
pub enum Cred<'a> {
    Bearer(&'a str),
    Basic(&'a str),
    ApiKey(&'a str),
    None,
}

impl Cred<'_> {
    pub fn apply(self, h: &mut HeaderMap) {
        use base64::Engine;
        let v = match self {
            Cred::Bearer(k) => ("authorization", format!("Bearer {k}")),
            Cred::Basic(k) => (
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{k}:"))
                ),
            ),
            Cred::ApiKey(k) => ("x-api-key", k.to_string()),
            Cred::None => return,
        };
        h.insert(v.0, HeaderValue::from_str(&v.1).unwrap());
    }
}

impl App {
    /// What the test changes before the gateway starts.
    pub fn builder() -> Builder<App> {
        Builder::new()
    }

    /// The gateway with [`gateway_env`]'s variables, started by `spawn`.
    pub async fn start<F, Fut>(spawn: F) -> App
    where
        F: FnOnce(Env, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Spawned>>,
    {
        App::builder().start(spawn).await
    }

    /// The prefix of this gateway's topics and Redis keys.
    pub fn prefix(&self) -> String {
        self.topic
            .strip_suffix(".events.v1")
            .expect("events topic is {prefix}.events.v1")
            .to_string()
    }

    /// What an in-process processor (and notifier) needs to share this gateway's broker, topics
    /// and Redis prefix, plus `extra`.
    pub fn service_env(&self, extra: &[(&str, String)]) -> Env {
        let prefix = self.prefix();
        let mut env: Env = [
            ("LEADSTREAM_KAFKA_BROKERS", self.broker.addr()),
            ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
            ("LEADSTREAM_REDIS_URL", redis_url()),
            ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
            ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
            ("LEADSTREAM_PARTITIONS", PARTITIONS.to_string()),
            ("LEADSTREAM_PROCESSOR_GROUP", format!("{prefix}-processor")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }

    /// [`App::start`] with `extra` variables on top of [`gateway_env`]'s.
    pub async fn with_env<F, Fut>(extra: &[(&str, &str)], spawn: F) -> App
    where
        F: FnOnce(Env, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Spawned>>,
    {
        App::builder().vars(extra).start(spawn).await
    }

    /// A connection of the test's own to the store this gateway serves from.
    pub async fn store(&self) -> Store {
        self.common.open_store().await.expect("the gateway's Redis")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST a JSON body with a credential and extra headers.
    pub async fn post(
        &self,
        path: &str,
        cred: Cred<'_>,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> reqwest::Response {
        self.post_raw(
            path,
            cred,
            extra,
            "application/json",
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        cred: Cred<'_>,
        extra: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut h = HeaderMap::new();
        cred.apply(&mut h);
        if !content_type.is_empty() {
            h.insert("content-type", HeaderValue::from_str(content_type).unwrap());
        }
        for (k, v) in extra {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        self.http
            .post(self.url(path))
            .headers(h)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST an already gzipped body (`content-encoding: gzip`).
    pub async fn post_gzip(
        &self,
        path: &str,
        cred: Cred<'_>,
        content_type: &str,
        gzipped: Vec<u8>,
    ) -> reqwest::Response {
        self.post_raw(
            path,
            cred,
            &[("content-encoding", "gzip")],
            content_type,
            gzipped,
        )
        .await
    }

    pub async fn get(&self, path: &str, cred: Cred<'_>) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, cred).await
    }

    /// GET: the status and the JSON answer.
    pub async fn get_json(&self, path: &str, cred: Cred<'_>) -> (u16, Value) {
        let resp = self.get(path, cred).await;
        (resp.status().as_u16(), body(resp).await)
    }

    pub async fn delete(&self, path: &str, cred: Cred<'_>) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path, cred).await
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        cred: Cred<'_>,
    ) -> reqwest::Response {
        let mut h = HeaderMap::new();
        cred.apply(&mut h);
        self.http
            .request(method, self.url(path))
            .headers(h)
            .send()
            .await
            .expect("request sent")
    }

    /// POST `b` as `cred`, which must answer `status`; the JSON answer.
    pub async fn expect(&self, path: &str, cred: Cred<'_>, b: &Value, status: u16) -> Value {
        let resp = self.post(path, cred, &[], b).await;
        let got = resp.status().as_u16();
        let answer = body(resp).await;
        assert_eq!(got, status, "POST {path} {b} → {answer}");
        answer
    }

    /// POST `b` with the bootstrap admin key (in `unit_default`), which must answer 201; the
    /// created object.
    pub async fn create(&self, path: &str, b: &Value) -> Value {
        self.expect(path, Cred::Bearer(ADMIN), b, 201).await
    }

    /// Create an API key with the bootstrap admin key; returns the secret.
    pub async fn key(&self, scopes: &[&str], ou_ids: &[&str], source: Option<&str>) -> String {
        let key = json!({"name": "test", "scopes": scopes, "ou_ids": ou_ids, "source_id": source});
        secret(&self.create("/api-keys", &key).await)
    }

    /// Register a CDP event type in `unit_default`.
    pub async fn event_type(&self, def: Value) {
        self.create("/v1/cdp/event-types", &def).await;
    }

    /// The events topic's end offsets now, by partition.
    pub async fn end_offsets(&self) -> BTreeMap<i32, i64> {
        end_offsets(&self.broker.addr(), &self.topic).await
    }

    /// Read `n` records (and whatever more arrives within `quiet`), decoded.
    pub async fn records(&self, n: usize, quiet: Duration) -> Vec<Rec> {
        consume(
            &self.broker.addr(),
            &self.topic,
            n,
            Duration::from_secs(30),
            quiet,
        )
        .await
        .into_iter()
        .map(Rec::from)
        .collect()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            join_service("the gateway", h, Duration::from_secs(10)).await;
        }
    }
}

/// A consumed record with its placement.
pub struct Rec {
    pub key: String,
    pub partition: i32,
    pub event: EngagementEvent,
    pub traceparent: Option<String>,
}

impl From<OwnedMessage> for Rec {
    fn from(m: OwnedMessage) -> Rec {
        use rdkafka::message::Headers;
        let event = decode_event(m.payload().unwrap_or_default()).expect("record decodes as Avro");
        let traceparent = m.headers().and_then(|h| {
            h.iter()
                .find(|x| x.key == "traceparent")
                .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
        });
        Rec {
            key: key_of(&m),
            partition: m.partition(),
            event,
            traceparent,
        }
    }
}

/// Java's `Utils.toPositive(murmur2(key)) % numPartitions`: the partition a Java producer (and
/// the gateway's librdkafka `murmur2_random`) puts `key` on. The murmur2 is the shared crate's,
/// checked against the Java client's vectors there.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    murmur2_partition(key.as_bytes(), partitions)
}

/// Check that a record sits where a murmur2 partitioner puts its key.
pub fn assert_placed(r: &Rec) {
    assert_eq!(r.key, r.event.kafka_key(), "key is {{ou}}:{{lead}}");
    assert_eq!(
        r.partition,
        partition_for(&r.key, PARTITIONS),
        "record with key {} is on the murmur2 partition",
        r.key
    );
}

/// The JSON body of a response.
pub async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap_or(Value::Null)
}

/// The secret of a created API key (`{"key"}`).
pub fn secret(created: &Value) -> String {
    created["key"]
        .as_str()
        .unwrap_or_else(|| panic!("a key in {created}"))
        .to_string()
}

/// `bytes`, gzipped (fast).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}

/// The `{"error":{"code"}}` of an error response, with its status.
pub async fn error_of(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let b = body(resp).await;
    (
        status,
        b["error"]["code"].as_str().unwrap_or("").to_string(),
        b["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Seed 003's milestone trigger, as created over HTTP.
pub fn seed_003() -> Value {
    json!({"name": "Hot Lead Alert", "event_type": "demo_request", "score_threshold": 75,
        "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"],
        "email_subject": "Hot Lead Alert", "email_message": "A lead just crossed the 75-point threshold!"})
}

/// Seed 004's sequence trigger, as created over HTTP.
pub fn seed_004() -> Value {
    json!({"name": "Buying Intent Sequence",
        "event_types": ["pricing_page_view", "whitepaper_download", "demo_request"],
        "window_seconds": 604800, "window_unit": "7 days", "ordered": true,
        "webhook_url": "https://hooks.example.com/leadvibe", "emails": ["sales@example.com"]})
}
