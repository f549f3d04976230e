//! The container init, inside its namespaces: from mounts to execve. Single-threaded; every
//! failure goes back to the runtime over the sync channel with its context.

use std::convert::Infallible;
use std::ffi::CString;

use nix::fcntl::{open, openat, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::sync::{Channel, Msg};
use super::{exec, mempolicy, personality, user, InitArgs};
use crate::hooks::{self, HookKind};
use crate::rootfs;
use crate::security::{lsm, seccomp};
use crate::{console, procfs, syscall, Context, Error, Result};

pub(super) fn run(args: &InitArgs, chan: &Channel) -> Result<Infallible> {
    let spec = &args.bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    let linux = spec.linux().as_ref().expect("validated");
    let userns = args.ns.new.contains(CloneFlags::CLONE_NEWUSER);
    if userns || args.ns.joins(CloneFlags::CLONE_NEWUSER) {
        // Become root of the user namespace, so the setup below acts as its root.
        user::become_root()?;
    }
    nix::unistd::setsid().ctx(|| "setsid")?;
    if !args.no_new_keyring {
        lsm::set_key_label(process, args.procfs)?;
        let name = CString::new(format!("_ses.{}", args.id)).expect("id has no NUL");
        // Kernels without keyrings, or with a keyring quota reached, still run containers.
        if let Err(e) = syscall::join_session_keyring(&name) {
            tracing::debug!("join session keyring: {e}");
        }
    }
    // The state dir, held while it is reachable, to open the exec fifo in it at the very end.
    let state_dir = args.fifo.parent().expect("fifo is in the state dir");
    let state_dir = open(
        state_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", state_dir.display()))?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d)?;
    }
    // Through the runtime's procfs: a mount namespace joined by path has a /proc of its own.
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = format!("sys/{}", key.replace('.', "/"));
        procfs::write(args.procfs, &path, value.as_bytes())
            .map_err(|e| Error::Init(format!("linux.sysctl {key:?}: {e}")))?;
    }

    let opts = rootfs::Options {
        spec,
        rootfs: &args.bundle.rootfs,
        bundle: &args.bundle.dir,
        no_pivot: args.no_pivot,
        new_userns: userns,
        mount_ns: args.ns.new.contains(CloneFlags::CLONE_NEWNS)
            || args.ns.joins(CloneFlags::CLONE_NEWNS),
        mount_label: lsm::mount_label(linux),
        detached: args.detached,
    };
    rootfs::prepare(&opts)?;
    chan.send(&Msg::Mounted)?;
    let state = match chan.expect()? {
        Msg::Continue { state } => state,
        m => return Err(Error::Init(format!("sync: expected continue, got {m:?}"))),
    };
    let spec_hooks = spec.hooks().as_ref();
    hooks::run(
        HookKind::CreateContainer,
        spec_hooks,
        &hooks::in_container(&state, "creating"),
    )?;
    rootfs::pivot(&opts)?;
    rootfs::resolve_fd_links_in(args.procfs)?;
    if process.terminal().unwrap_or(false) {
        let socket = args
            .console
            .ok_or_else(|| Error::Usage("process.terminal needs a console socket".into()))?;
        let pty = console::setup_in_container(socket, process.console_size().as_ref())?;
        // A bind on /dev/console would be a mount in the runtime's own mount namespace.
        if opts.mount_ns {
            console::bind_console(&pty)?;
        }
    }
    rootfs::finalize(&opts)?;

    let filter = linux
        .seccomp()
        .as_ref()
        .map(|sc| seccomp::compile(sc, args.seccomp_listener, &state))
        .transpose()?;
    personality::apply(linux)?;
    mempolicy::apply(linux)?;
    let prepared = exec::prepare(process, filter, Some(args.procfs))?;
    chan.send(&Msg::Ready)?;
    match chan.recv() {
        Ok(Msg::Saved) => {}
        Ok(m) => return Err(Error::Init(format!("sync: expected saved, got {m:?}"))),
        // The runtime died before saving the state: nobody knows of us, and we hold its
        // caller's stdout and stderr. Nobody is left to report to either.
        // SAFETY: _exit skips the parent's atexit handlers, which this forked copy must not run.
        Err(_) => unsafe { libc::_exit(1) },
    }

    // Blocks until `start` opens the fifo for reading; `start` then waits for our byte, so the
    // startContainer hooks run before it goes on to poststart.
    let wr = openat(
        &state_dir,
        crate::state::EXEC_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open exec fifo for writing")?;
    // The first byte tells `start` how it went: 0, or 1 and the error, which `start` reports.
    if let Err(e) = hooks::run(
        HookKind::StartContainer,
        spec_hooks,
        &hooks::in_container(&state, "created"),
    ) {
        let _ = nix::unistd::write(&wr, format!("1{e}").as_bytes());
        return Err(e);
    }
    nix::unistd::write(&wr, b"0").ctx(|| "write exec fifo")?;
    drop((wr, state_dir));
    exec::exec(prepared, process, args.preserve_fds)
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe a live buffer for the duration of the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(r)
        .map(drop)
        .ctx(|| format!("set domainname {name:?}"))
}
