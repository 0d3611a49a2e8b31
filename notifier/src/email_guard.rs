//! What keeps a tenant from turning the installation into a spam relay under the operator's
//! `From:`: an optional allow list of recipient domains (`LEADSTREAM_EMAIL_ALLOWED_DOMAINS`, for
//! the installation; a domain allows itself and its subdomains) and a per-OU rate of emails
//! (`LEADSTREAM_EMAIL_RATE_PER_OU`, emails per minute; 0: off). A recipient outside the list is a
//! permanent refusal (dead-lettered as `refused`, never retried); an OU over its rate gets its
//! email deferred (retried after the wait), never dropped.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why an email may not be sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The recipient's domain is not allowed: permanent.
    Domain(String),
    /// The OU sent its share: retry after this long.
    Rate(Duration),
}

pub struct EmailGuard {
    domains: Vec<String>,
    per_ou: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl EmailGuard {
    /// `domains` empty: any recipient; `per_minute` 0: no rate.
    pub fn new(domains: &[String], per_minute: u32) -> EmailGuard {
        EmailGuard {
            domains: domains
                .iter()
                .map(|d| {
                    d.trim()
                        .trim_start_matches("*.")
                        .trim_matches('.')
                        .to_ascii_lowercase()
                })
                .filter(|d| !d.is_empty())
                .collect(),
            per_ou: NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n))),
            clock: DefaultClock::default(),
        }
    }

    /// Whether `to` may get an email of OU `ou` now (counts it when so).
    pub fn admit(&self, ou: &str, to: &str) -> Result<(), Refusal> {
        if !self.domains.is_empty() {
            let domain = to
                .rsplit('@')
                .next()
                .unwrap_or("")
                .trim_end_matches('>')
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let allowed = self
                .domains
                .iter()
                .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
            if !allowed {
                return Err(Refusal::Domain(domain));
            }
        }
        if let Some(limiter) = &self.per_ou {
            if let Err(not_until) = limiter.check_key(&ou.to_string()) {
                return Err(Refusal::Rate(not_until.wait_time_from(self.clock.now())));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_subdomains_are_allowed_others_refused() {
        let g = EmailGuard::new(&["example.com".into(), "*.corp.test".into()], 0);
        assert!(g.admit("ou", "a@example.com").is_ok());
        assert!(g.admit("ou", "Ann <a@Sales.Example.com>").is_ok());
        assert!(g.admit("ou", "a@x.corp.test").is_ok());
        assert_eq!(
            g.admit("ou", "a@evil-example.com"),
            Err(Refusal::Domain("evil-example.com".into()))
        );
        assert!(EmailGuard::new(&[], 0)
            .admit("ou", "a@anything.test")
            .is_ok());
    }

    #[test]
    fn each_ou_has_its_own_rate() {
        let g = EmailGuard::new(&[], 2);
        assert!(g.admit("a", "x@y.test").is_ok());
        assert!(g.admit("a", "x@y.test").is_ok());
        assert!(matches!(g.admit("a", "x@y.test"), Err(Refusal::Rate(_))));
        assert!(
            g.admit("b", "x@y.test").is_ok(),
            "another OU is not held back"
        );
    }
}
