//! Reading what versions before partition hash tags kept: per-lead state keys and per-event
//! dedupe marks, for partitions not written since the upgrade (see [`Partition::legacy`]).

use std::collections::HashMap;

use leadstream_domain::ids::{LeadId, OuId};
use leadstream_shared::store::{Cmd, Reply, StoreError};

use super::{Engine, Input, Partition};

impl Engine {
    /// For a partition applied before the upgrade to partition hash tags: the states of leads
    /// not yet written since, and (for one dedupe TTL after the upgrade) the old dedupe marks.
    pub(super) async fn read_legacy(
        &self,
        part: &Partition,
        now: i64,
        inputs: &[Input],
        loaded: &mut HashMap<String, Option<Vec<u8>>>,
        seen_before: &mut [bool],
    ) -> Result<(), StoreError> {
        let missing: Vec<String> = loaded
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(f, _)| f.clone())
            .collect();
        let marks = now < part.legacy_marks_until;
        let mut cmds: Vec<Cmd> = missing
            .iter()
            .filter_map(|f| {
                let (ou, lead) = f.split_once('\u{1f}')?;
                Some(Cmd::Get {
                    key: self.keys.lead_state(OuId(ou), LeadId(lead)),
                })
            })
            .collect();
        if marks {
            cmds.extend(inputs.iter().map(|i| Cmd::Exists {
                key: self.keys.processed(&i.event.ou_id, &i.event.dedupe_id()),
            }));
        }
        if cmds.is_empty() {
            return Ok(());
        }
        let mut replies = self.kv().exec(cmds).await?.into_iter();
        for f in missing {
            if let Some(bytes) = replies.next().and_then(Reply::into_bytes) {
                loaded.insert(f, Some(bytes));
            }
        }
        if marks {
            for seen in seen_before.iter_mut() {
                *seen |= replies.next().is_some_and(|r| r.as_int() == 1);
            }
        }
        Ok(())
    }
}
