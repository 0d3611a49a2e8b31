//! librdkafka statistics as Prometheus metrics, and the produce counters of every producer.
//!
//! librdkafka emits a statistics document every `statistics.interval.ms` (5000 by default here;
//! `LEADSTREAM_KAFKA_CONFIG=statistics.interval.ms=…` changes it, 0 turns it off) to the client
//! context. [`StatsContext`] (producers, the notifier's consumer) and any context that calls
//! [`record`] (the processor's) turn it into the gauges and counters below ([`KafkaGauge`],
//! [`KafkaCounter`]). Labels stay few: `client` is the librdkafka handle name
//! (`leadstream#producer-1`), one per client in the process; `broker` is a broker's
//! `host:port`; `topic`/`partition` only on consumer lag.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

use crate::metric;

metric::define! {
    /// The gauges read from librdkafka's statistics.
    pub enum KafkaGauge: Gauge {
        /// Messages behind on a partition (high watermark − committed offset) as librdkafka last
        /// saw it; 0 for partitions not assigned here.
        ConsumerLag = "leadstream_kafka_consumer_lag" ["topic", "partition"],
        /// Average round-trip time to a broker over the last interval, in seconds.
        BrokerRtt = "leadstream_kafka_broker_rtt_seconds" ["client", "broker"],
        /// Messages waiting in the client's queues (producer: not yet acknowledged).
        QueueMessages = "leadstream_kafka_queue_messages" ["client"],
        /// Bytes of those messages.
        QueueBytes = "leadstream_kafka_queue_bytes" ["client"],
        /// Messages fetched but not yet handed to the application (consumers).
        FetchQueueMessages = "leadstream_kafka_fetch_queue_messages" ["client"],
    }
}

metric::define! {
    /// The counters read from librdkafka's statistics and those of every producer.
    pub enum KafkaCounter: Counter {
        /// Messages sent to brokers.
        TxMessages = "leadstream_kafka_tx_messages_total" ["client"],
        /// Messages received from brokers.
        RxMessages = "leadstream_kafka_rx_messages_total" ["client"],
        /// Request transmission (`tx`) and response (`rx`) errors, all brokers.
        RequestErrors = "leadstream_kafka_request_errors_total" ["client", "direction"],
        /// Requests that timed out, all brokers.
        RequestTimeouts = "leadstream_kafka_request_timeouts_total" ["client"],
        /// Records a broker acknowledged (every producer).
        Produced = "leadstream_kafka_produced_total" ["topic"],
        /// Records not acknowledged (every producer); `retryable` is `true` or `false`.
        ProduceErrors = "leadstream_kafka_produce_errors_total" ["topic", "retryable"],
        /// Producers replaced by a new one (a fatal error, or every publish failing; see
        /// `Publisher`); `fatal` is `true` or `false`.
        ProducerReplaced = "leadstream_kafka_producer_replaced_total" ["fatal"],
    }
}

/// The statistics interval unless `LEADSTREAM_KAFKA_CONFIG` sets one.
pub const DEFAULT_INTERVAL_MS: u32 = 5000;

/// A client context that records statistics (producers, and consumers without rebalance
/// logic of their own).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsContext;

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        record(&statistics);
    }
}

impl ConsumerContext for StatsContext {}

/// Record one statistics document.
pub fn record(s: &Statistics) {
    let client = s.name.clone();
    metric::gauge!(KafkaGauge::QueueMessages, client.clone()).set(s.msg_cnt as f64);
    metric::gauge!(KafkaGauge::QueueBytes, client.clone()).set(s.msg_size as f64);
    metric::counter!(KafkaCounter::TxMessages, client.clone()).absolute(s.txmsgs.max(0) as u64);
    metric::counter!(KafkaCounter::RxMessages, client.clone()).absolute(s.rxmsgs.max(0) as u64);
    let (mut txerrs, mut rxerrs, mut timeouts) = (0u64, 0u64, 0u64);
    for b in s.brokers.values() {
        txerrs += b.txerrs;
        rxerrs += b.rxerrs;
        timeouts += b.req_timeouts;
        // Logical brokers (the group coordinator alias) and bootstrap entries repeat a real one.
        if b.nodeid < 0 || b.source == "logical" {
            continue;
        }
        if let Some(rtt) = &b.rtt {
            if rtt.cnt > 0 {
                metric::gauge!(KafkaGauge::BrokerRtt, client.clone(), b.nodename.clone())
                    .set(rtt.avg as f64 / 1e6);
            }
        }
    }
    metric::counter!(KafkaCounter::RequestErrors, client.clone(), "tx").absolute(txerrs);
    metric::counter!(KafkaCounter::RequestErrors, client.clone(), "rx").absolute(rxerrs);
    metric::counter!(KafkaCounter::RequestTimeouts, client.clone()).absolute(timeouts);
    if s.client_type != "consumer" {
        return;
    }
    let mut fetchq = 0i64;
    for t in s.topics.values() {
        for p in t.partitions.values() {
            if p.partition < 0 {
                continue; // the internal "unassigned" partition
            }
            let lag = if p.desired { p.consumer_lag.max(0) } else { 0 };
            fetchq += p.fetchq_cnt.max(0);
            metric::gauge!(
                KafkaGauge::ConsumerLag,
                t.topic.clone(),
                p.partition.to_string()
            )
            .set(lag as f64);
        }
    }
    metric::gauge!(KafkaGauge::FetchQueueMessages, client).set(fetchq as f64);
}
