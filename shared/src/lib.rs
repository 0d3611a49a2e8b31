//! leadstream-shared: what the gateway, the processor and the notifier have in common.
//!
//! Data flows `gateway → events topic → processor → fired topic → notifier`. This crate holds
//! the pieces each hop agrees on:
//! - [`event`] and [`fired`]: the records that cross topics, and [`avro`]: how they are encoded
//!   (single-object Avro, schemas in `schemas/`);
//! - [`kafka`]: the producer/consumer seam with the settings the design requires (idempotence,
//!   acks=all, murmur2 partitioning, manual offset store) and topic creation;
//! - [`store`]: the key-value seam (Redis in production, in memory for `dev` and unit tests),
//!   [`keys`]: every Redis key, OU-scoped, in one place, and [`catalog`]: tenants, API keys and
//!   the rulesets/triggers/sequences users manage;
//! - [`config`]: typed configuration from `LEADSTREAM_*` variables, validated at boot;
//! - [`model`]: rulesets, milestone triggers and sequence triggers;
//! - [`telemetry`] and [`trace`]: logs, OpenTelemetry spans and the trace context that travels
//!   in Kafka headers.

pub mod avro;
pub mod catalog;
pub mod config;
pub mod delivery;
pub mod event;
pub mod fired;
pub mod ids;
pub mod kafka;
pub mod keys;
pub mod model;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod trace;

/// The Kafka key of every record about a lead: `"{ou}:{lead}"`.
pub fn kafka_key(ou_id: &str, lead_id: &str) -> String {
    format!("{ou_id}:{lead_id}")
}

/// The OU every installation starts with.
pub const DEFAULT_OU: &str = "unit_default";
/// The organisation every installation starts with.
pub const DEFAULT_ORG: &str = "org_default";
