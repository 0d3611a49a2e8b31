//! The harness of the pipeline tests: `leadstream_testkit::gateway`, with the gateway spawned in
//! this process by the gateway tests' own spawn functions (`gateway/tests/common`, included
//! here so that the gateway is started one way in every crate); the processor and notifier join
//! it through [`App::service_env`] / [`notifier_env`] as [`Services`].

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "../../../gateway/tests/common/mod.rs"]
mod gateway;
pub use gateway::*;

/// What an in-process notifier beside `app` needs on top of [`App::service_env`]: a group of its
/// own, webhooks to 127.0.0.1 allowed (the test's receivers), a short poll, email files under the
/// temp dir; then `extra`.
pub fn notifier_env(app: &App, extra: &[(&str, String)]) -> Env {
    let prefix = app.prefix();
    let mut env = app.service_env(&[
        ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}-notifier")),
        ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
        ("LEADSTREAM_NOTIFIER_POLL_INTERVAL", "50ms".into()),
        (
            "LEADSTREAM_EMAIL_DIR",
            std::env::temp_dir().join(&prefix).display().to_string(),
        ),
    ]);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// The processor (and the notifier) in this process, configured from the same variables, until
/// [`Services::stop`].
pub struct Services {
    stop: CancellationToken,
    processor: JoinHandle<anyhow::Result<()>>,
    notifier: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Services {
    /// The processor alone.
    pub fn processor(env: &Env) -> Services {
        let cfg =
            leadstream_processor::ProcessorConfig::from_source(env).expect("processor config");
        let stop = CancellationToken::new();
        Services {
            processor: tokio::spawn(leadstream_processor::run(cfg, stop.clone())),
            notifier: None,
            stop,
        }
    }

    /// The processor and the notifier.
    pub fn both(env: &Env) -> Services {
        let cfg = leadstream_notifier::NotifierConfig::from_source(env).expect("notifier config");
        let mut services = Services::processor(env);
        services.notifier = Some(tokio::spawn(leadstream_notifier::run(
            cfg,
            services.stop.clone(),
        )));
        services
    }

    /// Shut them down; one that failed or did not stop within 20 s fails the test.
    pub async fn stop(self) {
        self.stop.cancel();
        let wait = Duration::from_secs(20);
        leadstream_testkit::join_service("the processor", self.processor, wait).await;
        if let Some(notifier) = self.notifier {
            leadstream_testkit::join_service("the notifier", notifier, wait).await;
        }
    }
}
