//! Processor integration tests on real parts: a tansu broker process per test, the shared
//! redis-server under a key prefix of the test's own, and (for crash and rebalance tests) the
//! real `leadstream` binary as child processes.

mod cluster;
mod crash;
mod pipeline;
mod poison;
mod rescore;
mod rewind;
mod sigterm;
mod world;
