//! The bootstrap admin key (issue 12): listed without any part of its secret, and retired when
//! a gateway starts without `LEADSTREAM_BOOTSTRAP_ADMIN_KEY` (the runbook's promise).

use serde_json::Value;

use leadstream_testkit::unique;

use crate::common::{spawn_on_store, RoutesApp, ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_key_is_never_listed_with_a_prefix_and_stops_working_when_unset() {
    let prefix = unique("bootstrap");
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_REDIS_PREFIX", &prefix)
        .start(spawn_on_store)
        .await;
    let (status, list) = gw.get("/api-keys", ADMIN).await;
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
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_REDIS_PREFIX", &prefix)
        .unset("LEADSTREAM_BOOTSTRAP_ADMIN_KEY")
        .start(spawn_on_store)
        .await;
    let (status, answer) = gw.get("/org-units", ADMIN).await;
    assert_eq!(status, 401, "{answer}");
    gw.stop().await;
}
