//! Logging: structured JSON lines (ids as fields) filtered by `RUST_LOG`, or human-readable text
//! when `LEADSTREAM_LOG_FORMAT=text` (the `dev` mode's default).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber once; later calls are ignored (tests call it many times).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let text = std::env::var("LEADSTREAM_LOG_FORMAT").is_ok_and(|v| v == "text");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    };
}
