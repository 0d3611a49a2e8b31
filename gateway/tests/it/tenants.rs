//! Cross-tenant isolation on every read and write route (issue 7, item 3): two OUs of the
//! default organisation (A, B) with admin and read keys bound to each, and an OU with an admin
//! key in a second organisation. A key of A gets 403/404 for anything of B, never its data;
//! neither the `X-Leadstream-OU` header nor the `leadstream_ou` cookie switches it into B; the
//! same alias ingested by A and B is two leads; and B's whole visible state is unchanged after
//! A's attempts. Real Redis under a key prefix of its own, the real gateway on a loopback port,
//! a `MemorySink` for the events (no processing is needed to observe these).

mod harness;

use reqwest::Method;
use serde_json::{json, Value};

use leadstream_shared::avro::decode_event;
use leadstream_shared::catalog::{Catalog, NewApiKey, Scope};

use harness::{snapshot, tenant, Tenant};

/// Every route that reads or changes one of `b`'s objects by id, with a body where it takes one.
fn routes_on(b: &Tenant) -> Vec<(Method, String, Option<Value>)> {
    let rs = json!({"name": "hijacked", "rules": [{"event_type": "page_view", "points": 1000}]});
    let trg = json!({"name": "hijacked", "score_threshold": 1});
    let seq = json!({"name": "hijacked", "event_types": ["x"], "window_seconds": 1});
    let off = json!({"active": false});
    let sim = json!({"score_before": 0, "score_after": 100, "event": {"event_type": "page_view"}});
    let (r, t, s) = (&b.ruleset, &b.trigger, &b.sequence);
    vec![
        (Method::GET, format!("/rulesets/{r}"), None),
        (Method::PUT, format!("/rulesets/{r}"), Some(rs)),
        (Method::PATCH, format!("/rulesets/{r}"), Some(off.clone())),
        (Method::DELETE, format!("/rulesets/{r}"), None),
        (Method::GET, format!("/triggers/{t}"), None),
        (Method::PUT, format!("/triggers/{t}"), Some(trg)),
        (Method::PATCH, format!("/triggers/{t}"), Some(off.clone())),
        (Method::POST, format!("/triggers/{t}/simulate"), Some(sim)),
        (Method::DELETE, format!("/triggers/{t}"), None),
        (Method::GET, format!("/sequences/{s}"), None),
        (Method::PUT, format!("/sequences/{s}"), Some(seq)),
        (Method::PATCH, format!("/sequences/{s}"), Some(off)),
        (
            Method::POST,
            format!("/sequences/{s}/simulate"),
            Some(json!({"lead_id": b.lead})),
        ),
        (Method::DELETE, format!("/sequences/{s}"), None),
        (Method::GET, format!("/leads/{}", b.lead), None),
        (
            Method::DELETE,
            "/v1/cdp/event-types/beta_signup".into(),
            None,
        ),
        (
            Method::DELETE,
            format!("/api-keys/{}", b.admin_key_id),
            None,
        ),
    ]
}

/// Routes that act on "the active OU" (lists, histories, secrets, ingest).
fn ou_routes() -> Vec<(Method, String, Option<Value>)> {
    let ev = json!({"alias_kind": "email", "alias": "x@example.com", "event_type": "page_view"});
    vec![
        (Method::GET, "/rulesets".into(), None),
        (Method::GET, "/triggers".into(), None),
        (Method::GET, "/sequences".into(), None),
        (
            Method::GET,
            "/leads?alias_kind=email&alias=shared@example.com".into(),
            None,
        ),
        (Method::GET, "/milestone-events".into(), None),
        (Method::GET, "/sequence-events".into(), None),
        (Method::GET, "/deliveries".into(), None),
        (Method::GET, "/v1/cdp/event-types".into(), None),
        (Method::GET, "/webhook-secret".into(), None),
        (Method::POST, "/webhook-secret/rotate".into(), None),
        (
            Method::POST,
            "/rulesets".into(),
            Some(json!({"name": "x", "rules": [{"event_type": "x", "points": 1}]})),
        ),
        (Method::POST, "/ingest".into(), Some(ev)),
    ]
}

fn text(v: &Value) -> String {
    v.to_string()
}

/// Whether an answer shows anything B created (its names, URLs and history payloads all say
/// "beta"; error messages may only echo the id or name the caller sent).
fn shows_b(v: &Value) -> bool {
    let t = text(v);
    [
        "beta rules",
        "beta hot",
        "beta seq",
        "beta milestone",
        "beta sequence",
        "example.com/beta",
        "\"tenant\":\"beta\"",
    ]
    .iter()
    .any(|n| t.contains(n))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_one_ou_never_reads_or_changes_another_ous_data() {
    let (gw, sink) = harness::start().await;
    let email = "shared@example.com";
    let a = tenant(&gw, "alpha", email).await;
    let b = tenant(&gw, "beta", email).await;
    assert_ne!(a.lead, b.lead, "the same alias in two OUs is two leads");
    // The events on the wire carry their own OU and lead.
    let recs = sink.records();
    let placed: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r.key.clone(), decode_event(&r.payload).unwrap().ou_id))
        .collect();
    assert_eq!(
        placed,
        [
            (format!("{}:{}", a.ou, a.lead), a.ou.clone()),
            (format!("{}:{}", b.ou, b.lead), b.ou.clone())
        ]
    );
    // Producer ids are per OU: the same Idempotency-Key (seed 001) or externalEventId (seed
    // 002) in B is a new event, never a replay of A's answer.
    let lariba = json!({"event_type": "signup", "source_id": "src", "payload": {}});
    let cdp = json!({"source": "pos", "externalEventId": "same-1", "eventType": "signup",
                     "identity": {"email": email}, "properties": {}});
    let mut ids = Vec::new();
    for t in [&a, &b] {
        let et = json!({"name": "signup", "required_properties": []});
        gw.expect(201, Method::POST, "/v1/cdp/event-types", &t.admin, Some(et))
            .await;
        let idem = [("idempotency-key", "same-key")];
        let (s, v) = gw
            .send(
                Method::POST,
                "/v1/events/ingest",
                &t.admin,
                &idem,
                Some(&lariba),
            )
            .await;
        assert_eq!((s, &v["accepted"]), (200, &json!(true)), "{v}");
        ids.push(v["event_id"].clone());
        let v = gw
            .expect(
                202,
                Method::POST,
                "/v1/cdp/events",
                &t.admin,
                Some(cdp.clone()),
            )
            .await;
        assert_eq!(
            v["status"], "accepted",
            "not a duplicate of the other OU's: {v}"
        );
        ids.push(v["event_id"].clone());
    }
    assert_ne!((&ids[0], &ids[1]), (&ids[2], &ids[3]));
    assert_eq!(sink.records().len(), 6, "each OU's events were published");

    let before = snapshot(&gw, &b, email).await;
    let b_secret = before
        .iter()
        .find(|(p, ..)| p == "/webhook-secret")
        .unwrap()
        .2["secret"]
        .clone();
    assert!(b_secret.as_str().is_some_and(|s| !s.is_empty()));

    // Each of B's objects by id, with A's admin and read keys: 404 (or 403 for the read key's
    // writes), never B's data.
    for key in [&a.admin, &a.read] {
        for (m, path, body) in routes_on(&b) {
            let (s, v) = gw.send(m.clone(), &path, key, &[], body.as_ref()).await;
            assert!(s == 404 || s == 403, "{m} {path} with a key of A → {s} {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{v}"
            );
            assert!(!shows_b(&v), "{m} {path} leaked: {v}");
        }
    }
    // A's own lists and histories show only A.
    for (m, path, body) in ou_routes() {
        let (s, v) = gw
            .send(m.clone(), &path, &a.admin, &[], body.as_ref())
            .await;
        assert!((200..300).contains(&s), "{m} {path} for A itself → {s} {v}");
        let t = text(&v);
        for b_thing in [&b.ruleset, &b.trigger, &b.sequence, &b.lead, &b.ou] {
            assert!(
                !t.contains(b_thing.as_str()),
                "{m} {path} shows B's {b_thing}: {v}"
            );
        }
        assert!(!shows_b(&v), "{m} {path} shows B's data: {v}");
    }
    let q = |p: &str| format!("{p}?lead_id={}", b.lead);
    for path in [
        q("/milestone-events"),
        q("/sequence-events"),
        q("/deliveries"),
    ] {
        let v = gw.expect(200, Method::GET, &path, &a.read, None).await;
        assert!(!shows_b(&v), "{path}: {v}");
    }
    let (_, lead) = gw
        .send(
            Method::GET,
            &format!("/leads?alias_kind=email&alias={email}"),
            &a.read,
            &[],
            None,
        )
        .await;
    assert_eq!(
        lead["lead_id"],
        a.lead.as_str(),
        "A's alias is A's lead: {lead}"
    );
    let secret = gw
        .expect(200, Method::GET, "/webhook-secret", &a.admin, None)
        .await;
    assert_ne!(secret["secret"], b_secret);
    for (path, what) in [("/api-keys", "api_keys"), ("/org-units", "org_units")] {
        let v = gw.expect(200, Method::GET, path, &a.admin, None).await;
        let t = text(&v[what]);
        assert!(
            !t.contains(&b.ou) && !t.contains(&b.admin_key_id),
            "{path} of A: {v}"
        );
    }

    // The active-OU header and cookie do not switch A's keys into B.
    let cookie = format!("leadstream_ou={}", b.ou);
    for key in [&a.admin, &a.read] {
        for extra in [
            ("x-leadstream-ou", b.ou.as_str()),
            ("cookie", cookie.as_str()),
        ] {
            let mut routes = ou_routes();
            routes.extend(
                routes_on(&b)
                    .into_iter()
                    .filter(|r| !r.1.starts_with("/api-keys")),
            );
            for (m, path, body) in routes {
                let (s, v) = gw
                    .send(m.clone(), &path, key, &[extra], body.as_ref())
                    .await;
                assert_eq!(s, 403, "{m} {path} with {} → {v}", extra.0);
                assert_eq!(v["error"]["code"], "forbidden");
            }
        }
        let (s, _) = gw
            .send(
                Method::POST,
                "/org-units/active",
                key,
                &[],
                Some(&json!({"ouId": b.ou})),
            )
            .await;
        assert_eq!(s, 403);
        let grant = json!({"name": "escalate", "scopes": ["admin"], "ou_ids": [b.ou]});
        let (s, _) = gw
            .send(Method::POST, "/api-keys", key, &[], Some(&grant))
            .await;
        assert_eq!(s, 403, "a key of A grants nothing in B");
    }

    // B is exactly as it was, and B's key still works.
    assert_eq!(snapshot(&gw, &b, email).await, before);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_organisation_sees_nothing_of_this_one() {
    let (gw, _) = harness::start().await;
    let a = tenant(&gw, "alpha", "shared@example.com").await;
    // The catalog supports several organisations; the API creates OUs in the caller's own, so
    // the second organisation is made with the catalog, as `leadstream admin` would.
    let catalog = Catalog::new(gw.store.clone(), gw.keys.clone());
    let other_org = "org_other";
    let gamma = catalog.create_org_unit(other_org, "Gamma").await.unwrap();
    let (_, key) = catalog
        .create_api_key(
            other_org,
            NewApiKey {
                name: "other-admin".into(),
                scopes: vec![Scope::Admin],
                ou_ids: vec![],
                source_id: None,
            },
        )
        .await
        .unwrap();
    let before = snapshot(&gw, &a, "shared@example.com").await;

    // Not bound to an OU and not the bootstrap key: no active OU until it names one of its own.
    let (s, v) = gw.send(Method::GET, "/triggers", &key, &[], None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("active_ou_not_set"))
    );
    let mut routes = ou_routes();
    routes.extend(
        routes_on(&a)
            .into_iter()
            .filter(|r| !r.1.starts_with("/api-keys")),
    );
    for ou in [a.ou.as_str(), "unit_default"] {
        for (m, path, body) in &routes {
            let (s, v) = gw
                .send(
                    m.clone(),
                    path,
                    &key,
                    &[("x-leadstream-ou", ou)],
                    body.as_ref(),
                )
                .await;
            assert_eq!(s, 403, "{m} {path} in {ou} from another organisation → {v}");
        }
        let (s, _) = gw
            .send(
                Method::POST,
                "/org-units/active",
                &key,
                &[],
                Some(&json!({"ouId": ou})),
            )
            .await;
        assert_eq!(s, 403);
    }
    // In its own OU it works and sees only its own things.
    let own = [("x-leadstream-ou", gamma.id.as_str())];
    for (m, path, body) in routes_on(&a) {
        let (s, v) = gw.send(m.clone(), &path, &key, &own, body.as_ref()).await;
        assert_eq!(s, 404, "{m} {path} → {v}");
    }
    let (s, v) = gw.send(Method::GET, "/triggers", &key, &own, None).await;
    assert_eq!((s, v), (200, json!({"triggers": []})));
    let units = gw.expect(200, Method::GET, "/org-units", &key, None).await;
    assert_eq!(
        units["org_units"],
        json!([{"id": gamma.id, "name": "Gamma"}])
    );
    let keys = gw.expect(200, Method::GET, "/api-keys", &key, None).await;
    assert_eq!(keys["api_keys"].as_array().map(Vec::len), Some(1), "{keys}");
    let grant = json!({"name": "x", "scopes": ["read"], "ou_ids": [a.ou]});
    let (s, _) = gw
        .send(Method::POST, "/api-keys", &key, &[], Some(&grant))
        .await;
    assert_eq!(
        s, 422,
        "an OU of another organisation does not exist for it"
    );

    assert_eq!(snapshot(&gw, &a, "shared@example.com").await, before);
    gw.stop().await;
}
