//! Every Redis key leadstream uses, in one place.
//!
//! Layout: `{prefix}:g:{…}` for installation-wide data (organisations, API key index) and
//! `{prefix}:ou:{ou}:{…}` for everything that belongs to a tenant, so one OU's data can never be
//! addressed through another's. `prefix` is `LEADSTREAM_REDIS_PREFIX` (default `leadstream`),
//! which also lets tests share one Redis without seeing each other.
//!
//! On a Redis Cluster ([`Keys::for_cluster`]) the keys that one atomic write touches together
//! carry one hash tag (`{…}`), so they live in one slot; the text is otherwise the same, and on a
//! single Redis ([`Keys::new`]) nothing changes, so no migration is needed. The groups:
//! - the installation-wide catalog (organisations, OUs, API keys, their hash index and the
//!   keys' active OUs):
//!   `{prefix}:{g}:…` — one slot;
//! - one OU's configuration (documents, config version, webhook secrets):
//!   `{prefix}:ou:{<ou>}:…` — one slot per OU;
//! - the notifier's delivery state (jobs, leases, the due set, 410 marks, delivery records and
//!   their indexes): `{notifier}:` inserted after `g:` / `ou:<ou>:`, e.g.
//!   `{prefix}:g:{notifier}:notifier:due`, `{prefix}:ou:<ou>:{notifier}:deliveries:…` — one slot,
//!   because one delivery's write moves its job in the installation-wide due set and records
//!   the attempt in its OU's indexes atomically.

use leadstream_domain::ids::{LeadId, OuId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    /// Hash tags for a Redis Cluster.
    cluster: bool,
}

impl Keys {
    /// The layout for one Redis server.
    pub fn new(prefix: impl Into<String>) -> Keys {
        Keys {
            prefix: prefix.into(),
            cluster: false,
        }
    }

    /// The layout for a Redis Cluster: the same keys with hash tags on the groups that are
    /// written atomically together.
    pub fn for_cluster(prefix: impl Into<String>) -> Keys {
        Keys {
            prefix: prefix.into(),
            cluster: true,
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// `{segment}` on a cluster, `segment` otherwise.
    fn tag(&self, segment: &str) -> String {
        if self.cluster {
            format!("{{{segment}}}")
        } else {
            segment.to_string()
        }
    }

    /// An installation-wide catalog key (one slot on a cluster).
    fn catalog(&self, suffix: &str) -> String {
        format!("{}:{}:{suffix}", self.prefix, self.tag("g"))
    }

    /// A key of one OU's configuration (one slot per OU on a cluster).
    fn ou_config(&self, ou: &str, suffix: &str) -> String {
        format!("{}:ou:{}:{suffix}", self.prefix, self.tag(ou))
    }

    /// `{notifier}:` on a cluster, nothing otherwise.
    fn notifier_tag(&self) -> &'static str {
        if self.cluster {
            "{notifier}:"
        } else {
            ""
        }
    }

    /// An installation-wide key of the notifier's delivery state: [`Keys::global`], with
    /// `{notifier}:` before the suffix on a cluster (the notifier's slot).
    fn notifier_global(&self, suffix: &str) -> String {
        self.global(&format!("{}{suffix}", self.notifier_tag()))
    }

    /// A key of the notifier's delivery state for one OU: [`Keys::ou_key`], with `{notifier}:`
    /// before the suffix on a cluster (the notifier's slot).
    fn notifier_ou(&self, ou: &str, suffix: &str) -> String {
        self.ou_key(ou, &format!("{}{suffix}", self.notifier_tag()))
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
        self.catalog("orgs")
    }

    /// Hash: OU id → JSON org unit (with its org id).
    pub fn org_units(&self) -> String {
        self.catalog("org_units")
    }

    /// Hash: key id → JSON API key record (hash of the secret, never the secret).
    pub fn api_keys(&self) -> String {
        self.catalog("api_keys")
    }

    /// Hash: hex SHA-256 of a secret → key id.
    pub fn api_key_hashes(&self) -> String {
        self.catalog("api_key_hashes")
    }

    /// Hash: key id → the OU `POST /org-units/active` last made that key's active OU.
    pub fn active_ous(&self) -> String {
        self.catalog("active_ous")
    }

    // --- Per-OU configuration documents ---

    /// Hash: id → JSON document of a collection (`rulesets`, `triggers`, `sequences`,
    /// `event_types`).
    pub fn docs(&self, ou: &str, collection: &str) -> String {
        self.ou_config(ou, &format!("docs:{collection}"))
    }

    /// String: a counter bumped on every change of the OU's configuration, so services can
    /// cache configuration and notice changes with one cheap read.
    pub fn config_version(&self, ou: &str) -> String {
        self.ou_config(ou, "config_version")
    }

    /// String: JSON list of webhook signing secrets, newest first.
    pub fn webhook_secrets(&self, ou: &str) -> String {
        self.ou_config(ou, "webhook_secrets")
    }

    // --- The notifier's deliveries (one slot on a cluster: see the module header) ---

    /// String: one delivery job (JSON `notifier::jobs::Job`): one fired record to one endpoint.
    /// Created only if absent, which is the delivery's idempotency.
    pub fn delivery_job(&self, ou: &str, fired_id: &str, endpoint_id: &str) -> String {
        self.notifier_ou(ou, &format!("notifier:dlv:{fired_id}:{endpoint_id}"))
    }

    /// String: the lease on the delivery job `job_key` (a short `SET NX PX` claim).
    pub fn delivery_lease(&self, job_key: &str) -> String {
        format!("{job_key}:lease")
    }

    /// Sorted set: delivery job keys by the time their next step is due.
    pub fn delivery_due(&self) -> String {
        self.notifier_global("notifier:due")
    }

    /// Sorted set: the unfinished delivery jobs of one lead to one endpoint, by the offset of
    /// their fired record: only the first is attempted, so one lead's deliveries to one endpoint
    /// are made in firing order. A job leaves it when it is final.
    pub fn delivery_lane(&self, ou: OuId<'_>, lead: LeadId<'_>, endpoint_id: &str) -> String {
        self.notifier_ou(ou.as_str(), &format!("notifier:lane:{endpoint_id}:{lead}"))
    }

    /// String: present once a 410 Gone disabled the endpoint for the trigger.
    pub fn delivery_disabled(&self, ou: &str, trigger_id: &str, endpoint_id: &str) -> String {
        self.notifier_ou(ou, &format!("notifier:disabled:{trigger_id}:{endpoint_id}"))
    }

    /// String: one delivery attempt of the delivery log (JSON `delivery::DeliveryAttempt`).
    pub fn delivery_attempt(&self, ou: &str, attempt_id: &str) -> String {
        self.notifier_ou(ou, &format!("deliveries:att:{attempt_id}"))
    }

    /// Sorted set: delivery attempt ids by attempt time, for one dimension of the delivery log
    /// (`all`, `fired:{id}`, `lead:{id}`, `trigger:{id}`, `status:{s}`).
    pub fn delivery_index(&self, ou: &str, dim: &str) -> String {
        self.notifier_ou(ou, &format!("deliveries:idx:{dim}"))
    }

    // --- Leads ---

    /// String: lead id that an alias resolves to.
    pub fn alias(&self, ou: &str, kind: &str, value: &str) -> String {
        self.ou_key(ou, &format!("alias:{kind}:{value}"))
    }

    /// Hash: alias `kind:value` → "1", the aliases known for a lead.
    pub fn lead_aliases(&self, ou: OuId<'_>, lead: LeadId<'_>) -> String {
        self.ou_key(ou.as_str(), &format!("lead:{lead}:aliases"))
    }

    /// String: the lead's processing state (JSON).
    pub fn lead_state(&self, ou: OuId<'_>, lead: LeadId<'_>) -> String {
        self.ou_key(ou.as_str(), &format!("lead:{lead}:state"))
    }

    /// Sorted set of lead ids by last activity (for listing).
    pub fn leads(&self, ou: &str) -> String {
        self.ou_key(ou, "leads")
    }

    // --- Rescore and preview jobs (`store::rescore`) ---

    /// Hash: one rescore or preview job (`job`, `state`, `partitions`, `p:{n}` progress).
    pub fn rescore_job(&self, id: &str) -> String {
        self.global(&format!("rescore:job:{id}"))
    }

    /// Sorted set: ids of running jobs, by creation time.
    pub fn rescore_active(&self) -> String {
        self.global("rescore:active")
    }

    /// String: the id of the OU's running rescore (at most one).
    pub fn rescore_running(&self, ou: &str) -> String {
        self.ou_key(ou, "rescore:running")
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
    /// fired topic (the processor's outbox), per input partition. The layout before partition
    /// hash tags; still drained so an upgrade loses no firing.
    pub fn legacy_outbox(&self, partition: i32) -> String {
        self.global(&format!("outbox:{partition}"))
    }

    /// String, present once the processor's dead letter for the input record at `offset` of
    /// `topic`'s `partition` was acknowledged by the events DLQ topic: a poison record read
    /// again (nothing applied after it moved the applied offset past it) is not sent twice.
    pub fn dead_lettered(&self, topic: &str, partition: i32, offset: i64) -> String {
        self.global(&format!("dead:{topic}:{partition}:{offset}"))
    }

    /// String: the last offset of an events partition applied by the processor, in the layout
    /// before partition hash tags (read as a fallback so an upgrade resumes where it stopped).
    pub fn legacy_applied(&self, topic: &str, partition: i32) -> String {
        self.global(&format!("applied:{topic}:{partition}"))
    }

    /// Everything the processor keeps for one partition of the events topic, under one Redis
    /// Cluster hash tag (see [`PartitionKeys`]).
    pub fn partition(&self, topic: &str, partition: i32) -> PartitionKeys {
        PartitionKeys {
            base: format!("{}:p:{{{}}}", self.prefix, partition_tag(topic, partition)),
        }
    }
}

/// The keys of one events partition's processing state. They share one hash tag, so they live
/// in one Redis Cluster slot: a batch is one atomic write per partition, and a failover that
/// loses the newest writes rewinds the partition's state and applied offset together.
///
/// - `applied`: string, the last applied offset;
/// - `leads`: hash, `{ou}\u{1f}{lead}` → the lead's binary state;
/// - `outbox`: hash, fired id → Avro `TriggerFired` not yet acknowledged by the fired topic;
/// - `dedupe(bucket)`: set of 12-byte event digests applied in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKeys {
    base: String,
}

impl PartitionKeys {
    pub fn applied(&self) -> String {
        format!("{}:applied", self.base)
    }

    pub fn leads(&self) -> String {
        format!("{}:leads", self.base)
    }

    pub fn outbox(&self) -> String {
        format!("{}:outbox", self.base)
    }

    pub fn dedupe(&self, bucket: i64) -> String {
        format!("{}:dd:{bucket}", self.base)
    }

    /// A `SCAN MATCH` pattern of every dedupe bucket of the partition.
    pub fn dedupe_pattern(&self) -> String {
        format!("{}:dd:*", self.base)
    }

    /// String, written by a rescore's switch of this partition in the same atomic write as
    /// the switched lead states: the switch is done (its summary, JSON), so it is never done
    /// twice. Expires with finished jobs.
    pub fn rescored(&self, job_id: &str) -> String {
        format!("{}:rescored:{job_id}", self.base)
    }

    /// String, present when the partition was applied by a version that kept one key per lead
    /// (see `processor::engine`): until when (Unix ms) its old dedupe marks are still consulted.
    pub fn legacy(&self) -> String {
        format!("{}:legacy", self.base)
    }

    /// The field of a lead in [`PartitionKeys::leads`]. OU ids cannot contain the separator
    /// (U+001F), so two OUs' leads never share a field.
    pub fn lead_field(ou: OuId<'_>, lead: LeadId<'_>) -> String {
        format!("{ou}\u{1f}{lead}")
    }

    /// The prefix every [`PartitionKeys::lead_field`] of `ou` starts with.
    pub fn lead_field_prefix(ou: OuId<'_>) -> String {
        format!("{ou}\u{1f}")
    }
}

/// The hash tag of an events partition: `{topic}:{partition}:{salt}`, where the salt is the
/// smallest number that puts the tag's slot at the partition's place in a low-discrepancy
/// sequence over the 16,384 slots: the partition number's digits, least significant first,
/// in mixed radix 3, 2, 2, … read as a fraction (0, 1/3, 2/3, 1/6, 1/2, 5/6, 1/12, …). Redis
/// Cluster shards own contiguous, equal slot ranges, so the first N partitions spread exactly
/// evenly over 3 or 6 shards when N is a multiple of the shard count, and over 4 or 12 shards
/// when N is a multiple of 12, instead of a hash's luck (12 partitions hashed at random over 3
/// shards are often 6/4/2).
pub fn partition_tag(topic: &str, partition: i32) -> String {
    // The salt search costs a few hundred CRC16s: remember each tag found.
    type Tags = std::sync::Mutex<std::collections::HashMap<(String, i32), String>>;
    static TAGS: std::sync::OnceLock<Tags> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(Default::default);
    let key = (topic.to_string(), partition);
    if let Some(tag) = tags.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return tag.clone();
    }
    let tag = find_partition_tag(topic, partition);
    tags.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, tag.clone());
    tag
}

fn find_partition_tag(topic: &str, partition: i32) -> String {
    const WINDOW: u16 = 32;
    let mut rest = u64::from(partition.unsigned_abs());
    let mut scale = 1.0 / 3.0;
    let mut position = (rest % 3) as f64 * scale;
    rest /= 3;
    while rest > 0 {
        scale /= 2.0;
        position += (rest % 2) as f64 * scale;
        rest /= 2;
    }
    // The first slot at or after the position (Redis splits 16,384 slots at the ceilings too).
    let target = ((position * 16384.0).ceil() as u16).min(16383 - WINDOW);
    (0u32..)
        .map(|salt| format!("{topic}:{partition}:{salt}"))
        .find(|tag| key_slot(tag).wrapping_sub(target) < WINDOW)
        .expect("a salt within the window exists")
}

/// The endpoint id at the end of a [`Keys::delivery_job`] key.
pub fn delivery_job_endpoint(job_key: &str) -> &str {
    job_key.rsplit(':').next().unwrap_or(job_key)
}

/// The OU of a [`Keys::delivery_job`] key, in either layout; empty when it has none.
pub fn delivery_job_ou(job_key: &str) -> &str {
    job_key
        .rfind(":notifier:dlv:")
        .map(|end| &job_key[..end])
        .map(|head| head.strip_suffix(":{notifier}").unwrap_or(head))
        .and_then(|head| head.rsplit_once(":ou:"))
        .map_or("", |(_, ou)| ou)
}

/// The Redis Cluster slot of a key (see [`crate::store::slot`]).
pub fn key_slot(key: &str) -> u16 {
    crate::store::slot::slot(key.as_bytes())
}

impl Keys {
    /// The name a key of this prefix's single-Redis layout has in the cluster layout (the same
    /// name when the key carries no hash tag on a cluster, or has one already); `None` when the
    /// key is not under this prefix. Used to copy an installation onto a Redis Cluster.
    pub fn cluster_name_of(&self, plain: &str) -> Option<String> {
        let rest = plain
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(':')?;
        if plain.contains('{') {
            return Some(plain.to_string());
        }
        let c = Keys::for_cluster(self.prefix.clone());
        if let Some(g) = rest.strip_prefix("g:") {
            if matches!(
                g,
                "orgs" | "org_units" | "api_keys" | "api_key_hashes" | "active_ous"
            ) {
                return Some(c.catalog(g));
            }
            if g.starts_with("notifier:") {
                return Some(c.notifier_global(g));
            }
        } else if let Some((ou, suffix)) = rest.strip_prefix("ou:").and_then(|o| o.split_once(':'))
        {
            if suffix.starts_with("docs:")
                || suffix == "config_version"
                || suffix == "webhook_secrets"
            {
                return Some(c.ou_config(ou, suffix));
            }
            if suffix.starts_with("notifier:") || suffix.starts_with("deliveries:") {
                return Some(c.notifier_ou(ou, suffix));
            }
        }
        Some(plain.to_string())
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
        let state = |ou, lead| k.lead_state(OuId(ou), LeadId(lead));
        assert_eq!(state("ou_a", "ld_1"), "t1:ou:ou_a:lead:ld_1:state");
        assert_ne!(state("ou_a", "ld_1"), state("ou_b", "ld_1"));
        assert_eq!(k.api_keys(), "t1:g:api_keys");
        // The layout processors before this function wrote: marks they left still count.
        assert_eq!(
            k.dead_lettered("t1.events.v1", 3, 17),
            "t1:g:dead:t1.events.v1:3:17"
        );
    }

    #[test]
    fn slots_match_the_redis_cluster_specification() {
        // Values redis-cli's CLUSTER KEYSLOT gives.
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("bar"), 5061);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_ne!(key_slot("foo{}{bar}"), key_slot("bar"));
        assert_eq!(key_slot("foo{{bar}}zap"), key_slot("{bar"));
    }

    #[test]
    fn a_partition_keeps_all_its_keys_in_one_slot() {
        let pk = Keys::new("t1").partition("leadstream.events.v1", 3);
        let slot = key_slot(&pk.applied());
        for k in [pk.leads(), pk.outbox(), pk.dedupe(123)] {
            assert_eq!(key_slot(&k), slot, "{k}");
        }
        assert_ne!(
            Keys::new("t1")
                .partition("leadstream.events.v1", 4)
                .applied(),
            pk.applied()
        );
    }

    #[test]
    fn partitions_spread_evenly_over_the_shards() {
        // How `redis-cli --cluster create` splits the slots between `shards` masters.
        fn shard(slot: u16, shards: u32) -> usize {
            let per = 16384.0 / f64::from(shards);
            (0..shards as usize)
                .rev()
                .find(|i| f64::from(slot) >= (*i as f64 * per).ceil())
                .unwrap_or(0)
        }
        for (shards, counts) in [
            (3, &[3, 6, 12, 24, 48][..]),
            (4, &[12, 24]),
            (12, &[12, 24]),
            (6, &[6, 12, 24]),
        ] {
            for &n in counts {
                let mut per = vec![0; shards as usize];
                for p in 0..n {
                    per[shard(key_slot(&partition_tag("leadstream.events.v1", p)), shards)] += 1;
                }
                assert!(
                    per.iter().all(|c| *c == n / shards as i32),
                    "{n} partitions over {shards} shards: {per:?}"
                );
            }
        }
    }

    #[test]
    fn single_redis_keys_map_to_their_cluster_names() {
        let (one, c) = (Keys::new("t1"), Keys::for_cluster("t1"));
        for (plain, clustered) in [
            (one.api_keys(), c.api_keys()),
            (one.api_key_hashes(), c.api_key_hashes()),
            (one.active_ous(), c.active_ous()),
            (one.orgs(), c.orgs()),
            (one.docs("ou_a", "triggers"), c.docs("ou_a", "triggers")),
            (one.config_version("ou_a"), c.config_version("ou_a")),
            (one.webhook_secrets("ou_a"), c.webhook_secrets("ou_a")),
            (one.delivery_due(), c.delivery_due()),
            (
                one.delivery_job("ou_a", "f", "e"),
                c.delivery_job("ou_a", "f", "e"),
            ),
            (
                one.delivery_lease(&one.delivery_job("ou_a", "f", "e")),
                c.delivery_lease(&c.delivery_job("ou_a", "f", "e")),
            ),
            (
                one.delivery_disabled("ou_a", "t", "e"),
                c.delivery_disabled("ou_a", "t", "e"),
            ),
            (
                one.delivery_attempt("ou_a", "att_1"),
                c.delivery_attempt("ou_a", "att_1"),
            ),
            (
                one.delivery_index("ou_a", "all"),
                c.delivery_index("ou_a", "all"),
            ),
            (
                one.alias("ou_a", "email", "a@b"),
                c.alias("ou_a", "email", "a@b"),
            ),
            (
                one.ingest_claim("ou_a", "s", "1"),
                c.ingest_claim("ou_a", "s", "1"),
            ),
        ] {
            assert_eq!(
                one.cluster_name_of(&plain),
                Some(clustered.clone()),
                "{plain}"
            );
            assert_eq!(
                one.cluster_name_of(&clustered),
                Some(clustered),
                "idempotent"
            );
        }
        let pk = one.partition("leadstream.events.v1", 3).leads();
        assert_eq!(one.cluster_name_of(&pk), Some(pk));
        assert_eq!(one.cluster_name_of("t2:g:api_keys"), None);
    }

    #[test]
    fn cluster_layout_only_adds_hash_tags() {
        use crate::store::slot::slot;
        let (one, c) = (Keys::new("t1"), Keys::for_cluster("t1"));
        let same_text = |a: String, b: String| assert_eq!(a, b.replace(['{', '}'], ""));
        same_text(one.api_keys(), c.api_keys());
        same_text(one.docs("ou_a", "triggers"), c.docs("ou_a", "triggers"));
        assert_eq!(c.api_keys(), "t1:{g}:api_keys");
        assert_eq!(c.docs("ou_a", "triggers"), "t1:ou:{ou_a}:docs:triggers");
        assert_eq!(one.delivery_due(), "t1:g:notifier:due");
        assert_eq!(c.delivery_due(), "t1:g:{notifier}:notifier:due");
        assert_eq!(
            one.delivery_attempt("ou_a", "1"),
            "t1:ou:ou_a:deliveries:att:1"
        );
        assert_eq!(
            c.delivery_attempt("ou_a", "1"),
            "t1:ou:ou_a:{notifier}:deliveries:att:1"
        );
        assert_eq!(
            c.delivery_job("ou_a", "f", "e"),
            "t1:ou:ou_a:{notifier}:notifier:dlv:f:e"
        );
        let s = |k: String| slot(k.as_bytes());
        assert_eq!(s(c.api_keys()), s(c.api_key_hashes()));
        assert_eq!(s(c.api_keys()), s(c.active_ous()));
        assert_eq!(s(c.orgs()), s(c.org_units()));
        assert_eq!(s(c.docs("ou_a", "rulesets")), s(c.config_version("ou_a")));
        assert_eq!(s(c.webhook_secrets("ou_a")), s(c.config_version("ou_a")));
        // One delivery's write: its job, lease, the due set, the 410 mark and the log.
        let job = c.delivery_job("ou_b", "x", "y");
        for k in [
            c.delivery_lease(&job),
            c.delivery_disabled("ou_b", "t", "y"),
            c.delivery_lane(OuId("ou_b"), LeadId("ld_1"), "y"),
            c.delivery_attempt("ou_b", "att_1"),
            c.delivery_index("ou_b", "all"),
            c.delivery_job("ou_a", "x", "y"),
        ] {
            assert_eq!(s(c.delivery_due()), s(k.clone()), "{k}");
        }
        assert_eq!(s(c.delivery_due()), s(job));
    }

    #[test]
    fn a_delivery_job_key_names_its_ou_and_endpoint_in_both_layouts() {
        for keys in [Keys::new("t1"), Keys::for_cluster("t1")] {
            let k = keys.delivery_job("ou_a", "fr_1", "webhook_ab12");
            assert_eq!(delivery_job_ou(&k), "ou_a", "{k}");
            assert_eq!(delivery_job_endpoint(&k), "webhook_ab12", "{k}");
        }
        assert_eq!(delivery_job_ou("t1:g:other"), "");
    }
}
