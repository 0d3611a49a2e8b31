//! The gateway under the campaign: the router on the in-memory store and sink, or on the real
//! Redis and a real broker; the objects every route's path and body refer to; the state a
//! rejected request must leave alone; and the check of one case.
//!
//! The router is driven in process (`tower::ServiceExt::oneshot`), not over a socket as with the
//! harness's `App`: requests reach it exactly as built (path ids such as `../../etc/passwd`
//! that an HTTP client would normalise, header bytes no client would send), and the synchronous
//! proptest runner sends thousands of them quickly. Its variables are the harness's
//! (`gateway_env`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

use leadstream_gateway::{GatewayConfig, MemorySink};
use leadstream_shared::catalog::{collections, Catalog};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{MemoryKv, Store};
use leadstream_shared::DEFAULT_ORG;
use leadstream_testkit::{redis_store, redis_url, unique, Broker};

use super::cases::*;
use super::{doors, Door};
use crate::common::{gateway_env, ADMIN};

/// Ids and keys made at setup, the store to compare, and the sink's record count.
pub(super) struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    catalog: Catalog,
    sink: Option<Arc<MemorySink>>,
    /// With the real broker: its address and the events topic, whose end offsets are compared.
    topic: Option<(leadstream_testkit::OffsetReader, String)>,
    ids: BTreeMap<&'static str, String>,
    /// Requests built so far (`{n}` in a body).
    built: Cell<u64>,
    _broker: Option<Broker>,
}

impl Fixture {
    /// `broker`: run on the real Redis and this broker; else the in-memory store and sink.
    pub(super) fn new(broker: Option<Broker>) -> Fixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let prefix = unique("fuzz");
        let brokers = broker.as_ref().map_or("127.0.0.1:1".into(), |b| b.addr());
        let mut env = gateway_env(&brokers, &redis_url(), &prefix);
        env.insert("LEADSTREAM_PARTITIONS".into(), "1".into());
        env.insert("LEADSTREAM_RATE_LIMIT_PER_SEC".into(), "0".into());
        let cfg = GatewayConfig::from_source(&env).unwrap();
        let topic = broker.as_ref().map(|b| {
            (
                leadstream_testkit::OffsetReader::new(&b.addr()),
                cfg.common.topics.events.clone(),
            )
        });
        let (router, catalog, sink) = rt.block_on(async {
            let (store, sink, memory): (Store, Arc<dyn leadstream_gateway::EventSink>, _) =
                match &broker {
                    Some(_) => (
                        redis_store().await,
                        leadstream_gateway::kafka_sink(&cfg).await.expect("broker"),
                        None,
                    ),
                    None => {
                        let sink = Arc::new(MemorySink::new());
                        (
                            Arc::new(MemoryKv::new()) as Store,
                            sink.clone() as _,
                            Some(sink),
                        )
                    }
                };
            let catalog = Catalog::new(store.clone(), Keys::new(prefix));
            let (router, _) = leadstream_gateway::router_with(cfg, store, sink)
                .await
                .unwrap();
            (router, catalog, memory)
        });
        let mut fx = Fixture {
            rt,
            router,
            catalog,
            sink,
            topic,
            ids: BTreeMap::new(),
            built: Cell::new(0),
            _broker: broker,
        };
        fx.setup();
        fx
    }

    fn send(&self, req: Request<Body>) -> (u16, Vec<u8>) {
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            )
        })
    }

    fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let (status, bytes) = self.send(req);
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            (200..300).contains(&status),
            "setup {method} {path}: {status} {v}"
        );
        v
    }

    fn setup(&mut self) {
        let doors = doors();
        let body = |p: &str| {
            doors
                .iter()
                .find(|d| d.1 == p && d.0 == "POST")
                .unwrap()
                .2
                .clone()
                .unwrap()
        };
        let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
        let ou2 = s(
            &self.admin("POST", "/org-units", json!({"name": "Second"})),
            "id",
        );
        let key = |scopes: Value, ous: Value, src: Value| {
            s(
                &self.admin(
                    "POST",
                    "/api-keys",
                    json!({"name": "f", "scopes": scopes, "ou_ids": ous, "source_id": src}),
                ),
                "key",
            )
        };
        let read = key(json!(["read"]), json!(["unit_default"]), Value::Null);
        let ingest = key(
            json!(["ingest"]),
            json!(["unit_default"]),
            json!("src_fuzz"),
        );
        let other = key(json!(["admin"]), json!([ou2]), Value::Null);
        let victim = s(
            &self.admin(
                "POST",
                "/api-keys",
                json!({"name": "v", "scopes": ["read"]}),
            ),
            "id",
        );
        self.admin("POST", "/v1/cdp/event-types", json!({"name": "purchase_completed",
            "required_properties": ["order_id", "amount"], "properties": {"order_id": "string", "amount": "number"}}));
        self.admin(
            "POST",
            "/v1/cdp/event-types",
            json!({"name": "fuzz_type", "required_properties": []}),
        );
        let rs = s(&self.admin("POST", "/rulesets", body("/rulesets")), "id");
        let trg = s(&self.admin("POST", "/triggers", body("/triggers")), "id");
        let seq = s(&self.admin("POST", "/sequences", body("/sequences")), "id");
        let lead = s(&self.admin("POST", "/ingest", body("/ingest")), "lead_id");
        self.admin("POST", "/webhook-secret/rotate", json!({}));
        for (k, v) in [
            ("ou2", ou2),
            ("read", read),
            ("ingest", ingest),
            ("other", other),
            ("key", victim),
            ("etype", "fuzz_type".into()),
            ("rs", rs),
            ("trg", trg),
            ("seq", seq),
            ("lead", lead),
        ] {
            self.ids.insert(k, v);
        }
    }

    /// Everything a rejected request must leave alone.
    fn state(&self) -> Value {
        self.rt.block_on(async {
            let mut out = serde_json::Map::new();
            for ou in ["unit_default", self.ids["ou2"].as_str()] {
                for c in [
                    collections::RULESETS,
                    collections::TRIGGERS,
                    collections::SEQUENCES,
                    collections::EVENT_TYPES,
                ] {
                    let docs: Vec<Value> = self.catalog.list_docs(ou, c).await.unwrap();
                    out.insert(format!("{ou}/{c}"), json!(docs));
                }
                out.insert(
                    format!("{ou}/secret"),
                    json!(self.catalog.webhook_secret(ou).await.unwrap()),
                );
            }
            let keys = self.catalog.list_api_keys(DEFAULT_ORG).await.unwrap();
            out.insert(
                "keys".into(),
                json!(keys.iter().map(|k| &k.id).collect::<Vec<_>>()),
            );
            let ous = self.catalog.list_org_units(DEFAULT_ORG).await.unwrap();
            out.insert(
                "ous".into(),
                json!(ous.iter().map(|o| &o.id).collect::<Vec<_>>()),
            );
            // What was published: the memory sink's records, or the broker topic's end offsets
            // (asked of the broker, so nothing depends on a consumer group joining in time).
            let published = match (&self.sink, &self.topic) {
                (Some(s), _) => json!(s.records().len()),
                (None, Some((reader, topic))) => {
                    json!(reader
                        .end_offsets(topic)
                        .await
                        .into_iter()
                        .map(|(p, o)| (p.to_string(), o))
                        .collect::<BTreeMap<_, _>>())
                }
                (None, None) => unreachable!("a fixture has a memory sink or a broker"),
            };
            assert!(!published.is_null());
            out.insert("events".into(), published);
            Value::Object(out)
        })
    }

    fn request(&self, door: &Door, c: &Case) -> Option<Request<Body>> {
        self.built.set(self.built.get() + 1);
        let fill = |s: &str| {
            let mut s = s.replace("{n}", &self.built.get().to_string());
            for (k, v) in &self.ids {
                let id = match c.id {
                    Some(g) if g < GARBAGE_IDS.len() => GARBAGE_IDS[g].to_string(),
                    Some(_) => "x".repeat(3000),
                    None => v.clone(),
                };
                s = s.replace(&format!("{{{k}}}"), &id);
            }
            s
        };
        let valid: Option<Value> = door
            .2
            .as_ref()
            .map(|b| serde_json::from_str(&fill(&b.to_string())).unwrap());
        let mut path = fill(door.1);
        if !c.query.is_empty() {
            let q: Vec<String> = c
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", QUERY_KEYS[*k], QUERY_VALUES[*v]))
                .collect();
            path = format!(
                "{path}{}{}",
                if path.contains('?') { "&" } else { "?" },
                q.join("&")
            );
        }
        let mut body = mutate(valid.as_ref(), &c.mutation);
        let mut b = Request::builder().method(door.0).uri(path);
        match &c.enc {
            Enc::Plain => {}
            Enc::Gzip | Enc::GzipTruncated => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&body).unwrap();
                body = gz.finish().unwrap();
                if matches!(c.enc, Enc::GzipTruncated) {
                    body.truncate(body.len() / 2);
                }
                b = b.header("content-encoding", "gzip");
            }
            Enc::GzipManyItems => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(b"{\"items\":[1").unwrap();
                gz.write_all(&b",1".repeat(60_000)).unwrap();
                gz.write_all(b"]}").unwrap();
                body = gz.finish().unwrap();
                b = b.header("content-encoding", "gzip");
            }
            Enc::GzipGarbage(g) => {
                body = [&[0x1f, 0x8b][..], g].concat();
                b = b.header("content-encoding", "gzip");
            }
            Enc::Other(e) => b = b.header("content-encoding", *e),
        }
        if !CONTENT_TYPES[c.content_type].is_empty() {
            b = b.header("content-type", CONTENT_TYPES[c.content_type]);
        }
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let (name, value): (&str, Vec<u8>) = match c.auth {
            0 => ("authorization", format!("Bearer {ADMIN}").into()),
            1 => (
                "authorization",
                format!("Basic {}", b64(&format!("{ADMIN}:"))).into(),
            ),
            2 => ("x-api-key", ADMIN.into()),
            3 => (
                "authorization",
                format!("Bearer {}", self.ids["read"]).into(),
            ),
            4 => ("x-api-key", self.ids["ingest"].clone().into()),
            5 => (
                "authorization",
                format!("Basic {}", b64(&format!("u:{}", self.ids["other"]))).into(),
            ),
            6 => ("authorization", "Bearer lsk_not_a_key".into()),
            7 => ("authorization", "Basic %%%".into()),
            8 => ("authorization", "Digest x".into()),
            9 => ("authorization", "Bearer ".into()),
            10 => ("x-api-key", vec![0xff, 0xfe, b'k']),
            11 => (
                "authorization",
                format!("Bearer {}", "k".repeat(10_000)).into(),
            ),
            12 => (
                "authorization",
                format!("Basic {}", b64(&"\u{0}:".repeat(300))).into(),
            ),
            _ => ("x-none", "1".into()),
        };
        b = b.header(name, HeaderValue::from_bytes(&value).ok()?);
        let (name, value): (&str, Vec<u8>) = match c.ou {
            0 => ("x-none", "1".into()),
            1 => ("x-leadstream-ou", "unit_default".into()),
            2 => ("x-leadstream-ou", self.ids["ou2"].clone().into()),
            3 => ("x-leadstream-ou", "unit_nope".into()),
            4 => ("x-leadstream-ou", vec![0xff, b'/', b'.', b'.']),
            5 => (
                "cookie",
                format!("leadstream_ou={}", self.ids["ou2"]).into(),
            ),
            6 => (
                "cookie",
                "leadstream_ou=\"\"; ;;=; leadstream_ou=%FF".into(),
            ),
            _ => ("x-leadstream-ou", "u".repeat(5000).into()),
        };
        b = b.header(name, HeaderValue::from_bytes(&value).ok()?);
        if let Some(n) = c.idem {
            b = b.header("idempotency-key", format!("fuzz-{n}"));
        }
        b.body(Body::from(body)).ok()
    }

    /// One case on one door: the properties of the module header.
    fn check(&self, door: &Door, c: &Case) -> Result<Option<u16>, TestCaseError> {
        let Some(req) = self.request(door, c) else {
            return Ok(None);
        };
        let what = format!("{} {}", door.0, req.uri());
        let before = self.state();
        let (status, bytes) = self.send(req);
        prop_assert!(
            status < 500,
            "{what} answered {status} to client input: {}",
            String::from_utf8_lossy(&bytes)
        );
        if status >= 400 {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let text = |k: &str| v["error"][k].as_str().is_some_and(|s| !s.is_empty());
            prop_assert!(
                text("code") && text("message"),
                "{what} → {status} without the error shape: {}",
                String::from_utf8_lossy(&bytes)
            );
            prop_assert_eq!(
                self.state(),
                before,
                "{} → {} changed the store",
                what,
                status
            );
        }
        Ok(Some(status))
    }

    /// `cases` cases on every door whose path starts with one of `prefixes`.
    pub(super) fn campaign(&self, prefixes: &[&str], cases: u32) {
        for door in doors()
            .iter()
            .filter(|d| prefixes.iter().any(|p| d.1.starts_with(p)))
        {
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 256,
                ..Config::default()
            });
            let tally = RefCell::new(BTreeMap::<u16, u32>::new());
            let run = runner.run(&case(), |c| {
                let status = self.check(door, &c)?;
                *tally.borrow_mut().entry(status.unwrap_or(0)).or_default() += 1;
                Ok(())
            });
            if let Err(e) = run {
                panic!("{} {}: {e}", door.0, door.1);
            }
            let tally = tally.into_inner();
            eprintln!("{} {}: answers {tally:?}", door.0, door.1);
            // The mutations are of a body that is valid: some case was accepted, or the valid
            // request itself (unmutated, admin key) is — after the random cases, so a DELETE
            // does not remove its object before they ran.
            let valid = Case {
                id: None,
                mutation: Mutation::Valid,
                enc: Enc::Plain,
                content_type: 0,
                auth: 0,
                ou: 0,
                query: Vec::new(),
                idem: Some(u32::MAX),
            };
            let ok = |s: &u16| (200..300).contains(s);
            if !tally.keys().any(ok) {
                let status = self.check(door, &valid).ok().flatten();
                assert!(
                    status.as_ref().is_some_and(ok),
                    "{} {}: no case was accepted and the valid request answered {status:?}",
                    door.0,
                    door.1
                );
            }
        }
        // Still serving, and still taking a valid event.
        let v = self.admin(
            "POST",
            "/ingest",
            json!({"lead_id": "ld_after", "event_type": "page_view"}),
        );
        assert_eq!(v["status"], "accepted");
    }
}
