//! [`LeadStates`]: where the processor keeps a lead's state ([`LeadRecord`], encoded by the
//! domain crate), read by the gateway's lead routes, admin tools and tests.

use leadstream_domain::ids::{LeadId, OuId};
use leadstream_domain::lead::LeadRecord;

use crate::kafka::murmur2_partition;
use crate::keys::{Keys, PartitionKeys};
use crate::store::{Cmd, Reply, Store, StoreError};

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
    pub fn partition_of(&self, ou: OuId<'_>, lead: LeadId<'_>) -> i32 {
        murmur2_partition(
            leadstream_domain::kafka_key(ou, lead).as_bytes(),
            self.partitions,
        )
    }

    /// The lead's state, or `None` when nothing was applied for it. Also looks where earlier
    /// versions kept it (one JSON key per lead) for leads not written since an upgrade.
    pub async fn get(
        &self,
        ou: OuId<'_>,
        lead: LeadId<'_>,
    ) -> Result<Option<LeadRecord>, StoreError> {
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
