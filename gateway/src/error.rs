//! The one HTTP error type of the gateway.
//!
//! Every handler returns `Result<_, ApiError>`. [`ApiError::into_response`] turns each variant
//! into a status code and a JSON body `{"error":{"code":"…","message":"…"}}` in one exhaustive
//! `match`, which is also where *retryable* failures (503 with `Retry-After`: the broker or the
//! store is unreachable, the producer queue is full) are told apart from *the client's fault*
//! (4xx: fix the request, do not retry it unchanged). Callers branch on variants, never on text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use leadstream_domain::model::ValidationError;

/// The message seed 000 prescribes when no active OU is set.
pub const ACTIVE_OU_NOT_SET: &str = "active OU not set";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: seed 000's exact answer when neither the key, a cookie nor a header names an OU.
    #[error("active OU not set")]
    ActiveOuNotSet,
    /// 400: the body is not JSON (or not gzip), or (seed 000) a field is missing or malformed.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 400 `validation_failed` with the faulty fields: a management or read request (rulesets,
    /// triggers, sequences, leads, history, deliveries) that seeds 003 and 004 answer with 400.
    /// The body adds the list: `{"error":{"code":"validation_failed","message":"…",
    /// "fields":[{"field":"score_threshold","message":"score_threshold must be an integer"}]}}`.
    #[error("{}", join_messages(.0))]
    InvalidFields(Vec<FieldError>),
    /// 401: no API key, or one that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key lacks the scope, the OU, or the source the request needs.
    #[error("{0}")]
    Forbidden(String),
    /// 404: a managed object (API key, OU, event type) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request collides with existing state in a way a retry will not fix (an
    /// `Idempotency-Key` or `externalEventId` reused for another body, a name that is taken).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body (or its decompressed form, or one event in it) is over a configured limit.
    #[error("request body is larger than {limit} bytes ({what})")]
    PayloadTooLarge { limit: usize, what: &'static str },
    /// 413: a batch or import body has more items than a request may carry.
    #[error("the request has more than {max} items; at most {max} are accepted per request")]
    TooManyItems { max: usize },
    /// 408: the body did not arrive within the read timeout.
    #[error("the request body did not arrive within {}s", .0.as_secs_f64())]
    RequestTimeout(std::time::Duration),
    /// 415: wrong `Content-Type` or unsupported `Content-Encoding`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed JSON that fails validation (seeds 001 and 002).
    #[error("{0}")]
    Validation(String),
    /// 429: the key's request rate is over its limit.
    #[error("rate limit exceeded for this API key; retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// 429: the OU's or the key's events per second are over their limit.
    #[error("event rate limit exceeded for {whom}; retry after {retry_after_secs}s")]
    EventRateLimited {
        whom: &'static str,
        retry_after_secs: u64,
    },
    /// 429: too many requests whose credential needed a lookup came from this client address.
    #[error("too many requests with unverified API keys from this address; retry after {retry_after_secs}s")]
    AddressRateLimited { retry_after_secs: u64 },
    /// 503 `request_in_progress`: another request with the same idempotency id (seed 001's
    /// `Idempotency-Key`, seed 002's `externalEventId`) is being stored right now and did not
    /// settle in time; retry the same request after `Retry-After` seconds (it will then be
    /// answered like the first one).
    #[error("{message}")]
    InProgress {
        message: String,
        retry_after_secs: u64,
    },
    /// 503: a dependency (broker, store) is unreachable or overloaded; nothing was written and
    /// the same request may be retried after `Retry-After` seconds.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// 500: a bug. The message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn malformed_json(err: impl std::fmt::Display) -> Self {
        ApiError::bad_request("invalid_json", format!("malformed JSON: {err}"))
    }

    /// [`ApiError::InvalidFields`] for one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidFields(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError::Unavailable {
            message: message.into(),
            retry_after_secs,
        }
    }

    /// True when the client should retry the same request later (503).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Unavailable { .. } | ApiError::InProgress { .. }
        )
    }

    /// The machine-readable code and the status, in one exhaustive match.
    pub fn parts(&self) -> (StatusCode, &'static str, Option<u64>) {
        match self {
            ApiError::ActiveOuNotSet => (StatusCode::BAD_REQUEST, "active_ou_not_set", None),
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, None),
            ApiError::InvalidFields(_) => (StatusCode::BAD_REQUEST, "validation_failed", None),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, None),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
            }
            ApiError::TooManyItems { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
            }
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout", None),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::Validation(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", None)
            }
            ApiError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after_secs),
            ),
            ApiError::EventRateLimited {
                retry_after_secs, ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after_secs),
            ),
            ApiError::AddressRateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after_secs),
            ),
            ApiError::InProgress {
                retry_after_secs, ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request_in_progress",
                Some(*retry_after_secs),
            ),
            ApiError::Unavailable {
                retry_after_secs, ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                Some(*retry_after_secs),
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }

    /// The text sent to the client: internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = self.parts();
        if status.is_server_error() {
            tracing::warn!(code, error = %self, "request failed");
        }
        let body = match &self {
            ApiError::InvalidFields(fields) => json!({"error": {
                "code": code,
                "message": self.public_message(),
                "fields": fields,
            }}),
            _ => json!({"error": {"code": code, "message": self.public_message()}}),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

/// One faulty request field; `message` is the whole sentence (`name is required`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn join_messages(fields: &[FieldError]) -> String {
    let messages: Vec<&str> = fields.iter().map(|f| f.message.as_str()).collect();
    messages.join("; ")
}

impl From<ValidationError> for FieldError {
    fn from(e: ValidationError) -> Self {
        FieldError::new(e.field.clone(), e.to_string())
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::InvalidFields(vec![e.into()])
    }
}

impl From<Vec<ValidationError>> for ApiError {
    fn from(e: Vec<ValidationError>) -> Self {
        ApiError::InvalidFields(e.into_iter().map(FieldError::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(err: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let resp = err.into_response();
        let status = resp.status();
        let retry = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn active_ou_is_the_seed_000_message() {
        let (status, retry, body) = body_of(ApiError::ActiveOuNotSet).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(retry.is_none());
        assert_eq!(body["error"]["message"], "active OU not set");
        assert_eq!(body["error"]["code"], "active_ou_not_set");
    }

    #[tokio::test]
    async fn retryable_errors_carry_retry_after() {
        let (status, retry, body) = body_of(ApiError::unavailable("broker down", 5)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("5"));
        assert_eq!(body["error"]["code"], "unavailable");
        let (status, retry, _) = body_of(ApiError::RateLimited {
            retry_after_secs: 0,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn in_progress_is_retryable_and_a_conflict_is_not() {
        let err = ApiError::InProgress {
            message: "being stored".into(),
            retry_after_secs: 2,
        };
        assert!(err.is_retryable());
        let (status, retry, body) = body_of(err).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(body["error"]["code"], "request_in_progress");
        let err = ApiError::conflict("idempotency_conflict", "other body");
        assert!(!err.is_retryable());
        let (status, retry, body) = body_of(err).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(retry.is_none());
        assert_eq!(body["error"]["code"], "idempotency_conflict");
    }

    #[tokio::test]
    async fn invalid_fields_list_every_field() {
        let err = ApiError::InvalidFields(vec![
            FieldError::new("name", "name is required"),
            FieldError::new("window_seconds", "window_seconds must be a number"),
        ]);
        let (status, retry, body) = body_of(err).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(retry.is_none());
        assert_eq!(
            body,
            json!({"error": {
                "code": "validation_failed",
                "message": "name is required; window_seconds must be a number",
                "fields": [
                    {"field": "name", "message": "name is required"},
                    {"field": "window_seconds", "message": "window_seconds must be a number"},
                ],
            }})
        );
    }

    #[tokio::test]
    async fn internal_details_are_not_sent() {
        let (status, _, body) = body_of(ApiError::Internal("secret detail".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["message"], "internal error");
    }
}
