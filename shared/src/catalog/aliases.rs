//! Alias → lead resolution: every normalised alias points at one lead id.
//!
//! A batch of alias groups (one group per event) resolves in one round trip when every alias is
//! known, two when some are new: unknown aliases are claimed with SET NX for the group's lead (a
//! known alias of the group, or a new `ld_…`), so two gateways racing on the same new alias agree
//! on one lead. Aliases that point at different leads are not merged: the first known alias wins
//! and the others keep their lead (merging leads is a separate, deliberate operation).

use std::collections::HashMap;

use super::Catalog;
use crate::ids::new_id;
use crate::store::{Cmd, Reply, StoreError};
use leadstream_domain::event::Alias;
use leadstream_domain::ids::{LeadId, OuId};

/// Aliases to link to a lead the producer named ([`Catalog::link_aliases`]).
#[derive(Debug, Clone, Copy)]
pub struct AliasLink<'a> {
    pub ou: OuId<'a>,
    pub lead: LeadId<'a>,
    pub aliases: &'a [Alias],
}

impl Catalog {
    /// Resolve each group of aliases to a lead, creating leads for groups with no known alias
    /// and linking a group's unknown aliases to its lead.
    pub async fn resolve_leads(
        &self,
        ou: &str,
        groups: &[Vec<Alias>],
    ) -> Result<Vec<String>, StoreError> {
        let key = |a: &Alias| self.keys.alias(ou, a.kind.as_str(), &a.value);
        // Round trip 1: what is known.
        let mut unique: Vec<&Alias> = groups.iter().flatten().collect();
        unique.sort();
        unique.dedup();
        let replies = if unique.is_empty() {
            Vec::new()
        } else {
            self.kv
                .exec(vec![Cmd::MGet {
                    keys: unique.iter().map(|a| key(a)).collect(),
                }])
                .await?
                .pop()
                .map(Reply::into_array)
                .unwrap_or_default()
        };
        let mut known: HashMap<&Alias, String> = HashMap::new();
        for (a, r) in unique.iter().zip(replies) {
            if let Some(lead) = r.into_bytes().and_then(|b| String::from_utf8(b).ok()) {
                known.insert(a, lead);
            }
        }
        // Assign leads group by group; later groups see earlier groups' new links.
        let mut leads = Vec::with_capacity(groups.len());
        let mut claims: Vec<(&Alias, String, usize)> = Vec::new();
        for (gi, group) in groups.iter().enumerate() {
            let lead = group
                .iter()
                .find_map(|a| known.get(a).cloned())
                .unwrap_or_else(|| new_id("ld"));
            for a in group {
                if !known.contains_key(a) {
                    known.insert(a, lead.clone());
                    claims.push((a, lead.clone(), gi));
                }
            }
            leads.push(lead);
        }
        if claims.is_empty() {
            return Ok(leads);
        }
        // Round trip 2: claim the new aliases, record them on their leads.
        let mut cmds = Vec::with_capacity(claims.len() * 2);
        for (a, lead, _) in &claims {
            cmds.push(Cmd::SetNx {
                key: key(a),
                value: lead.clone().into_bytes(),
                ttl_ms: None,
            });
            cmds.push(Cmd::HSet {
                key: self.keys.lead_aliases(OuId(ou), LeadId(lead)),
                field: format!("{}:{}", a.kind.as_str(), a.value),
                value: b"1".to_vec(),
            });
        }
        let out = self.kv.exec(cmds).await?;
        // Someone else claimed an alias first: use their lead for that group.
        let lost: Vec<&(&Alias, String, usize)> = claims
            .iter()
            .zip(out.chunks(2))
            .filter(|(_, r)| r.first().is_some_and(|r| r.as_int() == 0))
            .map(|(c, _)| c)
            .collect();
        if !lost.is_empty() {
            let again = self
                .kv
                .exec(
                    lost.iter()
                        .map(|(a, _, _)| Cmd::Get { key: key(a) })
                        .collect(),
                )
                .await?;
            let mut cleanup = Vec::new();
            for ((a, ours, gi), r) in lost.into_iter().zip(again) {
                if let Some(theirs) = r.into_bytes().and_then(|b| String::from_utf8(b).ok()) {
                    cleanup.push(Cmd::HDel {
                        key: self.keys.lead_aliases(OuId(ou), LeadId(ours)),
                        field: format!("{}:{}", a.kind.as_str(), a.value),
                    });
                    if leads[*gi] == *ours {
                        leads[*gi] = theirs;
                    }
                }
            }
            self.kv.exec(cleanup).await?;
        }
        Ok(leads)
    }

    /// Link the aliases of events whose producer named the lead, in one round trip: an alias
    /// that points nowhere yet is claimed for that lead (`SET NX`: one already linked elsewhere
    /// keeps its lead — no merges here), and every alias is recorded on the named lead.
    pub async fn link_aliases(&self, links: &[AliasLink<'_>]) -> Result<(), StoreError> {
        let mut cmds = Vec::new();
        for l in links {
            for a in l.aliases {
                cmds.push(Cmd::SetNx {
                    key: self.keys.alias(l.ou.as_str(), a.kind.as_str(), &a.value),
                    value: l.lead.as_str().as_bytes().to_vec(),
                    ttl_ms: None,
                });
                cmds.push(Cmd::HSet {
                    key: self.keys.lead_aliases(l.ou, l.lead),
                    field: format!("{}:{}", a.kind.as_str(), a.value),
                    value: b"1".to_vec(),
                });
            }
        }
        if !cmds.is_empty() {
            self.kv.exec(cmds).await?;
        }
        Ok(())
    }

    /// The lead an alias points at, if any (read-only).
    pub async fn lead_for_alias(
        &self,
        ou: &str,
        alias: &Alias,
    ) -> Result<Option<String>, StoreError> {
        let r = self
            .kv
            .exec(vec![Cmd::Get {
                key: self.keys.alias(ou, alias.kind.as_str(), &alias.value),
            }])
            .await?;
        Ok(r.into_iter()
            .next()
            .and_then(Reply::into_bytes)
            .and_then(|b| String::from_utf8(b).ok()))
    }

    /// The aliases recorded for a lead, as `kind:value`.
    pub async fn aliases_of(
        &self,
        ou: OuId<'_>,
        lead: LeadId<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let r = self
            .kv
            .exec(vec![Cmd::HGetAll {
                key: self.keys.lead_aliases(ou, lead),
            }])
            .await?;
        Ok(r.into_iter()
            .next()
            .map(Reply::into_pairs)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
}
