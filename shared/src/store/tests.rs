//! Conformance: the same command script against the in-memory adapter and a real Redis must give
//! the same answers. Redis comes from `LEADSTREAM_TEST_REDIS_URL` (default the local server that
//! `.ci/run` starts); the test fails, rather than skips, when it is unreachable.

use super::*;

fn redis_url() -> String {
    std::env::var("LEADSTREAM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn script(p: &str) -> Vec<Vec<Cmd>> {
    let k = |s: &str| format!("{p}:{s}");
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        vec![
            Cmd::Set {
                key: k("a"),
                value: b("1"),
                ttl_ms: None,
            },
            Cmd::Get { key: k("a") },
            Cmd::Get { key: k("missing") },
            Cmd::SetNx {
                key: k("a"),
                value: b("2"),
                ttl_ms: Some(10_000),
            },
            Cmd::SetNx {
                key: k("b"),
                value: b("2"),
                ttl_ms: Some(10_000),
            },
            Cmd::MGet {
                keys: vec![k("a"), k("b"), k("c")],
            },
            Cmd::IncrBy { key: k("n"), by: 5 },
            Cmd::IncrBy {
                key: k("n"),
                by: -2,
            },
            Cmd::Exists { key: k("n") },
        ],
        vec![
            Cmd::HSet {
                key: k("h"),
                field: "x".into(),
                value: b("1"),
            },
            Cmd::HSet {
                key: k("h"),
                field: "x".into(),
                value: b("2"),
            },
            Cmd::HSetNx {
                key: k("h"),
                field: "x".into(),
                value: b("3"),
            },
            Cmd::HSetNx {
                key: k("h"),
                field: "y".into(),
                value: b("4"),
            },
            Cmd::HGet {
                key: k("h"),
                field: "x".into(),
            },
            Cmd::HGetAll { key: k("h") },
            Cmd::HLen { key: k("h") },
            Cmd::HDel {
                key: k("h"),
                field: "x".into(),
            },
            Cmd::HGetAll { key: k("nothing") },
        ],
        vec![
            Cmd::ZAdd {
                key: k("z"),
                score: 3.0,
                member: b("c"),
            },
            Cmd::ZAdd {
                key: k("z"),
                score: 1.0,
                member: b("a"),
            },
            Cmd::ZAdd {
                key: k("z"),
                score: 2.0,
                member: b("b"),
            },
            Cmd::ZAdd {
                key: k("z"),
                score: 4.0,
                member: b("a"),
            },
            Cmd::ZRangeByScore {
                key: k("z"),
                min: 0.0,
                max: 3.0,
                limit: None,
            },
            Cmd::ZRangeByScore {
                key: k("z"),
                min: 0.0,
                max: 10.0,
                limit: Some(2),
            },
            Cmd::ZRevRange {
                key: k("z"),
                start: 0,
                stop: 1,
            },
            Cmd::ZRevRange {
                key: k("z"),
                start: 0,
                stop: -1,
            },
            Cmd::ZCard { key: k("z") },
            Cmd::ZRem {
                key: k("z"),
                member: b("b"),
            },
            Cmd::ZRemRangeByRank {
                key: k("z"),
                start: 0,
                stop: 0,
            },
            Cmd::ZAddMany {
                key: k("z"),
                members: vec![(5.0, b("d")), (0.5, b("c")), (6.0, b("d")), (7.0, b("e"))],
            },
            Cmd::ZRevRange {
                key: k("z"),
                start: 0,
                stop: -1,
            },
            Cmd::ZRangeByScore {
                key: k("z"),
                min: 5.5,
                max: 6.5,
                limit: None,
            },
            Cmd::ZRemMany {
                key: k("z"),
                members: vec![b("e"), b("missing"), b("c"), b("e")],
            },
            Cmd::ZRevRange {
                key: k("z"),
                start: 0,
                stop: -1,
            },
            Cmd::ZRevRange {
                key: k("z"),
                start: 0,
                stop: -1,
            },
            Cmd::Del { key: k("z") },
            Cmd::Del { key: k("z") },
        ],
    ]
}

async fn run(store: &dyn Kv, p: &str) -> Vec<Vec<Reply>> {
    let mut out = Vec::new();
    for batch in script(p) {
        out.push(store.exec(batch).await.expect("exec"));
    }
    let k = |s: &str| format!("{p}:{s}");
    // A failing guard changes nothing; a holding one applies every command.
    let failed = store
        .exec_guarded(
            vec![Guard::Absent(k("a"))],
            vec![Cmd::Set {
                key: k("g"),
                value: b"x".to_vec(),
                ttl_ms: None,
            }],
        )
        .await
        .expect("guarded");
    assert!(failed.is_none());
    let applied = store
        .exec_guarded(
            vec![Guard::Equals(k("a"), b"1".to_vec()), Guard::Absent(k("g"))],
            vec![
                Cmd::Set {
                    key: k("g"),
                    value: b"y".to_vec(),
                    ttl_ms: Some(5000),
                },
                Cmd::SetNx {
                    key: k("g"),
                    value: b"z".to_vec(),
                    ttl_ms: None,
                },
                Cmd::HGetAll { key: k("h") },
                Cmd::Get { key: k("g") },
                Cmd::Get { key: k("none") },
                Cmd::ZAddMany {
                    key: k("gz"),
                    members: vec![
                        (1.0, b"p".to_vec()),
                        (2.0, b"q".to_vec()),
                        (3.0, b"p".to_vec()),
                    ],
                },
                Cmd::ZRemMany {
                    key: k("gz"),
                    members: vec![b"q".to_vec(), b"r".to_vec()],
                },
                Cmd::ZRevRange {
                    key: k("gz"),
                    start: 0,
                    stop: -1,
                },
            ],
        )
        .await
        .expect("guarded")
        .expect("guards hold");
    out.push(applied);
    out
}

#[tokio::test]
async fn memory_and_redis_answer_alike() {
    let prefix = format!("conformance:{}", crate::ids::new_id("t"));
    let memory = MemoryKv::new();
    let redis = RedisKv::connect(&redis_url())
        .await
        .expect("redis-server must be running (see .ci/run)");
    let expected = run(&memory, &prefix).await;
    let actual = run(&redis, &prefix).await;
    assert_eq!(expected, actual);
    // Spot-check a few answers against Redis semantics, not just each other.
    let guarded = expected.last().expect("the guarded write's answers");
    assert_eq!(
        guarded[5..],
        [
            Reply::Int(2),
            Reply::Int(1),
            Reply::Array(vec![Reply::Bytes(b"p".to_vec())])
        ],
        "multi-member ZADD / ZREM count new / removed members"
    );
    assert_eq!(expected[0][1], Reply::Bytes(b"1".to_vec()));
    assert_eq!(expected[0][3], Reply::Int(0));
    assert_eq!(expected[0][4], Reply::Int(1));
    assert_eq!(expected[0][7], Reply::Int(3));
    assert_eq!(
        expected[2][4],
        Reply::Array(vec![
            Reply::Bytes(b"b".to_vec()),
            Reply::Bytes(b"c".to_vec())
        ])
    );
    assert_eq!(expected[3][3], Reply::Bytes(b"y".to_vec()));
    // Clean up the Redis side.
    let keys = ["a", "b", "n", "h", "g"].map(|s| Cmd::Del {
        key: format!("{prefix}:{s}"),
    });
    redis.exec(keys.to_vec()).await.expect("cleanup");
}

#[tokio::test]
async fn memory_keys_expire() {
    let m = MemoryKv::new();
    m.exec(vec![Cmd::Set {
        key: "k".into(),
        value: b"v".to_vec(),
        ttl_ms: Some(1),
    }])
    .await
    .expect("set");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = m
        .exec(vec![Cmd::Get { key: "k".into() }])
        .await
        .expect("get");
    assert_eq!(r, vec![Reply::Nil]);
}

/// `HScanPrefix` run to completion finds exactly the fields with the prefix, on a hash large
/// enough for Redis to answer in several steps, with glob characters in the prefix matched
/// literally.
#[tokio::test]
async fn hscan_by_prefix_finds_every_matching_field_on_both_adapters() {
    async fn scan(store: &dyn Kv, key: &str, prefix: &str) -> Vec<String> {
        let mut cursor = 0;
        let mut out = Vec::new();
        let mut steps = 0;
        loop {
            steps += 1;
            let reply = exec_one(
                store,
                Cmd::HScanPrefix {
                    key: key.into(),
                    cursor,
                    prefix: prefix.into(),
                    count: 100,
                },
            )
            .await
            .expect("hscan");
            let mut parts = reply.into_array().into_iter();
            let next: u64 = parts
                .next()
                .and_then(Reply::into_bytes)
                .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
                .expect("cursor");
            for f in parts.next().map(Reply::into_array).unwrap_or_default() {
                out.push(String::from_utf8(f.into_bytes().expect("field")).expect("utf-8"));
            }
            if next == 0 {
                break;
            }
            cursor = next;
            assert!(steps < 10_000, "the scan ends");
        }
        out.sort();
        out.dedup();
        out
    }
    let key = format!("conformance:{}:scan", crate::ids::new_id("t"));
    let pairs: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| {
            let f = match i % 3 {
                0 => format!("unit_*a\u{1f}ld_{i}"),
                1 => format!("unit_xa\u{1f}ld_{i}"),
                _ => format!("other\u{1f}ld_{i}"),
            };
            (f, b"v".to_vec())
        })
        .collect();
    let memory = MemoryKv::new();
    let redis = RedisKv::connect(&redis_url())
        .await
        .expect("redis-server must be running (see .ci/run)");
    for store in [&memory as &dyn Kv, &redis] {
        store
            .exec(vec![Cmd::HSetMany {
                key: key.clone(),
                pairs: pairs.clone(),
            }])
            .await
            .expect("hset");
    }
    let want: Vec<String> = {
        let mut w: Vec<String> = pairs
            .iter()
            .map(|(f, _)| f.clone())
            .filter(|f| f.starts_with("unit_*a\u{1f}"))
            .collect();
        w.sort();
        w
    };
    assert_eq!(want.len(), 334);
    assert_eq!(scan(&memory, &key, "unit_*a\u{1f}").await, want);
    assert_eq!(scan(&redis, &key, "unit_*a\u{1f}").await, want);
    redis.exec(vec![Cmd::Del { key }]).await.expect("cleanup");
}
