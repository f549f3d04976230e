//! Raw system calls that nix does not wrap.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

/// clone(2) with fork semantics (no new stack, SIGCHLD on exit): returns the child's pid in the
/// parent and None in the child. Unlike fork(), it can create namespaces at once.
pub fn clone_fork(flags: CloneFlags) -> nix::Result<Option<Pid>> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack the child runs on a copy of our stack, exactly like fork(); the
    // callers are single-threaded, so no lock can be held by a thread that does not exist in the child.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match Errno::result(r)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// clone3(2) with fork semantics, like [`clone_fork`], that starts the child in the cgroup2
/// directory `cgroup` (CLONE_INTO_CGROUP, Linux 5.7): it never runs outside it, and no
/// cgroup.procs write (a migration) is needed. Kernels without clone3 fail with ENOSYS, ones
/// without CLONE_INTO_CGROUP with E2BIG or EINVAL; a seccomp filter may say ENOSYS or EPERM.
pub fn clone_fork_into(flags: CloneFlags, cgroup: BorrowedFd) -> nix::Result<Option<Pid>> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    // SAFETY: clone_args is plain integers, for which all zeroes is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags.bits() as u64 | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup.as_raw_fd() as u64;
    // SAFETY: a zero stack (and stack size) gives fork semantics, as in clone_fork (same
    // single-threaded callers); args is valid for the call and its size is passed with it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match Errno::result(r)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// Mark every fd from `first` on close-on-exec, so exec passes only 0..first.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes fd flags; CLOSE_RANGE_CLOEXEC closes nothing now.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map(drop)
}

/// Give the process a new session keyring, so containers do not share the host's keys.
pub fn join_session_keyring(name: &std::ffi::CStr) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_ulong = 1;
    // SAFETY: the name is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(r).map(drop)
}

/// A pidfd for `pid` (close-on-exec, as every pidfd is): it turns readable once the process
/// has exited, and it keeps naming that process even if its pid is reused.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (none) and returns a new fd or -1.
    unsafe { owned(libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0)) }
}

/// A new procfs instance of the caller's pid namespace, as a detached mount (fsopen, fsconfig,
/// fsmount: Linux 5.2): nothing is mounted on it, and nothing can propagate onto it.
pub fn new_procfs() -> nix::Result<OwnedFd> {
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
    new_detached_mount(c"proc", &[], attrs)
}

/// A new filesystem of type `fstype` with the string options `options`, as a detached mount
/// with the MOUNT_ATTR_* `attrs` (fsopen, fsconfig, fsmount: Linux 5.2).
pub fn new_detached_mount(
    fstype: &std::ffi::CStr,
    options: &[(&std::ffi::CStr, &std::ffi::CStr)],
    attrs: u64,
) -> nix::Result<OwnedFd> {
    // SAFETY: the name is NUL-terminated and outlives the call, which returns a new fd we own.
    let fs = unsafe {
        owned(libc::syscall(
            libc::SYS_fsopen,
            fstype.as_ptr(),
            libc::FSOPEN_CLOEXEC,
        ))?
    };
    let config = |cmd: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
        // SAFETY: key and value are null or NUL-terminated strings that outlive the call.
        let r = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, key, value, 0) };
        Errno::result(r).map(drop)
    };
    for (key, value) in options {
        config(libc::FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())?;
    }
    config(
        libc::FSCONFIG_CMD_CREATE,
        std::ptr::null(),
        std::ptr::null(),
    )?;
    // SAFETY: fs is a configured filesystem context; the call returns a new fd we own.
    unsafe {
        owned(libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attrs,
        ))
    }
}

/// A detached copy of the mount at `path`, without the mounts below it (open_tree with
/// OPEN_TREE_CLONE and no AT_RECURSIVE: Linux 5.2).
pub fn clone_tree(path: &str) -> nix::Result<OwnedFd> {
    let path = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    open_tree_clone(libc::AT_FDCWD, &path, 0)
}

/// A detached copy of the mount at the object `fd` refers to, with the mounts below it when
/// `recursive` (AT_RECURSIVE).
pub fn clone_tree_fd(fd: BorrowedFd, recursive: bool) -> nix::Result<OwnedFd> {
    let flags = libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    open_tree_clone(fd.as_raw_fd(), c"", flags)
}

fn open_tree_clone(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
) -> nix::Result<OwnedFd> {
    let flags = flags | libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: path is NUL-terminated and outlives the call, which returns a new fd we own.
    unsafe {
        owned(libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags,
        ))
    }
}

/// Layout of `struct mount_attr` (linux/mount.h), version 0.
#[repr(C)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr) (Linux 5.12): libc has the
/// number but no wrapper.
pub fn mount_setattr(fd: RawFd, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid NUL-terminated string, `attr` is a live mount_attr whose size
    // we pass, and the kernel only reads both during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Attach the detached mount `from` (from open_tree or fsmount) onto the object `to` refers to.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty NUL-terminated strings; the call only reads its arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// # Safety
/// `r` must be the result of a syscall that returns a new fd on success.
unsafe fn owned(r: libc::c_long) -> nix::Result<OwnedFd> {
    let fd = Errno::result(r)? as RawFd;
    // SAFETY: per the contract, fd is new and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
