//! What read-scope keys see of endpoint URLs. A webhook, Slack or Teams URL is a credential
//! (whoever holds a Slack incoming-webhook URL can post to the channel), so only admin keys see
//! them whole; any other key sees the scheme and host with the rest replaced by
//! [`REDACTED`]: enough to tell endpoints apart, not enough to use one. This applies to the
//! trigger and sequence documents (`webhook_url`, `slack_webhook_url`, `teams_webhook_url`, at
//! any depth) and to the delivery log's `target` of HTTP channels.

use serde_json::Value;

use crate::auth::{KeyInfo, Scope};

/// What replaces the path and query of a redacted URL.
pub const REDACTED: &str = "/[redacted]";

const URL_FIELDS: [&str; 3] = ["webhook_url", "slack_webhook_url", "teams_webhook_url"];

/// `https://hooks.slack.com/services/T/B/secret` → `https://hooks.slack.com/[redacted]`.
pub fn url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return REDACTED.trim_start_matches('/').to_string();
    };
    let rest = &raw[scheme_end + 3..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // user:password@ in the authority is a credential too.
    let host = rest[..host_end].rsplit('@').next().unwrap_or("");
    format!("{}://{host}{REDACTED}", &raw[..scheme_end])
}

/// Redact the endpoint URLs in trigger / sequence documents unless `key` is an admin key.
pub fn documents(key: &KeyInfo, v: &mut Value) {
    if key.has_scope(Scope::Admin) {
        return;
    }
    walk(v);
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(s) if URL_FIELDS.contains(&k.as_str()) => *s = url(s),
                    _ => walk(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// Redact the `target` of HTTP deliveries in a delivery-log page unless `key` is an admin key.
pub fn deliveries(key: &KeyInfo, page: &mut Value) {
    if key.has_scope(Scope::Admin) {
        return;
    }
    let Some(items) = page.get_mut("deliveries").and_then(Value::as_array_mut) else {
        return;
    };
    for d in items {
        if d.get("channel").and_then(Value::as_str) == Some("email") {
            continue;
        }
        if let Some(Value::String(t)) = d.get_mut("target") {
            *t = url(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_scheme_and_host_only() {
        assert_eq!(
            url("https://hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com/[redacted]"
        );
        assert_eq!(
            url("http://user:pw@h.example:8080"),
            "http://h.example:8080/[redacted]"
        );
        assert_eq!(url("garbage"), "[redacted]");
    }
}
