//! Avro codecs for the records that cross topics, in single-object encoding
//! (`0xC3 0x01` + 8-byte CRC-64-AVRO fingerprint of the writer schema + body).
//!
//! The `.avsc` files in `schemas/` are the contract. The fingerprint tells a reader which schema
//! wrote a record without a registry: every schema version we ever wrote is kept (current ones in
//! `schemas/`, superseded ones in `schemas/history/`) and a record is resolved from its writer
//! schema to the current reader schema by Avro's rules (new fields take their defaults).
//!
//! Fingerprints follow the specification's Parsing Canonical Form ([`canonical`]), so records
//! agree with every other Avro implementation. Records written before that carry apache-avro
//! 0.21's fingerprint of the same schema; readers still accept it (see `schemas/README.md` for how
//! long) and count each such read in [`AvroCounter::LegacyFingerprintReads`].

use std::io::Read;
use std::sync::LazyLock;

use apache_avro::types::Value;
use apache_avro::Schema;

use leadstream_domain::event::{Alias, AliasKind, EngagementEvent, Origin};
use leadstream_domain::fired::{Targets, TriggerFired, TriggerKind};

use crate::metric;

pub mod canonical;

metric::define! {
    /// The counters of the Avro readers.
    pub enum AvroCounter: Counter {
        /// Records read whose header carries the legacy (pre-specification) fingerprint, by
        /// record name. When it stays at zero for a topic's retention, no such record is left.
        LegacyFingerprintReads = "leadstream_avro_legacy_fingerprint_reads_total" ["schema"],
    }
}

pub const ENGAGEMENT_EVENT_SCHEMA: &str = include_str!("../../schemas/EngagementEvent.avsc");
pub const ENGAGEMENT_EVENT_V1_SCHEMA: &str =
    include_str!("../../schemas/history/EngagementEvent.v1.avsc");
pub const TRIGGER_FIRED_SCHEMA: &str = include_str!("../../schemas/TriggerFired.avsc");
pub const DEAD_LETTER_SCHEMA: &str = include_str!("../../schemas/DeadLetter.avsc");

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("record is too short for Avro single-object encoding ({0} bytes)")]
    TooShort(usize),
    #[error("record does not start with the Avro single-object marker C3 01")]
    NoMarker,
    #[error("record was written with an unknown schema (fingerprint {0})")]
    UnknownSchema(String),
    #[error("record body does not match its schema: {0}")]
    Body(String),
    #[error("field {field}: {message}")]
    Field { field: String, message: String },
}

/// A current (reader) schema with every writer schema version we can read.
pub struct Codec {
    name: &'static str,
    schema: Schema,
    header: [u8; 10],
    writers: Vec<Writer>,
}

/// A schema version a record may have been written with, under one of its fingerprints.
struct Writer {
    fingerprint: [u8; 8],
    schema: Schema,
    legacy: bool,
}

impl Codec {
    fn new(name: &'static str, current: &str, history: &[&str]) -> Codec {
        // The schemas are compiled into the binary and covered by tests: failing here is a build
        // defect, not an input error.
        #[allow(clippy::expect_used)]
        let parse = |s: &str| {
            let schema = Schema::parse_str(s).expect("bundled Avro schema must parse");
            let fp = canonical::fingerprint(s).expect("bundled Avro schema has a canonical form");
            (schema, fp)
        };
        let (schema, fp) = parse(current);
        let mut header = [0u8; 10];
        header[..2].copy_from_slice(&[0xC3, 0x01]);
        header[2..].copy_from_slice(&fp);
        let mut writers = Vec::new();
        for (schema, fp) in
            std::iter::once((schema.clone(), fp)).chain(history.iter().map(|h| parse(h)))
        {
            let legacy = canonical::legacy_fingerprint(&schema);
            if legacy != fp {
                writers.push(Writer {
                    fingerprint: legacy,
                    schema: schema.clone(),
                    legacy: true,
                });
            }
            writers.push(Writer {
                fingerprint: fp,
                schema,
                legacy: false,
            });
        }
        Codec {
            name,
            schema,
            header,
            writers,
        }
    }

    /// The single-object header of records this codec writes: the marker and the fingerprint
    /// of the current schema's Parsing Canonical Form.
    pub fn header(&self) -> [u8; 10] {
        self.header
    }

    /// Every fingerprint this codec reads, with whether it is a legacy one.
    pub fn read_fingerprints(&self) -> impl Iterator<Item = ([u8; 8], bool)> + '_ {
        self.writers.iter().map(|w| (w.fingerprint, w.legacy))
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Encode a value of the current schema.
    pub fn encode(&self, value: Value) -> Result<Vec<u8>, AvroError> {
        let body = apache_avro::to_avro_datum(&self.schema, value)
            .map_err(|e| AvroError::Body(e.to_string()))?;
        let mut out = Vec::with_capacity(self.header.len() + body.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decode a record written with any known version, resolved to the current schema.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<(String, Value)>, AvroError> {
        if bytes.len() < 10 {
            return Err(AvroError::TooShort(bytes.len()));
        }
        if bytes[..2] != [0xC3, 0x01] {
            return Err(AvroError::NoMarker);
        }
        let fp: [u8; 8] = bytes[2..10]
            .try_into()
            .map_err(|_| AvroError::TooShort(bytes.len()))?;
        let writer = self
            .writers
            .iter()
            .find(|w| w.fingerprint == fp)
            .ok_or_else(|| AvroError::UnknownSchema(hex::encode(fp)))?;
        if writer.legacy {
            metric::counter!(AvroCounter::LegacyFingerprintReads, self.name).increment(1);
        }
        let writer = &writer.schema;
        // apache-avro reads a union cut off at end-of-input as null, which would turn a
        // truncated record into a silently different one. Reading over padding that can never
        // end a record (0xFF continues every varint) and then demanding that exactly the body was
        // consumed makes truncation an error.
        let body = &bytes[10..];
        let mut reader = Counting {
            inner: body.chain(&PADDING[..]),
            read: 0,
        };
        let value = apache_avro::from_avro_datum(writer, &mut reader, Some(&self.schema))
            .map_err(|e| AvroError::Body(e.to_string()))?;
        if reader.read < body.len() {
            return Err(AvroError::Body("trailing bytes after the record".into()));
        }
        if reader.read > body.len() {
            return Err(AvroError::Body("record is truncated".into()));
        }
        match value {
            Value::Record(fields) => Ok(fields),
            other => Err(AvroError::Body(format!("expected a record, got {other:?}"))),
        }
    }
}

const PADDING: [u8; 16] = [0xFF; 16];

/// A reader that counts the bytes taken from it.
struct Counting<R> {
    inner: R,
    read: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

pub static EVENT_CODEC: LazyLock<Codec> = LazyLock::new(|| {
    Codec::new(
        "EngagementEvent",
        ENGAGEMENT_EVENT_SCHEMA,
        &[ENGAGEMENT_EVENT_V1_SCHEMA],
    )
});
pub static FIRED_CODEC: LazyLock<Codec> =
    LazyLock::new(|| Codec::new("TriggerFired", TRIGGER_FIRED_SCHEMA, &[]));
pub static DEAD_LETTER_CODEC: LazyLock<Codec> =
    LazyLock::new(|| Codec::new("DeadLetter", DEAD_LETTER_SCHEMA, &[]));

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn opt(v: &Option<String>) -> Value {
    match v {
        Some(x) => Value::Union(1, Box::new(s(x))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// Encode an event as single-object Avro of the current schema.
///
/// The hot path of every ingest route: the body is written straight from the typed event in the
/// schema's field order (Avro's binary encoding: zig-zag varint longs, length-prefixed strings,
/// union branch indexes, array blocks), with no intermediate `apache_avro::Value` tree and one
/// allocation besides the metadata's JSON. A test checks it byte for byte against
/// apache-avro's encoder of the same schema, and the interop test against fastavro.
pub fn encode_event(e: &EngagementEvent) -> Result<Vec<u8>, AvroError> {
    let mut out = Vec::with_capacity(encoded_event_capacity(e));
    encode_event_into(e, &mut out)?;
    Ok(out)
}

/// [`encode_event`] appending to `out` (which may hold other records: a batch's buffer).
pub fn encode_event_into(e: &EngagementEvent, out: &mut Vec<u8>) -> Result<(), AvroError> {
    out.extend_from_slice(&EVENT_CODEC.header);
    write::string(out, &e.event_id);
    write::string(out, &e.org_id);
    write::string(out, &e.ou_id);
    write::opt_string(out, e.lead_id.as_deref());
    if !e.aliases.is_empty() {
        write::long(out, e.aliases.len() as i64);
        for a in &e.aliases {
            write::string(out, a.kind.as_str());
            write::string(out, &a.value);
        }
    }
    write::long(out, 0);
    write::opt_string(out, e.source.as_deref());
    write::opt_string(out, e.producer_event_id.as_deref());
    write::string(out, &e.event_type);
    write::long(out, e.event_time_ms);
    write::long(out, e.received_at_ms);
    // The metadata's JSON text is written once, in place, and its length prefix put in front.
    let at = out.len();
    serde_json::to_writer(&mut *out, &e.metadata).map_err(|err| AvroError::Field {
        field: "metadata_json".into(),
        message: err.to_string(),
    })?;
    let len = out.len() - at;
    let mut prefix = [0u8; 10];
    let n = write::long_bytes(len as i64, &mut prefix);
    out.splice(at..at, prefix[..n].iter().copied());
    write::string(out, e.origin.as_str());
    write::opt_string(out, e.environment.as_deref());
    write::opt_string(out, e.severity.as_deref());
    Ok(())
}

/// A close upper estimate of an event's encoded size (one allocation in the usual case).
fn encoded_event_capacity(e: &EngagementEvent) -> usize {
    let strings = e.event_id.len()
        + e.org_id.len()
        + e.ou_id.len()
        + e.lead_id.as_ref().map_or(0, String::len)
        + e.aliases.iter().map(|a| a.value.len() + 16).sum::<usize>()
        + e.source.as_ref().map_or(0, String::len)
        + e.producer_event_id.as_ref().map_or(0, String::len)
        + e.event_type.len()
        + e.environment.as_ref().map_or(0, String::len)
        + e.severity.as_ref().map_or(0, String::len);
    // Header, length prefixes, longs, and the metadata (JSON text is rarely over 64 bytes per
    // entry in practice; a larger object only costs a reallocation).
    10 + strings + 14 * 5 + 20 + 64 * (e.metadata.len() + 1)
}

/// Avro's binary encoding of the primitive types the event schema uses.
mod write {
    /// Zig-zag varint of a long into `buf`; the number of bytes written.
    pub fn long_bytes(v: i64, buf: &mut [u8; 10]) -> usize {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut i = 0;
        while z >= 0x80 {
            buf[i] = (z as u8) | 0x80;
            z >>= 7;
            i += 1;
        }
        buf[i] = z as u8;
        i + 1
    }

    pub fn long(out: &mut Vec<u8>, v: i64) {
        let mut buf = [0u8; 10];
        let n = long_bytes(v, &mut buf);
        out.extend_from_slice(&buf[..n]);
    }

    pub fn string(out: &mut Vec<u8>, s: &str) {
        long(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    /// `["null", "string"]`: branch 0 is null, branch 1 a string.
    pub fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => long(out, 0),
            Some(s) => {
                long(out, 1);
                string(out, s);
            }
        }
    }
}

/// The same record through apache-avro's generic `Value` encoder: the reference the direct
/// encoder is checked against.
#[cfg(test)]
fn encode_event_generic(e: &EngagementEvent) -> Result<Vec<u8>, AvroError> {
    let aliases = e
        .aliases
        .iter()
        .map(|a| {
            Value::Record(vec![
                ("kind".into(), s(a.kind.as_str())),
                ("value".into(), s(&a.value)),
            ])
        })
        .collect();
    let metadata = serde_json::to_string(&e.metadata).map_err(|err| AvroError::Field {
        field: "metadata_json".into(),
        message: err.to_string(),
    })?;
    EVENT_CODEC.encode(Value::Record(vec![
        ("event_id".into(), s(&e.event_id)),
        ("org_id".into(), s(&e.org_id)),
        ("ou_id".into(), s(&e.ou_id)),
        ("lead_id".into(), opt(&e.lead_id)),
        ("aliases".into(), Value::Array(aliases)),
        ("source".into(), opt(&e.source)),
        ("producer_event_id".into(), opt(&e.producer_event_id)),
        ("event_type".into(), s(&e.event_type)),
        ("event_time".into(), Value::TimestampMillis(e.event_time_ms)),
        (
            "received_at".into(),
            Value::TimestampMillis(e.received_at_ms),
        ),
        ("metadata_json".into(), Value::String(metadata)),
        ("origin".into(), s(e.origin.as_str())),
        ("environment".into(), opt(&e.environment)),
        ("severity".into(), opt(&e.severity)),
    ]))
}

pub fn decode_event(bytes: &[u8]) -> Result<EngagementEvent, AvroError> {
    let mut r = Fields(EVENT_CODEC.decode(bytes)?);
    let aliases = match r.take("aliases")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let mut f = match item {
                    Value::Record(f) => Fields(f),
                    _ => return Err(bad("aliases", "item is not a record")),
                };
                let kind = f.string("kind")?;
                let kind = AliasKind::parse(&kind)
                    .ok_or_else(|| bad("aliases.kind", &format!("unknown alias kind {kind:?}")))?;
                let value = f.string("value")?;
                Alias::normalise(kind, &value).map_err(|e| bad("aliases.value", &e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("aliases", "not an array")),
    };
    let metadata_text = r.string("metadata_json")?;
    let metadata = match serde_json::from_str::<serde_json::Value>(&metadata_text) {
        Ok(serde_json::Value::Object(m)) => m,
        Ok(_) => return Err(bad("metadata_json", "is not a JSON object")),
        Err(e) => return Err(bad("metadata_json", &e.to_string())),
    };
    let origin = r.string("origin")?;
    Ok(EngagementEvent {
        event_id: r.string("event_id")?,
        org_id: r.string("org_id")?,
        ou_id: r.string("ou_id")?,
        lead_id: r.opt_string("lead_id")?,
        aliases,
        source: r.opt_string("source")?,
        producer_event_id: r.opt_string("producer_event_id")?,
        event_type: r.string("event_type")?,
        event_time_ms: r.millis("event_time")?,
        received_at_ms: r.millis("received_at")?,
        metadata,
        origin: Origin::parse(&origin)
            .ok_or_else(|| bad("origin", &format!("unknown origin {origin:?}")))?,
        environment: r.opt_string("environment")?,
        severity: r.opt_string("severity")?,
    })
}

pub fn encode_fired(f: &TriggerFired) -> Result<Vec<u8>, AvroError> {
    let t = &f.targets;
    let targets = Value::Record(vec![
        ("webhook_url".into(), opt(&t.webhook_url)),
        (
            "emails".into(),
            Value::Array(t.emails.iter().map(|e| s(e)).collect()),
        ),
        ("email_subject".into(), opt(&t.email_subject)),
        ("email_preheader".into(), opt(&t.email_preheader)),
        ("email_message".into(), opt(&t.email_message)),
        ("slack_webhook_url".into(), opt(&t.slack_webhook_url)),
        ("teams_webhook_url".into(), opt(&t.teams_webhook_url)),
    ]);
    FIRED_CODEC.encode(Value::Record(vec![
        ("fired_id".into(), s(&f.fired_id)),
        ("org_id".into(), s(&f.org_id)),
        ("ou_id".into(), s(&f.ou_id)),
        ("lead_id".into(), s(&f.lead_id)),
        ("trigger_id".into(), s(&f.trigger_id)),
        ("trigger_name".into(), s(&f.trigger_name)),
        ("kind".into(), s(f.kind.as_str())),
        ("event_id".into(), s(&f.event_id)),
        ("fired_at".into(), Value::TimestampMillis(f.fired_at_ms)),
        ("score".into(), Value::Long(f.score)),
        ("payload_json".into(), Value::String(f.payload.to_string())),
        ("targets".into(), targets),
    ]))
}

pub fn decode_fired(bytes: &[u8]) -> Result<TriggerFired, AvroError> {
    let mut r = Fields(FIRED_CODEC.decode(bytes)?);
    let mut t = match r.take("targets")? {
        Value::Record(f) => Fields(f),
        _ => return Err(bad("targets", "not a record")),
    };
    let emails = match t.take("emails")? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad("targets.emails", "item is not a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("targets.emails", "not an array")),
    };
    let targets = Targets {
        webhook_url: t.opt_string("webhook_url")?,
        emails,
        email_subject: t.opt_string("email_subject")?,
        email_preheader: t.opt_string("email_preheader")?,
        email_message: t.opt_string("email_message")?,
        slack_webhook_url: t.opt_string("slack_webhook_url")?,
        teams_webhook_url: t.opt_string("teams_webhook_url")?,
    };
    let kind = r.string("kind")?;
    let payload_text = r.string("payload_json")?;
    Ok(TriggerFired {
        fired_id: r.string("fired_id")?,
        org_id: r.string("org_id")?,
        ou_id: r.string("ou_id")?,
        lead_id: r.string("lead_id")?,
        trigger_id: r.string("trigger_id")?,
        trigger_name: r.string("trigger_name")?,
        kind: TriggerKind::parse(&kind)
            .ok_or_else(|| bad("kind", &format!("unknown trigger kind {kind:?}")))?,
        event_id: r.string("event_id")?,
        fired_at_ms: r.millis("fired_at")?,
        score: match r.take("score")? {
            Value::Long(n) => n,
            _ => return Err(bad("score", "not a long")),
        },
        payload: serde_json::from_str(&payload_text)
            .map_err(|e| bad("payload_json", &e.to_string()))?,
        targets,
    })
}

/// A dead letter: an input that could not be handled, kept whole with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub reason: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub failed_at_ms: i64,
    pub target: Option<String>,
    pub attempts: i32,
}

pub fn encode_dead_letter(d: &DeadLetter) -> Result<Vec<u8>, AvroError> {
    DEAD_LETTER_CODEC.encode(Value::Record(vec![
        ("reason".into(), s(&d.reason)),
        ("source_topic".into(), s(&d.source_topic)),
        ("source_partition".into(), Value::Int(d.source_partition)),
        ("source_offset".into(), Value::Long(d.source_offset)),
        (
            "key".into(),
            match &d.key {
                Some(k) => Value::Union(1, Box::new(Value::Bytes(k.clone()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        ("payload".into(), Value::Bytes(d.payload.clone())),
        ("failed_at".into(), Value::TimestampMillis(d.failed_at_ms)),
        ("target".into(), opt(&d.target)),
        ("attempts".into(), Value::Int(d.attempts)),
    ]))
}

pub fn decode_dead_letter(bytes: &[u8]) -> Result<DeadLetter, AvroError> {
    let mut r = Fields(DEAD_LETTER_CODEC.decode(bytes)?);
    let bytes_of = |v: Value, field: &str| match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad(field, "not bytes")),
    };
    Ok(DeadLetter {
        reason: r.string("reason")?,
        source_topic: r.string("source_topic")?,
        source_partition: match r.take("source_partition")? {
            Value::Int(n) => n,
            _ => return Err(bad("source_partition", "not an int")),
        },
        source_offset: match r.take("source_offset")? {
            Value::Long(n) => n,
            _ => return Err(bad("source_offset", "not a long")),
        },
        key: match r.take("key")? {
            Value::Union(_, v) => match *v {
                Value::Null => None,
                other => Some(bytes_of(other, "key")?),
            },
            _ => return Err(bad("key", "not a union")),
        },
        payload: bytes_of(r.take("payload")?, "payload")?,
        failed_at_ms: r.millis("failed_at")?,
        target: r.opt_string("target")?,
        attempts: match r.take("attempts")? {
            Value::Int(n) => n,
            _ => return Err(bad("attempts", "not an int")),
        },
    })
}

fn bad(field: &str, message: &str) -> AvroError {
    AvroError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// Named access to a decoded record's fields.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn take(&mut self, name: &str) -> Result<Value, AvroError> {
        self.0
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| std::mem::replace(v, Value::Null))
            .ok_or_else(|| bad(name, "missing"))
    }

    fn string(&mut self, name: &str) -> Result<String, AvroError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            _ => Err(bad(name, "not a string")),
        }
    }

    fn opt_string(&mut self, name: &str) -> Result<Option<String>, AvroError> {
        match self.take(name)? {
            Value::Union(_, v) => match *v {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s)),
                _ => Err(bad(name, "not a string or null")),
            },
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(bad(name, "not a string or null")),
        }
    }

    fn millis(&mut self, name: &str) -> Result<i64, AvroError> {
        match self.take(name)? {
            Value::TimestampMillis(n) | Value::Long(n) => Ok(n),
            _ => Err(bad(name, "not a timestamp-millis")),
        }
    }
}

#[cfg(test)]
mod tests;
