//! linux.resources: [`validate`] before create changes anything, then [`Cgroup::apply`] right
//! after the cgroup is made and before any container process is in it.
//!
//! Every write names the config field and the file, so that a value the kernel refuses reads
//! `linux.resources.memory.limit: write 123 to .../memory.limit_in_bytes: ...`.

pub(super) mod convert;
pub(super) mod devices;
mod v1;
mod v2;
pub(super) mod validate;

pub use validate::validate;

use std::fmt::Display;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::{fs, Cgroup, Hierarchies};
use crate::{Error, Result};

impl Cgroup {
    /// Apply `resources` to the cgroup, made by [`Cgroup::create`]. `created` is linux.devices:
    /// a default device rule for a path the config lists there is left to the config.
    pub fn apply(&self, resources: &LinuxResources, created: &[LinuxDevice]) -> Result<()> {
        match self.hierarchies()? {
            Hierarchies::V2(dir) => v2::apply(dir, resources, created),
            Hierarchies::V1(dirs, unified) => v1::apply(dirs, unified, resources, created),
        }
    }

    /// Apply changed `resources` to the cgroup of a live container: everything [`Cgroup::apply`]
    /// writes except the device rules, which stay as create set them (runc's `update` cannot
    /// change them either, and rewriting them would deny every device for a moment). A systemd
    /// unit gets the properties first, so that systemd does not write old values back later.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(unit) = &self.systemd {
            super::systemd::update(unit, resources)?;
        }
        match self.hierarchies()? {
            Hierarchies::V2(dir) => v2::limits(dir, resources),
            Hierarchies::V1(dirs, unified) => v1::limits(dirs, unified, resources),
        }
    }
}

/// Whether `r` sets a limit that needs a cgroup controller (device rules do not).
pub(super) fn needs_controllers(r: &LinuxResources) -> bool {
    !v2::controllers(r).is_empty() || r.unified().as_ref().is_some_and(|u| !u.is_empty())
}

/// Write `value` to `dir/file` on behalf of config field `field` (below linux.resources).
fn set(field: &str, dir: &Path, file: &str, value: impl Display) -> Result<()> {
    fs::write(&dir.join(file), &value.to_string()).map_err(|e| for_field(field, e))
}

/// Prefix a failed system call or I/O with the config field (below linux.resources) it was for.
fn for_field(field: &str, e: Error) -> Error {
    let what = |what| format!("linux.resources.{field}: {what}");
    match e {
        Error::Io { what: w, err } => Error::io(what(w), err),
        Error::Sys { what: w, errno } => Error::sys(what(w), errno),
        e => e,
    }
}

/// A field this host cannot honour (its controller is not mounted or not enabled, or v2 lacks it).
fn unsupported(field: &str, why: impl Display) -> Error {
    Error::config(format!("linux.resources.{field}: {why}"))
}
