//! The harness of the pipeline tests: `leadstream_testkit::gateway`, with the gateway spawned in
//! this process; the processor and notifier join it through [`App::service_env`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use leadstream_gateway::{GatewayConfig, MemorySink, Running};
use leadstream_shared::store::Store;
pub use leadstream_testkit::gateway::*;

fn spawned(running: Running) -> Spawned {
    Spawned {
        addr: running.addr,
        ops_addr: running.ops_addr,
        handle: running.handle,
    }
}

/// The real gateway for [`App`]: its configuration from `env`, served until `shutdown`.
pub async fn spawn_gateway(env: Env, shutdown: CancellationToken) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    Ok(spawned(leadstream_gateway::spawn(cfg, shutdown).await?))
}

/// The real gateway for [`RoutesApp`]: on `store`, with a sink in memory.
pub async fn spawn_on_store(
    env: Env,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    let sink = Arc::new(MemorySink::new());
    Ok(spawned(
        leadstream_gateway::spawn_with(cfg, store, sink, shutdown).await?,
    ))
}
