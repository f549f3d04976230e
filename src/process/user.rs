//! process.user (uid, gid, additionalGids, umask) and process.cwd.

use std::path::Path;

use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::User;

use crate::{Context, Error, Result};

/// In a user namespace we start with its capabilities but as an unmapped id: become its root.
pub fn become_root() -> Result<()> {
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).ctx(|| "setresgid 0 in the user namespace")?;
    setresuid(root.1, root.1, root.1).ctx(|| "setresuid 0 in the user namespace")
}

/// Switch to the configured user, keeping the permitted capabilities for
/// [`crate::security::capabilities::apply`].
pub fn switch(user: &User) -> Result<()> {
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose gid map was written with setgroups=deny;
    // with no groups asked for, that is not an error.
    match setgroups(&gids) {
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
            return Err(Error::Init(format!(
                "process.user.additionalGids {:?}: the user namespace denies setgroups (an \
                 unprivileged runtime mapped only its own gid; map more through newgidmap)",
                user.additional_gids().as_deref().unwrap_or_default()
            )))
        }
        r => r.ctx(|| format!("process.user.additionalGids: setgroups {gids:?}"))?,
    }
    let gid = Gid::from_raw(mapped(user.gid(), "gid")?);
    setresgid(gid, gid, gid).map_err(|e| id_error("gid", gid.as_raw(), e))?;
    nix::sys::prctl::set_keepcaps(true).ctx(|| "set keepcaps")?;
    let uid = Uid::from_raw(mapped(user.uid(), "uid")?);
    setresuid(uid, uid, uid).map_err(|e| id_error("uid", uid.as_raw(), e))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "clear keepcaps")?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// The kernel reads an id of -1 as "leave unchanged": as the process's id it would keep root.
fn mapped(id: u32, kind: &str) -> Result<u32> {
    if id == u32::MAX {
        return Err(id_error(kind, id, nix::errno::Errno::EINVAL));
    }
    Ok(id)
}

/// A refused setres[ug]id, worded as runc words an id the user namespace does not map.
fn id_error(kind: &str, id: u32, errno: nix::errno::Errno) -> Error {
    if errno == nix::errno::Errno::EINVAL {
        return Error::Init(format!(
            "process.user.{kind}: cannot set{kind} to unmapped {kind} {id}"
        ));
    }
    Error::sys(format!("process.user.{kind}: setres{kind} {id}"), errno)
}

/// Whether this user namespace denies setgroups (an unprivileged runtime's own-gid map).
fn setgroups_denied() -> bool {
    std::fs::read("/proc/self/setgroups").is_ok_and(|v| v.starts_with(b"deny"))
}

/// chdir to process.cwd, then make sure the cwd really is inside the container: a cwd reached
/// through a leaked host fd shows as "(unreachable)" (CVE-2024-21626).
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).ctx(|| format!("process.cwd: chdir {}", cwd.display()))?;
    let now = nix::unistd::getcwd().ctx(|| "getcwd")?;
    if !now.is_absolute() {
        return Err(Error::Init(format!(
            "process.cwd {}: outside the container",
            cwd.display()
        )));
    }
    Ok(())
}
