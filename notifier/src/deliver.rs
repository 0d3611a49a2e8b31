//! One attempt to one endpoint: sign and POST a webhook, POST a Slack/Teams message, or send an
//! email, and classify what happened into an [`Outcome`].
//!
//! The HTTP client is built once: the [`GuardedResolver`] refuses private addresses at connect
//! time, redirects are never followed (a 3xx is a permanent failure), proxy variables are
//! ignored (a proxy would resolve names for us), and every request has a timeout. Error texts
//! are taken `without_url()`, because a Slack or Teams URL is a credential. The delivery log keeps
//! the first bytes of a response body only from public addresses: an endpoint reached through
//! `LEADSTREAM_WEBHOOK_ALLOW_PRIVATE` is inside the network, and its answers are not shown to
//! tenants.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use leadstream_domain::fired::TriggerFired;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use crate::attempt::Outcome;
use crate::chat;
use crate::delivery::{truncate_body, Channel, BODY_MAX};
use crate::email::Mailer;
use crate::email_guard::{EmailGuard, Refusal};
use crate::endpoint::Endpoint;
use crate::schedule::parse_retry_after;
use crate::secrets::Secrets;
use crate::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::ssrf::{find_in_chain, forbidden_class, GuardedResolver, Policy, SsrfError};
use crate::summary::Summary;

/// What one attempt came to, with what the delivery log records about it.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub outcome: Outcome,
    /// The URL policy refused the endpoint (the DLQ reason is then `refused`).
    pub refused: bool,
    pub response_body: Option<String>,
    pub latency: Duration,
}

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    policy: Arc<Policy>,
    mailer: Mailer,
    secrets: Arc<dyn Secrets>,
    timeout: Duration,
    email_guard: Arc<EmailGuard>,
    /// Idle keep-alive connections kept per host.
    idle_per_host: usize,
}

/// Idle keep-alive connections kept per host unless [`Sender::with_idle_per_host`] says more.
const IDLE_PER_HOST: usize = 16;

impl Sender {
    pub fn new(
        policy: Policy,
        timeout: Duration,
        mailer: Mailer,
        secrets: Arc<dyn Secrets>,
    ) -> Result<Sender, reqwest::Error> {
        let policy = Arc::new(policy);
        let http = client(&policy, timeout, IDLE_PER_HOST).build()?;
        Ok(Sender {
            http,
            policy,
            mailer,
            secrets,
            timeout,
            email_guard: Arc::new(EmailGuard::new(&[], 0)),
            idle_per_host: IDLE_PER_HOST,
        })
    }

    /// Keep up to `n` idle connections per host (at least the default 16): the notifier keeps
    /// as many as one endpoint may have attempts in flight, so a busy endpoint's connections
    /// are reused instead of closed and opened again after every burst.
    pub fn with_idle_per_host(mut self, n: usize) -> Result<Sender, reqwest::Error> {
        self.idle_per_host = n.max(IDLE_PER_HOST);
        self.http = client(&self.policy, self.timeout, self.idle_per_host).build()?;
        Ok(self)
    }

    /// Check every email against `guard` (allowed domains, per-OU rate) before sending.
    pub fn with_email_guard(mut self, guard: EmailGuard) -> Sender {
        self.email_guard = Arc::new(guard);
        self
    }

    async fn email(&self, fired: &TriggerFired, to: &str) -> (Outcome, bool, Option<String>) {
        match self.email_guard.admit(&fired.ou_id, to) {
            Ok(()) => (self.mailer.send(fired, to).await, false, None),
            Err(Refusal::Domain(d)) => (
                Outcome::Permanent {
                    status: None,
                    error: format!(
                        "recipient domain `{d}` is not allowed (LEADSTREAM_EMAIL_ALLOWED_DOMAINS)"
                    ),
                },
                true,
                None,
            ),
            Err(Refusal::Rate(wait)) => (
                Outcome::Retryable {
                    status: None,
                    error: "this OU's email rate (LEADSTREAM_EMAIL_RATE_PER_OU) is used up".into(),
                    retry_after: Some(wait.max(Duration::from_secs(1))),
                },
                false,
                None,
            ),
        }
    }

    pub async fn attempt(&self, fired: &TriggerFired, ep: &Endpoint) -> AttemptReport {
        let started = Instant::now();
        let (outcome, refused, response_body) = match ep.channel {
            Channel::Email => self.email(fired, &ep.target).await,
            Channel::Webhook | Channel::Slack | Channel::Teams => self.post(fired, ep).await,
        };
        AttemptReport {
            outcome,
            refused,
            response_body,
            latency: started.elapsed(),
        }
    }

    async fn post(&self, fired: &TriggerFired, ep: &Endpoint) -> (Outcome, bool, Option<String>) {
        let target = match self.policy.check_target(&ep.target).await {
            Ok(t) => t,
            Err(e) => return ssrf_outcome(e),
        };
        let url = target.url;
        // A host allowed only for this port: a client of its own that connects to the checked
        // addresses and never resolves the name again.
        let http = match target.pinned {
            None => self.http.clone(),
            Some((host, addrs)) => match client(&self.policy, self.timeout, self.idle_per_host)
                .resolve_to_addrs(&host, &addrs)
                .build()
            {
                Ok(c) => c,
                Err(e) => return self.send_error(e),
            },
        };
        let body = match ep.channel {
            Channel::Slack => chat::slack_body(&Summary::of(fired))
                .to_string()
                .into_bytes(),
            Channel::Teams => chat::teams_body(&Summary::of(fired))
                .to_string()
                .into_bytes(),
            _ => serde_json::to_vec(&fired.payload).unwrap_or_default(),
        };
        let mut req = http.post(url).header(CONTENT_TYPE, "application/json");
        if ep.channel == Channel::Webhook {
            let ring = match self.secrets.key_ring(&fired.ou_id).await {
                Ok(r) => r,
                Err(e) => {
                    return (
                        Outcome::Retryable {
                            status: None,
                            error: format!("signing secrets unavailable: {e}"),
                            retry_after: None,
                        },
                        false,
                        None,
                    )
                }
            };
            let ts = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let h = ring.headers(&fired.fired_id, ts, &body);
            req = req
                .header(HEADER_ID, h.id)
                .header(HEADER_TIMESTAMP, h.timestamp.to_string());
            if !h.signature.is_empty() {
                req = req.header(HEADER_SIGNATURE, h.signature);
            }
            // The receiver may continue the trace of the event that fired (W3C Trace Context).
            if let Some(cx) = leadstream_shared::trace::TraceContext::current() {
                req = req.header("traceparent", cx.traceparent);
                if let Some(state) = cx.tracestate {
                    req = req.header("tracestate", state);
                }
            }
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return self.send_error(e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // An address that is only reachable because the operator allowed it is inside the
        // network: what it answers is not the tenant's to read in the delivery log.
        let internal = resp
            .remote_addr()
            .is_some_and(|a| forbidden_class(a.ip()).is_some());
        // Read either way: a response whose body is left unread does not give its connection
        // back to the pool, and the next attempt would open a new one.
        let body = read_prefix(resp).await;
        (
            Outcome::from_http(status, retry_after),
            false,
            if internal { None } else { body },
        )
    }

    fn send_error(&self, e: reqwest::Error) -> (Outcome, bool, Option<String>) {
        if let Some(s) = find_in_chain(&e) {
            return ssrf_outcome(s.clone());
        }
        let e = e.without_url();
        let error = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if e.is_connect() {
            format!("connection failed: {}", chain_text(&e))
        } else {
            format!("request failed: {}", chain_text(&e))
        };
        (
            Outcome::Retryable {
                status: None,
                error,
                retry_after: None,
            },
            false,
            None,
        )
    }
}

/// The HTTP client's settings (see the module header).
fn client(policy: &Arc<Policy>, timeout: Duration, idle_per_host: usize) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(idle_per_host)
        .user_agent(concat!("leadstream-notifier/", env!("CARGO_PKG_VERSION")))
}

fn ssrf_outcome(e: SsrfError) -> (Outcome, bool, Option<String>) {
    if e.is_transient() {
        (
            Outcome::Retryable {
                status: None,
                error: e.to_string(),
                retry_after: None,
            },
            false,
            None,
        )
    } else {
        (
            Outcome::Permanent {
                status: None,
                error: e.to_string(),
            },
            true,
            None,
        )
    }
}

/// The error and its causes, joined (reqwest's top-level text alone says little).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The first [`BODY_MAX`] bytes of the response body (the rest is not read).
async fn read_prefix(mut resp: reqwest::Response) -> Option<String> {
    let mut buf = Vec::new();
    while buf.len() <= BODY_MAX {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            Ok(None) | Err(_) => break,
        }
    }
    (!buf.is_empty()).then(|| truncate_body(&buf))
}
