//! The OpenAPI document (`gateway/openapi.json`, served at `GET /openapi.json`) describes exactly
//! the routes the gateway serves:
//!
//! - the router's routes are read from the source at test time (every `.route("…", …)` call in
//!   `gateway/src`, with the methods chained on it), so a route added without documenting it
//!   fails here — and so does a documented route that is not registered;
//! - each documented operation is requested on the real gateway and must not hit the fallback
//!   (404 `no such route`) or 405;
//! - `GET /openapi.json` answers, unauthenticated, exactly the checked-in bytes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;
use leadstream_testkit::openapi::document;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in item.as_object().expect("path item").keys() {
            if METHODS.contains(&m.as_str()) {
                out.insert((path.clone(), m.clone()));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text between the parenthesis at `open` and its partner.
fn balanced(s: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced .route( call");
}

/// Every (path, method) registered with `.route("…", get(…).post(…)…)` in `gateway/src`.
fn registered() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        assert!(
            !text.contains(".nest("),
            "{}: nested routers are not understood by this test; extend it",
            f.display()
        );
        let mut from = 0;
        while let Some(i) = text[from..].find(".route(") {
            let open = from + i + ".route".len();
            let args = balanced(&text, open);
            from = open + 1;
            let path = args
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{}: .route( without a literal path", f.display()));
            let rest = &args[args.find(',').expect("route handler") + 1..];
            let mut found = false;
            for m in METHODS {
                // `get(` at the start of the handler or `.get(` in the chain; handler names such
                // as `rulesets::get_one` are never followed by `(`.
                let chained = rest.contains(&format!(".{m}("));
                let first = rest.trim_start().starts_with(&format!("{m}("));
                if chained || first {
                    out.insert((path.to_string(), m.to_string()));
                    found = true;
                }
            }
            assert!(found, "{}: no method on route {path}", f.display());
        }
    }
    out
}

#[test]
fn every_registered_route_is_documented_and_every_documented_route_registered() {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    for scheme in ["bearerAuth", "basicAuth", "apiKeyHeader"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    let registered = registered();
    assert!(registered.len() > 30, "route scan found {registered:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = registered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "routes not in openapi.json: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not registered: {extra:?}");
    // Every operation answers something documented.
    for (path, m) in &documented {
        let op = &doc["paths"][path][m];
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        assert!(op["operationId"].is_string(), "{m} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_checked_in_document_and_every_documented_route() {
    let app = App::start(spawn_gateway).await;
    let resp = app.get("/openapi.json", Cred::None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = resp.bytes().await.unwrap();
    let file = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")).unwrap();
    assert!(
        served == file,
        "GET /openapi.json differs from gateway/openapi.json"
    );

    // Each documented operation reaches a handler: no fallback 404, no 405. Bodies are empty,
    // so handlers answer 4xx — what matters is that a route exists for path and method.
    for (path, m) in documented(&document()) {
        let url = app.url(
            &path
                .replace("{id}", "does_not_exist")
                .replace("{name}", "does_not_exist")
                .replace("{lead_id}", "does_not_exist"),
        );
        let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let resp = app
            .http
            .request(method, &url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{m} {path}: {body}");
        assert!(
            !(status == 404 && body.contains("no such route")),
            "{m} {path} is documented but not served"
        );
    }
    app.stop().await;
}
