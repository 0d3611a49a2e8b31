//! The broker goes away mid-run: answers turn 503 with `Retry-After` (nothing is acknowledged
//! that the broker did not take), then recover; every 2xx'd event is in Kafka exactly once.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;

use crate::common::*;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings};
use leadstream_testkit::wait_until;

const FAST: &[(&str, &str)] = &[
    ("LEADSTREAM_PRODUCE_TIMEOUT", "2s"),
    ("LEADSTREAM_RETRY_AFTER", "3s"),
];

/// Send one event per lead id; the accepted ones' event ids.
async fn send(app: &App, key: &str, tag: &str, n: usize) -> (Vec<String>, Vec<u16>) {
    let sends = (0..n).map(|i| {
        let b = json!({"lead_id": format!("ld_{tag}{i}"), "event_type": "page_view"});
        async move {
            let resp = app.post("/ingest", Cred::Bearer(key), &[], &b).await;
            let status = resp.status().as_u16();
            if status == 503 {
                assert_eq!(resp.headers()["retry-after"], "3");
            }
            let b = body(resp).await;
            if status != 202 {
                eprintln!("{tag}: {status} {b}");
            }
            (status, b)
        }
    });
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    for (status, b) in join_all(sends).await {
        statuses.push(status);
        if status == 202 {
            ids.push(b["event_id"].as_str().unwrap().to_string());
        }
    }
    (ids, statuses)
}

fn exactly_once(recs: &[Rec], acked: &[String]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in recs {
        *seen.entry(r.event.event_id.as_str()).or_default() += 1;
    }
    for id in acked {
        assert_eq!(
            seen.get(id.as_str()).copied(),
            Some(1),
            "acknowledged event {id} is in Kafka exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_gives_503_then_recovers_exactly_once() {
    let app = App::with_env(FAST, spawn_gateway).await;
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let (mut acked, statuses) = send(&app, &key, "before", 20).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");

    app.broker.pause();
    let (during, statuses) = send(&app, &key, "during", 5).await;
    assert!(
        statuses.iter().all(|s| *s == 503),
        "unreachable broker → 503: {statuses:?}"
    );
    assert!(during.is_empty());

    app.broker.resume();
    // The producer reconnects on its own; wait for the first success, then send a batch.
    let first = wait_until(
        Duration::from_secs(30),
        "a 202 after the broker resumed",
        || async {
            let (ids, _) = send(&app, &key, "probe", 1).await;
            ids.into_iter().next()
        },
    )
    .await;
    acked.push(first);
    let (after, statuses) = send(&app, &key, "after", 20).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    acked.extend(after);

    let recs = app.records(acked.len(), Duration::from_secs(2)).await;
    exactly_once(&recs, &acked);
    for r in &recs {
        assert_placed(r);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_broker_gives_503_and_a_restarted_one_gets_everything_acked_after() {
    let mut app = App::with_env(FAST, spawn_gateway).await;
    let key = app.key(&["ingest"], &["unit_default"], None).await;
    let (_, statuses) = send(&app, &key, "before", 5).await;
    assert!(statuses.iter().all(|s| *s == 202));

    app.broker.kill();
    let (during, statuses) = send(&app, &key, "down", 3).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert!(during.is_empty());

    // Same port, but memory storage: the topic is gone, as after losing a cluster. The operator
    // (here the test) re-creates it; the gateway needs no restart.
    tokio::task::block_in_place(|| app.broker.restart());
    ensure_topics(
        &KafkaSettings::new(app.broker.addr()),
        &[&app.topic],
        PARTITIONS,
        1,
    )
    .await
    .unwrap();
    let first = wait_until(
        Duration::from_secs(30),
        "a 202 after the broker restarted",
        || async {
            let (ids, _) = send(&app, &key, "probe", 1).await;
            ids.into_iter().next()
        },
    )
    .await;
    let (mut acked, statuses) = send(&app, &key, "after", 10).await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    acked.push(first);
    let recs = app.records(acked.len(), Duration::from_secs(2)).await;
    exactly_once(&recs, &acked);
    app.stop().await;
}
