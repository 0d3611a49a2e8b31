//! How fast the store's Redis adapter runs the same batches against one private redis-server
//! and a private local Redis Cluster (3 masters + 3 replicas), in the same run:
//!
//!   cargo run --release -p leadstream-testkit --example kv_cluster_rate
//!
//! - pipelined batches of 1,000 SETs of keys spread over every slot (a cluster splits each
//!   batch into one pipeline per slot, sent to the masters concurrently);
//! - pipelined batches of 1,000 SETs of keys sharing one hash tag (one pipeline per batch);
//! - atomic guarded batches (the Lua script) of 10 keys sharing one hash tag.
//!
//! Reports commands per second; nothing is asserted. On a small machine client, servers and
//! replicas share the same cores, so the cluster's figures are a floor, not its capacity.

use std::time::Instant;

use leadstream_shared::store::{Cmd, Guard, Kv, RedisKv};
use leadstream_testkit::redis_cluster::RedisCluster;
use leadstream_testkit::redis_server::{Durability, RedisServer};
use leadstream_testkit::unique;

const BATCHES: usize = 200;
const BATCH: usize = 1000;
const GUARDED: usize = 5000;

fn set(key: String) -> Cmd {
    Cmd::Set {
        key,
        value: vec![b'x'; 64],
        ttl_ms: None,
    }
}

async fn measure(name: &str, kv: &RedisKv) {
    let p = unique("rate");
    let t = Instant::now();
    for b in 0..BATCHES {
        let cmds = (0..BATCH).map(|i| set(format!("{p}:s:{b}:{i}"))).collect();
        kv.exec(cmds).await.expect("spread batch");
    }
    let spread = (BATCHES * BATCH) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for b in 0..BATCHES {
        let cmds = (0..BATCH)
            .map(|i| set(format!("{p}:{{tag}}:{b}:{i}")))
            .collect();
        kv.exec(cmds).await.expect("tagged batch");
    }
    let tagged = (BATCHES * BATCH) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for b in 0..GUARDED {
        let guard = Guard::Absent(format!("{p}:{{g{b}}}:guard"));
        let cmds = (0..10).map(|i| set(format!("{p}:{{g{b}}}:{i}"))).collect();
        kv.exec_guarded(vec![guard], cmds).await.expect("guarded");
    }
    let guarded = GUARDED as f64 / t.elapsed().as_secs_f64();
    println!(
        "{name:<14} spread SET {spread:>10.0} cmds/s | one-tag SET {tagged:>10.0} cmds/s | \
         guarded 10-key batches {guarded:>8.0}/s"
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::temp_dir().join(unique("kvrate"));
    let single = RedisServer::start(&dir, Durability::None);
    let cluster = RedisCluster::start();
    let one = RedisKv::connect(&single.url()).await.expect("redis-server");
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let many = RedisKv::connect_cluster(&urls, None)
        .await
        .expect("cluster");
    measure("redis-server", &one).await;
    measure("redis cluster", &many).await;
    drop(single);
    let _ = std::fs::remove_dir_all(&dir);
}
