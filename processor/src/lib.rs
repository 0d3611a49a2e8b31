//! leadstream-processor: consumes engagement events, dedupes, scores against rulesets, and fires
//! milestone and sequence triggers.
//!
//! A record's path: [`service`] polls a batch from `leadstream.events.v1` → [`decode`] (Avro or
//! JSON; poison records go to the events DLQ) → alias-only records are resolved and, when their
//! lead lives on another partition, re-produced keyed by the lead → [`engine`] applies the batch
//! in two Redis round trips (the rules themselves — scoring, milestones, sequences, what is kept
//! per lead — are the pure `leadstream-domain` crate) → firings are produced to
//! `leadstream.triggers.fired.v1` from the outbox → offsets are committed.

pub mod config;
pub mod decode;
pub mod engine;
pub mod metrics;
pub mod rescore;
pub mod service;

pub use config::ProcessorConfig;
pub use service::{run, run_with_store, Processor};
