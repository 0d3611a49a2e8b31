//! `leadstream`: the one binary SREs deploy. Each subcommand reads its configuration from
//! `LEADSTREAM_*` variables (see README), validates it, and runs one service until SIGTERM.

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod admin;
mod dev;
#[cfg(test)]
mod metrics_doc;
mod ops_http;

#[derive(Parser)]
#[command(
    name = "leadstream",
    version,
    about = "Event ingestion and real-time lead triggers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP ingest and management API (LEADSTREAM_HTTP_ADDR, default 0.0.0.0:8080).
    Gateway,
    /// Consume events, score leads, fire milestone and sequence triggers.
    Processor,
    /// Deliver fired triggers: signed webhooks, email, Slack and Teams.
    Notifier,
    /// Everything in one process for a first try: embedded Kafka, in-memory store, a built-in
    /// webhook receiver; prints the URL, an admin key and a walk-through.
    Dev,
    /// Operate an installation: DLQ replay, topics, consumer lag, API keys, signing secrets.
    Admin(admin::AdminArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Dev) {
        dev::prefer_text_logs();
    }
    leadstream_shared::telemetry::init("info,rdkafka=warn");
    let shutdown = leadstream_shared::shutdown::on_signals();
    let result = match cli.command {
        Command::Gateway => {
            let cfg = leadstream_gateway::GatewayConfig::from_env()?;
            leadstream_gateway::run(cfg, shutdown).await
        }
        Command::Processor => {
            let cfg = leadstream_processor::ProcessorConfig::from_env()?;
            serve_ops(&cfg.common, &shutdown).await?;
            leadstream_processor::run(cfg, shutdown).await
        }
        Command::Notifier => {
            let cfg = leadstream_notifier::NotifierConfig::from_env()?;
            serve_ops(&cfg.common, &shutdown).await?;
            leadstream_notifier::run(cfg, shutdown).await
        }
        Command::Dev => dev::run(shutdown).await,
        Command::Admin(args) => return admin::run(args).await,
    };
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "exiting");
    }
    // Export the spans still buffered (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
    leadstream_shared::telemetry::shutdown();
    result
}

/// Processor and notifier: `/metrics`, `/healthz` and `/readyz` on `LEADSTREAM_METRICS_ADDR` when
/// it is set (the gateway serves them on its own port).
async fn serve_ops(
    common: &leadstream_shared::config::CommonConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    match ops_http::addr_from_env()? {
        Some(addr) => ops_http::serve(addr, common, shutdown.clone()).await,
        None => Ok(()),
    }
}
