//! API keys: a random secret shown once at creation; only its SHA-256 is stored.
//!
//! A presented secret is looked up by its hash and the stored hash is compared in constant time.
//! (The secret has 256 bits of entropy, so a fast hash is the right tool: there is nothing to
//! brute-force, unlike a password.) The bootstrap admin key from `LEADSTREAM_BOOTSTRAP_ADMIN_KEY`
//! is stored the same way under a fixed id.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{to_json, Catalog};
use crate::ids::{new_id, now_ms, rfc3339_ms};
use crate::store::{exec_one, Cmd, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

/// A stored key. `secret_hash` never leaves the service (not serialised in API answers: the
/// gateway maps this to its own view).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Empty: every OU of the organisation.
    #[serde(default)]
    pub ou_ids: Vec<String>,
    pub source_id: Option<String>,
    /// First characters of the secret, to recognise it in a list.
    pub secret_prefix: String,
    pub secret_hash: String,
    pub created_at: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("ou_ids", &self.ou_ids)
            .field("source_id", &self.source_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl ApiKey {
    pub fn has_scope(&self, s: Scope) -> bool {
        // Admin implies the others.
        self.scopes.contains(&s) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether the key may act on this OU.
    pub fn allows_ou(&self, ou: &str) -> bool {
        self.ou_ids.is_empty() || self.ou_ids.iter().any(|o| o == ou)
    }
}

/// What the caller asks for when creating a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub ou_ids: Vec<String>,
    pub source_id: Option<String>,
}

pub const BOOTSTRAP_KEY_ID: &str = "key_bootstrap_admin";

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "lsk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Catalog {
    /// Create a key; the secret is returned once and never stored.
    pub async fn create_api_key(
        &self,
        org_id: &str,
        req: NewApiKey,
    ) -> Result<(ApiKey, String), StoreError> {
        let secret = new_secret();
        let key = ApiKey {
            id: new_id("key"),
            org_id: org_id.into(),
            name: req.name,
            scopes: req.scopes,
            ou_ids: req.ou_ids,
            source_id: req.source_id,
            secret_prefix: secret.chars().take(8).collect(),
            secret_hash: hash_secret(&secret),
            created_at: rfc3339_ms(now_ms()),
        };
        self.store_key(&key).await?;
        Ok((key, secret))
    }

    async fn store_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.kv
            .exec_guarded(
                vec![],
                vec![
                    Cmd::HSet {
                        key: self.keys.api_keys(),
                        field: key.id.clone(),
                        value: to_json(key),
                    },
                    Cmd::HSet {
                        key: self.keys.api_key_hashes(),
                        field: key.secret_hash.clone(),
                        value: key.id.clone().into_bytes(),
                    },
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let pairs = exec_one(
            &*self.kv,
            Cmd::HGetAll {
                key: self.keys.api_keys(),
            },
        )
        .await?
        .into_pairs();
        let mut keys = Vec::new();
        for (_, v) in pairs {
            let k: ApiKey =
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if k.org_id == org_id {
                keys.push(k);
            }
        }
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        exec_one(
            &*self.kv,
            Cmd::HGet {
                key: self.keys.api_keys(),
                field: id.into(),
            },
        )
        .await?
        .json()
    }

    /// Revoke a key of `org_id`; `false` when there is no such key in that organisation.
    pub async fn delete_api_key(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(key) = self.api_key(id).await? else {
            return Ok(false);
        };
        if key.org_id != org_id {
            return Ok(false);
        }
        self.kv
            .exec_guarded(
                vec![],
                vec![
                    Cmd::HDel {
                        key: self.keys.api_keys(),
                        field: key.id.clone(),
                    },
                    Cmd::HDel {
                        key: self.keys.api_key_hashes(),
                        field: key.secret_hash.clone(),
                    },
                    Cmd::HDel {
                        key: self.keys.active_ous(),
                        field: key.id.clone(),
                    },
                ],
            )
            .await?;
        Ok(true)
    }

    /// Remember `ou_id` as the key's active OU (`POST /org-units/active`), so that later calls
    /// with the same key and no cookie act in it. The caller has checked the key may use it.
    pub async fn remember_active_ou(&self, key_id: &str, ou_id: &str) -> Result<(), StoreError> {
        exec_one(
            &*self.kv,
            Cmd::HSet {
                key: self.keys.active_ous(),
                field: key_id.into(),
                value: ou_id.as_bytes().to_vec(),
            },
        )
        .await?;
        Ok(())
    }

    /// The OU last remembered for the key, if any.
    pub async fn remembered_active_ou(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        Ok(exec_one(
            &*self.kv,
            Cmd::HGet {
                key: self.keys.active_ous(),
                field: key_id.into(),
            },
        )
        .await?
        .into_bytes()
        .and_then(|b| String::from_utf8(b).ok()))
    }

    /// The key a presented secret belongs to, if any. One round trip for the hash index, one for
    /// the record; callers cache the answer briefly.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        if secret.is_empty() || secret.len() > 512 {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let id = exec_one(
            &*self.kv,
            Cmd::HGet {
                key: self.keys.api_key_hashes(),
                field: hash.clone(),
            },
        )
        .await?
        .into_bytes();
        let Some(id) = id.and_then(|b| String::from_utf8(b).ok()) else {
            return Ok(None);
        };
        let Some(key) = self.api_key(&id).await? else {
            return Ok(None);
        };
        let same: bool = key.secret_hash.as_bytes().ct_eq(hash.as_bytes()).into();
        Ok(same.then_some(key))
    }
}

/// Remove the bootstrap admin key, if present (the gateway starts without
/// `LEADSTREAM_BOOTSTRAP_ADMIN_KEY`): the secret stops working once it is no longer configured.
pub(super) async fn retire_bootstrap_key(cat: &Catalog) -> Result<bool, StoreError> {
    cat.delete_api_key(crate::DEFAULT_ORG, BOOTSTRAP_KEY_ID)
        .await
}

/// Ensure the bootstrap admin key exists with exactly this secret (a changed secret replaces the
/// old one).
pub(super) async fn ensure_bootstrap_key(cat: &Catalog, secret: &str) -> Result<(), StoreError> {
    let hash = hash_secret(secret);
    if let Some(existing) = cat.api_key(BOOTSTRAP_KEY_ID).await? {
        if existing.secret_hash == hash && existing.secret_prefix.is_empty() {
            return Ok(());
        }
        exec_one(
            &*cat.kv,
            Cmd::HDel {
                key: cat.keys.api_key_hashes(),
                field: existing.secret_hash,
            },
        )
        .await?;
    }
    let key = ApiKey {
        id: BOOTSTRAP_KEY_ID.into(),
        org_id: crate::DEFAULT_ORG.into(),
        name: "bootstrap admin".into(),
        scopes: vec![Scope::Admin, Scope::Ingest, Scope::Read],
        ou_ids: vec![],
        source_id: None,
        // Never listed with any part of its secret.
        secret_prefix: String::new(),
        secret_hash: hash,
        created_at: rfc3339_ms(now_ms()),
    };
    cat.store_key(&key).await
}
