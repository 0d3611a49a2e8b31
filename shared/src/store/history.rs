//! [`Histories`]: the firing history of each OU, typed: a sorted set per OU and [`TriggerKind`]
//! (`Keys::history`, score = fired time, members = JSON entries). The processor appends to it
//! once a firing is acknowledged by the fired topic; the gateway's history routes read it here,
//! newest first, by rank.

use serde::de::DeserializeOwned;

use leadstream_domain::fired::TriggerKind;

use crate::keys::Keys;
use crate::store::{exec_one, Cmd, Reply, Store, StoreError};

#[derive(Clone)]
pub struct Histories {
    kv: Store,
    keys: Keys,
}

impl Histories {
    pub fn new(kv: Store, keys: Keys) -> Histories {
        Histories { kv, keys }
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
}
