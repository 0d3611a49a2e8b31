//! Poison records from direct producers (issue 7, item 3): good records interleaved with every
//! kind of garbage a producer can put on the events topic — truncated Avro, Avro with an unknown
//! writer fingerprint, Avro of another schema (a TriggerFired and a DeadLetter record), garbage
//! JSON and JSON of the wrong shape under `content-type: application/json`, huge metadata,
//! invalid UTF-8 (in JSON and inside an Avro string), an empty value, and garbage without a
//! key — on a real tansu broker, with the processor in process on the real Redis.
//!
//! Every poison record lands once in `{prefix}.events.dlq.v1` with its reason, its source
//! partition and offset, its key and its untouched payload; the good records around it are all
//! applied (each lead's score equals the oracle), so no partition stalls; records that are odd
//! but valid (extreme event times, events that name no lead, a keyless good record, which is
//! re-keyed to its lead's partition) are processed or skipped, not dead-lettered; the processor
//! task never fails; and a processor restarted on the same topic dead-letters nothing twice.

use std::collections::BTreeMap;
use std::time::Duration;

use leadstream_domain::fired::Targets;
use leadstream_domain::model::sequence::SequenceTrigger;
use leadstream_processor::decode::MAX_RECORD_BYTES;
use leadstream_shared::avro::{
    decode_dead_letter, encode_dead_letter, encode_event, encode_fired, DeadLetter,
};
use leadstream_shared::catalog::collections;
use leadstream_shared::kafka::murmur2_partition;
use leadstream_testkit::firing::fired;
use leadstream_testkit::{consume, wait_until};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use serde_json::json;

use crate::world::{event, World, OU, PARTITIONS};

const T0: i64 = 1_736_935_200_000; // 2025-01-15T10:00:00Z
const JSON: (&str, &[u8]) = ("content-type", b"application/json");
const WAIT: Duration = Duration::from_secs(60);

/// A produced record the processor must dead-letter, and a word its reason must contain.
struct Poison {
    partition: i32,
    offset: i64,
    key: Option<String>,
    payload: Vec<u8>,
    reason: &'static str,
}

struct Run {
    w: World,
    poison: Vec<Poison>,
    /// Good records per lead (each scores 1 point).
    good: BTreeMap<String, u64>,
    seq: u32,
}

impl Run {
    async fn good(&mut self, lead: &str) {
        self.seq += 1;
        let e = event(
            lead,
            "page_view",
            &format!("g{}", self.seq),
            T0 + self.seq as i64 * 1000,
        );
        self.w.produce(&e).await;
        *self.good.entry(lead.to_string()).or_default() += 1;
    }

    async fn poison(
        &mut self,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: &[(&str, &[u8])],
        reason: &'static str,
    ) {
        let (partition, offset) = match key {
            Some(k) => {
                let d = self
                    .w
                    .publisher
                    .send(&self.w.topics.events, k, &payload, headers)
                    .await;
                let d = d.expect("produce");
                (d.partition, d.offset)
            }
            None => {
                let r = FutureRecord::<(), [u8]>::to(&self.w.topics.events).payload(&payload);
                let sent = self
                    .w
                    .publisher
                    .producer()
                    .send(r, Duration::from_secs(10))
                    .await;
                let d = sent.map_err(|(e, _)| e).expect("produce keyless");
                (d.partition, d.offset)
            }
        };
        self.poison.push(Poison {
            partition,
            offset,
            key: key.map(str::to_string),
            payload,
            reason,
        });
    }
}

/// The Avro bytes of a good event for `lead` with `event_type`.
fn avro(lead: &str, event_type: &str, id: &str) -> Vec<u8> {
    encode_event(&event(lead, event_type, id, T0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poison_record_is_dead_lettered_and_no_partition_stalls() {
    let w = World::new("poison7").await;
    w.put_ruleset(json!({
        "id": "rs_1", "name": "Pages", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
        "rules": [{"id": "r1", "event_type": "page_view", "points": 1}]
    }))
    .await;
    // A sequence and a milestone, so odd event times also go through the matcher and the check.
    let seq: SequenceTrigger = serde_json::from_value(json!({
        "id": "seq_1", "name": "Two pages", "event_types": ["page_view", "page_view"],
        "window_seconds": 3600, "ordered": true, "active": true, "created_at": "2025-01-01T00:00:00Z"
    }))
    .unwrap();
    w.catalog
        .put_doc(OU, collections::SEQUENCES, &seq.id, &seq)
        .await
        .unwrap();
    w.put_trigger(json!({
        "id": "trg_1", "name": "Hot", "score_threshold": 1000, "webhook_url": "https://hooks.example.com/x",
        "active": true, "created_at": "2025-01-15T10:00:00Z"
    }))
    .await;
    let (handle, token) = w.spawn_inprocess();
    let mut r = Run {
        w,
        poison: Vec::new(),
        good: BTreeMap::new(),
        seq: 0,
    };
    let leads = ["ld_a", "ld_b", "ld_c", "ld_d"];
    let key = |l: &str| format!("{OU}:{l}");

    let full = avro("ld_a", "page_view", "x1");
    let mut unknown_fp = full.clone();
    unknown_fp[2..10].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]);
    // An Avro string with invalid UTF-8: same length, so every length prefix stays right.
    let mut bad_utf8 = avro("ld_a", "XXXXXXXX", "x2");
    let at = bad_utf8.windows(8).position(|w| w == b"XXXXXXXX").unwrap();
    bad_utf8[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28]);
    let mut huge = event("ld_a", "page_view", "huge", T0);
    huge.metadata
        .insert("blob".into(), json!("x".repeat(MAX_RECORD_BYTES)));
    let huge_avro = encode_event(&huge).unwrap();
    let huge_json = serde_json::to_vec(
        &json!({"ou_id": OU, "lead_id": "ld_a", "event_type": "page_view",
        "metadata": {"blob": "y".repeat(MAX_RECORD_BYTES)}}),
    )
    .unwrap();
    let mut json_bad_utf8 =
        br#"{"ou_id":"unit_default","lead_id":"ld_a","event_type":"page_view","metadata":{"k":""#
            .to_vec();
    json_bad_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}', b'}']);
    let dead = DeadLetter {
        reason: "r".into(),
        source_topic: "t".into(),
        source_partition: 0,
        source_offset: 0,
        key: None,
        payload: vec![1],
        failed_at_ms: T0,
        target: None,
        attempts: 1,
    };

    for round in 0..2 {
        for l in leads {
            let k = key(l);
            let k = Some(k.as_str());
            r.good(l).await;
            match (round, l) {
                (0, "ld_a") => {
                    r.poison(k, full[..full.len() - 5].to_vec(), &[], "Avro")
                        .await;
                    r.good(l).await;
                    r.poison(k, full[..12].to_vec(), &[], "Avro").await;
                    r.poison(k, unknown_fp.clone(), &[], "unknown schema").await;
                }
                (0, "ld_b") => {
                    r.poison(
                        k,
                        encode_fired(&fired(1, "ld_a", Targets::default())).unwrap(),
                        &[],
                        "unknown schema",
                    )
                    .await;
                    r.good(l).await;
                    r.poison(k, encode_dead_letter(&dead).unwrap(), &[], "unknown schema")
                        .await;
                    r.poison(k, b"{not json".to_vec(), &[JSON], "JSON").await;
                }
                (0, "ld_c") => {
                    let shapes = [
                        json!([1, 2]),
                        json!({"ou_id": 5, "event_type": []}),
                        json!({"ou_id": OU, "lead_id": 5, "event_type": "page_view"}),
                        json!("text"),
                        // No event_type. (Unknown fields are ignored since issue 18, not poison.)
                        json!({"ou_id": OU, "lead_id": "ld_c", "extra": 1}),
                    ];
                    for s in shapes {
                        r.poison(k, serde_json::to_vec(&s).unwrap(), &[JSON], "JSON")
                            .await;
                        r.good(l).await;
                    }
                }
                (0, "ld_d") => {
                    r.poison(k, bad_utf8.clone(), &[], "Avro").await;
                    r.poison(k, json_bad_utf8.clone(), &[JSON], "JSON").await;
                    r.good(l).await;
                    r.poison(k, Vec::new(), &[], "no value").await;
                    r.poison(None, b"\xC3\x01garbage without a key".to_vec(), &[], "Avro")
                        .await;
                }
                (1, "ld_a") => {
                    r.poison(k, huge_avro.clone(), &[], "larger than").await;
                    r.poison(k, huge_json.clone(), &[JSON], "larger than").await;
                }
                (1, "ld_b") => {
                    // Odd but valid: extreme event times are applied, not dead-lettered.
                    for (i, t) in [i64::MAX, i64::MIN, 0, -1].into_iter().enumerate() {
                        r.seq += 1;
                        let e = event(l, "page_view", &format!("odd{i}"), t);
                        r.w.produce(&e).await;
                        *r.good.entry(l.to_string()).or_default() += 1;
                    }
                }
                (1, "ld_c") => {
                    // A good record without a key is processed like any other.
                    let bytes = avro(l, "page_view", "keyless");
                    let rec = FutureRecord::<(), [u8]>::to(&r.w.topics.events).payload(&bytes);
                    r.w.publisher
                        .producer()
                        .send(rec, Duration::from_secs(10))
                        .await
                        .map_err(|(e, _)| e)
                        .unwrap();
                    *r.good.entry(l.to_string()).or_default() += 1;
                }
                (1, "ld_d") => {
                    // Events that name no lead (the gateway stores seed 001 envelopes without
                    // identity so): valid, nothing to score, not dead-lettered.
                    let mut e = event(l, "page_view", "no-lead", T0);
                    e.lead_id = None;
                    r.w.produce_raw(
                        &format!("{OU}:{}", e.event_id),
                        &encode_event(&e).unwrap(),
                        &[],
                    )
                    .await;
                    let j = json!({"ou_id": OU, "event_type": "page_view"});
                    r.w.produce_raw(&key(l), &serde_json::to_vec(&j).unwrap(), &[JSON])
                        .await;
                }
                _ => {}
            }
        }
    }
    // Every lead ends with a good record after its last poison one.
    for l in leads {
        r.good(l).await;
    }
    // A trailing poison record, last on its partition, to check a restart does not repeat it.
    r.poison(
        Some(&key("ld_a")),
        b"trailing garbage".to_vec(),
        &[],
        "JSON",
    )
    .await;

    for (lead, n) in r.good.clone() {
        let rec = wait_until(
            WAIT,
            &format!("{n} good records of {lead} applied"),
            || async { r.w.lead(&lead).await.filter(|x| x.events == n) },
        )
        .await;
        assert_eq!(
            rec.score.score_at(T0),
            n as i64,
            "{lead}: one point per good record"
        );
    }
    let dlq = consume(
        &r.w.broker.addr(),
        &r.w.topics.events_dlq,
        r.poison.len(),
        WAIT,
        Duration::from_secs(2),
    )
    .await;
    let mut got: BTreeMap<(i32, i64), DeadLetter> = BTreeMap::new();
    for m in &dlq {
        let d = decode_dead_letter(m.payload().unwrap_or_default()).expect("dead letter decodes");
        let at = (d.source_partition, d.source_offset);
        assert!(got.insert(at, d).is_none(), "{at:?} dead-lettered twice");
    }
    assert_eq!(
        got.len(),
        r.poison.len(),
        "one dead letter per poison record, nothing else"
    );
    for p in &r.poison {
        let d = got
            .get(&(p.partition, p.offset))
            .unwrap_or_else(|| panic!("no dead letter for {}/{}", p.partition, p.offset));
        assert_eq!(d.source_topic, r.w.topics.events);
        assert!(
            d.reason.contains(p.reason),
            "reason {:?} should say {:?}",
            d.reason,
            p.reason
        );
        assert_eq!(d.payload, p.payload, "the payload is kept untouched");
        assert_eq!(d.key.as_deref(), p.key.as_deref().map(str::as_bytes));
    }
    // The keyless good record was applied once, through a copy keyed by its lead on the lead's
    // partition (processed where it landed, its lead would have had two owners).
    let all = consume(
        &r.w.broker.addr(),
        &r.w.topics.events,
        1,
        WAIT,
        Duration::from_secs(3),
    )
    .await;
    let copies: Vec<(Option<String>, i32)> = all
        .iter()
        .filter(|m| {
            let e = m
                .payload()
                .and_then(|p| leadstream_shared::avro::decode_event(p).ok());
            e.is_some_and(|e| e.event_id == "evt_keyless")
        })
        .map(|m| {
            (
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.partition(),
            )
        })
        .collect();
    let owner = murmur2_partition(key("ld_c").as_bytes(), PARTITIONS);
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.contains(&(Some(key("ld_c")), owner)), "{copies:?}");
    assert!(!handle.is_finished(), "the processor is still running");
    token.cancel();
    handle.await.expect("the processor task did not fail");

    // A new processor on the same topic and state: one more good record is applied, and no
    // poison record is dead-lettered again.
    let (handle, token) = r.w.spawn_inprocess();
    r.good("ld_a").await;
    let n = r.good["ld_a"];
    wait_until(WAIT, "the record after the restart applied", || async {
        r.w.lead("ld_a").await.filter(|x| x.events == n)
    })
    .await;
    let again = consume(
        &r.w.broker.addr(),
        &r.w.topics.events_dlq,
        r.poison.len(),
        WAIT,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        again.len(),
        r.poison.len(),
        "a restart dead-letters nothing twice"
    );
    token.cancel();
    handle.await.expect("the processor task did not fail");
}
