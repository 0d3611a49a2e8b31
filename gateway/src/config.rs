//! Gateway configuration: the shared Kafka/Redis section plus what only the HTTP front door
//! needs, read from `LEADSTREAM_*` variables and validated at boot (a bad value stops the
//! gateway with a sentence naming the variable).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LEADSTREAM_HTTP_ADDR` | `0.0.0.0:8080` | listen address; port 0 picks a free port (logged) |
//! | `LEADSTREAM_MAX_EVENT_BYTES` | 65536 | one event (single-event body, or one batch item) |
//! | `LEADSTREAM_MAX_REQUEST_BYTES` | 10485760 | one request body on the wire |
//! | `LEADSTREAM_MAX_DECOMPRESSED_BYTES` | 33554432 | a gzip body after inflating |
//! | `LEADSTREAM_MAX_BATCH_ITEMS` | 1000 | items of `/v1/cdp/events/batch` |
//! | `LEADSTREAM_MAX_IMPORT_ITEMS` | 50000 | events of one bulk import request |
//! | `LEADSTREAM_METRICS_ADDR` | — | operations port: `/metrics`, `/healthz`, `/readyz` there, and `/metrics` no longer on the public port |
//! | `LEADSTREAM_READ_TIMEOUT` | `30s` | request headers, and then the whole body, must arrive within this (408) |
//! | `LEADSTREAM_MAX_IN_FLIGHT` | 1024 | requests served at once; more are shed with 503 + `Retry-After` (0: off) |
//! | `LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC` | 20 | per client address: requests whose key needs a Redis lookup (0: off) |
//! | `LEADSTREAM_UNAUTH_RATE_LIMIT_BURST` | 2 × rate | burst of the above |
//! | `LEADSTREAM_OU_EVENT_RATE` | 100000 | events per second per OU, across its keys (0: off) |
//! | `LEADSTREAM_OU_EVENT_BURST` | max(2 × rate, import items) | burst of the above |
//! | `LEADSTREAM_KEY_EVENT_RATE` | 100000 | events per second per API key (0: off) |
//! | `LEADSTREAM_KEY_EVENT_BURST` | max(2 × rate, import items) | burst of the above |
//! | `LEADSTREAM_MAX_KEYS_PER_OU` | 1000 | API keys bound to one OU (and org-wide keys per organisation) |
//! | `LEADSTREAM_RATE_LIMIT_PER_SEC` | 5000 | requests per second per API key (0: off) |
//! | `LEADSTREAM_RATE_LIMIT_BURST` | 2 × rate | burst per API key |
//! | `LEADSTREAM_KEY_CACHE_TTL` | `10s` | how long a verified key (and OU, event types) is cached |
//! | `LEADSTREAM_PRODUCE_TIMEOUT` | `5s` | broker ack deadline; past it the answer is 503 |
//! | `LEADSTREAM_DEDUPE_TTL` | `7d` | how long idempotency / dedupe answers are kept |
//! | `LEADSTREAM_RETRY_AFTER` | `2s` | `Retry-After` sent with 503 |
//! | `LEADSTREAM_SHUTDOWN_DELAY` | `1s` | `/readyz` is 503 this long before the listener closes |
//! | `LEADSTREAM_SHUTDOWN_GRACE` | `10s` | drain deadline for in-flight requests after that |
//! | `LEADSTREAM_WEBHOOK_SECRET_GRACE` | `24h` | a rotated webhook secret keeps signing this long |
//! | `LEADSTREAM_BOOTSTRAP_ADMIN_KEY` | — | ensure an admin key with this secret (≥ 32 characters) exists; unset: the bootstrap key is removed at start |
//!
//! Plus the shared ones (`LEADSTREAM_KAFKA_BROKERS`, `LEADSTREAM_REDIS_URL`,
//! `LEADSTREAM_TOPIC_PREFIX`, `LEADSTREAM_REDIS_PREFIX`, `LEADSTREAM_PARTITIONS`,
//! `LEADSTREAM_KAFKA_CONFIG`, `LEADSTREAM_KAFKA_LINGER_MS`): see `leadstream_shared::config`.

use std::net::SocketAddr;
use std::time::Duration;

use leadstream_shared::config::{self as cfg, CommonConfig, ConfigError, Env, Source};

/// The bootstrap admin key is a password of the whole installation: at least this long.
pub const MIN_BOOTSTRAP_KEY_CHARS: usize = 32;

/// A secret that never shows in `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub common: CommonConfig,
    pub http_addr: SocketAddr,
    /// The operations port (`/metrics` moves there from the public port).
    pub metrics_addr: Option<SocketAddr>,
    pub max_event_bytes: usize,
    pub max_request_bytes: usize,
    pub max_decompressed_bytes: usize,
    pub max_batch_items: usize,
    pub max_import_items: usize,
    /// Headers, then the whole body, must arrive within this.
    pub read_timeout: Duration,
    /// Requests served at once (health and metrics routes aside); 0: no limit.
    pub max_in_flight: usize,
    /// Events per second (and burst) per OU and per key; a rate of 0 is off.
    pub ou_event_rate: (u32, u32),
    pub key_event_rate: (u32, u32),
    /// API keys bound to one OU (org-wide keys: per organisation).
    pub max_keys_per_ou: usize,
    /// Per client address: requests whose credential needs a Redis lookup; 0: off.
    pub unauth_rate_limit_per_sec: u32,
    pub unauth_rate_limit_burst: u32,
    /// Requests per second per API key; 0 turns rate limiting off.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    pub key_cache_ttl: Duration,
    pub produce_timeout: Duration,
    pub dedupe_ttl: Duration,
    pub retry_after: Duration,
    pub shutdown_delay: Duration,
    pub webhook_secret_grace: Duration,
    pub shutdown_grace: Duration,
    pub bootstrap_admin_key: Option<Secret>,
}

impl GatewayConfig {
    pub fn from_env() -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<GatewayConfig, ConfigError> {
        let common = CommonConfig::from_source(src)?;
        GatewayConfig::with_common(common, src)
    }

    /// Gateway settings over an already-built common section (tests and `leadstream dev`).
    pub fn with_common(
        common: CommonConfig,
        src: &dyn Source,
    ) -> Result<GatewayConfig, ConfigError> {
        let http_addr: SocketAddr = cfg::parse(
            src,
            "LEADSTREAM_HTTP_ADDR",
            SocketAddr::from(([0, 0, 0, 0], 8080)),
        )?;
        let rate: u32 = cfg::parse(src, "LEADSTREAM_RATE_LIMIT_PER_SEC", 5000)?;
        let burst: u32 = cfg::parse(src, "LEADSTREAM_RATE_LIMIT_BURST", rate.saturating_mul(2))?;
        let unauth: u32 = cfg::parse(src, "LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC", 20)?;
        let max_import_items: usize = cfg::parse(src, "LEADSTREAM_MAX_IMPORT_ITEMS", 50_000)?;
        let events = |rate_var: &str, burst_var: &str| -> Result<(u32, u32), ConfigError> {
            let rate: u32 = cfg::parse(src, rate_var, 100_000)?;
            let floor = u32::try_from(max_import_items).unwrap_or(u32::MAX);
            let burst = cfg::parse(src, burst_var, rate.saturating_mul(2).max(floor))?;
            Ok((rate, burst))
        };
        let c = GatewayConfig {
            common,
            http_addr,
            metrics_addr: match src.get("LEADSTREAM_METRICS_ADDR") {
                None => None,
                Some(raw) => Some(raw.trim().parse().map_err(|_| {
                    ConfigError::new(
                        "LEADSTREAM_METRICS_ADDR",
                        format!("{raw:?} is not host:port"),
                    )
                })?),
            },
            max_event_bytes: cfg::parse(src, "LEADSTREAM_MAX_EVENT_BYTES", 64 * 1024)?,
            max_request_bytes: cfg::parse(src, "LEADSTREAM_MAX_REQUEST_BYTES", 10 * 1024 * 1024)?,
            max_decompressed_bytes: cfg::parse(
                src,
                "LEADSTREAM_MAX_DECOMPRESSED_BYTES",
                32 * 1024 * 1024,
            )?,
            max_batch_items: cfg::parse(src, "LEADSTREAM_MAX_BATCH_ITEMS", 1000)?,
            max_import_items,
            ou_event_rate: events("LEADSTREAM_OU_EVENT_RATE", "LEADSTREAM_OU_EVENT_BURST")?,
            key_event_rate: events("LEADSTREAM_KEY_EVENT_RATE", "LEADSTREAM_KEY_EVENT_BURST")?,
            max_keys_per_ou: cfg::parse(src, "LEADSTREAM_MAX_KEYS_PER_OU", 1000)?,
            read_timeout: cfg::duration(src, "LEADSTREAM_READ_TIMEOUT", Duration::from_secs(30))?,
            max_in_flight: cfg::parse(src, "LEADSTREAM_MAX_IN_FLIGHT", 1024)?,
            unauth_rate_limit_per_sec: unauth,
            unauth_rate_limit_burst: cfg::parse(
                src,
                "LEADSTREAM_UNAUTH_RATE_LIMIT_BURST",
                unauth.saturating_mul(2),
            )?,
            rate_limit_per_sec: rate,
            rate_limit_burst: burst,
            key_cache_ttl: cfg::duration(src, "LEADSTREAM_KEY_CACHE_TTL", Duration::from_secs(10))?,
            produce_timeout: cfg::duration(
                src,
                "LEADSTREAM_PRODUCE_TIMEOUT",
                Duration::from_secs(5),
            )?,
            dedupe_ttl: cfg::duration(
                src,
                "LEADSTREAM_DEDUPE_TTL",
                Duration::from_secs(7 * 86_400),
            )?,
            retry_after: cfg::duration(src, "LEADSTREAM_RETRY_AFTER", Duration::from_secs(2))?,
            shutdown_delay: cfg::duration(
                src,
                "LEADSTREAM_SHUTDOWN_DELAY",
                Duration::from_secs(1),
            )?,
            webhook_secret_grace: cfg::duration(
                src,
                "LEADSTREAM_WEBHOOK_SECRET_GRACE",
                Duration::from_secs(86_400),
            )?,
            shutdown_grace: cfg::duration(
                src,
                "LEADSTREAM_SHUTDOWN_GRACE",
                Duration::from_secs(10),
            )?,
            bootstrap_admin_key: src.get("LEADSTREAM_BOOTSTRAP_ADMIN_KEY").map(Secret::new),
        };
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("LEADSTREAM_MAX_EVENT_BYTES", self.max_event_bytes),
            ("LEADSTREAM_MAX_REQUEST_BYTES", self.max_request_bytes),
            (
                "LEADSTREAM_MAX_DECOMPRESSED_BYTES",
                self.max_decompressed_bytes,
            ),
            ("LEADSTREAM_MAX_BATCH_ITEMS", self.max_batch_items),
            ("LEADSTREAM_MAX_IMPORT_ITEMS", self.max_import_items),
        ];
        for (var, v) in positive {
            if v == 0 {
                return Err(ConfigError::new(var, "must be greater than 0"));
            }
        }
        let limit = leadstream_domain::event::MAX_EVENT_BYTES_LIMIT;
        if self.max_event_bytes > limit {
            return Err(ConfigError::new(
                "LEADSTREAM_MAX_EVENT_BYTES",
                format!("must not exceed {limit} (the processor refuses larger records)"),
            ));
        }
        if self.max_event_bytes > self.max_decompressed_bytes {
            return Err(ConfigError::new(
                "LEADSTREAM_MAX_EVENT_BYTES",
                "must not exceed LEADSTREAM_MAX_DECOMPRESSED_BYTES",
            ));
        }
        if self.rate_limit_per_sec > 0 && self.rate_limit_burst == 0 {
            return Err(ConfigError::new(
                "LEADSTREAM_RATE_LIMIT_BURST",
                "must be greater than 0 when rate limiting is on",
            ));
        }
        if self.read_timeout < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "LEADSTREAM_READ_TIMEOUT",
                "must be at least 100ms",
            ));
        }
        if self.produce_timeout < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "LEADSTREAM_PRODUCE_TIMEOUT",
                "must be at least 100ms",
            ));
        }
        if let Some(k) = &self.bootstrap_admin_key {
            if k.expose().trim().chars().count() < MIN_BOOTSTRAP_KEY_CHARS {
                return Err(ConfigError::new(
                    "LEADSTREAM_BOOTSTRAP_ADMIN_KEY",
                    format!("must be at least {MIN_BOOTSTRAP_KEY_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }

    /// Seconds sent in `Retry-After` with a 503.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn src(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.insert("LEADSTREAM_KAFKA_BROKERS".into(), "127.0.0.1:9092".into());
        m
    }

    #[test]
    fn defaults() {
        let c = GatewayConfig::from_source(&src(&[])).unwrap();
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.rate_limit_burst, 10_000);
        assert!(c.bootstrap_admin_key.is_none());
    }

    #[test]
    fn errors_name_the_variable_and_secrets_are_redacted() {
        let e = GatewayConfig::from_source(&src(&[("LEADSTREAM_HTTP_ADDR", "nope")])).unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_HTTP_ADDR");
        let e =
            GatewayConfig::from_source(&src(&[("LEADSTREAM_MAX_EVENT_BYTES", "0")])).unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_MAX_EVENT_BYTES");
        // An event the processor would dead-letter as too large is refused at boot.
        let over = (leadstream_domain::event::MAX_EVENT_BYTES_LIMIT + 1).to_string();
        let e =
            GatewayConfig::from_source(&src(&[("LEADSTREAM_MAX_EVENT_BYTES", &over)])).unwrap_err();
        assert!(e.message.contains("processor"), "{e}");
        let c = GatewayConfig::from_source(&src(&[(
            "LEADSTREAM_BOOTSTRAP_ADMIN_KEY",
            "super-secret-admin-key-0123456789ab",
        )]))
        .unwrap();
        assert!(!format!("{c:?}").contains("super-secret"));
        let e = GatewayConfig::from_source(&src(&[(
            "LEADSTREAM_BOOTSTRAP_ADMIN_KEY",
            "only-twenty-six-characters",
        )]))
        .unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_BOOTSTRAP_ADMIN_KEY");
    }
}
