//! Starting a container process (the init, or one `exec` adds): the clone(s) that put it in its
//! namespaces, and the parent's side of the sync protocol up to "ready".

mod enter;
pub mod exec;
mod init;
pub mod mempolicy;
pub mod personality;
pub mod rlimits;
pub mod sched;
pub mod sync;
pub mod user;

use std::convert::Infallible;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, Process};

use crate::namespaces::{self, Plan};
use crate::spec::Bundle;
use crate::syscall::{clone_fork, clone_fork_into};
use crate::{Context, Error, Result};
use sync::{Channel, Msg};

/// Everything the init needs, prepared by the runtime before the clone.
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub ns: &'a Plan,
    pub fifo: &'a Path,
    pub console: Option<BorrowedFd<'a>>,
    /// Connected to linux.seccomp.listenerPath, which gets the notify fd.
    pub seccomp_listener: Option<BorrowedFd<'a>>,
    /// The runtime's private procfs ([`crate::procfs`]): every write to a procfs file goes there.
    pub procfs: BorrowedFd<'a>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Fds of the runtime the child must close at once (the state dir lock).
    pub close_fds: &'a [RawFd],
    /// The container's cgroup to clone the process into (see [`Spawned`]).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Bind mounts made by the runtime (idmapped ones, ...), which the init attaches.
    pub detached: &'a crate::rootfs::DetachedMounts,
}

/// What a process `exec` adds to a running container needs.
pub struct EnterArgs<'a> {
    pub process: &'a Process,
    pub console: Option<BorrowedFd<'a>>,
    pub preserve_fds: u32,
    /// The container's seccomp profile, its listener, and the state JSON sent there.
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    pub seccomp_listener: Option<BorrowedFd<'a>>,
    pub state: &'a str,
    /// As in [`InitArgs`], when the process has LSM labels to set.
    pub procfs: Option<BorrowedFd<'a>>,
    pub cgroup: Option<BorrowedFd<'a>>,
    /// The init's root, to chroot into when the container has no mount namespace to join.
    pub root: Option<BorrowedFd<'a>>,
}

/// What every spawned container process needs before its own part runs.
struct Spawn<'a> {
    ns: &'a Plan,
    linux: &'a Linux,
    close_fds: &'a [RawFd],
    /// For the time offsets of a new time namespace.
    procfs: Option<BorrowedFd<'a>>,
    /// The runtime's end of the channel: closed in the child, so that once the runtime has
    /// closed it too, a failure reported after "ready" (a refused execve) finds nobody
    /// listening and goes to the process's stderr instead of vanishing into the channel.
    peer: RawFd,
    cgroup: Option<BorrowedFd<'a>>,
}

/// The first child of a spawn, waiting for "go".
#[derive(Debug, Clone, Copy)]
pub struct Spawned {
    pub pid: Pid,
    /// Cloned straight into its cgroup (clone3 CLONE_INTO_CGROUP, pure cgroup v2): the caller
    /// must not move it there. Otherwise the caller writes it to cgroup.procs before "go".
    pub in_cgroup: bool,
}

/// Start the container init (see [`init`]); returns the first child, for [`drive`].
/// `parent` and `chan` are the two ends of [`sync::pair`]; the child gets `chan`.
pub fn spawn_init(args: &InitArgs, parent: &Channel, chan: Channel) -> Result<Spawned> {
    let linux = args.bundle.spec.linux().as_ref().expect("validated");
    let sp = Spawn {
        ns: args.ns,
        linux,
        close_fds: args.close_fds,
        procfs: Some(args.procfs),
        peer: parent.raw(),
        cgroup: args.cgroup,
    };
    spawn(&sp, chan, |c| init::run(args, c))
}

/// Start a process in the namespaces of a running container (`ns` joins them all).
pub fn spawn_enter(
    args: &EnterArgs,
    ns: &Plan,
    linux: &Linux,
    parent: &Channel,
    chan: Channel,
) -> Result<Spawned> {
    let sp = Spawn {
        ns,
        linux,
        close_fds: &[],
        procfs: None,
        peer: parent.raw(),
        cgroup: args.cgroup,
    };
    spawn(&sp, chan, |c| enter::run(args, c))
}

/// Clone the first child. It runs `body` itself when one clone can make every namespace;
/// otherwise it joins/unshares and forks the process that does (see [`Plan::single_clone`]).
/// Returns the first child; the parent then drives [`Msg`]s through `chan`.
fn spawn(
    sp: &Spawn,
    chan: Channel,
    body: impl FnOnce(&Channel) -> Result<Infallible>,
) -> Result<Spawned> {
    // The cgroup namespace is unshared after "go" (see child()).
    let flags = if sp.ns.single_clone() {
        sp.ns.new - CloneFlags::CLONE_NEWCGROUP
    } else {
        CloneFlags::empty()
    };
    let into = sp.cgroup.and_then(|fd| match clone_fork_into(flags, fd) {
        Ok(cloned) => Some(cloned),
        // Any failure: an old kernel or a seccomp filter, or one a cgroup.procs write also
        // meets and then names with its path; a real clone error comes back from clone(2).
        Err(e) => {
            tracing::debug!(
                "clone3 into the container's cgroup: {e}; cloning, then moving the process"
            );
            None
        }
    });
    let in_cgroup = into.is_some();
    let cloned = match into {
        Some(cloned) => cloned,
        None => clone_fork(flags).ctx(|| "clone container process")?,
    };
    match cloned {
        Some(pid) => {
            if in_cgroup {
                tracing::debug!("process {pid} started in its cgroup (clone3 CLONE_INTO_CGROUP)");
            }
            Ok(Spawned { pid, in_cgroup })
        }
        None => {
            let err = match child(sp, &chan).and_then(|()| body(&chan)) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            // After "ready" nobody reads the channel: the container's stderr is all that is left.
            if chan.send(&Msg::Error(err.to_string())).is_err() {
                eprintln!("{err}");
            }
            // SAFETY: _exit skips atexit handlers and buffered-IO flushing of the parent's state,
            // which this forked copy must not run.
            unsafe { libc::_exit(1) }
        }
    }
}

/// The common first part of a spawned process: namespaces, and the fork into pid/time ones.
fn child(sp: &Spawn, chan: &Channel) -> Result<()> {
    let ns = sp.ns;
    for fd in sp.close_fds.iter().chain([&sp.peer]) {
        let _ = nix::unistd::close(*fd);
    }
    // The runtime blocks signals to forward them; the container starts with none blocked.
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .ctx(|| "reset signal mask")?;
    // Until it execs, this process is the runtime (run from a sealed copy, see sealed_exe.rs).
    // Non-dumpable, its /proc/<pid> (exe, fds, memory) is closed to the container's processes
    // meanwhile; execve makes the program dumpable again, so this alone is no defence against
    // CVE-2019-5736: the sealed copy is. An unprivileged runtime can only write the id maps of
    // a new user namespace (or have newuidmap do it) while /proc/<pid> is still its own, as
    // runc does: dumpable until then, before anything of the container runs.
    let unprivileged_maps =
        ns.new.contains(CloneFlags::CLONE_NEWUSER) && !nix::unistd::geteuid().is_root();
    if !unprivileged_maps {
        nix::sys::prctl::set_dumpable(false).ctx(|| "set non-dumpable")?;
    }
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec.
    // SAFETY: restoring a default disposition installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    expect_go(chan)?;
    // A cgroup namespace is rooted at its creator's cgroup: it is made only now that the parent
    // has put us in the container's cgroup, so the container sees that cgroup as its root.
    if ns.single_clone() && ns.new.contains(CloneFlags::CLONE_NEWCGROUP) {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare the cgroup namespace")?;
    }
    if !ns.single_clone() {
        namespaces::join(ns)?;
        let unshare = ns.new - CloneFlags::CLONE_NEWPID;
        nix::sched::unshare(unshare).ctx(|| format!("unshare namespaces {unshare:?}"))?;
        if ns.new.contains(CloneFlags::CLONE_NEWUSER) {
            chan.send(&Msg::WriteMaps)?;
            expect_go(chan)?;
        }
        // Also by /proc/self, closed to a non-dumpable process of an unprivileged runtime.
        if ns.new.contains(namespaces::CLONE_NEWTIME) {
            namespaces::write_time_offsets(sp.linux, need_procfs(sp.procfs)?)?;
        }
    }
    if unprivileged_maps {
        nix::sys::prctl::set_dumpable(false).ctx(|| "set non-dumpable")?;
    }
    if !ns.single_clone() {
        // setns/unshare of pid and time namespaces apply to children only: fork the init there.
        let for_children = CloneFlags::CLONE_NEWPID | namespaces::CLONE_NEWTIME;
        if ns.new.intersects(for_children)
            || ns.join.iter().any(|(f, ..)| for_children.contains(*f))
        {
            // CLONE_PARENT: the init is the runtime's child, not an orphan of ours, so the
            // runtime waits for it and kills it on failure without being a subreaper.
            let flags = (ns.new & CloneFlags::CLONE_NEWPID) | CloneFlags::CLONE_PARENT;
            if let Some(pid) = clone_fork(flags).ctx(|| "fork container init")? {
                chan.send(&Msg::InitPid(pid.as_raw()))?;
                // SAFETY: see spawn(); this intermediate process is done.
                unsafe { libc::_exit(0) }
            }
            // The parent learns our pid from that message: nothing of ours (ready, mounted) may
            // reach it first, or it would take the intermediate process for us.
            expect_go(chan)?;
        }
    }
    Ok(())
}

/// Only the init's namespaces need the procfs: a process `exec` adds makes none.
fn need_procfs(procfs: Option<BorrowedFd>) -> Result<BorrowedFd> {
    procfs.ok_or_else(|| {
        Error::Init("new namespaces: no procfs to write their settings through".into())
    })
}

fn expect_go(chan: &Channel) -> Result<()> {
    match chan.expect()? {
        Msg::Go => Ok(()),
        m => Err(Error::Init(format!("sync: expected go, got {m:?}"))),
    }
}

/// The parent's side: after the first child is in its cgroup, let it run, answer its requests,
/// and return the init's pid once it has mounted the rootfs (`on_mounted` runs the hooks that
/// run in the runtime's namespaces and returns the state JSON for the init's own hooks), then
/// wait for it to be ready.
pub fn drive(
    first: Pid,
    chan: &Channel,
    linux: &Linux,
    ns: &Plan,
    procfs: Option<BorrowedFd>,
    mut on_mounted: impl FnMut(Pid) -> Result<String>,
) -> Result<Pid> {
    if ns.single_clone() && ns.new.contains(CloneFlags::CLONE_NEWUSER) {
        namespaces::write_id_maps(first, linux, need_procfs(procfs)?)?;
    }
    chan.send(&Msg::Go)?;
    let mut init = first;
    loop {
        match chan.expect()? {
            Msg::WriteMaps => {
                namespaces::write_id_maps(first, linux, need_procfs(procfs)?)?;
                chan.send(&Msg::Go)?;
            }
            Msg::InitPid(pid) => {
                init = Pid::from_raw(pid);
                reap(first)?;
                chan.send(&Msg::Go)?;
            }
            Msg::Mounted => {
                let state = on_mounted(init)?;
                chan.send(&Msg::Continue { state })?;
            }
            Msg::Ready => return Ok(init),
            m => return Err(Error::Init(format!("sync: unexpected message {m:?}"))),
        }
    }
}

/// Wait for the intermediate child, which exits as soon as it has forked the init.
fn reap(pid: Pid) -> Result<()> {
    match waitpid(pid, None).ctx(|| format!("wait for {pid}"))? {
        WaitStatus::Exited(_, 0) => Ok(()),
        s => Err(Error::Init(format!("intermediate process failed: {s:?}"))),
    }
}

/// Process-wide: orphans of our children come back to us, so the init forked by an intermediate
/// process stays waitable (`run`) and killable on failure.
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).ctx(|| "set child subreaper")
}
