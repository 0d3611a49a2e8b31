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
//!
//! Everything an ingest key controls (lead ids, event types and ids, metadata keys and values,
//! and the trigger name an admin chose) is escaped for the channel's markup: for Slack `&`, `<`
//! and `>` (so no `<!channel>`, `<@U…>` or `<url|text>` links) and the backtick inside code
//! spans; for Teams the Markdown punctuation that makes links, bold text or `<at>` mentions
//! (so no `[text](url)`).

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

/// [`slack_escape`] for text inside a `code span` (a backtick would close it).
fn slack_code(s: &str) -> String {
    slack_escape(s).replace('`', "\u{2018}")
}

/// Escape the Markdown an Adaptive Card's TextBlock and FactSet render that could inject links,
/// mentions or bold text (CommonMark backslash escapes): `\`, `` ` ``, `*`, `[`, `]`, `<`, `>`.
fn teams_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*[]<>".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
                    slack_code(&e.event_type),
                    slack_escape(&e.created_at),
                    slack_escape(&e.id)
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": clip(&format!("*Sequence events*\n{}", lines.join("\n")), 2900)}}));
    }
    // The top-level `text` is mrkdwn too.
    json!({ "text": slack_escape(&s.headline()), "blocks": blocks })
}

pub fn teams_body(s: &Summary) -> Value {
    let facts: Vec<Value> = s
        .facts()
        .iter()
        .map(|(k, v)| json!({"title": k, "value": teams_escape(v)}))
        .chain(s.metadata.iter().map(|(k, v)| {
            json!({"title": format!("metadata.{}", teams_escape(k)), "value": teams_escape(v)})
        }))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
               "text": teams_escape(&s.headline())}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if !s.sequence_events.is_empty() {
        body.push(json!({"type": "TextBlock", "weight": "Bolder", "text": "Sequence events"}));
        let lines: Vec<String> = s
            .sequence_events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "{}. {} at {} ({})",
                    i + 1,
                    teams_escape(&e.event_type),
                    teams_escape(&e.created_at),
                    teams_escape(&e.id)
                )
            })
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
    fn text_an_ingest_key_controls_is_escaped() {
        let mut f = milestone();
        f.lead_id = "<!channel> [x](https://evil.example)".into();
        f.payload["event"]["metadata"] =
            serde_json::json!({"<!here>": "<https://evil.example|click> **now**"});
        let body = slack_body(&Summary::of(&f));
        // The header is plain_text (Slack renders no markup there); everything else is mrkdwn.
        assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
        let mrkdwn: Vec<&Value> = body["blocks"].as_array().unwrap()[1..].iter().collect();
        let slack = format!("{} {}", body["text"], json!(mrkdwn));
        for bad in ["<!channel>", "<!here>", "<https://evil.example|"] {
            assert!(!slack.contains(bad), "{bad} in {slack}");
        }
        assert!(slack.contains("&lt;!channel&gt;"));
        // The card is rendered Markdown (`summary` is the plain-text notification).
        let teams = teams_body(&Summary::of(&f))["attachments"].to_string();
        for bad in ["[x](https", "**now**", "<!channel>"] {
            assert!(!teams.contains(bad), "{bad} in {teams}");
        }
    }

    #[test]
    fn long_text_is_clipped() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(slack_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
