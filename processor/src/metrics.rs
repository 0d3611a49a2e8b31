//! The processor's metrics, defined once with their labels (recorded with
//! `leadstream_shared::metric`). The Kafka client metrics every service shares are in
//! `leadstream_shared::kafka::stats`, the Avro readers' in `leadstream_shared::avro`;
//! `docs/observability.md` lists all.

use leadstream_shared::metric;

metric::define! {
    /// The processor's counters.
    pub enum ProcessorCounter: Counter {
        /// Events applied to lead state.
        Events = "leadstream_processor_events_total" [],
        /// Events skipped as already applied (dedupe).
        Duplicates = "leadstream_processor_duplicates_total" [],
        /// Fields of JSON records (`content-type: application/json`) the processor does not
        /// know, ignored rather than dead-lettered.
        JsonUnknownFields = "leadstream_processor_json_unknown_fields_total" [],
        /// Records that could not be decoded (each goes to the events DLQ).
        Poison = "leadstream_processor_poison_total" [],
        /// Records the events DLQ acknowledged.
        EventsDlq = "leadstream_processor_events_dlq_total" [],
        /// Fired records the fired topic acknowledged; `kind` is `milestone` or `sequence`.
        Fired = "leadstream_processor_fired_total" ["kind"],
        /// Partitions re-read because a Redis failover lost their newest writes.
        RewoundPartitions = "leadstream_processor_rewound_partitions_total" [],
        /// Offsets stepped over because they do not exist for consumers (`reason` `gap`:
        /// transaction markers, aborted transactions, compaction or retention).
        SkippedOffsets = "leadstream_processor_skipped_offsets_total" ["reason"],
        /// Seeks back to the durable position under the test-broker quirk switch.
        SeekBacks = "leadstream_processor_seek_backs_total" [],
        /// Records read by rescore and preview replays; `kind` is `rescore` or `preview`.
        ReplayRecords = "leadstream_processor_replay_records_total" ["kind"],
        /// Partitions a rescore switched to the replayed state.
        RescoreSwitches = "leadstream_processor_rescore_switches_total" [],
        /// Switch attempts that met a live write in between and caught up again.
        RescoreSwitchRetries = "leadstream_processor_rescore_switch_retries_total" [],
        /// Partition replays started over because the OU's rules changed meanwhile.
        ReplayRestarts = "leadstream_processor_replay_restarts_total" [],
    }
}

metric::define! {
    /// The processor's histograms.
    pub enum ProcessorHistogram: Histogram {
        /// Seconds from the gateway receiving an event to the processor applying it (for
        /// records produced directly to Kafka, from their `received_at`).
        ProcessingLatency = "leadstream_processor_processing_latency_seconds" [],
        /// Records per polled batch.
        BatchRecords = "leadstream_processor_batch_records" [],
    }
}
