//! Generates the VMM's gRPC *server* stub from `proto/vmm/v1`, using the message types of
//! `vmctl-vmm-api` (`extern_path`) and the API's own codec (`codec_path`).
//!
//! The server is generated here rather than in `vmctl-vmm-api` because its codec belongs
//! to the VMM: a request that does not decode is the client's mistake and must be answered
//! INVALID_ARGUMENT naming the field (tonic's stock codec answers INTERNAL), and statuses
//! are made in one place, `src/api/status.rs`, which the codec calls.

const PROTO_ROOT: &str = "../proto";
const PROTOS: &[&str] = &["vmm/v1/vmm.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}/vmm");
    let descriptors = protox::compile(PROTOS, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .extern_path(".vmm.v1", "::vmctl_vmm_api::v1")
        .codec_path("crate::api::codec::ApiCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
