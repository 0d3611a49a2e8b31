//! leadstream-domain: the pure domain of leadstream — what an event, a ruleset, a trigger, a
//! lead's state and a firing are, and the rules that connect them. No Kafka, no Redis, no clock:
//! callers pass `now` in, so the same inputs always give the same outputs (and the same fired
//! ids), which is what makes replaying a batch after a crash harmless.
//!
//! - [`event`]: the engagement event every ingest route produces, and its aliases;
//! - [`model`]: rulesets, milestone triggers and sequence triggers as users manage them, with
//!   their request bodies and field-level validation ([`model::ValidationError`]);
//! - [`scoring`]: points, decay, frequency limits, caps and milestone crossings over one lead's
//!   [`scoring::LeadScore`], plus the milestone simulation;
//! - [`sequence`]: windowed sequence matching over one lead's [`sequence::SequenceBuffer`], plus
//!   the sequence simulation;
//! - [`lead`]: what is kept per lead ([`lead::LeadRecord`] and its stored encoding);
//! - [`rules`]: what one event does to a lead ([`rules::OuRules::apply`]: count, score,
//!   milestones, sequences → firings);
//! - [`fired`]: the fired record the processor produces and the notifier delivers, and
//!   [`firing`]: where fired records and their history entries are built;
//! - [`ids`]: deterministic ids and RFC 3339 text.
//!
//! The services use it: the gateway validates and simulates with it, the processor applies
//! events with it, the notifier reads fired records. Reading and writing state (Redis, Kafka)
//! stays in `leadstream-shared` and the services.

pub mod event;
pub mod fired;
pub mod firing;
pub mod ids;
pub mod lead;
pub mod model;
pub mod rules;
pub mod scoring;
pub mod sequence;

/// The Kafka key of every record about a lead: `"{ou}:{lead}"`.
pub fn kafka_key(ou: ids::OuId<'_>, lead: ids::LeadId<'_>) -> String {
    format!("{ou}:{lead}")
}
