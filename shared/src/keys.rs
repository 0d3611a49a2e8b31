//! Every Redis key leadstream uses, in one place.
//!
//! Layout: `{prefix}:g:{…}` for installation-wide data (organisations, API key index) and
//! `{prefix}:ou:{ou}:{…}` for everything that belongs to a tenant, so one OU's data can never be
//! addressed through another's. `prefix` is `LEADSTREAM_REDIS_PREFIX` (default `leadstream`),
//! which also lets tests share one Redis without seeing each other.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Keys {
        Keys {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// An installation-wide key.
    pub fn global(&self, suffix: &str) -> String {
        format!("{}:g:{suffix}", self.prefix)
    }

    /// A key that belongs to one OU.
    pub fn ou_key(&self, ou: &str, suffix: &str) -> String {
        format!("{}:ou:{ou}:{suffix}", self.prefix)
    }

    // --- Tenancy and access (global) ---

    /// Hash: org id → JSON organisation.
    pub fn orgs(&self) -> String {
        self.global("orgs")
    }

    /// Hash: OU id → JSON org unit (with its org id).
    pub fn org_units(&self) -> String {
        self.global("org_units")
    }

    /// Hash: key id → JSON API key record (hash of the secret, never the secret).
    pub fn api_keys(&self) -> String {
        self.global("api_keys")
    }

    /// Hash: hex SHA-256 of a secret → key id.
    pub fn api_key_hashes(&self) -> String {
        self.global("api_key_hashes")
    }

    // --- Per-OU configuration documents ---

    /// Hash: id → JSON document of a collection (`rulesets`, `triggers`, `sequences`,
    /// `event_types`).
    pub fn docs(&self, ou: &str, collection: &str) -> String {
        self.ou_key(ou, &format!("docs:{collection}"))
    }

    /// String: a counter bumped on every change of the OU's configuration, so services can
    /// cache configuration and notice changes with one cheap read.
    pub fn config_version(&self, ou: &str) -> String {
        self.ou_key(ou, "config_version")
    }

    /// String: JSON list of webhook signing secrets, newest first.
    pub fn webhook_secrets(&self, ou: &str) -> String {
        self.ou_key(ou, "webhook_secrets")
    }

    // --- Leads ---

    /// String: lead id that an alias resolves to.
    pub fn alias(&self, ou: &str, kind: &str, value: &str) -> String {
        self.ou_key(ou, &format!("alias:{kind}:{value}"))
    }

    /// Hash: alias `kind:value` → "1", the aliases known for a lead.
    pub fn lead_aliases(&self, ou: &str, lead: &str) -> String {
        self.ou_key(ou, &format!("lead:{lead}:aliases"))
    }

    /// String: the lead's processing state (JSON).
    pub fn lead_state(&self, ou: &str, lead: &str) -> String {
        self.ou_key(ou, &format!("lead:{lead}:state"))
    }

    /// Sorted set of lead ids by last activity (for listing).
    pub fn leads(&self, ou: &str) -> String {
        self.ou_key(ou, "leads")
    }

    // --- Dedupe and idempotency ---

    /// String: set once an event with this dedupe id was applied by the processor.
    pub fn processed(&self, ou: &str, dedupe_id: &str) -> String {
        self.ou_key(ou, &format!("processed:{dedupe_id}"))
    }

    /// String: the gateway's claim / answer for a producer id (seed 002 dedupe, seed 001
    /// Idempotency-Key).
    pub fn ingest_claim(&self, ou: &str, scope: &str, id: &str) -> String {
        self.ou_key(ou, &format!("claim:{scope}:{id}"))
    }

    // --- History ---

    /// Sorted set (score = fired time) of JSON history entries of a kind (`milestone`,
    /// `sequence`).
    pub fn history(&self, ou: &str, kind: &str) -> String {
        self.ou_key(ou, &format!("history:{kind}"))
    }

    /// Hash: fired id → Avro `TriggerFired`, firings recorded but not yet acknowledged by the
    /// fired topic (the processor's outbox), per input partition.
    pub fn outbox(&self, partition: i32) -> String {
        self.global(&format!("outbox:{partition}"))
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new("leadstream")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_keys_carry_the_ou() {
        let k = Keys::new("t1");
        assert_eq!(k.lead_state("ou_a", "ld_1"), "t1:ou:ou_a:lead:ld_1:state");
        assert_ne!(k.lead_state("ou_a", "ld_1"), k.lead_state("ou_b", "ld_1"));
        assert_eq!(k.api_keys(), "t1:g:api_keys");
    }
}
