//! Splitting batch bodies into items without parsing them twice.
//!
//! The bulk import takes a JSON array, an object `{"events": [...]}` / `{"items": [...]}`, or
//! NDJSON (one event per line, blank lines skipped); the CDP batch takes `{"items": [...]}`.
//! Items are kept as raw JSON text (`RawValue`) so each one's size can be checked against the
//! per-event limit before it is parsed, and so one bad item fails alone.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::body::Format;

use super::PayloadError;

/// Why a whole batch body was refused (per-item problems are reported per item).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Shape(String),
    #[error("the request has more than {max} items; at most {max} are accepted per request")]
    TooMany { max: usize },
}

#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

/// One item's JSON text, or why it was refused before parsing.
pub type RawItem<'a> = Result<&'a str, PayloadError>;

/// Split a bulk import body (array, `{"events"|"items": [...]}`, or NDJSON) into items.
pub fn split_import(
    format: Format,
    body: &[u8],
    max_items: usize,
    max_item_bytes: usize,
) -> Result<Vec<RawItem<'_>>, BatchError> {
    let items: Vec<&str> = match format {
        Format::Ndjson => {
            let text = std::str::from_utf8(body)
                .map_err(|e| BatchError::Malformed(format!("body is not UTF-8: {e}")))?;
            let mut items = Vec::new();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                if items.len() == max_items {
                    return Err(BatchError::TooMany { max: max_items });
                }
                items.push(line);
            }
            items
        }
        Format::Json => {
            const EXPECTED: &str = "a JSON array of events or {\"events\": [...]}";
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            let parsed = if first == Some(&b'{') {
                serde_json::from_slice::<Wrapped<'_>>(body).map(|w| w.events.or(w.items))
            } else {
                serde_json::from_slice::<Vec<&RawValue>>(body).map(Some)
            };
            match parsed {
                Ok(Some(v)) => v.into_iter().map(RawValue::get).collect(),
                Ok(None) => return Err(BatchError::Shape(format!("the body must be {EXPECTED}"))),
                Err(e) => return Err(shape_error(body, e, EXPECTED)),
            }
        }
    };
    finish(items, max_items, max_item_bytes)
}

/// Split a CDP batch body `{"items": [...]}`.
pub fn split_items(
    body: &[u8],
    max_items: usize,
    max_item_bytes: usize,
) -> Result<Vec<RawItem<'_>>, BatchError> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        items: Vec<&'a RawValue>,
    }
    match serde_json::from_slice::<Batch<'_>>(body) {
        Ok(b) => finish(
            b.items.into_iter().map(RawValue::get).collect(),
            max_items,
            max_item_bytes,
        ),
        Err(e) => Err(shape_error(body, e, "an object with an `items` array")),
    }
}

fn shape_error(body: &[u8], e: serde_json::Error, expected: &str) -> BatchError {
    // Syntax errors are malformed JSON; well-formed JSON of the wrong shape is a shape error.
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        BatchError::Malformed(e.to_string())
    } else {
        BatchError::Shape(format!("the body must be {expected}"))
    }
}

fn finish(
    items: Vec<&str>,
    max_items: usize,
    max_item_bytes: usize,
) -> Result<Vec<RawItem<'_>>, BatchError> {
    if items.len() > max_items {
        return Err(BatchError::TooMany { max: max_items });
    }
    Ok(items
        .into_iter()
        .map(|raw| {
            if raw.len() > max_item_bytes {
                Err(PayloadError::Invalid(format!(
                    "event is {} bytes; at most {max_item_bytes} are accepted per event",
                    raw.len()
                )))
            } else {
                Ok(raw)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_object_and_ndjson() {
        let a = split_import(Format::Json, br#"[{"a":1},{"b":2}]"#, 10, 100).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].as_ref().unwrap(), &r#"{"b":2}"#);
        let o = split_import(Format::Json, br#"{"events":[{"a":1}]}"#, 10, 100).unwrap();
        assert_eq!(o.len(), 1);
        let n = split_import(Format::Ndjson, b"{\"a\":1}\n\n{\"b\":2}\n", 10, 100).unwrap();
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn limits_and_shapes() {
        assert!(matches!(
            split_import(Format::Json, b"[1,2,3]", 2, 100),
            Err(BatchError::TooMany { max: 2 })
        ));
        let big = split_import(Format::Json, br#"[{"a":"xxxxxxxxxx"}]"#, 10, 5).unwrap();
        assert!(big[0].is_err());
        assert!(matches!(
            split_import(Format::Json, b"{\"x\":1}", 10, 100),
            Err(BatchError::Shape(_))
        ));
        assert!(matches!(
            split_items(b"[", 10, 100),
            Err(BatchError::Malformed(_))
        ));
        assert!(matches!(
            split_items(b"{\"items\":5}", 10, 100),
            Err(BatchError::Shape(_))
        ));
    }
}
