use std::sync::Arc;

use super::*;
use crate::store::MemoryKv;
use leadstream_domain::event::{Alias, AliasKind};
use leadstream_domain::ids::{LeadId, OuId};

fn catalog() -> Catalog {
    Catalog::new(Arc::new(MemoryKv::new()), Keys::new("t"))
}

/// The cluster layout on a store that refuses cross-slot atomic writes as Redis Cluster does.
fn cluster_catalog() -> Catalog {
    Catalog::new(Arc::new(MemoryKv::cluster_strict()), Keys::for_cluster("t"))
}

/// Each test runs on the single-Redis layout and on the cluster layout.
macro_rules! on_both_layouts {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test]
            async fn single_redis() {
                super::$name(super::catalog()).await
            }

            #[tokio::test]
            async fn redis_cluster() {
                super::$name(super::cluster_catalog()).await
            }
        })*
    };
}

on_both_layouts!(
    bootstrap_creates_the_default_ou_and_admin_key,
    keys_are_shown_once_and_stored_hashed,
    aliases_resolve_to_one_lead_and_link,
    documents_bump_the_config_version,
    typed_documents_insert_only_when_free,
    webhook_secrets_rotate_with_grace
);

fn email(s: &str) -> Alias {
    Alias::normalise(AliasKind::Email, s).unwrap()
}

async fn bootstrap_creates_the_default_ou_and_admin_key(c: Catalog) {
    c.bootstrap(Some("s3cret-admin")).await.unwrap();
    c.bootstrap(Some("s3cret-admin")).await.unwrap();
    let ous = c.list_org_units(crate::DEFAULT_ORG).await.unwrap();
    assert_eq!(ous.len(), 1);
    assert_eq!(ous[0].id, "unit_default");
    let key = c.authenticate("s3cret-admin").await.unwrap().unwrap();
    assert!(key.has_scope(Scope::Admin));
    assert!(c.authenticate("wrong").await.unwrap().is_none());
    // A changed bootstrap secret replaces the old one.
    c.bootstrap(Some("rotated")).await.unwrap();
    assert!(c.authenticate("s3cret-admin").await.unwrap().is_none());
    assert!(c.authenticate("rotated").await.unwrap().is_some());
}

async fn keys_are_shown_once_and_stored_hashed(c: Catalog) {
    let (key, secret) = c
        .create_api_key(
            "org_default",
            NewApiKey {
                name: "pos".into(),
                scopes: vec![Scope::Ingest],
                ou_ids: vec!["unit_default".into()],
                source_id: Some("brand.pos".into()),
            },
        )
        .await
        .unwrap();
    assert!(secret.starts_with("lsk_"));
    assert!(!format!("{key:?}").contains(&secret));
    assert_ne!(key.secret_hash, secret);
    let found = c.authenticate(&secret).await.unwrap().unwrap();
    assert_eq!(found.id, key.id);
    assert!(found.allows_ou("unit_default") && !found.allows_ou("ou_other"));
    assert!(!found.has_scope(Scope::Admin));
    assert!(!c.delete_api_key("org_other", &key.id).await.unwrap());
    assert!(c.delete_api_key("org_default", &key.id).await.unwrap());
    assert!(c.authenticate(&secret).await.unwrap().is_none());
}

async fn aliases_resolve_to_one_lead_and_link(c: Catalog) {
    let phone = Alias::normalise(AliasKind::Phone, "+1 415 555 0100").unwrap();
    let leads = c
        .resolve_leads(
            "ou1",
            &[vec![email("a@x.co")], vec![email("a@x.co"), phone.clone()]],
        )
        .await
        .unwrap();
    assert!(leads[0].starts_with("ld_"));
    assert_eq!(leads[0], leads[1], "same alias in one batch → same lead");
    let again = c.resolve_leads("ou1", &[vec![phone]]).await.unwrap();
    assert_eq!(again[0], leads[0], "the phone was linked to the lead");
    let other_ou = c
        .resolve_leads("ou2", &[vec![email("a@x.co")]])
        .await
        .unwrap();
    assert_ne!(other_ou[0], leads[0], "OUs never share leads");
    let mut aliases = c.aliases_of(OuId("ou1"), LeadId(&leads[0])).await.unwrap();
    aliases.sort();
    assert_eq!(aliases, vec!["email:a@x.co", "phone:+14155550100"]);
}

async fn documents_bump_the_config_version(c: Catalog) {
    assert_eq!(c.config_version("ou1").await.unwrap(), 0);
    c.put_doc(
        "ou1",
        collections::RULESETS,
        "rs_1",
        &serde_json::json!({"a": 1}),
    )
    .await
    .unwrap();
    assert_eq!(c.config_version("ou1").await.unwrap(), 1);
    let docs: Vec<serde_json::Value> = c.list_docs("ou1", collections::RULESETS).await.unwrap();
    assert_eq!(docs, vec![serde_json::json!({"a": 1})]);
    let none: Vec<serde_json::Value> = c.list_docs("ou2", collections::RULESETS).await.unwrap();
    assert!(none.is_empty());
    assert!(c
        .delete_doc("ou1", collections::RULESETS, "rs_1")
        .await
        .unwrap());
    assert!(!c
        .delete_doc("ou1", collections::RULESETS, "rs_1")
        .await
        .unwrap());
    assert_eq!(c.config_version("ou1").await.unwrap(), 3);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Named {
    name: String,
    n: i64,
}

async fn typed_documents_insert_only_when_free(c: Catalog) {
    let docs = c.documents::<Named>(collections::EVENT_TYPES);
    let a = Named {
        name: "a".into(),
        n: 1,
    };
    assert!(docs.insert("ou1", "a", &a).await.unwrap());
    let other = Named {
        name: "a".into(),
        n: 2,
    };
    assert!(!docs.insert("ou1", "a", &other).await.unwrap(), "taken");
    assert_eq!(docs.get("ou1", "a").await.unwrap(), Some(a));
    assert_eq!(docs.get("ou2", "a").await.unwrap(), None, "per OU");
    // Both inserts bumped the version (the second wrote nothing).
    assert_eq!(c.config_version("ou1").await.unwrap(), 2);
    // An unreadable document fails `list` and is skipped by `list_readable`.
    c.documents::<serde_json::Value>(collections::EVENT_TYPES)
        .put("ou1", "b", &serde_json::json!({"name": 5}))
        .await
        .unwrap();
    assert!(matches!(
        docs.list("ou1").await,
        Err(StoreError::Corrupt(_))
    ));
    let readable = docs.list_readable("ou1").await.unwrap();
    assert_eq!(readable.len(), 1);
    assert_eq!(readable[0].0, "a");
    assert!(docs.delete("ou1", "b").await.unwrap());
    assert_eq!(docs.list("ou1").await.unwrap().len(), 1);
    assert_eq!(c.config_version("ou1").await.unwrap(), 4);
}

async fn webhook_secrets_rotate_with_grace(c: Catalog) {
    let first = c.webhook_secret("ou1").await.unwrap();
    assert!(first.starts_with("whsec_"));
    assert_eq!(
        c.webhook_secret("ou1").await.unwrap(),
        first,
        "stable until rotated"
    );
    let second = c.rotate_webhook_secret("ou1", 60_000).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        c.signing_secrets("ou1", 60_000).await.unwrap(),
        vec![second.clone(), first]
    );
    assert_eq!(c.signing_secrets("ou1", 0).await.unwrap(), vec![second]);
    assert_ne!(
        c.webhook_secret("ou2").await.unwrap(),
        c.webhook_secret("ou1").await.unwrap()
    );
}
