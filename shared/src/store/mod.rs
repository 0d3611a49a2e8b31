//! The key-value seam every service stores state through.
//!
//! Domain code (tenancy, API keys, lead state, dedupe, history, deliveries) speaks a small set of
//! Redis-shaped commands, [`Cmd`], and sends them in batches: [`Kv::exec`] is one pipelined round
//! trip, [`Kv::exec_guarded`] is one atomic compare-and-apply round trip (a Lua script in Redis).
//! Because domain logic is written once over this seam, the Redis adapter ([`RedisKv`], for
//! production and tests) and the in-memory adapter ([`MemoryKv`], for `leadstream dev` and unit
//! tests) cannot drift apart in behaviour: they differ only in how they run a command.

mod coalesce;
pub mod history;
pub mod leads;
mod memory;
pub mod migrate;
pub mod offsets;
mod redis_kv;
pub mod rescore;
pub mod slot;

use std::borrow::Cow;
use std::sync::Arc;

pub use coalesce::coalesce_zset_writes;
pub use memory::MemoryKv;
pub use redis_kv::RedisKv;

/// One command. Keys are full keys (see [`crate::keys`]); values are bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Get {
        key: String,
    },
    MGet {
        keys: Vec<String>,
    },
    Set {
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Set only if absent. Reply: `Int(1)` when set, `Int(0)` when the key existed.
    SetNx {
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Del {
        key: String,
    },
    Exists {
        key: String,
    },
    IncrBy {
        key: String,
        by: i64,
    },
    PExpire {
        key: String,
        ttl_ms: u64,
    },
    /// Expire at a Unix time in milliseconds. Reply: `Int(1)` when the key exists.
    PExpireAt {
        key: String,
        at_ms: i64,
    },
    HSet {
        key: String,
        field: String,
        value: Vec<u8>,
    },
    /// Set a hash field only if absent. Reply: `Int(1)` when set.
    HSetNx {
        key: String,
        field: String,
        value: Vec<u8>,
    },
    HGet {
        key: String,
        field: String,
    },
    /// Reply: `Array` with `Bytes` or `Nil` per field, in order.
    HMGet {
        key: String,
        fields: Vec<String>,
    },
    /// Set several fields in one command (`HSET key f1 v1 f2 v2 …`). Reply: `Int(added)`.
    HSetMany {
        key: String,
        pairs: Vec<(String, Vec<u8>)>,
    },
    /// Reply: `Int(added)`.
    SAdd {
        key: String,
        members: Vec<Vec<u8>>,
    },
    /// Reply: `Array` of `Int(0|1)` per member, in order.
    SMIsMember {
        key: String,
        members: Vec<Vec<u8>>,
    },
    /// Reply: `Pairs`, fields in ascending order.
    HGetAll {
        key: String,
    },
    HDel {
        key: String,
        field: String,
    },
    HLen {
        key: String,
    },
    /// One step of `HSCAN key cursor MATCH {prefix}* COUNT count`, fields only. Reply:
    /// `Array[Bytes(next cursor), Array[Bytes(field)…]]`; the scan is complete when the next
    /// cursor is `0`. Glob characters in `prefix` are matched literally.
    HScanPrefix {
        key: String,
        cursor: u64,
        prefix: String,
        count: usize,
    },
    ZAdd {
        key: String,
        score: f64,
        member: Vec<u8>,
    },
    /// `ZADD key score member [score member …]`: several members in one command, as if added
    /// one after the other (a member given twice keeps its last score). Reply: `Int`, the members
    /// that were new. `members` must not be empty.
    ZAddMany {
        key: String,
        members: Vec<(f64, Vec<u8>)>,
    },
    /// Members with `min <= score <= max`, ascending, at most `limit`. Reply: `Array` of `Bytes`.
    ZRangeByScore {
        key: String,
        min: f64,
        max: f64,
        limit: Option<usize>,
    },
    /// Members by rank, highest score first (`stop` inclusive, negative counts from the end).
    ZRevRange {
        key: String,
        start: isize,
        stop: isize,
    },
    ZRem {
        key: String,
        member: Vec<u8>,
    },
    /// `ZREM key member [member …]`. Reply: `Int`, the members that were there. `members` must
    /// not be empty.
    ZRemMany {
        key: String,
        members: Vec<Vec<u8>>,
    },
    ZCard {
        key: String,
    },
    /// Remove by rank, lowest first (`stop` inclusive, negative counts from the end).
    ZRemRangeByRank {
        key: String,
        start: isize,
        stop: isize,
    },
}

/// A command's answer, normalised so both adapters answer alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Ok,
    Int(i64),
    Bytes(Vec<u8>),
    Array(Vec<Reply>),
    Pairs(Vec<(String, Vec<u8>)>),
}

impl Reply {
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            _ => 0,
        }
    }

    pub fn into_array(self) -> Vec<Reply> {
        match self {
            Reply::Array(a) => a,
            _ => Vec::new(),
        }
    }

    pub fn into_pairs(self) -> Vec<(String, Vec<u8>)> {
        match self {
            Reply::Pairs(p) => p,
            _ => Vec::new(),
        }
    }

    /// Decode a JSON value stored as bytes; `None` when absent, an error when corrupt.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<Option<T>, StoreError> {
        match self {
            Reply::Bytes(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            _ => Ok(None),
        }
    }
}

/// A precondition of [`Kv::exec_guarded`], checked atomically before any command runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Guard {
    /// The string key must not exist.
    Absent(String),
    /// The string key must hold exactly this value.
    Equals(String, Vec<u8>),
}

impl Guard {
    pub fn key(&self) -> &str {
        match self {
            Guard::Absent(k) | Guard::Equals(k, _) => k,
        }
    }
}

/// Every key of an atomic batch, guards first.
pub fn guarded_keys<'a>(guards: &'a [Guard], cmds: &'a [Cmd]) -> impl Iterator<Item = &'a str> {
    guards
        .iter()
        .map(Guard::key)
        .chain(cmds.iter().flat_map(Cmd::keys))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or answered with an error; retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// An atomic write would span several Redis Cluster hash slots (a key layout bug: the keys
    /// of one atomic write must share a hash tag). Nothing was written.
    #[error("cross-slot atomic write: {0}")]
    CrossSlot(String),
}

#[async_trait::async_trait]
pub trait Kv: Send + Sync + 'static {
    /// Run the commands in one round trip (not atomic), answers in order.
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError>;

    /// Atomically: if every guard holds, run the commands and answer `Some(replies)`; otherwise
    /// change nothing and answer `None`. One round trip.
    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError>;

    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError> {
        self.exec(vec![Cmd::Exists {
            key: "leadstream:ping".into(),
        }])
        .await
        .map(|_| ())
    }
}

/// The store handle services pass around.
pub type Store = Arc<dyn Kv>;

/// Connect to Redis when a URL is given, otherwise use the in-memory store. A comma-separated
/// list of URLs is a Redis Cluster (its nodes); a single URL is one Redis server — use
/// [`open_with`] (or `CommonConfig::open_store`) to treat a single URL as a cluster node.
pub async fn open(redis_url: Option<&str>) -> Result<Store, StoreError> {
    open_tls(redis_url, None).await
}

/// [`open`], trusting only the CA(s) in `ca_file` for `rediss://` URLs when given
/// (`LEADSTREAM_REDIS_CA_FILE`; `CommonConfig::open_store` passes it).
pub async fn open_tls(
    redis_url: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> Result<Store, StoreError> {
    let cluster = redis_url.is_some_and(|u| u.contains(','));
    open_with(redis_url, cluster, ca_file).await
}

/// [`open_tls`] with the choice of a cluster made by the caller (`LEADSTREAM_REDIS_CLUSTER`).
pub async fn open_with(
    redis_url: Option<&str>,
    cluster: bool,
    ca_file: Option<&std::path::Path>,
) -> Result<Store, StoreError> {
    Ok(match redis_url {
        Some(urls) if cluster => {
            Arc::new(RedisKv::connect_cluster(&split_urls(urls), ca_file).await?)
        }
        Some(url) => Arc::new(RedisKv::connect_tls(url, ca_file).await?),
        None => Arc::new(MemoryKv::new()),
    })
}

/// The URLs of a comma-separated list, trimmed, empty entries dropped.
pub fn split_urls(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// One command, single answer.
pub async fn exec_one(store: &dyn Kv, cmd: Cmd) -> Result<Reply, StoreError> {
    let mut out = store.exec(vec![cmd]).await?;
    Ok(out.pop().unwrap_or(Reply::Nil))
}

impl Cmd {
    /// The keys the command touches.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Cmd::MGet { keys } => keys.iter().map(String::as_str).collect(),
            Cmd::Get { key }
            | Cmd::Set { key, .. }
            | Cmd::SetNx { key, .. }
            | Cmd::Del { key }
            | Cmd::Exists { key }
            | Cmd::IncrBy { key, .. }
            | Cmd::PExpire { key, .. }
            | Cmd::PExpireAt { key, .. }
            | Cmd::HMGet { key, .. }
            | Cmd::HSetMany { key, .. }
            | Cmd::SAdd { key, .. }
            | Cmd::SMIsMember { key, .. }
            | Cmd::HSet { key, .. }
            | Cmd::HSetNx { key, .. }
            | Cmd::HGet { key, .. }
            | Cmd::HGetAll { key }
            | Cmd::HDel { key, .. }
            | Cmd::HLen { key }
            | Cmd::HScanPrefix { key, .. }
            | Cmd::ZAdd { key, .. }
            | Cmd::ZAddMany { key, .. }
            | Cmd::ZRangeByScore { key, .. }
            | Cmd::ZRevRange { key, .. }
            | Cmd::ZRem { key, .. }
            | Cmd::ZRemMany { key, .. }
            | Cmd::ZCard { key }
            | Cmd::ZRemRangeByRank { key, .. } => vec![key.as_str()],
        }
    }

    /// The command as Redis arguments, e.g. `["SET", key, value, "PX", "1000"]`.
    pub fn to_args(&self) -> Vec<Cow<'_, [u8]>> {
        // Keys and values are borrowed (a batch's lead states are megabytes: the `redis` crate
        // copies them once into the request, nothing else should).
        fn s(x: &str) -> Cow<'_, [u8]> {
            Cow::Borrowed(x.as_bytes())
        }
        fn b(x: &[u8]) -> Cow<'_, [u8]> {
            Cow::Borrowed(x)
        }
        fn n<'a, T: ToString>(x: T) -> Cow<'a, [u8]> {
            Cow::Owned(x.to_string().into_bytes())
        }
        match self {
            Cmd::Get { key } => vec![s("GET"), s(key)],
            Cmd::MGet { keys } => {
                let mut v = vec![s("MGET")];
                v.extend(keys.iter().map(|k| s(k)));
                v
            }
            Cmd::Set { key, value, ttl_ms } | Cmd::SetNx { key, value, ttl_ms } => {
                let mut v = vec![s("SET"), s(key), b(value)];
                if let Some(ttl) = ttl_ms {
                    v.push(s("PX"));
                    v.push(n(ttl.max(&1)));
                }
                if matches!(self, Cmd::SetNx { .. }) {
                    v.push(s("NX"));
                }
                v
            }
            Cmd::Del { key } => vec![s("DEL"), s(key)],
            Cmd::Exists { key } => vec![s("EXISTS"), s(key)],
            Cmd::IncrBy { key, by } => vec![s("INCRBY"), s(key), n(by)],
            Cmd::PExpire { key, ttl_ms } => vec![s("PEXPIRE"), s(key), n(ttl_ms)],
            Cmd::PExpireAt { key, at_ms } => vec![s("PEXPIREAT"), s(key), n(at_ms)],
            Cmd::HMGet { key, fields } => {
                let mut v = vec![s("HMGET"), s(key)];
                v.extend(fields.iter().map(|f| s(f)));
                v
            }
            Cmd::HSetMany { key, pairs } => {
                let mut v = vec![s("HSET"), s(key)];
                for (f, val) in pairs {
                    v.push(s(f));
                    v.push(b(val));
                }
                v
            }
            Cmd::SAdd { key, members } | Cmd::SMIsMember { key, members } => {
                let name = if matches!(self, Cmd::SAdd { .. }) {
                    "SADD"
                } else {
                    "SMISMEMBER"
                };
                let mut v = vec![s(name), s(key)];
                v.extend(members.iter().map(|m| b(m)));
                v
            }
            Cmd::HSet { key, field, value } => vec![s("HSET"), s(key), s(field), b(value)],
            Cmd::HSetNx { key, field, value } => {
                vec![s("HSETNX"), s(key), s(field), b(value)]
            }
            Cmd::HGet { key, field } => vec![s("HGET"), s(key), s(field)],
            Cmd::HGetAll { key } => vec![s("HGETALL"), s(key)],
            Cmd::HDel { key, field } => vec![s("HDEL"), s(key), s(field)],
            Cmd::HLen { key } => vec![s("HLEN"), s(key)],
            Cmd::HScanPrefix {
                key,
                cursor,
                prefix,
                count,
            } => {
                let mut pattern = String::with_capacity(prefix.len() + 1);
                for c in prefix.chars() {
                    if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
                pattern.push('*');
                vec![
                    s("HSCAN"),
                    s(key),
                    n(cursor),
                    s("MATCH"),
                    Cow::Owned(pattern.into_bytes()),
                    s("COUNT"),
                    n(count),
                ]
            }
            Cmd::ZAdd { key, score, member } => vec![s("ZADD"), s(key), n(score), b(member)],
            Cmd::ZAddMany { key, members } => {
                let mut v = Vec::with_capacity(2 + 2 * members.len());
                v.extend([s("ZADD"), s(key)]);
                for (score, member) in members {
                    v.extend([n(score), b(member)]);
                }
                v
            }
            Cmd::ZRangeByScore {
                key,
                min,
                max,
                limit,
            } => {
                let mut v = vec![s("ZRANGEBYSCORE"), s(key), n(min), n(max)];
                if let Some(l) = limit {
                    v.extend([s("LIMIT"), s("0"), n(l)]);
                }
                v
            }
            Cmd::ZRevRange { key, start, stop } => vec![s("ZREVRANGE"), s(key), n(start), n(stop)],
            Cmd::ZRem { key, member } => vec![s("ZREM"), s(key), b(member)],
            Cmd::ZRemMany { key, members } => {
                let mut v = Vec::with_capacity(2 + members.len());
                v.extend([s("ZREM"), s(key)]);
                v.extend(members.iter().map(|m| b(m)));
                v
            }
            Cmd::ZCard { key } => vec![s("ZCARD"), s(key)],
            Cmd::ZRemRangeByRank { key, start, stop } => {
                vec![s("ZREMRANGEBYRANK"), s(key), n(start), n(stop)]
            }
        }
    }
}

#[cfg(test)]
mod tests;
