//! Running the real `leadstream` binary's one-shot commands ([`crate::leadstream_bin`]).

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// `leadstream admin ARGS` with `vars` (and no `LEADSTREAM_REDIS_CLUSTER` from the test's own
/// environment), warnings and errors logged as text; waits for the exit. Answers (success,
/// stdout, stderr).
pub fn admin<I, K, V>(vars: I, args: &[&str]) -> (bool, String, String)
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let out = Command::new(crate::leadstream_bin())
        .arg("admin")
        .args(args)
        .env_remove("LEADSTREAM_REDIS_CLUSTER")
        .envs(vars)
        .env("RUST_LOG", "warn")
        .env("LEADSTREAM_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .output()
        .expect("run leadstream admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
