//! `exec`: add a process to a running container. It joins every namespace of the container's
//! init and its cgroup before it runs anything, then takes the same last steps as the init.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, Process};

use super::run::Foreground;
use crate::namespaces::Plan;
use crate::process::{self, sync, EnterArgs};
use crate::security::{lsm, seccomp};
use crate::state::{self, Status, Store};
use crate::{pidfd_socket, Context, Error, Result};

pub struct ExecOptions<'a> {
    pub id: &'a str,
    pub process: Process,
    /// A connected console socket for the pty when process.terminal is set.
    pub console: Option<OwnedFd>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Exec even when the container is paused (the process starts frozen).
    pub ignore_paused: bool,
    /// Existing sub-cgroups to run in, `[controller:]path` (runc's --cgroup).
    pub sub_cgroups: Vec<String>,
    /// A connected socket that gets a pidfd of the process (see [`crate::pidfd_socket`]).
    pub pidfd_socket: Option<OwnedFd>,
}

/// Returns the exit code: 0 when detached, else the process's (128+N when killed by signal N).
pub fn exec(store: &Store, mut opts: ExecOptions) -> Result<i32> {
    let process = &opts.process;
    crate::spec::validate_process(process)?;
    process::sched::validate(process)?;
    lsm::validate(process, None)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.detach && opts.console.is_none() {
        return Err(Error::Usage(
            "a detached process with a terminal needs --console-socket".into(),
        ));
    }
    if !terminal && opts.console.is_some() {
        return Err(Error::Usage(
            "--console-socket given but no terminal was asked for (-t)".into(),
        ));
    }
    let dir = store.open(opts.id, false)?;
    let state = dir
        .load()?
        .ok_or_else(|| wrong(opts.id, Status::Creating))?;
    let status = dir.status(&state);
    match status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        s => return Err(wrong(opts.id, s)),
    }
    let mut linux = Linux::default();
    linux.set_seccomp(state.seccomp.clone());
    let listener = seccomp::connect_listener(&linux)?;
    let procfs = lsm::has_labels(&opts.process)
        .then(crate::procfs::open_private)
        .transpose()?;
    let state_json = serde_json::to_string(&state.oci(status)).expect("state serialises");
    let ns = Plan::of_process(state.init_pid())?;
    // A container without a mount namespace of its own is chrooted: so is what joins it.
    let root = if ns.joins(CloneFlags::CLONE_NEWNS) {
        None
    } else {
        let path = format!("/proc/{}/root", state.init_pid());
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {path}"))?;
        Some(fd)
    };
    // The namespaces are held open now. The lock goes before the process starts: it may join a
    // frozen cgroup (--ignore-paused) and wait there for `resume`, which needs the lock.
    drop(dir);
    let fg = if opts.detach {
        None
    } else {
        Some(Foreground::prepare(terminal, &mut opts.console, true)?)
    };
    if fg.is_none() {
        process::become_subreaper()?;
    }

    // execCPUAffinity.initial is for the time before the process joins the cgroup (whose
    // cpuset may then change it): such a process is moved in after it is set.
    let initial_affinity = opts
        .process
        .exec_cpu_affinity()
        .as_ref()
        .is_some_and(|a| a.initial().is_some());
    let cgroup_fd = if initial_affinity {
        None
    } else {
        state.cgroup.open_for_clone(&opts.sub_cgroups)?
    };
    let (chan, child_chan) = sync::pair()?;
    let args = EnterArgs {
        process: &opts.process,
        console: opts.console.as_ref().map(|c| c.as_fd()),
        preserve_fds: opts.preserve_fds,
        seccomp: linux.seccomp().as_ref(),
        seccomp_listener: listener.as_ref().map(|l| l.as_fd()),
        state: &state_json,
        procfs: procfs.as_ref().map(|p| p.as_fd()),
        cgroup: cgroup_fd.as_ref().map(|fd| fd.as_fd()),
        root: root.as_ref().map(|fd| fd.as_fd()),
    };
    let spawned = process::spawn_enter(&args, &ns, &linux, &chan, child_chan)?;
    let first = spawned.pid;
    // The first child waits for "go", so the initial affinity holds for all its setup.
    let started = process::sched::set_initial_affinity(&opts.process, first)
        .and_then(|()| {
            if spawned.in_cgroup {
                Ok(())
            } else {
                state.cgroup.add_to(first, &opts.sub_cgroups)
            }
        })
        .and_then(|()| {
            process::drive(first, &chan, &linux, &ns, None, |_| {
                Err(Error::Init(
                    "sync: unexpected mount report from exec".into(),
                ))
            })
        });
    // Closed either way: that ends a child still waiting on it, and lets a failure after "ready"
    // (a refused execve) reach the process's stderr rather than the channel.
    drop(chan);
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            // The intermediate process, if any, is killed.
            let _ = kill(first, Signal::SIGKILL);
            // In a frozen v1 cgroup (a paused container) the kill takes effect only on `resume`:
            // no waiting for it then; whoever inherits the process when we exit reaps it.
            if status != Status::Paused && !state.cgroup.is_frozen().unwrap_or(true) {
                while nix::sys::wait::wait().is_ok() {}
            }
            return Err(e);
        }
    };
    drop(opts.console.take());
    if let Some(socket) = &opts.pidfd_socket {
        // The caller asked to manage the process through the pidfd: without it, it must not run.
        pidfd_socket::send(socket.as_fd(), pid, pidfd_socket::Kind::Exec).inspect_err(|_| {
            let _ = kill(pid, Signal::SIGKILL);
        })?;
    }
    if let Some(p) = opts.pid_file {
        state::write_pid_file(p, pid)?;
    }
    match fg {
        None => Ok(0),
        Some(fg) => fg.attach(pid, || Ok(())),
    }
}

fn wrong(id: &str, status: Status) -> Error {
    Error::WrongState {
        op: "exec in",
        id: id.to_string(),
        status: status.to_string(),
    }
}
