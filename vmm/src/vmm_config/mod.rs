//! API input types, one file per resource. Each validates strictly and says which
//! field is wrong; runtime objects are built from them by the builder.

pub mod boot_source;
pub mod drive;
pub mod machine_config;

/// A field of a resource failed validation. Displays as `resource.field: reason`.
pub trait FieldError: std::error::Error {
    /// The field path, e.g. `machine_config.vcpu_count`.
    fn field(&self) -> &'static str;
}
