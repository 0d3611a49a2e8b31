//! Capacity of the HTTP ingest edge: the gateway in its own process, `wrk` (its own process) as
//! the load generator, concurrency swept until throughput stops rising, and the knee reported
//! beside a bare-producer ceiling measured in the same run on the same kind of broker.
//!
//! `cargo bench -p leadstream-gateway --bench http_sweep` (needs `tansu`, `redis-server` on
//! `LEADSTREAM_TEST_REDIS_URL` or 127.0.0.1:6379, and `wrk`). Knobs:
//! - `BENCH_SCENARIOS`: comma list of `single`, `cdp_batch`, `import` (default all three);
//! - `BENCH_SECONDS`: measured seconds per level (default 2), after 1 s of warm-up;
//! - `BENCH_BATCH_SIZE`: events per `/import` and CDP batch request (default 1000);
//! - `BENCH_PARTITIONS`: partitions of the events topic (default 4);
//! - `BENCH_CEILING_RECORDS`: records per bare-producer send (default 300000; the ceiling is
//!   the median of three sends);
//! - `BENCH_LEVELS`: comma list of concurrencies instead of each scenario's default sweep;
//! - `BENCH_PERF_DIR`: record the gateway process with `perf record -g` during each measured
//!   level, into that directory (`perf report -i DIR/import-8.data`).
//!
//! Every level runs against a fresh tansu broker and a fresh gateway process (tansu 0.6 with
//! memory storage slows down after a few hundred thousand records in one process, which would
//! bound later levels by the broker's history instead of the gateway). A level's throughput is
//! wrk's request rate (× the batch size for batches), cross-checked against the records the
//! broker holds afterwards; p99 is wrk's per-request latency. The knee is the lowest concurrency
//! whose throughput is within 5% of the best level. Output: one human line and one
//! `PERF {json}` line per level, per knee and for the ceiling (`scripts/perf-report`).
//!
//! `BENCH_ROLE=gateway` makes this executable the gateway process itself (configured from the
//! environment like `leadstream gateway`): the sweep re-executes itself in that role, so the
//! measured gateway is the release build of this commit without building the whole CLI.
//! `BENCH_ROLE=sender` makes it the open-loop sender of the half-knee latency run, so that
//! generator too has a process of its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use leadstream_shared::avro::encode_event;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings};
use leadstream_testkit::{free_port, redis_url, unique, Broker};

mod common;
use common::{env_usize, perf, sample_event};

const ADMIN: &str = "bench-bootstrap-admin-key-0123456789";
const TOPIC_PREFIX: &str = "sweep";

/// One way of sending events over HTTP.
struct Scenario {
    name: &'static str,
    path: &'static str,
    /// Events per request.
    events: usize,
    levels: &'static [usize],
    /// The wrk Lua script (request shape).
    lua: String,
}

fn scenarios(batch: usize) -> Vec<Scenario> {
    let single_lua = r#"
function init(args)
  key = args[2]
end
local n = 0
function request()
  n = n + 1
  local body = string.format('{"lead_id":"ld_bench%d","event_type":"page_view","timestamp":"2025-09-15T14:30:00Z","metadata":{"path":"/pricing/enterprise","utm_source":"google","utm_campaign":"q3-launch","referrer":"https://www.example.com/blog/post"}}', n % 10000)
  return wrk.format("POST", "/ingest", {["Authorization"]="Bearer " .. key, ["Content-Type"]="application/json"}, body)
end
"#
    .to_string();
    let import_lua = format!(
        r#"
function init(args)
  key = args[2]
end
local lines = {{}}
for i = 1, {batch} do
  lines[i] = string.format('{{"lead_id":"ld_bench%d","event_type":"page_view","timestamp":"2025-09-15T14:30:00Z","metadata":{{"path":"/pricing/enterprise","utm_source":"google","utm_campaign":"q3-launch","referrer":"https://www.example.com/blog/post"}}}}', i % 10000)
end
local body = table.concat(lines, "\n") .. "\n"
function request()
  return wrk.format("POST", "/import", {{["Authorization"]="Bearer " .. key, ["Content-Type"]="application/x-ndjson"}}, body)
end
"#
    );
    // CDP items carry the producer's externalEventId (the gateway dedupes on it), so every
    // request is built with new ids: a thread-local counter, prefixed by the wrk thread.
    let cdp_lua = format!(
        r#"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
-- The run id (a script argument) keeps the warm-up's ids apart from the measured run's.
local run = "0"
function init(args)
  run = args[1] or "0"
  key = args[2]
end
local n = 0
local parts = {{}}
function request()
  n = n + 1
  for i = 1, {batch} do
    parts[i] = string.format('{{"source":"bench.pos","externalEventId":"%s-t%d-r%d-i%d","eventType":"page_view","occurredAt":"2025-09-15T14:30:00Z","identity":{{"externalUserId":"cust_%d"}},"properties":{{"path":"/pricing/enterprise","utm_source":"google","utm_campaign":"q3-launch"}}}}', run, tid or 0, n, i, i % 10000)
  end
  local body = '{{"items":[' .. table.concat(parts, ",") .. ']}}'
  return wrk.format("POST", "/v1/cdp/events/batch", {{["Authorization"]="Bearer " .. key, ["Content-Type"]="application/json"}}, body)
end
"#
    );
    vec![
        Scenario {
            name: "single",
            path: "/ingest",
            events: 1,
            levels: &[16, 32, 64, 128, 256, 512],
            lua: single_lua,
        },
        Scenario {
            name: "cdp_batch",
            path: "/v1/cdp/events/batch",
            events: batch,
            levels: &[1, 2, 4, 8, 16, 32],
            lua: cdp_lua,
        },
        Scenario {
            name: "import",
            path: "/import",
            events: batch,
            levels: &[1, 2, 4, 8, 16, 32],
            lua: import_lua,
        },
    ]
}

/// The gateway as a child process (this executable in the gateway role).
struct GatewayProcess {
    child: Child,
    base: String,
}

impl GatewayProcess {
    fn start(brokers: &str, partitions: usize) -> GatewayProcess {
        let port = free_port();
        let prefix = unique("sweep");
        let exe = std::env::current_exe().expect("own executable");
        let child = Command::new(exe)
            .env("BENCH_ROLE", "gateway")
            .env("LEADSTREAM_KAFKA_BROKERS", brokers)
            .env("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true")
            .env("LEADSTREAM_REDIS_URL", redis_url())
            .env("LEADSTREAM_TOPIC_PREFIX", TOPIC_PREFIX)
            .env("LEADSTREAM_REDIS_PREFIX", prefix)
            .env("LEADSTREAM_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("LEADSTREAM_PARTITIONS", partitions.to_string())
            .env("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN)
            .env("LEADSTREAM_RATE_LIMIT_PER_SEC", "0")
            .env("LEADSTREAM_OU_EVENT_RATE", "0")
            .env("LEADSTREAM_KEY_EVENT_RATE", "0")
            .env("LEADSTREAM_SHUTDOWN_DELAY", "0s")
            .env("LEADSTREAM_MAX_IN_FLIGHT", "100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the gateway process");
        GatewayProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the gateway process exited during start-up: {status}");
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "gateway not ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl GatewayProcess {
    /// The credential producers use: an ingest key bound to one OU (a key that may use several
    /// OUs costs a Redis lookup of its remembered active OU per request; see the README).
    async fn ingest_key(&self) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/api-keys", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "sweep", "scopes": ["ingest"], "ou_ids": ["unit_default"]}))
            .send()
            .await
            .expect("create the ingest key");
        assert_eq!(resp.status(), 201, "creating the ingest key");
        let body: serde_json::Value = resp.json().await.expect("key body");
        body["key"].as_str().expect("key secret").to_string()
    }

    /// CDP items are accepted only for event types of the OU's contract.
    async fn register_cdp_event_type(&self) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/cdp/event-types", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "page_view", "properties": {"path": "string"}}))
            .send()
            .await
            .expect("register the CDP event type");
        assert_eq!(resp.status(), 201, "registering the CDP event type");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What wrk measured at one level.
#[derive(Debug, Clone, Copy)]
struct Level {
    concurrency: usize,
    requests_per_s: f64,
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
    stored: i64,
    sent_events: u64,
    /// The gateway process's CPU time (user + system) per event sent, in microseconds.
    cpu_us_per_event: f64,
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may contain spaces) follow its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name and state.
    let hz = 100.0;
    (ticks(11) + ticks(12)) / hz
}

fn duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (num, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

/// Run wrk at `concurrency` for `seconds`; (requests/s, p50 ms, p99 ms, non-2xx + errors, requests).
fn wrk(
    key: &str,
    url: &str,
    lua: &std::path::Path,
    concurrency: usize,
    seconds: usize,
) -> (f64, f64, f64, u64, u64) {
    let threads = concurrency.min(2);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &concurrency.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
            "-s",
        ])
        .arg(lua)
        .arg(url)
        .arg("--")
        .arg(unique("run"))
        .arg(key)
        .output()
        .expect("run wrk (install it: apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rps = 0.0;
    let (mut p50, mut p99) = (0.0, 0.0);
    let mut failed = 0u64;
    let mut requests = 0u64;
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = duration_ms(v).unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = duration_ms(v).unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            failed += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 3"
            failed += v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if t.contains("requests in") {
            requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    assert!(
        rps > 0.0 || seconds < 2,
        "wrk printed no rate:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rps, p50, p99, failed, requests)
}

/// Records the broker holds on the events topic (sum of the partitions' high watermarks).
fn stored_records(brokers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("sweep-count"))
        .create()
        .expect("consumer");
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return -1;
    };
    let partitions = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    (0..partitions as i32)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map(|(_, high)| high)
                .unwrap_or(0)
        })
        .sum()
}

async fn run_level(
    sc: &Scenario,
    lua: &std::path::Path,
    concurrency: usize,
    seconds: usize,
    partitions: usize,
) -> Level {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .expect("broker");
    let brokers = broker.addr();
    let mut gw = GatewayProcess::start(&brokers, partitions);
    gw.wait_ready().await;
    gw.register_cdp_event_type().await;
    let key = gw.ingest_key().await;
    let url = format!("{}{}", gw.base, sc.path);
    // Warm-up: connections, metadata, the producer id, caches.
    let warm = (url.clone(), lua.to_path_buf(), key.clone());
    // (A warm-up in which no request completed is not an error: the first requests of a cold
    // gateway can take longer than it.)
    tokio::task::spawn_blocking(move || wrk(&warm.2, &warm.0, &warm.1, concurrency, 1))
        .await
        .expect("warm-up");
    let before = stored_records(&brokers, &format!("{TOPIC_PREFIX}.events.v1"));
    let profiler = std::env::var("BENCH_PERF_DIR").ok().map(|dir| {
        Command::new("perf")
            .args(["record", "-q", "-F", "499", "-g", "-p"])
            .arg(gw.child.id().to_string())
            .arg("-o")
            .arg(std::path::Path::new(&dir).join(format!("{}-{concurrency}.data", sc.name)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run perf record")
    });
    let lua_path = lua.to_path_buf();
    let cpu_before = cpu_seconds(gw.child.id());
    let (rps, p50, p99, failed, requests) =
        tokio::task::spawn_blocking(move || wrk(&key, &url, &lua_path, concurrency, seconds))
            .await
            .expect("wrk");
    let cpu = cpu_seconds(gw.child.id()) - cpu_before;
    if let Some(mut p) = profiler {
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
    // Let the last acknowledged records settle, then count what the broker holds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = stored_records(&brokers, &format!("{TOPIC_PREFIX}.events.v1"));
    drop(gw);
    drop(broker);
    let sent_events = requests * sc.events as u64;
    // Every answered request's events must be on the broker (the count also includes the
    // warm-up's last requests, so it may be a little higher): otherwise the level measured
    // refusals, not ingest, and it is reported as failed.
    let failed = if ((after - before) as f64) < 0.99 * sent_events as f64 {
        eprintln!(
            "{} at {concurrency}: only {} of {sent_events} events reached the broker",
            sc.name,
            after - before
        );
        failed.max(sent_events - (after - before).max(0) as u64)
    } else {
        failed
    };
    Level {
        concurrency,
        requests_per_s: rps,
        events_per_s: rps * sc.events as f64,
        p50_ms: p50,
        p99_ms: p99,
        failed,
        stored: after - before,
        sent_events: requests * sc.events as u64,
        cpu_us_per_event: cpu * 1e6 / (requests * sc.events as u64).max(1) as f64,
    }
}

/// One bare-producer send: the same kind of records (Avro, keyed by lead, traceparent-free),
/// enqueued as fast as librdkafka takes them, with the gateway's producer settings.
async fn ceiling(records: usize, partitions: usize) -> (f64, usize) {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .expect("broker");
    let brokers = broker.addr();
    let topic = format!("{TOPIC_PREFIX}.events.v1");
    let mut settings = KafkaSettings::new(brokers.clone());
    settings.test_broker_quirks = true;
    ensure_topics(&settings, &[&topic], partitions as i32, 1)
        .await
        .expect("topic");
    let producer: FutureProducer = settings
        .producer_config(Duration::from_secs(30))
        .create()
        .expect("producer");
    let payloads: Vec<(String, Vec<u8>)> = (0..records)
        .map(|i| {
            let e = sample_event(i);
            (e.kafka_key(), encode_event(&e).expect("avro"))
        })
        .collect();
    let (k, v) = &payloads[0];
    producer
        .send(
            FutureRecord::to(&topic).key(k).payload(v),
            Duration::from_secs(5),
        )
        .await
        .expect("warm-up record");
    let started = Instant::now();
    let mut ok = 0;
    for chunk in payloads.chunks(20_000) {
        let pending: Vec<_> = chunk
            .iter()
            .filter_map(|(k, v)| {
                producer
                    .send_result(FutureRecord::to(&topic).key(k).payload(v))
                    .ok()
            })
            .collect();
        for p in pending {
            if matches!(p.await, Ok(Ok(_))) {
                ok += 1;
            }
        }
    }
    let rate = ok as f64 / started.elapsed().as_secs_f64();
    drop(producer);
    drop(broker);
    (rate, ok)
}

/// Open loop from this process: `rate` single events/s for `seconds` against a fresh broker and
/// gateway; (p50 ms, p99 ms, failed, sent).
/// The open-loop latency at `rate` requests/s: a fresh broker and gateway, and the sender in a
/// process of its own (this executable in the `sender` role, [`sender_role`]), like wrk in the
/// sweep. Answers the sender's result line.
async fn paced_single(rate: f64, seconds: usize, partitions: usize) -> Paced {
    let broker = tokio::task::spawn_blocking(Broker::start)
        .await
        .expect("broker");
    let mut gw = GatewayProcess::start(&broker.addr(), partitions);
    gw.wait_ready().await;
    let key = gw.ingest_key().await;
    let exe = std::env::current_exe().expect("own executable");
    let out = tokio::process::Command::new(exe)
        .env("BENCH_ROLE", "sender")
        .env("BENCH_SENDER_URL", format!("{}/ingest", gw.base))
        .env("BENCH_SENDER_KEY", key)
        .env("BENCH_SENDER_RATE", rate.to_string())
        .env("BENCH_SENDER_SECONDS", seconds.to_string())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the sender process");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("sender answered {text:?}: {e}"))
}

/// What the open-loop sender measured.
#[derive(serde::Serialize, serde::Deserialize)]
struct Paced {
    p50_ms: f64,
    p99_ms: f64,
    sent: usize,
    failed: usize,
    /// Failures by kind: an HTTP status, `timeout`, `connect`, or `other`.
    failures: BTreeMap<String, usize>,
}

/// `BENCH_ROLE=sender`: send single events to `BENCH_SENDER_URL` on a fixed schedule of
/// `BENCH_SENDER_RATE` requests/s (a slow answer does not slow the schedule down), a second of
/// warm-up then `BENCH_SENDER_SECONDS` measured; print one JSON [`Paced`] line.
async fn sender_role() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is required"));
    let url = var("BENCH_SENDER_URL");
    let key = var("BENCH_SENDER_KEY");
    let rate: f64 = var("BENCH_SENDER_RATE").parse().expect("rate");
    let seconds: usize = var("BENCH_SENDER_SECONDS").parse().expect("seconds");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let send = |i: usize| {
        let client = client.clone();
        let url = url.clone();
        let key = key.clone();
        let body = serde_json::to_vec(&json!({
            "lead_id": format!("ld_bench{}", i % 10_000), "event_type": "page_view",
            "timestamp": "2025-09-15T14:30:00Z",
            "metadata": {"path": "/pricing/enterprise", "utm_source": "google",
                         "utm_campaign": "q3-launch", "referrer": "https://www.example.com/blog/post"}
        }))
        .expect("json");
        tokio::spawn(async move {
            let t = Instant::now();
            let outcome = match client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) if r.status() == 202 => None,
                Ok(r) => Some(r.status().as_u16().to_string()),
                Err(e) if e.is_timeout() => Some("timeout".to_string()),
                Err(e) if e.is_connect() => Some("connect".to_string()),
                Err(_) => Some("other".to_string()),
            };
            (outcome, t.elapsed())
        })
    };
    // Warm-up at the same rate for a second, then the measured phase.
    for phase in [1, seconds] {
        let n = (rate * phase as f64) as usize;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            tick.tick().await;
            handles.push(send(i));
        }
        let mut lat = Vec::with_capacity(n);
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for h in handles {
            if let Ok((outcome, d)) = h.await {
                if let Some(kind) = outcome {
                    *failures.entry(kind).or_default() += 1;
                }
                lat.push(d);
            }
        }
        if phase == seconds {
            lat.sort();
            let pct = |p: f64| {
                lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
                    .map(|d| d.as_secs_f64() * 1000.0)
                    .unwrap_or(0.0)
            };
            let paced = Paced {
                p50_ms: pct(0.50),
                p99_ms: pct(0.99),
                sent: n,
                failed: failures.values().sum(),
                failures,
            };
            println!("{}", serde_json::to_string(&paced).expect("json"));
            return;
        }
    }
}

/// The knee: the lowest concurrency within 5% of the best throughput.
fn knee(levels: &[Level]) -> Option<Level> {
    let best = levels.iter().map(|l| l.events_per_s).fold(0.0, f64::max);
    levels
        .iter()
        .copied()
        .find(|l| l.events_per_s >= 0.95 * best)
}

async fn gateway_role() {
    let shutdown = CancellationToken::new();
    let cfg = leadstream_gateway::GatewayConfig::from_env().expect("gateway configuration");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    if let Err(e) = leadstream_gateway::run(cfg, shutdown).await {
        eprintln!("gateway: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    match std::env::var("BENCH_ROLE").as_deref() {
        Ok("gateway") => return gateway_role().await,
        Ok("sender") => return sender_role().await,
        _ => {}
    }
    let seconds = env_usize("BENCH_SECONDS", 2);
    let batch = env_usize("BENCH_BATCH_SIZE", 1000);
    let partitions = env_usize("BENCH_PARTITIONS", 4);
    let ceiling_records = env_usize("BENCH_CEILING_RECORDS", 300_000);
    let wanted: Vec<String> = std::env::var("BENCH_SCENARIOS")
        .unwrap_or_else(|_| "single,cdp_batch,import".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let dir = std::env::temp_dir().join(unique("http-sweep"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!(
        "setup: gateway in its own process (this bench's release build), wrk -t2, a fresh tansu \
         broker (memory storage) and gateway per level, {partitions} partitions, redis-server; \
         {seconds} s per level after 1 s of warm-up; {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // The ceiling is the median of three sends, each to a fresh broker: single sends a few
    // minutes apart differed by 1.7× on an idle machine.
    let mut sends = Vec::new();
    for _ in 0..3 {
        sends.push(ceiling(ceiling_records, partitions).await);
    }
    let rates: Vec<f64> = sends.iter().map(|(r, _)| *r).collect();
    sends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ceiling_rate, ceiling_n) = sends[1];
    println!(
        "ceiling bare rdkafka producer: {ceiling_n} records per send, median of 3 sends: {ceiling_rate:.0} records/s (sends: {})",
        rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
    );
    perf(
        json!({"name": "sweep_kafka_ceiling", "records": ceiling_n, "records_per_s": ceiling_rate,
                "sends_records_per_s": rates, "partitions": partitions}),
    );

    let mut knees: BTreeMap<&str, Level> = BTreeMap::new();
    // (The knees are also kept for a summary line at the end.)
    for sc in scenarios(batch)
        .into_iter()
        .filter(|s| wanted.iter().any(|w| w == s.name))
    {
        let lua = dir.join(format!("{}.lua", sc.name));
        std::fs::File::create(&lua)
            .and_then(|mut f| f.write_all(sc.lua.as_bytes()))
            .expect("write the wrk script");
        let mut levels: Vec<Level> = Vec::new();
        let mut flat = 0;
        let chosen: Vec<usize> = match std::env::var("BENCH_LEVELS") {
            Ok(v) => v.split(',').filter_map(|c| c.trim().parse().ok()).collect(),
            Err(_) => sc.levels.to_vec(),
        };
        for c in chosen {
            let l = run_level(&sc, &lua, c, seconds, partitions).await;
            println!(
                "{:9} {:22} concurrency {:4}: {:9.0} req/s {:9.0} events/s  p50 {:7.2} ms  p99 {:7.2} ms  failed {}  stored {} of {} sent  gateway CPU {:.1} µs/event",
                sc.name, sc.path, c, l.requests_per_s, l.events_per_s, l.p50_ms, l.p99_ms, l.failed, l.stored, l.sent_events, l.cpu_us_per_event
            );
            perf(
                json!({"name": format!("sweep_{}", sc.name), "path": sc.path, "concurrency": c,
                        "events_per_request": sc.events, "requests_per_s": l.requests_per_s,
                        "events_per_s": l.events_per_s, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms,
                        "failed": l.failed, "stored": l.stored, "sent_events": l.sent_events,
                        "gateway_cpu_us_per_event": l.cpu_us_per_event}),
            );
            let best = levels.iter().map(|l| l.events_per_s).fold(0.0, f64::max);
            flat = if l.events_per_s < best * 1.03 {
                flat + 1
            } else {
                0
            };
            levels.push(l);
            // Throughput stopped rising: two levels in a row without a 3% gain.
            if flat >= 2 {
                break;
            }
        }
        if let Some(k) = knee(&levels) {
            println!(
                "{:9} knee: concurrency {}: {:.0} events/s ({:.1}% of the bare producer), p99 {:.2} ms",
                sc.name,
                k.concurrency,
                k.events_per_s,
                100.0 * k.events_per_s / ceiling_rate,
                k.p99_ms
            );
            perf(
                json!({"name": format!("sweep_{}_knee", sc.name), "path": sc.path,
                        "concurrency": k.concurrency, "events_per_s": k.events_per_s,
                        "requests_per_s": k.requests_per_s, "p99_ms": k.p99_ms,
                        "of_ceiling": k.events_per_s / ceiling_rate}),
            );
            knees.insert(sc.name, k);
            if sc.name == "single" {
                // Latency at half of the knee's rate, open loop (a fixed send schedule, so a
                // slow answer does not slow the senders down).
                let rate = k.requests_per_s / 2.0;
                let p = paced_single(rate, 5, partitions).await;
                println!(
                    "single    at half the knee ({rate:.0} req/s, open loop from a sender process, {} requests): p50 {:.2} ms, p99 {:.2} ms, failed {} {:?}",
                    p.sent, p.p50_ms, p.p99_ms, p.failed, p.failures
                );
                perf(
                    json!({"name": "sweep_single_half", "rate": rate, "requests": p.sent,
                            "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "failed": p.failed,
                            "failures": p.failures}),
                );
            }
        }
    }
    for (name, k) in &knees {
        println!(
            "summary {name}: knee at concurrency {} = {:.0} events/s, {:.1}% of the bare producer's {ceiling_rate:.0} records/s",
            k.concurrency,
            k.events_per_s,
            100.0 * k.events_per_s / ceiling_rate
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
