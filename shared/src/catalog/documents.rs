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

use leadstream_domain::model::ruleset::Ruleset;
use leadstream_domain::model::sequence::SequenceTrigger;
use leadstream_domain::model::trigger::MilestoneTrigger;

use super::{collections, parse_int, to_json, Catalog};
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

    /// The scoring documents of each of `ous`, in one round trip (what the processor reloads
    /// when an OU's config version changed).
    pub async fn scoring_documents(
        &self,
        ous: &[&str],
    ) -> Result<Vec<ScoringDocuments>, StoreError> {
        const KINDS: [&str; 3] = [
            collections::RULESETS,
            collections::TRIGGERS,
            collections::SEQUENCES,
        ];
        let cmds = ous
            .iter()
            .flat_map(|ou| {
                KINDS.map(|c| Cmd::HGetAll {
                    key: self.keys.docs(ou, c),
                })
            })
            .collect();
        let mut replies = self.kv.exec(cmds).await?.into_iter();
        Ok(ous
            .iter()
            .map(|ou| ScoringDocuments {
                rulesets: readable(ou, "ruleset", replies.next()),
                triggers: readable(ou, "trigger", replies.next()),
                sequences: readable(ou, "sequence", replies.next()),
            })
            .collect())
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

/// An OU's rulesets, milestone triggers and sequence triggers, each in id (creation) order;
/// a document that no longer decodes is skipped with an error log rather than stopping every
/// event of the OU.
#[derive(Debug, Clone, Default)]
pub struct ScoringDocuments {
    pub rulesets: Vec<Ruleset>,
    pub triggers: Vec<MilestoneTrigger>,
    pub sequences: Vec<SequenceTrigger>,
}

/// The documents of one `HGETALL` reply that decode, sorted by id.
fn readable<T: DeserializeOwned>(ou: &str, what: &str, r: Option<Reply>) -> Vec<T> {
    let mut v: Vec<(String, T)> = Vec::new();
    for (id, bytes) in r.map(Reply::into_pairs).unwrap_or_default() {
        match serde_json::from_slice(&bytes) {
            Ok(d) => v.push((id, d)),
            Err(e) => tracing::error!(ou, id, error = %e, "unreadable {what} skipped"),
        }
    }
    // Ids are time-sortable: creation order, so firings come out in a stable order.
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(_, d)| d).collect()
}

fn first_is_one(replies: Option<Vec<Reply>>) -> bool {
    replies
        .unwrap_or_default()
        .first()
        .is_some_and(|r| r.as_int() == 1)
}
