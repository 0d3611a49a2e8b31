//! Per-API-key rate limiting (governor's GCRA, keyed by key id): `LEADSTREAM_RATE_LIMIT_PER_SEC`
//! requests per second with a burst of `LEADSTREAM_RATE_LIMIT_BURST`. Over the limit → 429 with
//! `Retry-After` (whole seconds until a request would be allowed, at least 1). A batch or import
//! request counts as one request: its size is bounded by the body limits instead.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use leadstream_shared::metric;

use crate::error::ApiError;
use crate::metrics::GatewayCounter;

pub struct KeyLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl KeyLimiter {
    /// `per_sec == 0` turns limiting off.
    pub fn new(per_sec: u32, burst: u32) -> KeyLimiter {
        let limiter = NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        KeyLimiter {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Count one request of `key_id`, or say when to come back.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(&key_id.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                metric::counter!(GatewayCounter::RateLimited).increment(1);
                let wait = not_until.wait_time_from(self.clock.now());
                Err(ApiError::RateLimited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            }
        }
    }
}

/// Events per second per OU and per API key (`LEADSTREAM_OU_EVENT_RATE`,
/// `LEADSTREAM_KEY_EVENT_RATE`, bursts `…_BURST`): a request is charged the number of events it
/// carries, so a 50,000-event import costs 50,000, not one. Over either limit → 429 with
/// `Retry-After`, nothing published; a request larger than the burst can never pass and says so.
pub struct EventLimiter {
    ous: Option<DefaultKeyedRateLimiter<String>>,
    keys: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl EventLimiter {
    /// Rates of 0 turn the respective limit off.
    pub fn new(ou: (u32, u32), key: (u32, u32)) -> EventLimiter {
        let build = |(rate, burst): (u32, u32)| {
            NonZeroU32::new(rate).map(|r| {
                let burst = NonZeroU32::new(burst).unwrap_or(r);
                RateLimiter::keyed(Quota::per_second(r).allow_burst(burst))
            })
        };
        EventLimiter {
            ous: build(ou),
            keys: build(key),
            clock: DefaultClock::default(),
        }
    }

    /// Charge `n` events to the OU and to the key.
    pub fn charge(&self, ou_id: &str, key_id: &str, n: usize) -> Result<(), ApiError> {
        let Some(n) = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        for (limiter, id, whom) in [
            (&self.ous, ou_id, "this OU"),
            (&self.keys, key_id, "this API key"),
        ] {
            let Some(limiter) = limiter else { continue };
            match limiter.check_key_n(&id.to_string(), n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    metric::counter!(GatewayCounter::EventsRateLimited)
                        .increment(u64::from(n.get()));
                    let wait = not_until.wait_time_from(self.clock.now());
                    return Err(ApiError::EventRateLimited {
                        whom,
                        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                    });
                }
                Err(_) => {
                    return Err(ApiError::Validation(format!(
                        "{n} events are more than {whom} may send at once; split the request"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Per-client-address limit of requests whose credential needs a Redis lookup (unknown to this
/// gateway's caches): `LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC` with burst
/// `LEADSTREAM_UNAUTH_RATE_LIMIT_BURST`; over it → 429 before any lookup.
pub struct AddressLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl AddressLimiter {
    /// `per_sec == 0` turns limiting off.
    pub fn new(per_sec: u32, burst: u32) -> AddressLimiter {
        let limiter = NonZeroU32::new(per_sec).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        AddressLimiter {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Count one unverified request from `addr`, or say when to come back.
    pub fn check(&self, addr: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&addr).map_err(|not_until| {
            metric::counter!(GatewayCounter::RateLimitedAddress).increment(1);
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::AddressRateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_429_per_key() {
        let l = KeyLimiter::new(1, 2);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        match l.check("a") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(l.check("b").is_ok(), "keys are limited separately");
        let off = KeyLimiter::new(0, 0);
        for _ in 0..100 {
            assert!(off.check("a").is_ok());
        }
    }
}
