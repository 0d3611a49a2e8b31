//! Notifier capacity: signed webhook deliveries/s to a receiver in another process, with the
//! notifier's concurrency swept until throughput stops rising, and the knee reported.
//!
//! `cargo bench -p leadstream-notifier --bench webhooks` (needs `tansu` and `redis-server`).
//!
//! Processes: the tansu broker (a fresh one per level), redis-server, the notifier (the crate's
//! `leadstream-notifier` binary, a fresh process per level, as operators run it), the receiver
//! (this bench binary started again with `LEADSTREAM_BENCH_ROLE=receiver`: an axum server that
//! verifies every `webhook-signature` against the OU's secret and records each `webhook-id` with
//! its arrival time) and this driver, which produces the fired records and reads the receiver's
//! log. Nothing of the driver runs while a level is measured but the receiver's bookkeeping.
//!
//! Per level `c` (`LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY` = `…_MAX_IN_FLIGHT` =
//! `…_OU_SHARE` = `c`, one OU, one endpoint, so `c` is the number of attempts in flight): a
//! backlog of `BENCH_N` fired records (default 20,000, one lead each, 4 partitions) is produced
//! first, then the notifier starts and drains it; deliveries/s is measured at the receiver from
//! the first to the last arrival. Every record must arrive exactly once with a valid signature.
//! Levels (`BENCH_LEVELS`, default `8,16,32,64,128,256,512`) run in order until two in a row
//! raise the best throughput by less than 5 %. The knee is the lowest level within 5 % of the
//! best. At the knee a paced run (open loop, `BENCH_PACED_FRACTION` of the knee's rate, default
//! 0.8, for `BENCH_PACED_S` seconds, default 5) measures fired → delivered latency.
//!
//! Output: one `PERF {json}` line per level (`name: "notifier_level"`) and one for the knee
//! (`name: "notifier_knee"`), beside the human lines. `BENCH_PERF_DIR=dir` also records each
//! level's notifier with `perf record -g` into `dir/notifier-c{c}.data`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use leadstream_domain::fired::{Targets, TriggerFired, TriggerKind};
use leadstream_shared::ids::now_ms;
use leadstream_shared::kafka::{ensure_topics, KafkaSettings, Publisher};
use leadstream_testkit::{redis_url, unique, Broker, ChildGuard};
use serde_json::json;

const ROLE: &str = "LEADSTREAM_BENCH_ROLE";
const OU: &str = "unit_default";
const PARTITIONS: i32 = 4;

fn main() {
    if std::env::var(ROLE).is_ok_and(|r| r == "receiver") {
        receiver::main();
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(driver());
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clock_ticks_per_s()
}

/// `getconf CLK_TCK` (the unit of /proc/<pid>/stat's times), 100 if it cannot be read.
fn clock_ticks_per_s() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The pid of the redis-server at `url` (`INFO server`), 0 when it cannot be read.
fn redis_pid(url: &str) -> u32 {
    Command::new("redis-cli")
        .args(["-u", url, "INFO", "server"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.trim().strip_prefix("process_id:").map(str::to_string))
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

// ---------- The receiver process ----------

mod receiver {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::{get, post};

    #[derive(Default)]
    struct Rx {
        key: Vec<u8>,
        /// (webhook-id, arrival in Unix microseconds)
        log: Mutex<Vec<(String, i64)>>,
        bad_signature: AtomicU64,
        unsigned: AtomicU64,
    }

    fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> Option<bool> {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let sigs = h("webhook-signature")?;
        let (id, ts) = (h("webhook-id")?, h("webhook-timestamp")?);
        Some(leadstream_testkit::receiver::verify_key(
            key, id, ts, body, sigs,
        ))
    }

    async fn hook(State(rx): State<Arc<Rx>>, headers: HeaderMap, body: Bytes) -> &'static str {
        let at = super::unix_us();
        match verify(&rx.key, &headers, &body) {
            Some(true) => {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                rx.log.lock().unwrap().push((id, at));
            }
            Some(false) => {
                rx.bad_signature.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                rx.unsigned.fetch_add(1, Ordering::Relaxed);
            }
        }
        "ok"
    }

    async fn stats(State(rx): State<Arc<Rx>>) -> String {
        let n = rx.log.lock().unwrap().len();
        format!(
            "{} {} {}",
            n,
            rx.bad_signature.load(Ordering::Relaxed),
            rx.unsigned.load(Ordering::Relaxed)
        )
    }

    /// The log as `id at_us` lines, and cleared.
    async fn take(State(rx): State<Arc<Rx>>) -> String {
        let log = std::mem::take(&mut *rx.log.lock().unwrap());
        rx.bad_signature.store(0, Ordering::Relaxed);
        rx.unsigned.store(0, Ordering::Relaxed);
        let mut out = String::with_capacity(log.len() * 40);
        for (id, at) in log {
            out.push_str(&id);
            out.push(' ');
            out.push_str(&at.to_string());
            out.push('\n');
        }
        out
    }

    pub fn main() {
        let secret = std::env::var("BENCH_RECEIVER_SECRET").expect("BENCH_RECEIVER_SECRET");
        let key = leadstream_testkit::receiver::secret_key(&secret).expect("a whsec_ secret");
        let threads: usize = super::env_or("BENCH_RECEIVER_THREADS", 2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let rx = Arc::new(Rx {
                key,
                ..Rx::default()
            });
            let app = axum::Router::new()
                .route("/hook", post(hook))
                .route("/_stats", get(stats))
                .route("/_take", post(take))
                .with_state(rx);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut out = std::io::stdout();
            writeln!(out, "LISTEN {addr}").unwrap();
            out.flush().unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    }
}

fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// The receiver process, driven over HTTP.
struct Receiver {
    child: ChildGuard,
    base: String,
    http: reqwest::Client,
}

impl Receiver {
    fn start(secret: &str) -> Receiver {
        let exe = std::env::current_exe().expect("bench exe");
        let mut cmd = Command::new(exe);
        cmd.env(ROLE, "receiver")
            .env("BENCH_RECEIVER_SECRET", secret)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = ChildGuard::spawn(&mut cmd).expect("receiver process");
        let stdout = child.0.as_mut().and_then(|c| c.stdout.take()).unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("LISTEN ")
            .expect("LISTEN line")
            .to_string();
        Receiver {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// The text the receiver answers to `method` on `path`.
    async fn ask(&self, method: reqwest::Method, path: &str) -> String {
        self.http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// (verified requests, bad signatures, unsigned) so far.
    async fn stats(&self) -> (usize, u64, u64) {
        let t = self.ask(reqwest::Method::GET, "/_stats").await;
        let v: Vec<u64> = t.split(' ').map(|x| x.parse().unwrap()).collect();
        (v[0] as usize, v[1], v[2])
    }

    /// Every verified (webhook-id, arrival µs) so far; the log starts afresh.
    async fn take(&self) -> Vec<(String, i64)> {
        let t = self.ask(reqwest::Method::POST, "/_take").await;
        t.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, at)| (id.to_string(), at.parse().unwrap()))
            .collect()
    }
}

fn record(tag: &str, i: usize, url: &str) -> TriggerFired {
    let lead = format!("ld_{tag}_{i}");
    TriggerFired {
        fired_id: leadstream_shared::ids::derived_id("fir", &["bench", &lead]),
        org_id: "org_default".into(),
        ou_id: OU.into(),
        lead_id: lead.clone(),
        trigger_id: "trg_bench".into(),
        trigger_name: "Bench".into(),
        kind: TriggerKind::Milestone,
        event_id: format!("evt_{tag}_{i}"),
        fired_at_ms: now_ms(),
        score: 80,
        payload: json!({"trigger": {"id": "trg_bench", "name": "Bench", "type": "milestone"},
            "event": {"id": format!("evt_{tag}_{i}"), "lead_id": lead, "event_type": "page_view",
                      "metadata": {"page": "/pricing"}, "created_at": "2025-01-15T10:35:00Z"},
            "score": 80}),
        targets: Targets {
            webhook_url: Some(url.to_string()),
            ..Targets::default()
        },
    }
}

/// Everything one level needs: its own broker, topics and consumer group.
struct Level {
    broker: Broker,
    vars: BTreeMap<String, String>,
    fired_topic: String,
    publisher: Publisher,
}

impl Level {
    async fn new(redis_prefix: &str, c: usize, fetch_wait: u64) -> Level {
        let broker = Broker::start();
        let topic_prefix = unique("nbench");
        // Topics and group per level; the keys (and the OU's signing secret) shared.
        let mut vars = leadstream_testkit::vars::service(
            &broker.addr(),
            &redis_url(),
            &topic_prefix,
            PARTITIONS,
        );
        vars.extend(
            [
                ("LEADSTREAM_REDIS_PREFIX", redis_prefix.to_string()),
                ("LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", fetch_wait.to_string()),
                ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
                ("LEADSTREAM_NOTIFIER_ENDPOINT_CONCURRENCY", c.to_string()),
                ("LEADSTREAM_NOTIFIER_MAX_IN_FLIGHT", c.to_string()),
                ("LEADSTREAM_NOTIFIER_OU_SHARE", c.to_string()),
                ("LEADSTREAM_NOTIFIER_GROUP", format!("{topic_prefix}_n")),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let cfg = leadstream_notifier::NotifierConfig::from_source(&vars).expect("config");
        let kafka = KafkaSettings::new(broker.addr());
        ensure_topics(
            &kafka,
            &[&cfg.common.topics.fired, &cfg.common.topics.dlq],
            PARTITIONS,
            1,
        )
        .await
        .expect("topics");
        Level {
            broker,
            fired_topic: cfg.common.topics.fired.clone(),
            publisher: Publisher::new(&kafka, Duration::from_secs(60)).expect("producer"),
            vars,
        }
    }

    async fn produce(&self, f: &TriggerFired) {
        let bytes = leadstream_shared::avro::encode_fired(f).unwrap();
        self.publisher
            .send(&self.fired_topic, &f.kafka_key(), &bytes, &[])
            .await
            .expect("produce");
    }

    /// The notifier binary with this level's settings; its log goes to `log`.
    fn notifier(&self, log: &std::path::Path) -> ChildGuard {
        let file = std::fs::File::create(log).expect("notifier log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadstream-notifier"));
        cmd.envs(&self.vars)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        ChildGuard::spawn(&mut cmd).expect("notifier process")
    }
}

async fn stop(mut notifier: ChildGuard) {
    notifier.signal_term();
    if notifier.wait_exit(Duration::from_secs(30)).await.is_none() {
        notifier.kill9();
    }
}

/// `perf record` on a process until dropped.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(pid: u32, out: Option<std::path::PathBuf>) -> Perf {
        Perf(out.and_then(|out| {
            Command::new("perf")
                .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
                .arg(out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        }))
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // SIGINT lets perf write its file.
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone)]
struct Drain {
    concurrency: usize,
    records: usize,
    delivered: usize,
    distinct: usize,
    deliveries_per_s: f64,
    drain_s: f64,
    notifier_cpu_s: f64,
    receiver_cpu_s: f64,
    redis_cpu_s: f64,
}

/// One level: a backlog of `n` records, drained by a notifier with `c` attempts in flight.
async fn drain_level(
    rx: &Receiver,
    redis_prefix: &str,
    c: usize,
    n: usize,
    fetch_wait: u64,
) -> Drain {
    let level = Level::new(redis_prefix, c, fetch_wait).await;
    let url = rx.url();
    let tag = unique("c");
    let records: Vec<TriggerFired> = (0..n).map(|i| record(&tag, i, &url)).collect();
    let ids: HashSet<String> = records.iter().map(|f| f.fired_id.clone()).collect();
    // The backlog, produced before the notifier starts (at most 2,000 sends in flight).
    for chunk in records.chunks(2000) {
        futures::future::join_all(chunk.iter().map(|f| level.produce(f))).await;
    }
    rx.take().await;
    let log_dir = std::env::temp_dir();
    let notifier = level.notifier(&log_dir.join(format!("{tag}-notifier.log")));
    let pid = notifier.id();
    let perf_out = std::env::var("BENCH_PERF_DIR")
        .ok()
        .map(|d| std::path::Path::new(&d).join(format!("notifier-c{c}.data")));
    let perf = Perf::start(pid, perf_out);
    let rx_pid = rx.child.id();
    let redis = redis_pid(&redis_url());
    let (cpu0, rcpu0, dcpu0) = (cpu_seconds(pid), cpu_seconds(rx_pid), cpu_seconds(redis));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (got, bad, unsigned) = rx.stats().await;
        assert_eq!((bad, unsigned), (0, 0), "every webhook signed and verified");
        if got >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu1, rcpu1, dcpu1) = (cpu_seconds(pid), cpu_seconds(rx_pid), cpu_seconds(redis));
    drop(perf);
    // A moment for any duplicate to show up before the log is read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.take().await;
    stop(notifier).await;
    drop(level.broker);
    let distinct: HashSet<&String> = got.iter().map(|(id, _)| id).collect();
    assert!(
        distinct.iter().all(|id| ids.contains(*id)),
        "unknown webhook-id"
    );
    let first = got.iter().map(|(_, at)| *at).min().unwrap_or(0);
    let last = got.iter().map(|(_, at)| *at).max().unwrap_or(0);
    let drain_s = (last - first) as f64 / 1e6;
    Drain {
        concurrency: c,
        records: n,
        delivered: got.len(),
        distinct: distinct.len(),
        deliveries_per_s: if drain_s > 0.0 {
            (got.len() - 1) as f64 / drain_s
        } else {
            0.0
        },
        drain_s,
        notifier_cpu_s: cpu1 - cpu0,
        receiver_cpu_s: rcpu1 - rcpu0,
        redis_cpu_s: dcpu1 - dcpu0,
    }
}

#[derive(Debug, Clone)]
struct Paced {
    rate: usize,
    sent: usize,
    delivered: usize,
    p50_ms: i64,
    p99_ms: i64,
    max_ms: i64,
    achieved_per_s: f64,
}

/// Open loop at `rate` records/s for `secs`, notifier already running: fired → delivered.
async fn paced(
    rx: &Receiver,
    redis_prefix: &str,
    c: usize,
    rate: usize,
    secs: u64,
    fetch_wait: u64,
) -> Paced {
    let level = Arc::new(Level::new(redis_prefix, c, fetch_wait).await);
    let url = rx.url();
    let tag = unique("p");
    let log_dir = std::env::temp_dir();
    let notifier = level.notifier(&log_dir.join(format!("{tag}-notifier.log")));
    // Warm up: one record through the whole path (group join, connections, secrets).
    level.produce(&record(&tag, usize::MAX, &url)).await;
    while rx.stats().await.0 == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rx.take().await;
    let fired_at: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let total = rate * secs as usize;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = rate as f64 / 100.0;
    let mut sent = 0usize;
    let mut sends = Vec::new();
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * 100.0).floor() as usize + 1) as f64;
        let target = ((due * per_tick) as usize).min(total);
        while sent < target {
            let mut f = record(&tag, sent, &url);
            f.fired_at_ms = now_ms();
            fired_at
                .lock()
                .unwrap()
                .insert(f.fired_id.clone(), f.fired_at_ms * 1000);
            let l = level.clone();
            sends.push(tokio::spawn(async move { l.produce(&f).await }));
            sent += 1;
        }
    }
    for s in sends {
        s.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.stats().await.0 < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = rx.take().await;
    stop(notifier).await;
    let fired_at = fired_at.lock().unwrap();
    let mut lat: Vec<i64> = got
        .iter()
        .filter_map(|(id, at)| fired_at.get(id).map(|f| (at - f) / 1000))
        .collect();
    lat.sort_unstable();
    let first = got.iter().map(|(_, at)| *at).min().unwrap_or(0);
    let last = got.iter().map(|(_, at)| *at).max().unwrap_or(0);
    Paced {
        rate,
        sent,
        delivered: got.len(),
        p50_ms: pct(&lat, 0.50),
        p99_ms: pct(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0),
        achieved_per_s: got.len() as f64 / ((last - first) as f64 / 1e6).max(1e-3),
    }
}

/// CPU microseconds per delivery.
fn per(cpu_s: f64, d: &Drain) -> f64 {
    cpu_s * 1e6 / d.delivered.max(1) as f64
}

/// The 1-minute load average (the machine may be shared).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

async fn driver() {
    let n: usize = env_or("BENCH_N", 20_000);
    let levels: Vec<usize> = std::env::var("BENCH_LEVELS")
        .unwrap_or_else(|_| "8,16,32,64,128,256,512".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let fetch_wait: u64 = env_or("BENCH_FETCH_WAIT_MS", 100);
    let paced_s: u64 = env_or("BENCH_PACED_S", 5);
    let paced_fraction: f64 = env_or("BENCH_PACED_FRACTION", 0.8);
    let redis_prefix = unique("nbench");

    // The OU's signing secret, as the notifier will read it from the catalog.
    let store = leadstream_shared::store::open(Some(&redis_url()))
        .await
        .expect("redis-server");
    let catalog = leadstream_shared::catalog::Catalog::new(
        store,
        leadstream_shared::keys::Keys::new(&redis_prefix),
    );
    let secret = catalog.webhook_secret(OU).await.expect("secret");
    let rx = Receiver::start(&secret);

    println!("notifier capacity: {n} signed webhooks per level to a receiver in another process");
    println!(
        "  settings: 1 OU, 1 endpoint, {PARTITIONS} partitions, tansu memory broker (fresh per level), \
         local redis-server, fetch.wait.max.ms={fetch_wait}, linger.ms=5; \
         endpoint concurrency = max in flight = OU share = level"
    );
    let mut results: Vec<Drain> = Vec::new();
    let mut flat = 0;
    for &c in &levels {
        let d = drain_level(&rx, &redis_prefix, c, n, fetch_wait).await;
        println!(
            "  concurrency {:>4}: {:>8.0} deliveries/s ({} delivered, {} distinct, drain {:.2} s; \
             CPU per delivery: notifier {:.0} µs, receiver {:.0} µs, redis-server {:.0} µs; \
             load average {})",
            c,
            d.deliveries_per_s,
            d.delivered,
            d.distinct,
            d.drain_s,
            per(d.notifier_cpu_s, &d),
            per(d.receiver_cpu_s, &d),
            per(d.redis_cpu_s, &d),
            loadavg()
        );
        println!(
            "PERF {}",
            json!({"name": "notifier_level", "concurrency": c, "records": d.records,
                   "delivered": d.delivered, "distinct": d.distinct,
                   "deliveries_per_s": d.deliveries_per_s, "drain_s": d.drain_s,
                   "notifier_cpu_s": d.notifier_cpu_s, "receiver_cpu_s": d.receiver_cpu_s,
                   "redis_cpu_s": d.redis_cpu_s, "notifier_us_per_delivery": per(d.notifier_cpu_s, &d),
                   "receiver_us_per_delivery": per(d.receiver_cpu_s, &d),
                   "redis_us_per_delivery": per(d.redis_cpu_s, &d), "loadavg": loadavg()})
        );
        assert_eq!(
            (d.delivered, d.distinct),
            (n, n),
            "every record delivered exactly once at concurrency {c}"
        );
        let best = results
            .iter()
            .map(|r| r.deliveries_per_s)
            .fold(0.0, f64::max);
        flat = if d.deliveries_per_s < best * 1.05 {
            flat + 1
        } else {
            0
        };
        results.push(d);
        if flat >= 2 {
            break;
        }
    }
    let best = results
        .iter()
        .map(|r| r.deliveries_per_s)
        .fold(0.0, f64::max);
    let knee = results
        .iter()
        .find(|r| r.deliveries_per_s >= best * 0.95)
        .cloned()
        .expect("a level");
    let rate = ((knee.deliveries_per_s * paced_fraction) as usize).max(100);
    let p = paced(
        &rx,
        &redis_prefix,
        knee.concurrency,
        rate,
        paced_s,
        fetch_wait,
    )
    .await;
    println!(
        "  knee: concurrency {} at {:.0} deliveries/s (best {:.0}); paced {}/s for {} s at that \
         concurrency: {}/{} delivered, fired -> delivered p50 {} ms, p99 {} ms, max {} ms",
        knee.concurrency,
        knee.deliveries_per_s,
        best,
        p.rate,
        paced_s,
        p.delivered,
        p.sent,
        p.p50_ms,
        p.p99_ms,
        p.max_ms
    );
    println!(
        "PERF {}",
        json!({"name": "notifier_knee", "concurrency": knee.concurrency,
               "deliveries_per_s": knee.deliveries_per_s, "best_deliveries_per_s": best,
               "records": n, "levels": results.iter().map(|r| r.concurrency).collect::<Vec<_>>(),
               "notifier_us_per_delivery": per(knee.notifier_cpu_s, &knee),
               "receiver_us_per_delivery": per(knee.receiver_cpu_s, &knee),
               "redis_us_per_delivery": per(knee.redis_cpu_s, &knee),
               "paced_rate": p.rate, "paced_s": paced_s, "paced_sent": p.sent,
               "paced_delivered": p.delivered, "paced_achieved_per_s": p.achieved_per_s,
               "paced_p50_ms": p.p50_ms, "paced_p99_ms": p.p99_ms, "paced_max_ms": p.max_ms,
               "fetch_wait_ms": fetch_wait, "partitions": PARTITIONS})
    );
    assert_eq!(
        p.delivered, p.sent,
        "paced run: every record delivered once"
    );
}
