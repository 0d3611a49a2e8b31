//! Rulesets, milestone triggers (seed 003), sequences (seed 004) and firing history through the
//! real gateway on port 0 over the real Redis (own key prefix). No broker is needed: these routes
//! never publish. The routes over lead state and history the processor's own batch engine wrote
//! are tested with the engine, in `e2e/tests/pipeline/scoring_routes.rs`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::ids::parse_rfc3339_ms;
use leadstream_shared::store::{Cmd, Store};
use leadstream_testkit::gateway::{seed_003, seed_004, Env, RoutesApp as Gw, Spawned, ADMIN};

mod deliveries;
mod leads;
mod triggers;

/// The real gateway for [`Gw`]: on `store`, with a sink in memory.
async fn spawn_on_store(
    env: Env,
    store: Store,
    stop: CancellationToken,
) -> anyhow::Result<Spawned> {
    let sink = Arc::new(MemorySink::new());
    let cfg = GatewayConfig::from_source(&env)?;
    let running = leadstream_gateway::spawn_with(cfg, store, sink, stop).await?;
    Ok((running.addr, running.handle))
}
