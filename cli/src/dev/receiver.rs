//! The built-in webhook receiver of `leadstream dev`, served on the gateway's port so a
//! walk-through needs no second tool:
//!
//! - `POST /dev/webhooks/{name}` takes a webhook, checks its Standard Webhooks signature against
//!   the OU's signing secrets (`unit_default`, or `?ou=` on the webhook URL), logs one line and
//!   keeps the last [`KEEP`] in memory;
//! - `GET /dev/webhooks` lists them, oldest first; `?at_least=N` first waits (up to
//!   [`MAX_WAIT`]) until N have arrived since start, so a script can wait for the pipeline.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use leadstream_notifier::signing::{SigningKey, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use leadstream_shared::catalog::Catalog;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How many received webhooks are kept.
pub const KEEP: usize = 100;
/// Longest wait of `GET /dev/webhooks?at_least=N`.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// One received webhook, as `GET /dev/webhooks` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// The `{name}` of the URL it was posted to.
    pub name: String,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    /// `verified`, `invalid` or `unsigned`.
    pub signature: &'static str,
    /// The JSON body (a string when the body was not JSON).
    pub payload: Value,
}

#[derive(Clone)]
struct Receiver {
    kept: Arc<Mutex<VecDeque<Received>>>,
    /// How many webhooks arrived since start.
    count: watch::Sender<usize>,
    catalog: Catalog,
    grace_ms: i64,
    shutdown: CancellationToken,
}

/// The receiver's routes. `grace_ms`: how long a rotated-out secret still signs (the notifier's
/// `LEADSTREAM_WEBHOOK_SECRET_GRACE`).
pub fn router(catalog: Catalog, grace_ms: i64, shutdown: CancellationToken) -> Router {
    let st = Receiver {
        kept: Arc::new(Mutex::new(VecDeque::new())),
        count: watch::Sender::new(0),
        catalog,
        grace_ms,
        shutdown,
    };
    Router::new()
        .route("/dev/webhooks", get(list))
        .route("/dev/webhooks/{name}", post(receive))
        .with_state(st)
}

async fn receive(
    State(st): State<Receiver>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (id, ts, sig) = (
        header(HEADER_ID),
        header(HEADER_TIMESTAMP),
        header(HEADER_SIGNATURE),
    );
    let ou = q
        .get("ou")
        .map_or(leadstream_shared::DEFAULT_OU, String::as_str);
    let signature = match (&id, &ts, &sig) {
        (Some(id), Some(ts), Some(sig)) => {
            let secrets = st
                .catalog
                .signing_secrets(ou, st.grace_ms)
                .await
                .unwrap_or_default();
            if verify(&secrets, id, ts, &body, sig) {
                "verified"
            } else {
                "invalid"
            }
        }
        _ => "unsigned",
    };
    let payload = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    tracing::info!(
        receiver = %name,
        webhook_id = id.as_deref().unwrap_or("-"),
        signature,
        trigger = payload["trigger"]["name"].as_str().unwrap_or("-"),
        trigger_type = payload["trigger"]["type"].as_str().unwrap_or("-"),
        "dev receiver: webhook received"
    );
    {
        let mut kept = st.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == KEEP {
            kept.pop_front();
        }
        kept.push_back(Received {
            name,
            webhook_id: id,
            webhook_timestamp: ts,
            signature,
            payload,
        });
    }
    st.count.send_modify(|n| *n += 1);
    StatusCode::NO_CONTENT
}

/// Whether any `v1,<sig>` in the header matches one of the secrets.
fn verify(secrets: &[String], id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let Ok(ts) = ts.trim().parse::<i64>() else {
        return false;
    };
    secrets
        .iter()
        .filter_map(|s| SigningKey::from_secret(s).ok())
        .map(|k| k.sign(id, ts, body))
        .any(|expected| header.split_whitespace().any(|got| got == expected))
}

async fn list(
    State(st): State<Receiver>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let at_least = match q.get("at_least") {
        None => 0,
        Some(raw) => raw.parse::<usize>().map_err(|_| {
            let message = format!("`at_least` must be a whole number, got {raw:?}");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"code": "bad_request", "message": message}})),
            )
        })?,
    };
    let mut rx = st.count.subscribe();
    tokio::select! {
        _ = tokio::time::timeout(MAX_WAIT, rx.wait_for(|n| *n >= at_least)) => {}
        _ = st.shutdown.cancelled() => {}
    }
    let received = *rx.borrow();
    let webhooks: Vec<Received> = st
        .kept
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    Ok(Json(json!({"received": received, "webhooks": webhooks})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_against_any_current_secret() {
        let secret = leadstream_notifier::signing::generate_secret();
        let other = leadstream_notifier::signing::generate_secret();
        let key = SigningKey::from_secret(&secret).unwrap();
        let sig = key.sign("msg_1", 1700000000, b"{}");
        let both = vec![other.clone(), secret.clone()];
        assert!(verify(&both, "msg_1", "1700000000", b"{}", &sig));
        assert!(verify(
            &both,
            "msg_1",
            "1700000000",
            b"{}",
            &format!("v1,bogus {sig}")
        ));
        assert!(!verify(&[other], "msg_1", "1700000000", b"{}", &sig));
        assert!(!verify(&both, "msg_1", "1700000001", b"{}", &sig));
        assert!(!verify(&both, "msg_1", "soon", b"{}", &sig));
    }
}
