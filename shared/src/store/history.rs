//! [`Histories`]: the firing history of each OU, typed: a sorted set per OU and [`TriggerKind`]
//! (`Keys::history`, score = fired time, members = JSON [`HistoryEntry`]s). The processor
//! records a firing here once the fired topic acknowledged it ([`Histories::record`]); the
//! gateway's history routes read it, newest first, by rank ([`Histories::newest`]).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

use leadstream_domain::fired::{TriggerFired, TriggerKind};
use leadstream_domain::firing::HistoryEntry;

use crate::keys::Keys;
use crate::store::{coalesce_zset_writes, exec_one, Cmd, Reply, Store, StoreError};

#[derive(Clone)]
pub struct Histories {
    kv: Store,
    keys: Keys,
}

impl Histories {
    pub fn new(kv: Store, keys: Keys) -> Histories {
        Histories { kv, keys }
    }

    /// Add the entries of acknowledged firings to their OUs' histories and trim each history
    /// written to its newest `cap` entries, in one round trip. Idempotent: an entry is a
    /// function of its fired record, so writing it again adds nothing.
    pub async fn record<'a>(
        &self,
        fired: impl IntoIterator<Item = &'a TriggerFired>,
        cap: usize,
    ) -> Result<(), StoreError> {
        let mut cmds = Vec::new();
        let mut written = BTreeSet::new();
        for f in fired {
            let key = self.keys.history(&f.ou_id, f.kind.as_str());
            let member = HistoryEntry::of(f).encode().map_err(StoreError::Corrupt)?;
            cmds.push(Cmd::ZAdd {
                key: key.clone(),
                score: f.fired_at_ms as f64,
                member,
            });
            written.insert(key);
        }
        if cmds.is_empty() {
            return Ok(());
        }
        let keep = isize::try_from(cap).unwrap_or(isize::MAX - 1);
        cmds.extend(written.into_iter().map(|key| Cmd::ZRemRangeByRank {
            key,
            start: 0,
            stop: -(keep + 1),
        }));
        // One `ZADD` per history instead of one per firing.
        self.kv.exec(coalesce_zset_writes(cmds).0).await?;
        Ok(())
    }

    /// Up to `count` entries of the OU's `kind` history from rank `from` (0 = the newest),
    /// newest first; `None` for an entry that does not decode as `T` (written by another
    /// version), so ranks still count it.
    pub async fn newest<T: DeserializeOwned>(
        &self,
        ou: &str,
        kind: TriggerKind,
        from: usize,
        count: usize,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let (Ok(start), Ok(count)) = (isize::try_from(from), isize::try_from(count)) else {
            return Ok(Vec::new()); // no sorted set holds that many entries
        };
        if count == 0 {
            return Ok(Vec::new());
        }
        let cmd = Cmd::ZRevRange {
            key: self.keys.history(ou, kind.as_str()),
            start,
            stop: start.saturating_add(count - 1),
        };
        let reply = exec_one(&*self.kv, cmd).await?;
        Ok(reply
            .into_array()
            .into_iter()
            .filter_map(Reply::into_bytes)
            .map(|m| serde_json::from_slice(&m).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryKv;

    #[tokio::test]
    async fn newest_first_by_rank_unreadable_kept_as_none() {
        let kv: Store = Arc::new(MemoryKv::new());
        let keys = Keys::new("t");
        let add = |score: f64, member: &str| Cmd::ZAdd {
            key: keys.history("ou1", "milestone"),
            score,
            member: member.as_bytes().to_vec(),
        };
        kv.exec(vec![add(1.0, "1"), add(2.0, "not json"), add(3.0, "3")])
            .await
            .unwrap();
        let h = Histories::new(kv, keys);
        let all: Vec<Option<i64>> = h
            .newest("ou1", TriggerKind::Milestone, 0, 10)
            .await
            .unwrap();
        assert_eq!(all, vec![Some(3), None, Some(1)]);
        let page: Vec<Option<i64>> = h.newest("ou1", TriggerKind::Milestone, 1, 1).await.unwrap();
        assert_eq!(page, vec![None]);
        let other: Vec<Option<i64>> = h.newest("ou1", TriggerKind::Sequence, 0, 10).await.unwrap();
        assert!(other.is_empty(), "kinds are kept apart");
        let past: Vec<Option<i64>> = h
            .newest("ou1", TriggerKind::Milestone, usize::MAX, 10)
            .await
            .unwrap();
        assert!(past.is_empty());
    }

    fn fired(id: &str, ou: &str, at: i64) -> TriggerFired {
        TriggerFired {
            fired_id: id.into(),
            org_id: "org".into(),
            ou_id: ou.into(),
            lead_id: "ld_1".into(),
            trigger_id: "trg_1".into(),
            trigger_name: "hot".into(),
            kind: TriggerKind::Milestone,
            event_id: "evt_1".into(),
            fired_at_ms: at,
            score: 10,
            payload: serde_json::json!({}),
            targets: Default::default(),
        }
    }

    #[tokio::test]
    async fn record_is_idempotent_and_keeps_the_newest_cap() {
        let h = Histories::new(Arc::new(MemoryKv::new()), Keys::new("t"));
        let all = [
            fired("f1", "ou1", 1),
            fired("f2", "ou1", 2),
            fired("f3", "ou2", 3),
        ];
        h.record(&all, 10).await.unwrap();
        h.record(&all[..1], 10).await.unwrap();
        let ids = |v: Vec<Option<HistoryEntry>>| -> Vec<String> {
            v.into_iter().map(|e| e.unwrap().id).collect()
        };
        let ou1 = h
            .newest("ou1", TriggerKind::Milestone, 0, 10)
            .await
            .unwrap();
        assert_eq!(ids(ou1), ["f2", "f1"], "written again: nothing added");
        h.record(&[fired("f4", "ou1", 4)], 2).await.unwrap();
        let ou1 = h
            .newest("ou1", TriggerKind::Milestone, 0, 10)
            .await
            .unwrap();
        assert_eq!(ids(ou1), ["f4", "f2"], "trimmed to the newest 2");
        let ou2 = h
            .newest("ou2", TriggerKind::Milestone, 0, 10)
            .await
            .unwrap();
        assert_eq!(ids(ou2), ["f3"]);
    }
}
