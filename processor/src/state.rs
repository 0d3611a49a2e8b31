//! What the processor keeps per lead and the history entries it writes. The gateway reads both
//! to answer `GET /leads/{id}`, `/milestone-events` and `/sequence-events`.
//!
//! A lead's state lives in its events partition's `leads` hash (see
//! [`leadstream_shared::keys::PartitionKeys`]) as one byte `1` followed by the
//! [postcard](https://postcard.jamesmunns.com/) encoding of [`LeadRecord`]: about a third of the
//! JSON it replaced, and cheaper to write and read. States written as JSON by earlier versions
//! (they begin with `{`) are still read.

use serde::{Deserialize, Serialize};

use leadstream_shared::fired::TriggerFired;
use leadstream_shared::ids::rfc3339_ms;
use leadstream_shared::kafka::murmur2_partition;
use leadstream_shared::keys::{Keys, PartitionKeys};
use leadstream_shared::store::{Cmd, Reply, Store, StoreError};

use crate::scoring::LeadScore;
use crate::sequence::SequenceBuffer;

/// A lead's processing state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LeadRecord {
    #[serde(default)]
    pub score: LeadScore,
    #[serde(default)]
    pub seq: SequenceBuffer,
    /// Event time of the newest event applied.
    #[serde(default)]
    pub last_event_at_ms: Option<i64>,
    /// Events applied (duplicates not counted).
    #[serde(default)]
    pub events: u64,
}

/// The first byte of a binary state (a JSON state begins with `{`).
const BINARY_V1: u8 = 1;

impl LeadRecord {
    /// The stored form: [`BINARY_V1`] then postcard.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let body = postcard::to_allocvec(self).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(BINARY_V1);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a stored state, binary or (written by earlier versions) JSON.
    pub fn decode(bytes: &[u8]) -> Result<LeadRecord, String> {
        match bytes.first() {
            Some(&BINARY_V1) => postcard::from_bytes(&bytes[1..]).map_err(|e| e.to_string()),
            Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Some(b) => Err(format!("unknown state encoding (first byte {b:#04x})")),
            None => Err("empty state".into()),
        }
    }
}

/// Where the processor keeps a lead's state, for readers (the gateway's lead routes, admin
/// tools, tests): the lead's events partition follows from its Kafka key exactly as the
/// producers' murmur2 partitioner places it, so one read finds it.
#[derive(Clone)]
pub struct LeadStates {
    store: Store,
    keys: Keys,
    topic: String,
    partitions: i32,
}

impl LeadStates {
    /// `partitions`: the events topic's partition count.
    pub fn new(store: Store, keys: Keys, topic: impl Into<String>, partitions: i32) -> LeadStates {
        LeadStates {
            store,
            keys,
            topic: topic.into(),
            partitions: partitions.max(1),
        }
    }

    /// The events partition that owns a lead.
    pub fn partition_of(&self, ou: &str, lead: &str) -> i32 {
        murmur2_partition(
            leadstream_shared::kafka_key(ou, lead).as_bytes(),
            self.partitions,
        )
    }

    /// The lead's state, or `None` when nothing was applied for it. Also looks where earlier
    /// versions kept it (one JSON key per lead) for leads not written since an upgrade.
    pub async fn get(&self, ou: &str, lead: &str) -> Result<Option<LeadRecord>, StoreError> {
        let pk = self
            .keys
            .partition(&self.topic, self.partition_of(ou, lead));
        let replies = self
            .store
            .exec(vec![
                Cmd::HGet {
                    key: pk.leads(),
                    field: PartitionKeys::lead_field(ou, lead),
                },
                Cmd::Get {
                    key: self.keys.lead_state(ou, lead),
                },
            ])
            .await?;
        let found = replies.into_iter().find_map(Reply::into_bytes);
        found
            .map(|b| LeadRecord::decode(&b).map_err(StoreError::Corrupt))
            .transpose()
    }
}

/// One firing, as kept in the milestone / sequence history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub id: String,
    pub trigger_id: String,
    pub trigger_name: String,
    pub lead_id: String,
    pub event_id: String,
    pub score: i64,
    pub fired_at: String,
    pub payload: serde_json::Value,
}

impl HistoryEntry {
    /// The entry of a firing: a function of the fired record alone, so writing it again (after
    /// a crash) adds nothing to the history's sorted set.
    pub fn of(f: &TriggerFired) -> HistoryEntry {
        HistoryEntry {
            id: f.fired_id.clone(),
            trigger_id: f.trigger_id.clone(),
            trigger_name: f.trigger_name.clone(),
            lead_id: f.lead_id.clone(),
            event_id: f.event_id.clone(),
            score: f.score,
            fired_at: rfc3339_ms(f.fired_at_ms),
            payload: f.payload.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_json_states_read_back() {
        let mut rec = LeadRecord {
            events: 3,
            last_event_at_ms: Some(1_700_000_000_000),
            ..Default::default()
        };
        rec.score.last_event_ms = Some(5);
        let bin = rec.encode().unwrap();
        assert_eq!(bin[0], BINARY_V1);
        assert_eq!(LeadRecord::decode(&bin).unwrap(), rec);
        let json = serde_json::to_vec(&rec).unwrap();
        assert_eq!(LeadRecord::decode(&json).unwrap(), rec);
        assert!(
            bin.len() * 2 < json.len(),
            "{} vs {}",
            bin.len(),
            json.len()
        );
        assert!(LeadRecord::decode(b"").is_err());
        assert!(LeadRecord::decode(&[7, 1, 2]).is_err());
        assert!(LeadRecord::decode(&[BINARY_V1, 0xff]).is_err());
    }
}
