//! The notifier's metrics, defined once with their labels (recorded with
//! `leadstream_shared::metric`); the process installs the Prometheus exporter
//! (`LEADSTREAM_METRICS_ADDR`). `docs/observability.md` lists all.

use leadstream_shared::metric;

metric::define! {
    /// The notifier's counters.
    pub enum NotifierCounter: Counter {
        /// Fired records read from the fired topic.
        FiredConsumed = "leadstream_notifier_fired_consumed_total" [],
        /// Deliveries created (one per fired record and endpoint).
        DeliveriesCreated = "leadstream_notifier_deliveries_created_total" ["channel"],
        /// Deliveries skipped because (fired id, endpoint) was already known (replay).
        DeliveriesDuplicate = "leadstream_notifier_deliveries_duplicate_total" ["channel"],
        /// Attempts made; `status` is `succeeded`, `retrying`, `failed`, `disabled` or `skipped`.
        Attempts = "leadstream_notifier_attempts_total" ["channel", "status"],
        /// Successful deliveries.
        Succeeded = "leadstream_notifier_succeeded_total" ["channel"],
        /// Failed attempts (whether retried or not).
        Failed = "leadstream_notifier_failed_total" ["channel"],
        /// Deliveries sent to the DLQ.
        Dlq = "leadstream_notifier_dlq_total" ["channel", "reason"],
        /// Records written after a lease was lost (an attempt outlived its lease).
        LeaseLost = "leadstream_notifier_lease_lost_total" [],
        /// Writes of an attempt's result retried because the store was unavailable (the
        /// delivery is not repeated while the lease lasts).
        RecordRetries = "leadstream_notifier_record_retries_total" [],
        /// Jobs parked because an earlier delivery of the same lead to the same endpoint was
        /// not final yet (deliveries in firing order).
        WaitedInLane = "leadstream_notifier_waited_in_lane_total" [],
    }
}

metric::define! {
    /// The notifier's histograms, in seconds.
    pub enum NotifierHistogram: Histogram {
        /// One attempt's duration.
        AttemptSeconds = "leadstream_notifier_attempt_seconds" ["channel"],
        /// From the firing to its successful delivery.
        FiredToDeliveredSeconds = "leadstream_notifier_fired_to_delivered_seconds" ["channel"],
    }
}

metric::define! {
    /// The notifier's gauges.
    pub enum NotifierGauge: Gauge {
        /// Attempts in flight.
        InFlight = "leadstream_notifier_in_flight" [],
        /// Records in the notifications DLQ topic (high − low watermark, all partitions), read
        /// every 30 s.
        DlqMessages = "leadstream_notifier_dlq_messages" [],
    }
}
