//! Typed configuration shared by every service, read from `LEADSTREAM_*` variables and validated
//! at boot: a bad value stops the service with a sentence naming the variable, never at the
//! first message.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::{KafkaSettings, Topics};

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            var: var.to_string(),
            message: message.into(),
        }
    }
}

/// Where configuration values come from; the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, var: &str) -> Option<String>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, var: &str) -> Option<String> {
        BTreeMap::get(self, var).cloned()
    }
}

/// Read a variable and parse it, with the variable's name in the error.
pub fn parse<T: std::str::FromStr>(
    src: &dyn Source,
    var: &str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(var) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(var, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// Parse a duration like `250ms`, `5s`, `5m`, `2h`, `1d` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 5s, 5m, 2h or 1d"))?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        other => return Err(format!("unknown duration unit {other:?} in {text:?}")),
    };
    Ok(Duration::from_millis(ms))
}

pub fn duration(src: &dyn Source, var: &str, default: Duration) -> Result<Duration, ConfigError> {
    match src.get(var) {
        None => Ok(default),
        Some(raw) => parse_duration(&raw).map_err(|m| ConfigError::new(var, m)),
    }
}

/// What every service needs: brokers, Redis, names.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    /// `None`: the in-memory store (only `leadstream dev` allows that).
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    /// Partitions for topics the service creates.
    pub partitions: i32,
    pub replication_factor: i32,
}

impl CommonConfig {
    pub fn from_env() -> Result<CommonConfig, ConfigError> {
        CommonConfig::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<CommonConfig, ConfigError> {
        let brokers = src.get("LEADSTREAM_KAFKA_BROKERS").ok_or_else(|| {
            ConfigError::new(
                "LEADSTREAM_KAFKA_BROKERS",
                "is required (comma-separated host:port list, e.g. 127.0.0.1:9092)",
            )
        })?;
        if brokers.split(',').any(|b| {
            let b = b.trim();
            b.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(ConfigError::new(
                "LEADSTREAM_KAFKA_BROKERS",
                format!("{brokers:?} is not a comma-separated host:port list"),
            ));
        }
        let redis_url = src.get("LEADSTREAM_REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return Err(ConfigError::new(
                    "LEADSTREAM_REDIS_URL",
                    format!("{url:?} must start with redis://, rediss:// or unix://"),
                ));
            }
        }
        let prefix = src
            .get("LEADSTREAM_TOPIC_PREFIX")
            .unwrap_or_else(|| "leadstream".into());
        validate_name("LEADSTREAM_TOPIC_PREFIX", &prefix)?;
        let redis_prefix = src
            .get("LEADSTREAM_REDIS_PREFIX")
            .unwrap_or_else(|| "leadstream".into());
        validate_name("LEADSTREAM_REDIS_PREFIX", &redis_prefix)?;
        let partitions: i32 = parse(src, "LEADSTREAM_PARTITIONS", 12)?;
        if !(1..=10_000).contains(&partitions) {
            return Err(ConfigError::new(
                "LEADSTREAM_PARTITIONS",
                "must be between 1 and 10000",
            ));
        }
        let replication_factor: i32 = parse(src, "LEADSTREAM_REPLICATION_FACTOR", 1)?;
        let mut overrides = BTreeMap::new();
        // Any librdkafka property can be passed as LEADSTREAM_KAFKA_<PROPERTY> with dots as
        // underscores is too ambiguous; instead one variable holds `key=value,key=value`.
        if let Some(extra) = src.get("LEADSTREAM_KAFKA_CONFIG") {
            for pair in extra.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    ConfigError::new(
                        "LEADSTREAM_KAFKA_CONFIG",
                        format!("{pair:?} is not key=value"),
                    )
                })?;
                overrides.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        Ok(CommonConfig {
            kafka: KafkaSettings {
                brokers,
                overrides,
                fetch_wait_max_ms: parse(src, "LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", 100)?,
                linger_ms: parse(src, "LEADSTREAM_KAFKA_LINGER_MS", 5)?,
            },
            topics: Topics::from_prefix(&prefix),
            redis_url,
            redis_prefix,
            partitions,
            replication_factor,
        })
    }

    pub fn keys(&self) -> crate::keys::Keys {
        crate::keys::Keys::new(self.redis_prefix.clone())
    }
}

fn validate_name(var: &str, v: &str) -> Result<(), ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!("{v:?} may only contain letters, digits, '.', '_' and '-' (1-100 chars)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn brokers_are_required_and_checked() {
        let e = CommonConfig::from_source(&src(&[])).unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_KAFKA_BROKERS");
        let e =
            CommonConfig::from_source(&src(&[("LEADSTREAM_KAFKA_BROKERS", "nohost")])).unwrap_err();
        assert!(e.message.contains("host:port"));
        let ok = CommonConfig::from_source(&src(&[
            ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:9092"),
            ("LEADSTREAM_TOPIC_PREFIX", "t1"),
        ]))
        .unwrap();
        assert_eq!(ok.topics.events, "t1.events.v1");
        assert_eq!(ok.partitions, 12);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = CommonConfig::from_source(&src(&[
            ("LEADSTREAM_KAFKA_BROKERS", "a:1"),
            ("LEADSTREAM_PARTITIONS", "many"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_PARTITIONS");
        let e = CommonConfig::from_source(&src(&[
            ("LEADSTREAM_KAFKA_BROKERS", "a:1"),
            ("LEADSTREAM_REDIS_URL", "http://x"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_REDIS_URL");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
