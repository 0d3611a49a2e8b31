//! The embedded broker of `leadstream dev`: librdkafka's mock cluster, which serves the real
//! Kafka protocol on a loopback port, so the services talk to it exactly as to a real cluster.
//!
//! The mock cluster supports what the services use — produce with the idempotent producer,
//! fetch, consumer groups with subscribe and offset commits, metadata — but not the
//! `CreateTopics` admin request. So dev creates every topic itself through the mock API before
//! the services start; their own topic check then finds the topics in the metadata and sends no
//! `CreateTopics`. The cluster keeps everything in memory and must outlive every client: it is
//! dropped only after all three services have stopped.

use anyhow::Context as _;
use leadstream_shared::kafka::Topics;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running mock cluster (one broker).
pub struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Embedded {
    /// Start one mock broker on loopback.
    pub fn start() -> anyhow::Result<Embedded> {
        let cluster =
            MockCluster::new(1).context("cannot start the embedded Kafka mock cluster")?;
        Ok(Embedded { cluster })
    }

    /// Create the services' topics (the mock cluster does not serve `CreateTopics`).
    pub fn create_topics(&self, topics: &Topics, partitions: i32) -> anyhow::Result<()> {
        for topic in [
            &topics.events,
            &topics.fired,
            &topics.dlq,
            &topics.events_dlq,
        ] {
            self.cluster
                .create_topic(topic, partitions, 1)
                .with_context(|| format!("cannot create topic {topic} on the mock cluster"))?;
        }
        Ok(())
    }

    /// `host:port` of the mock broker, for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
