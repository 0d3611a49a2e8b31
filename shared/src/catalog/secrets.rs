//! Per-OU webhook signing secrets (`whsec_…`, Standard Webhooks). Rotation keeps the previous
//! secret signing beside the new one for a grace period, so receivers can switch without a gap.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{to_json, Catalog};
use crate::ids::now_ms;
use crate::store::{exec_one, Cmd, Guard, StoreError};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecret {
    pub secret: String,
    pub created_at_ms: i64,
    /// Set when a newer secret replaced this one; it keeps signing until `retired_at_ms + grace`.
    pub retired_at_ms: Option<i64>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("secret", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("retired_at_ms", &self.retired_at_ms)
            .finish()
    }
}

fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

impl Catalog {
    /// The OU's secrets, newest first; created on first use.
    async fn secrets_raw(&self, ou: &str) -> Result<(Vec<u8>, Vec<WebhookSecret>), StoreError> {
        let key = self.keys.webhook_secrets(ou);
        let first = vec![WebhookSecret {
            secret: new_secret(),
            created_at_ms: now_ms(),
            retired_at_ms: None,
        }];
        self.kv
            .exec(vec![Cmd::SetNx {
                key: key.clone(),
                value: to_json(&first),
                ttl_ms: None,
            }])
            .await?;
        let raw = exec_one(&*self.kv, Cmd::Get { key })
            .await?
            .into_bytes()
            .unwrap_or_default();
        let list = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((raw, list))
    }

    /// The secret currently used for new signatures.
    pub async fn webhook_secret(&self, ou: &str) -> Result<String, StoreError> {
        let (_, list) = self.secrets_raw(ou).await?;
        Ok(list.first().map(|s| s.secret.clone()).unwrap_or_default())
    }

    /// Every secret that signs right now: the current one and those retired less than `grace_ms`
    /// ago, newest first.
    pub async fn signing_secrets(
        &self,
        ou: &str,
        grace_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (_, list) = self.secrets_raw(ou).await?;
        let now = now_ms();
        Ok(list
            .into_iter()
            .filter(|s| s.retired_at_ms.is_none_or(|r| r + grace_ms > now))
            .map(|s| s.secret)
            .collect())
    }

    /// Make a new current secret; the old one keeps signing for the grace period. Returns the
    /// new secret.
    pub async fn rotate_webhook_secret(
        &self,
        ou: &str,
        grace_ms: i64,
    ) -> Result<String, StoreError> {
        loop {
            let (raw, mut list) = self.secrets_raw(ou).await?;
            let now = now_ms();
            for s in list.iter_mut() {
                s.retired_at_ms.get_or_insert(now);
            }
            list.retain(|s| s.retired_at_ms.is_none_or(|r| r + grace_ms > now));
            let fresh = new_secret();
            list.insert(
                0,
                WebhookSecret {
                    secret: fresh.clone(),
                    created_at_ms: now,
                    retired_at_ms: None,
                },
            );
            let key = self.keys.webhook_secrets(ou);
            let done = self
                .kv
                .exec_guarded(
                    vec![Guard::Equals(key.clone(), raw)],
                    vec![Cmd::Set {
                        key,
                        value: to_json(&list),
                        ttl_ms: None,
                    }],
                )
                .await?;
            if done.is_some() {
                return Ok(fresh);
            }
        }
    }
}
