//! The gateway's integration tests, in one binary so it links once: the real gateway on port 0
//! against a real tansu broker and the real Redis (own topic and key prefixes per test). Tests
//! that also need the processor or the notifier run in the e2e crate (`e2e/tests/pipeline`): the
//! gateway depends on neither, not even for tests.

mod active_ou;
mod cluster;
mod collisions;
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod fuzz;
mod lifecycle;
mod openapi;
mod openapi_contract;
mod props;
mod rescore;
mod resilience;
mod scoring_routes;
mod seeds;
mod sigterm;
mod tenants;
mod tls;
mod traces;
