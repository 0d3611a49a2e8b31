//! Identity resolution for a request or a batch: aliases → one lead.
//!
//! Alias-only events are resolved through the shared catalog (`Catalog::resolve_leads`: one
//! `MGET` when every alias is known, one more round trip of `SET NX` claims when some are new,
//! so racing gateways agree on one lead; several aliases of one event end on one lead). Events
//! grouped by OU, so a batch costs a few round trips whatever its size. An event whose producer
//! named the lead keeps it, and its aliases that point nowhere yet are linked to that lead
//! (`SET NX`: an alias already linked elsewhere keeps its lead — no merges here).

use std::collections::BTreeMap;

use leadstream_domain::event::EngagementEvent;
use leadstream_shared::catalog::aliases::AliasLink;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::store::StoreError;

/// Resolve (and create) the leads of `events` in place.
pub async fn resolve(catalog: &Catalog, events: &mut [EngagementEvent]) -> Result<(), StoreError> {
    let mut by_ou: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut named = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.aliases.is_empty() {
            continue;
        }
        match &e.lead_id {
            None => by_ou.entry(e.ou_id.clone()).or_default().push(i),
            Some(_) => named.push(i),
        }
    }
    for (ou, idx) in by_ou {
        let groups: Vec<_> = idx.iter().map(|i| events[*i].aliases.clone()).collect();
        let leads = catalog.resolve_leads(&ou, &groups).await?;
        for (i, lead) in idx.into_iter().zip(leads) {
            events[i].lead_id = Some(lead);
        }
    }
    let links: Vec<AliasLink<'_>> = named
        .into_iter()
        .filter_map(|i| {
            let e = &events[i];
            Some(AliasLink {
                ou: e.ou(),
                lead: e.lead()?,
                aliases: &e.aliases,
            })
        })
        .collect();
    catalog.link_aliases(&links).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadstream_domain::event::{Alias, AliasKind, Origin};
    use leadstream_shared::ids;
    use leadstream_shared::keys::Keys;
    use leadstream_shared::store::MemoryKv;
    use std::sync::Arc;

    fn ev(lead: Option<&str>, aliases: &[(AliasKind, &str)]) -> EngagementEvent {
        EngagementEvent {
            event_id: ids::new_id("evt"),
            org_id: "org_default".into(),
            ou_id: "unit_default".into(),
            lead_id: lead.map(str::to_string),
            aliases: aliases
                .iter()
                .map(|(k, v)| Alias::normalise(*k, v).unwrap())
                .collect(),
            source: None,
            producer_event_id: None,
            event_type: "t".into(),
            event_time_ms: 0,
            received_at_ms: 0,
            metadata: Default::default(),
            origin: Origin::Ingest,
            environment: None,
            severity: None,
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(Arc::new(MemoryKv::new()), Keys::new("t"))
    }

    #[tokio::test]
    async fn several_aliases_link_to_one_lead_and_later_events_find_it() {
        let cat = catalog();
        let mut first = vec![ev(
            None,
            &[(AliasKind::ExternalId, "L-1"), (AliasKind::Email, "A@x.io")],
        )];
        resolve(&cat, &mut first).await.unwrap();
        let lead = first[0].lead_id.clone().unwrap();
        assert!(lead.starts_with("ld_"));
        let mut later = vec![
            ev(None, &[(AliasKind::Email, " a@X.io ")]),
            ev(None, &[(AliasKind::ExternalId, "L-1")]),
            ev(None, &[(AliasKind::Phone, "+1 415 555 0100")]),
        ];
        resolve(&cat, &mut later).await.unwrap();
        assert_eq!(later[0].lead_id.as_deref(), Some(lead.as_str()));
        assert_eq!(later[1].lead_id.as_deref(), Some(lead.as_str()));
        assert_ne!(later[2].lead_id.as_deref(), Some(lead.as_str()));
    }

    #[tokio::test]
    async fn given_leads_are_kept_and_linked() {
        let cat = catalog();
        let mut batch = vec![
            ev(None, &[(AliasKind::Cookie, "c1")]),
            ev(
                None,
                &[(AliasKind::Cookie, "c1"), (AliasKind::Email, "b@x.io")],
            ),
            ev(Some("ld_given"), &[(AliasKind::Social, "@me")]),
        ];
        resolve(&cat, &mut batch).await.unwrap();
        assert_eq!(batch[0].lead_id, batch[1].lead_id);
        assert_eq!(batch[2].lead_id.as_deref(), Some("ld_given"));
        let mut again = vec![ev(None, &[(AliasKind::Social, "@me")])];
        resolve(&cat, &mut again).await.unwrap();
        assert_eq!(again[0].lead_id.as_deref(), Some("ld_given"));
    }
}
