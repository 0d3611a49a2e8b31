//! The gateway's public HTTP API as a test client uses it: management (rulesets, triggers,
//! sequences), ingest (seed 001 `POST /v1/events/ingest` with `Idempotency-Key`, seed 000
//! `POST /ingest`) and the read routes (`/leads`, `/milestone-events`, `/sequence-events`,
//! `/deliveries`), all with the bootstrap admin key on the default OU.

use std::time::Duration;

use serde_json::{json, Value};

#[derive(Clone)]
pub struct Api {
    base: String,
    key: String,
    /// The OU every request acts in (`X-Leadstream-OU`); the key's default OU when `None`.
    ou: Option<String>,
    http: reqwest::Client,
}

/// What one ingest request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingest {
    /// 2xx: the broker acknowledged the event.
    Accepted,
    /// 503 / 429 / 5xx / no answer: the client should retry (after `Retry-After` when given).
    Retry {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Any other answer: the test's own request was wrong.
    Rejected { status: u16, body: String },
}

impl Api {
    pub fn new(base: String, key: &str) -> Api {
        Api {
            base,
            key: key.to_string(),
            ou: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
        }
    }

    /// The same client acting in `ou` (every request names it in `X-Leadstream-OU`).
    pub fn in_ou(&self, ou: &str) -> Api {
        Api {
            ou: Some(ou.to_string()),
            ..self.clone()
        }
    }

    /// The admin key, and the OU when one is set.
    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let rb = rb.bearer_auth(&self.key);
        match &self.ou {
            Some(ou) => rb.header("x-leadstream-ou", ou),
            None => rb,
        }
    }

    /// Create an OU (`POST /org-units`); its id.
    pub async fn org_unit(&self, name: &str) -> String {
        let v = self.create("/org-units", &json!({"name": name})).await;
        v["id"].as_str().expect("org unit id").to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /readyz` answered 200.
    pub async fn ready(&self) -> bool {
        matches!(self.http.get(self.url("/readyz")).send().await, Ok(r) if r.status() == 200)
    }

    /// GET with the admin key: (status, JSON body or null).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        match self.auth(self.http.get(self.url(path))).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// POST JSON with the admin key: (status, JSON body or null).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        match self
            .auth(self.http.post(self.url(path)))
            .json(body)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// POST a management document that must be created (201); its JSON.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 201, "POST {path} {body} → {status} {answer}");
        answer
    }

    /// `POST /v1/events/ingest` (seed 001) with the producer id as `event_id` and as
    /// `Idempotency-Key`, so a retry of a request whose answer was lost is one event.
    pub async fn ingest(&self, body: &Value, producer_id: &str) -> Ingest {
        let sent = self
            .auth(self.http.post(self.url("/v1/events/ingest")))
            .header("idempotency-key", producer_id)
            .json(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(_) => {
                return Ingest::Retry {
                    status: 0,
                    retry_after: None,
                }
            }
        };
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        match status {
            200..=299 => Ingest::Accepted,
            429 | 500..=599 => Ingest::Retry {
                status,
                retry_after,
            },
            _ => Ingest::Rejected {
                status,
                body: r.text().await.unwrap_or_default(),
            },
        }
    }

    /// `GET /leads/{id}`: the lead's view, or `None` while it has no state.
    pub async fn lead(&self, lead_id: &str) -> Option<Value> {
        let (status, v) = self.get(&format!("/leads/{lead_id}")).await;
        (status == 200).then_some(v)
    }

    /// Every entry of `/milestone-events` or `/sequence-events` (`list` names the array),
    /// following `next_cursor`; `None` when a page failed.
    pub async fn history(&self, route: &str, list: &str) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let path = match &cursor {
                Some(c) => format!("{route}?limit=500&cursor={c}"),
                None => format!("{route}?limit=500"),
            };
            let (status, page) = self.get(&path).await;
            if status != 200 {
                return None;
            }
            out.extend(page[list].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Some(out),
            }
        }
        None
    }

    /// Every record of the delivery log (`GET /deliveries`, newest first, all pages) matching
    /// `filter` (a query string such as `status=succeeded`, or empty).
    pub async fn deliveries(&self, filter: &str) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..1000 {
            let sep = if filter.is_empty() { "" } else { "&" };
            let (status, page) = self
                .get(&format!(
                    "/deliveries?{filter}{sep}limit=500&offset={offset}"
                ))
                .await;
            if status != 200 {
                return None;
            }
            out.extend(page["deliveries"].as_array().cloned().unwrap_or_default());
            match page["next_offset"].as_u64() {
                Some(n) => offset = n,
                None => return Some(out),
            }
        }
        None
    }

    /// A ruleset from `(event_type, points)` rules.
    pub async fn ruleset(&self, name: &str, rules: &[(&str, i64)]) -> Value {
        let rules: Vec<Value> = rules
            .iter()
            .map(|(t, p)| json!({"event_type": t, "points": p}))
            .collect();
        self.create("/rulesets", &json!({"name": name, "rules": rules}))
            .await
    }
}
