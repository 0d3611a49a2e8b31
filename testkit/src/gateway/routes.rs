//! [`RoutesApp`]: the gateway on the real Redis with no broker.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use leadstream_shared::config::CommonConfig;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::Store;

use super::{gateway_env, secret, Builder, Env, Spawned, ADMIN};
use crate::{join_service, redis_store, redis_url, unique};

/// The gateway on the real Redis (a key prefix of its own) with no broker: its sink is the spawn
/// function's (a memory sink). For the management and read routes, which never publish, and for
/// tests that read what a memory sink got. Requests carry a Bearer key; answers are
/// `(status, JSON)`. Dropped, it is told to stop; [`RoutesApp::stop`] also waits for the drain.
pub struct RoutesApp {
    pub addr: SocketAddr,
    /// The operations port, when the test set `LEADSTREAM_METRICS_ADDR`.
    pub ops_addr: Option<SocketAddr>,
    /// `http://{addr}`.
    pub base: String,
    pub http: reqwest::Client,
    /// The store the gateway serves from (the real Redis, or the builder's wrapper of it), to
    /// write what other services would.
    pub store: Store,
    /// The gateway's key layout (its `LEADSTREAM_REDIS_PREFIX`).
    pub keys: Keys,
    /// The configuration every service of this installation would read.
    pub common: CommonConfig,
    /// The variables the gateway was started with.
    pub env: Env,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Builder<RoutesApp> {
    /// Serve from `store` (e.g. a wrapper around [`redis_store`] that counts commands or fails
    /// on demand) instead of a new connection to the real Redis.
    pub fn store(mut self, store: Store) -> Builder<RoutesApp> {
        self.store = Some(store);
        self
    }

    /// Spawn with `spawn(variables, store, shutdown)`: the gateway on that store, with a sink
    /// that needs no broker.
    pub async fn start<F, Fut>(self, spawn: F) -> RoutesApp
    where
        F: FnOnce(Env, Store, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Spawned>>,
    {
        // No broker: nothing is published to Kafka (the sink is the spawn function's).
        let env = self.env(gateway_env("127.0.0.1:9", &redis_url(), &unique("sr")));
        let common = CommonConfig::from_source(&env).expect("config");
        let store = match self.store {
            Some(store) => store,
            None => redis_store().await,
        };
        let shutdown = CancellationToken::new();
        let (addr, ops_addr, handle) = spawn(env.clone(), store.clone(), shutdown.clone())
            .await
            .expect("gateway starts");
        RoutesApp {
            addr,
            ops_addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            keys: common.keys(),
            common,
            env,
            shutdown,
            handle: Some(handle),
        }
    }
}

impl RoutesApp {
    /// What the test changes before the gateway starts.
    pub fn builder() -> Builder<RoutesApp> {
        Builder::new()
    }

    /// The gateway with the defaults, spawned by `spawn` (see [`Builder::start`]).
    pub async fn start<F, Fut>(spawn: F) -> RoutesApp
    where
        F: FnOnce(Env, Store, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<Spawned>>,
    {
        RoutesApp::builder().start(spawn).await
    }

    /// One request with `key` as a Bearer token, `headers` and an optional JSON body; the status
    /// and the JSON answer (`null` when there is none).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.send(method, path, key, &[], body.as_ref()).await
    }

    /// A call that must answer `status`; the JSON answer.
    pub async fn expect(
        &self,
        status: u16,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Value {
        let (got, answer) = self.call(method.clone(), path, key, body).await;
        assert_eq!(got, status, "{method} {path} → {answer}");
        answer
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, key, Some(body)).await
    }

    /// Create with the admin key in `unit_default`; the created document.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        self.expect(201, Method::POST, path, ADMIN, Some(body))
            .await
    }

    /// A key of `scopes` bound to `ous`.
    pub async fn key(&self, scopes: &[&str], ous: &[&str]) -> String {
        let key = json!({"name": "t", "scopes": scopes, "ou_ids": ous});
        secret(&self.create("/api-keys", key).await)
    }

    /// Stop the gateway and wait for its drain; a gateway that failed fails the test.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            join_service("the gateway", h, Duration::from_secs(10)).await;
        }
    }
}

impl Drop for RoutesApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
