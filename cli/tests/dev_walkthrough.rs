//! The README's "Try it in one command" walk-through, run exactly as written against the real
//! `leadstream dev` binary (its embedded mock Kafka cluster and in-memory store): the commands
//! come from the README block, only `K`, `H` and `MAIL` are set through the environment. Then
//! the built-in receiver must hold the milestone and the sequence webhooks (signed), the lead
//! must score what the walk-through says, the emails must be `.eml` files, and SIGTERM must stop
//! dev cleanly. Every wait is a condition with a deadline.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use leadstream_testkit::{free_port, unique, wait_until, ChildGuard};
use serde_json::Value;

const README: &str = include_str!("../../README.md");
/// What `leadstream dev` prints (the same file it embeds).
const SCRIPT: &str = include_str!("../src/dev/walkthrough.sh");
const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "lsdev_walkthrough_test_key_0123456789";

/// The walk-through: the last `sh` block between the README's walkthrough markers.
fn readme_walkthrough() -> String {
    let begin = README
        .find("<!-- walkthrough:begin")
        .expect("README has the walkthrough:begin marker");
    let end = README[begin..]
        .find("<!-- walkthrough:end -->")
        .expect("README has the walkthrough:end marker")
        + begin;
    let block = &README[begin..end];
    let open = block
        .rfind("```sh\n")
        .expect("an sh block in the walkthrough")
        + 6;
    let close = block[open..].find("```").expect("the sh block is closed") + open;
    block[open..close].to_string()
}

#[test]
fn readme_shows_what_dev_prints() {
    assert_eq!(
        readme_walkthrough(),
        SCRIPT,
        "the README walkthrough block must be cli/src/dev/walkthrough.sh verbatim"
    );
}

/// `leadstream dev` on a free loopback port, output to `log`.
fn start_dev(port: u16, mail: &Path, log: &Path) -> ChildGuard {
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_leadstream"))
            .arg("dev")
            .env("LEADSTREAM_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", KEY)
            .env("LEADSTREAM_EMAIL_DIR", mail)
            .env_remove("LEADSTREAM_KAFKA_BROKERS")
            .env_remove("LEADSTREAM_REDIS_URL")
            .env_remove("LEADSTREAM_SMTP_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            // The test reads the services' "stopped" lines.
            .env("RUST_LOG", "info,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    )
    .expect("spawn leadstream dev")
}

async fn get_json(url: &str) -> Option<Value> {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

/// The received webhook posted to `/dev/webhooks/{name}`.
fn webhook<'a>(list: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = list.iter().filter(|w| w["name"] == name).collect();
    assert_eq!(found.len(), 1, "one webhook at {name}: {list:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_runs_against_dev() {
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "the walk-through needs curl on PATH (apt-get install curl)"
    );
    let dir = std::env::temp_dir().join(unique("leadstream-dev-walkthrough"));
    let mail = dir.join("mail");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("dev.log");
    let port = free_port();
    let h = format!("http://127.0.0.1:{port}");
    let mut dev = start_dev(port, &mail, &log);
    let output = || std::fs::read_to_string(&log).unwrap_or_default();

    wait_until(WAIT, "leadstream dev answers /readyz", || async {
        get_json(&format!("{h}/readyz")).await.map(|_| ())
    })
    .await;
    let printed = wait_until(WAIT, "dev printed the walk-through", || async {
        let out = output();
        out.contains("(Ctrl-C stops it)").then_some(out)
    })
    .await;
    assert!(printed.contains(KEY), "dev prints the admin key");
    assert!(printed.contains(&h), "dev prints the URL");
    assert!(printed.contains(SCRIPT), "dev prints the walk-through");

    // Exactly the README's commands; -e and pipefail so the first failing curl fails the run.
    let script = readme_walkthrough();
    let mut bash = tokio::process::Command::new("bash");
    bash.args(["-e", "-o", "pipefail", "-c", &script])
        .env("K", KEY)
        .env("H", &h)
        .env("MAIL", &mail)
        .kill_on_drop(true);
    let run = tokio::time::timeout(WAIT, bash.output())
        .await
        .expect("the walk-through finishes within 60 s")
        .expect("bash runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(
        run.status.success(),
        "walk-through failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\ndev:\n{}",
        run.status,
        output()
    );
    assert!(
        !stderr.contains("curl:"),
        "a curl complained: {stderr}\ndev:\n{}",
        output()
    );

    // The receiver holds both webhooks, signed with the OU's secret, in the seeds' shapes.
    let got = get_json(&format!("{h}/dev/webhooks")).await.expect("list");
    let list = got["webhooks"].as_array().expect("webhooks array").clone();
    let hot = webhook(&list, "hot-lead");
    assert_eq!(hot["signature"], "verified", "{hot}");
    assert!(hot["webhook_id"].is_string(), "{hot}");
    let p = &hot["payload"];
    assert_eq!(p["trigger"]["name"], "Hot Lead Alert", "{p}");
    assert_eq!(p["trigger"]["type"], "milestone", "{p}");
    assert_eq!(p["event"]["event_type"], "demo_request", "{p}");
    assert_eq!(p["score"], 80, "{p}");
    let lead = p["event"]["lead_id"].as_str().expect("lead id").to_string();
    let seq = webhook(&list, "buying-intent");
    assert_eq!(seq["signature"], "verified", "{seq}");
    let p = &seq["payload"];
    assert_eq!(p["trigger"]["name"], "Buying Intent Sequence", "{p}");
    assert_eq!(p["trigger"]["type"], "sequence", "{p}");
    assert_eq!(p["lead_id"], lead.as_str(), "{p}");
    let types: Vec<&str> = p["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["pricing_page_view", "whitepaper_download", "demo_request"],
        "{p}"
    );
    assert!(stdout.contains("\"score\":80"), "the lead lookup: {stdout}");

    // One email per trigger, as .eml files.
    let emails = wait_until(WAIT, "two .eml files", || async {
        let files = eml_files(&mail);
        (files.len() >= 2).then_some(files)
    })
    .await;
    let text: String = emails
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    assert!(text.contains("sales@example.com"), "{text}");
    assert!(text.contains("Hot Lead Alert"), "{text}");

    // SIGTERM stops all three services and dev exits 0.
    let status = terminate(&mut dev, WAIT)
        .unwrap_or_else(|| panic!("dev exits on SIGTERM within 60 s:\n{}", output()));
    assert!(status.success(), "dev exit {status}:\n{}", output());
    let out = output();
    for stopped in ["gateway stopped", "notifier stopped", "dev stopped"] {
        assert!(out.contains(stopped), "{stopped:?} in:\n{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM, then the exit status within `limit` (None: still running; the guard kills it).
fn terminate(child: &mut ChildGuard, limit: Duration) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let proc = child.0.as_mut()?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = proc.try_wait() {
            child.0 = None;
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
