//! Wiring: store, topics, producer, mailer, HTTP sender, dispatcher and consumer, started
//! together and stopped by one cancellation token.
//!
//! Shutdown order: the consumer stops reading and commits; the dispatcher stops taking new jobs
//! and lets in-flight attempts finish (each bounded by its timeout) and record their results; the
//! producer is flushed. Jobs not yet attempted stay due in the store for the next start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::kafka::{ensure_topics, Publisher, StatsContext};
use leadstream_shared::store::Store;
use rdkafka::consumer::StreamConsumer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::NotifierConfig;
use crate::deliver::Sender;
use crate::email::Mailer;
use crate::email_guard::EmailGuard;
use crate::ingest::Ingest;
use crate::jobs::JobStore;
use crate::secrets::{cached, CatalogSource, Secrets};
use crate::worker::{Worker, WorkerParts};

/// How long signing secrets are cached per OU.
const SECRETS_TTL: Duration = Duration::from_secs(5);

/// Run the notifier until `shutdown` is cancelled, with the store named by the configuration
/// and signing secrets from the catalog.
pub async fn run(cfg: NotifierConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&cfg).await?;
    let catalog = Catalog::new(store.clone(), cfg.common.keys());
    let grace_ms = i64::try_from(cfg.secret_grace.as_millis()).unwrap_or(i64::MAX);
    let secrets = cached(CatalogSource { catalog, grace_ms }, SECRETS_TTL);
    run_with(cfg, store, secrets, shutdown).await
}

/// Open the store the configuration names (the in-memory one when no Redis URL is set, which
/// only `leadstream dev` should do: its retries do not survive a restart).
pub async fn open_store(cfg: &NotifierConfig) -> anyhow::Result<Store> {
    if cfg.common.redis_url.is_none() {
        tracing::warn!(
            "LEADSTREAM_REDIS_URL is not set: in-memory store, retries will not survive a restart"
        );
    }
    cfg.common
        .open_store()
        .await
        .context("cannot open the store (LEADSTREAM_REDIS_URL)")
}

/// [`run`] with an explicit store and secret source (`leadstream dev`, tests, benchmarks).
pub async fn run_with(
    cfg: NotifierConfig,
    store: Store,
    secrets: Arc<dyn Secrets>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let c = &cfg.common;
    ensure_topics(
        &c.kafka,
        &[&c.topics.fired, &c.topics.dlq],
        c.partitions,
        c.replication_factor,
    )
    .await
    .context("notifier cannot create its topics")?;
    let publisher = Publisher::new(&c.kafka, Duration::from_secs(30)).context("Kafka producer")?;
    let mailer = match &cfg.email.smtp_url {
        Some(url) => Mailer::smtp(url, &cfg.email.from, cfg.email.smtp_timeout)?,
        None => {
            tracing::info!(dir = %cfg.email.dir.display(), "no LEADSTREAM_SMTP_URL: emails are written as .eml files");
            Mailer::dir(cfg.email.dir.clone(), &cfg.email.from)?
        }
    };
    let sender = Sender::new(cfg.policy.clone(), cfg.http_timeout, mailer, secrets)
        .and_then(|s| s.with_idle_per_host(cfg.endpoint_concurrency))
        .context("cannot build the HTTP client")?
        .with_email_guard(EmailGuard::new(
            &cfg.email.allowed_domains,
            cfg.email.rate_per_ou,
        ));
    let retention_ms = u64::try_from(cfg.retention.as_millis()).unwrap_or(u64::MAX);
    let jobs = JobStore::new(store, c.keys(), retention_ms);
    let worker = Worker::new(WorkerParts {
        jobs: jobs.clone(),
        sender,
        publisher: publisher.clone(),
        topics: c.topics.clone(),
        schedule: cfg.schedule.clone(),
        lease_ms: u64::try_from(cfg.lease().as_millis()).unwrap_or(u64::MAX),
        poll_interval: cfg.poll_interval,
        endpoint_concurrency: cfg.endpoint_concurrency,
        ou_share: cfg.ou_share,
        max_in_flight: cfg.max_in_flight,
    });
    let consumer: StreamConsumer<StatsContext> = c
        .kafka
        .consumer_config_with_stats(&cfg.group_id)
        .create_with_context(StatsContext)
        .context("Kafka consumer")?;
    let (tx, rx) = mpsc::channel(4096);
    let ingest = Ingest {
        consumer,
        jobs,
        topics: c.topics.clone(),
        publisher: publisher.clone(),
        fresh: tx,
    };
    tracing::info!(
        group = %cfg.group_id, fired = %c.topics.fired, dlq = %c.topics.dlq,
        attempts = cfg.schedule.max_attempts(), "notifier started"
    );
    let dispatcher = tokio::spawn(worker.run(rx, shutdown.clone()));
    let consumed = ingest.run(shutdown.clone()).await;
    // The consumer only returns on shutdown or a fatal error; either way stop the dispatcher.
    shutdown.cancel();
    dispatcher.await.context("dispatcher task")?;
    let flushed =
        tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(10))).await;
    if let Ok(Err(e)) = flushed {
        tracing::warn!(error = %e, "producer flush at shutdown");
    }
    tracing::info!("notifier stopped");
    consumed
}
