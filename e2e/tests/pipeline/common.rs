//! The harness of the pipeline tests: `leadstream_testkit::gateway`, with the gateway spawned in
//! this process; the processor and notifier join it through [`App::service_env`].

use tokio_util::sync::CancellationToken;

use leadstream_gateway::GatewayConfig;
pub use leadstream_testkit::gateway::*;

/// The real gateway for [`App`]: its configuration from `env`, served until `shutdown`.
pub async fn spawn_gateway(env: Env, shutdown: CancellationToken) -> anyhow::Result<Spawned> {
    let cfg = GatewayConfig::from_source(&env)?;
    let running = leadstream_gateway::spawn(cfg, shutdown).await?;
    Ok((running.addr, running.handle))
}
