//! The Redis adapter: a pipelined round trip per batch, and one generic Lua script for atomic
//! guarded batches, over a reconnecting connection manager.
//!
//! `rediss://` URLs connect with rustls: the system's roots, or only the CA(s) of
//! `LEADSTREAM_REDIS_CA_FILE` when one is given (managed Redis with a private CA). A server
//! certificate that is not trusted, or a refused password, fails the first connection with a
//! sentence that names the variable to fix ([`connect_error`]).

use std::path::Path;

use redis::aio::ConnectionManager;
use redis::Value;

use super::{Cmd, Guard, Kv, Reply, StoreError};

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

#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
    guarded: redis::Script,
}

impl RedisKv {
    /// Connect (and verify the connection) to a `redis://` or `rediss://` URL.
    pub async fn connect(url: &str) -> Result<RedisKv, StoreError> {
        RedisKv::connect_tls(url, None).await
    }

    /// Connect, trusting only the PEM certificates in `ca_file` for `rediss://` when given.
    pub async fn connect_tls(url: &str, ca_file: Option<&Path>) -> Result<RedisKv, StoreError> {
        let client = client(url, ca_file)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_response_timeout(Some(std::time::Duration::from_secs(10)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_error)?;
        Ok(RedisKv {
            conn,
            guarded: redis::Script::new(GUARDED),
        })
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

#[async_trait::async_trait]
impl Kv for RedisKv {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for c in &cmds {
            let mut rc = redis::Cmd::new();
            for a in c.to_args() {
                rc.arg(a.as_ref());
            }
            pipe.add_command(rc);
        }
        let mut conn = self.conn.clone();
        let values: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(cmds
            .iter()
            .zip(values)
            .map(|(c, v)| normalise(c, v))
            .collect())
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        let mut inv = self.guarded.prepare_invoke();
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
        let mut conn = self.conn.clone();
        let value: Value = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
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
