//! Endpoints: where one fired record goes. A firing fans out to one delivery per endpoint — the
//! webhook URL, each email address, the Slack and the Teams incoming webhook — and each delivery
//! has its own state, retries and idempotency record, keyed by `(fired_id, endpoint id)`.
//!
//! The endpoint id is `{channel}_{first 16 hex of SHA-256(target)}`: stable, short, and free of
//! the target itself (Slack and Teams URLs are secrets). [`Endpoint::display`] is what logs and
//! the delivery log show: the URL without query, credentials or (for Slack/Teams) path.

use leadstream_domain::fired::Targets;
use leadstream_shared::delivery::Channel;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub channel: Channel,
    /// The URL or email address. May contain secrets: use [`Endpoint::display`] in logs.
    pub target: String,
}

impl Endpoint {
    pub fn new(channel: Channel, target: impl Into<String>) -> Endpoint {
        Endpoint {
            channel,
            target: target.into(),
        }
    }

    /// Every endpoint of a firing, without duplicates (an email listed twice is sent once).
    pub fn all(t: &Targets) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        let mut push = |e: Endpoint| {
            if !e.target.trim().is_empty() && !out.iter().any(|x| x.id() == e.id()) {
                out.push(e);
            }
        };
        if let Some(u) = &t.webhook_url {
            push(Endpoint::new(Channel::Webhook, u.trim()));
        }
        for e in &t.emails {
            push(Endpoint::new(Channel::Email, e.trim().to_ascii_lowercase()));
        }
        if let Some(u) = &t.slack_webhook_url {
            push(Endpoint::new(Channel::Slack, u.trim()));
        }
        if let Some(u) = &t.teams_webhook_url {
            push(Endpoint::new(Channel::Teams, u.trim()));
        }
        out
    }

    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.target.as_bytes());
        format!("{}_{}", self.channel.as_str(), hex::encode(&digest[..8]))
    }

    /// A loggable form of the target.
    pub fn display(&self) -> String {
        match self.channel {
            Channel::Email => self.target.clone(),
            Channel::Webhook => match url::Url::parse(&self.target) {
                Ok(u) => {
                    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                    format!(
                        "{}://{}{}{}",
                        u.scheme(),
                        u.host_str().unwrap_or(""),
                        port,
                        u.path()
                    )
                }
                Err(_) => "<invalid URL>".into(),
            },
            // The path of a Slack or Teams incoming webhook is its credential.
            Channel::Slack | Channel::Teams => match url::Url::parse(&self.target) {
                Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
                Err(_) => "<invalid URL>".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_out_and_dedupes() {
        let t = Targets {
            webhook_url: Some("https://h.example.com/x?token=s3cret".into()),
            emails: vec![
                "Sales@example.com".into(),
                "sales@example.com ".into(),
                "".into(),
            ],
            slack_webhook_url: Some("https://hooks.slack.com/services/T0/B0/XYZ".into()),
            teams_webhook_url: None,
            ..Targets::default()
        };
        let all = Endpoint::all(&t);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].display(), "https://h.example.com/x");
        assert_eq!(all[2].display(), "https://hooks.slack.com/…");
        assert!(all[0].id().starts_with("webhook_"));
        assert_eq!(all[0].id(), Endpoint::all(&t)[0].id());
        assert_ne!(all[0].id(), all[2].id());
    }
}
