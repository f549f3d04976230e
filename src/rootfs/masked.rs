//! `linux.maskedPaths`, `linux.readonlyPaths` and `root.readonly`, applied after pivot through fds
//! resolved inside the new root.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor, SFlag};

use super::mount::{bind_fd, context_option, remount_bind};
use super::paths;
use crate::{Context, Error, Result};

fn is_kind(fd: &OwnedFd, kind: SFlag) -> nix::Result<bool> {
    Ok(SFlag::from_bits_truncate(fstat(fd)?.st_mode) & SFlag::S_IFMT == kind)
}

/// Open `path` in `root`, or None if it does not exist (such paths are skipped, as in runc).
fn open_existing(root: BorrowedFd, path: &Path) -> nix::Result<Option<OwnedFd>> {
    match paths::open(root, path) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Hide each path: files under the null device, directories under an empty read-only tmpfs.
/// The tmpfs gets linux.mountLabel (`label`) where SELinux is enabled, as in runc.
pub(crate) fn mask(root: BorrowedFd, masked: &[String], label: Option<&str>) -> Result<()> {
    if masked.is_empty() {
        return Ok(());
    }
    // Bind nothing but the real null device over files: check what /dev/null is, by fd.
    let null = paths::open(root, Path::new("/dev/null")).ctx(|| "open /dev/null")?;
    let st = fstat(&null).ctx(|| "stat /dev/null")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || (major(st.st_rdev), minor(st.st_rdev)) != (1, 3)
    {
        return Err(Error::sys(
            "check /dev/null is the null device (1:3)",
            Errno::ENODEV,
        ));
    }
    for path in masked {
        let what = || format!("mask {path}");
        let Some(fd) = open_existing(root, Path::new(path)).ctx(what)? else {
            continue;
        };
        if is_kind(&fd, SFlag::S_IFDIR).ctx(what)? {
            mount(
                Some("tmpfs"),
                paths::fd_path(&fd).as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                label.map(context_option).as_deref(),
            )
            .ctx(what)?;
        } else {
            bind_fd(&null, &fd, MsFlags::empty()).ctx(what)?;
        }
    }
    Ok(())
}

/// Make each path a read-only (and nosuid, nodev, noexec) bind mount of itself.
pub(crate) fn make_readonly(root: BorrowedFd, readonly: &[String]) -> Result<()> {
    for path in readonly {
        let what = || format!("make {path} read-only");
        let Some(fd) = open_existing(root, Path::new(path)).ctx(what)? else {
            continue;
        };
        bind_fd(&fd, &fd, MsFlags::MS_REC).ctx(what)?;
        // Reopen: the old fd still points below the new bind mount.
        let fd = paths::open(root, Path::new(path)).ctx(what)?;
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        remount_bind(&fd, flags, MsFlags::empty()).ctx(what)?;
    }
    Ok(())
}

/// Remount / read-only, keeping its other flags.
pub(crate) fn root_readonly(root: &OwnedFd) -> Result<()> {
    remount_bind(root, MsFlags::MS_RDONLY, MsFlags::empty()).ctx(|| "remount / read-only")
}
