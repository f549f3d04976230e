//! A process added to a running container by `exec`, once it is in the container's namespaces
//! and cgroup: terminal, then the same last steps as the init.

use std::convert::Infallible;

use super::sync::{Channel, Msg};
use super::{exec, sched, EnterArgs};
use crate::security::seccomp;
use crate::{console, Context, Result};

pub(super) fn run(args: &EnterArgs, chan: &Channel) -> Result<Infallible> {
    let process = args.process;
    if let Some(root) = args.root {
        nix::unistd::fchdir(root).ctx(|| "chdir to the container's root")?;
        nix::unistd::chroot(".").ctx(|| "chroot to the container's root")?;
    }
    nix::unistd::setsid().ctx(|| "setsid")?;
    if let Some(socket) = args.console {
        console::setup_in_container(socket, process.console_size().as_ref())?;
    }
    let filter = args
        .seccomp
        .map(|sc| seccomp::compile(sc, args.seccomp_listener, args.state))
        .transpose()?;
    let prepared = exec::prepare(process, filter, args.procfs)?;
    // Last, once in the container's cgroup (whose cpuset applies); the init has no execCPUAffinity.
    sched::set_final_affinity(process)?;
    chan.send(&Msg::Ready)?;
    exec::exec(prepared, process, args.preserve_fds)
}
