//! The systemd cgroup driver: on a host whose cgroup tree belongs to systemd, the container's
//! cgroup is a transient scope unit that systemd makes, as runc's systemd driver does.
//!
//! linux.cgroupsPath is `slice:prefix:name` (empty: `system.slice:berth:<id>`); the unit is
//! `prefix-name.scope` in that slice, so its directory is the slice's path (`a-b.slice` is
//! `a.slice/a-b.slice`) plus the unit name below the cgroup2 mount. [`start`] asks systemd for
//! the unit (StartTransientUnit, with the container's first process in it, `Delegate=yes` and
//! the resources systemd has properties for) and waits for the job's result; the cgroup files
//! are then written by the cgroupfs code, for what systemd has no property for and so that the
//! values are exactly the config's. `update` sets the properties again, [`stop`] ends the unit.
//! Everything else (freeze, kill, exec joining, stats) works on the unit's cgroup directory.
//!
//! The D-Bus connection starts a thread: it is opened only in a parent process that forks no
//! more container processes (after the clone), never before a fork.

mod bus;
mod properties;

use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub(super) use properties::Value;

/// The container's unit, kept in the state so that later commands reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Unit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The slice it is in, e.g. `system.slice`.
    pub slice: String,
}

/// Where systemd's units live when linux.cgroupsPath does not say.
const DEFAULT_SLICE: &str = "system.slice";
const DEFAULT_PREFIX: &str = "berth";

/// The unit for linux.cgroupsPath (None or empty: the defaults with the container id) and its
/// cgroup directory relative to the cgroup2 mount.
pub(super) fn unit(cgroups_path: Option<&Path>, id: &str) -> Result<(Unit, PathBuf)> {
    let path = cgroups_path
        .map(|p| {
            p.to_str()
                .ok_or_else(|| Error::config(format!("linux.cgroupsPath {p:?} is not valid UTF-8")))
        })
        .transpose()?
        .filter(|p| !p.is_empty());
    let (slice, prefix, name) = match path {
        None => (DEFAULT_SLICE, DEFAULT_PREFIX, id),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [slice, prefix, name] => (slice, prefix, name),
            _ => {
                return Err(Error::config(format!(
                "linux.cgroupsPath {p:?}: the systemd cgroup driver expects \"slice:prefix:name\""
            )))
            }
        },
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    let bad = |why: &str| Error::config(format!("linux.cgroupsPath {path:?}: {why}"));
    if name.is_empty() || name.contains('/') {
        return Err(bad(
            "the name must be a non-empty unit name part without \"/\"",
        ));
    }
    if name.ends_with(".slice") {
        return Err(bad(
            "a slice as the container's unit is not supported; name a scope",
        ));
    }
    if prefix.contains('/') {
        return Err(bad("the prefix must not contain \"/\""));
    }
    let name = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let dir = expand_slice(slice)?.join(&name);
    let unit = Unit {
        name,
        slice: slice.to_string(),
    };
    Ok((unit, dir))
}

/// A slice's cgroup path, as systemd nests slices: `a-b-c.slice` is
/// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub(super) fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = || {
        Error::config(format!(
            "linux.cgroupsPath: {slice:?} is not a slice name (NAME.slice, dashes for nesting)"
        ))
    };
    let base = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if base == "-" {
        return Ok(PathBuf::new());
    }
    if base.is_empty() || slice.contains('/') {
        return Err(bad());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Ok(path)
}

/// Whether systemd is this host's init, as sd_booted(3) tells: /run/systemd/system exists.
pub(super) fn check_running() -> Result<()> {
    if Path::new("/run/systemd/system").is_dir() {
        return Ok(());
    }
    Err(Error::Systemd(
        "the systemd cgroup driver needs systemd as the host's init, and it is not running (no /run/systemd/system)".into(),
    ))
}

/// Start the container's unit with `pid` in it and the resources systemd has properties for;
/// returns once systemd has made its cgroup. A unit that fails to start is reset (not left
/// behind as failed).
pub(super) fn start(
    unit: &Unit,
    pid: Pid,
    resources: &LinuxResources,
    created: &[LinuxDevice],
) -> Result<()> {
    let mut props = vec![
        (
            "Description",
            Value::Str(format!("berth container {}", unit.name)),
        ),
        ("Slice", Value::Str(unit.slice.clone())),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::Pids(vec![pid.as_raw() as u32])),
        ("DefaultDependencies", Value::Bool(false)),
        // Accounting on, as with cgroupfs: the controllers are enabled for the scope.
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        ("IOAccounting", Value::Bool(true)),
        ("TasksAccounting", Value::Bool(true)),
    ];
    props.extend(properties::devices(resources, created)?);
    props.extend(properties::limits(resources)?);
    bus::Bus::connect()?.start(&unit.name, &props)
}

/// Set the resources systemd has properties for on the running unit (not the devices, which
/// `update` leaves alone).
pub(super) fn update(unit: &Unit, resources: &LinuxResources) -> Result<()> {
    let props = properties::limits(resources)?;
    bus::Bus::connect()?.set(&unit.name, &props)
}

/// Stop the unit and wait for it to be gone; a unit that does not exist (any more) is fine.
pub(super) fn stop(unit: &Unit) -> Result<()> {
    bus::Bus::connect()?.stop(&unit.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_nest_as_systemd_nests_them() {
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new(""));
        for bad in [
            "system",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_path_names_the_scope() {
        let (u, dir) = unit(Some(Path::new("machine-test.slice:libpod:abc")), "id").unwrap();
        assert_eq!(u.name, "libpod-abc.scope");
        assert_eq!(u.slice, "machine-test.slice");
        assert_eq!(
            dir,
            Path::new("machine.slice/machine-test.slice/libpod-abc.scope")
        );
        let (u, dir) = unit(None, "c1").unwrap();
        assert_eq!(
            (u.name.as_str(), u.slice.as_str()),
            ("berth-c1.scope", "system.slice")
        );
        assert_eq!(dir, Path::new("system.slice/berth-c1.scope"));
        let (u, _) = unit(Some(Path::new(":p:n")), "id").unwrap();
        assert_eq!(u.slice, "system.slice");
        let (u, _) = unit(Some(Path::new("x.slice::n")), "id").unwrap();
        assert_eq!(u.name, "n.scope");
        for bad in [
            "/abs/path",
            "a:b",
            "a.slice:p:",
            "a.slice:p:x.slice",
            "nope:p:n",
        ] {
            let e = unit(Some(Path::new(bad)), "id").unwrap_err().to_string();
            assert!(e.contains("linux.cgroupsPath"), "{bad}: {e}");
        }
    }
}
