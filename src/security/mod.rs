//! What limits the container process's privileges.

pub mod capabilities;
pub mod lsm;
pub mod seccomp;
