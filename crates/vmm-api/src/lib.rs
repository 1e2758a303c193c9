//! Generated code for the `vmm.v1` gRPC API. Do not edit: change `proto/vmm/v1/*.proto`.

#![allow(clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("vmm.v1");

    /// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vmm_descriptor.bin"));
}
