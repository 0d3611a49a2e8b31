//! Agreement with independent Avro and Kafka clients (issue 18, part 1): Python's fastavro and
//! confluent-kafka (librdkafka's Python client), which share no code with leadstream, driven by
//! `tests/interop/avro_interop.py` from `schemas/` alone.
//!
//! - fastavro computes every schema's fingerprint (Parsing Canonical Form, CRC-64-AVRO) and they
//!   equal the headers leadstream writes;
//! - confluent-kafka, partitioning by murmur2 as a Java producer does, produces one event in
//!   single-object Avro encoded by fastavro and one in the JSON form written with the Avro
//!   schema's field names plus a field leadstream does not know; the processor applies both (the
//!   lead's score) and they land on the partition the gateway would have chosen;
//! - fastavro decodes what the gateway (events topic), the processor (fired topic, events DLQ)
//!   and the notifier (notifications DLQ) wrote.
//!
//! Needs `python3` with fastavro and confluent-kafka (`LEADSTREAM_TEST_PYTHON` names another
//! interpreter; `.ci/run` makes a venv with both).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use leadstream_shared::avro::{DEAD_LETTER_CODEC, EVENT_CODEC, FIRED_CODEC};
use leadstream_shared::kafka::{KafkaSettings, Publisher};
use leadstream_testkit::receiver::{Mode, Receiver};
use leadstream_testkit::{consume, wait_until};
use rdkafka::Message;
use serde_json::{json, Value};

use crate::common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_secs(2);
const LEAD: &str = "ld_python";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run the interop script with `args`, `stdin` as its input; its stdout lines as JSON.
fn python(args: &[&str], stdin: &str) -> Vec<Value> {
    let interpreter = std::env::var("LEADSTREAM_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = root().join("tests/interop/avro_interop.py");
    let mut child = Command::new(&interpreter)
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {interpreter}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to the script");
    let out = child.wait_with_output().expect("script runs");
    assert!(
        out.status.success(),
        "{interpreter} {} {args:?} failed (needs `pip install fastavro confluent-kafka`, or \
         LEADSTREAM_TEST_PYTHON naming an interpreter that has them):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("the script prints JSON lines"))
        .collect()
}

/// fastavro's reading of single-object records, by schema file.
fn fastavro_decode(values: &[Vec<u8>]) -> Vec<Value> {
    let input: String = values
        .iter()
        .map(|v| json!({"value": hex::encode(v)}).to_string() + "\n")
        .collect();
    let schemas = root().join("schemas");
    python(&["decode", &schemas.display().to_string()], &input)
}

async fn values(brokers: &str, topic: &str, n: usize) -> Vec<Vec<u8>> {
    consume(brokers, topic, n, WAIT, QUIET)
        .await
        .iter()
        .filter_map(|m| m.payload().map(<[u8]>::to_vec))
        .collect()
}

#[test]
fn fastavro_computes_the_fingerprints_leadstream_writes() {
    let schemas = root().join("schemas");
    let got = python(&["fingerprints", &schemas.display().to_string()], "");
    let of = |name: &str| {
        got.iter()
            .find(|l| l["schema"] == name)
            .and_then(|l| l["fingerprint"].as_str())
            .unwrap_or_else(|| panic!("no fingerprint for {name}: {got:?}"))
            .to_string()
    };
    assert_eq!(
        of("EngagementEvent.avsc"),
        hex::encode(&EVENT_CODEC.header()[2..])
    );
    assert_eq!(
        of("TriggerFired.avsc"),
        hex::encode(&FIRED_CODEC.header()[2..])
    );
    assert_eq!(
        of("DeadLetter.avsc"),
        hex::encode(&DEAD_LETTER_CODEC.header()[2..])
    );
    let history = of("history/EngagementEvent.v1.avsc");
    assert!(
        EVENT_CODEC
            .read_fingerprints()
            .any(|(fp, legacy)| !legacy && hex::encode(fp) == history),
        "leadstream reads records of schema v1 under fastavro's fingerprint {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_clients_produce_to_and_read_from_leadstream() {
    let app = App::start(spawn_gateway).await;
    let topics = &app.common.topics;
    let services = Services::both(&notifier_env(&app, &[]));

    let admin = Cred::Bearer(ADMIN);
    // A webhook endpoint that refuses every delivery (400: dead at once, to the notifications DLQ).
    let refusing = Receiver::start().await;
    refusing.set_mode(Mode::Status(400));
    let hook = refusing.url("/hook");
    let rules = json!({"name": "Engagement", "rules": [
        {"event_type": "demo_request", "points": 50},
        {"event_type": "pricing_page_view", "points": 10}]});
    app.create("/rulesets", &rules).await;
    // Fires only once both of the Python producer's events are applied (50 + 10).
    let trigger = json!({"name": "Hot Lead Alert", "score_threshold": 60, "webhook_url": hook});
    app.create("/triggers", &trigger).await;

    // An event the gateway writes.
    let ingest = json!({"alias_kind": "email", "alias": "gw@example.com",
        "event_type": "page_view", "metadata": {"path": "/pricing"}});
    let resp = app.post("/ingest", admin, &[], &ingest).await;
    assert_eq!(resp.status(), 202, "{}", body(resp).await);
    // A record the processor dead-letters.
    let poison = b"{not json".to_vec();
    let publisher = Publisher::new(&KafkaSettings::new(app.broker.addr()), WAIT).expect("producer");
    publisher
        .send(&topics.events, "unit_default:ld_poison", &poison, &[])
        .await
        .expect("produce");

    let placed = python(
        &[
            "produce",
            &root().join("schemas").display().to_string(),
            &app.broker.addr(),
            &topics.events,
            "unit_default",
            LEAD,
        ],
        "",
    );
    let expected = partition_for(&format!("unit_default:{LEAD}"), PARTITIONS);
    for form in ["avro", "json"] {
        assert_eq!(
            placed[0][form][0], expected,
            "the {form} record lands where leadstream's murmur2 puts the lead: {placed:?}"
        );
    }

    let lead = wait_until(WAIT, "the processor applies both Python events", || async {
        let resp = app.get(&format!("/leads/{LEAD}"), admin).await;
        let v = body(resp).await;
        (v["score"] == 60).then_some(v)
    })
    .await;
    assert_eq!(lead["lead_id"], LEAD, "{lead}");

    let brokers = app.broker.addr();
    let events = values(&brokers, &topics.events, 4).await;
    let fired = values(&brokers, &topics.fired, 1).await;
    let events_dlq = values(&brokers, &topics.events_dlq, 1).await;
    let notifications_dlq = values(&brokers, &topics.dlq, 1).await;
    services.stop().await;

    // The gateway's event (its own Avro), read by fastavro.
    let avro_events: Vec<Vec<u8>> = events.into_iter().filter(|v| v[0] == 0xC3).collect();
    let decoded = fastavro_decode(&avro_events);
    let gw = decoded
        .iter()
        .find(|d| d["record"]["origin"] == "ingest")
        .unwrap_or_else(|| panic!("fastavro read no gateway event: {decoded:?}"));
    assert_eq!(gw["schema"], "EngagementEvent.avsc");
    assert_eq!(gw["record"]["event_type"], "page_view");
    let meta: Value =
        serde_json::from_str(gw["record"]["metadata_json"].as_str().unwrap()).unwrap();
    assert_eq!(meta["path"], "/pricing");
    assert!(gw["record"]["event_time"].as_i64().unwrap() > 0);

    let decoded = fastavro_decode(&fired);
    assert_eq!(decoded[0]["schema"], "TriggerFired.avsc", "{decoded:?}");
    let f = &decoded[0]["record"];
    assert_eq!(f["lead_id"], LEAD);
    assert_eq!(f["trigger_name"], "Hot Lead Alert");
    assert_eq!(f["score"], 60);
    assert_eq!(f["targets"]["webhook_url"], hook);
    let payload: Value = serde_json::from_str(f["payload_json"].as_str().unwrap()).unwrap();
    assert!(payload.is_object(), "{payload}");

    let decoded = fastavro_decode(&events_dlq);
    assert_eq!(decoded[0]["schema"], "DeadLetter.avsc", "{decoded:?}");
    assert_eq!(decoded[0]["record"]["payload"], hex::encode(&poison));
    assert_eq!(decoded[0]["record"]["source_topic"], topics.events);

    let decoded = fastavro_decode(&notifications_dlq);
    assert_eq!(decoded[0]["schema"], "DeadLetter.avsc", "{decoded:?}");
    assert_eq!(decoded[0]["record"]["target"], hook);
    assert_eq!(decoded[0]["record"]["source_topic"], topics.fired);
}
