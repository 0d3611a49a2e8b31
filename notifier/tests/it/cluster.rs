//! The notifier on a real Redis Cluster (three masters, three replicas): the crash test's
//! exactly-once delivery holds there too, with its keys under the notifier's hash tag.

use leadstream_shared::delivery::DeliveryQuery;
use leadstream_testkit::redis_cluster::RedisCluster;

use crate::crash::kill_9_round;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_on_a_redis_cluster_loses_nothing_and_duplicates_nothing() {
    // From the test's own thread: the nodes die with the thread that started them.
    let cluster = RedisCluster::start();
    let urls = cluster.url_list();
    let (env, n) = kill_9_round(&[("LEADSTREAM_REDIS_URL", urls.as_str())]).await;
    assert!(
        env.keys.is_cluster(),
        "a node list selects the cluster layout"
    );

    // The delivery log reads back through the cluster: one success per record and endpoint.
    let succeeded = env
        .deliveries(DeliveryQuery {
            status: Some(leadstream_shared::delivery::AttemptStatus::Succeeded),
            limit: Some(200),
            ..DeliveryQuery::default()
        })
        .await;
    assert_eq!(succeeded.len(), 2 * n, "webhook and Slack per record");
    // Every job left the due set, which lives in the notifier's slot.
    let due = env.keys.delivery_due();
    assert!(due.contains("{notifier}"), "{due}");
    let left = env.jobs().due(i64::MAX, 10).await.expect("due set");
    assert!(left.is_empty(), "{left:?}");
}
