//! Logs and traces.
//!
//! Logs: structured JSON lines (ids as fields, and the `trace_id` of the current span when
//! traces are exported) filtered by `RUST_LOG`, or human-readable text when
//! `LEADSTREAM_LOG_FORMAT=text` (the `dev` mode's default).
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are exported over OTLP
//! (HTTP/protobuf) by a batch exporter on its own thread; [`shutdown`] flushes it. The service
//! name is `OTEL_SERVICE_NAME`, else `leadstream-{subcommand}`. Spans are filtered by
//! `LEADSTREAM_TRACE_FILTER` (default `info`), independently of the log filter. Without the
//! variable no OpenTelemetry layer is installed and tracing costs nothing extra. How the context
//! travels between services: [`crate::trace`].

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Install the global subscriber once; later calls are ignored (tests call it many times).
/// Exports traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn init(default_filter: &str) {
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => match otlp_provider() {
            Ok(p) => Some(p),
            Err(e) => {
                // Logging is not installed yet: say it on stderr and run without traces.
                eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot export traces: {e}");
                None
            }
        },
        _ => None,
    };
    init_with(default_filter, provider);
}

/// Install the global subscriber with spans going to `provider` (tests pass one with an
/// in-memory exporter). Answers whether this call installed it.
pub fn init_with(default_filter: &str, provider: Option<SdkTracerProvider>) -> bool {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let text = std::env::var("LEADSTREAM_LOG_FORMAT").is_ok_and(|v| v == "text");
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let fmt = if text {
        fmt.with_filter(filter).boxed()
    } else {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    };
    let otel = provider.as_ref().map(|p| {
        let spans = std::env::var("LEADSTREAM_TRACE_FILTER")
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("leadstream"))
            .with_filter(spans)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        if let Some(p) = provider {
            let _ = PROVIDER.set(p);
            crate::trace::set_enabled();
        }
    }
    installed
}

/// Export what is still buffered and stop the exporter (at the end of `main`).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "trace exporter did not flush at shutdown");
        }
    }
}

fn otlp_provider() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(default_service_name());
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

/// `leadstream-gateway`, `leadstream-processor`, … from the binary's subcommand.
fn default_service_name() -> String {
    match std::env::args().nth(1) {
        Some(sub) if sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            format!("leadstream-{sub}")
        }
        _ => "leadstream".to_string(),
    }
}
