//! A thin process entry point for the notifier (the crash test runs it as a child process;
//! operators use `leadstream notifier`, which calls the same [`leadstream_notifier::run`]).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    leadstream_shared::telemetry::init("info");
    let cfg = leadstream_notifier::NotifierConfig::from_env()?;
    let shutdown = leadstream_shared::shutdown::on_signals();
    leadstream_notifier::run(cfg, shutdown).await
}
