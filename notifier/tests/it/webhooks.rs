//! Webhooks end to end: real broker, real Redis, a real HTTP receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadstream_domain::fired::Targets;
use leadstream_shared::delivery::{AttemptStatus, DeliveryQuery};
use leadstream_testkit::{committed_offsets, consume, end_offsets, wait_for};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_webhook_is_signed_backed_off_and_delivered_once() {
    let env = Env::new("wh_retry", &[]).await;
    let rx = Receiver::start().await;
    rx.script(
        "/hook",
        Script {
            fail_first: 2,
            fail_status: 503,
        },
    );
    // Rotate once, so the OU has an active and a previous secret: both must sign.
    let cat = env.catalog();
    let old = cat.webhook_secret("unit_default").await.unwrap();
    let new = cat
        .rotate_webhook_secret("unit_default", 3_600_000)
        .await
        .unwrap();
    let (stop, handle) = env.spawn_notifier();

    let f = fired(1, "ld_retry", webhook(rx.url("/hook")));
    env.produce(&f).await;

    // The success is recorded after the receiver answered it: once the log shows it, the job
    // is finished and no further attempt can come, so the count below is final.
    let succeeded = DeliveryQuery {
        fired_id: Some(f.fired_id.clone()),
        status: Some(AttemptStatus::Succeeded),
        ..Default::default()
    };
    leadstream_testkit::wait_until(Duration::from_secs(30), "a recorded 2xx delivery", || {
        let q = succeeded.clone();
        let env = &env;
        async move { (!env.deliveries(q).await.is_empty()).then_some(()) }
    })
    .await;
    let got = rx.on("/hook");
    assert_eq!(
        got.len(),
        3,
        "two failures then one success: {:?}",
        got.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(got.iter().filter(|r| r.status == 200).count(), 1);

    let body = serde_json::to_vec(&f.payload).unwrap();
    for r in &got {
        assert_eq!(r.header("webhook-id"), f.fired_id);
        assert_eq!(
            r.body.as_ref(),
            body.as_slice(),
            "body is exactly the seed payload"
        );
        let sig = r.header("webhook-signature");
        assert_eq!(
            sig.split(' ').count(),
            2,
            "both secrets sign during rotation: {sig}"
        );
        let ts = r.header("webhook-timestamp");
        assert!(verify(
            std::slice::from_ref(&new),
            &f.fired_id,
            &ts,
            &r.body,
            &sig
        ));
        assert!(verify(
            std::slice::from_ref(&old),
            &f.fired_id,
            &ts,
            &r.body,
            &sig
        ));
        assert!(!verify(
            &["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string()],
            &f.fired_id,
            &ts,
            &r.body,
            &sig
        ));
    }
    // Backoff: 100 ms then 200 ms, each ±20 %.
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(80),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(160),
        "second retry after {gap2:?}"
    );

    // Every attempt is in the delivery log, newest first.
    let log = env
        .deliveries(DeliveryQuery {
            fired_id: Some(f.fired_id.clone()),
            ..Default::default()
        })
        .await;
    let statuses: Vec<AttemptStatus> = log.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            AttemptStatus::Succeeded,
            AttemptStatus::Retrying,
            AttemptStatus::Retrying
        ]
    );
    assert_eq!(log[2].status_code, Some(503));
    // The receiver is on loopback, allowed by LEADSTREAM_WEBHOOK_ALLOW_PRIVATE: inside the
    // network, so its answers are not kept for tenants to read.
    assert_eq!(log[2].response_body, None);
    assert!(log[1].next_attempt_at_ms.is_some());
    assert_eq!(log[0].attempt, 3);
    let by_lead = env
        .deliveries(DeliveryQuery {
            lead_id: Some("ld_retry".into()),
            status: Some(AttemptStatus::Succeeded),
            ..Default::default()
        })
        .await;
    assert_eq!(by_lead.len(), 1);

    // A replay of the same fired record is not delivered again. Evidence that the notifier
    // consumed the replay: its group's committed offsets reach the topic's end (offsets are
    // committed only after the record's deliveries were looked up and found known).
    env.produce(&f).await;
    let brokers = env.broker.addr();
    let group = env.vars["LEADSTREAM_NOTIFIER_GROUP"].clone();
    let end = end_offsets(&brokers, &env.fired_topic).await;
    assert_eq!(end.values().sum::<i64>(), 2, "the record and its replay");
    leadstream_testkit::wait_until(
        Duration::from_secs(30),
        "the notifier to commit past the replay",
        || async {
            let committed = committed_offsets(&brokers, &group, &env.fired_topic).await;
            end.iter()
                .all(|(p, o)| committed.get(p).copied().unwrap_or(0) >= *o)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        rx.on("/hook").len(),
        3,
        "a replayed fired id is not delivered twice"
    );
    let log = env
        .deliveries(DeliveryQuery {
            fired_id: Some(f.fired_id.clone()),
            ..Default::default()
        })
        .await;
    assert_eq!(log.len(), 3, "the replay made no new attempt");

    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gone_disables_the_endpoint_for_the_trigger_and_dead_letters() {
    let env = Env::new("wh_gone", &[]).await;
    let rx = Receiver::start().await;
    rx.script(
        "/gone",
        Script {
            fail_first: usize::MAX,
            fail_status: 410,
        },
    );
    let (stop, handle) = env.spawn_notifier();

    let first = fired(1, "ld_gone", webhook(rx.url("/gone")));
    env.produce(&first).await;
    wait_for(Duration::from_secs(30), "the 410", || {
        rx.on("/gone").len() == 1
    })
    .await;
    leadstream_testkit::wait_until(Duration::from_secs(10), "the 410 recorded", || async {
        let q = DeliveryQuery {
            status: Some(AttemptStatus::Disabled),
            ..Default::default()
        };
        (!env.deliveries(q).await.is_empty()).then_some(())
    })
    .await;
    let second = fired(2, "ld_gone", webhook(rx.url("/gone")));
    env.produce(&second).await;

    let dlq = consume(
        &env.broker.addr(),
        &env.dlq_topic,
        2,
        Duration::from_secs(30),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(dlq.len(), 2);
    assert_eq!(
        rx.on("/gone").len(),
        1,
        "a disabled endpoint gets no more requests"
    );
    let log = env
        .deliveries(DeliveryQuery {
            trigger_id: Some("trg_hot".into()),
            ..Default::default()
        })
        .await;
    let statuses: Vec<AttemptStatus> = log.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [AttemptStatus::Skipped, AttemptStatus::Disabled]);
    assert!(log[1].error.as_deref().unwrap().contains("410"));
    assert!(log[0].error.as_deref().unwrap().contains("disabled"));
    let letters: Vec<_> = dlq
        .iter()
        .map(|m| {
            use rdkafka::Message;
            leadstream_shared::avro::decode_dead_letter(m.payload().unwrap()).unwrap()
        })
        .collect();
    assert!(letters.iter().any(|d| d.reason.starts_with("gone")));
    assert!(letters.iter().any(|d| d.reason.starts_with("disabled")));
    let back = leadstream_shared::avro::decode_fired(&letters[0].payload).unwrap();
    assert_eq!(back.trigger_id, "trg_hot");

    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_addresses_are_refused_without_the_allow_list() {
    // No allow-list: the receiver on 127.0.0.1 must never be contacted.
    let env = Env::new("wh_ssrf", &[("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "")]).await;
    let rx = Receiver::start().await;
    let (stop, handle) = env.spawn_notifier();

    let by_ip = fired(1, "ld_ssrf", webhook(rx.url("/private")));
    let by_name = fired(
        2,
        "ld_ssrf",
        webhook(format!("http://localhost:{}/private", rx.addr.port())),
    );
    let bad_scheme = fired(3, "ld_ssrf", webhook("file:///etc/passwd".into()));
    for f in [&by_ip, &by_name, &bad_scheme] {
        env.produce(f).await;
    }
    let dlq = consume(
        &env.broker.addr(),
        &env.dlq_topic,
        3,
        Duration::from_secs(30),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(dlq.len(), 3);
    assert!(
        rx.received().is_empty(),
        "no request reached the private address"
    );
    let log = env
        .deliveries(DeliveryQuery {
            lead_id: Some("ld_ssrf".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(log.len(), 3, "one attempt each, no retries");
    assert!(log.iter().all(|a| a.status == AttemptStatus::Failed));
    let errors: Vec<String> = log.iter().filter_map(|a| a.error.clone()).collect();
    assert!(
        errors.iter().filter(|e| e.contains("loopback")).count() == 2,
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("scheme")), "{errors:?}");

    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_and_teams_messages_are_received() {
    let env = Env::new("wh_chat", &[]).await;
    let rx = Receiver::start().await;
    let (stop, handle) = env.spawn_notifier();

    let f = fired(
        1,
        "ld_chat",
        Targets {
            slack_webhook_url: Some(rx.url("/slack")),
            teams_webhook_url: Some(rx.url("/teams")),
            ..Targets::default()
        },
    );
    env.produce(&f).await;
    wait_for(Duration::from_secs(30), "slack and teams", || {
        rx.on("/slack").len() == 1 && rx.on("/teams").len() == 1
    })
    .await;
    let slack: serde_json::Value = serde_json::from_slice(&rx.on("/slack")[0].body).unwrap();
    assert_eq!(
        slack["text"],
        "Hot Lead Alert fired for lead ld_chat (score 82)"
    );
    assert!(slack["blocks"].to_string().contains("demo_request"));
    let teams: serde_json::Value = serde_json::from_slice(&rx.on("/teams")[0].body).unwrap();
    let card = &teams["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let text = card.to_string();
    assert!(text.contains("ld_chat") && text.contains("Hot Lead Alert") && text.contains("82"));
    assert!(
        rx.on("/slack")[0].header("webhook-signature").is_empty(),
        "chat hooks are not signed"
    );

    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_endpoint_does_not_hold_back_others() {
    // The slow endpoint never answers within the timeout; the fast one must still be served
    // promptly, with at most ENDPOINT_CONCURRENCY attempts stuck on the slow one.
    let env = Env::new(
        "wh_slow",
        &[
            ("LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", "2"),
            // Far longer than the fast deliveries need: a slow attempt that ends before them
            // means they waited behind it.
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "60s"),
        ],
    )
    .await;
    let rx = Receiver::start().await;
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/slow", slow.local_addr().unwrap());
    // Accepts connections and never answers (until the test drops them at the end).
    let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
    let holder = held.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = slow.accept().await {
            holder.lock().unwrap().push(s);
        }
    });
    let (stop, handle) = env.spawn_notifier();
    // Ten leads: one lead's deliveries to an endpoint go one at a time, in firing order.
    for i in 0..10 {
        env.produce(&fired(
            i,
            &format!("ld_slow_{i}"),
            webhook(slow_url.clone()),
        ))
        .await;
    }
    wait_for(
        Duration::from_secs(30),
        "the slow endpoint's slots taken",
        || held.lock().unwrap().len() == 2,
    )
    .await;
    for i in 0..10 {
        env.produce(&fired(100 + i, "ld_fast", webhook(rx.url("/fast"))))
            .await;
    }
    wait_for(Duration::from_secs(30), "all fast deliveries", || {
        rx.on("/fast").len() == 10
    })
    .await;
    // The condition, not a stopwatch: every fast delivery was made while the slow endpoint's
    // attempts were still hanging (none has timed out, so none is in the log yet), and no more
    // than ENDPOINT_CONCURRENCY connections were ever opened to it.
    let slow_log: Vec<_> = env
        .deliveries(DeliveryQuery {
            limit: Some(500),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|a| a.lead_id.starts_with("ld_slow"))
        .collect();
    assert!(
        slow_log.is_empty(),
        "fast deliveries waited until slow attempts ended: {slow_log:?}"
    );
    assert_eq!(
        held.lock().unwrap().len(),
        2,
        "at most 2 attempts in flight"
    );
    // Let the hanging attempts (and their retries: the port is closed) fail now, so the
    // shutdown below does not wait for their timeout.
    acceptor.abort();
    let _ = acceptor.await;
    held.lock().unwrap().clear();
    stop.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_ous_hanging_endpoints_hold_only_its_share_of_the_permits() {
    // Eight permits in all: an OU's share is the default quarter, two. Each endpoint may have
    // four attempts in flight, so nothing but the delivery order keeps OU B's webhooks in line.
    let env = Env::new(
        "wh_fair",
        &[
            ("LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT", "8"),
            ("LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", "4"),
            ("LEADSTREAM_WEBHOOK_TIMEOUT", "120s"),
        ],
    )
    .await;
    // OU A's endpoints accept the connection and never answer.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = {
        let held = held.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = hang.accept().await {
                held.lock().unwrap().push(conn);
            }
        })
    };
    let rx = Receiver::start().await;
    let (stop, handle) = env.spawn_notifier();

    for i in 0..8 {
        let f = fired(i, "ld_a", webhook(format!("http://{hang_addr}/a{i}")));
        env.produce(&f).await;
    }
    wait_for(Duration::from_secs(30), "OU A's share in flight", || {
        held.lock().unwrap().len() >= 2
    })
    .await;
    // OU B's webhooks are delivered while A's requests still hang (their timeout is 120 s):
    // five of lead ld_b, the first answered 503 twice (retried after 100 ms, then 200 ms), and
    // one of lead ld_c fired just after ld_b's first, to the same endpoint.
    let b = |n: usize, lead: &str| {
        let mut f = fired(n, lead, webhook(rx.url("/b")));
        f.ou_id = "unit_b".into();
        f
    };
    let ld_b: Vec<_> = (0..5).map(|i| b(100 + i, "ld_b")).collect();
    let ld_c = b(200, "ld_c");
    rx.script_id(
        &ld_b[0].fired_id,
        Script {
            fail_first: 2,
            fail_status: 503,
        },
    );
    env.produce(&ld_b[0]).await;
    env.produce(&ld_c).await;
    for f in &ld_b[1..] {
        env.produce(f).await;
    }
    wait_for(Duration::from_secs(30), "OU B's six webhooks", || {
        rx.on("/b").iter().filter(|r| r.status == 200).count() == 6
    })
    .await;
    assert_eq!(
        held.lock().unwrap().len(),
        2,
        "OU A holds no more than its share"
    );
    // One lead's webhooks to one endpoint arrive in the order they fired, the retried first
    // one included; another lead's does not wait for that retry.
    let delivered: Vec<String> = rx
        .on("/b")
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("webhook-id"))
        .collect();
    let of_ld_b: Vec<&String> = delivered
        .iter()
        .filter(|id| **id != ld_c.fired_id)
        .collect();
    let fired_order: Vec<&String> = ld_b.iter().map(|f| &f.fired_id).collect();
    assert_eq!(
        of_ld_b, fired_order,
        "ld_b's webhooks arrive in firing order"
    );
    assert_eq!(
        delivered.first(),
        Some(&ld_c.fired_id),
        "ld_c's webhook is not held back by ld_b's retry"
    );

    // Let A's attempts fail now instead of at their timeout, then stop.
    holder.abort();
    held.lock().unwrap().clear();
    stop.cancel();
    handle.await.unwrap().unwrap();
}
