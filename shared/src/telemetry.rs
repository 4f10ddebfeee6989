//! `tracing` for every service: a log layer (text or JSON; the filter is `RUST_LOG` when set, else
//! `telemetry.log_filter`; a JSON line inside an RPC carries the span's `trace_id` and `span_id`)
//! and an OpenTelemetry layer whose spans
//! are exported over OTLP/gRPC when an endpoint is configured. Without an endpoint spans still get
//! trace ids, so trace context flows through gRPC metadata and events even when nothing is exported.
//! An unreachable collector never blocks start-up: the batch exporter connects lazily.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer, fmt::writer::BoxMakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::{error::BootError, settings::TelemetrySettings};

/// Keeps the tracer provider alive; flushes pending spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber, logging to stdout. Call once per process (`service_name`
/// names the process in traces).
pub fn init(settings: &TelemetrySettings, service_name: &str) -> Result<TelemetryGuard, BootError> {
    init_with(settings, service_name, BoxMakeWriter::new(std::io::stdout))
}

/// [`init`], logging to `writer` (a test reads what was logged).
pub fn init_with(
    settings: &TelemetrySettings,
    service_name: &str,
    writer: BoxMakeWriter,
) -> Result<TelemetryGuard, BootError> {
    // RUST_LOG, when set, wins over telemetry.log_filter (the usual way to turn a module up).
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| settings.log_filter.clone());
    let filter = EnvFilter::try_new(&directives)
        .map_err(|e| BootError::Telemetry(format!("log filter {directives:?}: {e}")))?;
    let mut provider = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service_name.to_owned())
            .build(),
    );
    if !settings.otlp_endpoint.is_empty() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()
            .map_err(|e| BootError::Telemetry(e.to_string()))?;
        provider = provider.with_batch_exporter(exporter);
    }
    let provider = provider.build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("baton"));
    let fmt = if settings.json_logs {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(writer)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| BootError::Telemetry(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}
