//! The catalog: what users manage and services look up, stored through the [`Kv`] seam.
//!
//! - tenancy: organisations own organisational units (OUs); `org_default` / `unit_default` exist
//!   from the start ([`Catalog::bootstrap`]);
//! - API keys ([`apikeys`]): random secrets shown once, stored only as SHA-256 hashes;
//! - OU-scoped JSON documents (rulesets, triggers, sequences, event types), typed per collection
//!   ([`documents`]), with a per-OU config version so services can cache them and notice changes
//!   with one read;
//! - alias → lead resolution ([`aliases`]);
//! - per-OU webhook signing secrets with rotation ([`secrets`]).

pub mod aliases;
pub mod apikeys;
pub mod documents;
pub mod secrets;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{new_id, now_ms, rfc3339_ms};
use crate::keys::Keys;
use crate::store::{exec_one, Cmd, Reply, Store, StoreError};

pub use apikeys::{ApiKey, NewApiKey, Scope};
pub use documents::{Documents, ScoringDocuments};

/// Collections of OU-scoped documents.
pub mod collections {
    pub const RULESETS: &str = "rulesets";
    pub const TRIGGERS: &str = "triggers";
    pub const SEQUENCES: &str = "sequences";
    pub const EVENT_TYPES: &str = "event_types";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUnit {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Clone)]
pub struct Catalog {
    kv: Store,
    keys: Keys,
}

impl Catalog {
    pub fn new(kv: Store, keys: Keys) -> Catalog {
        Catalog { kv, keys }
    }

    pub fn store(&self) -> &Store {
        &self.kv
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Make sure the default organisation and OU exist and, when a bootstrap admin secret is
    /// configured, that an admin key with that secret exists. Safe to run on every start and from
    /// several replicas at once.
    pub async fn bootstrap(&self, admin_secret: Option<&str>) -> Result<(), StoreError> {
        let now = rfc3339_ms(now_ms());
        let org = Org {
            id: crate::DEFAULT_ORG.into(),
            name: "Default organisation".into(),
            created_at: now.clone(),
        };
        let ou = OrgUnit {
            id: crate::DEFAULT_OU.into(),
            org_id: crate::DEFAULT_ORG.into(),
            name: "Default".into(),
            created_at: now,
        };
        self.kv
            .exec(vec![
                Cmd::HSetNx {
                    key: self.keys.orgs(),
                    field: org.id.clone(),
                    value: to_json(&org),
                },
                Cmd::HSetNx {
                    key: self.keys.org_units(),
                    field: ou.id.clone(),
                    value: to_json(&ou),
                },
            ])
            .await?;
        if let Some(secret) = admin_secret {
            apikeys::ensure_bootstrap_key(self, secret).await?;
        }
        Ok(())
    }

    /// Remove the bootstrap admin key if it exists (true if it did): what the gateway does at
    /// start when `LEADSTREAM_BOOTSTRAP_ADMIN_KEY` is unset.
    pub async fn retire_bootstrap_key(&self) -> Result<bool, StoreError> {
        apikeys::retire_bootstrap_key(self).await
    }

    pub async fn create_org_unit(&self, org_id: &str, name: &str) -> Result<OrgUnit, StoreError> {
        let ou = OrgUnit {
            id: new_id("ou"),
            org_id: org_id.into(),
            name: name.into(),
            created_at: rfc3339_ms(now_ms()),
        };
        exec_one(
            &*self.kv,
            Cmd::HSet {
                key: self.keys.org_units(),
                field: ou.id.clone(),
                value: to_json(&ou),
            },
        )
        .await?;
        Ok(ou)
    }

    pub async fn org_unit(&self, id: &str) -> Result<Option<OrgUnit>, StoreError> {
        exec_one(
            &*self.kv,
            Cmd::HGet {
                key: self.keys.org_units(),
                field: id.into(),
            },
        )
        .await?
        .json()
    }

    pub async fn list_org_units(&self, org_id: &str) -> Result<Vec<OrgUnit>, StoreError> {
        let all: Vec<OrgUnit> = decode_pairs(
            exec_one(
                &*self.kv,
                Cmd::HGetAll {
                    key: self.keys.org_units(),
                },
            )
            .await?,
        )?;
        let mut mine: Vec<OrgUnit> = all.into_iter().filter(|o| o.org_id == org_id).collect();
        mine.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(mine)
    }

    // --- OU-scoped documents: shorthands of [`Catalog::documents`] ---

    /// Create or replace a document and bump the OU's config version, atomically.
    pub async fn put_doc<T: Serialize>(
        &self,
        ou: &str,
        collection: &'static str,
        id: &str,
        doc: &T,
    ) -> Result<(), StoreError> {
        self.documents(collection).put(ou, id, doc).await
    }

    pub async fn get_doc<T: DeserializeOwned>(
        &self,
        ou: &str,
        collection: &'static str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.documents(collection).get(ou, id).await
    }

    /// All documents of a collection, in id order (ids are time-sortable: creation order).
    pub async fn list_docs<T: DeserializeOwned>(
        &self,
        ou: &str,
        collection: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.documents(collection).list(ou).await
    }

    /// Delete a document; `false` when there was none.
    pub async fn delete_doc(
        &self,
        ou: &str,
        collection: &'static str,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.documents::<()>(collection).delete(ou, id).await
    }
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

pub(crate) fn parse_int(r: Reply) -> i64 {
    r.into_bytes()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn decode_pairs<T: DeserializeOwned>(r: Reply) -> Result<Vec<T>, StoreError> {
    r.into_pairs()
        .into_iter()
        .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests;
