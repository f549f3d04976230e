//! CVE-2019-5736: no process in a container may have the runtime's host binary as its executable,
//! nor exec it (a `#!/proc/self/exe` script run by `exec`): once that process has exited, a
//! container process holding its `/proc/PID/exe` could reopen the binary for writing and replace
//! it. berth has no separate init binary (container processes are clones of the runtime), so the
//! commands that start container processes first re-execute the runtime from a copy the container
//! cannot write back to: the binary seen through a private, detached, read-only overlayfs (no copy
//! made, as runc 1.2+ does), else a sealed memfd copy (runc's fallback). /proc/self/exe is then
//! that copy in the runtime and in every process cloned from it.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, OVERLAYFS_SUPER_MAGIC};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::{syscall, Context, Error, Result};

/// Set for the re-executed runtime (and removed from its environment at once), so that a copy
/// that is somehow not sealed fails instead of re-executing forever.
const MARKER: &str = "_BERTH_SEALED_EXE";
/// The memfd seals that make the copy immutable (F_SEAL_EXEC, Linux 6.3, is added when known).
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// How /proc/self/exe is protected, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// A read-only overlayfs (or another read-only mount of one): nothing can write through it.
    Overlay,
    /// A memfd with the write, grow, shrink and seal seals.
    Memfd,
}

/// Return once /proc/self/exe is sealed; otherwise re-execute the process (same arguments,
/// environment and fds) from a sealed copy of its binary, which never returns on success.
/// `scratch` is an existing directory, or one this may create, that is not the binary's own
/// directory nor above or below it: overlayfs needs a second lower layer, and the binary's
/// layer hides anything of the same name in it.
pub fn ensure(scratch: &Path) -> Result<Seal> {
    let exe = open(
        "/proc/self/exe",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc/self/exe")?;
    let reexecuted = std::env::var_os(MARKER).is_some();
    // Hooks and other children of this process must not inherit it.
    std::env::remove_var(MARKER);
    if let Some(seal) = seal_of(&exe) {
        return Ok(seal);
    }
    if reexecuted {
        return Err(Error::SealedExe(
            "re-executed from a sealed copy, but /proc/self/exe is not sealed".into(),
        ));
    }
    let copy = match overlay(scratch) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(
                "sealed runtime binary through overlayfs: {e}; copying it into a memfd"
            );
            memfd_copy(exe)?
        }
    };
    std::env::set_var(MARKER, "1");
    let argv = std::env::args_os()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let envp = std::env::vars_os()
        .map(|(k, v)| cstring([k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<Vec<_>>>()?;
    let err = nix::unistd::fexecve(&copy, &argv, &envp).unwrap_err();
    Err(Error::sys(
        "re-execute the runtime from a sealed copy of its binary",
        err,
    ))
}

/// How the open executable `exe` is sealed, if it is.
pub fn seal_of(exe: &OwnedFd) -> Option<Seal> {
    // SAFETY: F_GET_SEALS takes no argument and touches no memory.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Some(Seal::Memfd);
    }
    let overlay = fstatfs(exe).is_ok_and(|s| s.filesystem_type() == OVERLAYFS_SUPER_MAGIC);
    let read_only = fstatvfs(exe).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    (overlay && read_only).then_some(Seal::Overlay)
}

/// The binary behind /proc/self/exe, opened (O_PATH) through a new detached overlayfs whose
/// only layers are the binary's directory and `scratch`: without an upper layer nothing in it
/// can be written, and its mount is read-only and reachable from nowhere but this fd.
fn overlay(scratch: &Path) -> Result<OwnedFd> {
    let real = std::fs::read_link("/proc/self/exe").ctx(|| "readlink /proc/self/exe")?;
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(Error::SealedExe(format!(
            "{}: not a file in a directory",
            real.display()
        )));
    };
    std::fs::create_dir_all(scratch).ctx(|| format!("create {}", scratch.display()))?;
    let scratch = scratch
        .canonicalize()
        .ctx(|| format!("resolve {}", scratch.display()))?;
    let lower = format!("{}:{}", layer(dir)?, layer(&scratch)?);
    let options = [
        (c"lowerdir", cstring(lower.as_bytes())?),
        // Layers on different filesystems would otherwise log xino warnings.
        (c"xino", c"off".to_owned()),
    ];
    let options: Vec<(&CStr, &CStr)> = options.iter().map(|(k, v)| (*k, v.as_c_str())).collect();
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
    let mnt = syscall::new_detached_mount(c"overlay", &options, attrs)
        .ctx(|| format!("mount overlayfs lowerdir={lower}"))?;
    openat(
        &mnt,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name:?} in overlayfs lowerdir={lower}"))
}

/// A lowerdir entry: `:` and `\` escaped; a `,` would split the options of kernels that pass
/// them on as one legacy mount string.
fn layer(path: &Path) -> Result<String> {
    let s = path.to_str().filter(|s| !s.contains(','));
    let s = s.ok_or_else(|| {
        Error::SealedExe(format!(
            "{}: not usable as an overlayfs layer",
            path.display()
        ))
    })?;
    Ok(s.replace('\\', "\\\\").replace(':', "\\:"))
}

/// A sealed, executable memfd holding a copy of the binary open as `exe`.
fn memfd_copy(exe: OwnedFd) -> Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags| {
        // SAFETY: the name is NUL-terminated; on success the call returns a new fd we own.
        let fd = unsafe { libc::memfd_create(c"berth".as_ptr(), flags) };
        Errno::result(fd).map(|fd| {
            // SAFETY: memfd_create returned a new fd that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
    };
    // MFD_EXEC (Linux 6.3) keeps it executable under vm.memfd_noexec=1; older kernels refuse it.
    let memfd = match create(flags | libc::MFD_EXEC) {
        Err(Errno::EINVAL) => create(flags),
        r => r,
    }
    .ctx(|| "memfd_create")?;
    let mut from = File::from(exe);
    let mut to = File::from(memfd);
    std::io::copy(&mut from, &mut to).ctx(|| "copy /proc/self/exe into a memfd")?;
    let memfd = OwnedFd::from(to);
    nix::sys::stat::fchmod(&memfd, Mode::from_bits_truncate(0o511)).ctx(|| "chmod the memfd")?;
    let seal = |seals: libc::c_int| {
        // SAFETY: F_ADD_SEALS takes an int and touches no memory.
        Errno::result(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) })
    };
    // Not executable-bit changes either, where the kernel knows that seal.
    let _ = seal(libc::F_SEAL_EXEC);
    seal(SEALS).ctx(|| "seal the memfd")?;
    Ok(memfd)
}

fn cstring(bytes: impl AsRef<[u8]>) -> Result<CString> {
    let bytes = bytes.as_ref();
    CString::new(bytes)
        .map_err(|_| Error::SealedExe(format!("{:?}: contains NUL", OsStr::from_bytes(bytes))))
}
