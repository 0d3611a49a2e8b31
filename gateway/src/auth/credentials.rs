//! Reading the presented API key from a request: `X-API-Key: <key>`,
//! `Authorization: Bearer <key>`, or `Authorization: Basic base64(user:password)` with the key
//! as the password, or as the user when the password is empty.
//!
//! A request presents exactly one candidate: `X-API-Key` together with `Authorization` is a 400
//! (`ambiguous_credentials`), so a stranger's request costs at most one lookup, never one per
//! header.
//!
//! The key is wrapped in [`Presented`], whose `Debug` is redacted, and is hashed (SHA-256) at
//! once: the hash is what is looked up, cached and compared (in constant time).

use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Longest key accepted (anything longer is not one of ours).
const MAX_KEY_LEN: usize = 256;

/// A secret as presented by the client. Never printed.
pub struct Presented(String);

impl Presented {
    pub fn new(s: impl Into<String>) -> Presented {
        Presented(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the secret: the form keys are stored, looked up and cached under.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presented([redacted])")
    }
}

/// The one candidate secret of a request: none → 401, several → 400.
pub fn presented(headers: &HeaderMap) -> Result<Presented, ApiError> {
    if headers.contains_key("x-api-key") && headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::bad_request(
            "ambiguous_credentials",
            "send one credential: X-API-Key or Authorization, not both",
        ));
    }
    if headers.get_all("x-api-key").iter().count() > 1
        || headers.get_all(header::AUTHORIZATION).iter().count() > 1
    {
        return Err(ApiError::bad_request(
            "ambiguous_credentials",
            "send one credential header, once",
        ));
    }
    let mut out = Vec::new();
    if let Some(v) = headers.get("x-api-key") {
        let v = v
            .to_str()
            .map_err(|_| ApiError::Unauthorized("X-API-Key is not valid text".into()))?
            .trim();
        if !v.is_empty() {
            out.push(Presented::new(v));
        }
    }
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v
            .to_str()
            .map_err(|_| ApiError::Unauthorized("Authorization is not valid text".into()))?
            .trim();
        let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if !rest.is_empty() {
                out.push(Presented::new(rest));
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::Unauthorized("Authorization: Basic is not valid base64".into())
                })?;
            let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            let key = if password.is_empty() { user } else { password };
            if !key.is_empty() {
                out.push(Presented::new(key));
            }
        } else {
            return Err(ApiError::Unauthorized(
                "Authorization must be Bearer <key> or Basic <credentials>".into(),
            ));
        }
    }
    out.retain(|p| p.0.len() <= MAX_KEY_LEN);
    out.pop().ok_or_else(|| {
        ApiError::Unauthorized(
            "missing API key: send X-API-Key, Authorization: Bearer or Authorization: Basic".into(),
        )
    })
}

/// Constant-time equality of two hex digests.
pub fn same_hash(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn secrets(h: &HeaderMap) -> Vec<String> {
        vec![presented(h).unwrap().expose().to_string()]
    }

    #[test]
    fn all_three_forms() {
        assert_eq!(secrets(&with("x-api-key", "k1")), ["k1"]);
        assert_eq!(secrets(&with("authorization", "Bearer k2")), ["k2"]);
        let basic = base64::engine::general_purpose::STANDARD.encode("k3:");
        assert_eq!(
            secrets(&with("authorization", &format!("Basic {basic}"))),
            ["k3"]
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("api:k4");
        assert_eq!(
            secrets(&with("authorization", &format!("basic {basic}"))),
            ["k4"]
        );
    }

    #[test]
    fn several_credentials_are_400() {
        let mut h = with("x-api-key", "k1");
        h.insert("authorization", HeaderValue::from_static("Bearer k2"));
        match presented(&h) {
            Err(e @ ApiError::BadRequest { .. }) => {
                assert_eq!(e.parts().1, "ambiguous_credentials")
            }
            other => panic!("expected 400, got {other:?}"),
        }
        let mut h = with("x-api-key", "k1");
        h.append("x-api-key", HeaderValue::from_static("k2"));
        assert!(matches!(presented(&h), Err(ApiError::BadRequest { .. })));
    }

    #[test]
    fn missing_or_garbled_is_401() {
        assert!(matches!(
            presented(&HeaderMap::new()),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(presented(&with("authorization", "Basic %%%")).is_err());
        assert!(presented(&with("authorization", "Digest x")).is_err());
        assert!(presented(&with("authorization", "Bearer ")).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let p = Presented::new("sk_live_secret");
        assert!(!format!("{p:?}").contains("secret"));
        assert!(same_hash(
            &p.hash(),
            &Presented::new("sk_live_secret").hash()
        ));
        assert!(!same_hash(&p.hash(), &Presented::new("other").hash()));
    }
}
