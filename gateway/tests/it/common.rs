//! The harness of the gateway's integration tests: `leadstream_testkit::gateway` (a real tansu
//! broker and the real Redis per test, own topic and key prefixes, the real gateway on port 0,
//! HTTP through reqwest), with the gateway spawned in this process.

use tokio_util::sync::CancellationToken;

use leadstream_gateway::GatewayConfig;
pub use leadstream_testkit::gateway::*;

/// The real gateway for [`App`]: its configuration from `env`, served until `shutdown`.
pub async fn spawn_gateway(env: Env, shutdown: CancellationToken) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    let running = leadstream_gateway::spawn(cfg, shutdown).await?;
    Ok((running.addr, running.handle))
}
