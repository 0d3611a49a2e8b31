//! The Redis adapter: a pipelined round trip per batch, and one generic Lua script for atomic
//! guarded batches, over a reconnecting connection manager — or over a Redis Cluster
//! connection, where a batch becomes one pipeline per hash slot and an atomic batch must stay
//! in one slot.
//!
//! `rediss://` URLs connect with rustls: the system's roots, or only the CA(s) of
//! `LEADSTREAM_REDIS_CA_FILE` when one is given (managed Redis with a private CA). A server
//! certificate that is not trusted, or a refused password, fails the first connection with a
//! sentence that names the variable to fix ([`connect_error`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::Value;

use super::slot::{single_slot, slot};
use super::{guarded_keys, Cmd, Guard, Kv, Reply, StoreError};

/// Checks every guard, then runs every command; answers nil when a guard fails.
/// ARGV layout: number of guards, then (kind, key, value) per guard, then per command its
/// argument count followed by its arguments.
const GUARDED: &str = r#"
local i = 1
local ng = tonumber(ARGV[i]); i = i + 1
for _ = 1, ng do
  local kind, key, val = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local cur = redis.call('GET', key)
  if kind == 'absent' then
    if cur then return false end
  elseif cur ~= val then
    return false
  end
end
local out = {}
while i <= #ARGV do
  local n = tonumber(ARGV[i]); i = i + 1
  local r = redis.call(unpack(ARGV, i, i + n - 1))
  i = i + n
  if type(r) == 'table' and r.ok then r = r.ok end
  out[#out + 1] = r
end
return out
"#;

/// A connection to one Redis server or to a Redis Cluster. Both speak the same commands; a
/// cluster connection routes each command (and each pipeline) to the node owning its slot, and
/// follows `MOVED`/`ASK` redirections and failovers.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<ClusterConn>),
}

/// A cluster connection that is replaced when requests fail for want of a connection: after a
/// master was killed -9 and its replica promoted, the `redis` crate's cluster connection (1.8.1)
/// was seen to keep timing out every request for good, so every call is bounded here and a
/// connection that timed out or lost its node is rebuilt from the client (which asks the live
/// nodes for the slot map afresh).
///
/// The rebuild runs as a task of its own: callers are routinely dropped mid-request (a
/// multi-slot read is one future per slot under `try_join_all`, and the first slot to fail
/// drops the others), and a rebuild awaited inside such a caller was cancelled every time —
/// the connection then stayed broken while the rate limit refused further rebuilds.
struct ClusterConn {
    client: ClusterClient,
    current: std::sync::Mutex<ClusterConnection>,
    rebuilt: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ClusterConn {
    fn get(&self) -> ClusterConnection {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Run `f` on the connection within [`HUNG_AFTER`]. A request that failed in any way (no
    /// answer, a timeout, a lost node) starts a rebuild of the connection from the client (at
    /// most once a second) and reports the error (callers retry).
    async fn bounded<T, F, Fut>(self: &Arc<Self>, f: F) -> redis::RedisResult<T>
    where
        F: FnOnce(ClusterConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(HUNG_AFTER, f(self.get())).await {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no answer from the Redis Cluster",
                format!("within {HUNG_AFTER:?}"),
            ))),
        };
        if let Err(e) = &result {
            // Redirections and retries are the connection's own business: an error that gets
            // out of it means it is in a state worth leaving (a timeout, a lost node, a slot
            // map that no longer matches the cluster), whatever its kind.
            self.rebuild(e);
        }
        result
    }

    /// Start replacing the connection (at most once a second), in a task of its own so that
    /// dropping the caller cannot cancel it.
    fn rebuild(self: &Arc<Self>, cause: &redis::RedisError) {
        {
            let mut last = self.rebuilt.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        tracing::warn!(error = %cause, kind = ?cause.kind(), "Redis Cluster request failed; rebuilding the cluster connection");
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, this.client.get_async_connection()).await {
                Ok(Ok(fresh)) => {
                    *this.current.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                    tracing::info!("Redis Cluster connection rebuilt");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not rebuild the Redis Cluster connection")
                }
                Err(_) => tracing::warn!(
                    "could not rebuild the Redis Cluster connection within {CONNECT_TIMEOUT:?}"
                ),
            }
        });
    }
}

impl Conn {
    async fn pipeline(&self, pipe: &redis::Pipeline) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => {
                c.bounded(|mut conn| async move { pipe.query_async(&mut conn).await })
                    .await
            }
        }
    }

    async fn invoke(&self, inv: &redis::ScriptInvocation<'_>) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => inv.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => {
                c.bounded(|mut conn| async move { inv.invoke_async(&mut conn).await })
                    .await
            }
        }
    }
}

#[derive(Clone)]
pub struct RedisKv {
    conn: Conn,
    guarded: redis::Script,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A cluster request still unanswered after this is taken as hung (see [`ClusterConn`]).
const HUNG_AFTER: Duration = Duration::from_secs(15);

impl RedisKv {
    /// Connect (and verify the connection) to a `redis://` or `rediss://` URL.
    pub async fn connect(url: &str) -> Result<RedisKv, StoreError> {
        RedisKv::connect_tls(url, None).await
    }

    /// Connect, trusting only the PEM certificates in `ca_file` for `rediss://` when given.
    pub async fn connect_tls(url: &str, ca_file: Option<&Path>) -> Result<RedisKv, StoreError> {
        let client = client(url, ca_file)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_error)?;
        Ok(RedisKv {
            conn: Conn::Single(conn),
            guarded: redis::Script::new(GUARDED),
        })
    }

    /// Connect to a Redis Cluster through any of its nodes (`redis://` or `rediss://` each; the
    /// client discovers the others) and verify that it answers. With `ca_file`, TLS trusts
    /// exactly the certificates in it.
    pub async fn connect_cluster(
        urls: &[&str],
        ca_file: Option<&Path>,
    ) -> Result<RedisKv, StoreError> {
        if urls.is_empty() {
            return Err(StoreError::Unavailable(
                "no Redis Cluster node URL given".into(),
            ));
        }
        let mut builder = ClusterClient::builder(urls.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT);
        if let Some(ca_file) = ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| {
                StoreError::Unavailable(format!(
                    "LEADSTREAM_REDIS_CA_FILE {} cannot be read: {e}",
                    ca_file.display()
                ))
            })?;
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            });
        }
        let client = builder.build().map_err(|e| {
            StoreError::Unavailable(format!(
                "LEADSTREAM_REDIS_URL is not a usable list of Redis Cluster nodes: {e}"
            ))
        })?;
        let conn = client.get_async_connection().await.map_err(connect_error)?;
        let kv = RedisKv {
            conn: Conn::Cluster(Arc::new(ClusterConn {
                client,
                current: std::sync::Mutex::new(conn),
                rebuilt: std::sync::Mutex::new(None),
            })),
            guarded: redis::Script::new(GUARDED),
        };
        kv.ping().await?;
        Ok(kv)
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }
}

/// The client for `url`; with `ca_file`, TLS trusts exactly the certificates in it.
pub fn client(url: &str, ca_file: Option<&Path>) -> Result<redis::Client, StoreError> {
    let bad_url = |e: redis::RedisError| {
        StoreError::Unavailable(format!(
            "LEADSTREAM_REDIS_URL is not a usable Redis URL: {e}"
        ))
    };
    let Some(ca_file) = ca_file else {
        return redis::Client::open(url).map_err(bad_url);
    };
    let pem = std::fs::read(ca_file).map_err(|e| {
        StoreError::Unavailable(format!(
            "LEADSTREAM_REDIS_CA_FILE {} cannot be read: {e}",
            ca_file.display()
        ))
    })?;
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    redis::Client::build_with_tls(url, certs).map_err(|e| {
        StoreError::Unavailable(format!(
            "LEADSTREAM_REDIS_CA_FILE needs a rediss:// LEADSTREAM_REDIS_URL and a PEM CA \
             certificate: {e}"
        ))
    })
}

/// A failed first connection, as a sentence naming what to fix.
fn connect_error(e: redis::RedisError) -> StoreError {
    if untrusted_certificate(&e) {
        return StoreError::Unavailable(format!(
            "the Redis server's TLS certificate is not trusted ({e}): set \
             LEADSTREAM_REDIS_CA_FILE to the PEM file of the CA that signed it"
        ));
    }
    let refused = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"));
    if refused {
        return StoreError::Unavailable(format!(
            "Redis refused the credentials of LEADSTREAM_REDIS_URL \
             (rediss://user:password@host:port): {e}"
        ));
    }
    unavailable(e)
}

/// Whether a TLS handshake failed on the server's certificate (a rustls error somewhere in the
/// source chain, e.g. inside the I/O error).
fn untrusted_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        // An I/O error's `source()` skips the error it wraps, and the redis crate keeps its
        // cause behind an `Arc`: look inside both.
        let wrapped: Option<&(dyn std::error::Error + 'static)> =
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                io.get_ref().map(|e| e as _)
            } else {
                err.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()
                    .map(|a| &**a as _)
            };
        if wrapped.is_some_and(untrusted_certificate) {
            return true;
        }
        next = err.source();
    }
    false
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn redis_cmd(c: &Cmd) -> redis::Cmd {
    let mut rc = redis::Cmd::new();
    for a in c.to_args() {
        rc.arg(a.as_ref());
    }
    rc
}

/// Where a Redis command's answer goes: the reply of command `index`, or, for one slot's share
/// of a split `MGET`, the given positions of that reply's array.
struct Dest {
    index: usize,
    positions: Option<Vec<usize>>,
}

/// One pipeline: commands that may run in one round trip to one node.
#[derive(Default)]
struct Batch {
    pipe: redis::Pipeline,
    dests: Vec<Dest>,
}

impl Batch {
    fn push(&mut self, cmd: redis::Cmd, dest: Dest) {
        self.pipe.add_command(cmd);
        self.dests.push(dest);
    }
}

/// Split the commands into one pipeline per hash slot (a cluster serves a pipeline only when
/// all its keys share a slot); a multi-slot `MGET` becomes one `MGET` per slot. Commands of one
/// slot keep their order.
fn by_slot(cmds: &[Cmd]) -> Vec<Batch> {
    let mut batches: BTreeMap<u16, Batch> = BTreeMap::new();
    for (index, c) in cmds.iter().enumerate() {
        if let Cmd::MGet { keys } = c {
            let mut parts: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
            for (p, k) in keys.iter().enumerate() {
                parts.entry(slot(k.as_bytes())).or_default().push(p);
            }
            if parts.len() > 1 {
                for (s, positions) in parts {
                    let mut rc = redis::cmd("MGET");
                    for &p in &positions {
                        rc.arg(keys[p].as_bytes());
                    }
                    let dest = Dest {
                        index,
                        positions: Some(positions),
                    };
                    batches.entry(s).or_default().push(rc, dest);
                }
                continue;
            }
        }
        let s = c.keys().first().map_or(0, |k| slot(k.as_bytes()));
        let dest = Dest {
            index,
            positions: None,
        };
        batches.entry(s).or_default().push(redis_cmd(c), dest);
    }
    batches.into_values().collect()
}

#[async_trait::async_trait]
impl Kv for RedisKv {
    /// One pipeline on a single server. On a cluster, one pipeline per slot, all sent
    /// concurrently: commands of one slot run in order, commands of different slots in no
    /// particular order (as with any non-atomic batch).
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let batches = match &self.conn {
            Conn::Single(_) => {
                let mut one = Batch::default();
                for (index, c) in cmds.iter().enumerate() {
                    let dest = Dest {
                        index,
                        positions: None,
                    };
                    one.push(redis_cmd(c), dest);
                }
                vec![one]
            }
            Conn::Cluster(_) => by_slot(&cmds),
        };
        let answers = futures::future::try_join_all(batches.into_iter().map(|b| async move {
            let values = self.conn.pipeline(&b.pipe).await?;
            Ok::<_, redis::RedisError>((b.dests, values))
        }))
        .await
        .map_err(unavailable)?;
        let mut values: Vec<Value> = vec![Value::Nil; cmds.len()];
        for (dests, vals) in answers {
            for (d, v) in dests.into_iter().zip(vals) {
                match d.positions {
                    None => values[d.index] = v,
                    Some(positions) => {
                        if !matches!(values[d.index], Value::Array(_)) {
                            let n = cmds[d.index].keys().len();
                            values[d.index] = Value::Array(vec![Value::Nil; n]);
                        }
                        if let (Value::Array(all), Value::Array(part)) = (&mut values[d.index], v) {
                            for (p, item) in positions.into_iter().zip(part) {
                                all[p] = item;
                            }
                        }
                    }
                }
            }
        }
        Ok(cmds
            .iter()
            .zip(values)
            .map(|(c, v)| normalise(c, v))
            .collect())
    }

    /// One Lua script. On a cluster every key must live in one slot (the script runs on the node
    /// owning it): a batch spanning slots is refused with [`StoreError::CrossSlot`] before
    /// anything is sent.
    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        let mut all = guarded_keys(&guards, &cmds);
        let first = all.next();
        if self.is_cluster() {
            single_slot(first.into_iter().chain(all))?;
        }
        let mut inv = self.guarded.prepare_invoke();
        // The script reads its keys from ARGV; the first key is also declared so that a
        // cluster routes the script to the node owning the batch's slot.
        if let Some(k) = first {
            inv.key(k);
        }
        inv.arg(guards.len());
        for g in &guards {
            match g {
                Guard::Absent(k) => inv.arg("absent").arg(k.as_str()).arg(""),
                Guard::Equals(k, v) => inv.arg("equals").arg(k.as_str()).arg(v.as_slice()),
            };
        }
        for c in &cmds {
            let args = c.to_args();
            inv.arg(args.len());
            for a in args {
                inv.arg(a.as_ref());
            }
        }
        let value = self.conn.invoke(&inv).await.map_err(unavailable)?;
        match value {
            Value::Nil => Ok(None),
            Value::Array(values) => Ok(Some(
                cmds.iter()
                    .zip(values)
                    .map(|(c, v)| normalise(c, v))
                    .collect(),
            )),
            other => Err(StoreError::Unavailable(format!(
                "unexpected answer from the guarded script: {other:?}"
            ))),
        }
    }
}

/// Turn a raw Redis value into the reply both adapters agree on for that command.
fn normalise(cmd: &Cmd, v: Value) -> Reply {
    match cmd {
        // Inside a Lua script a status reply comes back as the text "OK".
        Cmd::Set { .. } => match v {
            Value::Nil => Reply::Nil,
            _ => Reply::Ok,
        },
        Cmd::SetNx { .. } => match v {
            Value::Nil => Reply::Int(0),
            Value::Int(i) => Reply::Int(i),
            _ => Reply::Int(1),
        },
        Cmd::HGetAll { .. } => {
            let mut pairs = Vec::new();
            match v {
                Value::Map(m) => {
                    for (k, val) in m {
                        if let (Some(k), Some(val)) = (bytes(k), bytes(val)) {
                            pairs.push((String::from_utf8_lossy(&k).into_owned(), val));
                        }
                    }
                }
                Value::Array(a) => {
                    let mut it = a.into_iter();
                    while let (Some(k), Some(val)) = (it.next(), it.next()) {
                        if let (Some(k), Some(val)) = (bytes(k), bytes(val)) {
                            pairs.push((String::from_utf8_lossy(&k).into_owned(), val));
                        }
                    }
                }
                _ => {}
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            Reply::Pairs(pairs)
        }
        Cmd::HScanPrefix { .. } => {
            let (cursor, items) = match v {
                Value::Array(a) if a.len() == 2 => {
                    let mut it = a.into_iter();
                    (it.next().and_then(bytes), it.next())
                }
                _ => (None, None),
            };
            let flat = match items {
                Some(Value::Array(a)) => a,
                Some(Value::Map(m)) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => Vec::new(),
            };
            let fields = flat
                .into_iter()
                .step_by(2)
                .filter_map(bytes)
                .map(Reply::Bytes)
                .collect();
            Reply::Array(vec![
                Reply::Bytes(cursor.unwrap_or_else(|| b"0".to_vec())),
                Reply::Array(fields),
            ])
        }
        _ => generic(v),
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

fn generic(v: Value) -> Reply {
    match v {
        Value::Nil => Reply::Nil,
        Value::Okay => Reply::Ok,
        Value::Int(i) => Reply::Int(i),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::Array(a) | Value::Set(a) => Reply::Array(a.into_iter().map(generic).collect()),
        Value::SimpleString(s) if s == "OK" => Reply::Ok,
        other => match bytes(other) {
            Some(b) => Reply::Bytes(b),
            None => Reply::Nil,
        },
    }
}
