//! `leadstream admin redis-to-cluster`: an installation written by the real code on one Redis
//! server (catalog, configuration, webhook secrets, a pending delivery, the delivery log) is
//! copied onto a real Redis Cluster, where the services' cluster layout finds all of it.

use std::sync::Arc;

use leadstream_domain::fired::Targets;
use leadstream_notifier::delivery::Channel;
use leadstream_notifier::endpoint::Endpoint;
use leadstream_notifier::jobs::{Job, JobStore};
use leadstream_shared::catalog::{collections, Catalog, NewApiKey, Scope};
use leadstream_shared::delivery::{self, AttemptStatus, DeliveryAttempt, DeliveryQuery};
use leadstream_shared::keys::Keys;
use leadstream_shared::store::{self, RedisKv, Store};
use leadstream_testkit::cli::admin;
use leadstream_testkit::firing::fired;
use leadstream_testkit::redis_cluster::RedisCluster;
use leadstream_testkit::redis_server::{Durability, RedisServer};
use leadstream_testkit::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_moves_from_one_redis_to_a_cluster() {
    let dir = std::env::temp_dir().join(unique("tocluster"));
    let single = RedisServer::start(&dir, Durability::None);
    let cluster = RedisCluster::start();
    let prefix = unique("mv");

    // The installation, written through the real code in the single-Redis layout.
    let old: Store = Arc::new(RedisKv::connect(&single.url()).await.unwrap());
    let plain = Keys::new(prefix.clone());
    let catalog = Catalog::new(old.clone(), plain.clone());
    catalog.bootstrap(None).await.unwrap();
    let (key, secret) = catalog
        .create_api_key(
            "org_default",
            NewApiKey {
                name: "pos".into(),
                scopes: vec![Scope::Ingest],
                ou_ids: vec!["unit_default".into()],
                source_id: None,
            },
        )
        .await
        .unwrap();
    let doc = serde_json::json!({"name": "rs"});
    catalog
        .put_doc("unit_default", collections::RULESETS, "rs_1", &doc)
        .await
        .unwrap();
    let whsec = catalog.webhook_secret("unit_default").await.unwrap();
    let version = catalog.config_version("unit_default").await.unwrap();
    let ep = Endpoint::new(Channel::Webhook, "https://hooks.example.com/x");
    let f = fired(1, "ld_1", Targets::default());
    let job = Job::new(&f, &ep, 0, 7, 1000);
    JobStore::new(old.clone(), plain.clone(), 60_000)
        .enqueue(std::slice::from_ref(&job), 1000)
        .await
        .unwrap();
    let attempt = DeliveryAttempt {
        id: "att_1".into(),
        fired_id: f.fired_id.clone(),
        ou_id: f.ou_id.clone(),
        lead_id: f.lead_id.clone(),
        trigger_id: f.trigger_id.clone(),
        trigger_name: f.trigger_name.clone(),
        channel: Channel::Webhook,
        endpoint_id: ep.id(),
        target: ep.target.clone(),
        attempt: 1,
        at_ms: 1001,
        status: AttemptStatus::Retrying,
        status_code: Some(503),
        error: None,
        latency_ms: 3,
        response_body: None,
        next_attempt_at_ms: Some(5000),
    };
    delivery::record(old.as_ref(), &plain, &attempt, 60_000)
        .await
        .unwrap();

    // A target that is not a cluster is refused, naming the variable.
    let urls = cluster.url_list();
    let single_url = single.url();
    let (ok, _, err) = admin(
        [
            ("LEADSTREAM_REDIS_URL", single_url.as_str()),
            ("LEADSTREAM_REDIS_PREFIX", prefix.as_str()),
        ],
        &["redis-to-cluster", "--from", single_url.as_str()],
    );
    assert!(!ok);
    assert!(err.contains("LEADSTREAM_REDIS_URL"), "{err}");

    // The copy, twice (a second run finishes an interrupted one and changes nothing).
    let env = [
        ("LEADSTREAM_REDIS_URL", urls.as_str()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.as_str()),
    ];
    for run in 0..2 {
        let (ok, out, err) = admin(env, &["redis-to-cluster", "--from", single_url.as_str()]);
        assert!(ok, "run {run}: {err}");
        assert!(out.contains("1 pending deliveries re-pointed"), "{out}");
    }

    // The services' view on the cluster: everything is there under the cluster layout.
    let new = store::open(Some(&urls)).await.unwrap();
    let clustered = Keys::for_cluster(prefix.clone());
    let catalog = Catalog::new(new.clone(), clustered.clone());
    let found = catalog
        .authenticate(&secret)
        .await
        .unwrap()
        .expect("the key");
    assert_eq!(found.id, key.id);
    let docs: Vec<serde_json::Value> = catalog
        .list_docs("unit_default", collections::RULESETS)
        .await
        .unwrap();
    assert_eq!(docs, vec![doc]);
    assert_eq!(
        catalog.config_version("unit_default").await.unwrap(),
        version
    );
    assert_eq!(catalog.webhook_secret("unit_default").await.unwrap(), whsec);
    let jobs = JobStore::new(new.clone(), clustered.clone(), 60_000);
    let due = jobs.due(i64::MAX, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the pending delivery");
    let got = jobs
        .claim(&due[0], "w", 10_000)
        .await
        .unwrap()
        .expect("the job under its cluster name");
    assert_eq!(got, job);
    // A replay of the fired record finds the job: still delivered once.
    let again = jobs.enqueue(&[job], 1000).await.unwrap();
    assert_eq!(again, [false]);
    let log = delivery::query(
        new.as_ref(),
        &clustered,
        "unit_default",
        &DeliveryQuery::default(),
    )
    .await
    .unwrap();
    assert_eq!(log.deliveries, vec![attempt]);
    drop(single);
    let _ = std::fs::remove_dir_all(&dir);
}
