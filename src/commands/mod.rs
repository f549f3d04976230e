//! One thin file per command: turn flags into a library call, print the result.

mod create;
mod delete;
mod kill;
mod list;
mod pause;
mod ps;
mod spec;
mod state;

use anyhow::{bail, Result};
use berth::state::Store;

use crate::cli::{Cli, Command};

/// Run the command; the value is the process exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.global.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet; use cgroupfs");
    }
    let store = Store::new(&cli.global.root);
    match &cli.command {
        Command::Create(a) => create::create(&store, a),
        Command::Run(a) => create::run(&store, a),
        Command::Start(a) => Ok(berth::container::start(&store, &a.id).map(|()| 0)?),
        Command::State(a) => state::state(&store, &a.id),
        Command::List(a) => list::list(&store, a),
        Command::Kill(a) => kill::kill(&store, a),
        Command::Delete(a) => delete::delete(&store, a),
        Command::Pause(a) => pause::pause(&store, &a.id),
        Command::Resume(a) => pause::resume(&store, &a.id),
        Command::Ps(a) => ps::ps(&store, a),
        Command::Spec(a) => spec::spec(a),
    }
}
