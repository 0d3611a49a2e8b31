//! Crash-safe idempotency and dedupe records (seed 001 `Idempotency-Key`, seed 002
//! `(tenant, source, externalEventId)`).
//!
//! A record goes through two phases, each one atomic compare-and-apply (`exec_guarded`):
//!
//! ```text
//!   absent ──claim──▶ pending{at, event_id} ──broker ack──▶ done{event_id, fp}
//!                        │  publish failed: release (delete, if still ours)
//!                        └─ gateway crashed: the claim expires (TTL) or, once older than
//!                           the produce deadline, is retaken by the next retry
//! ```
//!
//! So a retry after a crash between claim and ack is never answered "duplicate" for an event
//! that was never published; at worst an event whose ack was lost is published twice, and the
//! processor's own dedupe (same producer id) drops the second copy. A request that meets a fresh
//! pending claim waits for it to settle (it is being published right now) and then answers like
//! the first request did.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use leadstream_shared::ids;
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{Cmd, Guard, Store, StoreError};

/// What is stored under a claim key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    Pending { at_ms: i64, event_id: String },
    Done { event_id: String, fp: String },
}

/// A claim this request holds: it must [`Claims::finish`] or [`Claims::release`] it.
#[derive(Debug, Clone)]
pub struct Claim {
    key: String,
    pending: Vec<u8>,
    /// When the claim was written (this gateway's clock): until it turns stale no other request
    /// may take it over, so [`Claims::finish_many`] can record the answer without a guard.
    at_ms: i64,
}

/// The outcome of trying to claim a producer id.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// This request owns the id: publish, then finish (or release on failure).
    Claimed(Claim),
    /// Already published: answer with the first event id. `fp` is the first request's
    /// fingerprint (seed 001 refuses a reused key with a different body).
    Done { event_id: String, fp: String },
    /// Another request is publishing it right now and did not settle in time.
    InProgress,
}

#[derive(Clone)]
pub struct Claims {
    store: Store,
    keys: Keys,
    /// A pending claim older than this is presumed dead (its request crashed).
    stale_after: Duration,
    done_ttl: Duration,
}

impl Claims {
    pub fn new(store: Store, keys: Keys, produce_timeout: Duration, done_ttl: Duration) -> Claims {
        Claims {
            store,
            keys,
            stale_after: produce_timeout + Duration::from_secs(2),
            done_ttl,
        }
    }

    /// The key for `(ou, scope, parts…)`; parts are JSON-encoded so no separator is ambiguous.
    pub fn key(&self, ou: &str, scope: &str, parts: &[&str]) -> String {
        let id = serde_json::to_string(parts).unwrap_or_default();
        self.keys.ingest_claim(ou, scope, &id)
    }

    /// Claim `key` for `event_id`, waiting (bounded) for a concurrent request to settle.
    pub async fn claim(&self, key: &str, event_id: &str) -> Result<Outcome, StoreError> {
        let deadline = tokio::time::Instant::now() + self.stale_after;
        loop {
            let now = ids::now_ms();
            let pending = encode(&Record::Pending {
                at_ms: now,
                event_id: event_id.to_string(),
            });
            let set = Cmd::Set {
                key: key.to_string(),
                value: pending.clone(),
                ttl_ms: Some(self.stale_after.as_millis() as u64 * 2),
            };
            let claimed = self
                .store
                .exec_guarded(vec![Guard::Absent(key.to_string())], vec![set.clone()])
                .await?;
            if claimed.is_some() {
                return Ok(Outcome::Claimed(Claim {
                    key: key.to_string(),
                    pending,
                    at_ms: now,
                }));
            }
            let current = leadstream_shared::store::exec_one(
                self.store.as_ref(),
                Cmd::Get {
                    key: key.to_string(),
                },
            )
            .await?;
            let Some(raw) = current.into_bytes() else {
                continue; // released or expired in between: try again
            };
            match decode(&raw) {
                Some(Record::Done { event_id, fp }) => return Ok(Outcome::Done { event_id, fp }),
                Some(Record::Pending { at_ms, .. })
                    if now - at_ms <= self.stale_after.as_millis() as i64 =>
                {
                    if tokio::time::Instant::now() >= deadline {
                        return Ok(Outcome::InProgress);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Stale pending (its request died) or unreadable: take it over atomically.
                _ => {
                    let taken = self
                        .store
                        .exec_guarded(vec![Guard::Equals(key.to_string(), raw)], vec![set])
                        .await?;
                    if taken.is_some() {
                        return Ok(Outcome::Claimed(Claim {
                            key: key.to_string(),
                            pending,
                            at_ms: now,
                        }));
                    }
                }
            }
        }
    }

    /// [`Claims::claim`] for many keys at once: one pipelined round trip of `SET NX` claims
    /// every key that is free (the usual case: new producer ids); only the keys that already
    /// exist (a duplicate, a request in flight, a stale claim) take the one-by-one path.
    /// Results in the order of `wanted` (`(key, event_id)` pairs).
    pub async fn claim_many(&self, wanted: &[(&str, &str)]) -> Vec<Result<Outcome, StoreError>> {
        let now = ids::now_ms();
        let ttl_ms = self.stale_after.as_millis() as u64 * 2;
        let pendings: Vec<Vec<u8>> = wanted
            .iter()
            .map(|(_, event_id)| {
                encode(&Record::Pending {
                    at_ms: now,
                    event_id: event_id.to_string(),
                })
            })
            .collect();
        let cmds = wanted
            .iter()
            .zip(&pendings)
            .map(|((key, _), pending)| Cmd::SetNx {
                key: key.to_string(),
                value: pending.clone(),
                ttl_ms: Some(ttl_ms),
            })
            .collect();
        // When the pipeline fails, no claim is known to be held: every key reports the error
        // (a claim that did land expires with its TTL, like a crashed request's).
        let failed = |message: String| -> Vec<Result<Outcome, StoreError>> {
            wanted
                .iter()
                .map(|_| Err(StoreError::Unavailable(message.clone())))
                .collect()
        };
        let replies = match self.store.exec(cmds).await {
            Ok(r) if r.len() == wanted.len() => r,
            Ok(r) => {
                return failed(format!(
                    "{} answers to a pipeline of {} claims",
                    r.len(),
                    wanted.len()
                ))
            }
            Err(e) => return failed(e.to_string()),
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (((key, event_id), pending), reply) in wanted.iter().zip(pendings).zip(replies) {
            out.push(match reply {
                leadstream_shared::store::Reply::Int(1) => Ok(Outcome::Claimed(Claim {
                    key: key.to_string(),
                    pending,
                    at_ms: now,
                })),
                _ => self.claim(key, event_id).await,
            });
        }
        out
    }

    /// The broker acknowledged: record the answer. If the claim was retaken meanwhile (this
    /// request outlived the stale deadline) and is still absent, the answer is recorded anyway.
    pub async fn finish(&self, claim: &Claim, event_id: &str, fp: &str) -> Result<(), StoreError> {
        let done = Cmd::Set {
            key: claim.key.clone(),
            value: encode(&Record::Done {
                event_id: event_id.to_string(),
                fp: fp.to_string(),
            }),
            ttl_ms: Some(self.done_ttl.as_millis() as u64),
        };
        let mine = Guard::Equals(claim.key.clone(), claim.pending.clone());
        if self
            .store
            .exec_guarded(vec![mine], vec![done.clone()])
            .await?
            .is_none()
        {
            let absent = Guard::Absent(claim.key.clone());
            self.store.exec_guarded(vec![absent], vec![done]).await?;
        }
        Ok(())
    }

    /// [`Claims::finish`] for many claims: the claims that are still fresh (more than a second
    /// before they could be presumed dead, so no other request can have taken them over, and
    /// only this request deletes them) get their answer in one pipelined round trip; an older
    /// one takes the guarded path. Results in order.
    pub async fn finish_many(&self, done: &[(&Claim, &str, &str)]) -> Vec<Result<(), StoreError>> {
        let fresh_until = self.stale_after.as_millis() as i64 - 1_000;
        let now = ids::now_ms();
        let (fresh, old): (Vec<usize>, Vec<usize>) =
            (0..done.len()).partition(|&i| now - done[i].0.at_ms < fresh_until);
        let mut out: Vec<Result<(), StoreError>> = done.iter().map(|_| Ok(())).collect();
        if !fresh.is_empty() {
            let cmds = fresh
                .iter()
                .map(|&i| {
                    let (claim, event_id, fp) = done[i];
                    Cmd::Set {
                        key: claim.key.clone(),
                        value: encode(&Record::Done {
                            event_id: event_id.to_string(),
                            fp: fp.to_string(),
                        }),
                        ttl_ms: Some(self.done_ttl.as_millis() as u64),
                    }
                })
                .collect();
            if let Err(e) = self.store.exec(cmds).await {
                let message = e.to_string();
                for &i in &fresh {
                    out[i] = Err(StoreError::Unavailable(message.clone()));
                }
            }
        }
        for i in old {
            let (claim, event_id, fp) = done[i];
            out[i] = self.finish(claim, event_id, fp).await;
        }
        out
    }

    /// Publishing failed: give the id back so a retry publishes it (only if still ours).
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        let mine = Guard::Equals(claim.key.clone(), claim.pending.clone());
        let del = Cmd::Del {
            key: claim.key.clone(),
        };
        self.store.exec_guarded(vec![mine], vec![del]).await?;
        Ok(())
    }
}

fn encode(r: &Record) -> Vec<u8> {
    serde_json::to_vec(r).unwrap_or_default()
}

fn decode(raw: &[u8]) -> Option<Record> {
    serde_json::from_slice(raw).ok()
}

/// A stable fingerprint of a JSON body (keys sorted, whitespace ignored).
pub fn fingerprint(value: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&canonical)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadstream_shared::store::MemoryKv;
    use std::sync::Arc;

    fn claims(timeout_ms: u64) -> Claims {
        Claims::new(
            Arc::new(MemoryKv::new()),
            Keys::new("t"),
            Duration::from_millis(timeout_ms),
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn claim_finish_then_done() {
        let c = claims(100);
        let key = c.key("ou", "cdp", &["src", "x1"]);
        let Outcome::Claimed(claim) = c.claim(&key, "evt_1").await.unwrap() else {
            panic!("first claim must win")
        };
        c.finish(&claim, "evt_1", "fp").await.unwrap();
        match c.claim(&key, "evt_2").await.unwrap() {
            Outcome::Done { event_id, fp } => {
                assert_eq!(event_id, "evt_1");
                assert_eq!(fp, "fp");
            }
            other => panic!("expected done, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn claim_many_then_finish_many_records_every_answer() {
        let c = claims(100);
        let k1 = c.key("ou", "cdp", &["src", "a"]);
        let k2 = c.key("ou", "cdp", &["src", "b"]);
        // b is already done: claim_many reports it, claims only a.
        let Outcome::Claimed(b) = c.claim(&k2, "evt_b").await.unwrap() else {
            panic!()
        };
        c.finish(&b, "evt_b", "fp_b").await.unwrap();
        let got = c.claim_many(&[(&k1, "evt_a"), (&k2, "evt_b2")]).await;
        let Ok(Outcome::Claimed(a)) = &got[0] else {
            panic!("a is new: {:?}", got[0])
        };
        assert!(matches!(&got[1], Ok(Outcome::Done { event_id, .. }) if event_id == "evt_b"));
        // A fresh claim and one old enough to need the guarded path both end done.
        let mut old = a.clone();
        old.at_ms -= 10_000_000;
        for claim in [a, &old] {
            let r = c.finish_many(&[(claim, "evt_a", "fp_a")]).await;
            assert!(r[0].is_ok());
            match c.claim(&k1, "evt_x").await.unwrap() {
                Outcome::Done { event_id, fp } => {
                    assert_eq!((event_id.as_str(), fp.as_str()), ("evt_a", "fp_a"))
                }
                other => panic!("expected done, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn released_claims_are_claimable_again() {
        let c = claims(100);
        let key = c.key("ou", "cdp", &["src", "x1"]);
        let Outcome::Claimed(claim) = c.claim(&key, "evt_1").await.unwrap() else {
            panic!()
        };
        c.release(&claim).await.unwrap();
        assert!(matches!(
            c.claim(&key, "evt_2").await.unwrap(),
            Outcome::Claimed(_)
        ));
    }

    #[tokio::test]
    async fn a_dead_pending_claim_is_retaken_not_reported_duplicate() {
        // stale_after = produce timeout (1 ms) + 2 s: simulate an old pending record directly.
        let c = claims(1);
        let key = c.key("ou", "idem", &["src", "k"]);
        let old = encode(&Record::Pending {
            at_ms: ids::now_ms() - 60_000,
            event_id: "evt_dead".into(),
        });
        c.store
            .exec(vec![Cmd::Set {
                key: key.clone(),
                value: old,
                ttl_ms: None,
            }])
            .await
            .unwrap();
        assert!(matches!(
            c.claim(&key, "evt_new").await.unwrap(),
            Outcome::Claimed(_)
        ));
    }

    #[test]
    fn fingerprints_ignore_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[2], "a":1 }"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }
}
