//! TLS endpoints a test makes itself, the way managed Kafka and Redis present them:
//!
//! - [`TestPki`]: a throwaway CA and a server certificate it signed (for `127.0.0.1` and
//!   `localhost`), plus an unrelated CA (the "wrong CA"), made with the `openssl` command line
//!   tool in a directory of the test's own;
//! - [`TlsKafka`]: a tansu broker on a private plaintext port Q behind `socat OPENSSL-LISTEN` on
//!   port P, with the broker advertising P, so every client connection (bootstrap and the
//!   partition leaders from metadata) goes through TLS. (tansu 0.6's own `--cert` did not serve
//!   TLS that librdkafka accepts, hence socat);
//! - [`TlsRedis`]: `redis-server --port 0 --tls-port P` with the server certificate and a
//!   password (`requirepass`).
//!
//! `.ci/run` installs `openssl` and `socat` when missing; without them these helpers panic with
//! a message saying so (they never skip).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, Broker, ChildGuard};

/// A CA, a server certificate it signed, and an unrelated CA.
pub struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    /// Make the certificates in `dir` (created if missing).
    pub fn create(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let pki = TestPki {
            dir: dir.to_path_buf(),
        };
        for (key, cert, cn) in [
            ("ca.key", "ca.pem", "leadstream test CA"),
            ("other-ca.key", "other-ca.pem", "unrelated test CA"),
        ] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                key,
                "-out",
                cert,
            ]);
        }
        pki.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write server.ext");
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run the openssl command line tool ({e}); install openssl (.ci/run does)")
            });
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The CA that signed the servers' certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing here: trusting only it must fail.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

/// Wait until something accepts TCP connections on the loopback port.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tansu broker reachable only through TLS.
pub struct TlsKafka {
    // Dropped in this order: the TLS front, then the broker.
    _front: ChildGuard,
    broker: Broker,
    tls_port: u16,
}

impl TlsKafka {
    /// Start the broker (plaintext, private port) and the TLS front that clients use.
    pub fn start(pki: &TestPki) -> TlsKafka {
        let tls_port = free_port();
        let broker = Broker::start_advertising(tls_port);
        let listen = format!(
            "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            pki.server_cert().display(),
            pki.server_key().display()
        );
        let mut cmd = Command::new("socat");
        cmd.arg(listen)
            .arg(format!("TCP:127.0.0.1:{}", broker.port()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let front = ChildGuard::spawn(&mut cmd)
            .unwrap_or_else(|e| panic!("cannot start socat ({e}); install socat (.ci/run does)"));
        wait_listening(tls_port, "socat OPENSSL-LISTEN");
        TlsKafka {
            _front: front,
            broker,
            tls_port,
        }
    }

    /// `127.0.0.1:P`, the TLS port, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// The broker behind the front (its plaintext port answers with the TLS port in metadata).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
}

/// A `redis-server` that speaks only TLS and wants a password.
pub struct TlsRedis {
    _child: ChildGuard,
    port: u16,
    password: String,
}

impl TlsRedis {
    /// Start it with files (log) in `dir`.
    pub fn start(pki: &TestPki, dir: &Path, password: &str) -> TlsRedis {
        std::fs::create_dir_all(dir).expect("redis dir");
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(pki.server_cert())
            .arg("--tls-key-file")
            .arg(pki.server_key())
            .arg("--tls-ca-cert-file")
            .arg(pki.ca())
            .args(["--tls-auth-clients", "no"])
            .args(["--requirepass", password])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn(&mut cmd).unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}); install it (.ci/run does)")
        });
        wait_listening(port, "redis-server --tls-port");
        TlsRedis {
            _child: child,
            port,
            password: password.to_string(),
        }
    }

    /// `rediss://:password@127.0.0.1:P`.
    pub fn url(&self) -> String {
        self.url_with_password(&self.password)
    }

    /// The same server with another password (a wrong one, for tests).
    pub fn url_with_password(&self, password: &str) -> String {
        format!("rediss://:{password}@127.0.0.1:{}", self.port)
    }
}

/// The password of [`TlsEndpoints`]' Redis.
pub const REDIS_PASSWORD: &str = "tls-test-password";

/// Managed Kafka and Redis as a test makes them: [`TlsKafka`] and [`TlsRedis`] (password
/// [`REDIS_PASSWORD`]) with certificates of one [`TestPki`], in a directory of the test's own
/// that is removed when this is dropped.
pub struct TlsEndpoints {
    pub pki: TestPki,
    pub kafka: TlsKafka,
    pub redis: TlsRedis,
    // Last: the directory goes once the servers using it stopped.
    _dir: RemovedOnDrop,
}

/// A directory removed when the test ends.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TlsEndpoints {
    pub fn start() -> TlsEndpoints {
        let dir = std::env::temp_dir().join(crate::unique("tls"));
        let pki = TestPki::create(&dir.join("pki"));
        let kafka = TlsKafka::start(&pki);
        let redis = TlsRedis::start(&pki, &dir.join("redis"), REDIS_PASSWORD);
        TlsEndpoints {
            pki,
            kafka,
            redis,
            _dir: RemovedOnDrop(dir),
        }
    }

    /// The services' variables for these endpoints ([`crate::gateway::gateway_env`] over TLS,
    /// trusting the test CA), with `changes` applied on top.
    pub fn env(&self, prefix: &str, changes: &[(&str, String)]) -> crate::gateway::Env {
        let mut env = crate::gateway::gateway_env(&self.kafka.addr(), &self.redis.url(), prefix);
        env.insert(
            "LEADSTREAM_KAFKA_CONFIG".into(),
            kafka_config(&self.pki.ca()),
        );
        env.insert(
            "LEADSTREAM_REDIS_CA_FILE".into(),
            self.pki.ca().display().to_string(),
        );
        for (k, v) in changes {
            env.insert(k.to_string(), v.clone());
        }
        env
    }
}

/// `LEADSTREAM_KAFKA_CONFIG` for TLS to a broker whose certificate `ca` signed.
pub fn kafka_config(ca: &Path) -> String {
    format!("security.protocol=SSL,ssl.ca.location={}", ca.display())
}
