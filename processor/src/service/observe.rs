//! What the processor reports: the trace context of firings and the processing latency (the
//! metrics themselves are defined in [`crate::metrics`]).
//!
//! A polled batch is one `process_batch` span: the first traced record's context is its parent,
//! the others are links ([`trace::link_batch`]). Each firing gets a `fire` span, a child of the
//! context of the event that fired it, and the fired record carries that span's context, so the
//! notifier's delivery joins the trace of the HTTP request that sent the event. When traces are
//! not exported the fired record carries the event's own `traceparent` bytes. Nothing here costs
//! a Redis round trip; contexts are only looked up when a batch fired something.

use std::collections::HashMap;

use leadstream_domain::fired::TriggerFired;
use leadstream_shared::metric;
use leadstream_shared::trace::{self, TraceContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tracing::Span;

use crate::engine::Input;
use crate::metrics::ProcessorHistogram;

/// The batch span (a disabled span when traces are not exported).
pub fn batch_span(batch: &[BorrowedMessage<'_>]) -> Span {
    if !trace::enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "process_batch",
        records = batch.len(),
        trace_id = tracing::field::Empty
    );
    trace::link_records(&span, batch);
    span
}

/// The context of the record at (partition, offset) in the batch.
pub fn record_context(
    batch: &[BorrowedMessage<'_>],
    partition: i32,
    offset: i64,
) -> Option<TraceContext> {
    batch
        .iter()
        .find(|m| m.partition() == partition && m.offset() == offset)
        .and_then(|m| TraceContext::from_headers(m.headers()))
}

/// For each firing, the context its record carries, and the `fire` spans to keep open until
/// the records are acknowledged.
pub fn fired_contexts(
    batch: &[BorrowedMessage<'_>],
    inputs: &[Input],
    fired: &[(i32, TriggerFired)],
) -> (Vec<Option<TraceContext>>, Vec<Span>) {
    let by_event: HashMap<&str, (i32, i64)> = inputs
        .iter()
        .map(|i| (i.event.event_id.as_str(), (i.partition, i.offset)))
        .collect();
    let records: HashMap<(i32, i64), &BorrowedMessage<'_>> = batch
        .iter()
        .map(|m| ((m.partition(), m.offset()), m))
        .collect();
    let mut spans = Vec::new();
    let contexts = fired
        .iter()
        .map(|(_, f)| {
            let source = by_event
                .get(f.event_id.as_str())
                .and_then(|at| records.get(at))
                .and_then(|m| TraceContext::from_headers(m.headers()));
            if !trace::enabled() {
                return source;
            }
            let span = tracing::info_span!(
                "fire",
                kind = f.kind.as_str(),
                ou = %f.ou_id,
                trigger = %f.trigger_id,
                fired_id = %f.fired_id,
                trace_id = tracing::field::Empty,
            );
            match &source {
                Some(parent) => parent.set_parent_of(&span),
                None => trace::record_trace_id(&span),
            }
            let own = TraceContext::of(&span).or(source);
            spans.push(span);
            own
        })
        .collect();
    (contexts, spans)
}

/// Processing latency of the applied inputs, with one histogram handle for the batch.
pub fn record_latency(inputs: &[Input], now_ms: i64) {
    let h = metric::histogram!(ProcessorHistogram::ProcessingLatency);
    for i in inputs {
        if i.event.received_at_ms > 0 {
            h.record((now_ms - i.event.received_at_ms).max(0) as f64 / 1000.0);
        }
    }
}
