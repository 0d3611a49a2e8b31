//! Who is calling, and for which OU.
//!
//! 1. [`credentials`] reads the presented key (`X-API-Key`, `Authorization: Bearer`,
//!    `Authorization: Basic`) and hashes it;
//! 2. [`Auth::authenticate`] finds the key by hash — in the in-memory cache first (a verified
//!    key costs no Redis round trip for `LEADSTREAM_KEY_CACHE_TTL`), then in the
//!    shared catalog (`Catalog::authenticate`, constant-time hash comparison); unknown → 401,
//!    and the unknown hash is remembered for the same TTL (a stranger repeating a made-up key
//!    costs Redis nothing). Before a lookup that would reach Redis, the client's address is
//!    counted against `LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC` ([`crate::server`]'s guard), so
//!    strangers cycling made-up keys are refused with 429 before any Redis lookup;
//! 3. [`KeyInfo::require`] checks the scope (admin implies every scope) and
//!    [`KeyInfo::require_source`] the source binding → 403;
//! 4. [`Auth::active_ou`] settles the OU, first match wins:
//!    1. the `X-Leadstream-OU` header (one request);
//!    2. the `leadstream_ou` cookie set by `POST /org-units/active` (one browser session);
//!    3. the OU `POST /org-units/active` last remembered for the key, server-side (seed 000's
//!       two separate curl calls, no cookie jar);
//!    4. the key's only OU binding;
//!    5. (bootstrap admin key only) `unit_default`;
//!
//!    none → 400 "active OU not set". The OU must exist in the key's organisation and be one
//!    the key is bound to (if bound) → 403.

pub mod credentials;

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use leadstream_shared::catalog::apikeys::BOOTSTRAP_KEY_ID;
use leadstream_shared::catalog::Catalog;
use leadstream_shared::metric;
use leadstream_shared::DEFAULT_OU;

use crate::cache::TtlCache;
use crate::error::ApiError;
use crate::metrics::GatewayCounter;
use crate::payload::Tenant;
use crate::publish::store_unavailable;

pub use leadstream_shared::catalog::{ApiKey as KeyInfo, OrgUnit, Scope};

/// The cookie `POST /org-units/active` sets.
pub const OU_COOKIE: &str = "leadstream_ou";
/// The header that names the active OU for one request.
pub const OU_HEADER: &str = "x-leadstream-ou";

/// The scope's name as the API spells it.
pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Ingest => "ingest",
        Scope::Read => "read",
        Scope::Admin => "admin",
    }
}

/// What the gateway checks on a key, beyond the catalog's own helpers.
pub trait KeyChecks {
    /// 403 unless the key has `scope` (admin implies every scope).
    fn require(&self, scope: Scope) -> Result<(), ApiError>;
    /// 403 when the key is bound to a source and `source` is another one.
    fn require_source(&self, source: &str) -> Result<(), ApiError>;
    /// The bootstrap admin key may use `unit_default` without an active OU.
    fn is_bootstrap(&self) -> bool;
}

impl KeyChecks for KeyInfo {
    fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this API key lacks the {} scope",
                scope_name(scope)
            )))
        }
    }

    fn is_bootstrap(&self) -> bool {
        self.id == BOOTSTRAP_KEY_ID
    }

    fn require_source(&self, source: &str) -> Result<(), ApiError> {
        match &self.source_id {
            Some(bound) if bound != source => Err(ApiError::Forbidden(format!(
                "source {source:?} is not the source this API key is bound to"
            ))),
            _ => Ok(()),
        }
    }
}

pub struct Auth {
    pub catalog: Catalog,
    keys: TtlCache<String, Arc<KeyInfo>>,
    /// Hashes that matched no key (negative cache).
    unknown: TtlCache<String, ()>,
    ous: TtlCache<String, Option<Arc<OrgUnit>>>,
    retry_after_secs: u64,
}

impl Auth {
    pub fn new(catalog: Catalog, ttl: std::time::Duration, retry_after_secs: u64) -> Auth {
        Auth {
            catalog,
            keys: TtlCache::new(ttl),
            unknown: TtlCache::new(ttl),
            ous: TtlCache::new(ttl),
            retry_after_secs,
        }
    }

    /// The calling key, or 401.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyInfo>, ApiError> {
        let candidate = credentials::presented(headers)?;
        let hash = candidate.hash();
        if let Some(k) = self.cached(&hash) {
            metric::counter!(GatewayCounter::KeyLookups, "cache_hit").increment(1);
            return Ok(k);
        }
        if self.unknown.get(&hash).is_some() {
            metric::counter!(GatewayCounter::KeyLookups, "unknown_cached").increment(1);
            return Err(unknown_key());
        }
        let found = self
            .catalog
            .authenticate(candidate.expose())
            .await
            .map_err(|e| store_unavailable(e, self.retry_after_secs))?;
        match found {
            Some(k) => {
                metric::counter!(GatewayCounter::KeyLookups, "store_hit").increment(1);
                let k = Arc::new(k);
                self.keys.insert(hash, k.clone());
                Ok(k)
            }
            None => {
                metric::counter!(GatewayCounter::KeyLookups, "unknown").increment(1);
                self.unknown.insert(hash, ());
                Err(unknown_key())
            }
        }
    }

    /// The verified key cached under this secret hash, if any.
    pub fn cached(&self, hash: &str) -> Option<Arc<KeyInfo>> {
        self.keys
            .get(&hash.to_string())
            .filter(|k| credentials::same_hash(&k.secret_hash, hash))
    }

    /// Whether authenticating `headers` would need no Redis lookup (no credential, an ambiguous
    /// one, or one this gateway verified or refused within the cache TTL).
    pub fn settled_without_lookup(&self, headers: &HeaderMap) -> bool {
        match credentials::presented(headers) {
            Err(_) => true,
            Ok(c) => {
                let hash = c.hash();
                self.cached(&hash).is_some() || self.unknown.get(&hash).is_some()
            }
        }
    }

    /// Forget cached copies of a key (after it was revoked here).
    pub fn forget_key(&self, id: &str) {
        self.keys.remove_where(|k| k.id == id);
    }

    /// Forget a cached OU lookup (after it was created here).
    pub fn forget_ou(&self, id: &str) {
        self.ous.remove(&id.to_string());
    }

    /// The OU, from cache or store.
    pub async fn org_unit(&self, id: &str) -> Result<Option<Arc<OrgUnit>>, ApiError> {
        if let Some(hit) = self.ous.get(&id.to_string()) {
            return Ok(hit);
        }
        let ou = self
            .catalog
            .org_unit(id)
            .await
            .map_err(|e| store_unavailable(e, self.retry_after_secs))?
            .map(Arc::new);
        self.ous.insert(id.to_string(), ou.clone());
        Ok(ou)
    }

    /// 403 unless `key` may act in OU `ou_id` (it exists in the key's org, and the key is bound
    /// to it when bound at all).
    pub async fn check_ou(&self, key: &KeyInfo, ou_id: &str) -> Result<Tenant, ApiError> {
        if !key.allows_ou(ou_id) {
            return Err(ApiError::Forbidden(format!(
                "this API key may not use OU {ou_id:?}"
            )));
        }
        match self.org_unit(ou_id).await? {
            Some(ou) if ou.org_id == key.org_id => Ok(Tenant {
                org_id: ou.org_id.clone(),
                ou_id: ou.id.clone(),
            }),
            _ => Err(ApiError::Forbidden(format!(
                "OU {ou_id:?} does not exist in this API key's organisation"
            ))),
        }
    }

    /// The active OU of a request (see the module header).
    pub async fn active_ou(&self, headers: &HeaderMap, key: &KeyInfo) -> Result<Tenant, ApiError> {
        let mut chosen = header_ou(headers).or_else(|| cookie_ou(headers));
        // A key bound to one OU can only have remembered that OU: no lookup for it.
        if chosen.is_none() && key.ou_ids.len() != 1 {
            chosen = self
                .catalog
                .remembered_active_ou(&key.id)
                .await
                .map_err(|e| store_unavailable(e, self.retry_after_secs))?;
        }
        let chosen = chosen
            .or_else(|| (key.ou_ids.len() == 1).then(|| key.ou_ids[0].clone()))
            .or_else(|| key.is_bootstrap().then(|| DEFAULT_OU.to_string()));
        match chosen {
            Some(ou) => self.check_ou(key, &ou).await,
            None => Err(ApiError::ActiveOuNotSet),
        }
    }
}

fn unknown_key() -> ApiError {
    ApiError::Unauthorized("unknown or revoked API key".into())
}

fn header_ou(headers: &HeaderMap) -> Option<String> {
    headers
        .get(OU_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The `leadstream_ou` cookie, if any.
pub fn cookie_ou(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == OU_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_and_header_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; leadstream_ou=unit_x; c=d"),
        );
        assert_eq!(cookie_ou(&h).as_deref(), Some("unit_x"));
        h.insert(OU_HEADER, HeaderValue::from_static(" unit_y "));
        assert_eq!(header_ou(&h).as_deref(), Some("unit_y"));
        assert_eq!(cookie_ou(&HeaderMap::new()), None);
    }
}
