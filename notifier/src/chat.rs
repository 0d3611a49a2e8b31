//! Slack and Microsoft Teams incoming-webhook message bodies.
//!
//! Both are plain JSON POSTs to a URL the tenant pasted into the trigger, so they go through the
//! same HTTP client, SSRF policy, retries and delivery log as webhooks — only the body differs
//! and they are not signed (neither product verifies signatures on incoming webhooks).
//!
//! - Slack: `text` (the notification fallback) plus Block Kit `blocks`: a header, the facts as
//!   fields, the event metadata, and the sequence events.
//! - Teams: a `message` with one Adaptive Card attachment (accepted by both the Workflows
//!   webhooks and the older Office 365 connectors): a title, a FactSet and the sequence events.

use serde_json::{json, Value};

use crate::summary::Summary;

/// Slack's limit for a section field's text.
const SLACK_FIELD_MAX: usize = 1900;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escape Slack mrkdwn control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn slack_body(s: &Summary) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&s.headline(), 150)}}),
        json!({
            "type": "section",
            "fields": s.facts().iter().take(10).map(|(k, v)| json!({
                "type": "mrkdwn",
                "text": clip(&format!("*{k}*\n{}", slack_escape(v)), SLACK_FIELD_MAX),
            })).collect::<Vec<_>>(),
        }),
    ];
    if !s.metadata.is_empty() {
        let lines: Vec<String> = s
            .metadata
            .iter()
            .map(|(k, v)| format!("• *{}*: {}", slack_escape(k), slack_escape(v)))
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": clip(&format!("*Metadata*\n{}", lines.join("\n")), 2900)}}));
    }
    if !s.sequence_events.is_empty() {
        let lines: Vec<String> = s
            .sequence_events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "{}. `{}` at {} ({})",
                    i + 1,
                    slack_escape(&e.event_type),
                    slack_escape(&e.created_at),
                    slack_escape(&e.id)
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": clip(&format!("*Sequence events*\n{}", lines.join("\n")), 2900)}}));
    }
    json!({ "text": s.headline(), "blocks": blocks })
}

pub fn teams_body(s: &Summary) -> Value {
    let facts: Vec<Value> = s
        .facts()
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .chain(
            s.metadata
                .iter()
                .map(|(k, v)| json!({"title": format!("metadata.{k}"), "value": v})),
        )
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
               "text": s.headline()}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if !s.sequence_events.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Sequence events"}));
        let lines: Vec<String> = s
            .sequence_events
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{}. {} at {} ({})", i + 1, e.event_type, e.created_at, e.id))
            .collect();
        body.push(json!({"type": "TextBlock", "wrap": true, "text": lines.join("\n\n")}));
    }
    json!({
        "type": "message",
        "summary": s.headline(),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::{milestone, sequence};

    #[test]
    fn slack_message_is_readable() {
        let b = slack_body(&Summary::of(&milestone()));
        assert_eq!(b["text"], "Hot Lead Alert fired for lead ld_123 (score 82)");
        let all = b.to_string();
        assert!(all.contains("ld_123") && all.contains("*Score*\\n82") && all.contains("/pricing"));
        let b = slack_body(&Summary::of(&sequence()));
        assert!(b.to_string().contains("whitepaper_download"));
    }

    #[test]
    fn teams_message_is_an_adaptive_card() {
        let b = teams_body(&Summary::of(&sequence()));
        assert_eq!(b["type"], "message");
        let card = &b["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert!(card.to_string().contains("Buying Intent Sequence"));
        assert!(card.to_string().contains("pricing_page_view"));
    }

    #[test]
    fn long_text_is_clipped() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(slack_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
