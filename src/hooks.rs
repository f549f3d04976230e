//! The OCI hooks: each runs with the container state on stdin, its own args and env, and an
//! optional timeout. Failure semantics follow runtime-spec v1.3: a failing prestart,
//! createRuntime, createContainer, startContainer or poststart hook is an error; a failing
//! poststop hook is only a warning (the caller decides, see [`HookKind::fatal`]).

use std::io::{Read, Seek};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use oci_spec::runtime::{Hook, Hooks};

use crate::error::{errno_text, io_text};
use crate::{syscall, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    fn list(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            #[allow(deprecated)]
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// The state JSON as a hook in the container's namespaces must see it: the pid as the
/// container sees it (runtime-spec, state), and the status of the moment.
pub fn in_container(state: &str, status: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    v["status"] = status.into();
    v["pid"] = nix::unistd::getpid().as_raw().into();
    v.to_string()
}

/// Hooks whose path must resolve in the runtime's namespace must exist before create starts.
pub fn validate(hooks: Option<&Hooks>) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    for kind in HookKind::ALL {
        for (i, h) in kind.list(hooks).iter().enumerate() {
            let field = format!("hooks.{}[{i}].path {}", kind.name(), h.path().display());
            if !h.path().is_absolute() {
                return Err(Error::config(format_args!("{field}: must be absolute")));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::config(format_args!(
                    "hooks.{}[{i}].timeout: must be greater than zero",
                    kind.name()
                )));
            }
            let in_runtime_ns = matches!(
                kind,
                HookKind::Prestart | HookKind::CreateRuntime | HookKind::CreateContainer
            );
            if in_runtime_ns && !h.path().exists() {
                return Err(Error::config(format_args!("{field}: no such file")));
            }
        }
    }
    Ok(())
}

/// Run every hook of `kind` in order, stopping at the first failure.
pub fn run(kind: HookKind, hooks: Option<&Hooks>, state: &str) -> Result<()> {
    for (i, hook) in hooks
        .map(|h| kind.list(h))
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        run_one(hook, state).map_err(|e| {
            Error::Hook(format!(
                "hooks.{}[{i}] {}: {e}",
                kind.name(),
                hook.path().display()
            ))
        })?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &str) -> std::result::Result<(), String> {
    // Output goes to an unnamed temp file, read back for the error message: no pipe to drain
    // while we wait, so no thread.
    let out = memfd().map_err(|e| format!("create output buffer: {}", io_text(&e)))?;
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_deref().filter(|a| !a.is_empty()) {
        cmd.arg0(&args[0]).args(&args[1..]);
    }
    cmd.env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(|e| io_text(&e))?)
        .stderr(out.try_clone().map_err(|e| io_text(&e))?);
    let mut child = cmd.spawn().map_err(|e| format!("start: {}", io_text(&e)))?;
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = match feed_and_wait(&mut child, state.as_bytes(), deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or_default()
            ));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut output = String::new();
    let mut out = out;
    let _ = out
        .rewind()
        .and_then(|_| out.take(4096).read_to_string(&mut output));
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    let output = output.trim();
    Err(if output.is_empty() {
        how
    } else {
        format!("{how}: {output}")
    })
}

/// Write `input` to the child's stdin as it reads it, and wait for it to exit, both before
/// `deadline` (None: no limit): Some(status), or None once the deadline passed. The state may
/// be bigger than the pipe buffer, so a hook that does not read it must not block us past the
/// deadline. A pidfd wakes us as the hook exits.
fn feed_and_wait(
    child: &mut Child,
    input: &[u8],
    deadline: Option<Instant>,
) -> std::result::Result<Option<ExitStatus>, String> {
    let pid = Pid::from_raw(child.id() as i32);
    let pidfd = syscall::pidfd_open(pid).map_err(|e| format!("pidfd_open: {}", errno_text(e)))?;
    let mut stdin = Some(OwnedFd::from(child.stdin.take().expect("piped")));
    if let Some(fd) = &stdin {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| format!("stdin O_NONBLOCK: {}", errno_text(e)))?;
    }
    let mut rest = input;
    loop {
        if rest.is_empty() {
            // Closed: the hook reads end of file.
            stdin = None;
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
                None => return Ok(None),
            },
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &stdin {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
        }
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) | Ok(0) => continue,
            r => r.map_err(|e| format!("poll: {}", errno_text(e)))?,
        };
        let exited = fds[0].any().unwrap_or(false);
        let writable = fds.get(1).is_some_and(|f| f.any().unwrap_or(false));
        drop(fds);
        if exited {
            return child
                .wait()
                .map(Some)
                .map_err(|e| format!("wait: {}", io_text(&e)));
        }
        if let (true, Some(fd)) = (writable, &stdin) {
            match nix::unistd::write(fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                // A hook that does not read its stdin is fine (EPIPE).
                Err(_) => rest = &[],
            }
        }
    }
}

fn memfd() -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"hook-output", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(fd.into())
}
