//! `leadstream admin …`: what an operator runs against a live installation, configured by the
//! same `LEADSTREAM_*` variables as the services (so it finds the same topics and Redis keys).
//!
//! - [`dlq`]: drain `{prefix}.notifications.dlq.v1` back into delivery (idempotent).
//! - [`kafka`]: create and describe the topics; consumer lag of a group (and the processor's
//!   applied offsets in Redis).
//! - [`keys`]: API keys and webhook signing secrets through the catalog, straight in Redis
//!   (bootstrap and rotation without a running gateway).
//! - [`cluster`]: copy an installation from one Redis server onto a Redis Cluster.
//!
//! Results go to stdout; errors are one sentence on stderr and a non-zero exit code. Nothing
//! prints a secret except the one just created (`keys create`, `webhook-secret rotate`).

mod cluster;
mod dlq;
mod kafka;
mod keys;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use leadstream_shared::config::{CommonConfig, Env, Source};
use leadstream_shared::store::Store;

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// The notifications dead-letter queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Create the topics (idempotent) with LEADSTREAM_PARTITIONS and describe them.
    Topics(kafka::TopicsArgs),
    /// Consumer lag per partition of a group (committed offset vs high watermark).
    Lag(kafka::LagArgs),
    /// API keys: create (the secret is printed once), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Webhook signing secrets.
    #[command(subcommand, name = "webhook-secret")]
    WebhookSecret(keys::SecretCommand),
    /// Copy the installation from one Redis server onto the Redis Cluster of
    /// LEADSTREAM_REDIS_URL, renamed to the cluster key layout (stop every service first).
    #[command(name = "redis-to-cluster")]
    RedisToCluster(cluster::ToClusterArgs),
}

/// Run an admin command. A failure is printed as one line (`error: …` with its causes) and
/// exits with status 1, whatever `RUST_BACKTRACE` says.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    if let Err(e) = dispatch(args).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn dispatch(args: AdminArgs) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::Dlq(dlq::DlqCommand::Replay(a)) => dlq::replay(a).await,
        AdminCommand::Topics(a) => kafka::topics(a).await,
        AdminCommand::Lag(a) => kafka::lag(a).await,
        AdminCommand::Keys(c) => keys::run(c).await,
        AdminCommand::WebhookSecret(c) => keys::secret(c).await,
        AdminCommand::RedisToCluster(a) => cluster::to_cluster(a).await,
    }
}

/// The shared configuration (brokers, prefixes, partitions) from the environment.
fn common() -> anyhow::Result<CommonConfig> {
    Ok(CommonConfig::from_env()?)
}

/// The environment, for commands that only talk to Redis: they do not need
/// `LEADSTREAM_KAFKA_BROKERS`, so its absence is not an error there (every other variable is
/// validated as the services validate it).
struct RedisOnly;

impl Source for RedisOnly {
    fn get(&self, var: &str) -> Option<String> {
        let v = Env.get(var);
        if var == "LEADSTREAM_KAFKA_BROKERS" {
            return v.or_else(|| Some("unused:9092".into()));
        }
        v
    }
}

fn common_without_kafka() -> anyhow::Result<CommonConfig> {
    Ok(CommonConfig::from_source(&RedisOnly)?)
}

/// Redis, which the admin commands need (no in-memory fallback: that would act on nothing).
async fn redis(cfg: &CommonConfig) -> anyhow::Result<Store> {
    if cfg.redis_url.is_none() {
        anyhow::bail!(
            "configuration error: LEADSTREAM_REDIS_URL: is required for this command (redis://…)"
        );
    }
    cfg.open_store()
        .await
        .context("cannot reach Redis (LEADSTREAM_REDIS_URL)")
}
