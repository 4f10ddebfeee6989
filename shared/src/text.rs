//! Control characters in text, refused at the edge for every RPC: a tower layer decodes each
//! request message against its descriptor (from the descriptor set every service is built from)
//! and answers INVALID_ARGUMENT, with a `google.rpc.BadRequest` naming every string field that
//! holds NUL or another control character (C0 except tab, line feed and carriage return; DEL).
//! So no database sees NUL (PostgreSQL refuses it in text), and a new RPC or field is covered
//! without anyone remembering to. The services' own checks still give their field-level
//! messages for what is wrong in other ways.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use tonic::Status;

use crate::error::{ApiError, Violations};

/// Largest request body the layer reads (tonic's own default limit for a decoded message).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Whether `c` is refused in text.
pub fn is_refused(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Records a violation for every string of `message` (nested messages, lists and maps
/// included) that holds a refused character, under its field path (e.g. `source.channel`,
/// `rules[2].key`).
pub fn check_message(message: &DynamicMessage, prefix: &str, violations: &mut Violations) {
    for (field, value) in message.fields() {
        let path = format!("{prefix}{}", field.name());
        check_value(value, &path, violations);
    }
}

fn check_value(value: &Value, path: &str, violations: &mut Violations) {
    match value {
        Value::String(s) => violations.text(path, s),
        Value::Message(m) => check_message(m, &format!("{path}."), violations),
        Value::List(items) => {
            for (i, v) in items.iter().enumerate() {
                check_value(v, &format!("{path}[{i}]"), violations);
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = match k {
                    prost_reflect::MapKey::String(s) => {
                        violations.text(&format!("{path} key"), s);
                        s.clone()
                    }
                    other => format!("{other:?}"),
                };
                check_value(v, &format!("{path}[{key}]"), violations);
            }
        }
        _ => {}
    }
}

/// Paths (`/package.Service/Method`) of unary-request methods → their input message.
#[derive(Clone)]
pub struct Inputs(Arc<HashMap<String, MessageDescriptor>>);

impl Inputs {
    /// Every unary-request method of the descriptor set `encoded` (client-streaming methods
    /// are left to their services: their messages arrive one at a time).
    pub fn from_descriptor_set(encoded: &[u8]) -> Inputs {
        let mut map = HashMap::new();
        match DescriptorPool::decode(encoded) {
            Ok(pool) => {
                for service in pool.services() {
                    for method in service.methods() {
                        if !method.is_client_streaming() {
                            map.insert(
                                format!("/{}/{}", service.full_name(), method.name()),
                                method.input(),
                            );
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "descriptor set does not decode; text checks are off")
            }
        }
        Inputs(Arc::new(map))
    }
}

/// The refusal for a request body (one gRPC frame), if it holds refused text.
fn refusal(input: &MessageDescriptor, body: &[u8]) -> Option<Status> {
    // A frame: 1 byte compression flag, 4 bytes length, the message. Compressed or malformed
    // frames are left to tonic, which answers them itself.
    if body.len() < 5 || body[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let message = body.get(5..5 + len)?;
    let decoded = DynamicMessage::decode(input.clone(), message).ok()?;
    let mut violations = Violations::new();
    check_message(&decoded, "", &mut violations);
    violations
        .into_result()
        .err()
        .map(|e: ApiError| Status::from(e))
}

/// [`refusal`] as a tower layer. The body is read within `timeout` (the request timeout: the
/// layer sits outside the timeout layer, and a client trickling its body must not hold a
/// request open for ever).
#[derive(Clone)]
pub struct TextLayer {
    inputs: Inputs,
    timeout: std::time::Duration,
}

impl TextLayer {
    pub fn new(inputs: Inputs, timeout: std::time::Duration) -> Self {
        TextLayer { inputs, timeout }
    }
}

impl<S> tower::Layer<S> for TextLayer {
    type Service = TextChecked<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TextChecked {
            inner,
            inputs: self.inputs.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct TextChecked<S> {
    inner: S,
    inputs: Inputs,
    timeout: std::time::Duration,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<http::Request<tonic::body::Body>> for TextChecked<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let Some(input) = self.inputs.0.get(req.uri().path()).cloned() else {
            return Box::pin(self.inner.call(req));
        };
        // The ready service serves this call; a fresh clone takes its place for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = self.timeout;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let read = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect());
            let bytes: Bytes = match read.await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<LengthLimitError>() => {
                    return Ok(Status::resource_exhausted(format!(
                        "request message over {MAX_BODY} bytes"
                    ))
                    .into_http());
                }
                Ok(Err(e)) => {
                    return Ok(
                        Status::cancelled(format!("request body broke off: {e}")).into_http()
                    );
                }
                Err(_) => {
                    return Ok(Status::deadline_exceeded(
                        "the request message did not arrive within the request timeout",
                    )
                    .into_http());
                }
            };
            if let Some(status) = refusal(&input, bytes.chunk()) {
                return Ok(status.into_http());
            }
            let req = http::Request::from_parts(parts, tonic::body::Body::new(Full::new(bytes)));
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs::from_descriptor_set(baton_proto::FILE_DESCRIPTOR_SET)
    }

    fn frame(message: &impl prost::Message) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out
    }

    #[test]
    fn nested_repeated_and_map_strings_are_named_by_their_paths() {
        use baton_proto::capture::v1::{CaptureLeadRequest, LeadSource};
        let inputs = inputs();
        let input = &inputs.0["/baton.capture.v1.CaptureService/CaptureLead"];
        let request = CaptureLeadRequest {
            request_id: "r\0".into(),
            first_name: "Ai\tko\n".into(),
            source: Some(LeadSource {
                channel: "web\u{1b}".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = refusal(input, &frame(&request)).expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("request_id"), "{status:?}");
        assert!(status.message().contains("source.channel"), "{status:?}");
        assert!(!status.message().contains("first_name"), "{status:?}");
        let fine = CaptureLeadRequest {
            first_name: "Ai\tko".into(),
            ..Default::default()
        };
        assert!(refusal(input, &frame(&fine)).is_none());
    }

    #[test]
    fn every_unary_request_method_has_its_input_and_streams_in_are_left_out() {
        let inputs = inputs();
        assert!(
            inputs
                .0
                .contains_key("/baton.distribution.v1.DistributionService/CreateHandoff")
        );
        assert!(inputs.0.contains_key("/baton.events.v1.EventLog/Subscribe"));
        assert!(
            !inputs
                .0
                .contains_key("/baton.capture.v1.CaptureService/ImportLeads")
        );
        assert!(inputs.0.len() > 60, "{}", inputs.0.len());
    }
}
