//! Generates the agent's gRPC code (server and client) from `proto/agent/v1`. protox
//! parses the protos in pure Rust, so building needs no `protoc` on the host.

const PROTO_ROOT: &str = "../../proto";
const PROTOS: &[&str] = &["agent/v1/agent.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}/agent");
    let descriptors = protox::compile(PROTOS, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
