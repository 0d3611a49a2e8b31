//! Email end to end: a real SMTP listener receives what lettre sends.

use std::time::Duration;

use leadstream_domain::fired::Targets;
use leadstream_shared::delivery::{AttemptStatus, Channel, DeliveryQuery};
use leadstream_testkit::wait_for;
use mail_parser::MessageParser;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_has_subject_preheader_message_and_both_parts() {
    let smtp = SmtpSink::start().await;
    let url = format!("smtp://{}", smtp.addr);
    let env = Env::new(
        "mail",
        &[
            ("LEADSTREAM_SMTP_URL", &url),
            ("LEADSTREAM_SMTP_FROM", "Alerts <alerts@leadstream.test>"),
        ],
    )
    .await;
    let (stop, handle) = env.spawn_notifier();

    let f = fired(
        1,
        "ld_mail",
        Targets {
            emails: vec!["sales@example.com".into(), "ops@example.com".into()],
            email_subject: Some("Hot Lead Alert".into()),
            email_preheader: Some("A hot lead is waiting".into()),
            email_message: Some("A lead just crossed the 75-point threshold!".into()),
            ..Targets::default()
        },
    );
    env.produce(&f).await;
    wait_for(Duration::from_secs(30), "two emails", || {
        smtp.messages.lock().unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let msgs = smtp.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 2, "one email per address, once");
    let mut rcpts: Vec<String> = msgs.iter().flat_map(|(r, _)| r.clone()).collect();
    rcpts.sort();
    assert_eq!(rcpts, ["<ops@example.com>", "<sales@example.com>"]);

    for (_, raw) in &msgs {
        let m = MessageParser::default().parse(raw).expect("a MIME message");
        assert_eq!(m.subject(), Some("Hot Lead Alert"));
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("alerts@leadstream.test")
        );
        let text = m.body_text(0).expect("a text/plain part").into_owned();
        let html = m.body_html(0).expect("a text/html part").into_owned();
        assert_eq!(m.text_body.len(), 1);
        assert_eq!(m.html_body.len(), 1);
        assert!(
            text.starts_with("A hot lead is waiting"),
            "preheader first in text: {text}"
        );
        assert!(
            html.contains("display:none") && html.contains("A hot lead is waiting"),
            "hidden preheader"
        );
        let msg_at = text
            .find("A lead just crossed the 75-point threshold!")
            .expect("message in text");
        let score_at = text.find("Score: 82").expect("score in text");
        assert!(msg_at < score_at, "message before the lead details");
        assert!(
            text.contains("page: /pricing")
                && text.contains("demo_request")
                && text.contains("ld_mail")
        );
        let hmsg = html
            .find("A lead just crossed the 75-point threshold!")
            .expect("message in html");
        assert!(hmsg < html.find("Score").unwrap());
    }
    let log = env
        .deliveries(DeliveryQuery {
            fired_id: Some(f.fired_id.clone()),
            ..Default::default()
        })
        .await;
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|a| a.channel == Channel::Email && a.status == AttemptStatus::Succeeded));
    assert!(log.iter().all(|a| a.status_code == Some(250)));

    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emails_go_only_to_allowed_domains() {
    let smtp = SmtpSink::start().await;
    let url = format!("smtp://{}", smtp.addr);
    let env = Env::new(
        "mail_domains",
        &[
            ("LEADSTREAM_SMTP_URL", &url),
            ("LEADSTREAM_EMAIL_ALLOWED_DOMAINS", "example.com"),
        ],
    )
    .await;
    let (stop, handle) = env.spawn_notifier();
    let f = fired(
        1,
        "ld_domains",
        Targets {
            emails: vec!["sales@example.com".into(), "victim@elsewhere.test".into()],
            ..Targets::default()
        },
    );
    env.produce(&f).await;
    let query = || DeliveryQuery {
        fired_id: Some(f.fired_id.clone()),
        ..Default::default()
    };
    let mut log = Vec::new();
    for _ in 0..1500 {
        log = env.deliveries(query()).await;
        if log.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.len(), 2, "{log:?}");
    let refused = log
        .iter()
        .find(|a| a.target.contains("elsewhere.test"))
        .expect("the refused recipient's attempt");
    assert_eq!(refused.status, AttemptStatus::Failed, "{refused:?}");
    assert!(refused
        .error
        .as_deref()
        .unwrap_or("")
        .contains("LEADSTREAM_EMAIL_ALLOWED_DOMAINS"));
    let msgs = smtp.messages.lock().unwrap().clone();
    let rcpts: Vec<String> = msgs.iter().flat_map(|(r, _)| r.clone()).collect();
    assert_eq!(rcpts, ["<sales@example.com>"]);
    stop.cancel();
    handle.await.unwrap().unwrap();
}
