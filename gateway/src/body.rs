//! Reading request bodies under the configured limits.
//!
//! Every ingest and management route reads its body through [`read_body`], which (in order)
//! checks the `Content-Type` (415), refuses a declared `Content-Length` over the wire limit
//! before reading a byte (413), reads at most that many bytes (413), and — for
//! `Content-Encoding: gzip` — inflates into a buffer capped at the decompressed limit, so a
//! compression bomb costs at most `cap + 1` bytes of memory (413). Errors are the gateway's JSON
//! errors, which is why this is done here rather than by tower-http's plain-text layers.

use std::io::Read;

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
}

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
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding {other:?} is not supported (use gzip or none)"
            )))
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    let wire_limit = if gzip {
        limits.wire
    } else {
        limits.wire.min(limits.decompressed)
    };
    if declared.is_some_and(|n| n > wire_limit as u64) {
        return Err(ApiError::PayloadTooLarge {
            limit: wire_limit,
            what: "request body",
        });
    }
    let bytes = match Limited::new(body, wire_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge {
                limit: wire_limit,
                what: "request body",
            })
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("could not read the request body: {e}"),
            ))
        }
    };
    if !gzip {
        return Ok((format, bytes));
    }
    Ok((format, gunzip_capped(&bytes, limits.decompressed)?))
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
}
