//! leadstream-shared: what the gateway, the processor and the notifier have in common.
//!
//! Data flows `gateway → events topic → processor → fired topic → notifier`. What the records
//! and the rules *are* (events, fired records, rulesets, triggers, scoring, sequences, lead
//! state) is the pure `leadstream-domain` crate; this crate holds the I/O each hop agrees on:
//! - [`avro`]: how the records that cross topics are encoded (single-object Avro, schemas in
//!   `schemas/`);
//! - [`kafka`]: the producer/consumer seam with the settings the design requires (idempotence,
//!   acks=all, murmur2 partitioning, manual offset store) and topic creation;
//! - [`store`]: the key-value seam (Redis in production, in memory for `dev` and unit tests),
//!   [`keys`]: every Redis key, OU-scoped, in one place, [`catalog`]: tenants, API keys and
//!   the rulesets/triggers/sequences users manage, [`store::leads`]: lead states for readers,
//!   [`store::offsets`]: the processor's applied offsets for readers, and [`store::history`]:
//!   the firings of each OU;
//! - [`config`]: typed configuration from `LEADSTREAM_*` variables, validated at boot;
//! - [`telemetry`] and [`trace`]: logs, OpenTelemetry spans and the trace context that travels
//!   in Kafka headers; [`metric`]: metrics as typed definitions (name, kind, labels).

pub mod avro;
pub mod catalog;
pub mod config;
pub mod delivery;
pub mod ids;
pub mod kafka;
pub mod keys;
pub mod metric;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod trace;

/// The OU every installation starts with.
pub const DEFAULT_OU: &str = "unit_default";
/// The organisation every installation starts with.
pub const DEFAULT_ORG: &str = "org_default";
