//! The library's error type. Every variant says what failed and on what, in lower case, so the
//! CLI can print it as is (containerd shows the last error line of our log to its user).

use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed: `what` names the operation and its path/field.
    #[error("{what}: {}", errno_text(*.errno))]
    Sys { what: String, errno: nix::Error },
    /// An I/O operation from std failed.
    #[error("{what}: {}", io_text(.err))]
    Io { what: String, err: std::io::Error },
    /// config.json (or another input) is malformed or names something that cannot be honoured.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A container id that is not valid (empty, `/`, `..`, ...).
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    /// An operation that the container's current status does not allow.
    #[error("cannot {op} container {id:?}: it is {status}")]
    WrongState {
        op: &'static str,
        id: String,
        status: String,
    },
    /// A signal for a container whose init has exited: runc's words, which containerd's shim
    /// matches to recognise a stopped container.
    #[error("cannot {op} container {id:?}: container not running")]
    NotRunning { op: &'static str, id: String },
    /// Something the container would take over is in use by others (a cgroup with processes).
    #[error("{0}")]
    InUse(String),
    /// A hook failed, timed out or could not be started.
    #[error("{0}")]
    Hook(String),
    /// The container init reported a failure over the sync channel (text carries its context).
    #[error("{0}")]
    Init(String),
    /// The runtime could not re-execute itself from a sealed copy ([`crate::sealed_exe`]).
    #[error("sealed runtime binary: {0}")]
    SealedExe(String),
    /// systemd (the systemd cgroup driver's D-Bus calls) refused or failed a request.
    #[error("{0}")]
    Systemd(String),
    /// CRIU is missing or a checkpoint/restore through it failed (with its last error).
    #[error("{0}")]
    Criu(String),
    /// A command-line argument that cannot be honoured.
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn sys(what: impl Into<String>, errno: nix::Error) -> Self {
        Error::Sys {
            what: what.into(),
            errno,
        }
    }
    pub fn io(what: impl Into<String>, err: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            err,
        }
    }
    pub fn config(msg: impl Display) -> Self {
        Error::Config(msg.to_string())
    }
    /// The errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            Error::Io { err, .. } => err.raw_os_error().map(nix::Error::from_raw),
            _ => None,
        }
    }
}

/// An errno as `ENOENT: no such file or directory`: lower case, as runc words it. Clients match
/// these words: Docker's CLI exits 127 on "no such file or directory" and 126 on "permission
/// denied", case-sensitively.
pub fn errno_text(errno: nix::Error) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    format!("{errno:?}: {first}{}", chars.as_str())
}

/// An std I/O error: its errno as [`errno_text`] (not std's "No such file or directory (os
/// error 2)"), else std's own text.
pub fn io_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(n) => errno_text(nix::Error::from_raw(n)),
        None => err.to_string(),
    }
}

/// Attach "what was being done, on what" to a failed nix or std call.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_read_in_lower_case() {
        let e = Error::sys("mount proc on /proc", nix::Error::EPERM);
        assert_eq!(
            e.to_string(),
            "mount proc on /proc: EPERM: operation not permitted"
        );
        let e = Error::io(
            "exec \"/x\"",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "exec \"/x\": ENOENT: no such file or directory"
        );
        let e = Error::io(
            "read",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short read"),
        );
        assert_eq!(e.to_string(), "read: short read");
    }
}
