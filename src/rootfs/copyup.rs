//! `tmpcopyup` (runc's extension, which Podman puts on `--tmpfs` mounts and on the tmpfs it
//! mounts on /tmp, /var/tmp and /run for `--read-only`): the new tmpfs starts with a copy of the
//! directory it covers.
//!
//! The covered directory is opened before the tmpfs hides it, and the copy runs from that fd to
//! the new mount with *at calls that never follow a symlink: links are copied as links, so the
//! image's tree cannot make the runtime read or write anything outside it.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use crate::{Context, Result};

/// Copy what is below the directory `from` into the directory `to`: directories, regular
/// files, symlinks, devices and fifos, with their owner and mode (sockets are skipped). The top
/// directory's own attributes are the mount's, as in runc. `at` (the mount's destination)
/// names the entries in errors.
pub(crate) fn copy_tree(from: OwnedFd, to: BorrowedFd, at: &Path) -> Result<()> {
    let mut dir = Dir::from_fd(from).ctx(|| format!("read {}", at.display()))?;
    let names = dir
        .iter()
        .map(|e| e.map(|e| e.file_name().to_owned()))
        .collect::<nix::Result<Vec<CString>>>()
        .ctx(|| format!("read {}", at.display()))?;
    let from = dir.as_fd();
    for name in names
        .iter()
        .map(CString::as_c_str)
        .filter(|n| !matches!(n.to_bytes(), b"." | b".."))
    {
        let path = at.join(OsStr::from_bytes(name.to_bytes()));
        let what = || format!("copy {} into the tmpfs", path.display());
        let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW).ctx(what)?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if !make_entry(from, to, name, kind, &st).ctx(what)? {
            continue;
        }
        if kind == SFlag::S_IFDIR {
            copy_tree(
                open_dir(from, name).ctx(what)?,
                open_dir(to, name).ctx(what)?.as_fd(),
                &path,
            )?;
        }
        fchownat(
            to,
            name,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(what)?;
        // After the chown, which clears set-id bits, and after a directory's content is in. A
        // symlink has no mode of its own; anything else was just made by us in a tmpfs nothing
        // else sees yet, so following the name is safe.
        if kind != SFlag::S_IFLNK {
            fchmodat(
                to,
                name,
                Mode::from_bits_truncate(st.st_mode & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .ctx(what)?;
        }
    }
    Ok(())
}

/// Open the directory `name` in `dir` (`c"."`: `dir` itself, which may be an O_PATH fd) to
/// read its entries.
pub(crate) fn open_dir(dir: BorrowedFd, name: &CStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty())
}

/// Make `name` in `to` as the `kind` of entry it is in `from` (owner-only until its attributes
/// are copied), with a regular file's data. False for a socket, which is not copied.
fn make_entry(
    from: BorrowedFd,
    to: BorrowedFd,
    name: &CStr,
    kind: SFlag,
    st: &FileStat,
) -> nix::Result<bool> {
    let private = Mode::S_IRUSR | Mode::S_IWUSR;
    match kind {
        SFlag::S_IFDIR => mkdirat(to, name, Mode::S_IRWXU)?,
        SFlag::S_IFREG => {
            let no_follow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | no_follow,
                Mode::empty(),
            )?;
            let dest = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | no_follow,
                private,
            )?;
            std::io::copy(
                &mut std::fs::File::from(src),
                &mut std::fs::File::from(dest),
            )
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        }
        SFlag::S_IFLNK => symlinkat(readlinkat(from, name)?.as_os_str(), to, name)?,
        SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
            mknodat(to, name, kind, private, st.st_rdev)?
        }
        _ => return Ok(false),
    }
    Ok(true)
}
