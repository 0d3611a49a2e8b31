//! Hostile clients and bodies (issue 12), in a binary of their own: [`memory`] measures the
//! process-wide peak RSS, so no other test may share its process (nextest runs each test in its
//! own process; under `cargo test` only [`clients`]' two small tests run beside it).

mod bootstrap;
mod clients;
#[path = "../common/mod.rs"]
mod common;
mod memory;
mod ops;
mod strangers;
mod tenants;
