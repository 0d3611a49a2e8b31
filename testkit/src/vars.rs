//! The environment variables a test gives the services it runs (in process through
//! `from_source`, or as child processes), so every test starts from the same base.

use std::collections::BTreeMap;

/// What every service needs to run against the broker at `brokers` and the Redis at `redis`,
/// with `prefix` for its topics and its keys: the broker (with the tansu quirks switched on),
/// Redis, both prefixes and the partition count.
pub fn service(
    brokers: &str,
    redis: &str,
    prefix: &str,
    partitions: impl std::fmt::Display,
) -> BTreeMap<String, String> {
    [
        ("LEADSTREAM_KAFKA_BROKERS", brokers.to_string()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_REDIS_URL", redis.to_string()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.to_string()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.to_string()),
        ("LEADSTREAM_PARTITIONS", partitions.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// [`service`] with 2 partitions plus a notifier that delivers quickly to receivers on
/// 127.0.0.1: its own group, retries after 100 ms and 200 ms, 2 s webhook and SMTP timeouts,
/// polling every 25 ms, emails written below the temporary directory when no SMTP server is set.
pub fn notifier(brokers: &str, redis: &str, prefix: &str) -> BTreeMap<String, String> {
    let mut vars = service(brokers, redis, prefix, 2);
    vars.extend(
        [
            ("LEADSTREAM_WEBHOOK_RETRY_SCHEDULE", "100ms,200ms".into()),
            ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "2s".into()),
            ("LEADSTREAM_SMTP_TIMEOUT", "2s".into()),
            ("LEADSTREAM_NOTIFIER_POLL_INTERVAL", "25ms".into()),
            ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}_notifier")),
            (
                "LEADSTREAM_EMAIL_DIR",
                std::env::temp_dir().join(prefix).display().to_string(),
            ),
        ]
        .map(|(k, v): (&str, String)| (k.to_string(), v)),
    );
    vars
}
