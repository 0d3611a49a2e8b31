//! Rulesets, milestone triggers (seed 003), sequences (seed 004) and firing history through the
//! real gateway on port 0 over the real Redis (own key prefix). No broker is needed: these routes
//! never publish. The routes over lead state and history the processor's own batch engine wrote
//! are tested with the engine, in `e2e/tests/pipeline/scoring_routes.rs`.

use leadstream_shared::ids::parse_rfc3339_ms;
use leadstream_shared::store::Cmd;

use crate::common::{seed_003, seed_004, spawn_on_store, RoutesApp as Gw, ADMIN};

mod deliveries;
mod leads;
mod triggers;
