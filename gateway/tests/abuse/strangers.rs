//! Cheap rejection of strangers (issue 12): a made-up key costs Redis one lookup, then nothing
//! for the cache TTL (negative cache); strangers cycling made-up keys are limited per client
//! address before any lookup; a request presenting two credentials is a 400 that costs nothing.
//! Redis commands are counted by a wrapper around the real store ([`Faulty`]).

use base64::Engine;

use crate::common::{spawn_on_store, RoutesApp, ADMIN};
use leadstream_testkit::redis_store;
use leadstream_testkit::store::Faulty;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_keys_cost_one_lookup_then_nothing_and_strangers_are_limited_per_address() {
    let store = Faulty::new(redis_store().await);
    let gw = RoutesApp::builder()
        .var("LEADSTREAM_UNAUTH_RATE_LIMIT_PER_SEC", "1")
        .var("LEADSTREAM_UNAUTH_RATE_LIMIT_BURST", "4")
        .var("LEADSTREAM_KEY_CACHE_TTL", "10m")
        .store(store.clone())
        .start(spawn_on_store)
        .await;
    let url = format!("{}/org-units", gw.base);
    let http = &gw.http;
    let commands = || store.commands();

    // The admin key is verified once (one of the address's 4 lookups) and cached.
    let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Two credentials in one request: 400, no Redis command.
    let before = commands();
    let basic = base64::engine::general_purpose::STANDARD.encode("made-up-user:made-up-password");
    let resp = http
        .get(&url)
        .header("x-api-key", "made-up-key-0")
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ambiguous_credentials");
    assert_eq!(commands(), before, "an ambiguous request reached Redis");

    // One made-up key, ten times: one lookup, then the negative cache answers.
    let before = commands();
    for _ in 0..10 {
        let resp = http
            .get(&url)
            .header("x-api-key", "made-up-key-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(
        commands() - before,
        1,
        "one lookup for a repeated unknown key"
    );

    // Made-up keys cycled from one address: limited before any lookup.
    let before = commands();
    let (mut unauthorized, mut limited) = (0, 0);
    for i in 0..30 {
        let resp = http
            .get(&url)
            .header("x-api-key", format!("made-up-key-cycled-{i}"))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(limited > 0, "no 429 among 30 made-up keys");
    assert_eq!(
        commands() - before,
        unauthorized,
        "only the requests let through cost a lookup"
    );
    // A verified key from the same address is not held back.
    let resp = http.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    gw.stop().await;
}
