//! The whole pipeline in one process, in one binary so it links once: the real gateway on port 0
//! (`leadstream_testkit::gateway`), a real tansu broker and the real Redis (own topic and key
//! prefixes per test), with the real processor and notifier run in-process beside it (or, for the
//! scoring routes, the processor's batch engine over the same Redis). These tests need every
//! service crate, which is why they live here and not in the gateway's crate.
//!
//! - [`end_to_end`]: seeds 000–004 from HTTP to the fired topic, and tenant isolation;
//! - [`interop`]: independent Avro and Kafka clients (Python's fastavro and confluent-kafka);
//! - [`openapi_contract`]: webhook bodies and simulate answers against the OpenAPI document;
//! - [`rescore`]: preview and rescore over HTTP with the real processor;
//! - [`scoring_routes`]: leads and simulate over the state the processor's engine wrote;
//! - [`tls`]: ingest and processing through TLS Kafka and TLS Redis;
//! - [`traces`]: one trace from the HTTP request to the webhook, and each hop's metrics.

mod common;
mod end_to_end;
mod interop;
mod openapi_contract;
mod rescore;
mod scoring_routes;
mod tls;
mod traces;
