//! Fewer commands for the same write: the `ZADD`s (and the `ZREM`s) that one write makes to one
//! sorted set become one multi-member command ([`Cmd::ZAddMany`], [`Cmd::ZRemMany`]) at the place
//! of the first. Inside a guarded write (a Lua script on Redis) every `redis.call` costs about as
//! much as the command itself, so a batch that adds many members to a few shared indexes (the
//! notifier's group commits) does markedly less work.
//!
//! Moving a later add or remove up to the first one is invisible only when nothing in between
//! could tell: so a key is coalesced only when every command of the write on it is a `ZADD`,
//! `ZREM`, `ZREMRANGEBYRANK` or `PEXPIRE` (no read, no other write), no member is both added and
//! removed, and every trim (`ZREMRANGEBYRANK`) comes after all its adds and removes (a trim
//! between two adds keeps the later one). Trims and expiries are never moved; adds and removes
//! only move earlier, so they stay before the trims and expiries they preceded.

use std::collections::{HashMap, HashSet};

use super::Cmd;

/// Scored members of a `ZADD`, in order.
type Scored = Vec<(f64, Vec<u8>)>;

/// What the write does to one key, in order.
#[derive(Default)]
struct Plan {
    adds: Scored,
    rems: Vec<Vec<u8>>,
    /// Something other than an add, a remove, a trim or an expiry touches the key, or an add or
    /// a remove follows a trim.
    other: bool,
    trimmed: bool,
}

impl Plan {
    fn coalescible(&self) -> bool {
        if self.other {
            return false;
        }
        let added: HashSet<&[u8]> = self.adds.iter().map(|(_, m)| m.as_slice()).collect();
        !self.rems.iter().any(|m| added.contains(m.as_slice()))
    }
}

/// `cmds` with the adds to one sorted set (and the removes from one) merged where that changes
/// nothing (see the module doc), and, for each command of `cmds`, the index of the result that
/// answers it (for an add or a remove that was merged, the merged command: one count for all).
pub fn coalesce_zset_writes(cmds: Vec<Cmd>) -> (Vec<Cmd>, Vec<usize>) {
    let mut plans: HashMap<String, Plan> = HashMap::new();
    for c in &cmds {
        for key in c.keys() {
            let plan = plans.entry(key.to_string()).or_default();
            match c {
                Cmd::ZAdd { score, member, .. } => plan.adds.push((*score, member.clone())),
                Cmd::ZRem { member, .. } => plan.rems.push(member.clone()),
                Cmd::ZRemRangeByRank { .. } => plan.trimmed = true,
                Cmd::PExpire { .. } => {}
                _ => plan.other = true,
            }
            if plan.trimmed && matches!(c, Cmd::ZAdd { .. } | Cmd::ZRem { .. }) {
                plan.other = true;
            }
        }
    }
    // The keys worth merging: coalescible, and added to (or removed from) more than once.
    let mut adds: HashMap<String, Option<Scored>> = HashMap::new();
    let mut rems: HashMap<String, Option<Vec<Vec<u8>>>> = HashMap::new();
    for (key, plan) in plans {
        if !plan.coalescible() {
            continue;
        }
        if plan.adds.len() > 1 {
            adds.insert(key.clone(), Some(plan.adds));
        }
        if plan.rems.len() > 1 {
            rems.insert(key, Some(plan.rems));
        }
    }
    if adds.is_empty() && rems.is_empty() {
        let at = (0..cmds.len()).collect();
        return (cmds, at);
    }
    let mut out = Vec::with_capacity(cmds.len());
    let mut at = Vec::with_capacity(cmds.len());
    let mut first_add: HashMap<String, usize> = HashMap::new();
    let mut first_rem: HashMap<String, usize> = HashMap::new();
    for c in cmds {
        match c {
            Cmd::ZAdd { key, score, member } => match adds.get_mut(&key) {
                Some(members) => match members.take() {
                    Some(members) => {
                        first_add.insert(key.clone(), out.len());
                        at.push(out.len());
                        out.push(Cmd::ZAddMany { key, members });
                    }
                    None => at.push(first_add[&key]),
                },
                None => {
                    at.push(out.len());
                    out.push(Cmd::ZAdd { key, score, member });
                }
            },
            Cmd::ZRem { key, member } => match rems.get_mut(&key) {
                Some(members) => match members.take() {
                    Some(members) => {
                        first_rem.insert(key.clone(), out.len());
                        at.push(out.len());
                        out.push(Cmd::ZRemMany { key, members });
                    }
                    None => at.push(first_rem[&key]),
                },
                None => {
                    at.push(out.len());
                    out.push(Cmd::ZRem { key, member });
                }
            },
            other => {
                at.push(out.len());
                out.push(other);
            }
        }
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::store::{Kv, MemoryKv, Reply};

    const KEYS: [&str; 3] = ["k1", "k2", "k3"];
    const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

    fn cmd() -> impl Strategy<Value = Cmd> {
        let key = (0..KEYS.len()).prop_map(|i| KEYS[i].to_string());
        let member = (0..MEMBERS.len()).prop_map(|i| MEMBERS[i].as_bytes().to_vec());
        prop_oneof![
            4 => (key.clone(), 0..5i32, member.clone()).prop_map(|(key, s, member)| Cmd::ZAdd {
                key,
                score: f64::from(s),
                member,
            }),
            2 => (key.clone(), member).prop_map(|(key, member)| Cmd::ZRem { key, member }),
            1 => key.clone().prop_map(|key| Cmd::ZRemRangeByRank { key, start: 0, stop: -3 }),
            1 => key.clone().prop_map(|key| Cmd::PExpire { key, ttl_ms: 60_000 }),
            1 => key.prop_map(|key| Cmd::ZRangeByScore {
                key,
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
                limit: None,
            }),
        ]
    }

    async fn state(kv: &MemoryKv) -> Vec<Reply> {
        let reads = KEYS
            .iter()
            .map(|k| Cmd::ZRangeByScore {
                key: k.to_string(),
                min: f64::NEG_INFINITY,
                max: f64::INFINITY,
                limit: None,
            })
            .collect();
        kv.exec(reads).await.unwrap()
    }

    fn same_outcome(cmds: Vec<Cmd>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (plain, merged) = (MemoryKv::new(), MemoryKv::new());
            let replies = plain.exec(cmds.clone()).await.unwrap();
            let (fewer, at) = coalesce_zset_writes(cmds.clone());
            assert!(fewer.len() <= cmds.len());
            assert_eq!(at.len(), cmds.len());
            let merged_replies = merged.exec(fewer.clone()).await.unwrap();
            assert_eq!(
                state(&plain).await,
                state(&merged).await,
                "{cmds:?} → {fewer:?}"
            );
            // A command that was not merged answers as before, where `at` says.
            for (i, c) in cmds.iter().enumerate() {
                if !matches!(fewer[at[i]], Cmd::ZAddMany { .. } | Cmd::ZRemMany { .. }) {
                    assert_eq!(replies[i], merged_replies[at[i]], "reply of {c:?}");
                }
            }
        });
    }

    proptest! {
        #[test]
        fn merged_writes_leave_the_same_sets(cmds in prop::collection::vec(cmd(), 0..24)) {
            same_outcome(cmds);
        }
    }

    #[test]
    fn shared_indexes_become_one_command_each() {
        let add = |key: &str, s: f64, m: &str| Cmd::ZAdd {
            key: key.into(),
            score: s,
            member: m.as_bytes().to_vec(),
        };
        let cmds = vec![
            add("all", 1.0, "x"),
            Cmd::ZRem {
                key: "due".into(),
                member: b"j1".to_vec(),
            },
            add("all", 2.0, "y"),
            Cmd::ZRemRangeByRank {
                key: "all".into(),
                start: 0,
                stop: -11,
            },
            Cmd::ZRem {
                key: "due".into(),
                member: b"j2".to_vec(),
            },
            add("lane", 1.0, "f1"),
            Cmd::ZRangeByScore {
                key: "lane".into(),
                min: 0.0,
                max: 9.0,
                limit: Some(1),
            },
            add("lane", 2.0, "f2"),
        ];
        let (fewer, at) = coalesce_zset_writes(cmds.clone());
        assert_eq!(fewer.len(), 6, "{fewer:?}");
        assert!(
            matches!(&fewer[0], Cmd::ZAddMany { key, members } if key == "all" && members.len() == 2)
        );
        assert!(
            matches!(&fewer[1], Cmd::ZRemMany { key, members } if key == "due" && members.len() == 2)
        );
        assert!(
            matches!(&fewer[2], Cmd::ZRemRangeByRank { .. }),
            "the trim stays after the adds"
        );
        assert_eq!(
            at,
            vec![0, 1, 0, 2, 1, 3, 4, 5],
            "a key that is read is left alone"
        );
        same_outcome(cmds);
    }
}
