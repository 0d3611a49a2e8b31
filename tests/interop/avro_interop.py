#!/usr/bin/env python3
"""Independent Avro and Kafka client for leadstream's interop test (issue 18).

Uses only `schemas/` and two PyPI packages that share no code with leadstream:
fastavro (Avro, Parsing Canonical Form, CRC-64-AVRO) and confluent-kafka (librdkafka's Python
client). Invoked by e2e/tests/pipeline/interop.rs; usable by hand too.

  avro_interop.py fingerprints SCHEMAS_DIR
      one JSON line per schema: {"schema": name, "fingerprint": hex}
  avro_interop.py produce SCHEMAS_DIR BROKERS TOPIC OU LEAD
      produces two events for LEAD with a Java-compatible partitioner (murmur2_random), keyed
      "OU:LEAD": one in Avro single-object encoding, one as JSON (content-type
      application/json) with the Avro schema's field names and a field leadstream does not know;
      prints {"avro": [partition, offset], "json": [partition, offset]}
  avro_interop.py decode SCHEMAS_DIR
      reads JSON lines {"value": hex} on stdin, each a single-object encoded record; prints one
      JSON line per record: {"schema": name, "record": {...}} (bytes as hex), or {"error": text}
"""
import json
import sys
import time
from pathlib import Path

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form


def load(schemas_dir):
    """Every .avsc under schemas_dir (history included), by little-endian fingerprint bytes."""
    known = {}
    for path in sorted(Path(schemas_dir).rglob("*.avsc")):
        schema = parse_schema(json.loads(path.read_text()))
        fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
        known[bytes.fromhex(fp)] = (str(path.relative_to(schemas_dir)), schema)
    return known


def by_name(known, name):
    return next(s for n, s in known.values() if n == name)


def single_object(schema, record):
    from io import BytesIO

    buf = BytesIO()
    schemaless_writer(buf, schema, record)
    fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    return b"\xc3\x01" + bytes.fromhex(fp) + buf.getvalue()


def plain(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):  # timestamp-millis read as datetime
        return int(value.timestamp() * 1000)
    return value


def cmd_fingerprints(schemas_dir):
    for fp, (name, _) in load(schemas_dir).items():
        print(json.dumps({"schema": name, "fingerprint": fp.hex()}))


def cmd_decode(schemas_dir):
    from io import BytesIO

    known = load(schemas_dir)
    for line in sys.stdin:
        if not line.strip():
            continue
        value = bytes.fromhex(json.loads(line)["value"])
        entry = known.get(value[2:10]) if value[:2] == b"\xc3\x01" else None
        if entry is None:
            print(json.dumps({"error": "no schema in schemas/ has fingerprint " + value[2:10].hex()}))
            continue
        name, schema = entry
        record = schemaless_reader(BytesIO(value[10:]), schema, None)
        print(json.dumps({"schema": name, "record": plain(record)}))


def cmd_produce(schemas_dir, brokers, topic, ou, lead):
    from confluent_kafka import Producer

    known = load(schemas_dir)
    schema = by_name(known, "EngagementEvent.avsc")
    now = int(time.time() * 1000)
    avro_event = {
        "event_id": "evt_py_avro", "org_id": "org_default", "ou_id": ou, "lead_id": lead,
        "aliases": [], "source": "python", "producer_event_id": "py-avro-1",
        "event_type": "demo_request", "event_time": now, "received_at": now,
        "metadata_json": json.dumps({"via": "fastavro"}), "origin": "kafka",
        "environment": None, "severity": None,
    }
    # The JSON rendering of the same schema (Avro's field names), plus a field of a newer producer.
    json_event = dict(avro_event, event_id="evt_py_json", producer_event_id="py-json-1",
                      event_type="pricing_page_view", added_by_a_newer_producer={"x": 1})
    producer = Producer({"bootstrap.servers": brokers, "partitioner": "murmur2_random",
                         "enable.idempotence": True, "acks": "all"})
    placed = {}

    def report(which):
        def on_delivery(err, msg):
            if err is not None:
                raise SystemExit(f"{which}: {err}")
            placed[which] = [msg.partition(), msg.offset()]
        return on_delivery

    key = f"{ou}:{lead}".encode()
    producer.produce(topic, single_object(schema, avro_event), key, on_delivery=report("avro"))
    producer.produce(topic, json.dumps(json_event).encode(), key,
                     headers=[("content-type", b"application/json")], on_delivery=report("json"))
    if producer.flush(60) != 0 or len(placed) != 2:
        raise SystemExit("records not acknowledged within 60 s")
    print(json.dumps(placed))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"fingerprints": cmd_fingerprints, "decode": cmd_decode, "produce": cmd_produce}[cmd](*args)
