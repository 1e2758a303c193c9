//! `@vmctl/native`: host facilities the TypeScript orchestrator cannot reach from Node.
//! Each module exports one group of functions to JavaScript.

pub mod image;
pub mod kvm;
pub mod net;
pub mod pty;
