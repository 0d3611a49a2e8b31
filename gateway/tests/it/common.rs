//! The harness of the gateway's integration tests: a real tansu broker and the real Redis per
//! test (own topic and key prefixes), the real gateway on port 0, HTTP through reqwest.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use leadstream_domain::event::EngagementEvent;
use leadstream_gateway::GatewayConfig;
use leadstream_shared::avro::decode_event;
use leadstream_testkit::{consume, end_offsets, join_service, key_of, redis_url, unique, Broker};

pub const ADMIN: &str = "test-bootstrap-admin-key-0123456789";
pub const PARTITIONS: i32 = 3;

pub struct App {
    pub broker: Broker,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub topic: String,
    pub shutdown: CancellationToken,
    pub handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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
    pub async fn start() -> App {
        App::with_env(&[]).await
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
    pub fn service_env(&self, extra: &[(&str, String)]) -> BTreeMap<String, String> {
        let prefix = self.prefix();
        let mut env: BTreeMap<String, String> = [
            ("LEADSTREAM_KAFKA_BROKERS", self.broker.addr()),
            ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
            ("LEADSTREAM_REDIS_URL", leadstream_testkit::redis_url()),
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

    pub async fn with_env(extra: &[(&str, &str)]) -> App {
        // From the test's own thread: the broker dies with the thread that started it.
        let broker = Broker::start();
        let prefix = unique("gw");
        let mut env: BTreeMap<String, String> = [
            ("LEADSTREAM_KAFKA_BROKERS", broker.addr()),
            ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
            ("LEADSTREAM_REDIS_URL", redis_url()),
            ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
            ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
            ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
            ("LEADSTREAM_PARTITIONS", PARTITIONS.to_string()),
            ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
            ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
            ("LEADSTREAM_SHUTDOWN_GRACE", "2s".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let cfg = GatewayConfig::from_source(&env).expect("config");
        let topic = cfg.common.topics.events.clone();
        let shutdown = CancellationToken::new();
        let running = leadstream_gateway::spawn(cfg, shutdown.clone())
            .await
            .expect("gateway starts");
        let offsets_at_start = end_offsets(&broker.addr(), &topic).await;
        App {
            offsets_at_start,
            broker,
            addr: running.addr,
            http: reqwest::Client::new(),
            topic,
            shutdown,
            handle: Some(running.handle),
        }
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

    pub async fn get(&self, path: &str, cred: Cred<'_>) -> reqwest::Response {
        let mut h = HeaderMap::new();
        cred.apply(&mut h);
        self.http
            .get(self.url(path))
            .headers(h)
            .send()
            .await
            .unwrap()
    }

    /// Create an API key with the bootstrap admin key; returns the secret.
    pub async fn key(&self, scopes: &[&str], ou_ids: &[&str], source: Option<&str>) -> String {
        let resp = self
            .post(
                "/api-keys",
                Cred::Bearer(ADMIN),
                &[],
                &json!({"name": "test", "scopes": scopes, "ou_ids": ou_ids, "source_id": source}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        body["key"].as_str().unwrap().to_string()
    }

    /// Register a CDP event type in `unit_default`.
    pub async fn event_type(&self, def: Value) {
        let resp = self
            .post("/v1/cdp/event-types", Cred::Bearer(ADMIN), &[], &def)
            .await;
        assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
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

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), written out here independently of the
/// code under test so the placement check is a real check.
pub fn murmur2(data: &[u8]) -> i32 {
    let seed: i32 = 0x9747b28c_u32 as i32;
    let m: i32 = 0x5bd1e995;
    let r = 24;
    let length = data.len() as i32;
    let mut h: i32 = seed ^ length;
    let length4 = data.len() / 4;
    for i in 0..length4 {
        let i4 = i * 4;
        let mut k: i32 = (data[i4] as i32 & 0xff)
            + ((data[i4 + 1] as i32 & 0xff) << 8)
            + ((data[i4 + 2] as i32 & 0xff) << 16)
            + ((data[i4 + 3] as i32 & 0xff) << 24);
        k = k.wrapping_mul(m);
        k ^= ((k as u32) >> r) as i32;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rest = data.len() % 4;
    let base = data.len() & !3;
    if rest == 3 {
        h ^= (data[base + 2] as i32 & 0xff) << 16;
    }
    if rest >= 2 {
        h ^= (data[base + 1] as i32 & 0xff) << 8;
    }
    if rest >= 1 {
        h ^= data[base] as i32 & 0xff;
        h = h.wrapping_mul(m);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(m);
    h ^= ((h as u32) >> 15) as i32;
    h
}

/// Java's `Utils.toPositive(murmur2(key)) % numPartitions`.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    (murmur2(key.as_bytes()) & 0x7fffffff) % partitions
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

#[test]
fn murmur2_matches_the_java_vectors() {
    assert_eq!(murmur2(b"21"), -973_932_308);
    assert_eq!(murmur2(b"foobar"), -790_332_482);
    assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
    assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
    assert_eq!(
        murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
        -58_897_971
    );
    assert_eq!(murmur2(b"abc"), 479_470_107);
}
