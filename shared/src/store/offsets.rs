//! The processor's applied offsets: per partition of the events topic, the last offset whose
//! effects are in the store. It is the processor's real progress — what a processor resumes
//! from after a crash or a rebalance; the consumer group's committed offsets only follow it.
//!
//! The processor writes it in each batch's atomic write (`processor::engine`, beside the lead
//! states under the partition's hash tag, [`crate::keys::PartitionKeys::applied`]). Readers
//! outside that write — `leadstream admin lag` — use [`AppliedOffsets`], which also finds the
//! offset where versions before partition hash tags kept it ([`Keys::legacy_applied`]), so an
//! installation that has not written a partition since an upgrade still shows its progress.

use std::collections::BTreeMap;

use crate::keys::Keys;
use crate::store::{Cmd, Reply, Store, StoreError};

/// The applied offsets of one events topic.
#[derive(Clone)]
pub struct AppliedOffsets {
    store: Store,
    keys: Keys,
    topic: String,
}

impl AppliedOffsets {
    pub fn new(store: Store, keys: Keys, topic: impl Into<String>) -> AppliedOffsets {
        AppliedOffsets {
            store,
            keys,
            topic: topic.into(),
        }
    }

    /// Each partition's applied offset (`None`: nothing applied yet, or not a number), read
    /// where this version keeps it and, for partitions not written since an upgrade, where
    /// earlier versions kept it. One round trip (on a Redis Cluster, one per node holding them).
    pub async fn get(&self, partitions: &[i32]) -> Result<BTreeMap<i32, Option<i64>>, StoreError> {
        let cmds = partitions
            .iter()
            .flat_map(|p| {
                [
                    Cmd::Get {
                        key: self.keys.partition(&self.topic, *p).applied(),
                    },
                    Cmd::Get {
                        key: self.keys.legacy_applied(&self.topic, *p),
                    },
                ]
            })
            .collect();
        let mut replies = self.store.exec(cmds).await?.into_iter();
        let mut out = BTreeMap::new();
        for p in partitions {
            let now = replies.next().and_then(Reply::into_bytes);
            let old = replies.next().and_then(Reply::into_bytes);
            out.insert(*p, now.or(old).as_deref().and_then(parse_offset));
        }
        Ok(out)
    }
}

fn parse_offset(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The same applied offset spelled differently (`41` → `+41` → `+041` → …): every reader
/// parses it as the same number, but the processor's write guard, which compares the stored
/// bytes with the ones it wrote last, fails. A rescore's switch writes lead states of a
/// partition outside the live engine and respells the applied offset in the same atomic write,
/// so the engine drops what it cached of the partition and reads it again.
pub fn respell(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 1);
    match raw.first() {
        Some(b'+') => {
            out.extend_from_slice(b"+0");
            out.extend_from_slice(&raw[1..]);
        }
        _ => {
            out.push(b'+');
            out.extend_from_slice(raw);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;
    use std::sync::Arc;

    fn set(key: String, v: &str) -> Cmd {
        Cmd::Set {
            key,
            value: v.as_bytes().to_vec(),
            ttl_ms: None,
        }
    }

    async fn reads_both_layouts(kv: MemoryKv, keys: Keys) {
        let store: Store = Arc::new(kv);
        let t = "ev";
        // 0: this layout only; 1: both (this one wins); 2: the layout before partition hash
        // tags only; 3: nothing; 4: not a number.
        store
            .exec(vec![
                set(keys.partition(t, 0).applied(), "41"),
                set(keys.partition(t, 1).applied(), "7"),
                set(keys.legacy_applied(t, 1), "3"),
                set(keys.legacy_applied(t, 2), "12"),
                set(keys.partition(t, 4).applied(), "x"),
                set(keys.partition("other", 3).applied(), "99"),
            ])
            .await
            .unwrap();
        let got = AppliedOffsets::new(store, keys, t)
            .get(&[0, 1, 2, 3, 4])
            .await
            .unwrap();
        let want: BTreeMap<i32, Option<i64>> = [
            (0, Some(41)),
            (1, Some(7)),
            (2, Some(12)),
            (3, None),
            (4, None),
        ]
        .into();
        assert_eq!(got, want);
    }

    #[test]
    fn a_respelled_offset_reads_the_same_and_differs_in_bytes() {
        let mut raw = b"41".to_vec();
        for _ in 0..5 {
            let next = respell(&raw);
            assert_ne!(next, raw);
            assert_eq!(parse_offset(&next), Some(41));
            raw = next;
        }
        assert_eq!(raw, b"+000041");
    }

    #[tokio::test]
    async fn applied_offsets_come_from_either_layout_newest_first() {
        reads_both_layouts(MemoryKv::new(), Keys::new("t")).await;
    }

    /// A plain read of many partitions' slots is no atomic write: it works on a cluster.
    #[tokio::test]
    async fn applied_offsets_read_across_slots_on_a_cluster() {
        reads_both_layouts(MemoryKv::cluster_strict(), Keys::for_cluster("t")).await;
    }
}
