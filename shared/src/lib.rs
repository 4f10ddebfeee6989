//! What every Baton service shares, so that the five services have one shape and one behaviour at
//! their edges: typed settings, telemetry, the gRPC server bootstrap (health, reflection, tower
//! layers, graceful shutdown), database connection, the event backbone (outbox, `EventLog`
//! service, consumers), tenancy, paging and the error → `tonic::Status` mapping.

pub mod auth;
pub mod background;
pub mod boot;
pub mod contract;
pub mod db;
pub mod erasure;
pub mod error;
pub mod events;
pub mod fields;
pub mod files;
pub mod metrics;
pub mod paging;
pub mod parse_cache;
pub mod peer;
pub mod rpc_layer;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod tenant;
pub mod text;
pub mod time;
pub mod tls;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ApiError, BootError, Violations};
pub use settings::{ServiceName, Settings};
pub use tenant::TenantId;
