//! Processor configuration, from `LEADSTREAM_*` variables, validated at boot.

use std::time::Duration;

use leadstream_shared::config::{duration, parse, CommonConfig, ConfigError, Env, Source};

#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub common: CommonConfig,
    /// Consumer group (`LEADSTREAM_PROCESSOR_GROUP`, default `leadstream-processor`).
    pub group_id: String,
    /// Most records handled in one batch (`LEADSTREAM_PROCESSOR_MAX_BATCH`, default 1000).
    pub max_batch: usize,
    /// How long a producer event id is remembered for dedupe (`LEADSTREAM_DEDUPE_TTL`,
    /// default 7d, Kafka's default retention).
    pub dedupe_ttl: Duration,
    /// Events kept per lead for sequence matching (`LEADSTREAM_SEQUENCE_CAP`, default 256).
    pub sequence_cap: usize,
    /// History entries kept per OU and kind (`LEADSTREAM_HISTORY_CAP`, default 100000).
    pub history_cap: usize,
    /// Time allowed for fired records to be acknowledged (`LEADSTREAM_PRODUCE_TIMEOUT`, 30s).
    pub produce_timeout: Duration,
    /// Lead states of owned partitions kept in memory between batches
    /// (`LEADSTREAM_PROCESSOR_CACHED_LEADS`, default 100000; 0 reads every state from Redis).
    pub cached_leads: usize,
}

impl ProcessorConfig {
    pub fn from_env() -> Result<ProcessorConfig, ConfigError> {
        ProcessorConfig::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<ProcessorConfig, ConfigError> {
        let common = CommonConfig::from_source(src)?;
        let max_batch: usize = parse(src, "LEADSTREAM_PROCESSOR_MAX_BATCH", 1000)?;
        if !(1..=100_000).contains(&max_batch) {
            return Err(ConfigError::new(
                "LEADSTREAM_PROCESSOR_MAX_BATCH",
                "must be between 1 and 100000",
            ));
        }
        let sequence_cap: usize = parse(src, "LEADSTREAM_SEQUENCE_CAP", 256)?;
        if !(1..=100_000).contains(&sequence_cap) {
            return Err(ConfigError::new(
                "LEADSTREAM_SEQUENCE_CAP",
                "must be between 1 and 100000",
            ));
        }
        let cached_leads: usize = parse(
            src,
            "LEADSTREAM_PROCESSOR_CACHED_LEADS",
            crate::engine::DEFAULT_CACHED_LEADS,
        )?;
        if cached_leads > 10_000_000 {
            return Err(ConfigError::new(
                "LEADSTREAM_PROCESSOR_CACHED_LEADS",
                "must be between 0 and 10000000",
            ));
        }
        Ok(ProcessorConfig {
            cached_leads,
            group_id: src
                .get("LEADSTREAM_PROCESSOR_GROUP")
                .unwrap_or_else(|| "leadstream-processor".into()),
            max_batch,
            dedupe_ttl: duration(
                src,
                "LEADSTREAM_DEDUPE_TTL",
                Duration::from_secs(7 * 86_400),
            )?,
            sequence_cap,
            history_cap: parse(src, "LEADSTREAM_HISTORY_CAP", 100_000)?,
            produce_timeout: duration(src, "LEADSTREAM_PRODUCE_TIMEOUT", Duration::from_secs(30))?,
            common,
        })
    }
}
