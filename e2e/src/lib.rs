//! The end-to-end harness: a whole leadstream installation made of separate OS processes, driven
//! only through its public interfaces.
//!
//! A test starts a [`Stack`] — the real `leadstream` binary as gateway, processors and notifier,
//! a tansu broker process, a private `redis-server`, a webhook [`Receiver`] and an SMTP listener
//! — installs the workload's rules over HTTP ([`load::install`]), runs a steady load over HTTP
//! ([`load::run`]) while it breaks something (kill -9 a service, pause the broker, restart
//! Redis, make the receiver fail), and ends with [`verify::verify`]: every acknowledged event
//! counted once, every crossing fired once, every fired id delivered once per endpoint, history,
//! lead scores and the delivery log consistent. Data flows
//!
//! ```text
//! test ──HTTP──▶ gateway ──▶ tansu ──▶ processors ──▶ tansu (fired) ──▶ notifier ──▶ receiver / SMTP
//!                   ▲            redis-server (own process) ◀──┘            │
//!                   └──── GET /leads, /milestone-events, /sequence-events, /deliveries
//! ```
//!
//! The services need `cargo build -p leadstream` first (`scripts/test` does it). See
//! `docs/e2e.md` for the scenarios and how to run them.

pub mod api;
pub mod load;
pub mod stack;
pub mod verify;

pub use api::Api;
pub use leadstream_testkit::receiver::{Mode, Receiver};
pub use stack::{Stack, StackOpts};

/// `LEADSTREAM_E2E_FULL=1`: the long variant of every scenario (more load, longer faults).
pub fn full() -> bool {
    std::env::var("LEADSTREAM_E2E_FULL").is_ok_and(|v| v == "1")
}
