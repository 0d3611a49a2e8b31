//! A store that loses its newest acknowledged writes, made deterministic: what an asynchronous
//! Redis replica promoted after its master died does to one slot. While the stream is produced
//! and applied, partition 0's keys (applied offset, lead states, dedupe marks, outbox — one hash
//! tag) are snapshotted; after the processor has applied more, they are put back as they were
//! in one transaction (newer keys of the partition removed). The processor must notice the older
//! applied offset (`leadstream_processor_rewound_partitions_total`), read the partition again
//! from there, and end with every score equal to the oracle and every crossing fired once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leadstream_testkit::{free_port, redis_url, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crash::{self, EVENTS};
use crate::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_loses_its_newest_writes_is_read_again_from_there() {
    let w = World::new("rewind").await;
    let plan = crash::setup(&w).await;
    let ops = format!("127.0.0.1:{}", free_port());
    let mut child = w.spawn_process(&[
        ("LEADSTREAM_PROCESSOR_MAX_BATCH", "5"),
        ("LEADSTREAM_METRICS_ADDR", &ops),
    ]);
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis-server");
    let applied_key = w.keys.partition(&w.topics.events, 0).applied();
    let base = applied_key.trim_end_matches(":applied").to_string();
    let produced = AtomicU64::new(0);

    let lose_writes = async {
        wait_until(
            Duration::from_secs(180),
            "progress before the snapshot",
            || async {
                let n = crash::applied(&w).await;
                (n >= EVENTS as u64 / 4).then_some(())
            },
        )
        .await;
        let (snapshot, snapshot_offset) = dump(&mut conn, &base, &applied_key).await;
        let at = crash::applied(&w).await;
        // Let the processor apply (and acknowledge) a good deal more on every partition.
        wait_until(
            Duration::from_secs(180),
            "progress after the snapshot",
            || async { (crash::applied(&w).await >= at + 300).then_some(()) },
        )
        .await;
        let lost_from = offset_of(&mut conn, &applied_key).await;
        restore(&mut conn, &base, &snapshot).await;
        eprintln!(
            "partition 0 put back from applied offset {lost_from:?} to {snapshot_offset:?} \
             ({} keys)",
            snapshot.len()
        );
        assert!(
            lost_from > snapshot_offset,
            "the snapshot must be older than what the processor wrote since"
        );
        produced.load(Ordering::SeqCst)
    };
    let ((), at) = tokio::join!(crash::produce_stream(&w, &plan, &produced), lose_writes);
    assert!(at < EVENTS as u64, "the writes must be lost mid-stream");
    crash::verify(&w, &plan).await;
    let rewound = metric(&ops, "leadstream_processor_rewound_partitions_total").await;
    assert!(
        rewound >= 1.0,
        "the processor noticed the older applied offset (rewound partitions: {rewound})"
    );
    child.kill9();
}

/// Every key of the partition: (name, DUMP payload, PTTL), and the applied offset in it.
async fn dump(
    conn: &mut redis::aio::MultiplexedConnection,
    base: &str,
    applied_key: &str,
) -> (Vec<(String, Vec<u8>, i64)>, Option<i64>) {
    // One transaction, so the snapshot is of one moment.
    let keys = keys_of(conn, base).await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &keys {
        pipe.cmd("DUMP").arg(k).cmd("PTTL").arg(k);
    }
    pipe.cmd("GET").arg(applied_key);
    let mut values: Vec<redis::Value> = pipe.query_async(conn).await.expect("DUMP");
    let applied: Option<String> =
        redis::from_redis_value(values.pop().expect("GET")).expect("applied offset");
    let mut out = Vec::new();
    for (k, pair) in keys.iter().zip(values.chunks(2)) {
        let payload: Option<Vec<u8>> = redis::from_redis_value(pair[0].clone()).expect("DUMP");
        let ttl: i64 = redis::from_redis_value(pair[1].clone()).expect("PTTL");
        if let Some(p) = payload {
            out.push((k.clone(), p, ttl.max(0)));
        }
    }
    (out, applied.and_then(|a| a.parse().ok()))
}

/// Replace the partition's keys by the snapshot, in one transaction.
async fn restore(
    conn: &mut redis::aio::MultiplexedConnection,
    base: &str,
    snapshot: &[(String, Vec<u8>, i64)],
) {
    let now = keys_of(conn, base).await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &now {
        pipe.cmd("DEL").arg(k).ignore();
    }
    for (k, payload, ttl) in snapshot {
        pipe.cmd("RESTORE")
            .arg(k)
            .arg(*ttl)
            .arg(payload.as_slice())
            .arg("REPLACE")
            .ignore();
    }
    let () = pipe.query_async(conn).await.expect("RESTORE");
}

/// The keys under `base`, by `SCAN` (not `KEYS`: the shared test Redis may hold millions of
/// other tests' keys, and one `KEYS` over them outlived the client's timeout under load).
async fn keys_of(conn: &mut redis::aio::MultiplexedConnection, base: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{base}:*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    // SCAN may return a key twice.
    keys.sort();
    keys.dedup();
    keys
}

async fn offset_of(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<i64> {
    let v: Option<String> = redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("GET");
    v.and_then(|s| s.parse().ok())
}

/// A counter's value on the processor's operations port (0 when absent).
async fn metric(addr: &str, name: &str) -> f64 {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("operations port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
