//! Trace context across services: one trace from the HTTP request to the delivery.
//!
//! The W3C trace context (`traceparent`, and `tracestate` when present) travels as Kafka record
//! headers: the gateway stamps the events it produces with its HTTP request span's context, the
//! processor makes its processing span a child of each record's context and stamps every fired
//! record with the context of the event that fired it, and the notifier keeps the fired record's
//! context in the delivery job it stores, so a retry hours later still joins the trace.
//!
//! When no OpenTelemetry layer is installed ([`enabled`] is false, the default without
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) nothing here parses or builds contexts: headers are copied as
//! bytes, so a trace still continues through a service that does not export.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::Headers;
use serde::{Deserialize, Serialize};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header names (Kafka record headers and HTTP headers alike).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Most links a batch span carries (one per further traced record in the batch).
const MAX_LINKS: usize = 64;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OpenTelemetry layer is installed in this process).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// A W3C trace context as carried in headers and stored with notifier jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context a record carries, if its `traceparent` header is well-formed.
    pub fn from_headers<H: Headers>(headers: Option<&H>) -> Option<TraceContext> {
        let headers = headers?;
        let mut traceparent = None;
        let mut tracestate = None;
        for h in headers.iter() {
            let Some(v) = h.value else { continue };
            if h.key.eq_ignore_ascii_case(TRACEPARENT) {
                traceparent = std::str::from_utf8(v).ok();
            } else if h.key.eq_ignore_ascii_case(TRACESTATE) {
                tracestate = std::str::from_utf8(v).ok();
            }
        }
        TraceContext::parse(traceparent?, tracestate)
    }

    /// From header values: `None` unless `traceparent` is well-formed (version 00 layout).
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        valid_traceparent(traceparent).then(|| TraceContext {
            traceparent: traceparent.to_ascii_lowercase(),
            tracestate: tracestate.filter(|s| !s.is_empty()).map(str::to_string),
        })
    }

    /// The context of `span` when spans are exported and it is being recorded.
    pub fn of(span: &Span) -> Option<TraceContext> {
        if !enabled() {
            return None;
        }
        let cx = span.context();
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut out = Carrier::default();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        TraceContext::parse(out.traceparent.as_deref()?, out.tracestate.as_deref())
    }

    /// The context of the current span (see [`TraceContext::of`]).
    pub fn current() -> Option<TraceContext> {
        TraceContext::of(&Span::current())
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// Kafka headers carrying this context.
    pub fn headers(&self) -> Vec<(&'static str, &[u8])> {
        let mut h = vec![(TRACEPARENT, self.traceparent.as_bytes())];
        if let Some(s) = &self.tracestate {
            h.push((TRACESTATE, s.as_bytes()));
        }
        h
    }

    /// The remote span this context names (for parents and links).
    pub fn span_context(&self) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(self);
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    /// Make this context the parent of `span` (which must not have been entered yet). Does
    /// nothing when spans are not exported.
    pub fn set_parent_of(&self, span: &Span) {
        if !enabled() {
            return;
        }
        if let Some(sc) = self.span_context() {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
            record_trace_id(span);
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(&self.traceparent),
            TRACESTATE => self.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[derive(Default)]
struct Carrier {
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = Some(value),
            TRACESTATE => self.tracestate = Some(value),
            _ => {}
        }
    }
}

/// A batch span's relation to the records it handles: the first traced record's context is its
/// parent, the others' are links (at most 64). Does nothing when spans are not exported.
pub fn link_batch<'a>(span: &Span, contexts: impl IntoIterator<Item = &'a TraceContext>) {
    if !enabled() {
        return;
    }
    let mut contexts = contexts.into_iter();
    if let Some(first) = contexts.next() {
        first.set_parent_of(span);
    }
    for c in contexts.take(MAX_LINKS) {
        if let Some(sc) = c.span_context() {
            span.add_link(sc);
        }
    }
    record_trace_id(span);
}

/// [`link_batch`] with the contexts the records' headers carry (the records of one poll).
pub fn link_records<M: rdkafka::Message>(span: &Span, records: &[M]) {
    if !enabled() {
        return;
    }
    let contexts: Vec<TraceContext> = records
        .iter()
        .filter_map(|m| TraceContext::from_headers(m.headers()))
        .collect();
    link_batch(span, &contexts);
}

/// Fill the span's `trace_id` field (declared `tracing::field::Empty`), so JSON log lines
/// inside it carry the trace id.
pub fn record_trace_id(span: &Span) {
    if !enabled() {
        return;
    }
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// `00-{32 hex}-{16 hex}-{2 hex}`, ids not all zero.
pub fn valid_traceparent(tp: &str) -> bool {
    let b = tp.as_bytes();
    let hex = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_hexdigit);
    let zero = |r: std::ops::Range<usize>| b[r].iter().all(|c| *c == b'0');
    b.len() == 55
        && b[2] == b'-'
        && b[35] == b'-'
        && b[52] == b'-'
        && hex(0..2)
        && &b[0..2] != b"ff"
        && hex(3..35)
        && hex(36..52)
        && hex(53..55)
        && !zero(3..35)
        && !zero(36..52)
}

/// A new sampled root context (when the gateway exports nothing but must still stamp records).
pub fn new_traceparent() -> String {
    let trace: u128 = rand::random::<u128>().max(1);
    let span: u64 = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders};

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_validation() {
        assert!(valid_traceparent(TP));
        assert!(valid_traceparent(&new_traceparent()));
        assert!(!valid_traceparent("garbage"));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"
        ));
    }

    #[test]
    fn context_round_trips_through_kafka_headers() {
        let h = OwnedHeaders::new()
            .insert(Header {
                key: "content-type",
                value: Some("x"),
            })
            .insert(Header {
                key: TRACEPARENT,
                value: Some(TP),
            })
            .insert(Header {
                key: TRACESTATE,
                value: Some("k=v"),
            });
        let c = TraceContext::from_headers(Some(&h)).expect("context");
        assert_eq!(c.traceparent, TP);
        assert_eq!(c.tracestate.as_deref(), Some("k=v"));
        assert_eq!(c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let sc = c.span_context().expect("valid");
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(c.headers().len(), 2);
        let none: Option<&OwnedHeaders> = None;
        assert!(TraceContext::from_headers(none).is_none());
        // Old jobs (no field) and new ones decode.
        let j: TraceContext =
            serde_json::from_str(&format!(r#"{{"traceparent":"{TP}"}}"#)).unwrap();
        assert_eq!(j.tracestate, None);
    }
}
