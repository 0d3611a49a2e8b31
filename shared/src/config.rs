//! Typed configuration shared by every service, read from `LEADSTREAM_*` variables and validated
//! at boot: a bad value stops the service with a sentence naming the variable, never at the
//! first message.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::{KafkaSettings, Topics};
use crate::store::split_urls;

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

/// What every service needs: brokers, Redis, names. `Debug` hides the Redis password and the
/// secret Kafka properties.
#[derive(Clone)]
pub struct CommonConfig {
    pub kafka: KafkaSettings,
    pub topics: Topics,
    /// `None`: the in-memory store (only `leadstream dev` allows that).
    pub redis_url: Option<String>,
    /// The store is a Redis Cluster: `LEADSTREAM_REDIS_URL` lists several nodes, or
    /// `LEADSTREAM_REDIS_CLUSTER=true`. Keys then carry hash tags (see [`crate::keys`]).
    pub redis_cluster: bool,
    /// `LEADSTREAM_REDIS_CA_FILE`: PEM CA certificate(s) to trust for `rediss://` instead of the
    /// system's roots (managed Redis with a private CA).
    pub redis_ca_file: Option<std::path::PathBuf>,
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
        let urls: Vec<&str> = redis_url.as_deref().map(split_urls).unwrap_or_default();
        if redis_url.is_some() && urls.is_empty() {
            return Err(ConfigError::new(
                "LEADSTREAM_REDIS_URL",
                "is an empty list; give redis://host:port (or several, comma-separated, for a \
                 Redis Cluster)",
            ));
        }
        for url in &urls {
            check_redis_url(url, urls.len() > 1)?;
        }
        let cluster_flag: Option<bool> = match src.get("LEADSTREAM_REDIS_CLUSTER") {
            None => None,
            Some(v) => Some(match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError::new(
                        "LEADSTREAM_REDIS_CLUSTER",
                        format!("{v:?} is not true or false"),
                    ))
                }
            }),
        };
        if cluster_flag == Some(false) && urls.len() > 1 {
            return Err(ConfigError::new(
                "LEADSTREAM_REDIS_CLUSTER",
                format!(
                    "is false but LEADSTREAM_REDIS_URL lists {} nodes; a list of URLs is only \
                     valid for a Redis Cluster",
                    urls.len()
                ),
            ));
        }
        if cluster_flag == Some(true) && redis_url.is_none() {
            return Err(ConfigError::new(
                "LEADSTREAM_REDIS_CLUSTER",
                "is true but LEADSTREAM_REDIS_URL is not set; give the cluster's node URLs",
            ));
        }
        let redis_cluster = cluster_flag.unwrap_or(urls.len() > 1);
        let redis_ca_file = src
            .get("LEADSTREAM_REDIS_CA_FILE")
            .map(std::path::PathBuf::from);
        if let Some(ca) = &redis_ca_file {
            if urls.is_empty() || !urls.iter().all(|u| u.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "LEADSTREAM_REDIS_CA_FILE",
                    "is only used with a rediss:// LEADSTREAM_REDIS_URL (TLS); set the URL to \
                     rediss://… or remove the variable",
                ));
            }
            check_pem_certificates("LEADSTREAM_REDIS_CA_FILE", ca)?;
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
            check_kafka_security(&overrides)?;
        }
        Ok(CommonConfig {
            kafka: KafkaSettings {
                brokers,
                overrides,
                fetch_wait_max_ms: parse(src, "LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", 100)?,
                linger_ms: parse(src, "LEADSTREAM_KAFKA_LINGER_MS", 5)?,
                test_broker_quirks: parse(src, "LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", false)?,
            },
            topics: Topics::from_prefix(&prefix),
            redis_url,
            redis_cluster,
            redis_ca_file,
            redis_prefix,
            partitions,
            replication_factor,
        })
    }

    /// The key layout: with hash tags on a Redis Cluster, the plain layout otherwise.
    pub fn keys(&self) -> crate::keys::Keys {
        if self.redis_cluster {
            crate::keys::Keys::for_cluster(self.redis_prefix.clone())
        } else {
            crate::keys::Keys::new(self.redis_prefix.clone())
        }
    }

    /// Open the store the way every service does: the Redis server or Redis Cluster of
    /// `LEADSTREAM_REDIS_URL` (TLS with `redis_ca_file` when given), or the in-memory store when
    /// none is configured (callers that require Redis check [`CommonConfig::redis_url`] first).
    pub async fn open_store(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        crate::store::open_with(
            self.redis_url.as_deref(),
            self.redis_cluster,
            self.redis_ca_file.as_deref(),
        )
        .await
    }
}

impl std::fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonConfig")
            .field("kafka", &self.kafka)
            .field("topics", &self.topics)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_ca_file", &self.redis_ca_file)
            .field("redis_prefix", &self.redis_prefix)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .finish()
    }
}

/// A URL with its password (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    if url.contains(',') {
        // A Redis Cluster's node list: each URL redacted.
        return split_urls(url)
            .into_iter()
            .map(redact_url)
            .collect::<Vec<_>>()
            .join(",");
    }
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".to_string(),
    }
}

/// A file that must hold at least one PEM certificate (a CA to trust).
fn check_pem_certificates(var: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError::new(var, format!("{} cannot be read: {e}", path.display())))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(()),
        Ok(_) => Err(ConfigError::new(
            var,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        )),
        Err(e) => Err(ConfigError::new(
            var,
            format!("{} is not a PEM certificate file: {e}", path.display()),
        )),
    }
}

/// The SASL mechanisms librdkafka has built in with TLS (no Kerberos: it is not built).
const SASL_MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Security properties of `LEADSTREAM_KAFKA_CONFIG` that would otherwise fail only at the first
/// connection: the protocol, the SASL mechanism and its credentials, the CA file.
fn check_kafka_security(props: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    const VAR: &str = "LEADSTREAM_KAFKA_CONFIG";
    let protocol = props
        .get("security.protocol")
        .map(|p| p.to_ascii_uppercase())
        .unwrap_or_else(|| "PLAINTEXT".into());
    if !["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"].contains(&protocol.as_str()) {
        return Err(ConfigError::new(
            VAR,
            format!("security.protocol={protocol} is not one of PLAINTEXT, SSL, SASL_SSL, SASL_PLAINTEXT"),
        ));
    }
    let sasl = protocol.starts_with("SASL_");
    let mechanism = props
        .get("sasl.mechanism")
        .or_else(|| props.get("sasl.mechanisms"))
        .map(|m| m.to_ascii_uppercase());
    if sasl {
        let m = mechanism.clone().unwrap_or_else(|| "GSSAPI".into());
        if !SASL_MECHANISMS.contains(&m.as_str()) {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "sasl.mechanism={m} is not available; use one of {} (Kerberos/GSSAPI is \
                     not built in)",
                    SASL_MECHANISMS.join(", ")
                ),
            ));
        }
        if m != "OAUTHBEARER" {
            for p in ["sasl.username", "sasl.password"] {
                if props.get(p).is_none_or(|v| v.is_empty()) {
                    return Err(ConfigError::new(
                        VAR,
                        format!("security.protocol={protocol} with sasl.mechanism={m} needs {p}"),
                    ));
                }
            }
        }
    } else if mechanism.is_some() {
        return Err(ConfigError::new(
            VAR,
            format!(
                "sasl.mechanism is set but security.protocol={protocol} uses no SASL; use SASL_SSL"
            ),
        ));
    }
    if let Some(ca) = props.get("ssl.ca.location") {
        if !protocol.ends_with("SSL") {
            return Err(ConfigError::new(
                VAR,
                format!("ssl.ca.location is set but security.protocol={protocol} uses no TLS; use SSL or SASL_SSL"),
            ));
        }
        if ca != "probe" && !std::path::Path::new(ca).is_dir() {
            check_pem_certificates(VAR, std::path::Path::new(ca))
                .map_err(|e| ConfigError::new(VAR, format!("ssl.ca.location: {}", e.message)))?;
        }
    }
    Ok(())
}

fn check_redis_url(url: &str, in_list: bool) -> Result<(), ConfigError> {
    let var = "LEADSTREAM_REDIS_URL";
    if in_list && url.starts_with("unix://") {
        return Err(ConfigError::new(
            var,
            format!("{url:?}: Redis Cluster nodes are reached over TCP, not unix sockets"),
        ));
    }
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        let what = if in_list {
            "every URL of the list"
        } else {
            "the URL"
        };
        return Err(ConfigError::new(
            var,
            format!("{url:?}: {what} must start with redis://, rediss:// or unix://"),
        ));
    }
    if let Err(e) = url::Url::parse(url) {
        return Err(ConfigError::new(
            var,
            format!("{url:?} is not a valid URL: {e}"),
        ));
    }
    Ok(())
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

    fn with(pairs: &[(&str, &str)]) -> Result<CommonConfig, ConfigError> {
        let mut all = vec![("LEADSTREAM_KAFKA_BROKERS", "a:1")];
        all.extend_from_slice(pairs);
        CommonConfig::from_source(&src(&all))
    }

    #[test]
    fn kafka_security_is_checked_at_start() {
        let ok = with(&[(
            "LEADSTREAM_KAFKA_CONFIG",
            "security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,sasl.username=u,sasl.password=p",
        )])
        .unwrap();
        assert_eq!(ok.kafka.overrides["sasl.mechanism"], "SCRAM-SHA-512");
        for (conf, needle) in [
            ("security.protocol=TLS", "security.protocol=TLS"),
            ("security.protocol=SASL_SSL,sasl.mechanism=GSSAPI", "GSSAPI"),
            ("security.protocol=SASL_SSL", "GSSAPI"),
            (
                "security.protocol=SASL_SSL,sasl.mechanism=PLAIN,sasl.username=u",
                "sasl.password",
            ),
            ("sasl.mechanism=PLAIN", "use SASL_SSL"),
            ("ssl.ca.location=/nonexistent/ca.pem", "uses no TLS"),
            (
                "security.protocol=SSL,ssl.ca.location=/nonexistent/ca.pem",
                "cannot be read",
            ),
        ] {
            let e = with(&[("LEADSTREAM_KAFKA_CONFIG", conf)]).unwrap_err();
            assert_eq!(e.var, "LEADSTREAM_KAFKA_CONFIG");
            assert!(e.message.contains(needle), "{conf}: {e}");
        }
    }

    #[test]
    fn redis_ca_file_needs_tls_and_a_certificate() {
        let e = with(&[
            ("LEADSTREAM_REDIS_URL", "redis://h:6379"),
            ("LEADSTREAM_REDIS_CA_FILE", "/nonexistent"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "LEADSTREAM_REDIS_CA_FILE");
        assert!(e.message.contains("rediss://"), "{e}");
        let e = with(&[
            ("LEADSTREAM_REDIS_URL", "rediss://h:6379"),
            ("LEADSTREAM_REDIS_CA_FILE", "/nonexistent"),
        ])
        .unwrap_err();
        assert!(e.message.contains("cannot be read"), "{e}");
        let not_pem = std::env::temp_dir().join(format!("ls-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "hello").unwrap();
        let e = with(&[
            ("LEADSTREAM_REDIS_URL", "rediss://h:6379"),
            ("LEADSTREAM_REDIS_CA_FILE", not_pem.to_str().unwrap()),
        ])
        .unwrap_err();
        let _ = std::fs::remove_file(&not_pem);
        assert!(e.message.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = with(&[
            ("LEADSTREAM_REDIS_URL", "rediss://default:redis-secret@h:6379"),
            (
                "LEADSTREAM_KAFKA_CONFIG",
                "security.protocol=SASL_SSL,sasl.mechanism=PLAIN,sasl.username=key,sasl.password=kafka-secret",
            ),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("redis-secret") && !shown.contains("kafka-secret"),
            "{shown}"
        );
        assert!(
            shown.contains("sasl.username") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn redis_cluster_is_a_list_or_the_flag() {
        let base = [("LEADSTREAM_KAFKA_BROKERS", "a:1")];
        let cfg = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            CommonConfig::from_source(&src(&all))
        };
        let single = cfg(&[("LEADSTREAM_REDIS_URL", "redis://r:6379")]).unwrap();
        assert!(!single.redis_cluster);
        assert_eq!(single.keys(), crate::keys::Keys::new("leadstream"));
        let list = cfg(&[("LEADSTREAM_REDIS_URL", "redis://a:7000, redis://b:7001")]).unwrap();
        assert!(list.redis_cluster);
        assert_eq!(list.keys(), crate::keys::Keys::for_cluster("leadstream"));
        let flag = cfg(&[
            ("LEADSTREAM_REDIS_URL", "redis://a:7000"),
            ("LEADSTREAM_REDIS_CLUSTER", "true"),
        ])
        .unwrap();
        assert!(flag.redis_cluster);
        assert_eq!(
            redact_url("redis://:pw@a:7000, redis://u:pw@b:7001"),
            "redis://:***@a:7000,redis://u:***@b:7001"
        );

        for (extra, var, needle) in [
            (
                vec![("LEADSTREAM_REDIS_URL", "redis://a:7000,http://b:7001")],
                "LEADSTREAM_REDIS_URL",
                "\"http://b:7001\": every URL of the list",
            ),
            (
                vec![("LEADSTREAM_REDIS_URL", " , ")],
                "LEADSTREAM_REDIS_URL",
                "empty list",
            ),
            (
                vec![("LEADSTREAM_REDIS_URL", "redis://a:7000,unix:///r.sock")],
                "LEADSTREAM_REDIS_URL",
                "unix sockets",
            ),
            (
                vec![("LEADSTREAM_REDIS_URL", "redis://a:notaport")],
                "LEADSTREAM_REDIS_URL",
                "not a valid URL",
            ),
            (
                vec![("LEADSTREAM_REDIS_CLUSTER", "maybe")],
                "LEADSTREAM_REDIS_CLUSTER",
                "not true or false",
            ),
            (
                vec![("LEADSTREAM_REDIS_CLUSTER", "true")],
                "LEADSTREAM_REDIS_CLUSTER",
                "LEADSTREAM_REDIS_URL is not set",
            ),
            (
                vec![
                    ("LEADSTREAM_REDIS_URL", "redis://a:1,redis://b:2"),
                    ("LEADSTREAM_REDIS_CLUSTER", "false"),
                ],
                "LEADSTREAM_REDIS_CLUSTER",
                "lists 2 nodes",
            ),
        ] {
            let e = cfg(&extra).unwrap_err();
            assert_eq!(e.var, var, "{extra:?}");
            assert!(e.message.contains(needle), "{extra:?}: {}", e.message);
        }
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
