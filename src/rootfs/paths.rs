//! Path resolution inside a root directory. Every lookup is an openat2(RESOLVE_IN_ROOT) from an
//! fd of the root, so `..` and symlinks (absolute ones too) stay clamped inside it and /proc magic
//! links can't be used to jump out. Targets are then used through their fd, never by path string.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::{Context, Result};

/// Symlinks followed while creating one path before giving up, as the kernel's own limit.
const MAX_SYMLINKS: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// An O_PATH fd of a directory on the (current) host view, used as the root for lookups.
pub(crate) fn open_root(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", path.display()))
}

/// Set by [`resolve_fd_links_in`]: fd links are then reached from the cwd, not from /proc.
static FD_LINKS_IN_CWD: AtomicBool = AtomicBool::new(false);

/// The path through which the kernel reaches the object behind `fd` (mount(2) takes paths only).
pub(crate) fn fd_path(fd: impl AsFd) -> String {
    let dir = if FD_LINKS_IN_CWD.load(Ordering::Relaxed) {
        "self/fd"
    } else {
        "/proc/self/fd"
    };
    format!("{dir}/{}", fd.as_fd().as_raw_fd())
}

/// From now on in this process, [`fd_path`]s go through `procfs` (a private procfs, made the
/// cwd) rather than /proc. After pivot_root /proc is the container's own, and a mount swapped
/// in over it (from a volume another container shares) could send a mask or the console bind
/// elsewhere (CVE-2025-52881). The cwd stays there until the process enters process.cwd.
pub fn resolve_fd_links_in(procfs: BorrowedFd) -> Result<()> {
    nix::unistd::fchdir(procfs).ctx(|| "chdir to the runtime's procfs")?;
    FD_LINKS_IN_CWD.store(true, Ordering::Relaxed);
    Ok(())
}

/// Open `path` (read as relative to `root` even if absolute) as an O_PATH fd.
pub(crate) fn open(root: BorrowedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// Open `path` inside `root`, first creating it as `kind` (and its missing parents as
/// directories) if absent. A dangling symlink on the way is followed inside the root and its
/// target is created instead, so e.g. `/var/run -> /run` works when /run doesn't exist yet.
pub(crate) fn create(root: BorrowedFd, path: &Path, kind: Kind) -> nix::Result<OwnedFd> {
    create_inner(root, path, kind, 0)
}

fn create_inner(root: BorrowedFd, path: &Path, kind: Kind, links: usize) -> nix::Result<OwnedFd> {
    match open(root, path) {
        Err(Errno::ENOENT) => {}
        found => return found,
    }
    if links > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    // Only a missing name with a parent can be created; `/` and a trailing `..` always exist.
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno::ENOENT);
    };
    let dir = create_inner(root, parent, Kind::Dir, links)?;
    let made = match kind {
        Kind::Dir => mkdirat(&dir, name, Mode::from_bits_truncate(0o755)),
        // O_EXCL: never follow a symlink planted at `name` while creating.
        Kind::File => openat(
            &dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) => {}
        Err(Errno::EEXIST) => match readlinkat(&dir, name) {
            // A dangling symlink: create what it points to, resolved from the link's directory.
            Ok(target) => return create_inner(root, &parent.join(target), kind, links + 1),
            // Not a symlink: created concurrently, just open it below.
            Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    }
    open(root, path)
}
