//! What to do with a record that does not continue its partition where the durable state ends.
//!
//! On Apache Kafka, offsets a consumer never sees are ordinary: every transaction commit or abort
//! leaves a control record, `read_committed` skips aborted transactions' records, and compaction
//! and retention remove offsets. A fetch is positioned at the expected offset (the consumer seeks
//! there on every assignment, and librdkafka discards what was fetched before a seek), so a
//! record beyond it means the offsets in between do not exist for consumers: it is applied at
//! once, the gap counted.
//!
//! The tansu test broker answers a fetch at an offset inside a record batch with the batch
//! *after* it; a consumer that resumed mid-batch would skip the rest of that batch. With
//! `LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS=true` (the test harnesses set it) a record beyond the
//! expected offset makes the consumer seek back to the expected offset instead, and only a gap
//! seen [`QUIRK_RETRIES`] times at the same place is accepted (records really deleted).

/// Seek-backs before a gap is accepted under the test-broker quirk.
pub const QUIRK_RETRIES: u32 = 20;

/// The decision for one record of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Apply it; it continues the partition (or nothing is expected yet).
    Apply,
    /// Apply it; `skipped` offsets before it do not exist for consumers.
    ApplyAfterGap { skipped: i64 },
    /// Drop it and the rest of its partition in this batch, and seek back to the expected
    /// offset (test-broker quirk only).
    SeekBack,
}

/// `expected`: the next offset the durable state ends at (`None`: nothing known, e.g. a
/// partition starting at its beginning); `tries`: how many times this same gap was met before.
pub fn decide(expected: Option<i64>, offset: i64, quirks: bool, tries: u32) -> Decision {
    match expected {
        Some(exp) if offset > exp => {
            if quirks && tries < QUIRK_RETRIES {
                Decision::SeekBack
            } else {
                Decision::ApplyAfterGap {
                    skipped: offset - exp,
                }
            }
        }
        _ => Decision::Apply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a partition's records through [`decide`] as the consumer does (one fetch, quirks
    /// off): what is applied, and how many offsets were skipped; panics on any seek.
    fn run(start: Option<i64>, offsets: &[i64]) -> (Vec<i64>, i64) {
        let mut next = start;
        let mut applied = Vec::new();
        let mut skipped = 0;
        for &o in offsets {
            match decide(next, o, false, 0) {
                Decision::Apply => {}
                Decision::ApplyAfterGap { skipped: s } => skipped += s,
                Decision::SeekBack => panic!("no seek without the quirk switch (offset {o})"),
            }
            applied.push(o);
            next = Some(o + 1);
        }
        (applied, skipped)
    }

    #[test]
    fn a_control_record_gap_is_applied_past_at_once() {
        // Transaction of offsets 0..=2, its commit marker at 3.
        assert_eq!(run(Some(0), &[0, 1, 2, 4, 5]), (vec![0, 1, 2, 4, 5], 1));
    }

    #[test]
    fn consecutive_control_records() {
        // One-record transactions: a marker after every record.
        assert_eq!(run(Some(10), &[10, 12, 14, 16]), (vec![10, 12, 14, 16], 3));
    }

    #[test]
    fn a_gap_at_the_start_of_an_assignment() {
        // Resumed at 100 (applied 99), but 100 is a commit marker.
        assert_eq!(run(Some(100), &[101, 102]), (vec![101, 102], 1));
        // Nothing applied yet: the partition starts wherever its first record is.
        assert_eq!(run(None, &[7, 8]), (vec![7, 8], 0));
    }

    #[test]
    fn an_aborted_transactions_range() {
        // 3..=6 aborted (skipped under read_committed) plus its abort marker at 7.
        assert_eq!(run(Some(0), &[0, 1, 2, 8]), (vec![0, 1, 2, 8], 5));
    }

    #[test]
    fn a_compaction_or_retention_hole() {
        assert_eq!(run(Some(0), &[0, 500, 501]), (vec![0, 500, 501], 499));
    }

    #[test]
    fn the_test_broker_quirk_seeks_back_until_the_gap_proves_real() {
        assert_eq!(decide(Some(5), 8, true, 0), Decision::SeekBack);
        assert_eq!(
            decide(Some(5), 8, true, QUIRK_RETRIES - 1),
            Decision::SeekBack
        );
        assert_eq!(
            decide(Some(5), 8, true, QUIRK_RETRIES),
            Decision::ApplyAfterGap { skipped: 3 }
        );
        // In order, or nothing expected: applied, switch or not.
        assert_eq!(decide(Some(5), 5, true, 0), Decision::Apply);
        assert_eq!(decide(None, 9, true, 0), Decision::Apply);
        // Without the switch the same record is applied at once.
        assert_eq!(
            decide(Some(5), 8, false, 0),
            Decision::ApplyAfterGap { skipped: 3 }
        );
    }

    #[test]
    fn records_at_or_below_the_expected_offset_are_left_to_the_engine() {
        // Replays are skipped by the applied offset in the engine, not here.
        assert_eq!(decide(Some(5), 3, false, 0), Decision::Apply);
    }
}
