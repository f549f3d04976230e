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

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth::cgroups::Driver;
use berth::state::Store;

use crate::cli::{Cli, Command, Global};

/// Run the command; the value is the process exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let store = Store::new(&state_root(&cli.global)?);
    // Later commands find the driver in the container's state.
    let flags = create::Flags {
        rootless: rootless(&cli.global),
        driver: match cli.global.systemd_cgroup {
            true => Driver::Systemd,
            false => Driver::Cgroupfs,
        },
    };
    // Whatever clones container processes runs from a sealed copy of its binary (CVE-2019-5736).
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        let seal = berth::sealed_exe::ensure(store.root())?;
        tracing::debug!("runtime binary sealed: {seal:?}");
    }
    match &cli.command {
        Command::Create(a) => create::create(&store, a, flags),
        Command::Run(a) => create::run(&store, a, flags),
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

/// `--root`, else runc's default: `$XDG_RUNTIME_DIR/berth` for a non-root user (or root in a
/// user namespace whose USER is not root), made 0700 with the sticky bit (XDG's "do not
/// prune"); otherwise `/run/berth`.
fn state_root(g: &Global) -> Result<PathBuf> {
    if let Some(root) = &g.root {
        return Ok(root.clone());
    }
    let honour_xdg = !nix::unistd::geteuid().is_root()
        || (!berth::namespaces::in_initial_user_ns()
            && std::env::var("USER").map_or(true, |u| u != "root"));
    let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty() && honour_xdg)
    else {
        return Ok(PathBuf::from("/run/berth"));
    };
    let root = PathBuf::from(xdg).join("berth");
    std::fs::create_dir_all(&root).with_context(|| {
        format!(
            "create state root {} ($XDG_RUNTIME_DIR must be writable by the user)",
            root.display()
        )
    })?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o1700))
        .with_context(|| format!("chmod {}", root.display()))?;
    Ok(root)
}

/// `--rootless`, with runc's auto: true unless run by root in the initial user namespace.
fn rootless(g: &Global) -> bool {
    g.rootless.and_then(|r| r.0).unwrap_or_else(|| {
        !nix::unistd::geteuid().is_root() || !berth::namespaces::in_initial_user_ns()
    })
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
