//! `leadstream dev`: the whole pipeline in one process, for a first run on a bare machine.
//!
//! ```text
//! curl ─▶ gateway ─┐                        ┌─▶ processor ─▶ fired ─▶ notifier ─┬─▶ webhooks ─▶ /dev/webhooks
//!                  └─▶ embedded Kafka ──────┘        (one in-memory store)      └─▶ emails ───▶ .eml files
//! ```
//!
//! Kafka is librdkafka's mock cluster ([`kafka`]) unless `LEADSTREAM_KAFKA_BROKERS` is set; the
//! store is one in-memory store shared by the three services unless `LEADSTREAM_REDIS_URL` is
//! set. The gateway's port also serves the built-in webhook [`receiver`]. Every `LEADSTREAM_*`
//! variable still applies; dev only changes some defaults ([`DEV_DEFAULTS`]). One cancellation
//! token (SIGTERM / Ctrl-C) stops all three services; if one of them stops on its own, the others
//! are stopped too and dev exits with its error. At start dev prints the URL, the admin key and
//! [`WALKTHROUGH`] (the same text the README shows, checked by `cli/tests/dev_walkthrough.rs`).

mod kafka;
mod receiver;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use leadstream_gateway::{AppState, GatewayConfig, KafkaSink};
use leadstream_notifier::secrets::{cached, CatalogSource};
use leadstream_notifier::NotifierConfig;
use leadstream_processor::ProcessorConfig;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::config::{CommonConfig, Env, Source};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The copy-paste walk-through, printed at start and embedded verbatim in the README.
pub const WALKTHROUGH: &str = include_str!("walkthrough.sh");

/// Defaults dev uses where the variable is not set: loopback only, quick consumers, quick
/// retries, webhooks to the built-in receiver allowed, emails as files.
pub const DEV_DEFAULTS: &[(&str, &str)] = &[
    ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:8080"),
    ("LEADSTREAM_PARTITIONS", "4"),
    ("LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", "10"),
    ("LEADSTREAM_KAFKA_LINGER_MS", "1"),
    ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32,::1"),
    ("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "1s,5s,30s,2m"),
    ("LEADSTREAM_NOTIFIER_POLL_INTERVAL", "100ms"),
    ("LEADSTREAM_EMAIL_DIR", "leadstream-dev/mail"),
    ("LEADSTREAM_SHUTDOWN_DELAY", "0s"),
    ("LEADSTREAM_SHUTDOWN_GRACE", "5s"),
];

/// Dev logs are for a person: text unless `LEADSTREAM_LOG_FORMAT` says otherwise. Called before
/// logging is set up, while nothing else reads the environment.
pub fn prefer_text_logs() {
    if std::env::var_os("LEADSTREAM_LOG_FORMAT").is_none() {
        std::env::set_var("LEADSTREAM_LOG_FORMAT", "text");
    }
}

/// The environment first, then dev's defaults (and the values dev decided at start).
struct DevEnv(BTreeMap<String, String>);

impl Source for DevEnv {
    fn get(&self, var: &str) -> Option<String> {
        Env.get(var).or_else(|| self.0.get(var).cloned())
    }
}

/// Run everything until `shutdown` is cancelled.
pub async fn run(shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut env = DevEnv(
        DEV_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let key = env
        .get("LEADSTREAM_BOOTSTRAP_ADMIN_KEY")
        .unwrap_or_else(random_key);
    env.0
        .insert("LEADSTREAM_BOOTSTRAP_ADMIN_KEY".into(), key.clone());
    // The embedded broker, unless real brokers are configured. It must outlive every client,
    // so it lives in this frame until the services have stopped.
    let embedded = match env.get("LEADSTREAM_KAFKA_BROKERS") {
        Some(_) => None,
        None => {
            let e = kafka::Embedded::start()?;
            env.0
                .insert("LEADSTREAM_KAFKA_BROKERS".into(), e.bootstrap_servers());
            Some(e)
        }
    };
    let common = CommonConfig::from_source(&env)?;
    if let Some(e) = &embedded {
        e.create_topics(&common.topics, common.partitions)?;
    }
    let gateway_cfg = GatewayConfig::with_common(common.clone(), &env)?;
    let processor_cfg = ProcessorConfig::from_source(&env)?;
    let notifier_cfg = NotifierConfig::with_common(common.clone(), &env)?;
    let store = common
        .open_store()
        .await
        .context("cannot open the store (LEADSTREAM_REDIS_URL)")?;
    let catalog = Catalog::new(store.clone(), common.keys());
    let grace_ms = i64::try_from(notifier_cfg.secret_grace.as_millis()).unwrap_or(i64::MAX);

    // The gateway, with the receiver on its port.
    leadstream_gateway::metrics::install();
    let sink = std::sync::Arc::new(KafkaSink::new(
        common.kafka.clone(),
        common.topics.events.clone(),
        gateway_cfg.produce_timeout,
    )?);
    let addr = gateway_cfg.http_addr;
    let state = AppState::build(gateway_cfg, store.clone(), sink, shutdown.clone());
    state
        .auth
        .catalog
        .bootstrap(Some(&key))
        .await
        .context("cannot bootstrap the default org, OU and admin key")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (LEADSTREAM_HTTP_ADDR)"))?;
    let addr = listener.local_addr()?;
    let extra = receiver::router(catalog.clone(), grace_ms, shutdown.clone());

    let mut services: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
    tracing::info!(%addr, "gateway listening");
    services.spawn(async move {
        let r = leadstream_gateway::server::serve_with(listener, state, extra).await;
        ("gateway", r)
    });
    let (kv, token) = (store.clone(), shutdown.clone());
    services.spawn(async move {
        let r = leadstream_processor::run_with_store(processor_cfg, kv, token).await;
        ("processor", r)
    });
    let secrets = cached(CatalogSource { catalog, grace_ms }, Duration::from_secs(5));
    // Absolute, so the printed walk-through works from any directory.
    let mail_dir = std::path::absolute(&notifier_cfg.email.dir)
        .unwrap_or_else(|_| notifier_cfg.email.dir.clone());
    let smtp = notifier_cfg.email.smtp_url.is_some();
    let (kv, token) = (store.clone(), shutdown.clone());
    services.spawn(async move {
        let r = leadstream_notifier::run_with(notifier_cfg, kv, secrets, token).await;
        ("notifier", r)
    });

    let url = format!("http://{addr}");
    let kafka = match &embedded {
        Some(e) => format!("embedded mock cluster at {}", e.bootstrap_servers()),
        None => common.kafka.brokers.clone(),
    };
    let stored = if common.redis_url.is_some() {
        "Redis (LEADSTREAM_REDIS_URL)"
    } else {
        "in memory (gone when dev stops)"
    };
    let mail = if smtp {
        "SMTP (LEADSTREAM_SMTP_URL)".to_string()
    } else {
        format!("{}/*.eml", mail_dir.display())
    };
    println!(
        "\nleadstream dev is running (Ctrl-C stops it)\n\
         \n  API:        {url}\n  admin key:  {key}\n  webhooks:   {url}/dev/webhooks (built-in receiver)\
         \n  emails:     {mail}\n  Kafka:      {kafka}\n  store:      {stored}\n\
         \nTry it: paste this into another shell.\n\
         \nexport K='{key}' H='{url}' MAIL='{}'\n{WALKTHROUGH}",
        mail_dir.display()
    );

    let mut failure = None;
    while let Some(joined) = services.join_next().await {
        let (name, result) = joined.context("a dev service task panicked")?;
        if !shutdown.is_cancelled() {
            tracing::error!(service = name, "stopped on its own: stopping dev");
            shutdown.cancel();
        }
        if let Err(e) = result {
            failure.get_or_insert(e.context(format!("{name} failed")));
        }
    }
    drop(embedded);
    match failure {
        Some(e) => Err(e),
        None => {
            tracing::info!("dev stopped");
            Ok(())
        }
    }
}

/// A fresh admin key for this run (printed once, on purpose: it is the dev's own).
fn random_key() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("lsdev_{hex}")
}
