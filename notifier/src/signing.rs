//! Standard Webhooks signing (<https://www.standardwebhooks.com>).
//!
//! Every webhook carries three headers:
//! - `webhook-id`: the fired record's id (stable across retries, so receivers can dedupe);
//! - `webhook-timestamp`: Unix seconds of this attempt;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per active
//!   secret, space-separated. During a secret rotation the OU has two secrets (the new one and
//!   the previous one within its grace period), so both signatures are sent and a receiver that
//!   still holds either secret can verify.
//!
//! Secrets look like `whsec_<base64>`; the HMAC key is the base64-decoded part. A secret without
//! the prefix is accepted as base64 too. The secret bytes never appear in `Debug` or logs.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("webhook secret is not valid base64 after the `whsec_` prefix")]
    NotBase64,
    #[error("webhook secret is empty")]
    Empty,
}

/// One HMAC key, decoded from a `whsec_…` secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Decode `whsec_<base64>` (or bare base64).
    pub fn from_secret(secret: &str) -> Result<SigningKey, SecretError> {
        let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret).trim();
        let key = B64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(SigningKey(key))
    }

    /// `v1,<base64 signature>` of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The keys an OU signs with right now: the active one first, then any previous one still in
/// its rotation grace period.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    pub fn new(keys: Vec<SigningKey>) -> KeyRing {
        KeyRing { keys }
    }

    /// Decode every secret; undecodable ones are skipped and counted in the returned number so
    /// the caller can report them (without logging the secret itself).
    pub fn from_secrets<'a>(secrets: impl IntoIterator<Item = &'a str>) -> (KeyRing, usize) {
        let mut bad = 0;
        let mut keys = Vec::new();
        for s in secrets {
            match SigningKey::from_secret(s) {
                Ok(k) if !keys.contains(&k) => keys.push(k),
                Ok(_) => {}
                Err(_) => bad += 1,
            }
        }
        (KeyRing { keys }, bad)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The headers for one attempt.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> SignedHeaders {
        let signature = self
            .keys
            .iter()
            .map(|k| k.sign(id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ");
        SignedHeaders {
            id: id.to_string(),
            timestamp,
            signature,
        }
    }
}

/// The three Standard Webhooks headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    /// Empty when the OU has no secret (the header is then omitted).
    pub signature: String,
}

/// A fresh random secret in the `whsec_` format (32 random bytes).
pub fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification's reference test vectors.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_specification_vector() {
        let key = SigningKey::from_secret(SPEC_SECRET).unwrap();
        assert_eq!(key.sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()), SPEC_SIG);
    }

    #[test]
    fn rotation_sends_both_signatures_space_separated() {
        let new = generate_secret();
        let (ring, bad) = KeyRing::from_secrets([new.as_str(), SPEC_SECRET]);
        assert_eq!(bad, 0);
        let h = ring.headers(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes());
        let parts: Vec<&str> = h.signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], SPEC_SIG);
        assert!(parts[0].starts_with("v1,"));
    }

    #[test]
    fn bad_secrets_are_counted_not_used_and_never_printed() {
        let (ring, bad) = KeyRing::from_secrets(["whsec_!!!", "whsec_"]);
        assert_eq!(bad, 2);
        assert!(ring.is_empty());
        let key = SigningKey::from_secret(SPEC_SECRET).unwrap();
        assert!(!format!("{key:?}").contains("MfKQ"));
    }

    #[test]
    fn duplicate_secrets_sign_once() {
        let (ring, _) = KeyRing::from_secrets([SPEC_SECRET, SPEC_SECRET]);
        let h = ring.headers("a", 1, b"{}");
        assert_eq!(h.signature.split(' ').count(), 1);
    }
}
