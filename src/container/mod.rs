//! The lifecycle verbs on a container: create, start, kill, delete, state, pause, resume, ps,
//! `run` in the foreground, and `update` and `events` for its resources.

pub(crate) mod create;
mod events;
mod exec;
mod pause;
pub(crate) mod run;
mod update;

pub use create::{create, CreateOptions};
pub use events::{events, stats, Event, Events};
pub use exec::{exec, ExecOptions};
pub use pause::{pause, pids, resume};
pub use run::{run, RunOptions};
pub use update::update;

use std::os::fd::AsFd;

use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::stat::Mode;

use crate::hooks::{self, HookKind};
use crate::state::{State, Status, Store};
use crate::{syscall, Context, Error, Result};

/// The saved state of a container and its status now.
pub fn state(store: &Store, id: &str) -> Result<(State, Status)> {
    let dir = store.open(id, false)?;
    match dir.load()? {
        Some(state) => {
            let status = dir.status(&state);
            Ok((state, status))
        }
        None => Err(Error::WrongState {
            op: "query",
            id: id.into(),
            status: Status::Creating.to_string(),
        }),
    }
}

/// Every container under the store with its status; ones still being created are left out.
pub fn list(store: &Store) -> Result<Vec<(State, Status)>> {
    let mut out = Vec::new();
    for id in store.list()? {
        match state(store, &id) {
            Ok(s) => out.push(s),
            Err(Error::NotFound(_) | Error::WrongState { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Let a created container run its program: the init is blocked opening the exec fifo for
/// writing until we open it for reading.
///
/// The container's lock is held only to check its status and open the fifo: while the
/// startContainer hooks (run by the init before it answers) and the poststart hooks run,
/// `state`, `kill`, `delete --force` and `list` must answer. A lock on the fifo itself keeps a
/// second `start` out meanwhile.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let (state, fifo, fifo_path) = {
        let dir = store.open(id, true)?;
        let state = dir
            .load()?
            .ok_or_else(|| wrong(id, "start", Status::Creating))?;
        let status = dir.status(&state);
        if status != Status::Created {
            return Err(wrong(id, "start", status));
        }
        let fifo_path = dir.fifo();
        // Non-blocking, so a dead init cannot hang us: we poll and check that it is still alive.
        let fifo = open(
            &fifo_path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", fifo_path.display()))?;
        let fifo = match Flock::lock(fifo, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(Error::WrongState {
                    op: "start",
                    id: id.to_string(),
                    status: "being started".into(),
                })
            }
            Err((_, e)) => return Err(Error::sys(format!("lock {}", fifo_path.display()), e)),
        };
        (state, fifo, fifo_path)
    };
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(50u16));
        match nix::unistd::read(&*fifo, &mut buf) {
            Ok(n) if n > 0 && buf[0] == b'0' => break,
            Ok(n) if n > 0 => {
                let _ = std::fs::remove_file(&fifo_path);
                return Err(Error::Hook(
                    String::from_utf8_lossy(&buf[1..n]).into_owned(),
                ));
            }
            Ok(_) | Err(nix::errno::Errno::EAGAIN) if state.init_alive() => continue,
            // A `delete` ran while we waited: it killed the init and removed the state.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) if !fifo_path.exists() => {
                return Err(Error::NotFound(id.to_string()))
            }
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                return Err(Error::Init(format!(
                    "container {id:?}: init exited before start"
                )))
            }
            Err(e) => return Err(Error::sys(format!("read {}", fifo_path.display()), e)),
        }
    }
    std::fs::remove_file(&fifo_path).ctx(|| format!("remove {}", fifo_path.display()))?;
    drop(fifo);
    let oci = serde_json::to_string(&state.oci(Status::Running)).expect("state serialises");
    // A failed poststart hook stops the container, as runc does and runtime-spec now asks: left
    // running, its caller (containerd's shim) would still think it created and refuse to delete it.
    hooks::run(HookKind::Poststart, state.hooks.as_ref(), &oci).inspect_err(|_| {
        if let Err(e) = stop(&state) {
            tracing::warn!("{e}");
        }
    })
}

/// Send a signal to the init, or with `all` to every process of the container's cgroup (see
/// [`crate::cgroups::Cgroup::kill_all`] for a paused container).
pub fn kill(store: &Store, id: &str, sig: Signal, all: bool) -> Result<()> {
    let dir = store.open(id, false)?;
    let state = dir
        .load()?
        .ok_or_else(|| wrong(id, "kill", Status::Creating))?;
    let status = dir.status(&state);
    // Without a cgroup (rootless) the other processes cannot be found: the init gets the
    // signal, which with a pid namespace takes every process along on SIGKILL.
    if all && !state.cgroup.is_none() {
        return state.cgroup.kill_all(sig);
    }
    if status == Status::Stopped {
        // As runc: `--all` of a stopped container succeeds, there is nothing left to signal.
        if all {
            return Ok(());
        }
        return Err(Error::NotRunning {
            op: "kill",
            id: id.to_string(),
        });
    }
    send_signal(state.init_pid(), sig)
        .ctx(|| format!("send {sig} to container {id:?} (pid {})", state.pid))?;
    // A frozen process does not die of SIGKILL on cgroup v1 until it is thawed: as runc does,
    // a paused container that is killed is thawed (other signals leave it paused).
    if status == Status::Paused && sig == Signal::SIGKILL {
        state.cgroup.freeze(false)?;
    }
    Ok(())
}

/// Remove a container: kill what is left of it, remove its cgroup, run poststop hooks, remove
/// its state. A running container needs `force`. With `force`, a missing container is fine
/// (the containerd shim deletes twice).
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let dir = match store.open(id, true) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    let Some(state) = dir.load()? else {
        // We hold the lock, so the create that made this dir died before saving any state.
        return dir.remove();
    };
    let status = dir.status(&state);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(wrong(id, "delete", status));
    }
    destroy(&state)?;
    let oci = serde_json::to_string(&state.oci(Status::Stopped)).expect("state serialises");
    if let Err(e) = hooks::run(HookKind::Poststop, state.hooks.as_ref(), &oci) {
        tracing::warn!("{e}");
    }
    dir.remove()
}

/// Kill every process of the container and remove its cgroup.
fn destroy(state: &State) -> Result<()> {
    stop(state)?;
    state.cgroup.destroy()
}

/// Kill every process of the container and wait until its init is gone.
fn stop(state: &State) -> Result<()> {
    if state.init_alive() {
        let _ = send_signal(state.init_pid(), Signal::SIGKILL);
    }
    if !state.cgroup.is_none() {
        state.cgroup.kill_all(Signal::SIGKILL)?;
    }
    wait_gone(state)
}

/// Wait (10 s at most) until the init is gone: a pidfd of it turns readable as it exits.
fn wait_gone(state: &State) -> Result<()> {
    if !state.init_alive() {
        return Ok(());
    }
    let pidfd = match syscall::pidfd_open(state.init_pid()) {
        Err(nix::Error::ESRCH) => return Ok(()),
        r => r.ctx(|| {
            format!(
                "pidfd_open of container {:?}'s init (pid {})",
                state.id, state.pid
            )
        })?,
    };
    // Checked again once the pidfd is open: it then refers to our init, not a reuse of its pid.
    if !state.init_alive() {
        return Ok(());
    }
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::from(10_000u16)) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(0) => {
                return Err(Error::Init(format!(
                    "container {:?}: init {} did not die",
                    state.id, state.pid
                )))
            }
            r => return r.map(drop).ctx(|| "poll the init's pidfd"),
        }
    }
}

fn wrong(id: &str, op: &'static str, status: Status) -> Error {
    Error::WrongState {
        op,
        id: id.to_string(),
        status: status.to_string(),
    }
}
