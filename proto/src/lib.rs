//! Baton's gRPC contract, generated from `proto/` at build time.
//!
//! Modules mirror the proto packages (`baton.capture.v1` → [`capture::v1`]). Clients in other
//! languages generate from the same `.proto` files; reflection serves [`FILE_DESCRIPTOR_SET`].

/// Encoded `FileDescriptorSet` of every Baton proto (and the well-known types they import), for
/// server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/baton_descriptor.bin"));

pub mod events {
    pub mod v1 {
        tonic::include_proto!("baton.events.v1");
    }
}
pub mod capture {
    pub mod v1 {
        tonic::include_proto!("baton.capture.v1");
    }
}
pub mod qualification {
    pub mod v1 {
        tonic::include_proto!("baton.qualification.v1");
    }
}
pub mod distribution {
    pub mod v1 {
        tonic::include_proto!("baton.distribution.v1");
    }
}
pub mod nurture {
    pub mod v1 {
        tonic::include_proto!("baton.nurture.v1");
    }
}
pub mod reporting {
    pub mod v1 {
        tonic::include_proto!("baton.reporting.v1");
    }
}

/// Helpers for `google.protobuf.Any` payloads of events.
pub mod any {
    use prost::{Message, Name};

    /// Packs a message into an `Any` with the standard `type.googleapis.com/` URL.
    pub fn pack<M: Message + Name>(message: &M) -> prost_types::Any {
        prost_types::Any {
            type_url: M::type_url(),
            value: message.encode_to_vec(),
        }
    }

    /// True if `any` holds a message of type `M`.
    pub fn is<M: Name>(any: &prost_types::Any) -> bool {
        any.type_url == M::type_url()
    }

    /// Decodes `any` as `M`, or returns `None` if it holds another type.
    pub fn unpack<M: Message + Name + Default>(
        any: &prost_types::Any,
    ) -> Option<Result<M, prost::DecodeError>> {
        is::<M>(any).then(|| M::decode(any.value.as_slice()))
    }
}
