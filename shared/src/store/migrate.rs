//! Copy an installation's keys from one Redis server onto a Redis Cluster, renamed to the
//! cluster layout ([`Keys::cluster_name_of`]): `leadstream admin redis-to-cluster`.
//!
//! Every key under the prefix is copied with `DUMP` / `RESTORE … REPLACE` and its remaining
//! time to live; the notifier's due set, whose members are job key names, is rewritten member
//! by member so pending deliveries point at their renamed jobs. Run it with every service
//! stopped (nothing may write the source meanwhile); running it again copies again (REPLACE),
//! so an interrupted copy is finished by a second run. The source is never changed.

use redis::aio::ConnectionLike;
use redis::Value;

use super::StoreError;
use crate::keys::Keys;

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Keys written on the cluster.
    pub copied: u64,
    /// Of which renamed (they carry a hash tag on a cluster).
    pub renamed: u64,
    /// Pending deliveries re-pointed in the notifier's due set.
    pub due: u64,
}

fn err(what: &str) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{what}: {e}"))
}

/// Copy every key of `keys`' prefix from the Redis server at `from` to the cluster reached
/// through `to` (node URLs).
pub async fn copy_to_cluster(
    from: &str,
    to: &[&str],
    keys: &Keys,
) -> Result<CopyReport, StoreError> {
    let mut src = redis::Client::open(from)
        .map_err(err("source Redis URL"))?
        .get_multiplexed_async_connection()
        .await
        .map_err(err("source Redis"))?;
    let mut dst = redis::cluster::ClusterClient::new(to.to_vec())
        .map_err(err("cluster URLs"))?
        .get_async_connection()
        .await
        .map_err(err("Redis Cluster"))?;
    // The due set's name in the source's (single-Redis) layout.
    let due = Keys::new(keys.prefix()).delivery_due();
    let pattern = format!("{}:*", keys.prefix());
    let mut report = CopyReport::default();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut src)
            .await
            .map_err(err("SCAN on the source"))?;
        for key in batch {
            let Some(name) = keys.cluster_name_of(&key) else {
                continue;
            };
            let copied = if key == due {
                copy_due(&mut src, &mut dst, keys, &key, &name, &mut report).await?
            } else {
                copy_key(&mut src, &mut dst, &key, &name).await?
            };
            if copied {
                report.copied += 1;
                report.renamed += u64::from(name != key);
            }
        }
        cursor = next;
        if cursor == 0 {
            return Ok(report);
        }
    }
}

/// DUMP, PTTL, RESTORE under the new name; `false` when the key vanished meanwhile.
async fn copy_key(
    src: &mut impl ConnectionLike,
    dst: &mut impl ConnectionLike,
    key: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let (dump, ttl): (Value, i64) = redis::pipe()
        .cmd("DUMP")
        .arg(key)
        .cmd("PTTL")
        .arg(key)
        .query_async(src)
        .await
        .map_err(err("DUMP on the source"))?;
    let Value::BulkString(payload) = dump else {
        return Ok(false);
    };
    if ttl == -2 {
        return Ok(false);
    }
    redis::cmd("RESTORE")
        .arg(name)
        .arg(ttl.max(0))
        .arg(payload)
        .arg("REPLACE")
        .query_async::<()>(dst)
        .await
        .map_err(|e| StoreError::Unavailable(format!("RESTORE {name} on the cluster: {e}")))?;
    Ok(true)
}

/// The due set: members are job keys, renamed one by one.
async fn copy_due(
    src: &mut impl ConnectionLike,
    dst: &mut impl ConnectionLike,
    keys: &Keys,
    key: &str,
    name: &str,
    report: &mut CopyReport,
) -> Result<bool, StoreError> {
    let members: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(src)
        .await
        .map_err(err("ZRANGE on the source"))?;
    if members.is_empty() {
        return Ok(false);
    }
    let mut add = redis::cmd("ZADD");
    add.arg(name);
    for (member, score) in &members {
        let renamed = keys
            .cluster_name_of(member)
            .unwrap_or_else(|| member.clone());
        add.arg(*score).arg(renamed);
    }
    redis::pipe()
        .cmd("DEL")
        .arg(name)
        .add_command(add)
        .query_async::<()>(dst)
        .await
        .map_err(err("ZADD on the cluster"))?;
    report.due += members.len() as u64;
    Ok(true)
}
