//! The in-memory adapter, for `leadstream dev` and unit tests only: the same commands with the
//! same answers as Redis, under one lock (so every batch is atomic here).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Cmd, Guard, Kv, Reply, StoreError};

enum Value {
    Str(Vec<u8>),
    Hash(BTreeMap<String, Vec<u8>>),
    /// Kept sorted by (score, member), as Redis does.
    ZSet(Vec<(f64, Vec<u8>)>),
    Set(std::collections::BTreeSet<Vec<u8>>),
}

struct Entry {
    value: Value,
    expires: Option<Instant>,
}

#[derive(Default)]
pub struct MemoryKv {
    data: Mutex<HashMap<String, Entry>>,
    /// Refuse atomic batches whose keys span several Redis Cluster slots, as a cluster does.
    one_slot_per_batch: bool,
}

impl MemoryKv {
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// A store that refuses cross-slot atomic batches like a Redis Cluster, so key layouts can
    /// be checked in unit tests without a cluster.
    pub fn cluster_strict() -> MemoryKv {
        MemoryKv {
            one_slot_per_batch: true,
            ..MemoryKv::default()
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a half-applied command behind (each
        // command is applied in one step), so a poisoned lock is safe to keep using.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Kv for MemoryKv {
    async fn exec(&self, cmds: Vec<Cmd>) -> Result<Vec<Reply>, StoreError> {
        let mut data = self.locked();
        Ok(cmds.into_iter().map(|c| apply(&mut data, c)).collect())
    }

    async fn exec_guarded(
        &self,
        guards: Vec<Guard>,
        cmds: Vec<Cmd>,
    ) -> Result<Option<Vec<Reply>>, StoreError> {
        if self.one_slot_per_batch {
            super::slot::single_slot(super::guarded_keys(&guards, &cmds))?;
        }
        let mut data = self.locked();
        for g in &guards {
            let ok = match g {
                Guard::Absent(k) => live(&mut data, k).is_none(),
                Guard::Equals(k, v) => {
                    matches!(live(&mut data, k), Some(Entry { value: Value::Str(cur), .. }) if cur == v)
                }
            };
            if !ok {
                return Ok(None);
            }
        }
        Ok(Some(
            cmds.into_iter().map(|c| apply(&mut data, c)).collect(),
        ))
    }
}

/// The entry under `key`, dropping it first if it has expired.
fn live<'a>(data: &'a mut HashMap<String, Entry>, key: &str) -> Option<&'a mut Entry> {
    let expired = data
        .get(key)
        .and_then(|e| e.expires)
        .is_some_and(|t| t <= Instant::now());
    if expired {
        data.remove(key);
    }
    data.get_mut(key)
}

fn ttl(ms: Option<u64>) -> Option<Instant> {
    ms.map(|ms| Instant::now() + Duration::from_millis(ms.max(1)))
}

fn hash<'a>(
    data: &'a mut HashMap<String, Entry>,
    key: &str,
) -> Option<&'a mut BTreeMap<String, Vec<u8>>> {
    match live(data, key) {
        Some(Entry {
            value: Value::Hash(h),
            ..
        }) => Some(h),
        _ => None,
    }
}

fn zset<'a>(
    data: &'a mut HashMap<String, Entry>,
    key: &str,
) -> Option<&'a mut Vec<(f64, Vec<u8>)>> {
    match live(data, key) {
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => Some(z),
        _ => None,
    }
}

/// Redis rank range (inclusive, negative from the end) → index range.
fn rank_range(len: usize, start: isize, stop: isize) -> Option<(usize, usize)> {
    let len = len as isize;
    let s = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let e = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if len == 0 || s > e || s >= len {
        None
    } else {
        Some((s as usize, e as usize))
    }
}

fn apply(data: &mut HashMap<String, Entry>, cmd: Cmd) -> Reply {
    match cmd {
        Cmd::Get { key } => match live(data, &key) {
            Some(Entry {
                value: Value::Str(v),
                ..
            }) => Reply::Bytes(v.clone()),
            _ => Reply::Nil,
        },
        Cmd::MGet { keys } => Reply::Array(
            keys.into_iter()
                .map(|key| apply(data, Cmd::Get { key }))
                .collect(),
        ),
        Cmd::Set { key, value, ttl_ms } => {
            data.insert(
                key,
                Entry {
                    value: Value::Str(value),
                    expires: ttl(ttl_ms),
                },
            );
            Reply::Ok
        }
        Cmd::SetNx { key, value, ttl_ms } => {
            if live(data, &key).is_some() {
                return Reply::Int(0);
            }
            data.insert(
                key,
                Entry {
                    value: Value::Str(value),
                    expires: ttl(ttl_ms),
                },
            );
            Reply::Int(1)
        }
        Cmd::Del { key } => Reply::Int(i64::from(
            live(data, &key).is_some() && data.remove(&key).is_some(),
        )),
        Cmd::Exists { key } => Reply::Int(i64::from(live(data, &key).is_some())),
        Cmd::IncrBy { key, by } => {
            let cur = match live(data, &key) {
                Some(Entry {
                    value: Value::Str(v),
                    ..
                }) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let next = cur.saturating_add(by);
            let expires = live(data, &key).and_then(|e| e.expires);
            data.insert(
                key,
                Entry {
                    value: Value::Str(next.to_string().into_bytes()),
                    expires,
                },
            );
            Reply::Int(next)
        }
        Cmd::PExpire { key, ttl_ms } => match live(data, &key) {
            Some(e) => {
                e.expires = ttl(Some(ttl_ms));
                Reply::Int(1)
            }
            None => Reply::Int(0),
        },
        Cmd::HSet { key, field, value } => {
            if hash(data, &key).is_none() {
                data.insert(
                    key.clone(),
                    Entry {
                        value: Value::Hash(BTreeMap::new()),
                        expires: None,
                    },
                );
            }
            let added = hash(data, &key).map(|h| h.insert(field, value).is_none());
            Reply::Int(i64::from(added.unwrap_or(false)))
        }
        Cmd::PExpireAt { key, at_ms } => {
            let left = at_ms - crate::ids::now_ms();
            if left <= 0 {
                return Reply::Int(i64::from(data.remove(&key).is_some()));
            }
            apply(
                data,
                Cmd::PExpire {
                    key,
                    ttl_ms: left as u64,
                },
            )
        }
        Cmd::HMGet { key, fields } => Reply::Array(
            fields
                .into_iter()
                .map(|f| match hash(data, &key).and_then(|h| h.get(&f)) {
                    Some(v) => Reply::Bytes(v.clone()),
                    None => Reply::Nil,
                })
                .collect(),
        ),
        Cmd::HSetMany { key, pairs } => Reply::Int(
            pairs
                .into_iter()
                .map(|(field, value)| {
                    apply(
                        data,
                        Cmd::HSet {
                            key: key.clone(),
                            field,
                            value,
                        },
                    )
                    .as_int()
                })
                .sum(),
        ),
        Cmd::SAdd { key, members } => {
            if !matches!(
                live(data, &key),
                Some(Entry {
                    value: Value::Set(_),
                    ..
                })
            ) {
                data.insert(
                    key.clone(),
                    Entry {
                        value: Value::Set(Default::default()),
                        expires: None,
                    },
                );
            }
            let Some(Entry {
                value: Value::Set(set),
                ..
            }) = live(data, &key)
            else {
                return Reply::Int(0);
            };
            Reply::Int(
                members
                    .into_iter()
                    .filter(|m| set.insert(m.clone()))
                    .count() as i64,
            )
        }
        Cmd::SMIsMember { key, members } => {
            let set = match live(data, &key) {
                Some(Entry {
                    value: Value::Set(set),
                    ..
                }) => Some(&*set),
                _ => None,
            };
            Reply::Array(
                members
                    .iter()
                    .map(|m| Reply::Int(i64::from(set.is_some_and(|s| s.contains(m)))))
                    .collect(),
            )
        }
        Cmd::HSetNx { key, field, value } => {
            let exists = hash(data, &key).is_some_and(|h| h.contains_key(&field));
            if exists {
                Reply::Int(0)
            } else {
                apply(data, Cmd::HSet { key, field, value })
            }
        }
        Cmd::HGet { key, field } => match hash(data, &key).and_then(|h| h.get(&field)) {
            Some(v) => Reply::Bytes(v.clone()),
            None => Reply::Nil,
        },
        Cmd::HGetAll { key } => Reply::Pairs(
            hash(data, &key)
                .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        ),
        Cmd::HDel { key, field } => {
            let removed = hash(data, &key).is_some_and(|h| h.remove(&field).is_some());
            if hash(data, &key).is_some_and(|h| h.is_empty()) {
                data.remove(&key);
            }
            Reply::Int(i64::from(removed))
        }
        Cmd::HLen { key } => Reply::Int(hash(data, &key).map_or(0, |h| h.len() as i64)),
        // The whole hash in one step (cursor 0 at once).
        Cmd::HScanPrefix { key, prefix, .. } => {
            let mut fields: Vec<String> = hash(data, &key)
                .map(|h| {
                    h.keys()
                        .filter(|k| k.starts_with(&prefix))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            fields.sort();
            Reply::Array(vec![
                Reply::Bytes(b"0".to_vec()),
                Reply::Array(
                    fields
                        .into_iter()
                        .map(|f| Reply::Bytes(f.into_bytes()))
                        .collect(),
                ),
            ])
        }
        Cmd::ZAddMany { key, members } => Reply::Int(
            members
                .into_iter()
                .map(|(score, member)| {
                    let key = key.clone();
                    apply(data, Cmd::ZAdd { key, score, member }).as_int()
                })
                .sum(),
        ),
        Cmd::ZRemMany { key, members } => Reply::Int(
            members
                .into_iter()
                .map(|member| {
                    let key = key.clone();
                    apply(data, Cmd::ZRem { key, member }).as_int()
                })
                .sum(),
        ),
        Cmd::ZAdd { key, score, member } => {
            if zset(data, &key).is_none() {
                data.insert(
                    key.clone(),
                    Entry {
                        value: Value::ZSet(Vec::new()),
                        expires: None,
                    },
                );
            }
            let Some(z) = zset(data, &key) else {
                return Reply::Int(0);
            };
            let existed = z.iter().position(|(_, m)| *m == member);
            if let Some(i) = existed {
                z.remove(i);
            }
            let at = z.partition_point(|(s, m)| (*s, m.as_slice()) < (score, member.as_slice()));
            z.insert(at, (score, member));
            Reply::Int(i64::from(existed.is_none()))
        }
        Cmd::ZRangeByScore {
            key,
            min,
            max,
            limit,
        } => Reply::Array(
            zset(data, &key)
                .map(|z| {
                    z.iter()
                        .filter(|(s, _)| *s >= min && *s <= max)
                        .take(limit.unwrap_or(usize::MAX))
                        .map(|(_, m)| Reply::Bytes(m.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Cmd::ZRevRange { key, start, stop } => Reply::Array(
            zset(data, &key)
                .and_then(|z| {
                    let (s, e) = rank_range(z.len(), start, stop)?;
                    Some(
                        z.iter()
                            .rev()
                            .skip(s)
                            .take(e - s + 1)
                            .map(|(_, m)| Reply::Bytes(m.clone()))
                            .collect(),
                    )
                })
                .unwrap_or_default(),
        ),
        Cmd::ZRem { key, member } => {
            let removed = zset(data, &key).is_some_and(|z| {
                let before = z.len();
                z.retain(|(_, m)| *m != member);
                z.len() != before
            });
            Reply::Int(i64::from(removed))
        }
        Cmd::ZCard { key } => Reply::Int(zset(data, &key).map_or(0, |z| z.len() as i64)),
        Cmd::ZRemRangeByRank { key, start, stop } => Reply::Int(
            zset(data, &key)
                .and_then(|z| {
                    let (s, e) = rank_range(z.len(), start, stop)?;
                    z.drain(s..=e);
                    Some((e - s + 1) as i64)
                })
                .unwrap_or(0),
        ),
    }
}
