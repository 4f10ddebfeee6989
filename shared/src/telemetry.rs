//! `tracing` for every service: a log layer (text or JSON) and an OpenTelemetry layer whose spans
//! are exported over OTLP/gRPC when an endpoint is configured. Without an endpoint spans still get
//! trace ids, so trace context flows through gRPC metadata and events even when nothing is exported.
//! An unreachable collector never blocks start-up: the batch exporter connects lazily.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

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

/// Installs the global subscriber. Call once per process (`service_name` names the process in traces).
pub fn init(settings: &TelemetrySettings, service_name: &str) -> Result<TelemetryGuard, BootError> {
    let filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|e| BootError::Telemetry(e.to_string()))?;
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
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| BootError::Telemetry(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}
