//! Generates the orchestrator API's client from `proto/vmctl/v1` (protox: no `protoc` needed).

const PROTO_ROOT: &str = "../../proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}/vmctl");
    let descriptors = protox::compile(["vmctl/v1/vmctl.proto"], [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
