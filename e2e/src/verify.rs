//! The invariants every scenario ends with, read only through public interfaces, in each OU the
//! load went to (the default one and a second with the same lead and producer ids):
//!
//! 1. every acknowledged event counted exactly once: each lead's `event_count` and `score` on
//!    `GET /leads/{id}` equal the oracle's;
//! 2. every crossing fired exactly once: `/milestone-events` and `/sequence-events` hold, per
//!    lead, as many distinct firings as the oracle says, and the fired topic (Kafka) holds
//!    exactly those fired ids (a record may repeat on the topic after a crash; its id may not
//!    change);
//! 3. every fired id delivered exactly once per endpoint: the receiver saw exactly one in-time
//!    2xx per `webhook-id` on the trigger's path, none for unknown ids, and nothing more arrives
//!    in a quiet period;
//! 4. the delivery log agrees: exactly one `succeeded` attempt per fired id and endpoint;
//! 5. after those quiet periods every lead is read again and still equals the oracle (a late
//!    double count cannot hide behind the first read).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leadstream_domain::fired::TriggerKind;
use leadstream_shared::avro::decode_fired;
use leadstream_testkit::{consume, wait_until};
use rdkafka::Message;
use serde_json::Value;

use crate::api::Api;
use crate::load::{expected_all, Expected, Sent, Tenant, MILESTONE_PATH, SEQUENCE_PATH};
use crate::stack::Stack;

/// How long the pipeline may take to catch up after the load ended.
pub const SETTLE: Duration = Duration::from_secs(90);
/// How long nothing more may arrive for "exactly once".
pub const QUIET: Duration = Duration::from_secs(3);

/// What was found, for scenario-specific assertions and the test's output.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: usize,
    pub milestone_ids: BTreeSet<String>,
    pub sequence_ids: BTreeSet<String>,
    /// Records on the fired topic (repeats included).
    pub fired_records: usize,
    /// Delivery log attempts by status (`succeeded`, `retrying`, …).
    pub attempts: BTreeMap<String, usize>,
    /// Delivery log records, all of them.
    pub log: Vec<Value>,
}

/// Check every invariant in every OU the load went to; panics with what differs. The outcome
/// is the default OU's (the first tenant); the others must hold the same numbers, each in its
/// own OU: the same lead ids and producer ids were sent to each.
pub async fn verify(stack: &Stack, sent: &Sent) -> Outcome {
    assert!(!sent.tenants.is_empty(), "the load names its OUs");
    let mut outcomes: Vec<Outcome> = Vec::new();
    for t in &sent.tenants {
        outcomes.push(verify_ou(stack, sent, t).await);
    }
    let first = outcomes.remove(0);
    for (t, o) in sent.tenants[1..].iter().zip(&outcomes) {
        assert_eq!(
            (o.milestone_ids.len(), o.sequence_ids.len()),
            (first.milestone_ids.len(), first.sequence_ids.len()),
            "{} fired as often as the default OU",
            t.ou_id
        );
        assert!(
            o.milestone_ids.is_disjoint(&first.milestone_ids),
            "{} shares fired ids with the default OU",
            t.ou_id
        );
    }
    first
}

/// Every invariant in one OU.
async fn verify_ou(stack: &Stack, sent: &Sent, t: &Tenant) -> Outcome {
    let oracle = expected_all(sent);
    let events = sent.total();
    assert!(events > 0, "the load sent nothing");
    scores(&t.api, &oracle).await;
    let (milestone_ids, sequence_ids) = history(&t.api, &oracle).await;
    assert!(
        !milestone_ids.is_empty() && !sequence_ids.is_empty(),
        "the workload must fire both kinds of trigger in {}",
        t.ou_id
    );
    let fired_records = fired_topic(stack, &t.ou_id, &milestone_ids, &sequence_ids).await;
    let (m_path, s_path) = (
        format!("{}{MILESTONE_PATH}", t.hooks),
        format!("{}{SEQUENCE_PATH}", t.hooks),
    );
    delivered(stack, &m_path, &milestone_ids).await;
    delivered(stack, &s_path, &sequence_ids).await;
    let log = delivery_log(&t.api, &milestone_ids, &sequence_ids).await;
    // After the quiet periods above: a late replay that counted an event twice (or lost one)
    // shows now, whatever the first read saw.
    scores_again(&t.api, &oracle).await;
    let mut attempts = BTreeMap::new();
    for a in &log {
        *attempts
            .entry(a["status"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    let out = Outcome {
        events,
        milestone_ids,
        sequence_ids,
        fired_records,
        attempts,
        log,
    };
    eprintln!(
        "verified {}: {} events, {} milestone + {} sequence firings, {} fired records, attempts {:?}",
        t.ou_id,
        out.events,
        out.milestone_ids.len(),
        out.sequence_ids.len(),
        out.fired_records,
        out.attempts
    );
    out
}

/// Every lead's `event_count` reaches the oracle's (bounded), then scores must match exactly.
async fn scores(api: &Api, oracle: &BTreeMap<String, Expected>) {
    let mut last: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let mut behind = 0;
        for (lead, want) in oracle {
            if last.get(lead).is_some_and(|(n, _)| *n == want.events) {
                continue;
            }
            let v = api.lead(lead).await.unwrap_or(Value::Null);
            let n = v["event_count"].as_u64().unwrap_or(0);
            let s = v["score"].as_i64().unwrap_or(0);
            last.insert(lead.clone(), (n, s));
            assert!(
                n <= want.events,
                "{lead} counted {n} events, only {} were sent: counted twice",
                want.events
            );
            if n < want.events {
                behind += 1;
            }
        }
        if behind == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{behind} leads still short of their events after {SETTLE:?}: {:?}",
            oracle
                .iter()
                .filter(|(l, w)| last.get(*l).map(|x| x.0) != Some(w.events))
                .map(|(l, w)| (l, last.get(l).map(|x| x.0), w.events))
                .take(10)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (lead, want) in oracle {
        let got = last[lead];
        assert_eq!(got, (want.events, want.score), "(events, score) of {lead}");
    }
}

/// Every lead read once more, after the final quiet period: still exactly the oracle's.
async fn scores_again(api: &Api, oracle: &BTreeMap<String, Expected>) {
    for (lead, want) in oracle {
        let v = wait_until(Duration::from_secs(30), &format!("{lead} readable"), || {
            api.lead(lead)
        })
        .await;
        let got = (
            v["event_count"].as_u64().unwrap_or(0),
            v["score"].as_i64().unwrap_or(0),
        );
        assert_eq!(
            got,
            (want.events, want.score),
            "(events, score) of {lead} after the quiet period"
        );
    }
}

/// Milestone and sequence history per lead against the oracle; the fired ids.
async fn history(
    api: &Api,
    oracle: &BTreeMap<String, Expected>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let want_m: usize = oracle.values().map(|e| e.crossings).sum();
    let want_s: usize = oracle.values().map(|e| e.sequences).sum();
    // A firing enters the history once the fired topic acknowledged it, after the lead state
    // that made it was written: the history may trail the scores read above by that produce.
    // Wait (bounded) for it to reach the oracle's counts, then compare exactly. A page may also
    // fail while a scenario's fault is still healing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (m, s) = loop {
        let (m, s) = wait_until(Duration::from_secs(30), "history readable", || async {
            let m = api.history("/milestone-events", "milestone_events").await?;
            let s = api.history("/sequence-events", "sequence_events").await?;
            Some((m, s))
        })
        .await;
        if (m.len() >= want_m && s.len() >= want_s) || tokio::time::Instant::now() >= deadline {
            break (m, s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let per_lead = |entries: &[Value]| {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in entries {
            ids.entry(e["lead_id"].as_str().unwrap_or("").to_string())
                .or_default()
                .insert(e["id"].as_str().unwrap_or("").to_string());
        }
        ids
    };
    assert_eq!(
        m.len(),
        want_m,
        "milestone history entries (oracle {want_m})"
    );
    assert_eq!(
        s.len(),
        want_s,
        "sequence history entries (oracle {want_s})"
    );
    let (pm, ps) = (per_lead(&m), per_lead(&s));
    for (lead, e) in oracle {
        let got_m = pm.get(lead).map_or(0, BTreeSet::len);
        let got_s = ps.get(lead).map_or(0, BTreeSet::len);
        assert_eq!(
            (got_m, got_s),
            (e.crossings, e.sequences),
            "distinct (milestone, sequence) firings of {lead}"
        );
    }
    let ids = |v: &[Value]| -> BTreeSet<String> {
        v.iter()
            .map(|e| e["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    (ids(&m), ids(&s))
}

/// The fired topic holds exactly the history's ids for `ou`; the number of its records read.
async fn fired_topic(stack: &Stack, ou: &str, m: &BTreeSet<String>, s: &BTreeSet<String>) -> usize {
    let all = consume(
        &stack.broker.addr(),
        &stack.fired_topic(),
        m.len() + s.len(),
        Duration::from_secs(60),
        QUIET,
    )
    .await;
    let mut got_m = BTreeSet::new();
    let mut got_s = BTreeSet::new();
    let mut records = 0;
    for r in &all {
        let f = decode_fired(r.payload().unwrap_or_default()).expect("fired record decodes");
        if f.ou_id != ou {
            continue;
        }
        records += 1;
        match f.kind {
            TriggerKind::Milestone => got_m.insert(f.fired_id),
            TriggerKind::Sequence => got_s.insert(f.fired_id),
        };
    }
    assert_eq!(
        &got_m, m,
        "milestone fired ids of {ou} on the topic = its history"
    );
    assert_eq!(
        &got_s, s,
        "sequence fired ids of {ou} on the topic = its history"
    );
    records
}

/// The receiver got every id on `path` exactly once, and nothing else.
async fn delivered(stack: &Stack, path: &str, ids: &BTreeSet<String>) {
    let rx = &stack.receiver;
    let what = format!("every firing delivered to {path}");
    wait_until(SETTLE, &what, || async {
        let got = rx.delivered(path);
        ids.iter().all(|id| got.contains_key(id)).then_some(())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let got = rx.delivered(path);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "delivered more than once on {path}: {twice:?}"
    );
    let unknown: Vec<_> = got.keys().filter(|id| !ids.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "unknown ids delivered on {path}: {unknown:?}"
    );
}

/// Exactly one `succeeded` attempt per fired id (one webhook endpoint each); all records.
async fn delivery_log(api: &Api, m: &BTreeSet<String>, s: &BTreeSet<String>) -> Vec<Value> {
    let log = wait_until(Duration::from_secs(30), "delivery log readable", || {
        api.deliveries("")
    })
    .await;
    let mut succeeded: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in log.iter().filter(|a| a["status"] == "succeeded") {
        if a["channel"] != "webhook" {
            continue;
        }
        let key = (
            a["fired_id"].as_str().unwrap_or("").to_string(),
            a["endpoint_id"].as_str().unwrap_or("").to_string(),
        );
        *succeeded.entry(key).or_insert(0) += 1;
    }
    let twice: Vec<_> = succeeded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "the delivery log shows two successes for {twice:?}"
    );
    let logged: BTreeSet<&String> = succeeded.keys().map(|(f, _)| f).collect();
    let all: BTreeSet<&String> = m.iter().chain(s).collect();
    assert_eq!(logged, all, "the delivery log has one success per fired id");
    log
}
