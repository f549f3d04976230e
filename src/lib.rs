//! berth: a runc-compatible OCI container runtime, as a library. The `berth` binary is a thin
//! CLI over [`container`]; everything here is usable without it.

pub mod cgroups;
pub mod checkpoint;
pub mod console;
pub mod container;
pub mod criu;
pub mod error;
pub mod features;
pub mod hooks;
pub mod intel_rdt;
mod mountinfo;
pub mod namespaces;
pub mod netdev;
pub mod pidfd_socket;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod sealed_exe;
pub mod security;
pub mod spec;
pub mod state;
pub mod syscall;

pub use error::{Context, Error, Result};
