//! The notifier's configuration: the shared Kafka/Redis section plus delivery settings, read from
//! `LEADSTREAM_*` variables and validated at boot (a bad value stops the process with a sentence
//! naming the variable). Secrets (the SMTP password) never appear in `Debug`.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LEADSTREAM_WEBHOOK_RETRY_SCHEDULE` | `5s,5m,30m,2h,5h,10h,10h` | delays before each retry (first attempt immediate) |
//! | `LEADSTREAM_WEBHOOK_ALLOW_PRIVATE` | empty | hosts / IPs / CIDRs exempt from the SSRF policy, each optionally `:port` (`[v6]:port`) |
//! | `LEADSTREAM_WEBHOOK_TIMEOUT` | `10s` | per-attempt HTTP timeout (webhooks, Slack, Teams) |
//! | `LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY` | `4` | attempts in flight per endpoint |
//! | `LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT` | `256` | attempts in flight in all |
//! | `LEADSTREAM_NOTIFIER_OU_SHARE` | max in flight / 4 | attempts one OU may have in flight |
//! | `LEADSTREAM_NOTIFIER_POLL_INTERVAL` | `250ms` | how often due retries are looked for |
//! | `LEADSTREAM_NOTIFIER_GROUP` | `leadstream-notifier` | Kafka consumer group |
//! | `LEADSTREAM_NOTIFIER_RETENTION` | `30d` | how long delivery state (the idempotency record) is kept |
//! | `LEADSTREAM_WEBHOOK_SECRET_GRACE` | `24h` | how long a rotated-out secret keeps signing |
//! | `LEADSTREAM_SMTP_URL` | none | `smtp://host:25`, `smtp://u:p@host:587?tls=required`, `smtps://u:p@host:465` |
//! | `LEADSTREAM_SMTP_FROM` | `LeadStream <leadstream@localhost>` | sender |
//! | `LEADSTREAM_SMTP_TIMEOUT` | `30s` | per-message SMTP timeout |
//! | `LEADSTREAM_EMAIL_ALLOWED_DOMAINS` | any | recipient domains emails may go to (each allows its subdomains); others are refused |
//! | `LEADSTREAM_EMAIL_RATE_PER_OU` | 60 | emails per minute per OU; more are deferred (0: off) |
//! | `LEADSTREAM_EMAIL_DIR` | `$TMPDIR/leadstream-emails` | where `.eml` files go when no SMTP URL is set |

use std::path::PathBuf;
use std::time::Duration;

use leadstream_shared::config::{duration, parse, CommonConfig, ConfigError, Env, Source};

use crate::schedule::Schedule;
use crate::ssrf::Policy;

#[derive(Clone)]
pub struct EmailConfig {
    /// Contains the SMTP password when one is set: never printed.
    pub smtp_url: Option<String>,
    pub from: String,
    pub smtp_timeout: Duration,
    pub dir: PathBuf,
    /// Recipient domains allowed (empty: any).
    pub allowed_domains: Vec<String>,
    /// Emails per minute per OU (0: no limit).
    pub rate_per_ou: u32,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let smtp = self.smtp_url.as_deref().map(redact_url);
        f.debug_struct("EmailConfig")
            .field("smtp_url", &smtp)
            .field("from", &self.from)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("dir", &self.dir)
            .finish()
    }
}

/// `smtp://user:secret@host` → `smtp://user:***@host`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub common: CommonConfig,
    pub group_id: String,
    pub schedule: Schedule,
    pub policy: Policy,
    pub http_timeout: Duration,
    pub endpoint_concurrency: usize,
    pub max_in_flight: usize,
    /// Global permits one OU may hold (`LEADSTREAM_NOTIFIER_OU_SHARE`).
    pub ou_share: usize,
    pub poll_interval: Duration,
    pub retention: Duration,
    /// How long a rotated-out signing secret keeps signing (must match the gateway's).
    pub secret_grace: Duration,
    pub email: EmailConfig,
}

impl NotifierConfig {
    pub fn from_env() -> Result<NotifierConfig, ConfigError> {
        NotifierConfig::from_source(&Env)
    }

    pub fn from_source(src: &dyn Source) -> Result<NotifierConfig, ConfigError> {
        let common = CommonConfig::from_source(src)?;
        Self::with_common(common, src)
    }

    /// The notifier's own settings on top of an already-read common section (`leadstream dev`
    /// builds the common part itself).
    pub fn with_common(
        common: CommonConfig,
        src: &dyn Source,
    ) -> Result<NotifierConfig, ConfigError> {
        const SCHED: &str = "LEADSTREAM_WEBHOOK_RETRY_SCHEDULE";
        let schedule = match src.get(SCHED) {
            None => Schedule::default(),
            Some(raw) => Schedule::parse(&raw).map_err(|m| ConfigError::new(SCHED, m))?,
        };
        const ALLOW: &str = "LEADSTREAM_WEBHOOK_ALLOW_PRIVATE";
        let policy = Policy::parse(&src.get(ALLOW).unwrap_or_default())
            .map_err(|m| ConfigError::new(ALLOW, m))?;
        let http_timeout = duration(src, "LEADSTREAM_WEBHOOK_TIMEOUT", Duration::from_secs(10))?;
        if http_timeout.is_zero() {
            return Err(ConfigError::new(
                "LEADSTREAM_WEBHOOK_TIMEOUT",
                "must be more than 0",
            ));
        }
        let endpoint_concurrency: usize =
            parse(src, "LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", 4)?;
        let max_in_flight: usize = parse(src, "LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT", 256)?;
        let ou_share: usize = parse(
            src,
            "LEADSTREAM_NOTIFIER_OU_SHARE",
            (max_in_flight / 4).max(1),
        )?;
        if ou_share == 0 {
            return Err(ConfigError::new(
                "LEADSTREAM_NOTIFIER_OU_SHARE",
                "must be at least 1",
            ));
        }
        if endpoint_concurrency == 0 || max_in_flight == 0 {
            return Err(ConfigError::new(
                "LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY / LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT",
                "must be at least 1",
            ));
        }
        let poll_interval = duration(
            src,
            "LEADSTREAM_NOTIFIER_POLL_INTERVAL",
            Duration::from_millis(250),
        )?;
        if poll_interval.is_zero() {
            return Err(ConfigError::new(
                "LEADSTREAM_NOTIFIER_POLL_INTERVAL",
                "must be more than 0",
            ));
        }
        let retention = duration(
            src,
            "LEADSTREAM_NOTIFIER_RETENTION",
            Duration::from_secs(30 * 86400),
        )?;
        let longest: Duration = (1..schedule.max_attempts())
            .filter_map(|n| schedule.base_delay(n))
            .sum();
        if retention < longest * 2 {
            return Err(ConfigError::new(
                "LEADSTREAM_NOTIFIER_RETENTION",
                format!(
                    "must be at least twice the retry schedule ({}s) so a replay is still recognised",
                    longest.as_secs()
                ),
            ));
        }
        let smtp_url = src.get("LEADSTREAM_SMTP_URL");
        if let Some(u) = &smtp_url {
            let ok = url::Url::parse(u)
                .map(|p| matches!(p.scheme(), "smtp" | "smtps") && p.host_str().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(ConfigError::new(
                    "LEADSTREAM_SMTP_URL",
                    format!(
                        "{} is not smtp://host[:port][?tls=required|opportunistic] or smtps://host[:port]",
                        redact_url(u)
                    ),
                ));
            }
        }
        let from = src
            .get("LEADSTREAM_SMTP_FROM")
            .unwrap_or_else(|| "LeadStream <leadstream@localhost>".into());
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "LEADSTREAM_SMTP_FROM",
                format!("{from:?} is not an address like `LeadStream <alerts@example.com>`"),
            ));
        }
        let email = EmailConfig {
            smtp_url,
            from,
            smtp_timeout: duration(src, "LEADSTREAM_SMTP_TIMEOUT", Duration::from_secs(30))?,
            dir: src
                .get("LEADSTREAM_EMAIL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("leadstream-emails")),
            allowed_domains: src
                .get("LEADSTREAM_EMAIL_ALLOWED_DOMAINS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect(),
            rate_per_ou: leadstream_shared::config::parse(src, "LEADSTREAM_EMAIL_RATE_PER_OU", 60)?,
        };
        Ok(NotifierConfig {
            common,
            group_id: src
                .get("LEADSTREAM_NOTIFIER_GROUP")
                .unwrap_or_else(|| "leadstream-notifier".into()),
            schedule,
            policy,
            http_timeout,
            endpoint_concurrency,
            max_in_flight,
            ou_share,
            poll_interval,
            retention,
            secret_grace: duration(
                src,
                "LEADSTREAM_WEBHOOK_SECRET_GRACE",
                Duration::from_secs(24 * 3600),
            )?,
            email,
        })
    }

    /// How long a claimed attempt may run before another worker may take it over: the longest
    /// attempt (HTTP or SMTP timeout) plus a margin.
    pub fn lease(&self) -> Duration {
        self.http_timeout.max(self.email.smtp_timeout) + Duration::from_secs(5)
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
        m.entry("LEADSTREAM_KAFKA_BROKERS".into())
            .or_insert_with(|| "127.0.0.1:9092".into());
        m
    }

    #[test]
    fn defaults_are_sane() {
        let c = NotifierConfig::from_source(&src(&[])).unwrap();
        assert_eq!(c.schedule.max_attempts(), 8);
        assert_eq!(c.endpoint_concurrency, 4);
        assert!(c.email.smtp_url.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, val) in [
            ("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "5s,soon"),
            ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "10.0.0.0/99"),
            ("LEADSTREAM_SMTP_URL", "http://mail"),
            ("LEADSTREAM_SMTP_FROM", "nobody"),
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "0s"),
            ("LEADSTREAM_NOTIFIER_RETENTION", "1h"),
        ] {
            let e = NotifierConfig::from_source(&src(&[(var, val)])).unwrap_err();
            assert!(e.var.contains(var), "{var}: {e}");
        }
    }

    #[test]
    fn smtp_password_is_not_printed() {
        let c = NotifierConfig::from_source(&src(&[(
            "LEADSTREAM_SMTP_URL",
            "smtp://alice:hunter2@mail.example.com:587?tls=required",
        )]))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && dbg.contains("alice"));
        let e = NotifierConfig::from_source(&src(&[("LEADSTREAM_SMTP_URL", "ftp://a:hunter2@x")]))
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
