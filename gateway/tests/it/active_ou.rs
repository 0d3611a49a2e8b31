//! The active OU remembered per key (issue 18, part 2): seed 000's two curl calls, run with the
//! `curl` binary exactly as the seed prints them (separate commands, no cookie jar), and the
//! documented precedence header > cookie > remembered > the key's only OU > bootstrap default.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use leadstream_shared::catalog::Catalog;

use crate::common::*;

/// Seed 000, "Setting the Active OU", verbatim; only the host and `<credentials>` are filled in.
const SEED_000_ACTIVE_OU: &str = r#"# 1. Set the active OU
curl -X POST "https://api.leadvibe.com/org-units/active" \
-H "Authorization: Basic <credentials>" \
-H "Content-Type: application/json" \
-d '{"ouId": "unit_default"}'

# 2. Ingest an event (OU is now set via cookie)
curl -X POST "https://api.leadvibe.com/ingest" \
-H "Authorization: Basic <credentials>" \
-H "Content-Type: application/json" \
-d '{"alias_kind": "email", "alias": "user@example.com", "event_type": "page_view"}'
"#;

/// Run the seed's commands with `sh`; each curl call prints its body and then its status on a
/// line of its own. Returns the (status, body) of each call.
fn run_seed_commands(app: &App, key: &str) -> Vec<(u16, serde_json::Value)> {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let script = SEED_000_ACTIVE_OU
        .replace("https://api.leadvibe.com", &format!("http://{}", app.addr))
        .replace("<credentials>", &credentials);
    // The commands stay as printed; the wrapper only makes each one report its status.
    let wrapped = format!(
        "curl() {{ command curl -sS -w '\\n%{{http_code}}\\n' \"$@\"; }}\nset -e\n{script}"
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&wrapped)
        .output()
        .expect("sh and curl run (.ci/run installs curl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|c| {
            let status = c[1].trim().parse().unwrap_or_else(|_| panic!("{text}"));
            (status, serde_json::from_str(c[0]).unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_two_curl_calls_without_a_cookie_jar() {
    let app = App::start(spawn_gateway).await;
    // A key that names its OU per request: ingest alone is seed 000's 400.
    let key = json!({"name": "curl", "scopes": ["ingest"], "org_wide": true});
    let key = secret(&app.create("/api-keys", &key).await);
    let ev = json!({"alias_kind": "email", "alias": "user@example.com", "event_type": "page_view"});
    let (status, code, _) = error_of(app.post("/ingest", Cred::Basic(&key), &[], &ev).await).await;
    assert_eq!((status, code.as_str()), (400, "active_ou_not_set"));

    let answers = tokio::task::block_in_place(|| run_seed_commands(&app, &key));
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(answers[0].1["ouId"], "unit_default");
    assert_eq!(answers[1].0, 202, "{answers:?}");
    assert_eq!(answers[1].1["status"], "accepted");

    let recs = app.records(1, Duration::from_millis(300)).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].event.ou_id, "unit_default");
    assert_eq!(recs[0].event.event_type, "page_view");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_header_cookie_remembered_binding() {
    let app = App::start(spawn_gateway).await;
    let mut ous = Vec::new();
    for name in ["North", "South"] {
        let ou = app.create("/org-units", &json!({"name": name})).await;
        ous.push(ou["id"].as_str().unwrap().to_string());
    }
    let (north, south) = (ous[0].as_str(), ous[1].as_str());
    // Bound to two OUs: no single binding to fall back on.
    let key = app.key(&["ingest", "read"], &[north, south], None).await;
    let ou_of = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let b = body(resp).await;
        (status, b)
    };
    let triggers = |extra: Vec<(&'static str, String)>| {
        let app = &app;
        let key = key.clone();
        async move {
            let mut req = app.http.get(app.url("/triggers")).bearer_auth(&key);
            for (k, v) in extra {
                req = req.header(k, v);
            }
            req.send().await.unwrap()
        }
    };
    let (s, b) = ou_of(triggers(vec![]).await).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("active_ou_not_set"))
    );

    // Remember South; a call without header or cookie acts in it.
    let resp = app
        .post(
            "/org-units/active",
            Cred::Bearer(&key),
            &[],
            &json!({"ouId": south}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let ev = json!({"lead_id": "ld_1", "event_type": "page_view"});
    let resp = app.post("/ingest", Cred::Bearer(&key), &[], &ev).await;
    assert_eq!(resp.status(), 202);
    // The cookie beats the remembered OU, the header beats both.
    let cookie = format!("leadstream_ou={north}");
    let resp = app
        .post("/ingest", Cred::Bearer(&key), &[("cookie", &cookie)], &ev)
        .await;
    assert_eq!(resp.status(), 202);
    let resp = app
        .post(
            "/ingest",
            Cred::Bearer(&key),
            &[("cookie", &cookie), ("x-leadstream-ou", south)],
            &ev,
        )
        .await;
    assert_eq!(resp.status(), 202);
    let recs = app.records(3, Duration::from_millis(300)).await;
    let mut seen: Vec<&str> = recs.iter().map(|r| r.event.ou_id.as_str()).collect();
    seen.sort();
    let mut want = vec![south, north, south];
    want.sort();
    assert_eq!(seen, want);

    // An OU the key may not use is refused and not remembered.
    let resp = app
        .post(
            "/org-units/active",
            Cred::Bearer(&key),
            &[],
            &json!({"ouId": "unit_default"}),
        )
        .await;
    assert_eq!(resp.status(), 403);
    let (s, _) = ou_of(triggers(vec![]).await).await;
    assert_eq!(s, 200, "still South");

    // Each key remembers its own: the admin key is unaffected and keeps unit_default.
    let resp = app.post("/ingest", Cred::Bearer(ADMIN), &[], &ev).await;
    assert_eq!(resp.status(), 202);
    let recs = app.records(4, Duration::from_millis(300)).await;
    assert_eq!(
        recs.iter()
            .filter(|r| r.event.ou_id == "unit_default")
            .count(),
        1
    );

    // A revoked key's remembered OU goes with it.
    let listed = body(app.get("/api-keys", Cred::Bearer(ADMIN)).await).await;
    let id = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["ou_ids"] == json!([north, south]) || k["ou_ids"] == json!([south, north]))
        .and_then(|k| k["id"].as_str())
        .unwrap()
        .to_string();
    let resp = app
        .delete(&format!("/api-keys/{id}"), Cred::Bearer(ADMIN))
        .await;
    assert_eq!(resp.status(), 204);
    let catalog = Catalog::new(app.store().await, app.keys.clone());
    let left = catalog.remembered_active_ou(&id).await.unwrap();
    assert_eq!(left, None);
    app.stop().await;
}
