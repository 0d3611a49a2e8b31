//! One batch of one partition as plain data: what to read ([`ReadPlan`]), what the read found
//! ([`Read`]), what computing decided ([`Batch`], by [`compute`], no store) and what to write
//! ([`WritePlan`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use leadstream_domain::ids::LeadId;
use leadstream_domain::lead::LeadRecord;
use leadstream_shared::keys::PartitionKeys;
use leadstream_shared::store::{Cmd, Guard};

use super::{Applied, Input, OuConfig};

/// What one attempt reads, decided before the read (see [`super::Engine::read_plan`]).
pub(super) struct ReadPlan<'a> {
    /// The partition is not in memory: read its applied offset too.
    pub(super) cold: bool,
    /// The batch's OUs, sorted: their config versions.
    pub(super) ous: Vec<&'a str>,
    /// Lead states not in memory, by [`PartitionKeys::lead_field`].
    pub(super) fields: Vec<String>,
    /// Each input's dedupe digest, in input order.
    pub(super) digests: Vec<Vec<u8>>,
    /// The current dedupe time bucket; it and the [`super::DEDUPE_BUCKETS`] before it are read.
    pub(super) bucket: i64,
}

/// What the read found besides the applied offset and the lead states (which go into the
/// [`super::Partition`]).
pub(super) struct Read {
    /// Per input: its dedupe digest was in the store.
    pub(super) seen_before: Vec<bool>,
    pub(super) configs: HashMap<String, Arc<OuConfig>>,
}

/// What computing a batch decided.
pub(super) struct Batch {
    pub(super) out: Applied,
    /// The new applied offset (the start when the batch held only replays).
    pub(super) next: i64,
    /// Leads whose state changed, by [`PartitionKeys::lead_field`].
    pub(super) touched: HashSet<String>,
    /// Dedupe digests of the events applied.
    pub(super) new_marks: Vec<Vec<u8>>,
}

/// The guarded write of a batch.
pub(super) struct WritePlan {
    pub(super) guard: Guard,
    pub(super) cmds: Vec<Cmd>,
    /// The applied offset written, as stored (the next write's guard).
    pub(super) applied_raw: Vec<u8>,
}

/// Compute a batch in memory, in offset order (no store; `now` stamps the firings): records at
/// or below `start`, the applied offset, are replays and skipped; duplicates (digest seen in
/// the store or earlier in the batch) change nothing; every other event of an OU with a
/// configuration goes through the domain's [`leadstream_domain::rules::OuRules::apply`] on its lead's state in `leads`.
pub(super) fn compute(
    inputs: &[Input],
    digests: &[Vec<u8>],
    read: Read,
    leads: &mut HashMap<String, LeadRecord>,
    start: i64,
    sequence_cap: usize,
    now: i64,
) -> Batch {
    let mut out = Applied::default();
    let mut next = start;
    let mut seen_now: HashSet<&[u8]> = HashSet::new();
    let mut touched: HashSet<String> = HashSet::new();
    let mut new_marks: Vec<Vec<u8>> = Vec::new();
    for ((input, seen), mark) in inputs.iter().zip(read.seen_before).zip(digests) {
        if input.offset <= start {
            out.replayed += 1;
            continue;
        }
        next = next.max(input.offset);
        let e = &input.event;
        let Some(lead) = e.lead_id.as_deref() else {
            continue;
        };
        if seen || !seen_now.insert(mark.as_slice()) {
            out.duplicates += 1;
            continue;
        }
        new_marks.push(mark.clone());
        let Some(cfg) = read.configs.get(e.ou_id.as_str()) else {
            continue;
        };
        let field = PartitionKeys::lead_field(e.ou(), LeadId(lead));
        let rec = leads.entry(field.clone()).or_default();
        touched.insert(field);
        let fired = cfg.rules.apply(rec, e, sequence_cap, now);
        out.fired
            .extend(fired.into_iter().map(|f| (input.partition, f)));
        out.applied += 1;
    }
    Batch {
        out,
        next,
        touched,
        new_marks,
    }
}
