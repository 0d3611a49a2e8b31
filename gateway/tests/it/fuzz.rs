//! Bad input at every door (issue 7, item 3): a property-test campaign over every gateway route
//! (ingest of seeds 000/001/002, `/import`, and every management and read route) with valid
//! documents whose fields are mutated (wrong types, huge strings, deep nesting, invalid UTF-8,
//! unknown fields), arbitrary JSON and bytes, truncated bodies, wrong content types, gzip
//! garbage, garbage query strings and path ids, every credential form and active-OU header.
//!
//! Every answer must be below 500 (there is no broker outage here, so not even 503); every 4xx
//! must carry `{"error":{"code","message"}}` with both non-empty; and a rejected request must
//! change nothing: the configuration documents, keys, OUs, webhook secrets of both OUs and the
//! published events are the same after it. The bulk runs in process on the in-memory store and
//! sink (fast); the same campaign, with fewer cases, runs on the real Redis and a real broker.

mod cases;
mod fixture;

use serde_json::{json, Value};

use leadstream_testkit::Broker;

use fixture::Fixture;

/// A route: method, path, valid body.
type Door = (&'static str, &'static str, Option<Value>);

/// Every route: method, path (`{rs}`, `{trg}`, `{seq}`, `{lead}`, `{key}`, `{etype}` are the
/// fixture's ids, or garbage) and a valid body (`{n}`: a number unique to the request, so names
/// that must be new are).
fn doors() -> Vec<Door> {
    let ev = json!({"alias_kind": "email", "alias": "fuzz@example.com", "event_type": "page_view",
                    "timestamp": "2025-01-15T10:00:00Z", "metadata": {"path": "/pricing"}});
    let cdp = json!({"source": "brand.pos", "externalEventId": "txn_1", "eventType": "purchase_completed",
        "occurredAt": "2026-05-20T12:45:00Z", "identity": {"externalUserId": "L-1", "email": "c@example.com"},
        "properties": {"order_id": "o1", "amount": 120.5, "currency": "USD"}});
    let rs = json!({"name": "Engagement", "rules": [{"event_type": "page_view", "points": 10,
        "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]}]});
    let trg = json!({"name": "Hot", "event_type": "demo_request", "score_threshold": 75,
        "webhook_url": "https://hooks.example.com/x", "emails": ["sales@example.com"]});
    let seq = json!({"name": "Intent", "event_types": ["page_view", "demo_request"],
        "window_seconds": 604800, "ordered": true, "webhook_url": "https://hooks.example.com/x"});
    let sim_t = json!({"lead_id": "{lead}", "event": {"event_type": "demo_request",
        "metadata": {"path": "/pricing"}, "created_at": "2025-01-15T10:35:00Z"}});
    let sim_s = json!({"lead_id": "{lead}", "events": [{"id": "e1", "event_type": "page_view",
        "created_at": "2025-01-10T09:00:00Z"}, {"event_type": "demo_request"}]});
    let et = json!({"name": "fuzz_type_{n}", "required_properties": ["a"],
        "properties": {"a": "string", "b": "number"}, "strict": true});
    let lariba = json!({"event_id": "evt_1", "event_type": "payment.failed", "source_id": "src_fuzz",
        "environment": "production", "severity": "critical", "timestamp": "2026-06-01T10:00:00Z",
        "payload": {"amount": 49.99, "currency": "EUR"}});
    vec![
        ("POST", "/ingest", Some(ev.clone())),
        ("POST", "/v1/events/ingest", Some(lariba)),
        ("POST", "/v1/cdp/events", Some(cdp.clone())),
        (
            "POST",
            "/v1/cdp/events/batch",
            Some(json!({"items": [cdp.clone(), cdp]})),
        ),
        ("POST", "/import", Some(json!({"events": [ev.clone(), ev]}))),
        ("GET", "/org-units", None),
        ("POST", "/org-units", Some(json!({"name": "Fuzz OU {n}"}))),
        (
            "POST",
            "/org-units/active",
            Some(json!({"ouId": "unit_default"})),
        ),
        ("GET", "/api-keys", None),
        (
            "POST",
            "/api-keys",
            Some(
                json!({"name": "k", "scopes": ["read"], "ou_ids": ["unit_default"], "source_id": "s"}),
            ),
        ),
        ("GET", "/v1/cdp/event-types", None),
        ("POST", "/v1/cdp/event-types", Some(et)),
        ("GET", "/webhook-secret", None),
        ("POST", "/webhook-secret/rotate", None),
        ("GET", "/rulesets", None),
        ("POST", "/rulesets", Some(rs.clone())),
        ("GET", "/rulesets/{rs}", None),
        ("PUT", "/rulesets/{rs}", Some(rs)),
        (
            "PATCH",
            "/rulesets/{rs}",
            Some(json!({"active": false, "decay": {"half_life_seconds": 3600}})),
        ),
        ("GET", "/triggers", None),
        ("POST", "/triggers", Some(trg.clone())),
        ("GET", "/triggers/{trg}", None),
        ("PUT", "/triggers/{trg}", Some(trg)),
        (
            "PATCH",
            "/triggers/{trg}",
            Some(json!({"active": true, "score_threshold": 80})),
        ),
        ("POST", "/triggers/{trg}/simulate", Some(sim_t)),
        ("GET", "/sequences", None),
        ("POST", "/sequences", Some(seq.clone())),
        ("GET", "/sequences/{seq}", None),
        ("PUT", "/sequences/{seq}", Some(seq)),
        (
            "PATCH",
            "/sequences/{seq}",
            Some(json!({"max_gap_seconds": 60, "active": true})),
        ),
        ("POST", "/sequences/{seq}/simulate", Some(sim_s)),
        ("GET", "/leads/{lead}", None),
        (
            "GET",
            "/leads?alias_kind=email&alias=fuzz@example.com",
            None,
        ),
        ("GET", "/milestone-events", None),
        ("GET", "/sequence-events", None),
        ("GET", "/deliveries", None),
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/metrics", None),
        // Last, so the objects the other routes refer to exist while they are fuzzed.
        ("DELETE", "/api-keys/{key}", None),
        ("DELETE", "/v1/cdp/event-types/{etype}", None),
        ("DELETE", "/rulesets/{rs}", None),
        ("DELETE", "/triggers/{trg}", None),
        ("DELETE", "/sequences/{seq}", None),
    ]
}

const INGEST: [&str; 4] = ["/ingest", "/v1/events", "/v1/cdp/events", "/import"];
const MANAGE: [&str; 4] = [
    "/org-units",
    "/api-keys",
    "/webhook-secret",
    "/v1/cdp/event-types",
];
const SCORING: [&str; 3] = ["/rulesets", "/triggers", "/sequences"];
const READS: [&str; 7] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/leads",
    "/milestone-events",
    "/sequence-events",
    "/deliveries",
];

#[test]
fn ingest_routes_take_any_garbage_without_a_5xx_or_a_write() {
    Fixture::new(None).campaign(&INGEST, 128);
}

#[test]
fn management_routes_take_any_garbage_without_a_5xx_or_a_write() {
    Fixture::new(None).campaign(&MANAGE, 128);
}

#[test]
fn scoring_routes_take_any_garbage_without_a_5xx_or_a_write() {
    Fixture::new(None).campaign(&SCORING, 96);
}

#[test]
fn read_routes_take_any_garbage_without_a_5xx() {
    Fixture::new(None).campaign(&READS, 128);
}

/// The same campaign, fewer cases, on the real Redis and a real tansu broker.
#[test]
fn every_route_on_real_redis_and_a_real_broker() {
    let broker = Broker::start();
    let all: Vec<&str> = INGEST
        .iter()
        .chain(&MANAGE)
        .chain(&SCORING)
        .chain(&READS)
        .copied()
        .collect();
    Fixture::new(Some(broker)).campaign(&all, 16);
}
