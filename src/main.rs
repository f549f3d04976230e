//! The berth CLI: parse, set up logging, dispatch to one command, map errors to exit codes.

mod cli;
mod commands;
mod logging;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let matches = cli::Cli::command().version(cli::version()).get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let g = &cli.global;
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format, g.debug) {
        let path = g.log.as_deref().unwrap_or(std::path::Path::new("-"));
        eprintln!(
            "open log file {}: {}",
            path.display(),
            berth::error::io_text(&e)
        );
        std::process::exit(1);
    }
    match commands::dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = error_text(&e);
            // The log carries it for containerd/conmon; stderr for a person at a shell.
            if g.log.is_some() {
                tracing::error!("{msg}");
            }
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
}

/// The error and its causes, `: `-separated as `{:#}` prints them, with std I/O errors worded
/// as the library words errnos (lower case, as clients expect).
fn error_text(e: &anyhow::Error) -> String {
    let text = |c: &(dyn std::error::Error + 'static)| match c.downcast_ref::<std::io::Error>() {
        Some(io) => berth::error::io_text(io),
        None => c.to_string(),
    };
    e.chain().map(text).collect::<Vec<_>>().join(": ")
}
