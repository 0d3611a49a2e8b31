//! A private `redis-server` process for tests that must stop, kill or restart Redis (the shared
//! server on 6379 cannot be restarted under other tests).
//!
//! The server listens on a free loopback port, keeps its files (AOF, log) in a directory the
//! test gives, never writes RDB snapshots (`--save ""`), and is killed with the test process
//! (parent-death signal). [`RedisServer::restart`] brings it back on the same port with the same
//! directory: with [`Durability::Aof`] (`--appendonly yes --appendfsync always`) every write the
//! server acknowledged before a kill -9 is there again, which is how a user who relies on Redis
//! for state configures it.
//!
//! Start it from a thread that outlives it (the test's own, not `spawn_blocking`): the
//! parent-death signal fires when the spawning thread exits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, ChildGuard};

/// What survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Nothing (no AOF, no snapshots): a restart starts empty.
    None,
    /// Append-only file, fsync on every write: acknowledged writes survive kill -9.
    Aof,
}

pub struct RedisServer {
    child: ChildGuard,
    port: u16,
    dir: PathBuf,
    durability: Durability,
}

impl RedisServer {
    /// Start a server on a free port with its files in `dir` (created if missing) and wait
    /// until it answers `PING`.
    pub fn start(dir: &Path, durability: Durability) -> RedisServer {
        std::fs::create_dir_all(dir).expect("redis dir");
        let mut s = RedisServer {
            child: ChildGuard(None),
            port: free_port(),
            dir: dir.to_path_buf(),
            durability,
        };
        s.spawn();
        s
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn(&mut self) {
        let aof = match self.durability {
            Durability::None => "no",
            Durability::Aof => "yes",
        };
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", "always"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = ChildGuard::spawn(&mut cmd).unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it (.ci/run does)")
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING; see {}",
                self.port,
                self.log_path().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `PING` answered `+PONG` (not `-LOADING`, not refused).
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// kill -9: no shutdown save, connections reset.
    pub fn kill(&mut self) {
        self.child.kill9();
    }

    /// kill -9, then a new server on the same port and directory (AOF replayed when durable).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Start again after [`RedisServer::kill`] (same port and directory).
    pub fn start_again(&mut self) {
        assert!(self.child.0.is_none(), "redis-server is still running");
        self.spawn();
    }
}
