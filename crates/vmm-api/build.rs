//! Generates the VMM's gRPC code from `proto/vmm/v1`. protox parses the protos in pure
//! Rust, so building needs no `protoc` on the host.

use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const PROTOS: &[&str] = &["vmm/v1/vmm.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}/vmm");
    let descriptors = protox::compile(PROTOS, [PROTO_ROOT])?;

    // Kept for gRPC server reflection, so `grpcurl` can list and call the API.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("vmm_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
