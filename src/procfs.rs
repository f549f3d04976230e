//! Writes to procfs files: LSM exec labels, sysctls, oom_score_adj, time offsets, id maps. Each
//! goes through a procfs of the runtime's own that no container can mount anything on, opened
//! before the container process exists, and is resolved from it with openat2 without crossing a
//! mount or following a magic link. A container that swaps a symlink, a bind mount or a whole fake
//! /proc into its own tree (or into a mount namespace a config joins) cannot redirect such a write,
//! neither to a dummy file (the label silently not applied: CVE-2019-16884, CVE-2023-28642) nor to
//! another procfs file such as /proc/sysrq-trigger or core_pattern (CVE-2025-52881).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::{syscall, Context, Error, Result};

/// The inode number of every procfs root.
const PROC_ROOT_INO: u64 = 1;

/// A procfs of the caller's pid namespace for [`write`]: a new instance (fsopen), else a detached
/// copy of /proc without the mounts on top of it (open_tree), else /proc itself (where a mount
/// on the way makes [`write`] fail). Both first ones are private to this fd: no mount can
/// propagate onto them. Needs CAP_SYS_ADMIN for the first two; they fail in some nested setups.
pub fn open_private() -> Result<OwnedFd> {
    let fd = match syscall::new_procfs() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("new procfs instance: {e}; cloning /proc");
            match syscall::clone_tree("/proc") {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::debug!("open_tree /proc: {e}; using /proc");
                    open(
                        "/proc",
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx(|| "open /proc")?
                }
            }
        }
    };
    let fs = fstatfs(&fd).ctx(|| "statfs /proc")?;
    let ino = fstat(&fd).ctx(|| "stat /proc")?.st_ino;
    if fs.filesystem_type() != PROC_SUPER_MAGIC || ino != PROC_ROOT_INO {
        return Err(Error::Init(format!(
            "/proc: not the root of a procfs (type {:#x}, inode {ino})",
            fs.filesystem_type().0
        )));
    }
    Ok(fd)
}

/// Write `value` to `path` (relative: `sys/net/...`, `thread-self/attr/...`) of `procfs`, opened
/// without leaving the procfs mount, climbing out of it, or following a magic link.
pub fn write(procfs: BorrowedFd, path: &str, value: &[u8]) -> Result<()> {
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(procfs, path, how).ctx(|| format!("open /proc/{path}"))?;
    // One write: procfs parses each write(2) as a whole.
    let n = nix::unistd::write(fd.as_fd(), value).ctx(|| format!("write /proc/{path}"))?;
    if n != value.len() {
        return Err(Error::Init(format!(
            "write /proc/{path}: short write ({n} of {} bytes)",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_procfs_is_procfs() {
        let procfs = open_private().unwrap();
        // Reachable: a per-process file, through the plain `thread-self` symlink.
        write(procfs.as_fd(), "thread-self/comm", b"procfs-test").unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/thread-self/comm")
                .unwrap()
                .trim(),
            "procfs-test"
        );
    }

    #[test]
    fn writes_stay_inside() {
        let procfs = open_private().unwrap();
        for path in [
            "../etc/hostname",
            "/etc/hostname",
            "self/cwd/x",
            "thread-self/root/tmp/x",
        ] {
            let e = write(procfs.as_fd(), path, b"x").unwrap_err();
            assert!(
                e.errno() == Some(nix::Error::EXDEV) || e.errno() == Some(nix::Error::ELOOP),
                "{path}: {e}"
            );
        }
    }
}
