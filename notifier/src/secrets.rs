//! Where webhook signing secrets come from: the OU's secrets in the catalog (the active one and,
//! during a rotation's grace period, the previous one), cached for a few seconds so a burst of
//! deliveries does not read the store once per attempt. A rotation reaches the notifier within
//! the cache's lifetime; since the previous secret keeps signing for the whole grace period,
//! receivers never see an unverifiable webhook.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leadstream_shared::store::StoreError;
use tokio::sync::Mutex;

use crate::signing::KeyRing;

#[async_trait::async_trait]
pub trait Secrets: Send + Sync + 'static {
    /// The keys to sign OU `ou`'s webhooks with, active first.
    async fn key_ring(&self, ou: &str) -> Result<KeyRing, StoreError>;
}

/// The raw secrets of an OU (`whsec_…`), active first.
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync + 'static {
    async fn secrets(&self, ou: &str) -> Result<Vec<String>, StoreError>;
}

/// A [`SecretSource`] with a short per-OU cache.
pub struct Cached<S> {
    source: S,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, KeyRing)>>,
}

impl<S: SecretSource> Cached<S> {
    pub fn new(source: S, ttl: Duration) -> Cached<S> {
        Cached {
            source,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl<S: SecretSource> Secrets for Cached<S> {
    async fn key_ring(&self, ou: &str) -> Result<KeyRing, StoreError> {
        if let Some((at, ring)) = self.cache.lock().await.get(ou) {
            if at.elapsed() < self.ttl {
                return Ok(ring.clone());
            }
        }
        let raw = self.source.secrets(ou).await?;
        let (ring, bad) = KeyRing::from_secrets(raw.iter().map(String::as_str));
        if bad > 0 {
            // The secret itself is never logged.
            tracing::warn!(
                ou,
                bad,
                "webhook signing secrets that are not whsec_<base64> were skipped"
            );
        }
        self.cache
            .lock()
            .await
            .insert(ou.to_string(), (Instant::now(), ring.clone()));
        Ok(ring)
    }
}

/// Fixed secrets for every OU (tests, benchmarks).
#[derive(Clone, Default)]
pub struct Fixed(pub Vec<String>);

#[async_trait::async_trait]
impl SecretSource for Fixed {
    async fn secrets(&self, _ou: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.0.clone())
    }
}

/// A shared handle.
pub fn cached<S: SecretSource>(source: S, ttl: Duration) -> Arc<dyn Secrets> {
    Arc::new(Cached::new(source, ttl))
}

/// The catalog's per-OU secrets (created on first use), with rotation grace.
pub struct CatalogSource {
    pub catalog: leadstream_shared::catalog::Catalog,
    pub grace_ms: i64,
}

#[async_trait::async_trait]
impl SecretSource for CatalogSource {
    async fn secrets(&self, ou: &str) -> Result<Vec<String>, StoreError> {
        self.catalog.signing_secrets(ou, self.grace_ms).await
    }
}
