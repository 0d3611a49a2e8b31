//! The whole pipeline with nothing broken: HTTP ingest → gateway → broker → two processors →
//! notifier → signed webhooks and emails, with history, lead scores and the delivery log
//! consistent. Runs first (by name) so a broken installation shows here before any fault does.

use std::collections::BTreeSet;
use std::time::Duration;

use leadstream_e2e::load::{LoadSpec, MILESTONE_PATH, SEQUENCE_PATH, THRESHOLD};
use leadstream_e2e::verify::verify;
use leadstream_e2e::{Stack, StackOpts};
use leadstream_testkit::wait_until;
use serde_json::Value;

use crate::start_load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_pipeline_http_to_webhooks_and_email() {
    let stack = Stack::start(StackOpts::new("happy")).await;
    let spec = LoadSpec {
        leads: 10,
        rate: 50.0,
        duration: Duration::from_secs(4),
    };
    let (rules, running) = start_load(&stack, spec, &["sales@example.com"]).await;
    let sent = running.finish().await;
    let out = verify(&stack, &sent).await;

    // Webhooks: Standard Webhooks headers and the seed payloads.
    for (path, kind, trigger) in [
        (MILESTONE_PATH, "milestone", &rules.trigger_id),
        (SEQUENCE_PATH, "sequence", &rules.sequence_id),
    ] {
        for r in stack.receiver.received().iter().filter(|r| r.path == path) {
            let header = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok());
            assert!(header("webhook-signature").is_some_and(|s| s.starts_with("v1,")));
            assert!(header("webhook-timestamp").is_some_and(|t| t.parse::<u64>().is_ok()));
            let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
            assert_eq!(body["trigger"]["type"], kind, "{body}");
            assert_eq!(body["trigger"]["id"], trigger.as_str(), "{body}");
            if kind == "milestone" {
                assert!(body["score"].as_i64().unwrap() >= THRESHOLD, "{body}");
            } else {
                assert_eq!(
                    body["sequence"],
                    serde_json::json!(["pricing", "demo_request"])
                );
            }
        }
    }

    // Email: one message per firing to the trigger's address, each with its own Message-ID.
    let firings = out.milestone_ids.len() + out.sequence_ids.len();
    wait_until(Duration::from_secs(60), "one email per firing", || async {
        (stack.smtp.received().len() >= firings).then_some(())
    })
    .await;
    tokio::time::sleep(leadstream_e2e::verify::QUIET).await;
    let mail = stack.smtp.received();
    assert_eq!(mail.len(), firings, "emails (one per firing)");
    let ids: BTreeSet<String> = mail
        .iter()
        .map(|(rcpts, raw)| {
            assert!(
                rcpts.iter().any(|r| r.contains("sales@example.com")),
                "{rcpts:?}"
            );
            let text = String::from_utf8_lossy(raw);
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap_or_else(|| panic!("no Message-ID in {text}"))
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), firings, "each email once (distinct Message-IDs)");
    let emailed = out
        .log
        .iter()
        .filter(|a| a["channel"] == "email" && a["status"] == "succeeded")
        .count();
    assert_eq!(emailed, firings, "the delivery log records every email");
    stack.stop().await;
}
