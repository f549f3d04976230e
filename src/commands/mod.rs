//! One thin file per command: turn flags into a library call, print the result.

mod create;
mod delete;
mod exec;
mod kill;
mod list;
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
        Command::Exec(a) => exec::exec(&store, a),
        Command::Spec(a) => spec::spec(a),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&berth::features::features())?);
            Ok(0)
        }
    }
}
