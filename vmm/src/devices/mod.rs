//! Emulated devices. Legacy PC devices live here; virtio devices come from the
//! `vmctl-devices` crate and are placed by [`crate::device_manager`].

pub mod legacy;
