//! The outermost layer of every gRPC server: one server span per call, named
//! `package.Service/Method` with the OpenTelemetry RPC attributes (`rpc.system`, `rpc.service`,
//! `rpc.method`, `rpc.grpc.status_code`) and `otel.status_code = ERROR` only for the statuses
//! that are the server's fault; the `rpc.server.duration` histogram; and one log line per failed
//! call, at ERROR only when the server is at fault (a caller's INVALID_ARGUMENT, NOT_FOUND, … is
//! logged at debug).

use std::{collections::HashMap, future::Future, pin::Pin, time::Instant};

use opentelemetry::{KeyValue, propagation::TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::{Code, Status};
use tower::BoxError;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::instruments;

#[derive(Clone, Copy, Default)]
pub struct RpcLayer;

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Rpc { inner }
    }
}

#[derive(Clone)]
pub struct Rpc<S> {
    inner: S,
}

/// Whether a status is the server's fault (OpenTelemetry's rule for server spans).
pub fn server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// `/baton.capture.v1.CaptureService/CaptureLead` → ("baton.capture.v1.CaptureService", "CaptureLead").
fn service_and_method(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""))
}

impl<S, B, R> tower::Service<http::Request<B>> for Rpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let span = rpc_span(&req, &path);
        let call = self.inner.call(req);
        let started = Instant::now();
        let inner_span = span.clone();
        Box::pin(async move {
            let result = call.instrument(inner_span).await.map_err(Into::into);
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(Code::Ok, Code::from),
                Err(e) => e
                    .downcast_ref::<Status>()
                    .map_or(Code::Unknown, Status::code),
            };
            finish(&span, &path, code, started);
            result
        })
    }
}

/// One span per RPC, child of the caller's W3C trace context when the request carries one.
fn rpc_span<B>(req: &http::Request<B>, path: &str) -> tracing::Span {
    let (service, method) = service_and_method(path);
    let span = tracing::info_span!(
        "rpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        sub = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let carrier: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| {
            req.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(|v| (k.to_owned(), v.to_owned()))
        })
        .collect();
    if !carrier.is_empty() {
        let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
    }
    // The ids go into the span's fields too, so every log line of the call (JSON logs print the
    // current span) names the trace it belongs to.
    let context = span.context();
    let ids = opentelemetry::trace::TraceContextExt::span(&context)
        .span_context()
        .clone();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
    span
}

/// Records the call's status on its span, its duration, and a log line if it failed.
fn finish(span: &tracing::Span, path: &str, code: Code, started: Instant) {
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let (service, method) = service_and_method(path);
    instruments().rpc_duration.record(
        millis,
        &[
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", code as i64),
        ],
    );
    span.record("rpc.grpc.status_code", code as i64);
    let _entered = span.enter();
    if server_fault(code) {
        span.record("otel.status_code", "ERROR");
        tracing::error!(code = ?code, millis, "rpc failed");
    } else if code != Code::Ok {
        tracing::debug!(code = ?code, millis, "rpc refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            service_and_method("/baton.capture.v1.CaptureService/CaptureLead"),
            ("baton.capture.v1.CaptureService", "CaptureLead")
        );
        assert!(server_fault(Code::Internal) && server_fault(Code::Unavailable));
        assert!(!server_fault(Code::InvalidArgument) && !server_fault(Code::NotFound));
        assert!(!server_fault(Code::FailedPrecondition) && !server_fault(Code::Ok));
    }
}
