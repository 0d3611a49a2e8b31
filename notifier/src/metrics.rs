//! Metric names, defined once. Every name is a counter unless it says otherwise; labels are
//! listed beside it. Values are recorded with the `metrics` facade; the process installs the
//! Prometheus exporter (`LEADSTREAM_METRICS_ADDR`).

/// Fired records read from the fired topic. Labels: none.
pub const FIRED_CONSUMED: &str = "leadstream_notifier_fired_consumed_total";
/// Deliveries created (one per fired record and endpoint). Labels: `channel`.
pub const DELIVERIES_CREATED: &str = "leadstream_notifier_deliveries_created_total";
/// Deliveries skipped because (fired id, endpoint) was already known (replay). Labels: `channel`.
pub const DELIVERIES_DUPLICATE: &str = "leadstream_notifier_deliveries_duplicate_total";
/// Attempts made. Labels: `channel`, `status` (succeeded / retrying / failed / disabled / skipped).
pub const ATTEMPTS: &str = "leadstream_notifier_attempts_total";
/// Successful deliveries. Labels: `channel`.
pub const SUCCEEDED: &str = "leadstream_notifier_succeeded_total";
/// Failed attempts (whether retried or not). Labels: `channel`.
pub const FAILED: &str = "leadstream_notifier_failed_total";
/// Deliveries sent to the DLQ. Labels: `channel`, `reason`.
pub const DLQ: &str = "leadstream_notifier_dlq_total";
/// Histogram, seconds: one attempt's duration. Labels: `channel`.
pub const ATTEMPT_SECONDS: &str = "leadstream_notifier_attempt_seconds";
/// Histogram, seconds: from the firing to its successful delivery. Labels: `channel`.
pub const FIRED_TO_DELIVERED_SECONDS: &str = "leadstream_notifier_fired_to_delivered_seconds";
/// Records written after a lease was lost (an attempt outlived its lease). Labels: none.
pub const LEASE_LOST: &str = "leadstream_notifier_lease_lost_total";
/// Writes of an attempt's result retried because the store was unavailable (the delivery is
/// not repeated while the lease lasts). Labels: none.
pub const RECORD_RETRIES: &str = "leadstream_notifier_record_retries_total";
/// Jobs parked because an earlier delivery of the same lead to the same endpoint was not final
/// yet (deliveries in firing order). Labels: none.
pub const WAITED_IN_LANE: &str = "leadstream_notifier_waited_in_lane_total";
/// Gauge: attempts in flight. Labels: none.
pub const IN_FLIGHT: &str = "leadstream_notifier_in_flight";
/// Gauge: records in the notifications DLQ topic (high − low watermark, all partitions), read
/// every 30 s. Labels: none.
pub const DLQ_MESSAGES: &str = "leadstream_notifier_dlq_messages";
