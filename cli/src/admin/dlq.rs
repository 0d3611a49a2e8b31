//! `admin dlq replay`: drain the notifications DLQ back into delivery.
//!
//! Each dead letter names one delivery: the fired record (its payload) and the endpoint
//! (header `leadstream-endpoint-id`, else the letter's `target`). The delivery's durable job in
//! Redis decides what happens, so a replay never delivers twice: the notifier's job store makes
//! that decision (`notifier::jobs::JobStore::replay`, whose table says what each state comes
//! to) — a dead delivery whose DLQ record was sent is reset to pending and due now, one that
//! expired is created anew, and a delivered or still retrying one is skipped.
//!
//! The notifier's dispatcher polls the due set and takes the job with a fresh retry schedule.
//! Progress is a consumer group (`--group`, default `leadstream-dlq-replay`) whose offsets are
//! committed after the run's Redis writes: the next run continues where this one stopped;
//! `--from-beginning` re-reads everything (harmless: delivered ones are skipped). The group reads
//! by explicit assignment, up to each partition's high watermark at the start, then stops.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use leadstream_notifier::endpoint::Endpoint;
use leadstream_notifier::jobs::{JobStore, Replay, ReplayError, ReplayOptions};
use leadstream_notifier::NotifierConfig;
use leadstream_shared::avro::{decode_dead_letter, decode_fired};
use leadstream_shared::config::parse_duration;
use leadstream_shared::ids::{now_ms, parse_rfc3339_ms};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::kafka::{committed, partitions, watermarks};

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Re-deliver dead letters with a fresh retry schedule (idempotent; see docs/runbook.md).
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Only dead letters of this OU.
    #[arg(long)]
    ou: Option<String>,
    /// Only dead letters of this trigger (or sequence) id.
    #[arg(long)]
    trigger: Option<String>,
    /// Only this endpoint: its id (`webhook_…`) or its target as the delivery log shows it.
    #[arg(long)]
    endpoint: Option<String>,
    /// Only letters that failed at or after this time: RFC 3339, or a duration ago (`2h`).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// Report what would be replayed; write nothing, commit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replay at most this many deliveries; the next run continues after the last letter read.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Read the DLQ from its beginning, not from where the group stopped.
    #[arg(long)]
    from_beginning: bool,
    /// The consumer group that records how far replays have read.
    #[arg(long, default_value = "leadstream-dlq-replay")]
    group: String,
    /// Re-enable endpoints a 410 Gone disabled for the trigger (else such letters are skipped).
    #[arg(long)]
    reenable_gone: bool,
    /// Give up when no record arrives for this long although the DLQ holds more.
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,
}

fn parse_since(s: &str) -> Result<i64, String> {
    if let Some(ms) = parse_rfc3339_ms(s) {
        return Ok(ms);
    }
    parse_duration(s)
        .map(|d| now_ms() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time nor a duration like 2h or 7d"))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

/// What one dead letter came to.
enum Outcome {
    Replayed,
    Skipped(&'static str),
    Filtered,
    Undecodable(String),
}

#[derive(Default)]
struct Counts {
    replayed: u64,
    skipped: u64,
    undecodable: u64,
    filtered: u64,
}

struct Ctx {
    args: ReplayArgs,
    jobs: JobStore,
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if args.group.trim().is_empty() {
        bail!("--group must not be empty");
    }
    let cfg = NotifierConfig::from_env()?;
    let c = &cfg.common;
    let store = super::redis(c).await?;
    let topic = c.topics.dlq.clone();
    let consumer: StreamConsumer = c
        .kafka
        .consumer_config(&args.group)
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {}", c.kafka.brokers))?;
    let parts = partitions(&consumer, &topic)?;
    let marks = watermarks(&consumer, &topic, &parts)?;
    let done = if args.from_beginning {
        vec![None; parts.len()]
    } else {
        committed(&consumer, &topic, &parts)?
    };
    // Per partition: where reading starts and the end (the high watermark now).
    let mut pending: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (i, p) in parts.iter().enumerate() {
        let (low, high) = marks[i];
        let start = done[i].unwrap_or(low).max(low);
        if start < high {
            pending.insert(*p, (start, high));
            tpl.add_partition_offset(&topic, *p, Offset::Offset(start))?;
        }
    }
    let retention_ms = u64::try_from(cfg.retention.as_millis()).unwrap_or(u64::MAX);
    let ctx = Ctx {
        jobs: JobStore::new(store, c.keys(), retention_ms),
        args,
    };
    let mut counts = Counts::default();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    if !pending.is_empty() {
        consumer
            .assign(&tpl)
            .context("cannot assign the DLQ partitions")?;
    }
    while !pending.is_empty() {
        if ctx.args.limit.is_some_and(|l| counts.replayed >= l) {
            break;
        }
        let m = match tokio::time::timeout(ctx.args.timeout, consumer.recv()).await {
            Err(_) => bail!(
                "no record from {topic} for {:?} although partitions {:?} hold more; nothing \
                 after the last record read was committed",
                ctx.args.timeout,
                pending.keys().collect::<Vec<_>>()
            ),
            Ok(Err(e)) => {
                eprintln!("reading {topic}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Ok(Ok(m)) => m,
        };
        let p = m.partition();
        let Some(&(start, end)) = pending.get(&p) else {
            continue;
        };
        if m.offset() < start || m.offset() >= end {
            continue;
        }
        let outcome = ctx.handle(&m).await?;
        let at = format!("{topic}[{p}]@{}", m.offset());
        match outcome {
            Outcome::Replayed => counts.replayed += 1,
            Outcome::Skipped(_) => counts.skipped += 1,
            Outcome::Filtered => counts.filtered += 1,
            Outcome::Undecodable(why) => {
                counts.undecodable += 1;
                eprintln!("undecodable {at}: {why}");
            }
        }
        next.insert(p, m.offset() + 1);
        if m.offset() + 1 >= end {
            pending.remove(&p);
        }
    }
    if !ctx.args.dry_run && !next.is_empty() {
        let mut commit = TopicPartitionList::new();
        for (p, o) in &next {
            commit.add_partition_offset(&topic, *p, Offset::Offset(*o))?;
        }
        tokio::task::block_in_place(|| consumer.commit(&commit, CommitMode::Sync))
            .context("replayed, but the group's offsets were not committed (a rerun skips what was replayed)")?;
    }
    println!(
        "{}replayed={} skipped={} undecodable={} filtered={}",
        if ctx.args.dry_run { "dry run: " } else { "" },
        counts.replayed,
        counts.skipped,
        counts.undecodable,
        counts.filtered
    );
    Ok(())
}

impl Ctx {
    async fn handle(&self, m: &BorrowedMessage<'_>) -> anyhow::Result<Outcome> {
        let Some(bytes) = m.payload() else {
            return Ok(Outcome::Undecodable("empty record".into()));
        };
        let letter = match decode_dead_letter(bytes) {
            Ok(l) => l,
            Err(e) => return Ok(Outcome::Undecodable(format!("not a DeadLetter: {e}"))),
        };
        let fired = match decode_fired(&letter.payload) {
            Ok(f) => f,
            Err(e) => {
                return Ok(Outcome::Undecodable(format!(
                    "payload is not a TriggerFired: {e}"
                )))
            }
        };
        let endpoint_id = header(m, "leadstream-endpoint-id");
        let ep = Endpoint::all(&fired.targets)
            .into_iter()
            .find(|e| match &endpoint_id {
                Some(id) => &e.id() == id,
                None => letter.target.as_deref() == Some(e.display().as_str()),
            });
        let Some(ep) = ep else {
            return Ok(Outcome::Undecodable(format!(
                "endpoint {} is not among fired record {}'s targets",
                endpoint_id.or(letter.target).unwrap_or_default(),
                fired.fired_id
            )));
        };
        let a = &self.args;
        let keep = a.ou.as_ref().is_none_or(|o| *o == fired.ou_id)
            && a.trigger.as_ref().is_none_or(|t| *t == fired.trigger_id)
            && a.endpoint
                .as_ref()
                .is_none_or(|e| *e == ep.id() || *e == ep.display() || *e == ep.target)
            && a.since.is_none_or(|s| letter.failed_at_ms >= s);
        if !keep {
            return Ok(Outcome::Filtered);
        }
        let opts = ReplayOptions {
            dry_run: a.dry_run,
            reenable_gone: a.reenable_gone,
        };
        let outcome = match self
            .jobs
            .replay(
                &fired,
                &ep,
                letter.source_partition,
                letter.source_offset,
                opts,
            )
            .await
            .map_err(|e| match e {
                ReplayError::KeptChanging => {
                    anyhow!("{e}; nothing was committed, run the replay again")
                }
                ReplayError::Store(e) => e.into(),
            })
            .with_context(|| format!("cannot replay fired record {}", fired.fired_id))?
        {
            Replay::Replayed => Outcome::Replayed,
            Replay::Delivered => Outcome::Skipped("skipped: delivered"),
            Replay::UnderWay => Outcome::Skipped("skipped: delivery under way"),
            Replay::Gone => {
                Outcome::Skipped("skipped: endpoint disabled by 410 Gone (--reenable-gone)")
            }
        };
        let verb = match &outcome {
            Outcome::Replayed if a.dry_run => "would replay",
            Outcome::Replayed => "replayed",
            Outcome::Skipped(why) => why,
            _ => "",
        };
        println!(
            "{verb}\t{}\t{}\t{}\t{}",
            fired.ou_id,
            fired.trigger_id,
            fired.fired_id,
            ep.display()
        );
        Ok(outcome)
    }
}

fn header(m: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    let hs = m.headers()?;
    hs.iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
