//! [`Stack`]: one leadstream installation made of separate OS processes — the real `leadstream`
//! binary as gateway, processors and notifier, a tansu broker process, a private
//! `redis-server` — plus the test's own webhook receiver and SMTP listener.
//!
//! Every service is configured only through `LEADSTREAM_*` variables, as the README documents.
//! Child output goes to files in a per-test directory; when the test fails (the stack is dropped
//! while panicking) the tail of every log is printed, and the directory is kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use leadstream_testkit::redis_cluster::RedisCluster;
use leadstream_testkit::redis_server::{Durability, RedisServer};
use leadstream_testkit::smtp_sink::SmtpSink;
use leadstream_testkit::{free_port, leadstream_bin, unique, wait_until, Broker, ChildGuard};

use crate::api::Api;
use crate::Receiver;

/// The bootstrap admin key every stack's gateway is started with.
pub const ADMIN_KEY: &str = "e2e-bootstrap-admin-key-0123456789abcdef";
/// Partitions of every topic.
pub const PARTITIONS: u32 = 4;
/// The notifier's per-attempt HTTP timeout (the receiver's "slow" mode answers after twice it).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// What differs between scenarios.
#[derive(Debug, Clone)]
pub struct StackOpts {
    pub name: String,
    /// Processor replicas started with the stack (one consumer group).
    pub processors: usize,
    /// Redis with an append-only file fsynced on every write, so a restart keeps what it
    /// acknowledged (needed by the Redis restart scenario; the others do not restart Redis).
    pub durable_redis: bool,
    /// Every service uses a Redis Cluster of its own (3 masters, 3 replicas) instead of the
    /// single `redis-server`.
    pub redis_cluster: bool,
    /// The notifier's retry delays (`LEADSTREAM_WEBHOOK_RETRY_SCHEDULE`).
    pub retry_schedule: String,
    /// Extra variables for every service.
    pub env: Vec<(String, String)>,
}

impl StackOpts {
    pub fn new(name: &str) -> StackOpts {
        StackOpts {
            name: name.to_string(),
            processors: 2,
            durable_redis: false,
            redis_cluster: false,
            // ≈ 60 s of retries (±20 % jitter): longer than any outage a scenario stages (the
            // full variant's receiver faults last 36 s), so nothing reaches the DLQ because a
            // test was slow.
            retry_schedule: format!("200ms,400ms,800ms,1s{}", ",2s".repeat(30)),
            env: Vec::new(),
        }
    }
}

/// A service process: its role, how it was started and where its output goes.
pub struct Service {
    pub role: &'static str,
    pub label: String,
    pub child: ChildGuard,
    pub log: PathBuf,
}

impl Service {
    /// kill -9.
    pub fn kill9(&mut self) {
        self.child.kill9();
    }

    /// SIGTERM and wait for the exit (graceful shutdown); `true` when it exited cleanly.
    pub async fn terminate(mut self) -> bool {
        let mut child = std::mem::replace(&mut self.child, ChildGuard(None));
        tokio::task::spawn_blocking(move || child.terminate())
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.success())
    }

    /// Whether the process is still running (`false` once it exited or was killed). A service
    /// that exited on its own meanwhile fails the test: services only stop when told to.
    pub fn running(&mut self) -> bool {
        let Some(c) = self.child.0.as_mut() else {
            return false;
        };
        match c.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => panic!("{} exited on its own: {status}", self.label),
            Err(e) => panic!("{}: cannot read its status: {e}", self.label),
        }
    }
}

pub struct Stack {
    pub opts: StackOpts,
    pub dir: PathBuf,
    pub broker: Broker,
    pub redis: RedisServer,
    /// The Redis Cluster the services use instead of `redis` ([`StackOpts::redis_cluster`]).
    pub redis_cluster: Option<RedisCluster>,
    pub receiver: Receiver,
    pub smtp: SmtpSink,
    pub prefix: String,
    /// Variables shared by every service.
    pub env: BTreeMap<String, String>,
    pub gateway: Service,
    pub processors: Vec<Service>,
    pub notifier: Service,
    pub api: Api,
    /// Every log file written so far (services that were killed included).
    logs: Vec<(String, PathBuf)>,
    spawned: usize,
}

impl Stack {
    /// Start everything and wait until the gateway is ready.
    pub async fn start(opts: StackOpts) -> Stack {
        let prefix = unique(&opts.name);
        let dir = log_root().join(&prefix);
        std::fs::create_dir_all(&dir).expect("per-test dir");
        // Children are started from the test's own thread, never from `spawn_blocking`: the
        // parent-death signal fires when the spawning *thread* exits, and tokio retires idle
        // blocking threads after 10 s — which would kill the broker mid-test.
        let broker = Broker::start();
        let durability = if opts.durable_redis {
            Durability::Aof
        } else {
            Durability::None
        };
        let redis_dir = dir.join("redis");
        let redis = RedisServer::start(&redis_dir, durability);
        let redis_cluster = opts.redis_cluster.then(RedisCluster::start);
        let redis_url = match &redis_cluster {
            Some(c) => c.url_list(),
            None => redis.url(),
        };
        // Answers slower than the notifier waits reached nobody: late, not delivered.
        let receiver = Receiver::start_with_client_timeout(WEBHOOK_TIMEOUT).await;
        let smtp = SmtpSink::start().await;
        let mut env =
            leadstream_testkit::vars::service(&broker.addr(), &redis_url, &prefix, PARTITIONS);
        env.extend(
            [
                ("LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", "10".into()),
                // tansu answers a fetch at an offset inside a record batch with the next batch; a
                // processor resuming from its applied offset mid-batch would have to seek back
                // (the contiguity guard). One record per batch gives every offset a boundary.
                ("LEADSTREAM_KAFKA_CONFIG", "batch.num.messages=1".into()),
                ("LEADSTREAM_LOG_FORMAT", "text".into()),
                (
                    "RUST_LOG",
                    std::env::var("LEADSTREAM_TEST_CHILD_LOG")
                        .unwrap_or_else(|_| "info,rdkafka=warn".into()),
                ),
                // Gateway.
                ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY.into()),
                ("LEADSTREAM_PRODUCE_TIMEOUT", "2s".into()),
                ("LEADSTREAM_RETRY_AFTER", "1s".into()),
                ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
                ("LEADSTREAM_SHUTDOWN_GRACE", "3s".into()),
                // Processor.
                ("LEADSTREAM_PROCESSOR_GROUP", format!("{prefix}-processor")),
                // Notifier.
                ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}-notifier")),
                ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
                (
                    "LEADSTREAM_WEBHOOK_RETRY_SCHEDULE",
                    opts.retry_schedule.clone(),
                ),
                (
                    "LEADSTREAM_WEBHOOK_TIMEOUT",
                    format!("{}ms", WEBHOOK_TIMEOUT.as_millis()),
                ),
                ("LEADSTREAM_SMTP_URL", smtp.url()),
                ("LEADSTREAM_SMTP_TIMEOUT", "5s".into()),
                // Load scenarios count every email of every firing of one OU.
                ("LEADSTREAM_EMAIL_RATE_PER_OU", "0".into()),
                ("LEADSTREAM_NOTIFIER_POLL_INTERVAL", "50ms".into()),
            ]
            .map(|(k, v): (&str, String)| (k.to_string(), v)),
        );
        // `LEADSTREAM_E2E_KAFKA_CONFIG` replaces the services' extra librdkafka properties (empty:
        // none), e.g. to watch the processors cope with multi-record batches on tansu.
        if let Ok(v) = std::env::var("LEADSTREAM_E2E_KAFKA_CONFIG") {
            env.insert("LEADSTREAM_KAFKA_CONFIG".into(), v);
        }
        for (k, v) in &opts.env {
            env.insert(k.clone(), v.clone());
        }
        env.retain(|_, v| !v.is_empty());
        let http_port = free_port();
        let mut stack = Stack {
            api: Api::new(format!("http://127.0.0.1:{http_port}"), ADMIN_KEY),
            gateway: Service::placeholder(),
            processors: Vec::new(),
            notifier: Service::placeholder(),
            opts,
            dir,
            broker,
            redis,
            redis_cluster,
            receiver,
            smtp,
            prefix,
            env,
            logs: Vec::new(),
            spawned: 0,
        };
        stack.gateway = stack.spawn(
            "gateway",
            &[("LEADSTREAM_HTTP_ADDR", &format!("127.0.0.1:{http_port}"))],
        );
        for _ in 0..stack.opts.processors {
            let p = stack.spawn("processor", &[]);
            stack.processors.push(p);
        }
        stack.notifier = stack.spawn("notifier", &[]);
        let api = stack.api.clone();
        wait_until(Duration::from_secs(60), "the gateway is ready", || {
            let api = api.clone();
            async move { api.ready().await.then_some(()) }
        })
        .await;
        stack
    }

    /// Start one more `leadstream <role>` process with the stack's variables and `extra`.
    pub fn spawn(&mut self, role: &'static str, extra: &[(&str, &str)]) -> Service {
        self.spawned += 1;
        let label = format!("{role}-{}", self.spawned);
        let log = self.dir.join(format!("{label}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(leadstream_bin());
        cmd.arg(role)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child =
            ChildGuard::spawn(&mut cmd).unwrap_or_else(|e| panic!("spawn leadstream {role}: {e}"));
        self.logs.push((label.clone(), log.clone()));
        Service {
            role,
            label,
            child,
            log,
        }
    }

    /// A processor under the fresh consumer group `{prefix}-processor-{generation}`: the way to
    /// replace one killed with -9, whose membership tansu never expires (README, Known
    /// limitations). It owns every partition of its group and resumes from Redis alone.
    pub fn spawn_processor_in_new_group(&mut self, generation: u32) -> Service {
        let group = format!("{}-processor-gen{generation}", self.prefix);
        self.spawn("processor", &[("LEADSTREAM_PROCESSOR_GROUP", &group)])
    }

    /// A notifier under a fresh consumer group (same reason); it re-reads the fired topic from
    /// the start and stores only the deliveries it does not know yet.
    pub fn spawn_notifier_in_new_group(&mut self, generation: u32) -> Service {
        let group = format!("{}-notifier-gen{generation}", self.prefix);
        self.spawn("notifier", &[("LEADSTREAM_NOTIFIER_GROUP", &group)])
    }

    /// The fired topic (`{prefix}.triggers.fired.v1`).
    pub fn fired_topic(&self) -> String {
        format!("{}.triggers.fired.v1", self.prefix)
    }

    /// The events topic (`{prefix}.events.v1`).
    pub fn events_topic(&self) -> String {
        format!("{}.events.v1", self.prefix)
    }

    /// The processors' consumer group as started with the stack.
    pub fn processor_group(&self) -> String {
        format!("{}-processor", self.prefix)
    }

    /// Stop every service gracefully (SIGTERM) and require a clean exit of each one still
    /// running: a service that crashed, or does not drain within 15 s, fails the test. Services
    /// a scenario killed on purpose are skipped. Logs are removed when the test passed unless
    /// `LEADSTREAM_TEST_CHILD_LOG_DIR` asked to keep them.
    pub async fn stop(mut self) {
        let services: Vec<Service> =
            std::iter::once(std::mem::replace(&mut self.gateway, Service::placeholder()))
                .chain(self.processors.drain(..))
                .chain(std::iter::once(std::mem::replace(
                    &mut self.notifier,
                    Service::placeholder(),
                )))
                .collect();
        for mut s in services {
            if s.child.0.is_none() {
                continue; // killed by the scenario (or a placeholder)
            }
            let label = s.label.clone();
            assert!(s.running(), "{label} is not running at the end");
            let clean = tokio::time::timeout(Duration::from_secs(15), s.terminate())
                .await
                .unwrap_or_else(|_| panic!("{label} did not exit within 15 s of SIGTERM"));
            assert!(clean, "{label} did not exit cleanly on SIGTERM");
        }
    }

    /// The last `lines` lines of every log, for a failure report.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let redis = ("redis-server".to_string(), self.redis.log_path());
        for (label, path) in self.logs.iter().chain(std::iter::once(&redis)) {
            out.push_str(&format!("----- {label} ({}) -----\n", path.display()));
            out.push_str(&tail(path, lines));
        }
        out
    }
}

impl Service {
    fn placeholder() -> Service {
        Service {
            role: "none",
            label: String::new(),
            child: ChildGuard(None),
            log: PathBuf::new(),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== e2e failure: service logs kept in {} =====\n{}",
                self.dir.display(),
                self.log_tails(40)
            );
        } else if std::env::var_os("LEADSTREAM_TEST_CHILD_LOG_DIR").is_none() {
            // Kill before removing: the redis-server's files are in the directory.
            self.gateway.kill9();
            self.notifier.kill9();
            self.processors.iter_mut().for_each(Service::kill9);
            self.redis.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `LEADSTREAM_TEST_CHILD_LOG_DIR`, or a directory under the system's temp dir.
fn log_root() -> PathBuf {
    std::env::var_os("LEADSTREAM_TEST_CHILD_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("leadstream-e2e"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut s = all[start..].join("\n");
    s.push('\n');
    s
}
