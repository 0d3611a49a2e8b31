//! A private Redis Cluster for tests: three masters and three replicas, real `redis-server`
//! processes in cluster mode on free loopback ports, created with
//! `redis-cli --cluster create … --cluster-replicas 1` as an operator would.
//!
//! Nodes keep nothing on disk but their cluster state file (`--save "" --appendonly no`), in a
//! directory of their own under the system temp dir that is removed on drop; every node is
//! killed on drop and, through the parent-death signal, when the test process dies.
//! [`RedisCluster::kill_primary_of`] kill -9s the master owning a key's slot and waits until its
//! replica has taken over. Start it from the test's own thread (see [`crate::ChildGuard`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, unique, ChildGuard};

/// Masters, each with one replica.
const MASTERS: usize = 3;
/// How long a node may be unreachable before the others mark it failed (the failover takes
/// about this long plus an election).
const NODE_TIMEOUT_MS: u64 = 1000;
const WAIT: Duration = Duration::from_secs(60);

struct Node {
    port: u16,
    bus_port: u16,
    dir: PathBuf,
    child: ChildGuard,
}

impl Node {
    fn alive(&self) -> bool {
        self.child.0.is_some()
    }
}

pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Inclusive slot ranges this node serves (masters only).
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

impl RedisCluster {
    /// Start six nodes, create the cluster and wait until every node reports it healthy.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(unique("rediscluster"));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut used = BTreeSet::new();
        let mut port = || loop {
            let p = free_port();
            if used.insert(p) {
                return p;
            }
        };
        let mut nodes = Vec::new();
        for i in 0..MASTERS * 2 {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let (p, bus) = (port(), port());
            nodes.push(Node {
                port: p,
                bus_port: bus,
                dir: node_dir,
                child: ChildGuard(None),
            });
        }
        let mut cluster = RedisCluster { nodes, dir };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null());
        let out = create
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); install redis-tools"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("[OK] All 16384 slots covered"),
            "redis-cli --cluster create failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy();
        // Every node sees every replica, and every replica has synced with its master.
        let ports = cluster.live_ports();
        let replicas = wait(WAIT, || {
            let all_see = ports.iter().all(|&p| {
                query(p, &["CLUSTER", "NODES"]).is_some_and(|t| {
                    let nodes = parse_nodes(&t);
                    nodes.iter().filter(|n| !n.master).count() == MASTERS
                        && nodes.iter().filter(|n| n.master).count() == MASTERS
                })
            });
            let synced = ports.iter().all(|&p| {
                query(p, &["INFO", "replication"]).is_some_and(|i| {
                    i.contains("role:master") || i.contains("master_link_status:up")
                })
            });
            (all_see && synced).then_some(())
        });
        assert!(
            replicas.is_some(),
            "the cluster's replicas did not come up; logs in {}",
            cluster.dir.display()
        );
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &n.port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-port", &n.bus_port.to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // A replica takes over however long it was cut off (tests kill masters at will).
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&n.dir)
            .arg("--logfile")
            .arg(n.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        n.child = ChildGuard::spawn(&mut cmd).unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it (.ci/run does)")
        });
        let port = n.port;
        let log = n.dir.join("redis.log");
        wait(Duration::from_secs(20), || {
            query(port, &["PING"])
                .is_some_and(|r| r == "PONG")
                .then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "redis-server on {port} did not answer; see {}",
                log.display()
            )
        });
    }

    /// Every node's URL, `redis://127.0.0.1:{port}` (killed nodes too: a client seeded with
    /// them finds the live ones).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The URLs comma-separated, as `LEADSTREAM_REDIS_URL` takes them.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The directory holding the nodes' files (logs for a failing test).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .map(|n| n.port)
            .collect()
    }

    /// `CLUSTER NODES` as one live node sees it.
    pub fn topology(&self) -> Vec<NodeInfo> {
        self.live_ports()
            .into_iter()
            .find_map(|p| query(p, &["CLUSTER", "NODES"]))
            .map(|t| parse_nodes(&t))
            .expect("no live cluster node answers CLUSTER NODES")
    }

    /// The port of the master serving `slot`, as the live nodes see it.
    pub fn primary_port_of_slot(&self, slot: u16) -> u16 {
        self.topology()
            .into_iter()
            .find(|n| n.master && !n.failed && n.serves(slot))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The slot of `key` (asked of the cluster itself, `CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        self.live_ports()
            .into_iter()
            .find_map(|p| query(p, &["CLUSTER", "KEYSLOT", key]))
            .and_then(|s| s.parse().ok())
            .expect("CLUSTER KEYSLOT")
    }

    /// kill -9 the master owning `key`'s slot, then wait until a replica serves the slot and
    /// the cluster is healthy again. Answers the killed node's port.
    pub fn kill_primary_of(&mut self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        self.kill_primary_of_slot(slot)
    }

    /// [`RedisCluster::kill_primary_of`] by slot number.
    pub fn kill_primary_of_slot(&mut self, slot: u16) -> u16 {
        let port = self.primary_port_of_slot(slot);
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("the master is one of ours");
        node.child.kill9();
        let log = self.dir.display().to_string();
        wait(WAIT, || {
            let t = self.topology();
            t.iter()
                .find(|n| n.master && !n.failed && n.serves(slot))
                .is_some_and(|n| n.port != port)
                .then_some(())
        })
        .unwrap_or_else(|| panic!("no replica took over slot {slot} from {port}; logs in {log}"));
        self.wait_healthy();
        port
    }

    /// Wait until every live node says `cluster_state:ok` and every slot is served by a live
    /// master.
    pub fn wait_healthy(&self) {
        let live = self.live_ports();
        let ok = wait(WAIT, || {
            let all_ok = live.iter().all(|&p| {
                query(p, &["CLUSTER", "INFO"]).is_some_and(|i| {
                    i.contains("cluster_state:ok") && i.contains("cluster_slots_ok:16384")
                })
            });
            let served: u32 = self
                .topology()
                .iter()
                .filter(|n| n.master && !n.failed && live.contains(&n.port))
                .flat_map(|n| n.slots.iter())
                .map(|&(a, b)| u32::from(b - a) + 1)
                .sum();
            (all_ok && served == 16384).then_some(())
        });
        assert!(
            ok.is_some(),
            "the Redis Cluster did not become healthy; logs in {}",
            self.dir.display()
        );
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.child.kill9();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll `f` every 20 ms until it yields `Some`, at most `timeout`.
fn wait<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One command to one node; the answer as text (`None` when unreachable or an error).
fn query(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(&mut conn).ok()? {
        redis::Value::Int(i) => Some(i.to_string()),
        v => redis::from_redis_value::<String>(v).ok(),
    }
}

fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            // `127.0.0.1:7000@17000` (Redis 7 may append `,hostname`).
            let port = f[1]
                .split(['@', ','])
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let flags = f[2];
            let slots = f[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|x| (x, x)),
                })
                .collect();
            Some(NodeInfo {
                id: f[0].to_string(),
                port,
                master: flags.contains("master"),
                failed: flags.contains("fail"),
                slots,
            })
        })
        .collect()
}
