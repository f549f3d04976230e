//! `--pidfd-socket` (runc 1.2+): a pidfd of the container process the runtime started goes to
//! the caller's unix socket the way the console socket gets its pty (SCM_RIGHTS), with runc's
//! payload: `standard` for the init, `setns` for a process `exec` added. The runtime sends it
//! itself (it has the pid), so nothing in the container ever holds the socket.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::Pid;

use crate::{console, syscall, Context, Result};

/// Which process the pidfd is of (runc's names for its two kinds of init).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Init,
    Exec,
}

/// Connect to the caller's pidfd socket (before anything is started, so a bad path fails early).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s =
        UnixStream::connect(path).ctx(|| format!("connect to pidfd socket {}", path.display()))?;
    Ok(s.into())
}

/// Send a pidfd of `pid` over `socket`.
pub fn send(socket: BorrowedFd, pid: Pid, kind: Kind) -> Result<()> {
    let pidfd =
        syscall::pidfd_open(pid).ctx(|| format!("pidfd_open of container process {pid}"))?;
    let payload: &[u8] = match kind {
        Kind::Init => b"standard",
        Kind::Exec => b"setns",
    };
    console::send_fd(socket, pidfd.as_fd(), payload, "pidfd to pidfd socket")
}
