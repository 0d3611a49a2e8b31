//! Property test: the matcher fires exactly what the brute-force oracle fires — same sequences,
//! same event ids in the same step order, in the same order — over random streams with few
//! types, repeated types, equal and out-of-order event times, duplicates, ordered/unordered,
//! windows and gap bounds. The buffer goes through JSON between events, as it does in Redis.

use proptest::prelude::*;

use super::oracle::Oracle;
use super::tests::{ev, seq};
use super::{ActiveSequences, SeqEvent, SequenceBuffer};

const TYPES: [&str; 4] = ["a", "b", "c", "z"];

#[derive(Debug, Clone)]
struct SeqSpec {
    types: Vec<usize>,
    window: u64,
    ordered: bool,
    gap: Option<u64>,
    active: bool,
}

fn seq_spec() -> impl Strategy<Value = SeqSpec> {
    (
        prop::collection::vec(0usize..3, 1..=4),
        1u64..=30,
        any::<bool>(),
        prop::option::of(1u64..=30),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(types, window, ordered, gap, active)| SeqSpec {
            types,
            window,
            ordered,
            gap: gap.map(|g| g.min(window)),
            active,
        })
}

/// (type, time in seconds, re-send an earlier event instead, which one).
fn stream() -> impl Strategy<Value = Vec<(usize, i64, bool, usize)>> {
    prop::collection::vec(
        (
            0usize..4,
            0i64..60,
            prop::bool::weighted(0.1),
            any::<usize>(),
        ),
        0..16,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn matcher_agrees_with_oracle(
        specs in prop::collection::vec(seq_spec(), 1..=3),
        ops in stream(),
    ) {
        let seqs: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let types: Vec<&str> = s.types.iter().map(|&t| TYPES[t]).collect();
                let mut q = seq(&format!("seq_{i}"), &types, s.window, s.ordered);
                q.max_gap_seconds = s.gap;
                q.active = s.active;
                q
            })
            .collect();
        let active = ActiveSequences::new(&seqs);
        let mut oracle = Oracle::new(&seqs);
        let mut json = serde_json::to_string(&SequenceBuffer::default()).unwrap();
        let mut sent: Vec<SeqEvent> = vec![];
        for (n, &(ty, t, dup, pick)) in ops.iter().enumerate() {
            let e = if dup && !sent.is_empty() {
                sent[pick % sent.len()].clone()
            } else {
                ev(&format!("e{n}"), TYPES[ty], t)
            };
            sent.push(e.clone());
            let mut buf: SequenceBuffer = serde_json::from_str(&json).unwrap();
            let got: Vec<(String, Vec<String>)> = buf
                .observe("ld_1", &active, &e, 1000)
                .into_iter()
                .map(|m| (m.sequence_id, m.events.into_iter().map(|e| e.id).collect()))
                .collect();
            json = serde_json::to_string(&buf).unwrap();
            let want = oracle.observe(&e);
            prop_assert_eq!(got, want, "at event {} {:?}", n, e);
        }
    }
}
