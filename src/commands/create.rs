//! `create` and `run`, which share their flags.

use anyhow::Result;
use berth::cgroups::Driver;
use berth::container::{self, CreateOptions, RunOptions};
use berth::state::Store;

use crate::cli::{CreateArgs, RunArgs};

/// What the global flags say about how to create.
#[derive(Clone, Copy)]
pub struct Flags {
    pub rootless: bool,
    pub driver: Driver,
}

fn options(a: &CreateArgs, no_subreaper: bool, global: Flags) -> Result<CreateOptions<'_>> {
    let console = a
        .console_socket
        .as_deref()
        .map(berth::console::connect)
        .transpose()?;
    // systemd socket activation, as runc passes it on: only when the fds were meant for us.
    let for_us = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    let listen = std::env::var("LISTEN_FDS")
        .ok()
        .filter(|_| for_us)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(CreateOptions {
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        listen_fds: listen,
        pidfd_socket: a
            .pidfd_socket
            .as_deref()
            .map(berth::pidfd_socket::connect)
            .transpose()?,
        no_subreaper,
        rootless_cgroups: global.rootless,
        cgroup_driver: global.driver,
    })
}

pub fn create(store: &Store, a: &CreateArgs, global: Flags) -> Result<i32> {
    container::create(store, options(a, false, global)?)?;
    Ok(0)
}

pub fn run(store: &Store, a: &RunArgs, global: Flags) -> Result<i32> {
    let opts = RunOptions {
        create: options(&a.create, a.no_subreaper, global)?,
        detach: a.detach,
        keep: a.keep,
    };
    Ok(container::run(store, opts)?)
}
