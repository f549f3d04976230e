//! One thin file per command: turn flags into a library call, print the result.

mod checkpoint;
mod create;
mod delete;
mod docs;
mod events;
mod exec;
mod kill;
mod list;
mod pause;
mod ps;
mod spec;
mod state;
mod update;

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
        Command::Pause(a) => pause::pause(&store, &a.id),
        Command::Resume(a) => pause::resume(&store, &a.id),
        Command::Ps(a) => ps::ps(&store, a),
        Command::Events(a) => events::events(&store, a),
        Command::Update(a) => update::update(&store, a),
        Command::Checkpoint(a) => checkpoint::checkpoint(&store, &cli.global.criu, a),
        Command::Restore(a) => checkpoint::restore(&store, &cli.global.criu, a),
        Command::Spec(a) => spec::spec(a),
        Command::Completion(a) => docs::completion(a),
        Command::Man(a) => docs::man(a),
        Command::Features => emit(&serde_json::to_string_pretty(&berth::features::features())?),
    }
}

/// Write a command's output (plus a newline). A reader that went away early (`| head`) is not
/// an error: the output was not wanted. Rust's println! would panic there.
pub fn emit(text: &str) -> Result<i32> {
    write_line(text).map(|_| 0)
}

/// Write one line of output; false if the reader has gone away (see [`emit`]).
pub fn write_line(text: &str) -> Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context("write output")),
        Ok(()) => Ok(true),
    }
}
