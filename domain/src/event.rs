//! The engagement event: what every ingest route produces and what the processor consumes.
//!
//! One struct, [`EngagementEvent`], is the normalised form of all three seed formats (LeadVibe
//! `/ingest`, Lariba `/v1/events/ingest`, ResultFly `/v1/cdp/events`), of bulk imports and of
//! records that internal systems write straight to Kafka. It is written to
//! `leadstream.events.v1` as Avro (see `schemas/EngagementEvent.avsc` and
//! `leadstream_shared::avro`).

use serde::{Deserialize, Serialize};

use crate::ids::{LeadId, OuId};

/// Which door an event came through. Kept on the record for tracing and for the seed-specific
/// parts of the dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `POST /ingest` (seed 000).
    Ingest,
    /// `POST /v1/events/ingest` (seed 001).
    Events,
    /// `POST /v1/cdp/events[/batch]` (seed 002).
    Cdp,
    /// The bulk historical import endpoint.
    Import,
    /// Written straight to Kafka by an internal system.
    Kafka,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Ingest => "ingest",
            Origin::Events => "events",
            Origin::Cdp => "cdp",
            Origin::Import => "import",
            Origin::Kafka => "kafka",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Some(match s {
            "ingest" => Origin::Ingest,
            "events" => Origin::Events,
            "cdp" => Origin::Cdp,
            "import" => Origin::Import,
            "kafka" => Origin::Kafka,
            _ => return None,
        })
    }
}

/// The kinds of alias a lead can be known by (seed 000's list; seed 002's identity fields map
/// onto them: externalUserId → external_id, deviceKey → cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasKind {
    Email,
    ExternalId,
    Phone,
    Cookie,
    Social,
}

impl AliasKind {
    pub const ALL: [AliasKind; 5] = [
        AliasKind::Email,
        AliasKind::ExternalId,
        AliasKind::Phone,
        AliasKind::Cookie,
        AliasKind::Social,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AliasKind::Email => "email",
            AliasKind::ExternalId => "external_id",
            AliasKind::Phone => "phone",
            AliasKind::Cookie => "cookie",
            AliasKind::Social => "social",
        }
    }

    pub fn parse(s: &str) -> Option<AliasKind> {
        AliasKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Why an alias value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    #[error("{kind} alias is empty")]
    Empty { kind: &'static str },
    #[error("{kind} alias is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("email alias {0:?} is not an email address")]
    BadEmail(String),
    #[error("phone alias must contain 7 to 15 digits (E.164), got {0:?}")]
    BadPhone(String),
}

/// A normalised alias: equal values mean the same person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Alias {
    pub kind: AliasKind,
    pub value: String,
}

/// Longest alias value accepted, after normalisation.
pub const MAX_ALIAS_LEN: usize = 320;

/// Largest events-topic record value the processor accepts (larger ones are dead-lettered before
/// decoding: their metadata would be copied into lead state, history and fired payloads). Well
/// below the broker's default message size.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Largest `LEADSTREAM_MAX_EVENT_BYTES` the gateway accepts: three quarters of
/// [`MAX_RECORD_BYTES`], leaving room for the record's envelope (ids, aliases, times), so every
/// event the gateway acknowledges is one the processor will read.
pub const MAX_EVENT_BYTES_LIMIT: usize = MAX_RECORD_BYTES / 4 * 3;

impl Alias {
    /// Normalise a raw alias: emails are trimmed and lower-cased; phones become `+` and digits
    /// (a number without a country code — no leading `+` or `00` — is refused only when it is
    /// too short to be one); other kinds are trimmed.
    pub fn normalise(kind: AliasKind, raw: &str) -> Result<Alias, AliasError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AliasError::Empty {
                kind: kind.as_str(),
            });
        }
        let value = match kind {
            AliasKind::Email => {
                let v = trimmed.to_lowercase();
                let valid = match v.split_once('@') {
                    Some((local, domain)) => {
                        !local.is_empty()
                            && !domain.is_empty()
                            && !domain.contains('@')
                            && !v.chars().any(char::is_whitespace)
                    }
                    None => false,
                };
                if !valid {
                    return Err(AliasError::BadEmail(trimmed.to_string()));
                }
                v
            }
            AliasKind::Phone => {
                let rest = trimmed
                    .strip_prefix('+')
                    .or_else(|| trimmed.strip_prefix("00"))
                    .unwrap_or(trimmed);
                let allowed = |c: char| c.is_ascii_digit() || " -().".contains(c);
                if !rest.chars().all(allowed) {
                    return Err(AliasError::BadPhone(trimmed.to_string()));
                }
                let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
                if !(7..=15).contains(&digits.len()) {
                    return Err(AliasError::BadPhone(trimmed.to_string()));
                }
                format!("+{digits}")
            }
            AliasKind::ExternalId | AliasKind::Cookie | AliasKind::Social => trimmed.to_string(),
        };
        if value.chars().count() > MAX_ALIAS_LEN {
            return Err(AliasError::TooLong {
                kind: kind.as_str(),
                max: MAX_ALIAS_LEN,
            });
        }
        Ok(Alias { kind, value })
    }
}

/// One engagement event, normalised. Times are Unix milliseconds (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementEvent {
    /// Gateway-assigned id (`evt_…`), unique per accepted event.
    pub event_id: String,
    /// Organisation that owns the OU.
    pub org_id: String,
    /// Organisational unit; every key and every piece of state is scoped by it.
    pub ou_id: String,
    /// The lead, when the producer named one or the gateway resolved the aliases.
    pub lead_id: Option<String>,
    /// Normalised aliases the producer sent (they are linked to the lead).
    pub aliases: Vec<Alias>,
    /// Source system (`source_id` of seed 001, `source` of seed 002), if any.
    pub source: Option<String>,
    /// The producer's own id for the business fact (`event_id`, `externalEventId`,
    /// `Idempotency-Key`), used for dedupe.
    pub producer_event_id: Option<String>,
    pub event_type: String,
    /// When the fact happened (`timestamp` / `occurredAt`, default: receipt time).
    pub event_time_ms: i64,
    /// When the gateway accepted it.
    pub received_at_ms: i64,
    /// Producer-supplied data: `metadata` (000), `payload` (001), `properties` (002). Always a
    /// JSON object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub origin: Origin,
    /// Seed 001 envelope fields.
    pub environment: Option<String>,
    pub severity: Option<String>,
}

impl EngagementEvent {
    pub fn ou(&self) -> OuId<'_> {
        OuId(&self.ou_id)
    }

    /// The lead, once known (alias-only records have none until the processor resolves them).
    pub fn lead(&self) -> Option<LeadId<'_>> {
        self.lead_id.as_deref().map(LeadId)
    }

    /// The Kafka key, `"{ou}:{lead}"`; alias-only records (written straight to Kafka) are keyed
    /// by their first alias until the processor resolves them.
    pub fn kafka_key(&self) -> String {
        match (&self.lead_id, self.aliases.first()) {
            (Some(lead), _) => crate::kafka_key(self.ou(), LeadId(lead)),
            (None, Some(alias)) => {
                format!("{}:{}={}", self.ou_id, alias.kind.as_str(), alias.value)
            }
            (None, None) => format!("{}:{}", self.ou_id, self.event_id),
        }
    }

    /// The identity used for dedupe: (source, producer id) when the producer gave an id,
    /// otherwise the gateway's own event id. The OU is added by the key layout.
    pub fn dedupe_id(&self) -> String {
        match &self.producer_event_id {
            Some(pid) => format!("{}|{}", self.source.as_deref().unwrap_or(""), pid),
            None => format!("|{}", self.event_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let a = Alias::normalise(AliasKind::Email, "  User@Example.COM ").unwrap();
        assert_eq!(a.value, "user@example.com");
        assert!(Alias::normalise(AliasKind::Email, "nope").is_err());
        assert!(Alias::normalise(AliasKind::Email, "a b@c.d").is_err());
    }

    #[test]
    fn phone_becomes_plus_and_digits() {
        let a = Alias::normalise(AliasKind::Phone, "+1 (415) 555-0100").unwrap();
        assert_eq!(a.value, "+14155550100");
        let b = Alias::normalise(AliasKind::Phone, "0044 20 7946 0958").unwrap();
        assert_eq!(b.value, "+442079460958");
        assert!(Alias::normalise(AliasKind::Phone, "12").is_err());
        assert!(Alias::normalise(AliasKind::Phone, "call me").is_err());
    }

    #[test]
    fn dedupe_id_prefers_the_producer_id() {
        let mut e = sample();
        assert_eq!(e.dedupe_id(), "|evt_1");
        e.producer_event_id = Some("x".into());
        e.source = Some("brand.pos".into());
        assert_eq!(e.dedupe_id(), "brand.pos|x");
    }

    fn sample() -> EngagementEvent {
        EngagementEvent {
            event_id: "evt_1".into(),
            org_id: "org_default".into(),
            ou_id: "unit_default".into(),
            lead_id: Some("ld_1".into()),
            aliases: vec![],
            source: None,
            producer_event_id: None,
            event_type: "page_view".into(),
            event_time_ms: 0,
            received_at_ms: 0,
            metadata: Default::default(),
            origin: Origin::Ingest,
            environment: None,
            severity: None,
        }
    }
}
