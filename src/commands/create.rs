//! `create` and `run`, which share their flags.

use anyhow::Result;
use berth::cgroups::Driver;
use berth::container::{self, CreateOptions, RunOptions};
use berth::state::Store;

use crate::cli::{CreateArgs, RunArgs};

fn options(a: &CreateArgs, cgroup_driver: Driver) -> Result<CreateOptions<'_>> {
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
        cgroup_driver,
    })
}

pub fn create(store: &Store, a: &CreateArgs, driver: Driver) -> Result<i32> {
    container::create(store, options(a, driver)?)?;
    Ok(0)
}

pub fn run(store: &Store, a: &RunArgs, driver: Driver) -> Result<i32> {
    let opts = RunOptions {
        create: options(&a.create, driver)?,
        detach: a.detach,
        keep: a.keep,
    };
    Ok(container::run(store, opts)?)
}
