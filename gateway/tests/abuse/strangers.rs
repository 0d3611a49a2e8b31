//! Cheap rejection of strangers (issue 12): a made-up key costs Redis one lookup, then nothing
//! for the cache TTL (negative cache); strangers cycling made-up keys are limited per client
//! address before any lookup; a request presenting two credentials is a 400 that costs nothing.
//! Redis commands are counted by a wrapper around the real store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio_util::sync::CancellationToken;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::store::{Cmd, Guard, Kv, RedisKv, Reply, Store, StoreError};
use leadstream_testkit::{redis_url, unique};

use crate::ADMIN;

/// The real Redis store, counting the commands sent to it.
struct Counting {
    inner: RedisKv,
    commands: AtomicUsize,
}

#[async_trait::async_trait]
impl Kv for Counting {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        self.commands.fetch_add(cmds.len(), Ordering::SeqCst);
        self.inner.exec(cmds).await
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        self.commands.fetch_add(1, Ordering::SeqCst);
        self.inner.exec_guarded(guards, cmds).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_keys_cost_one_lookup_then_nothing_and_strangers_are_limited_per_address() {
    let env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_REDIS_PREFIX", unique("strangers")),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC", "1".into()),
        ("LEADSTREAM_UNAUTH_RATE_LIMIT_BURST", "4".into()),
        ("LEADSTREAM_KEY_CACHE_TTL", "10m".into()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
        ("LEADSTREAM_SHUTDOWN_GRACE", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let cfg = GatewayConfig::from_source(&env).expect("config");
    let store = Arc::new(Counting {
        inner: RedisKv::connect(&redis_url()).await.expect("redis-server"),
        commands: AtomicUsize::new(0),
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
    let url = format!("http://{}/org-units", running.addr);
    let http = reqwest::Client::new();
    let commands = || store.commands.load(Ordering::SeqCst);

    // The admin key is verified once (one of the address's 4 lookups) and cached.
    let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Two credentials in one request: 400, no Redis command.
    let before = commands();
    let basic = base64::engine::general_purpose::STANDARD.encode("made-up-user:made-up-password");
    let resp = http
        .get(&url)
        .header("x-api-key", "made-up-key-0")
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ambiguous_credentials");
    assert_eq!(commands(), before, "an ambiguous request reached Redis");

    // One made-up key, ten times: one lookup, then the negative cache answers.
    let before = commands();
    for _ in 0..10 {
        let resp = http
            .get(&url)
            .header("x-api-key", "made-up-key-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(
        commands() - before,
        1,
        "one lookup for a repeated unknown key"
    );

    // Made-up keys cycled from one address: limited before any lookup.
    let before = commands();
    let (mut unauthorized, mut limited) = (0, 0);
    for i in 0..30 {
        let resp = http
            .get(&url)
            .header("x-api-key", format!("made-up-key-cycled-{i}"))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited > 0, "no 429 among 30 made-up keys");
    assert_eq!(
        commands() - before,
        unauthorized,
        "only the requests let through cost a lookup"
    );
    // A verified key from the same address is not held back.
    let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), running.handle).await;
}
