//! `create` and `run`, which share their flags.

use anyhow::Result;
use berth::container::{self, CreateOptions, RunOptions};
use berth::state::Store;

use crate::cli::{CreateArgs, RunArgs};

fn options(a: &CreateArgs) -> Result<CreateOptions<'_>> {
    let console = a.console_socket.as_deref().map(berth::console::connect).transpose()?;
    // systemd socket activation, as runc passes it on: LISTEN_FDS fds from 3 are inherited.
    let listen = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
    Ok(CreateOptions {
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds + listen,
    })
}

pub fn create(store: &Store, a: &CreateArgs) -> Result<i32> {
    container::create(store, options(a)?)?;
    Ok(0)
}

pub fn run(store: &Store, a: &RunArgs) -> Result<i32> {
    let opts = RunOptions { create: options(&a.create)?, detach: a.detach, keep: a.keep };
    Ok(container::run(store, opts)?)
}
