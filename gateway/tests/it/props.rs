//! Property tests, in process (router + in-memory store + in-memory sink): arbitrary JSON and
//! arbitrary bytes sent to every route never panic and never get a 5xx.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::store::MemoryKv;

use crate::common::ADMIN;

const ROUTES: [&str; 8] = [
    "/ingest",
    "/v1/events/ingest",
    "/v1/cdp/events",
    "/v1/cdp/events/batch",
    "/import",
    "/v1/cdp/event-types",
    "/org-units",
    "/org-units/active",
];

fn router() -> (tokio::runtime::Runtime, axum::Router) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", "127.0.0.1:1"),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN),
        ("LEADSTREAM_RATE_LIMIT_PER_SEC", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cfg = GatewayConfig::from_source(&env).unwrap();
    let (router, _) = rt
        .block_on(leadstream_gateway::router_with(
            cfg,
            Arc::new(MemoryKv::new()),
            Arc::new(MemorySink::new()),
        ))
        .unwrap();
    (rt, router)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        prop::sample::select(vec![
            "email",
            "phone",
            "cookie",
            "2025-09-15T14:30:00Z",
            "a@b.c",
            "+14155550100",
            "page_view",
            "purchase_completed",
            "unit_default"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    let keys = prop::sample::select(vec![
        "lead_id",
        "alias_kind",
        "alias",
        "event_type",
        "timestamp",
        "metadata",
        "event_id",
        "source_id",
        "payload",
        "environment",
        "severity",
        "source",
        "externalEventId",
        "eventType",
        "occurredAt",
        "identity",
        "email",
        "phone",
        "externalUserId",
        "deviceKey",
        "properties",
        "items",
        "events",
        "name",
        "required_properties",
        "ouId",
        "strict",
    ]);
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(
    rt: &tokio::runtime::Runtime,
    router: &axum::Router,
    route: &str,
    body: Vec<u8>,
    ct: &str,
) {
    let req = Request::post(route)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", ct)
        .header("idempotency-key", "prop")
        .body(Body::from(body))
        .unwrap();
    let resp = rt.block_on(router.clone().oneshot(req)).unwrap();
    assert!(
        !resp.status().is_server_error(),
        "{route} answered {} to client input",
        resp.status()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_gets_a_5xx(value in arb_json(), route in prop::sample::select(ROUTES.to_vec())) {
        thread_local! {
            static APP: (tokio::runtime::Runtime, axum::Router) = router();
        }
        APP.with(|(rt, r)| check(rt, r, route, serde_json::to_vec(&value).unwrap(), "application/json"));
    }

    #[test]
    fn arbitrary_bytes_never_get_a_5xx(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        route in prop::sample::select(ROUTES.to_vec()),
        ct in prop::sample::select(vec!["application/json", "application/x-ndjson", "text/plain"]),
    ) {
        thread_local! {
            static APP: (tokio::runtime::Runtime, axum::Router) = router();
        }
        APP.with(|(rt, r)| check(rt, r, route, bytes.clone(), ct));
    }
}
