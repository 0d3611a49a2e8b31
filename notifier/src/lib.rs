//! leadstream-notifier: delivers fired triggers to webhooks, email, Slack and Teams — each
//! exactly once per endpoint, with durable retries.
//!
//! The path of a fired record:
//! 1. [`ingest`] consumes `leadstream.triggers.fired.v1` as a consumer group and creates one
//!    durable [`jobs::Job`] per endpoint ([`endpoint`]) in Redis — only if absent, which is the
//!    idempotency on `(fired_id, endpoint)` — then commits the offset.
//! 2. [`worker`] takes due jobs (fresh ones at once, retries from a due-time sorted set), bounded
//!    per endpoint and in all, claims each with a lease and runs one attempt.
//! 3. [`deliver`] makes the attempt: a Standard Webhooks-signed POST ([`signing`]) to a URL the
//!    SSRF policy allows ([`ssrf`]), a Slack/Teams message ([`chat`]), or an email ([`email`]).
//! 4. [`attempt`] classifies the result and moves the state machine
//!    (`Pending → Succeeded | Failed { retry_at } | Dead`) by the retry schedule ([`schedule`]);
//!    every attempt is written to the delivery log ([`delivery`]); dead jobs go to
//!    `leadstream.notifications.dlq.v1`.
//!
//! Entry points: [`NotifierConfig::from_env`] and [`run`].

pub mod attempt;
pub mod chat;
pub mod config;
pub mod deliver;
pub mod email;
pub mod email_guard;
pub mod endpoint;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod schedule;
pub mod secrets;
pub mod service;
pub mod signing;
pub mod ssrf;
pub mod summary;
pub mod worker;

/// The delivery log (in `shared`, so the gateway can serve `GET /deliveries`).
pub use leadstream_shared::delivery;

pub use config::NotifierConfig;
pub use service::{run, run_with};
