//! The berth CLI: parse, set up logging, dispatch to one command, map errors to exit codes.

mod cli;
mod commands;
mod logging;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let g = &cli.global;
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!("open log file {}: {e}", g.log.as_deref().unwrap_or(std::path::Path::new("-")).display());
        std::process::exit(1);
    }
    match commands::dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            // The log carries it for containerd/conmon; stderr for a person at a shell.
            if g.log.is_some() {
                tracing::error!("{msg}");
            }
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
}
