//! OU-scoped configuration documents (rulesets, triggers, sequences, event types), typed.
//!
//! [`Catalog::documents`] hands out a [`Documents<T>`] for one collection; its operations speak
//! documents — list, get, put, insert-if-absent, delete — and hide the layout: one hash per OU
//! and collection (`Keys::docs`, field = document id, value = JSON) beside the OU's config
//! version (`Keys::config_version`). Every write bumps the version in the same atomic batch
//! (both keys share the OU's hash tag, so this holds on Redis Cluster too): that bump is how a
//! change is announced — services cache an OU's documents and notice a change with one read.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{parse_int, to_json, Catalog};
use crate::keys::Keys;
use crate::store::{exec_one, Cmd, Reply, Store, StoreError};

/// The documents of one collection (see [`super::collections`]), as values of type `T`.
pub struct Documents<T> {
    kv: Store,
    keys: Keys,
    collection: &'static str,
    doc: PhantomData<fn() -> T>,
}

impl<T> Clone for Documents<T> {
    fn clone(&self) -> Self {
        Documents {
            kv: self.kv.clone(),
            keys: self.keys.clone(),
            collection: self.collection,
            doc: PhantomData,
        }
    }
}

impl Catalog {
    /// The typed store of one collection of OU-scoped documents.
    pub fn documents<T>(&self, collection: &'static str) -> Documents<T> {
        Documents {
            kv: self.kv.clone(),
            keys: self.keys.clone(),
            collection,
            doc: PhantomData,
        }
    }

    /// The OU's configuration version: changes whenever any of its documents changes.
    pub async fn config_version(&self, ou: &str) -> Result<i64, StoreError> {
        let r = exec_one(
            &*self.kv,
            Cmd::Get {
                key: self.keys.config_version(ou),
            },
        )
        .await?;
        Ok(parse_int(r))
    }
}

impl<T> Documents<T> {
    /// The collection's name (`rulesets`, …).
    pub fn collection(&self) -> &'static str {
        self.collection
    }

    fn key(&self, ou: &str) -> String {
        self.keys.docs(ou, self.collection)
    }

    fn bump(&self, ou: &str) -> Cmd {
        Cmd::IncrBy {
            key: self.keys.config_version(ou),
            by: 1,
        }
    }

    /// Delete a document (`false` when there was none) and bump the config version, atomically.
    pub async fn delete(&self, ou: &str, id: &str) -> Result<bool, StoreError> {
        let del = Cmd::HDel {
            key: self.key(ou),
            field: id.into(),
        };
        let out = self
            .kv
            .exec_guarded(vec![], vec![del, self.bump(ou)])
            .await?;
        Ok(first_is_one(out))
    }
}

impl<T: DeserializeOwned> Documents<T> {
    /// Every document of the OU, in id order (ids are time-sortable: creation order); one that
    /// does not decode fails the whole read ([`StoreError::Corrupt`]).
    pub async fn list(&self, ou: &str) -> Result<Vec<T>, StoreError> {
        self.pairs(ou)
            .await?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Every document of the OU that decodes, with its id, in id order; the others are skipped
    /// (for readers that must keep working around one unreadable document).
    pub async fn list_readable(&self, ou: &str) -> Result<Vec<(String, T)>, StoreError> {
        Ok(self
            .pairs(ou)
            .await?
            .into_iter()
            .filter_map(|(id, v)| Some((id, serde_json::from_slice(&v).ok()?)))
            .collect())
    }

    async fn pairs(&self, ou: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let reply = exec_one(&*self.kv, Cmd::HGetAll { key: self.key(ou) }).await?;
        Ok(reply.into_pairs())
    }

    /// One document, `None` when there is none.
    pub async fn get(&self, ou: &str, id: &str) -> Result<Option<T>, StoreError> {
        exec_one(
            &*self.kv,
            Cmd::HGet {
                key: self.key(ou),
                field: id.into(),
            },
        )
        .await?
        .json()
    }
}

impl<T: Serialize> Documents<T> {
    /// Create or replace a document and bump the OU's config version, atomically.
    pub async fn put(&self, ou: &str, id: &str, doc: &T) -> Result<(), StoreError> {
        let set = Cmd::HSet {
            key: self.key(ou),
            field: id.into(),
            value: to_json(doc),
        };
        self.kv
            .exec_guarded(vec![], vec![set, self.bump(ou)])
            .await?;
        Ok(())
    }

    /// Create a document only if its id is free (`false`: one exists, nothing was written); the
    /// config version is bumped either way, in the same atomic batch.
    pub async fn insert(&self, ou: &str, id: &str, doc: &T) -> Result<bool, StoreError> {
        let set = Cmd::HSetNx {
            key: self.key(ou),
            field: id.into(),
            value: to_json(doc),
        };
        let out = self
            .kv
            .exec_guarded(vec![], vec![set, self.bump(ou)])
            .await?;
        Ok(first_is_one(out))
    }
}

fn first_is_one(replies: Option<Vec<Reply>>) -> bool {
    replies
        .unwrap_or_default()
        .first()
        .is_some_and(|r| r.as_int() == 1)
}
