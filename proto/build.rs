//! Compiles `baton/**/*.proto` (beside this file) with protox (pure Rust, no protoc install) into Rust (prost + tonic)
//! and writes the encoded descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "baton/events/v1/events.proto",
    "baton/capture/v1/capture.proto",
    "baton/qualification/v1/qualification.proto",
    "baton/distribution/v1/distribution.proto",
    "baton/nurture/v1/nurture.proto",
    "baton/reporting/v1/reporting.proto",
    "baton/reporting/v1/kpi.proto",
    "baton/reporting/v1/planning.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=baton");
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("baton_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Type names let events carry payloads as `google.protobuf.Any` with standard type URLs.
        .compile_fds_with_config(fds, {
            let mut config = tonic_prost_build::Config::new();
            config.enable_type_names();
            config
        })?;
    Ok(())
}
