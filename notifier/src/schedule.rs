//! The retry schedule: when attempt n+1 happens after attempt n failed.
//!
//! `LEADSTREAM_WEBHOOK_RETRY_SCHEDULE` lists the delays before each *retry*, comma-separated,
//! e.g. `5s,5m,30m,2h`; the first attempt is always immediate (a leading `0`/`immediately` is
//! accepted and ignored). The default is the common one: immediately, then 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 10 h — eight attempts over about 28 hours. The schedule applies to every
//! channel (webhooks, email, Slack, Teams).
//!
//! Each delay gets ±20 % jitter so that many deliveries that failed together (an endpoint
//! outage) do not retry in lock-step. A `Retry-After` from the receiver (429 / 503) is honoured:
//! the next attempt is never earlier than it asks (capped at a day), and never earlier than the
//! schedule says.

use std::time::Duration;

use rand::Rng;

/// The longest `Retry-After` honoured; a receiver asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Jitter as a fraction of the delay (±).
const JITTER: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Delay before retry 1, 2, …; `delays.len() + 1` attempts in all.
    delays: Vec<Duration>,
}

impl Default for Schedule {
    fn default() -> Schedule {
        let s = |n| Duration::from_secs(n);
        Schedule {
            delays: vec![
                s(5),
                s(5 * 60),
                s(30 * 60),
                s(2 * 3600),
                s(5 * 3600),
                s(10 * 3600),
                s(10 * 3600),
            ],
        }
    }
}

impl Schedule {
    pub fn new(delays: Vec<Duration>) -> Schedule {
        Schedule { delays }
    }

    /// Parse `5s,5m,30m,2h` (units: ms, s, m, h, d; a bare number is seconds).
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let mut delays = Vec::new();
        for (i, item) in s.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                return Err(format!("empty entry at position {}", i + 1));
            }
            if i == 0 && matches!(item, "0" | "0s" | "0ms" | "immediately") {
                continue;
            }
            delays.push(parse_duration(item)?);
        }
        Ok(Schedule { delays })
    }

    /// How many attempts in all (the first one included).
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len() + 1).unwrap_or(u32::MAX)
    }

    /// The delay after failed attempt number `attempt` (1-based), without jitter; `None` when
    /// that was the last attempt.
    pub fn base_delay(&self, attempt: u32) -> Option<Duration> {
        let idx = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(idx).copied()
    }

    /// The delay after failed attempt `attempt`, with jitter and `Retry-After` applied; `None`
    /// when no attempt is left.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = self.base_delay(attempt)?;
        let jittered = jitter(base, &mut rand::rng());
        let floor = retry_after
            .map(|r| r.min(MAX_RETRY_AFTER))
            .unwrap_or_default();
        Some(jittered.max(floor))
    }
}

/// `base` ± 20 %, uniformly.
pub fn jitter(base: Duration, rng: &mut impl Rng) -> Duration {
    if base.is_zero() {
        return base;
    }
    let f: f64 = rng.random_range((1.0 - JITTER)..=(1.0 + JITTER));
    base.mul_f64(f)
}

/// `250ms`, `5s`, `5m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 5s, 5m, 2h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => return Err(format!("`{other}` in `{s}` is not a unit (ms, s, m, h, d)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is out of range"))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate(v)?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers must send.
fn httpdate(v: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, mon, year, hms, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == mon)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_common_schedule() {
        let s = Schedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.base_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(s.base_delay(7), Some(Duration::from_secs(36000)));
        assert_eq!(s.base_delay(8), None);
        assert_eq!(s.base_delay(0), None);
    }

    #[test]
    fn parses_config_text() {
        let s = Schedule::parse("5s, 5m,30m,2h").unwrap();
        assert_eq!(s.max_attempts(), 5);
        assert_eq!(s.base_delay(4), Some(Duration::from_secs(7200)));
        let s = Schedule::parse("immediately,100ms,200ms").unwrap();
        assert_eq!(s.base_delay(1), Some(Duration::from_millis(100)));
        assert_eq!(s.max_attempts(), 3);
        assert!(Schedule::parse("5s,,5m").is_err());
        assert!(Schedule::parse("5 parsecs").is_err());
        assert!(Schedule::parse("-5s").is_err());
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_retry_after_is_a_floor() {
        let s = Schedule::parse("10s").unwrap();
        for _ in 0..200 {
            let d = s.next_delay(1, None).unwrap();
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        let d = s.next_delay(1, Some(Duration::from_secs(60))).unwrap();
        assert_eq!(d, Duration::from_secs(60));
        let d = s
            .next_delay(1, Some(Duration::from_secs(10 * 86400)))
            .unwrap();
        assert_eq!(d, MAX_RETRY_AFTER);
        assert_eq!(s.next_delay(2, None), None);
    }

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        let earlier = now - Duration::from_secs(60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", earlier),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
