//! Test harness for leadstream's integration tests: real parts, isolated per test.
//!
//! - [`Broker`]: a real Kafka-protocol broker process (the `tansu` broker, memory storage) on a
//!   free loopback port, one per test, killed when the test ends (and, through the parent-death
//!   signal, when the test process dies). It can be paused (SIGSTOP: every request hangs, as
//!   with an unreachable broker), resumed, killed and restarted on the same port.
//! - [`gateway`]: the real gateway on port 0 beside a broker and Redis of the test's own, and
//!   HTTP helpers (the gateway's tests and the e2e crate's in-process pipeline tests).
//! - [`openapi`]: the gateway's OpenAPI document as JSON Schema, for contract tests.
//! - [`redis_url`], [`redis_store`] and [`unique`]: the shared `redis-server` with a key prefix
//!   of the test's own.
//! - [`redis_cluster::RedisCluster`]: a private Redis Cluster (3 masters, 3 replicas) whose
//!   masters can be killed.
//! - [`store::Faulty`]: a store wrapper that counts commands, fails on demand or loses a reply.
//! - [`wait_until`] and [`wait_for`]: wait on a condition with a deadline (never sleep as
//!   synchronisation).
//! - [`receiver::Receiver`]: a real HTTP webhook receiver whose answers a test programs, and
//!   [`receiver::verify`], Standard Webhooks signatures checked independently of the notifier.
//! - [`firing`]: fired records (seed 003's milestone firing) for tests after the processor.
//! - [`vars`]: the environment variables of services under test; [`cli::admin`]: one
//!   `leadstream admin` command run.
//! - [`join_service`]: the end of an in-process service task; a service that failed or
//!   panicked fails the test.
//! - [`oracle`]: the independent expectation of a simple workload (score, crossings,
//!   sequence completions per lead).
//! - [`consume`]: read records from a topic with a throwaway consumer group.
//! - [`end_offsets`] and [`committed_offsets`]: what a topic holds and what a group has read,
//!   asked of the broker directly (for "published nothing" and "consumed the replay" checks that
//!   do not depend on a consumer group joining in time).
//!
//! `.ci/run` installs `tansu` and starts `redis-server`; when either is missing the tests fail
//! with a message saying so, they never skip.

pub mod cli;
pub mod firing;
pub mod gateway;
pub mod openapi;
pub mod oracle;
pub mod receiver;
pub mod redis_cluster;
pub mod redis_server;
pub mod smtp_sink;
pub mod store;
pub mod tls;
pub mod vars;

use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

/// The shared Redis (`LEADSTREAM_TEST_REDIS_URL`, default the local server).
pub fn redis_url() -> String {
    std::env::var("LEADSTREAM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection of the test's own to the shared Redis ([`redis_url`]).
pub async fn redis_store() -> leadstream_shared::store::Store {
    leadstream_shared::store::open(Some(&redis_url()))
        .await
        .expect("redis-server is running (.ci/run starts it)")
}

/// A name no other test uses: key prefixes, topic prefixes, group ids.
pub fn unique(name: &str) -> String {
    format!("t{}_{}", name, ulid::Ulid::new().to_string().to_lowercase())
}

/// A free loopback port (bound then released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A real broker process. Start it from the test's own thread, not from `spawn_blocking`: the
/// parent-death signal fires when the *thread* that spawned a child exits, and tokio ends idle
/// blocking threads after 10 s (the same holds for every [`ChildGuard`]).
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// The port the broker names in metadata (its own, unless something fronts it).
    advertised: u16,
}

impl Broker {
    /// Start a broker on a free port and wait until it accepts connections.
    pub fn start() -> Broker {
        let port = free_port();
        Broker::start_advertising_on(port, port)
    }

    /// A broker on a private port that names `advertised` in metadata (a TLS front on that
    /// port forwards to it: [`tls::TlsKafka`]). Clients must bootstrap through the front.
    pub fn start_advertising(advertised: u16) -> Broker {
        Broker::start_advertising_on(free_port(), advertised)
    }

    fn start_advertising_on(port: u16, advertised: u16) -> Broker {
        let mut b = Broker {
            child: None,
            port,
            advertised,
        };
        b.spawn();
        b
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let mut cmd = Command::new(tansu_path());
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("LISTENER_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe; it only asks the kernel to kill
        // the broker when this test process dies, so no broker outlives a crashed test.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start the tansu broker ({e}); install it with \
                 `cargo install tansu --locked --features dynostore` (.ci/run does)"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu broker did not start listening"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Freeze the broker: connections stay open but nothing is answered (an unreachable broker).
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// kill -9. With memory storage the broker's data is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A fresh broker on the same port (empty: memory storage).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

fn tansu_path() -> PathBuf {
    if let Ok(p) = std::env::var("LEADSTREAM_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("CARGO_HOME").or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string())
    }) {
        let p = PathBuf::from(home).join("bin").join("tansu");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("tansu")
}

/// Poll `f` until it yields `Some`, or panic with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_until`] for a plain condition: poll `f` until it holds, or panic with `what` after
/// `timeout`.
pub async fn wait_for<F: FnMut() -> bool>(timeout: Duration, what: &str, mut f: F) {
    wait_until(timeout, what, || {
        let ok = f();
        async move { ok.then_some(()) }
    })
    .await
}

/// Wait (bounded by `timeout`) for an in-process service task to end after its shutdown token
/// was cancelled, and fail the test if it did not end, panicked or returned an error: a service
/// that crashed during a test must fail it, never be dropped unnoticed.
pub async fn join_service<T, E: std::fmt::Debug>(
    what: &str,
    handle: tokio::task::JoinHandle<Result<T, E>>,
    timeout: Duration,
) -> T {
    match tokio::time::timeout(timeout, handle).await {
        Err(_) => panic!("{what} did not stop within {timeout:?} of its shutdown"),
        Ok(Err(e)) => panic!("{what} panicked or was cancelled: {e}"),
        Ok(Ok(Err(e))) => panic!("{what} ended with an error: {e:?}"),
        Ok(Ok(Ok(v))) => v,
    }
}

/// Read records from `topic` (all partitions, from the beginning) with a new consumer group
/// until `n` have arrived or `timeout` passed, then keep listening for `quiet` more so that
/// records beyond `n` are caught too (for "exactly once" assertions). Callers assert on what
/// comes back.
pub async fn consume(
    brokers: &str,
    topic: &str,
    n: usize,
    timeout: Duration,
    quiet: Duration,
) -> Vec<OwnedMessage> {
    let settings = leadstream_shared::kafka::KafkaSettings::new(brokers);
    consume_with(&settings, topic, n, timeout, quiet).await
}

/// [`consume`] with full client settings (TLS, SASL overrides).
pub async fn consume_with(
    settings: &leadstream_shared::kafka::KafkaSettings,
    topic: &str,
    n: usize,
    timeout: Duration,
    quiet: Duration,
) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = settings
        .consumer_config(&unique("reader"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut reached = false;
    loop {
        if !reached && out.len() >= n {
            reached = true;
            deadline = tokio::time::Instant::now() + quiet;
        }
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => {
                // Transient while the group forms or a topic is created; keep reading.
                eprintln!("consume {topic}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => break,
        }
    }
    out
}

/// The end offset (high watermark: the offset the next record will get) of every partition of
/// `topic`, by partition. Compare the map before and after an action to prove it published
/// nothing (or exactly `n` records), whatever any consumer group is doing.
pub async fn end_offsets(brokers: &str, topic: &str) -> BTreeMap<i32, i64> {
    OffsetReader::new(brokers).end_offsets(topic).await
}

/// One client for many [`end_offsets`] questions (a loop that asks per case saves a connection
/// per question).
#[derive(Clone)]
pub struct OffsetReader {
    consumer: std::sync::Arc<BaseConsumer>,
}

impl OffsetReader {
    pub fn new(brokers: &str) -> OffsetReader {
        let consumer: BaseConsumer = leadstream_shared::kafka::KafkaSettings::new(brokers)
            .consumer_config(&unique("offsets"))
            .create()
            .expect("consumer");
        OffsetReader {
            consumer: std::sync::Arc::new(consumer),
        }
    }

    /// See [`end_offsets`].
    pub async fn end_offsets(&self, topic: &str) -> BTreeMap<i32, i64> {
        let (consumer, topic) = (self.consumer.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(10);
            partitions(&consumer, &topic)
                .into_iter()
                .map(|p| {
                    let (_, high) = consumer
                        .fetch_watermarks(&topic, p, timeout)
                        .unwrap_or_else(|e| panic!("watermarks of {topic}/{p}: {e}"));
                    (p, high)
                })
                .collect()
        })
        .await
        .expect("end offsets task")
    }
}

/// The offsets consumer group `group` has committed on `topic` (the next offset it will read),
/// by partition; a partition the group never committed is absent.
pub async fn committed_offsets(brokers: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let (brokers, group, topic) = (brokers.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        // Asking for a group's offsets (OffsetFetch) does not join the group.
        let consumer: BaseConsumer = leadstream_shared::kafka::KafkaSettings::new(&brokers)
            .consumer_config(&group)
            .create()
            .expect("consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in partitions(&consumer, &topic) {
            tpl.add_partition(&topic, p);
        }
        let got = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("committed offsets of {group} on {topic}: {e}"));
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    })
    .await
    .expect("committed offsets task")
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("topic {topic} not in metadata"));
    assert!(
        t.error().is_none() && !t.partitions().is_empty(),
        "topic {topic} has no partitions ({:?})",
        t.error()
    );
    t.partitions().iter().map(|p| p.id()).collect()
}

/// The record's key as text.
pub fn key_of(m: &OwnedMessage) -> String {
    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned()
}

/// A child process that is killed (-9) when dropped, and by the kernel when the test process
/// dies, so no service outlives its test.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Spawn with the parent-death signal set.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<ChildGuard> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn().map(|c| ChildGuard(Some(c)))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit (graceful shutdown).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.signal_term();
        let status = self.0.as_mut()?.wait().ok();
        self.0 = None;
        status
    }

    /// Send SIGTERM without waiting (the test keeps observing the process while it drains).
    pub fn signal_term(&self) {
        if let Some(c) = &self.0 {
            // SAFETY: kill(2) on our own, not yet reaped, child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Wait (polling, bounded) for the exit; `None` if the process is still running after
    /// `timeout` (or was already reaped).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.0.as_mut()?.try_wait() {
                self.0 = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `leadstream` binary built by this workspace (for tests that run real processes). Cargo
/// puts test binaries in `target/<profile>/deps/`; the binary is one level up.
pub fn leadstream_bin() -> PathBuf {
    if let Ok(p) = std::env::var("LEADSTREAM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("leadstream");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p leadstream` (the README's test command does)",
        bin.display()
    );
    bin
}
