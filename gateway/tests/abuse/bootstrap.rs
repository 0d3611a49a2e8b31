//! The bootstrap admin key (issue 12): listed without any part of its secret, and retired when
//! a gateway starts without `LEADSTREAM_BOOTSTRAP_ADMIN_KEY` (the runbook's promise).

use serde_json::Value;

use leadstream_testkit::unique;

use crate::clients::Gw;
use crate::ADMIN;

async fn get(gw: &Gw, path: &str, key: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("http://{}{path}", gw.addr))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_key_is_never_listed_with_a_prefix_and_stops_working_when_unset() {
    let prefix = unique("bootstrap");
    let gw = Gw::start(&[("LEADSTREAM_REDIS_PREFIX", &prefix)]).await;
    let (status, list) = get(&gw, "/api-keys", ADMIN).await;
    assert_eq!(status, 200, "{list}");
    let text = list.to_string();
    let boot = list["api_keys"]
        .as_array()
        .or(list.as_array())
        .and_then(|keys| keys.iter().find(|k| k["id"] == "key_bootstrap_admin"))
        .unwrap_or_else(|| panic!("the bootstrap key in {list}"))
        .clone();
    assert_eq!(boot["key_prefix"], Value::Null, "{boot}");
    assert!(
        !text.contains(&ADMIN[..4]),
        "a part of the secret is listed: {text}"
    );
    gw.stop().await;

    // The same installation, restarted without the variable.
    let gw = Gw::start(&[
        ("LEADSTREAM_REDIS_PREFIX", &prefix),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ""),
    ])
    .await;
    let (status, answer) = get(&gw, "/org-units", ADMIN).await;
    assert_eq!(status, 401, "{answer}");
    gw.stop().await;
}
