//! The harness of the gateway's integration tests (the `it` and `abuse` binaries, and the e2e
//! crate's pipeline tests, which include this file): `leadstream_testkit::gateway` (the real
//! gateway on port 0 over the real Redis, own key and topic prefixes, HTTP through reqwest), with
//! the gateway spawned in this process by one of the functions below.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use leadstream_gateway::{EventSink, GatewayConfig, MemorySink};
use leadstream_shared::store::Store;
pub use leadstream_testkit::gateway::*;

/// The real gateway for [`App`]: its configuration from `env` (a broker of the test's own),
/// served until `shutdown`.
pub async fn spawn_gateway(env: Env, shutdown: CancellationToken) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    let running = leadstream_gateway::spawn(cfg, shutdown).await?;
    Ok((running.addr, running.ops_addr, running.handle))
}

/// The real gateway for [`RoutesApp`]: on `store`, publishing to `sink` (a memory sink the test
/// keeps to read what was published).
pub async fn spawn_on(
    env: Env,
    store: Store,
    sink: Arc<dyn EventSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    let running = leadstream_gateway::spawn_with(cfg, store, sink, shutdown).await?;
    Ok((running.addr, running.ops_addr, running.handle))
}

/// [`spawn_on`] with a sink in memory no test reads.
pub async fn spawn_on_store(
    env: Env,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<Spawned> {
    spawn_on(env, store, Arc::new(MemorySink::new()), shutdown).await
}
