//! The independent expectation of what leadstream must end up with for one lead, computed from
//! the test's own copy of a simple workload (fixed points per event type, no decay, one
//! milestone trigger on any type, one ordered two-step sequence whose window holds every event
//! of the lead). Written from the documented semantics, never from the processor's code, and
//! shared by the processor's crash tests and the end-to-end suite.

/// A workload's rules.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// Points per event type; other types score nothing.
    pub rules: &'a [(&'a str, i64)],
    /// The milestone trigger's threshold.
    pub threshold: i64,
    /// The ordered sequence `first → second` (events used up by a completion).
    pub sequence: [&'a str; 2],
}

/// What the system must end up with for one lead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub events: u64,
    pub score: i64,
    /// Milestone crossings: armed while below the threshold, fire on reaching it.
    pub crossings: usize,
    /// Sequence completions: each `second` after an unused `first` completes one.
    pub sequences: usize,
}

impl Workload<'_> {
    /// The expectation for one lead's deduplicated event types, in stream order.
    pub fn expected(&self, types: &[&str]) -> Expected {
        let points = |t: &str| {
            self.rules
                .iter()
                .find(|(r, _)| *r == t)
                .map_or(0, |(_, p)| *p)
        };
        let mut e = Expected::default();
        let mut armed = true;
        let mut pending_first = 0usize;
        for t in types {
            e.events += 1;
            e.score += points(t);
            if e.score < self.threshold {
                armed = true;
            } else if armed {
                e.crossings += 1;
                armed = false;
            }
            if *t == self.sequence[0] {
                pending_first += 1;
            } else if *t == self.sequence[1] && pending_first > 0 {
                pending_first -= 1;
                e.sequences += 1;
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_rearm_below_and_sequences_use_events_up() {
        let w = Workload {
            rules: &[("a", 30), ("b", -40), ("c", 1)],
            threshold: 50,
            sequence: ["a", "c"],
        };
        // 30, 60 (cross), 20, 50 (cross), 51, 11, 41, 42
        let e = w.expected(&["a", "a", "b", "a", "c", "b", "a", "c"]);
        assert_eq!(
            e,
            Expected {
                events: 8,
                score: 42,
                crossings: 2,
                sequences: 2
            }
        );
    }
}
