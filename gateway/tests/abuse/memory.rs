//! Bounded memory per request, measured: the peak resident set (`VmHWM` in `/proc/self/status`)
//! of a process serving the real gateway (real Redis, memory sink) while hostile batch bodies
//! arrive concurrently.
//!
//! The bodies are issue 12's: a 31 KB gzip of 16,000,000 NDJSON lines `1\n` and a gzip of the
//! JSON array `[1,1,…]` with as many items (and the CDP batch's `{"items": [1,1,…]}`). Each
//! inflates to 32 MB; split into items before the limit was checked, four of them took the
//! gateway from 18 MB to 479 MB. The gateway must refuse each with 413 after counting past the
//! 50,000-item limit, never holding more than that limit's worth of the body.

use std::io::Write;

use leadstream_gateway::GatewayConfig;

use crate::common::{gzip, spawn_on_store, RoutesApp, ADMIN};

/// Items per hostile body.
const ITEMS: usize = 16_000_000;
/// Concurrent requests of each kind.
const CONCURRENT: usize = 4;
/// The stated bound: peak RSS growth over the baseline while all of them are answered.
const BOUND_MIB: u64 = 64;

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// gzip of `head`, then `ITEMS` copies of `item` (the last one without `sep`), then `tail`,
/// built in chunks so the test itself never holds the inflated text.
fn gzip_items(head: &[u8], item: &[u8], sep: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(head).unwrap();
    let per_chunk = 100_000;
    let mut chunk = Vec::new();
    for _ in 0..per_chunk {
        chunk.extend_from_slice(item);
        chunk.extend_from_slice(sep);
    }
    for _ in 0..(ITEMS / per_chunk - 1) {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(&chunk[..chunk.len() - sep.len()]).unwrap();
    gz.write_all(tail).unwrap();
    gz.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_gzip_batches_are_refused_within_a_stated_memory_bound() {
    let ndjson = gzip_items(b"", b"1", b"\n", b"\n");
    let array = gzip_items(b"[", b"1", b",", b"]");
    let cdp = gzip_items(b"{\"items\":[", b"1", b",", b"]}");
    assert!(ndjson.len() < 64 * 1024, "{} bytes", ndjson.len());

    let gw = RoutesApp::start(spawn_on_store).await;
    let cfg = GatewayConfig::from_source(&gw.env).expect("config");
    assert_eq!(cfg.max_import_items, 50_000);
    let (base, http) = (&gw.base, &gw.http);
    let send = |path: &'static str, ct: &'static str, body: Vec<u8>| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .header("content-type", ct)
            .header("content-encoding", "gzip")
            .body(body);
        async move {
            let resp = req.send().await.expect("answered");
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, body)
        }
    };
    // Warm up (connection pool, the key cache, lazily built state) before the baseline.
    let (status, _) = send("/import", "application/x-ndjson", gzip(b"\n")).await;
    assert!(status < 500, "warm-up answered {status}");
    let before = peak_rss_kib();

    let mut calls = Vec::new();
    for _ in 0..CONCURRENT {
        calls.push(tokio::spawn(send(
            "/import",
            "application/x-ndjson",
            ndjson.clone(),
        )));
        calls.push(tokio::spawn(send(
            "/import",
            "application/json",
            array.clone(),
        )));
        calls.push(tokio::spawn(send(
            "/v1/cdp/events/batch",
            "application/json",
            cdp.clone(),
        )));
    }
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 413, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("items") && !message.contains("bytes"),
            "the 413 speaks of items: {message}"
        );
    }
    let after = peak_rss_kib();
    let grown_mib = after.saturating_sub(before) / 1024;
    println!(
        "peak RSS {} MiB before, {} MiB after {} concurrent hostile bodies (+{grown_mib} MiB)",
        before / 1024,
        after / 1024,
        3 * CONCURRENT
    );
    assert!(
        grown_mib <= BOUND_MIB,
        "peak RSS grew by {grown_mib} MiB (bound {BOUND_MIB} MiB)"
    );
    gw.stop().await;
}
