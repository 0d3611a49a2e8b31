//! The state every handler shares, built once at start ([`AppState::build`]) from the config,
//! a store and an event sink. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::history::Histories;
use leadstream_shared::store::rescore::RescoreJobs;
use leadstream_shared::store::Store;

use crate::auth::Auth;
use crate::cache::TtlCache;
use crate::config::GatewayConfig;
use crate::dedupe::Claims;
use crate::error::ApiError;
use crate::payload::cdp::EventType;
use crate::publish::{store_unavailable, Pipeline};
use crate::ratelimit::{AddressLimiter, EventLimiter, KeyLimiter};
use crate::routes::cdp::Registry;
use crate::sink::EventSink;

pub struct Inner {
    pub cfg: Arc<GatewayConfig>,
    pub store: Store,
    pub keys: Keys,
    pub auth: Auth,
    /// The OUs' firing histories (read by the history routes).
    pub histories: Histories,
    /// Rescore and preview jobs (created, read and cancelled by `routes::rescore`).
    pub rescore: RescoreJobs,
    pub limiter: KeyLimiter,
    /// Events per second per OU and per key.
    pub events: EventLimiter,
    /// Per client address, requests whose credential needs a lookup.
    pub strangers: AddressLimiter,
    pub pipeline: Pipeline,
    pub claims: Claims,
    pub event_type_cache: TtlCache<String, Registry>,
    /// Cancelled when shutdown begins: `/readyz` turns 503.
    pub shutdown: CancellationToken,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn build(
        cfg: GatewayConfig,
        store: Store,
        sink: Arc<dyn EventSink>,
        shutdown: CancellationToken,
    ) -> AppState {
        let keys = cfg.common.keys();
        let retry = cfg.retry_after_secs();
        let catalog = Catalog::new(store.clone(), keys.clone());
        let auth = Auth::new(catalog.clone(), cfg.key_cache_ttl, retry);
        AppState(Arc::new(Inner {
            limiter: KeyLimiter::new(cfg.rate_limit_per_sec, cfg.rate_limit_burst),
            events: EventLimiter::new(cfg.ou_event_rate, cfg.key_event_rate),
            strangers: AddressLimiter::new(
                cfg.unauth_rate_limit_per_sec,
                cfg.unauth_rate_limit_burst,
            ),
            pipeline: Pipeline { sink, catalog },
            claims: Claims::new(
                store.clone(),
                keys.clone(),
                cfg.produce_timeout,
                cfg.dedupe_ttl,
            ),
            event_type_cache: TtlCache::new(cfg.key_cache_ttl),
            histories: Histories::new(store.clone(), keys.clone()),
            rescore: RescoreJobs::new(store.clone(), keys.clone()),
            auth,
            keys,
            store,
            cfg: Arc::new(cfg),
            shutdown,
        }))
    }

    /// The OU's registered CDP event types (cached for the key-cache TTL).
    pub async fn event_types(&self, ou: &str) -> Result<Registry, ApiError> {
        if let Some(hit) = self.event_type_cache.get(&ou.to_string()) {
            return Ok(hit);
        }
        let map = self
            .auth
            .catalog
            .documents::<EventType>(collections::EVENT_TYPES)
            .list_readable(ou)
            .await
            .map_err(|e| store_unavailable(e, self.cfg.retry_after_secs()))?
            .into_iter()
            .collect();
        let registry: Registry = Arc::new(map);
        self.event_type_cache
            .insert(ou.to_string(), registry.clone());
        Ok(registry)
    }
}
