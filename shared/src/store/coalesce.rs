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

/// What the write does to one key: where it adds and removes members, in order.
#[derive(Default)]
struct Plan {
    adds: Vec<usize>,
    rems: Vec<usize>,
    /// Something other than an add, a remove, a trim or an expiry touches the key, or an add or
    /// a remove follows a trim.
    blocked: bool,
    trimmed: bool,
}

/// No group.
const NONE: usize = usize::MAX;

/// `cmds` with the adds to one sorted set (and the removes from one) merged where that changes
/// nothing (see the module doc), and, for each command of `cmds`, the index of the result that
/// answers it (for an add or a remove that was merged, the merged command: one count for all).
/// Keys and members are moved, never copied.
pub fn coalesce_zset_writes(cmds: Vec<Cmd>) -> (Vec<Cmd>, Vec<usize>) {
    // The group (of commands to merge) of each command, `NONE` for most.
    let mut group_of = vec![NONE; cmds.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    {
        let mut plans: HashMap<&str, Plan> = HashMap::new();
        for (i, c) in cmds.iter().enumerate() {
            match c {
                Cmd::ZAdd { key, .. } | Cmd::ZRem { key, .. } => {
                    let plan = plans.entry(key).or_default();
                    plan.blocked |= plan.trimmed;
                    if matches!(c, Cmd::ZAdd { .. }) {
                        plan.adds.push(i);
                    } else {
                        plan.rems.push(i);
                    }
                }
                Cmd::ZRemRangeByRank { key, .. } => plans.entry(key).or_default().trimmed = true,
                Cmd::PExpire { .. } => {}
                other => {
                    for key in other.keys() {
                        plans.entry(key).or_default().blocked = true;
                    }
                }
            }
        }
        let member = |i: usize| match &cmds[i] {
            Cmd::ZAdd { member, .. } | Cmd::ZRem { member, .. } => member.as_slice(),
            _ => &[],
        };
        for plan in plans.into_values() {
            if plan.blocked {
                continue;
            }
            if !plan.adds.is_empty() && !plan.rems.is_empty() {
                let added: HashSet<&[u8]> = plan.adds.iter().map(|&i| member(i)).collect();
                if plan.rems.iter().any(|&i| added.contains(member(i))) {
                    continue;
                }
            }
            for idxs in [plan.adds, plan.rems] {
                if idxs.len() > 1 {
                    for &i in &idxs {
                        group_of[i] = groups.len();
                    }
                    groups.push(idxs);
                }
            }
        }
    }
    if groups.is_empty() {
        let at = (0..cmds.len()).collect();
        return (cmds, at);
    }
    let mut slots: Vec<Option<Cmd>> = cmds.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    let mut at = Vec::with_capacity(slots.len());
    // Where each group's merged command went.
    let mut placed = vec![NONE; groups.len()];
    for i in 0..slots.len() {
        let g = group_of[i];
        if g == NONE {
            at.push(out.len());
            out.extend(slots[i].take());
            continue;
        }
        if placed[g] != NONE {
            at.push(placed[g]);
            continue;
        }
        // The group's first command (its indices ascend): merge the others into it.
        let rest = &groups[g][1..];
        let merged = match slots[i].take() {
            Some(Cmd::ZAdd { key, score, member }) => {
                let mut members = Vec::with_capacity(rest.len() + 1);
                members.push((score, member));
                for &j in rest {
                    if let Some(Cmd::ZAdd { score, member, .. }) = slots[j].take() {
                        members.push((score, member));
                    }
                }
                Cmd::ZAddMany { key, members }
            }
            Some(Cmd::ZRem { key, member }) => {
                let mut members = Vec::with_capacity(rest.len() + 1);
                members.push(member);
                for &j in rest {
                    if let Some(Cmd::ZRem { member, .. }) = slots[j].take() {
                        members.push(member);
                    }
                }
                Cmd::ZRemMany { key, members }
            }
            // Groups hold adds or removes only.
            other => {
                at.push(out.len());
                out.extend(other);
                continue;
            }
        };
        placed[g] = out.len();
        at.push(out.len());
        out.push(merged);
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
