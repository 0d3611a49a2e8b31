//! Reading request bodies under the configured limits.
//!
//! Every ingest and management route reads its body through [`read_body`], which (in order)
//! checks the `Content-Type` (415), refuses a declared `Content-Length` over the wire limit
//! before reading a byte (413), reads at most that many bytes (413), and — for
//! `Content-Encoding: gzip` — inflates into a buffer capped at the decompressed limit, so a
//! compression bomb costs at most `cap + 1` bytes of memory (413). Errors are the gateway's JSON
//! errors, which is why this is done here rather than by tower-http's plain-text layers.
//!
//! Batch bodies (`/import`, `/v1/cdp/events/batch`) go through [`read_batch_body`], which also
//! counts items *while* inflating ([`ItemCounter`]: NDJSON lines, or the elements of the
//! top-level array / of an array directly under the top-level object) and stops at the first item
//! over the limit, so a small gzip of millions of tiny items costs a few kilobytes, not a vector
//! of millions of slices. Inflating and counting large bodies runs on the blocking pool, never on
//! the async workers. The whole body must arrive within `LEADSTREAM_READ_TIMEOUT` (408), so a
//! client trickling its body cannot hold a connection and its buffers for ever.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use crate::error::ApiError;

/// Which bodies a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `application/json` (or `application/…+json`).
    Json,
    /// JSON, or newline-delimited JSON (`application/x-ndjson`, `application/jsonl`, …).
    JsonOrNdjson,
}

/// What the body turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
}

/// The byte limits for one route.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes read from the wire (compressed or not).
    pub wire: usize,
    /// Bytes after gzip decompression.
    pub decompressed: usize,
    /// The whole body must have arrived within this long.
    pub read_timeout: Duration,
}

/// Bodies at least this large (on the wire) are inflated and counted on the blocking pool.
const BLOCKING_FROM: usize = 64 * 1024;

/// Decide the body format from `Content-Type`, or 415.
pub fn content_format(headers: &HeaderMap, accept: Accept) -> Result<Format, ApiError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    let is_ndjson = matches!(
        mime.as_str(),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonl"
    );
    match accept {
        Accept::Json if is_json => Ok(Format::Json),
        Accept::JsonOrNdjson if is_json => Ok(Format::Json),
        Accept::JsonOrNdjson if is_ndjson => Ok(Format::Ndjson),
        Accept::Json => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, got {:?}",
            shown(raw)
        ))),
        Accept::JsonOrNdjson => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json or application/x-ndjson, got {:?}",
            shown(raw)
        ))),
    }
}

fn shown(raw: &str) -> &str {
    if raw.is_empty() {
        "(none)"
    } else {
        raw
    }
}

/// Read the body: content type, size limits and gzip, as described in the module header.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    accept: Accept,
    limits: Limits,
) -> Result<(Format, Bytes), ApiError> {
    let format = content_format(headers, accept)?;
    let gzip = is_gzip(headers)?;
    let bytes = read_wire(headers, body, gzip, limits).await?;
    if !gzip {
        return Ok((format, bytes));
    }
    if bytes.len() < BLOCKING_FROM {
        return Ok((format, gunzip_capped(&bytes, limits.decompressed)?));
    }
    let cap = limits.decompressed;
    let inflated = tokio::task::spawn_blocking(move || gunzip_capped(&bytes, cap))
        .await
        .map_err(|e| ApiError::Internal(format!("inflating task failed: {e}")))??;
    Ok((format, inflated))
}

/// [`read_body`] for a batch: also refuses (413) a body with more than `max_items` items, counting
/// them while inflating so that such a body is never held whole (see the module header).
pub async fn read_batch_body(
    headers: &HeaderMap,
    body: Body,
    accept: Accept,
    limits: Limits,
    max_items: usize,
) -> Result<(Format, Bytes), ApiError> {
    let format = content_format(headers, accept)?;
    let gzip = is_gzip(headers)?;
    let bytes = read_wire(headers, body, gzip, limits).await?;
    let cap = limits.decompressed;
    let work = move || -> Result<Bytes, ApiError> {
        let mut counter = ItemCounter::new(format, max_items);
        if !gzip {
            counter.feed(&bytes)?;
            return Ok(bytes);
        }
        inflate_counted(&bytes, cap, &mut counter)
    };
    let out = if bytes_hint(headers).is_some_and(|n| n < BLOCKING_FROM as u64) {
        work()?
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(format!("body reading task failed: {e}")))??
    };
    Ok((format, out))
}

fn bytes_hint(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
}

/// Whether the body is gzip; 415 for any other encoding.
fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") | Some("x-gzip") => Ok(true),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported (use gzip or none)"
        ))),
    }
}

/// The bytes on the wire, within the wire limit and the read timeout.
async fn read_wire(
    headers: &HeaderMap,
    body: Body,
    gzip: bool,
    limits: Limits,
) -> Result<Bytes, ApiError> {
    let wire_limit = if gzip {
        limits.wire
    } else {
        limits.wire.min(limits.decompressed)
    };
    if bytes_hint(headers).is_some_and(|n| n > wire_limit as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit: wire_limit,
            what: "request body",
        });
    }
    // Collected into one buffer sized by Content-Length when it is given (and within the
    // limit), so a large body is not regrown and copied chunk by chunk.
    let capacity = bytes_hint(headers).map_or(0, |n| (n as usize).min(wire_limit));
    let collected = tokio::time::timeout(limits.read_timeout, async move {
        let mut body = Limited::new(body, wire_limit);
        let mut buf: Vec<u8> = Vec::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok::<_, axum::BoxError>(Bytes::from(buf))
    })
    .await
    .map_err(|_| ApiError::RequestTimeout(limits.read_timeout))?;
    match collected {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge {
            limit: wire_limit,
            what: "request body",
        }),
        Err(e) => Err(ApiError::bad_request(
            "invalid_body",
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Inflate gzip data in chunks, refusing output over `cap` bytes and stopping at the first item
/// over the counter's limit.
fn inflate_counted(data: &[u8], cap: usize, counter: &mut ItemCounter) -> Result<Bytes, ApiError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(data);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(cap));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = decoder.read(&mut chunk).map_err(|e| {
            ApiError::bad_request("invalid_gzip", format!("invalid gzip body: {e}"))
        })?;
        if n == 0 {
            return Ok(Bytes::from(out));
        }
        if out.len() + n > cap {
            return Err(ApiError::PayloadTooLarge {
                limit: cap,
                what: "decompressed request body",
            });
        }
        counter.feed(&chunk[..n])?;
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Counts the items of a batch body as its bytes arrive, without parsing or allocating: NDJSON
/// lines that are not blank, or the elements of the top-level JSON array, or of any array that is
/// a direct member of the top-level object (`{"events": [...]}`, `{"items": [...]}`). Malformed
/// JSON is the parser's business afterwards; the counter only has to never under-count a body
/// the parser would accept.
#[derive(Debug)]
pub struct ItemCounter {
    format: Format,
    max: usize,
    count: usize,
    /// NDJSON: the current line has a non-blank byte.
    line_started: bool,
    /// JSON: nesting depth, string state, and the depth of the array being counted.
    depth: usize,
    in_string: bool,
    escaped: bool,
    root_is_object: bool,
    counted_depth: Option<usize>,
    expecting: bool,
}

impl ItemCounter {
    pub fn new(format: Format, max: usize) -> ItemCounter {
        ItemCounter {
            format,
            max,
            count: 0,
            line_started: false,
            depth: 0,
            in_string: false,
            escaped: false,
            root_is_object: false,
            counted_depth: None,
            expecting: false,
        }
    }

    /// Items seen so far (in the array being counted, for JSON).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Feed the next bytes; 413 as soon as an item over the limit starts.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        match self.format {
            Format::Ndjson => self.feed_ndjson(bytes),
            Format::Json => self.feed_json(bytes),
        }
    }

    fn one_more(&mut self) -> Result<(), ApiError> {
        self.count += 1;
        if self.count > self.max {
            return Err(ApiError::TooManyItems { max: self.max });
        }
        Ok(())
    }

    fn feed_ndjson(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        for &b in bytes {
            if b == b'\n' {
                self.line_started = false;
            } else if !self.line_started && !b.is_ascii_whitespace() {
                self.line_started = true;
                self.one_more()?;
            }
        }
        Ok(())
    }

    fn feed_json(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            if self.expecting && self.counted_depth == Some(self.depth) && b != b']' {
                self.expecting = false;
                self.one_more()?;
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    self.depth += 1;
                    let counted = if self.depth == 1 {
                        self.root_is_object = b == b'{';
                        b == b'['
                    } else {
                        self.depth == 2 && self.root_is_object && b == b'['
                    };
                    if counted {
                        self.counted_depth = Some(self.depth);
                        self.count = 0;
                        self.expecting = true;
                    }
                }
                b']' | b'}' => {
                    if self.counted_depth == Some(self.depth) {
                        self.counted_depth = None;
                        self.expecting = false;
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                b',' if self.counted_depth == Some(self.depth) => self.expecting = true,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Inflate gzip data, refusing output over `cap` bytes.
pub fn gunzip_capped(data: &[u8], cap: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(cap));
    let decoder = flate2::read::MultiGzDecoder::new(data);
    decoder
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request("invalid_gzip", format!("invalid gzip body: {e}")))?;
    if out.len() > cap {
        return Err(ApiError::PayloadTooLarge {
            limit: cap,
            what: "decompressed request body",
        });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    const LIMITS: Limits = Limits {
        wire: 1000,
        decompressed: 5000,
        read_timeout: Duration::from_secs(10),
    };

    #[test]
    fn content_types() {
        let h = headers("application/json; charset=utf-8");
        assert_eq!(content_format(&h, Accept::Json).unwrap(), Format::Json);
        let h = headers("application/x-ndjson");
        assert!(content_format(&h, Accept::Json).is_err());
        assert_eq!(
            content_format(&h, Accept::JsonOrNdjson).unwrap(),
            Format::Ndjson
        );
        assert!(content_format(&HeaderMap::new(), Accept::Json).is_err());
        assert!(content_format(&headers("text/plain"), Accept::JsonOrNdjson).is_err());
    }

    #[tokio::test]
    async fn plain_bodies_are_limited() {
        let h = headers("application/json");
        let ok = read_body(&h, Body::from("{}"), Accept::Json, LIMITS).await;
        assert_eq!(&ok.unwrap().1[..], b"{}");
        let big = vec![b' '; 1001];
        let err = read_body(&h, Body::from(big), Accept::Json, LIMITS).await;
        assert!(matches!(err, Err(ApiError::PayloadTooLarge { .. })));
    }

    #[tokio::test]
    async fn gzip_is_inflated_with_a_cap() {
        let mut h = headers("application/json");
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let ok = read_body(&h, Body::from(gzip(b"{\"a\":1}")), Accept::Json, LIMITS).await;
        assert_eq!(&ok.unwrap().1[..], b"{\"a\":1}");
        // 1 MB of zeros compresses to ~1 KB but must not inflate past the cap.
        let bomb = gzip(&vec![b'0'; 1_000_000]);
        let limits = Limits {
            wire: 100_000,
            decompressed: 5000,
            read_timeout: Duration::from_secs(10),
        };
        let err = read_body(&h, Body::from(bomb), Accept::Json, limits).await;
        assert!(matches!(err, Err(ApiError::PayloadTooLarge { .. })));
        let err = read_body(&h, Body::from("not gzip"), Accept::Json, LIMITS).await;
        assert!(matches!(err, Err(ApiError::BadRequest { .. })));
    }

    #[tokio::test]
    async fn other_encodings_are_refused() {
        let mut h = headers("application/json");
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        let err = read_body(&h, Body::from("{}"), Accept::Json, LIMITS).await;
        assert!(matches!(err, Err(ApiError::UnsupportedMediaType(_))));
    }

    fn count(format: Format, body: &[u8], max: usize) -> Result<usize, ApiError> {
        let mut c = ItemCounter::new(format, max);
        // Byte by byte: the state must carry across chunk boundaries.
        for b in body.chunks(1) {
            c.feed(b)?;
        }
        Ok(c.count())
    }

    #[test]
    fn items_are_counted_without_parsing() {
        assert_eq!(
            count(Format::Ndjson, b"{}\n\n  \r\n{\"a\":1}\n{}", 10).unwrap(),
            3
        );
        assert_eq!(
            count(
                Format::Json,
                b" [ {\"a\":[1,2,3]}, \"x,]\\\"\" , [1,2] ]",
                10
            )
            .unwrap(),
            3
        );
        assert_eq!(count(Format::Json, b"[]", 10).unwrap(), 0);
        assert_eq!(
            count(
                Format::Json,
                br#"{"events":[{"b":[1,2]},{}],"x":{"y":[1]}}"#,
                10
            )
            .unwrap(),
            2
        );
        assert!(matches!(
            count(Format::Json, b"[1,1,1]", 2),
            Err(ApiError::TooManyItems { max: 2 })
        ));
        assert!(matches!(
            count(Format::Ndjson, b"1\n1\n1\n", 2),
            Err(ApiError::TooManyItems { max: 2 })
        ));
        assert!(matches!(
            count(Format::Json, br#"{"items":[1,1,1]}"#, 2),
            Err(ApiError::TooManyItems { max: 2 })
        ));
    }

    #[tokio::test]
    async fn a_gzip_of_many_tiny_items_is_refused_while_inflating() {
        let mut h = headers("application/x-ndjson");
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let lines = gzip(&b"1\n".repeat(1_000_000));
        let limits = Limits {
            wire: 1_000_000,
            decompressed: 10_000_000,
            read_timeout: Duration::from_secs(10),
        };
        let err = read_batch_body(&h, Body::from(lines), Accept::JsonOrNdjson, limits, 1000).await;
        let err = err.unwrap_err();
        assert!(
            matches!(err, ApiError::TooManyItems { max: 1000 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the request has more than 1000 items; at most 1000 are accepted per request"
        );
        let ok = read_batch_body(
            &h,
            Body::from(gzip(b"1\n2\n")),
            Accept::JsonOrNdjson,
            limits,
            2,
        )
        .await;
        assert_eq!(&ok.unwrap().1[..], b"1\n2\n");
    }

    mod props {
        //! The counter against the parser: it never under-counts a body the splitter accepts
        //! (so the limit it enforces while inflating is the one the splitter would), in any
        //! chunking, and never panics on arbitrary bytes.
        use super::super::*;
        use crate::payload::import::{split_import, split_items};
        use proptest::prelude::*;
        use serde_json::Value;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "[ -~\\u{e9}\\u{1F600}\\\\\"\\[\\]{},\n]{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z\\[\\]{}\",]{0,6}", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn counted(
            format: Format,
            body: &[u8],
            chunk: usize,
            max: usize,
        ) -> Result<usize, ApiError> {
            let mut c = ItemCounter::new(format, max);
            for part in body.chunks(chunk.max(1)) {
                c.feed(part)?;
            }
            Ok(c.count())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arrays_wrapped_arrays_and_ndjson_are_counted_exactly(
                items in prop::collection::vec(json_value(), 0..20),
                chunk in 1usize..64,
                pretty in any::<bool>(),
            ) {
                let n = items.len();
                let array = Value::Array(items.clone());
                let text = if pretty {
                    serde_json::to_vec_pretty(&array).unwrap()
                } else {
                    serde_json::to_vec(&array).unwrap()
                };
                prop_assert_eq!(split_import(Format::Json, &text, usize::MAX, usize::MAX).unwrap().len(), n);
                prop_assert_eq!(counted(Format::Json, &text, chunk, usize::MAX).unwrap(), n);
                if n > 0 {
                    let over = counted(Format::Json, &text, chunk, n - 1);
                    let refused = matches!(over, Err(ApiError::TooManyItems { .. }));
                    prop_assert!(refused, "{:?}", over);
                }
                let wrapped = serde_json::to_vec(&serde_json::json!({"items": items})).unwrap();
                prop_assert_eq!(split_items(&wrapped, usize::MAX, usize::MAX).unwrap().len(), n);
                prop_assert_eq!(counted(Format::Json, &wrapped, chunk, usize::MAX).unwrap(), n);
                let ndjson: Vec<u8> = items
                    .iter()
                    .flat_map(|v| {
                        let mut line = serde_json::to_vec(v).unwrap();
                        line.push(b'\n');
                        line
                    })
                    .collect();
                let split = split_import(Format::Ndjson, &ndjson, usize::MAX, usize::MAX).unwrap().len();
                prop_assert_eq!(split, n);
                prop_assert_eq!(counted(Format::Ndjson, &ndjson, chunk, usize::MAX).unwrap(), n);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_never_undercount(
                body in prop::collection::vec(any::<u8>(), 0..256),
                chunk in 1usize..32,
                ndjson in any::<bool>(),
            ) {
                let format = if ndjson { Format::Ndjson } else { Format::Json };
                let count = counted(format, &body, chunk, usize::MAX).unwrap();
                if let Ok(items) = split_import(format, &body, usize::MAX, usize::MAX) {
                    prop_assert!(count >= items.len(), "counted {} < split {}", count, items.len());
                }
            }
        }
    }
}
