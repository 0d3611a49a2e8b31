//! `admin topics` and `admin lag`, and the broker look-ups `admin dlq replay` shares: a topic's
//! partitions, their watermarks and a group's committed offsets.
//!
//! librdkafka's metadata calls block, so they run under `block_in_place` with a timeout each.

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use leadstream_shared::config::CommonConfig;
use leadstream_shared::kafka::ensure_topics;
use leadstream_shared::store::offsets::AppliedOffsets;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The default group the processor consumes with (`LEADSTREAM_PROCESSOR_GROUP`).
const PROCESSOR_GROUP: &str = "leadstream-processor";

#[derive(Args, Debug)]
pub struct TopicsArgs {
    /// Only describe the topics; create nothing.
    #[arg(long)]
    pub describe_only: bool,
}

#[derive(Args, Debug)]
pub struct LagArgs {
    /// The consumer group, e.g. leadstream-processor, leadstream-notifier, leadstream-dlq-replay.
    #[arg(long)]
    pub group: String,
    /// Topics to report: events, fired, dlq, events-dlq (default: events and fired).
    #[arg(long = "topic", value_enum)]
    pub topics: Vec<TopicName>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicName {
    Events,
    Fired,
    Dlq,
    EventsDlq,
}

impl TopicName {
    fn of(self, cfg: &CommonConfig) -> String {
        let t = &cfg.topics;
        match self {
            TopicName::Events => t.events.clone(),
            TopicName::Fired => t.fired.clone(),
            TopicName::Dlq => t.dlq.clone(),
            TopicName::EventsDlq => t.events_dlq.clone(),
        }
    }
}

/// A consumer used only for metadata and offsets (it never subscribes).
pub fn client(cfg: &CommonConfig, group: &str) -> anyhow::Result<BaseConsumer> {
    cfg.kafka
        .consumer_config(group)
        .create()
        .with_context(|| format!("cannot create a Kafka client for {}", cfg.kafka.brokers))
}

/// The partition ids of `topic`; an error naming the topic when it does not exist.
pub fn partitions<C: Consumer>(c: &C, topic: &str) -> anyhow::Result<Vec<i32>> {
    let md = tokio::task::block_in_place(|| c.fetch_metadata(Some(topic), TIMEOUT))
        .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        bail!("topic {topic} does not exist (run `leadstream admin topics` to create it)");
    };
    if let Some(e) = t.error() {
        bail!(
            "topic {topic} is not available: {} (run `leadstream admin topics` to create it)",
            rdkafka::error::RDKafkaErrorCode::from(e)
        );
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if ps.is_empty() {
        bail!("topic {topic} has no partitions (run `leadstream admin topics` to create it)");
    }
    ps.sort_unstable();
    Ok(ps)
}

/// (low, high) watermark of each partition.
pub fn watermarks<C: Consumer>(
    c: &C,
    topic: &str,
    parts: &[i32],
) -> anyhow::Result<Vec<(i64, i64)>> {
    parts
        .iter()
        .map(|p| {
            tokio::task::block_in_place(|| c.fetch_watermarks(topic, *p, TIMEOUT))
                .with_context(|| format!("cannot read the watermarks of {topic}[{p}]"))
        })
        .collect()
}

/// The group's committed offset per partition (`None`: nothing committed).
pub fn committed<C: Consumer>(
    c: &C,
    topic: &str,
    parts: &[i32],
) -> anyhow::Result<Vec<Option<i64>>> {
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition(topic, *p);
    }
    let got = tokio::task::block_in_place(|| c.committed_offsets(tpl, TIMEOUT))
        .with_context(|| format!("cannot read the group's committed offsets of {topic}"))?;
    Ok(parts
        .iter()
        .map(|p| {
            got.find_partition(topic, *p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
        })
        .collect())
}

/// Create every topic leadstream uses (idempotent), then describe them.
pub async fn topics(args: TopicsArgs) -> anyhow::Result<()> {
    let cfg = super::common()?;
    let names = [
        cfg.topics.events.clone(),
        cfg.topics.fired.clone(),
        cfg.topics.dlq.clone(),
        cfg.topics.events_dlq.clone(),
    ];
    if !args.describe_only {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        ensure_topics(&cfg.kafka, &refs, cfg.partitions, cfg.replication_factor).await?;
    }
    let c = client(&cfg, "leadstream-admin")?;
    println!("topic\tpartition\tlow\thigh");
    for topic in &names {
        let parts = partitions(&c, topic)?;
        if parts.len() != cfg.partitions as usize {
            eprintln!(
                "note: {topic} has {} partitions, LEADSTREAM_PARTITIONS is {} (existing topics \
                 are never changed; see docs/runbook.md before changing partitions)",
                parts.len(),
                cfg.partitions
            );
        }
        for (p, (low, high)) in parts.iter().zip(watermarks(&c, topic, &parts)?) {
            println!("{topic}\t{p}\t{low}\t{high}");
        }
    }
    Ok(())
}

/// Lag per partition: high watermark − committed offset; for the events topic also the
/// processor's applied offset in Redis (its real progress) when Redis is configured.
pub async fn lag(args: LagArgs) -> anyhow::Result<()> {
    let cfg = super::common()?;
    if args.group.trim().is_empty() {
        bail!("--group must not be empty");
    }
    let topics = if args.topics.is_empty() {
        vec![TopicName::Events, TopicName::Fired]
    } else {
        args.topics.clone()
    };
    let store = match &cfg.redis_url {
        Some(_) => Some(super::redis(&cfg).await?),
        None => None,
    };
    let c = client(&cfg, &args.group)?;
    println!("topic\tpartition\thigh\tcommitted\tlag\tapplied\tapplied_lag");
    let mut total = 0i64;
    for name in topics {
        let topic = name.of(&cfg);
        let parts = partitions(&c, &topic)?;
        let marks = watermarks(&c, &topic, &parts)?;
        let done = committed(&c, &topic, &parts)?;
        // The processor's applied offsets (the source of truth it resumes from).
        let applied: Vec<Option<i64>> = match (&store, name) {
            (Some(kv), TopicName::Events) => {
                let got = AppliedOffsets::new(kv.clone(), cfg.keys(), &topic)
                    .get(&parts)
                    .await
                    .context("cannot read the processor's applied offsets from Redis")?;
                parts
                    .iter()
                    .map(|p| got.get(p).copied().flatten())
                    .collect()
            }
            _ => vec![None; parts.len()],
        };
        for (i, p) in parts.iter().enumerate() {
            let (low, high) = marks[i];
            let from = done[i].unwrap_or(low);
            let lag = (high - from).max(0);
            total += lag;
            let committed = done[i].map_or("-".to_string(), |o| o.to_string());
            let (applied_col, applied_lag) = match applied[i] {
                Some(a) => (a.to_string(), (high - (a + 1)).max(0).to_string()),
                None if name == TopicName::Events && store.is_some() => {
                    ("-".into(), (high - low).max(0).to_string())
                }
                None => ("-".into(), "-".into()),
            };
            println!("{topic}\t{p}\t{high}\t{committed}\t{lag}\t{applied_col}\t{applied_lag}");
        }
    }
    println!("total lag: {total}");
    if args.group != PROCESSOR_GROUP && topics_has_events(&args.topics) {
        eprintln!(
            "note: applied offsets are the processor's, whatever --group says (the processor's \
             default group is {PROCESSOR_GROUP})"
        );
    }
    Ok(())
}

fn topics_has_events(t: &[TopicName]) -> bool {
    t.is_empty() || t.contains(&TopicName::Events)
}
