//! One delivery's state machine: `Pending → Succeeded | Failed { retry_at } | Dead`.
//!
//! A *delivery* is one fired record to one endpoint (a webhook URL, one email address, a Slack or
//! Teams incoming webhook). Each attempt ends in an [`Outcome`]; [`transition`] turns the outcome
//! and the retry schedule into the next [`State`]:
//!
//! | outcome                                   | next state                                  |
//! |-------------------------------------------|---------------------------------------------|
//! | 2xx / SMTP accepted                       | `Succeeded`                                 |
//! | timeout, connection error, 429, 5xx, SMTP transient | `Failed { retry_at }`, or `Dead` after the last attempt |
//! | other 4xx, 3xx (redirects are not followed), refused address, SMTP permanent | `Dead` at once |
//! | 410 Gone                                  | `Dead`, and the endpoint is disabled for the trigger |
//!
//! `Failed` is a waiting state: the worker picks the delivery up again at `retry_at` and it goes
//! back through an attempt. `Succeeded` and `Dead` are final; `Dead` deliveries go to the DLQ.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx, or the SMTP server accepted the message.
    Delivered { status: Option<u16> },
    /// Worth trying again: timeouts, connection errors, 429, 5xx, transient SMTP errors.
    Retryable {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help: other 4xx, redirects, refused addresses, bad addresses.
    Permanent { status: Option<u16>, error: String },
    /// 410 Gone: the receiver asks us to stop; the endpoint is disabled for this trigger.
    Gone,
}

impl Outcome {
    /// Classify an HTTP response status (`retry_after` from the response, if any).
    pub fn from_http(status: u16, retry_after: Option<Duration>) -> Outcome {
        match status {
            200..=299 => Outcome::Delivered {
                status: Some(status),
            },
            410 => Outcome::Gone,
            429 | 500..=599 => Outcome::Retryable {
                status: Some(status),
                error: format!("HTTP {status}"),
                retry_after,
            },
            300..=399 => Outcome::Permanent {
                status: Some(status),
                error: format!("HTTP {status}: redirects are not followed"),
            },
            _ => Outcome::Permanent {
                status: Some(status),
                error: format!("HTTP {status}"),
            },
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status }
            | Outcome::Retryable { status, .. }
            | Outcome::Permanent { status, .. } => *status,
            Outcome::Gone => Some(410),
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Delivered { .. } => None,
            Outcome::Retryable { error, .. } | Outcome::Permanent { error, .. } => Some(error),
            Outcome::Gone => Some("HTTP 410 Gone: endpoint disabled for this trigger"),
        }
    }
}

/// Why a delivery was given up. Travels to the DLQ and the delivery log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Every attempt of the schedule failed.
    Exhausted,
    /// The receiver rejected it (4xx other than 429/410, 3xx, SMTP permanent error).
    Rejected,
    /// 410 Gone; the endpoint is now disabled for the trigger.
    Gone,
    /// The endpoint had been disabled (an earlier 410) before this delivery.
    Disabled,
    /// The URL is not allowed (scheme, private address) or not valid.
    Refused,
}

impl DeadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Exhausted => "exhausted",
            DeadReason::Rejected => "rejected",
            DeadReason::Gone => "gone",
            DeadReason::Disabled => "disabled",
            DeadReason::Refused => "refused",
        }
    }
}

/// A delivery's durable state (kept in Redis beside the delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Recorded, first attempt not yet made.
    Pending,
    Succeeded {
        at_ms: i64,
    },
    /// The last attempt failed; the next one is due at `retry_at_ms`.
    Failed {
        retry_at_ms: i64,
    },
    Dead {
        reason: DeadReason,
    },
}

impl State {
    pub fn is_final(&self) -> bool {
        matches!(self, State::Succeeded { .. } | State::Dead { .. })
    }
}

/// The state after attempt number `attempt` (1-based) ended in `outcome`. A `Permanent` error
/// caused by the URL policy is passed as `refused = true` so the DLQ says why.
pub fn transition(
    attempt: u32,
    outcome: &Outcome,
    refused: bool,
    schedule: &Schedule,
    now_ms: i64,
) -> State {
    match outcome {
        Outcome::Delivered { .. } => State::Succeeded { at_ms: now_ms },
        Outcome::Gone => State::Dead {
            reason: DeadReason::Gone,
        },
        Outcome::Permanent { .. } => State::Dead {
            reason: if refused {
                DeadReason::Refused
            } else {
                DeadReason::Rejected
            },
        },
        Outcome::Retryable { retry_after, .. } => {
            match schedule.next_delay(attempt, *retry_after) {
                Some(d) => State::Failed {
                    retry_at_ms: now_ms
                        .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                },
                None => State::Dead {
                    reason: DeadReason::Exhausted,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> Schedule {
        Schedule::parse("1s,2s").unwrap()
    }

    #[test]
    fn http_statuses_are_classified_as_the_issue_says() {
        assert!(matches!(
            Outcome::from_http(204, None),
            Outcome::Delivered { .. }
        ));
        assert!(matches!(
            Outcome::from_http(429, None),
            Outcome::Retryable { .. }
        ));
        assert!(matches!(
            Outcome::from_http(503, None),
            Outcome::Retryable { .. }
        ));
        assert!(matches!(
            Outcome::from_http(400, None),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            Outcome::from_http(404, None),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            Outcome::from_http(302, None),
            Outcome::Permanent { .. }
        ));
        assert_eq!(Outcome::from_http(410, None), Outcome::Gone);
    }

    #[test]
    fn retries_follow_the_schedule_then_die() {
        let fail = Outcome::from_http(500, None);
        let s1 = transition(1, &fail, false, &sched(), 10_000);
        let State::Failed { retry_at_ms } = s1 else {
            panic!("{s1:?}")
        };
        assert!((10_800..=11_200).contains(&retry_at_ms));
        let s2 = transition(2, &fail, false, &sched(), 10_000);
        assert!(matches!(s2, State::Failed { .. }));
        let s3 = transition(3, &fail, false, &sched(), 10_000);
        assert_eq!(
            s3,
            State::Dead {
                reason: DeadReason::Exhausted
            }
        );
    }

    #[test]
    fn final_outcomes() {
        let ok = transition(1, &Outcome::from_http(200, None), false, &sched(), 5);
        assert_eq!(ok, State::Succeeded { at_ms: 5 });
        assert!(ok.is_final());
        let gone = transition(1, &Outcome::Gone, false, &sched(), 5);
        assert_eq!(
            gone,
            State::Dead {
                reason: DeadReason::Gone
            }
        );
        let bad = transition(1, &Outcome::from_http(422, None), false, &sched(), 5);
        assert_eq!(
            bad,
            State::Dead {
                reason: DeadReason::Rejected
            }
        );
        let refused = Outcome::Permanent {
            status: None,
            error: "private".into(),
        };
        assert_eq!(
            transition(1, &refused, true, &sched(), 5),
            State::Dead {
                reason: DeadReason::Refused
            }
        );
        assert!(!State::Pending.is_final());
    }

    #[test]
    fn retry_after_pushes_the_next_attempt_out() {
        let o = Outcome::from_http(429, Some(Duration::from_secs(30)));
        let State::Failed { retry_at_ms } = transition(1, &o, false, &sched(), 0) else {
            panic!()
        };
        assert_eq!(retry_at_ms, 30_000);
    }
}
