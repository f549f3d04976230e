//! process.terminal: the pty is made inside the container (its /dev/pts), and its master goes
//! to the caller over `--console-socket` as runc sends it: SCM_RIGHTS, payload = the pty name.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Box as ConsoleSize;

use crate::{Context, Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

/// Connect to the caller's console socket (done by the runtime before the clone).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(s.into())
}

/// Inside the container: make the pty, send its master, make the slave our stdio and
/// controlling terminal. Returns the slave's path (the init binds it over /dev/console).
pub fn setup_in_container(socket: BorrowedFd, size: Option<&ConsoleSize>) -> Result<String> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx")?;
    grantpt(&master).ctx(|| "grantpt")?;
    unlockpt(&master).ctx(|| "unlockpt")?;
    let name = ptsname_r(&master).ctx(|| "ptsname")?;
    if let Some(size) = size {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ws is a valid winsize and the fd is the pty master we own.
        unsafe { set_winsize(master.as_raw_fd(), &ws) }
            .ctx(|| "process.consoleSize: set window size")?;
    }
    send_fd(socket, master.as_fd(), name.as_bytes())?;
    drop(master);

    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    for n in 0..3 {
        // SAFETY: dup2 onto 0..2 only replaces our stdio with the pty slave.
        nix::errno::Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), n) })
            .ctx(|| format!("dup2 {name} to {n}"))?;
    }
    // SAFETY: TIOCSCTTY takes an int argument; 0 = don't steal from another session.
    nix::errno::Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) })
        .ctx(|| "set controlling terminal")?;
    Ok(name)
}

/// Bind the pty slave over /dev/console, opened without following any symlink so a container
/// cannot point the bind somewhere else (CVE-2025-52565).
pub fn bind_console(slave: &str) -> Result<()> {
    let how = OpenHow::new()
        .flags(OFlag::O_CREAT | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(Mode::from_bits_truncate(0o600))
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let target = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, "/dev/console", how)
        .ctx(|| "open /dev/console")?;
    let target_path = crate::rootfs::fd_path(&target);
    mount(
        Some(slave),
        target_path.as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind {slave} on /dev/console"))
}

pub(crate) fn send_fd(socket: BorrowedFd, fd: BorrowedFd, payload: &[u8]) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(payload)],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(|| "send pty master to console socket")?;
    Ok(())
}

/// The receiving side (used by `run` in the foreground): the pty master sent by the init.
pub fn receive(socket: BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive pty master")?;
    for c in msg.cmsgs().ctx(|| "receive pty master")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table; we take ownership.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Init("console socket: no pty master received".into()))
}
