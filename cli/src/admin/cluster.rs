//! `leadstream admin redis-to-cluster --from redis://old:6379`: copy an installation from one
//! Redis server onto the Redis Cluster that `LEADSTREAM_REDIS_URL` names, renamed to the cluster
//! key layout (docs/runbook.md "Redis Cluster"). Stop every service first.

use anyhow::Context as _;
use clap::Args;
use leadstream_shared::store::{migrate, split_urls};

#[derive(Args, Debug)]
pub struct ToClusterArgs {
    /// The single Redis server holding the installation now (`redis://…`); it is only read.
    #[arg(long)]
    from: String,
}

pub async fn to_cluster(args: ToClusterArgs) -> anyhow::Result<()> {
    let cfg = super::common_without_kafka()?;
    let Some(urls) = cfg.redis_url.as_deref().filter(|_| cfg.redis_cluster) else {
        anyhow::bail!(
            "configuration error: LEADSTREAM_REDIS_URL: must name the target Redis Cluster (a \
             list of node URLs, or one with LEADSTREAM_REDIS_CLUSTER=true)"
        );
    };
    if !args.from.starts_with("redis://") && !args.from.starts_with("rediss://") {
        anyhow::bail!("--from: {:?} is not a redis:// URL", args.from);
    }
    let report = migrate::copy_to_cluster(&args.from, &split_urls(urls), &cfg.keys())
        .await
        .context("copy to the Redis Cluster")?;
    println!(
        "copied {} keys ({} renamed to the cluster layout, {} pending deliveries re-pointed)",
        report.copied, report.renamed, report.due
    );
    Ok(())
}
