//! librdkafka statistics as Prometheus metrics, and the produce counters of every producer.
//!
//! librdkafka emits a statistics document every `statistics.interval.ms` (5000 by default here;
//! `LEADSTREAM_KAFKA_CONFIG=statistics.interval.ms=…` changes it, 0 turns it off) to the client
//! context. [`StatsContext`] (producers, the notifier's consumer) and any context that calls
//! [`record`] (the processor's) turn it into the gauges and counters below. Labels stay few:
//! `client` is the librdkafka handle name (`leadstream#producer-1`), one per client in the
//! process; `broker` is a broker's `host:port`; `topic`/`partition` only on consumer lag.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

/// Gauge: messages behind on a partition (high watermark − committed offset) as librdkafka
/// last saw it; 0 for partitions not assigned here. Labels: `topic`, `partition`.
pub const CONSUMER_LAG: &str = "leadstream_kafka_consumer_lag";
/// Gauge, seconds: average round-trip time to a broker over the last interval. Labels:
/// `client`, `broker`.
pub const BROKER_RTT: &str = "leadstream_kafka_broker_rtt_seconds";
/// Gauge: messages waiting in the client's queues (producer: not yet acknowledged). Labels:
/// `client`.
pub const QUEUE_MESSAGES: &str = "leadstream_kafka_queue_messages";
/// Gauge: bytes of those messages. Labels: `client`.
pub const QUEUE_BYTES: &str = "leadstream_kafka_queue_bytes";
/// Gauge: messages fetched but not yet handed to the application (consumers). Labels: `client`.
pub const FETCH_QUEUE_MESSAGES: &str = "leadstream_kafka_fetch_queue_messages";
/// Counter: messages sent to brokers. Labels: `client`.
pub const TX_MESSAGES: &str = "leadstream_kafka_tx_messages_total";
/// Counter: messages received from brokers. Labels: `client`.
pub const RX_MESSAGES: &str = "leadstream_kafka_rx_messages_total";
/// Counter: request transmission and response errors, all brokers. Labels: `client`,
/// `direction` (`tx`, `rx`).
pub const REQUEST_ERRORS: &str = "leadstream_kafka_request_errors_total";
/// Counter: requests that timed out, all brokers. Labels: `client`.
pub const REQUEST_TIMEOUTS: &str = "leadstream_kafka_request_timeouts_total";
/// Counter: records a broker acknowledged (every producer). Labels: `topic`.
pub const PRODUCED: &str = "leadstream_kafka_produced_total";
/// Counter: records not acknowledged (every producer). Labels: `topic`, `retryable`.
pub const PRODUCE_ERRORS: &str = "leadstream_kafka_produce_errors_total";
/// Counter: producers replaced by a new one (a fatal error, or every publish failing; see
/// [`super::Publisher`]). Labels: `fatal` (`true`, `false`).
pub const PRODUCER_REPLACED: &str = "leadstream_kafka_producer_replaced_total";

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
    metrics::gauge!(QUEUE_MESSAGES, "client" => client.clone()).set(s.msg_cnt as f64);
    metrics::gauge!(QUEUE_BYTES, "client" => client.clone()).set(s.msg_size as f64);
    metrics::counter!(TX_MESSAGES, "client" => client.clone()).absolute(s.txmsgs.max(0) as u64);
    metrics::counter!(RX_MESSAGES, "client" => client.clone()).absolute(s.rxmsgs.max(0) as u64);
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
                metrics::gauge!(BROKER_RTT, "client" => client.clone(), "broker" => b.nodename.clone())
                    .set(rtt.avg as f64 / 1e6);
            }
        }
    }
    metrics::counter!(REQUEST_ERRORS, "client" => client.clone(), "direction" => "tx")
        .absolute(txerrs);
    metrics::counter!(REQUEST_ERRORS, "client" => client.clone(), "direction" => "rx")
        .absolute(rxerrs);
    metrics::counter!(REQUEST_TIMEOUTS, "client" => client.clone()).absolute(timeouts);
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
            metrics::gauge!(CONSUMER_LAG, "topic" => t.topic.clone(), "partition" => p.partition.to_string())
                .set(lag as f64);
        }
    }
    metrics::gauge!(FETCH_QUEUE_MESSAGES, "client" => client).set(fetchq as f64);
}
