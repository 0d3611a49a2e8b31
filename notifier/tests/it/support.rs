//! Test support: a real HTTP receiver, a real SMTP listener, an independent Standard Webhooks
//! verifier, fired-record producers and a notifier per test (own topics, own Redis prefix).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use leadstream_domain::fired::{Targets, TriggerFired, TriggerKind};
use leadstream_notifier::NotifierConfig;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::Store;
use leadstream_testkit::{redis_url, unique, Broker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

// ---------- Independent Standard Webhooks verification (written from the spec) ----------

/// Verify `webhook-signature` against `whsec_` secrets: any listed `v1,` signature matching any
/// secret is enough. Separate from the notifier's signer on purpose.
pub fn verify(secrets: &[String], id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    secrets.iter().any(|s| {
        let Ok(key) = b64.decode(s.trim_start_matches("whsec_")) else {
            return false;
        };
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(&signed);
        let expected = mac.finalize().into_bytes();
        header.split(' ').any(|sig| {
            sig.strip_prefix("v1,")
                .and_then(|s| b64.decode(s).ok())
                .is_some_and(|got| {
                    use subtle::ConstantTimeEq;
                    got.ct_eq(expected.as_slice()).into()
                })
        })
    })
}

// ---------- HTTP receiver ----------

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The status the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// How a path answers: the first `fail_first` requests *per webhook-id* (or per path when there
/// is no id) get `fail_status`, later ones 200.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    pub fail_first: usize,
    pub fail_status: u16,
}

#[derive(Default)]
struct RxState {
    log: Vec<Received>,
    scripts: HashMap<String, Script>,
    /// Scripts for one webhook-id, ahead of its path's.
    id_scripts: HashMap<String, Script>,
    seen: HashMap<String, usize>,
    /// While set, handlers wait; answers for requests from an older epoch are 503.
    paused: bool,
    epoch: u64,
    /// Requests waiting while paused.
    held: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<RxState>>,
    resume: Arc<tokio::sync::Notify>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rx = Receiver {
            addr,
            state: Arc::default(),
            resume: Arc::default(),
        };
        let app = axum::Router::new().fallback(handle).with_state(rx.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        rx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn script(&self, path: &str, s: Script) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_string(), s);
    }

    /// How requests carrying webhook-id `id` are answered (ahead of the path's script).
    pub fn script_id(&self, id: &str, s: Script) {
        self.state
            .lock()
            .unwrap()
            .id_scripts
            .insert(id.to_string(), s);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Hold every answer until [`Receiver::resume_new_epoch`].
    pub fn pause(&self) {
        self.state.lock().unwrap().paused = true;
    }

    /// Requests waiting for an answer while paused.
    pub fn held(&self) -> usize {
        self.state.lock().unwrap().held
    }

    /// Release held requests; they answer 503 (their client is gone), so none counts as delivered.
    pub fn resume_new_epoch(&self) {
        let mut s = self.state.lock().unwrap();
        s.paused = false;
        s.epoch += 1;
        drop(s);
        self.resume.notify_waiters();
    }
}

async fn handle(
    State(rx): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let epoch = rx.state.lock().unwrap().epoch;
    let mut holding = false;
    loop {
        let notified = rx.resume.notified();
        {
            let mut s = rx.state.lock().unwrap();
            if !s.paused {
                if holding {
                    s.held -= 1;
                }
                break;
            }
            if !holding {
                s.held += 1;
                holding = true;
            }
        }
        notified.await;
    }
    let mut s = rx.state.lock().unwrap();
    let path = uri.path().to_string();
    let status = if s.epoch != epoch {
        503
    } else {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let n = s.seen.entry(format!("{path}|{id}")).or_insert(0);
        *n += 1;
        let n = *n;
        match s.id_scripts.get(&id).or_else(|| s.scripts.get(&path)) {
            Some(sc) if n <= sc.fail_first => sc.fail_status,
            _ => 200,
        }
    };
    s.log.push(Received {
        path,
        headers,
        body,
        at: Instant::now(),
        status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        format!("answer {status}"),
    )
}

// ---------- SMTP listener ----------

pub use leadstream_testkit::smtp_sink::SmtpSink;

// ---------- Notifier and records ----------

pub struct Env {
    pub broker: Broker,
    pub vars: BTreeMap<String, String>,
    pub store: Store,
    pub keys: Keys,
    pub publisher: Publisher,
    pub fired_topic: String,
    pub dlq_topic: String,
}

impl Env {
    /// A broker, an isolated prefix, topics created, and the variables a notifier needs.
    pub async fn new(name: &str, extra: &[(&str, &str)]) -> Env {
        let broker = Broker::start();
        let prefix = unique(name);
        let mut vars: BTreeMap<String, String> = [
            ("LEADSTREAM_KAFKA_BROKERS", broker.addr()),
            ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
            ("LEADSTREAM_REDIS_URL", redis_url()),
            ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
            ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
            ("LEADSTREAM_PARTITIONS", "2".into()),
            ("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms".into()),
            ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "2s".into()),
            ("LEADSTREAM_SMTP_TIMEOUT", "2s".into()),
            ("LEADSTREAM_NOTIFIER_POLL_INTERVAL", "25ms".into()),
            ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}_notifier")),
            (
                "LEADSTREAM_EMAIL_DIR",
                std::env::temp_dir().join(&prefix).display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            if v.is_empty() {
                vars.remove(*k);
            } else {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        let cfg = NotifierConfig::from_source(&vars).expect("config");
        let kafka = KafkaSettings::new(broker.addr());
        ensure_topics(
            &kafka,
            &[&cfg.common.topics.fired, &cfg.common.topics.dlq],
            2,
            1,
        )
        .await
        .expect("topics");
        // The notifier's own way to the store (a Redis Cluster when `extra` says so).
        let store: Store = cfg.common.open_store().await.expect("redis-server");
        Env {
            publisher: Publisher::new(&kafka, Duration::from_secs(10)).unwrap(),
            fired_topic: cfg.common.topics.fired.clone(),
            dlq_topic: cfg.common.topics.dlq.clone(),
            keys: cfg.common.keys(),
            broker,
            vars,
            store,
        }
    }

    pub fn config(&self) -> NotifierConfig {
        NotifierConfig::from_source(&self.vars).expect("config")
    }

    /// Start a notifier in this process; cancel the token to stop it.
    pub fn spawn_notifier(
        &self,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let token = CancellationToken::new();
        let handle = tokio::spawn(leadstream_notifier::run(self.config(), token.clone()));
        (token, handle)
    }

    pub async fn produce(&self, f: &TriggerFired) {
        let bytes = leadstream_shared::avro::encode_fired(f).unwrap();
        self.publisher
            .send(&self.fired_topic, &f.kafka_key(), &bytes, &[])
            .await
            .expect("produce fired");
    }

    /// The delivery jobs, as the notifier this environment configures keeps them.
    pub fn jobs(&self) -> leadstream_notifier::jobs::JobStore {
        let retention = u64::try_from(self.config().retention.as_millis()).unwrap_or(u64::MAX);
        leadstream_notifier::jobs::JobStore::new(self.store.clone(), self.keys.clone(), retention)
    }

    pub fn catalog(&self) -> leadstream_shared::catalog::Catalog {
        leadstream_shared::catalog::Catalog::new(self.store.clone(), self.keys.clone())
    }

    pub async fn deliveries(
        &self,
        q: leadstream_shared::delivery::DeliveryQuery,
    ) -> Vec<leadstream_shared::delivery::DeliveryAttempt> {
        leadstream_shared::delivery::query(self.store.as_ref(), &self.keys, "unit_default", &q)
            .await
            .unwrap()
            .deliveries
    }
}

/// A milestone firing (seed 003 payload) for `lead`.
pub fn fired(n: usize, lead: &str, targets: Targets) -> TriggerFired {
    let fired_id = leadstream_shared::ids::derived_id("fir", &["trg_hot", lead, &n.to_string()]);
    TriggerFired {
        fired_id,
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: lead.into(),
        trigger_id: "trg_hot".into(),
        trigger_name: "Hot Lead Alert".into(),
        kind: TriggerKind::Milestone,
        event_id: format!("evt_{n}"),
        fired_at_ms: leadstream_shared::ids::now_ms(),
        score: 82,
        payload: json!({
            "trigger": {"id": "trg_hot", "name": "Hot Lead Alert", "type": "milestone"},
            "event": {"id": format!("evt_{n}"), "lead_id": lead, "event_type": "demo_request",
                      "metadata": {"source": "website", "page": "/pricing"},
                      "created_at": "2025-01-15T10:35:00Z"},
            "score": 82
        }),
        targets,
    }
}

pub fn webhook(url: String) -> Targets {
    Targets {
        webhook_url: Some(url),
        ..Targets::default()
    }
}

/// Wait until `f` holds (polling), or fail with `what`.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, what: &str, mut f: F) {
    leadstream_testkit::wait_until(timeout, what, || {
        let ok = f();
        async move { ok.then_some(()) }
    })
    .await
}
