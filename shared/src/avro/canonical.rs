//! The Avro specification's Parsing Canonical Form and its CRC-64-AVRO fingerprint, computed from
//! a schema's JSON text.
//!
//! Why not `apache_avro::Schema::fingerprint`: apache-avro 0.21 keeps a logical-typed primitive
//! as `{"type":"long"}` after stripping `logicalType`, where the specification's [PRIMITIVES]
//! rule reduces it to `"long"`. Every other Avro implementation (Java's `SchemaNormalization`,
//! Python's fastavro) follows the specification, so the fingerprint in our single-object headers
//! must too, or their readers cannot find the schema of what we write and we dead-letter what
//! they write. The old fingerprint is still accepted on read ([`legacy_fingerprint`]).
//!
//! The transformation works on the JSON, rule by rule as the specification names them:
//! [PRIMITIVES] primitives in their simple form, [FULLNAMES] names made full by the applicable
//! namespace, [STRIP] only `type name fields symbols items values size` kept, [ORDER] in that
//! order, [STRINGS] strings without escapes beyond what JSON requires, [INTEGERS] sizes as bare
//! integers, [WHITESPACE] none. A named type already defined is written as its full name.

use std::collections::HashSet;

use apache_avro::rabin::Rabin;
use apache_avro::Schema;
use digest::Digest;
use serde_json::{Map, Value};

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CanonicalError {
    #[error("schema is not JSON: {0}")]
    Json(String),
    #[error("schema {0}")]
    Invalid(String),
}

/// The Parsing Canonical Form of a schema given as JSON text.
pub fn parsing_canonical_form(schema_json: &str) -> Result<String, CanonicalError> {
    let value: Value =
        serde_json::from_str(schema_json).map_err(|e| CanonicalError::Json(e.to_string()))?;
    let mut out = String::with_capacity(schema_json.len() / 2);
    Canon::default().write(&value, None, &mut out)?;
    Ok(out)
}

/// The 8 bytes a single-object header carries: CRC-64-AVRO of the Parsing Canonical Form,
/// little-endian.
pub fn fingerprint(schema_json: &str) -> Result<[u8; 8], CanonicalError> {
    Ok(crc64_avro(parsing_canonical_form(schema_json)?.as_bytes()))
}

/// The fingerprint leadstream wrote before it followed the specification (apache-avro 0.21's
/// canonical form). Only read, never written.
pub fn legacy_fingerprint(schema: &Schema) -> [u8; 8] {
    crc64_avro(schema.canonical_form().as_bytes())
}

/// CRC-64-AVRO (the specification's Rabin fingerprint), little-endian as in single-object
/// encoding; `i64::from_le_bytes` gives the number Java's `SchemaNormalization` prints.
pub fn crc64_avro(bytes: &[u8]) -> [u8; 8] {
    let mut d = Rabin::new();
    d.update(bytes);
    d.finalize().into()
}

#[derive(Default)]
struct Canon {
    /// Full names of the named types defined so far.
    defined: HashSet<String>,
}

impl Canon {
    fn write(
        &mut self,
        v: &Value,
        ns: Option<&str>,
        out: &mut String,
    ) -> Result<(), CanonicalError> {
        match v {
            Value::String(name) => self.reference(name, ns, out),
            Value::Array(branches) => {
                out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(b, ns, out)?;
                }
                out.push(']');
                Ok(())
            }
            Value::Object(m) => self.object(m, ns, out),
            other => Err(invalid(format!("has {other} where a schema is expected"))),
        }
    }

    /// A primitive, or a reference to a named type defined before.
    fn reference(
        &self,
        name: &str,
        ns: Option<&str>,
        out: &mut String,
    ) -> Result<(), CanonicalError> {
        if PRIMITIVES.contains(&name) {
            push_str(out, name);
            return Ok(());
        }
        let in_ns = full_name(name, None, ns);
        let full = if self.defined.contains(&in_ns) {
            in_ns
        } else if self.defined.contains(name) {
            name.to_string()
        } else {
            return Err(invalid(format!(
                "refers to {name:?}, which is not defined before"
            )));
        };
        push_str(out, &full);
        Ok(())
    }

    fn object(
        &mut self,
        m: &Map<String, Value>,
        ns: Option<&str>,
        out: &mut String,
    ) -> Result<(), CanonicalError> {
        let ty = match m.get("type") {
            Some(Value::String(t)) => t.as_str(),
            // `{"type": <schema>}`: the wrapped schema.
            Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                return self.write(inner, ns, out)
            }
            _ => return Err(invalid("object has no \"type\"".into())),
        };
        match ty {
            "record" | "error" | "enum" | "fixed" => {
                let name = match m.get("name") {
                    Some(Value::String(n)) => n,
                    _ => return Err(invalid(format!("{ty} has no \"name\""))),
                };
                let declared_ns = match m.get("namespace") {
                    Some(Value::String(n)) => Some(n.as_str()),
                    _ => None,
                };
                let full = full_name(name, declared_ns, ns);
                if !self.defined.insert(full.clone()) {
                    return Err(invalid(format!("defines {full:?} twice")));
                }
                out.push_str("{\"name\":");
                push_str(out, &full);
                out.push_str(",\"type\":");
                // An `error` is a record (Java's SchemaNormalization writes the type's name).
                push_str(out, if ty == "error" { "record" } else { ty });
                let inner_ns = full.rsplit_once('.').map(|(n, _)| n.to_string());
                match ty {
                    "enum" => {
                        out.push_str(",\"symbols\":");
                        let symbols = m
                            .get("symbols")
                            .and_then(Value::as_array)
                            .ok_or_else(|| invalid(format!("enum {full} has no symbols")))?;
                        out.push('[');
                        for (i, s) in symbols.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            let s = s.as_str().ok_or_else(|| {
                                invalid(format!("enum {full} has a symbol that is not a string"))
                            })?;
                            push_str(out, s);
                        }
                        out.push(']');
                    }
                    "fixed" => {
                        let size = match m.get("size") {
                            Some(Value::Number(n)) => n.as_u64(),
                            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
                            _ => None,
                        }
                        .ok_or_else(|| invalid(format!("fixed {full} has no integer size")))?;
                        out.push_str(",\"size\":");
                        out.push_str(&size.to_string());
                    }
                    _ => {
                        out.push_str(",\"fields\":[");
                        let fields = m
                            .get("fields")
                            .and_then(Value::as_array)
                            .ok_or_else(|| invalid(format!("record {full} has no fields")))?;
                        for (i, f) in fields.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            let (fname, ftype) = match (f.get("name"), f.get("type")) {
                                (Some(Value::String(n)), Some(t)) => (n, t),
                                _ => {
                                    return Err(invalid(format!(
                                        "record {full} has a field without name or type"
                                    )))
                                }
                            };
                            out.push_str("{\"name\":");
                            push_str(out, fname);
                            out.push_str(",\"type\":");
                            self.write(ftype, inner_ns.as_deref(), out)?;
                            out.push('}');
                        }
                        out.push(']');
                    }
                }
                out.push('}');
                Ok(())
            }
            "array" => {
                let items = m
                    .get("items")
                    .ok_or_else(|| invalid("array has no items".into()))?;
                out.push_str("{\"type\":\"array\",\"items\":");
                self.write(items, ns, out)?;
                out.push('}');
                Ok(())
            }
            "map" => {
                let values = m
                    .get("values")
                    .ok_or_else(|| invalid("map has no values".into()))?;
                out.push_str("{\"type\":\"map\",\"values\":");
                self.write(values, ns, out)?;
                out.push('}');
                Ok(())
            }
            // [PRIMITIVES] (logicalType and every other attribute stripped), or `{"type": "Name"}`.
            other => self.reference(other, ns, out),
        }
    }
}

/// [FULLNAMES]: a dotted name is already full; otherwise the declared namespace, else the
/// enclosing one, applies (an empty namespace is the null namespace).
fn full_name(name: &str, declared_ns: Option<&str>, enclosing_ns: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    match declared_ns.or(enclosing_ns) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// [STRINGS]: a JSON string literal with only the escapes JSON requires.
fn push_str(out: &mut String, s: &str) {
    // serde_json escapes only `"`, `\` and control characters; everything else stays UTF-8.
    out.push_str(&Value::String(s.to_string()).to_string());
}

fn invalid(message: String) -> CanonicalError {
    CanonicalError::Invalid(message)
}

#[cfg(test)]
mod tests;
