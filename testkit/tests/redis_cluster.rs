//! The Redis Cluster harness, and the store's cluster connection on it: batches spanning slots,
//! atomic batches refused across slots, hash slots as the cluster computes them, and a master
//! killed under the store.

use leadstream_shared::store::slot::slot;
use leadstream_shared::store::{self, Cmd, Guard, Reply, StoreError};
use leadstream_testkit::redis_cluster::RedisCluster;
use leadstream_testkit::unique;

fn set(key: &str, v: &str) -> Cmd {
    Cmd::Set {
        key: key.into(),
        value: v.as_bytes().to_vec(),
        ttl_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_on_a_cluster_and_survives_a_master_kill() {
    let mut cluster = RedisCluster::start();
    let topo = cluster.topology();
    assert_eq!(topo.iter().filter(|n| n.master).count(), 3, "{topo:?}");
    assert_eq!(topo.iter().filter(|n| !n.master).count(), 3, "{topo:?}");

    let p = unique("cl");
    // Our slot function agrees with the cluster's.
    for k in ["foo", "bar", &format!("{p}:a"), "x{tag}y", "{}a", "a{b}{c}"] {
        assert_eq!(slot(k.as_bytes()), cluster.slot_of(k), "{k}");
    }

    let kv = store::open(Some(&cluster.url_list()))
        .await
        .expect("connect to the cluster");
    // Keys spread over the three masters: one batch, answers in order, MGET reassembled.
    let keys: Vec<String> = (0..30).map(|i| format!("{p}:k{i}")).collect();
    let masters: std::collections::BTreeSet<u16> = keys
        .iter()
        .map(|k| cluster.primary_port_of_slot(slot(k.as_bytes())))
        .collect();
    assert_eq!(masters.len(), 3, "the keys span every master");
    let mut batch: Vec<Cmd> = keys.iter().map(|k| set(k, k)).collect();
    batch.push(Cmd::MGet {
        keys: keys
            .iter()
            .rev()
            .cloned()
            .chain([format!("{p}:none")])
            .collect(),
    });
    batch.push(Cmd::IncrBy {
        key: format!("{p}:counter"),
        by: 2,
    });
    let out = kv.exec(batch).await.expect("cross-slot batch");
    assert!(out[..30].iter().all(|r| *r == Reply::Ok), "{out:?}");
    let mut expected: Vec<Reply> = keys
        .iter()
        .rev()
        .map(|k| Reply::Bytes(k.as_bytes().to_vec()))
        .collect();
    expected.push(Reply::Nil);
    assert_eq!(out[30], Reply::Array(expected));
    assert_eq!(out[31], Reply::Int(2));

    // Atomic batches: one hash tag works, several slots are refused and change nothing.
    let (a, b) = (format!("{p}:{{t}}:a"), format!("{p}:{{t}}:b"));
    let done = kv
        .exec_guarded(
            vec![Guard::Absent(a.clone())],
            vec![set(&a, "1"), set(&b, "2")],
        )
        .await
        .expect("same-slot atomic batch");
    assert_eq!(done, Some(vec![Reply::Ok, Reply::Ok]));
    let other = format!("{p}:elsewhere");
    assert_ne!(slot(other.as_bytes()), slot(a.as_bytes()));
    let err = kv
        .exec_guarded(vec![], vec![set(&a, "x"), set(&other, "x")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CrossSlot(_)), "{err}");
    assert!(err.to_string().contains(&other), "{err}");
    let after = kv
        .exec(vec![Cmd::Get { key: a.clone() }, Cmd::Get { key: other }])
        .await
        .unwrap();
    assert_eq!(after, vec![Reply::Bytes(b"1".to_vec()), Reply::Nil]);

    // Kill the master of the tagged keys once its replica has them: the replica takes over
    // and the same store handle keeps reading and writing.
    let primary = cluster.primary_port_of_slot(slot(a.as_bytes()));
    let synced: i64 = {
        let client = redis::Client::open(format!("redis://127.0.0.1:{primary}")).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("WAIT").arg(1).arg(10_000).query(&mut c).unwrap()
    };
    assert_eq!(synced, 1, "the replica acknowledged the writes");
    let killed = cluster.kill_primary_of(&a);
    assert_eq!(killed, primary);
    assert_ne!(cluster.primary_port_of_slot(slot(a.as_bytes())), primary);
    let got = kv
        .exec(vec![Cmd::MGet {
            keys: vec![a.clone(), b.clone()],
        }])
        .await
        .expect("read after the failover");
    assert_eq!(
        got[0],
        Reply::Array(vec![
            Reply::Bytes(b"1".to_vec()),
            Reply::Bytes(b"2".to_vec())
        ])
    );
    let again = kv
        .exec_guarded(
            vec![Guard::Equals(a.clone(), b"1".to_vec())],
            vec![set(&a, "3")],
        )
        .await
        .expect("atomic write after the failover");
    assert_eq!(again, Some(vec![Reply::Ok]));
}
