//! Switching the process's root to the rootfs.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::{Context, Result};

/// pivot_root(".", ".") from inside the new root stacks the old root on top of it; detaching that
/// leaves the new root alone without needing a directory for the old one.
pub(crate) fn pivot_root_to(rootfs: &Path) -> Result<()> {
    let dir = |p: &Path| {
        open(
            p,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", p.display()))
    };
    let old_root = dir(Path::new("/"))?;
    let new_root = dir(rootfs)?;
    fchdir(&new_root).ctx(|| format!("chdir {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old_root).ctx(|| "chdir old root")?;
    // Slave first so the detach below does not propagate to the host's mounts.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount old root")?;
    chdir("/").ctx(|| "chdir /")
}

/// runc --no-pivot: move the rootfs mount over / and chroot into it (for ramfs roots, where
/// pivot_root is impossible).
pub(crate) fn move_root_to(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| format!("move {} to /", rootfs.display()))?;
    chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /")
}

/// Without a mount namespace of its own: chroot only, the runtime's mounts are left alone.
pub(crate) fn chroot_to(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /")
}
